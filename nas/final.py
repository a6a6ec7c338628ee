"""The final training of a --time search: the chosen net, from scratch, on every training
image (the validation split too: choosing is done), with the retrain recipe, until the
time is up; its weights saved, loaded back and scored on the test split.

The study records where it stands in its ``final`` user attribute, so `nas export --best`
writes this model, `nas pareto` says which weights each figure belongs to, and a search
stopped during the final training trains it again when the same command is run again.
Only the trial number is taken from the study: the weights' path is made from it, inside
the study folder.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import optuna
import torch

from nas import files, store
from nas.errors import UsageError
from nas.evaluate import measure_accuracy
from nas.model import build, state_bytes
from nas.trainer import EPOCH_CAP, TrainConfig, train

FINAL_ATTR = "final"
LABEL_SMOOTHING = 0.1  # the retrain recipe's (nas train's default)


def final_path(study_dir: str | Path, number: int) -> Path:
    return Path(study_dir) / "final" / f"trial-{number}-final.pt"


# What a completed record holds, by type (summary() prints them).
FIGURES = {"params": int, "test_acc": (int, float), "epochs": (int, float), "train_images": int,
           "train_time": (int, float), "augment": str}


def record(study: optuna.Study) -> dict | None:
    """The study's final-training record, checked (a journal may be edited or planted):
    {"state": "training" | "done", "trial": N, ...figures when done}, or None."""
    held = study.user_attrs.get(FINAL_ATTR)
    if held is None:
        return None
    number = held.get("trial") if isinstance(held, dict) else None
    figures = FIGURES if isinstance(held, dict) and held.get("state") == "done" else {}
    if (isinstance(number, bool) or not isinstance(number, int)
            or held.get("state") not in ("training", "done")
            or any(isinstance(held.get(k), bool) or not isinstance(held.get(k), kind)
                   for k, kind in figures.items())):
        raise UsageError(f"study {study.study_name!r}: its {FINAL_ATTR!r} record {held!r} is not "
                         f"one nas writes; the study was edited or damaged")
    return held


def done(study: optuna.Study, study_dir: str | Path) -> tuple[optuna.trial.FrozenTrial, Path] | None:
    """(trial, weights) of the study's completed final training, or None."""
    held = record(study)
    if held is None or held["state"] != "done":
        return None
    path = final_path(study_dir, held["trial"])
    if not path.is_file():
        raise UsageError(f"study {study.study_name!r} records a final training of trial "
                         f"{held['trial']}, but {path} is missing; pass --weights search for the "
                         f"search's weights, or run the search again with --study NAME")
    return store.pick_trial(study, held["trial"]), path


def train_final(study: optuna.Study, study_dir: Path, data, device: torch.device,
                augment: str, until: float, log=print) -> dict:
    """Train the study's best trial until ``until`` (time.time()), as the module says."""
    trial = store.pick_trial(study, None)  # the runoff's winner, when a runoff ran
    spec = store.trial_spec(trial, study)
    look = next((held for held in store.runoff_looks(study) if held["trial"] == trial.number), None)
    study.set_user_attr(FINAL_ATTR, {"state": "training", "trial": trial.number,
                                     "host": platform.node(), "pid": os.getpid()})
    every = replace(data, train_x=torch.cat([data.train_x, data.val_x]),
                    train_y=torch.cat([data.train_y, data.val_y]))
    seconds = until - time.time()
    log(f"final training: trial {trial.number}{' (the runoff winner)' if look else ''} "
        f"({trial.user_attrs['arch_str']}, "
        f"{trial.user_attrs['params']:,} params) from scratch on all {len(every.train_x):,} "
        f"training images for {seconds:.0f}s, augment {augment}, label smoothing {LABEL_SMOOTHING}")
    torch.manual_seed(trial.number)
    model = build(spec).to(device)
    cfg = TrainConfig(EPOCH_CAP, augment=augment, label_smoothing=LABEL_SMOOTHING,
                      time_limit=seconds, time_reports=0, after_images=len(data.test_x))
    result = train(model, every, cfg)
    path = final_path(study_dir, trial.number)
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_bytes(path, state_bytes(model))
    # Scored as saved: the file loaded back (tensors only, shapes checked) into a new net.
    _, saved = store.load_trained(study_dir, trial, path, study)
    test_acc = measure_accuracy(saved.to(device), data.test_x, data.test_y, data.info)
    figures = {"state": "done", "trial": trial.number, "arch": trial.user_attrs["arch_str"],
               "params": trial.user_attrs["params"], "test_acc": test_acc,
               "search_val_acc": store.trial_val_acc(trial),
               "runoff_val_acc": look["val_acc"] if look else None,
               "val_acc": None,  # the validation split was trained on
               "epochs": round(result.epochs, 2), "train_images": len(every.train_x),
               "train_time": round(result.seconds, 2), "augment": augment,
               "label_smoothing": LABEL_SMOOTHING, "batch_size": result.batch_size,
               "lr": result.lr, "device": str(device)}
    files.write_json(path.with_suffix(".json"), figures)
    study.set_user_attr(FINAL_ATTR, figures)
    return {**figures, "weights": str(path)}


def summary(held: dict) -> str:
    """One line on the final-trained model, for the search's and nas pareto's output."""
    if held["state"] != "done":
        return (f"final training of trial {held['trial']} did not finish: run the same "
                f"nas search command again to train it")
    return (f"final-trained: trial {held['trial']}, {held['params']:,} params, test_acc "
            f"{held['test_acc']:.4f} after {held['epochs']:g} epochs on all "
            f"{held['train_images']:,} training images ({held['train_time']:.0f}s, augment "
            f"{held['augment']}); the table's figures are the search's weights")
