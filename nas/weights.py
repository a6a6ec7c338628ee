"""Trained weights back into a model: the trial's stored spec checked before anything is
built from it, and a weights file read as tensors only, its names and shapes checked on a
model without memory first."""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
import torch

from nas import records
from nas.arch import ArchSpec, SpecError
from nas.budget import count_params
from nas import flags
from nas.errors import UsageError
from nas.model import build, shape_difference, state_shapes
from nas.study_folder import weights_path


def trial_spec(trial: optuna.trial.FrozenTrial, study: optuna.Study | None = None) -> ArchSpec:
    """A trial's stored architecture, checked before anything is built from it (a journal
    may be edited or planted): one nas can build, with the params the trial recorded, within
    the study's budget."""
    try:
        spec = ArchSpec.from_dict(records.trial(trial).arch)
        params = count_params(spec)
    except (SpecError, KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"trial {trial.number}: its stored architecture is not one nas can build "
                         f"({str(exc)[:200]}); the study was edited or damaged") from None
    stored = records.trial(trial).params
    if stored != params:
        raise UsageError(f"trial {trial.number}: its architecture has {params:,} params but the trial "
                         f"records {stored!r}; the study was edited or damaged")
    held = records.study_or_none(study) if study is not None else None
    budget = held.budget if held is not None else None
    if budget is not None:
        try:
            flags.check("budget", budget, flags.BUDGET)
        except UsageError as exc:
            raise UsageError(f"study {study.study_name!r} records a bad budget: {exc}") from None
        if params > budget:
            raise UsageError(f"trial {trial.number}: {params:,} params is over the study's budget of "
                             f"{budget:,}; the study was edited or damaged")
    return spec


def load_weights(path: Path, make_model, what: str) -> torch.nn.Module:
    """``make_model()`` with the tensors of ``path`` (tensors only, never code), checked name
    by name and shape by shape on a model without memory first: nothing is allocated for a
    model the file does not hold (a planted trial of a million channels, say)."""
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols: not the user's concern
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torn, foreign or planted: torch raises many types for these
        # torch's own message advises weights_only=False, i.e. running the file's code: never.
        safe = "Weights only load failed" in str(exc)
        reason = ("damaged, or holding more than tensors" if safe
                  else f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}")
        raise UsageError(f"{path} is not a weights file nas can load ({reason}); nas loads "
                         f"tensors only and never runs code from a file") from None
    held = ({k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
            if isinstance(state, dict) else {})
    if difference := shape_difference(state_shapes(make_model), held):
        raise UsageError(f"{path} does not hold weights for {what}: {difference}")
    model = make_model()
    model.load_state_dict(state)
    return model


def load_trained(study_dir: Path, trial: optuna.trial.FrozenTrial,
                 weights: str | Path | None = None,
                 study: optuna.Study | None = None) -> tuple[ArchSpec, torch.nn.Module]:
    """Rebuild from the stored spec (not the space's current code) and load the weights:
    the search's, or ``weights`` (e.g. from ``nas train``)."""
    spec = trial_spec(trial, study)
    path = Path(weights) if weights else weights_path(study_dir, trial.number)
    if not path.is_file():
        raise UsageError(f"weights of trial {trial.number} missing: {path}")
    model = load_weights(path, lambda: build(spec), f"trial {trial.number} ({spec.to_string()})")
    return spec, model.eval()
