"""The registry of search spaces: ``register_space`` / ``get_space`` (as timm's
``register_model`` / ``create_model``), and the smallest model of a space."""

from __future__ import annotations

from typing import Callable

from nas.arch import ArchSpec
from nas.budget import Constraints
from nas.errors import UsageError

SpaceFn = Callable[..., ArchSpec]
_REGISTRY: dict[str, SpaceFn] = {}


class UnknownSpace(UsageError):
    pass


def register_space(name: str):
    def decorator(fn: SpaceFn) -> SpaceFn:
        _REGISTRY[name] = fn
        return fn

    return decorator


def space_names() -> list[str]:
    return sorted(_REGISTRY)


def get_space(name: str) -> SpaceFn:
    if name not in _REGISTRY:
        raise UnknownSpace(f"unknown search space {name!r}; valid: {', '.join(space_names())}")
    return _REGISTRY[name]


class MinimalTrial:
    """Answers every suggestion with its smallest value: the smallest model of a space."""

    def suggest_int(self, name, low, high, **_):
        return low

    def suggest_float(self, name, low, high, **_):
        return low

    def suggest_categorical(self, name, choices):
        return choices[0]


def smallest_model(name: str, data_info, constraints: Constraints) -> ArchSpec:
    return get_space(name)(MinimalTrial(), data_info, constraints)
