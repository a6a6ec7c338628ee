"""Which of a study's trials count, how the search ranks them, and which one a command
means by --best or --trial N."""

from __future__ import annotations

import optuna

from nas import records
from nas.errors import UsageError


def completed_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Completed trials that carry an architecture (i.e. were trained by nas)."""
    return [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if records.trial(t, study.study_name).arch is not None]


def trial_val_acc(trial: optuna.trial.FrozenTrial) -> float | None:
    """Validation accuracy of a finished trial: its value, or its first value in a
    multi-objective (--objective pareto) study; None when it has none."""
    return trial.values[0] if trial.values else None


def search_rank(trial: optuna.trial.FrozenTrial) -> tuple:
    """How the search ranks its completed trials: validation accuracy, then the smaller net."""
    return trial_val_acc(trial), -records.trial(trial).params


def pick_trial(study: optuna.Study, number: int | None) -> optuna.trial.FrozenTrial:
    """Trial ``number``, or the best: the runoff's winner when a runoff ran (nas.runoff),
    else the completed trial with the best validation accuracy."""
    done = completed_trials(study)
    if not done:
        raise UsageError(f"study {study.study_name!r} has no completed trial yet; run "
                         f"`nas search` first (or wait for a trial to finish)")
    if number is None:
        if looks := records.runoff(study):
            number = max(looks, key=lambda held: held["val_acc"])["trial"]
        else:
            return max(done, key=search_rank)
    for trial in done:
        if trial.number == number:
            return trial
    valid = ", ".join(str(t.number) for t in done[:20])
    raise UsageError(f"trial {number} is not a completed trial of study {study.study_name!r}; "
                     f"completed: {valid}{' ...' if len(done) > 20 else ''}")
