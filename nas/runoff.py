"""The runoff at the end of a long --time search (its share and length: nas.search.plan):
the best completed net of each of a few kinds of net (family, head, batch norm or not) is
trained again from scratch with the final training's recipe, on the training split, for a
look several slices long, and scored on the validation split. The final training
takes the best of them (pick_trial's "best" is the runoff's winner once one ran).

Why kinds and not simply the top few: on faces the top of a slice-ranked study is one
kind of net (no batch norm, flatten head), all of which learn fast and stop early, so a
runoff among them would re-rank by the same speed. And why the kinds that differ most rather
than the best-scored kinds: the kind that wins a long training (a pooled head with batch
norm) can rank last in the slices, and then TPE draws it rarely.

The looks are kept, one by one, in the study's record (nas.records.RunoffLook), so a
stopped search loses none of them: run again, the same command looks only at the nets not
yet looked at.
"""

from __future__ import annotations

import time
from typing import Callable

import optuna
import torch

from nas import records
from nas.trials import completed_trials, search_rank, trial_val_acc
from nas.weights import trial_spec
from nas.data import Data
from nas.final import LABEL_SMOOTHING
from nas.model import build
from nas.schedule import EPOCH_CAP
from nas.trainer import TrainConfig, train


def kind(trial: optuna.trial.FrozenTrial) -> tuple:
    """What a runoff keeps apart: the family, the head, and batch norm on or off."""
    spec = trial_spec(trial)
    return records.trial(trial).space or "", spec.head.kind, spec.bn


def entrants(study: optuna.Study, nets: int) -> list[optuna.trial.FrozenTrial]:
    """At most ``nets`` trials, the best completed one of each kind chosen, each next one
    the kind that adds the most family, head and batch-norm choices not yet entered (the
    best search score among equals): a kind the slices score low, and that TPE therefore
    stopped drawing, still gets its look."""
    best_of_kind: dict[tuple, optuna.trial.FrozenTrial] = {}
    for trial in sorted(completed_trials(study), key=search_rank, reverse=True):
        best_of_kind.setdefault(kind(trial), trial)
    chosen, entered = [], set()
    while best_of_kind and len(chosen) < nets:
        def new_choices(k: tuple) -> int:
            return sum((part, value) not in entered for part, value in enumerate(k))
        k = max(best_of_kind, key=new_choices)  # max keeps the first, best-ranked, of equals
        chosen.append(best_of_kind.pop(k))
        entered.update(enumerate(k))
    return chosen


def run_runoff(study: optuna.Study, data: Data, device: torch.device, augment: str,
               nets: int, look: float, until: float, log: Callable[[str], None] = print) -> list[dict]:
    """Look at each entrant not yet looked at for ``look`` seconds (less if ``until``,
    time.time(), comes first); returns every look the study holds."""
    looks = records.runoff(study)
    for trial in entrants(study, nets):
        if any(held["trial"] == trial.number for held in looks):
            continue
        seconds = min(look, until - time.time())
        if seconds < look / 2:
            log(f"runoff: no time left to look at trial {trial.number}")
            break
        torch.manual_seed(trial.number)
        model = build(trial_spec(trial, study)).to(device)
        cfg = TrainConfig(EPOCH_CAP, augment=augment, label_smoothing=LABEL_SMOOTHING,
                          time_limit=seconds, time_reports=1, processes=0)
        result = train(model, data, cfg)
        held = records.trial(trial)
        looks.append({"trial": trial.number, "arch": held.arch_str,
                      "params": held.params, "val_acc": result.val_acc,
                      "search_val_acc": trial_val_acc(trial),
                      "epochs": round(result.epochs, 2), "seconds": round(result.seconds, 1),
                      "augment": augment})
        records.write_runoff(study, looks)
        log(f"runoff: trial {trial.number} ({held.arch_str}, {held.params:,} params): val_acc {result.val_acc:.4f} after "
            f"{result.epochs:.1f} epochs ({result.seconds:.0f}s"
            + (f", {result.processes} processes" if result.processes > 1 else "") + "); its search score "
            f"{trial_val_acc(trial):.4f}")
    return looks
