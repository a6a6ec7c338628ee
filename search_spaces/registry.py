"""The registry of search spaces: ``register_space`` / ``get_space`` (as timm's
``register_model`` / ``create_model``), the smallest model of a space, and a search over
several spaces at once (``parse_spaces`` / ``sample_family``)."""

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


def parse_spaces(text: str) -> tuple[str, ...]:
    """``cnn`` or ``cnn,mobilenet``: the spaces a search draws from, each checked, in order."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise UnknownSpace(f"--space {text!r} names no search space; valid: {', '.join(space_names())} "
                           f"(several as a comma-separated list)")
    for name in names:
        get_space(name)
    return names


def sample_family(trial, names: tuple[str, ...], data_info, constraints: Constraints
                  ) -> tuple[str, ArchSpec]:
    """(family, spec): the family by turn when there are several (trial number modulo their
    count), then that space draws the net; each space's parameters have its own prefix, so
    they never mix and the sampler learns each family's from its own trials.

    Why by turn and not a sampled parameter: a search over families is asked which family
    wins at each size, and a sampler that learns the family from short-trial scores gives
    one of them nearly every trial (which one depends on the objective), leaving the other
    with too few nets to answer for it."""
    name = names[trial.number % len(names)]
    return name, get_space(name)(trial, data_info, constraints)


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
