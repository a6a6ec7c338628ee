"""The final training of a --time search: the chosen net, from scratch, on every training
image (the validation split too: choosing is done), with the retrain recipe, until the
time is up; its weights saved, loaded back and scored on the test split.

The study records where it stands (nas.records.FinalRecord), so `nas export --best`
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

from nas import files, records
from nas.trials import pick_trial, trial_val_acc
from nas.weights import load_trained, trial_spec
from nas.errors import UsageError
from nas.evaluate import measure_accuracy
from nas.model import build, state_bytes
from nas.schedule import EPOCH_CAP
from nas.trainer import TrainConfig, train

LABEL_SMOOTHING = 0.1  # the retrain recipe's (nas train's default)


def final_path(study_dir: str | Path, number: int) -> Path:
    return Path(study_dir) / "final" / f"trial-{number}-final.pt"


def done(study: optuna.Study, study_dir: str | Path) -> tuple[optuna.trial.FrozenTrial, Path] | None:
    """(trial, weights) of the study's completed final training, or None."""
    held = records.final(study)
    if held is None or held["state"] != "done":
        return None
    path = final_path(study_dir, held["trial"])
    if not path.is_file():
        raise UsageError(f"study {study.study_name!r} records a final training of trial "
                         f"{held['trial']}, but {path} is missing; pass --weights search for the "
                         f"search's weights, or run the search again with --study NAME")
    return pick_trial(study, held["trial"]), path


def train_final(study: optuna.Study, study_dir: Path, data, device: torch.device,
                augment: str, until: float, log=print) -> dict:
    """Train the study's best trial until ``until`` (time.time()), as the module says."""
    trial = pick_trial(study, None)  # the runoff's winner, when a runoff ran
    spec = trial_spec(trial, study)
    held = records.trial(trial)
    look = next((look for look in records.runoff(study) if look["trial"] == trial.number), None)
    records.write_final(study, {"state": "training", "trial": trial.number,
                                "host": platform.node(), "pid": os.getpid()})
    every = replace(data, train_x=torch.cat([data.train_x, data.val_x]),
                    train_y=torch.cat([data.train_y, data.val_y]))
    seconds = until - time.time()
    log(f"final training: trial {trial.number}{' (the runoff winner)' if look else ''} "
        f"({held.arch_str}, {held.params:,} params) from scratch on all {len(every.train_x):,} "
        f"training images for {seconds:.0f}s, augment {augment}, label smoothing {LABEL_SMOOTHING}")
    torch.manual_seed(trial.number)
    model = build(spec).to(device)
    cfg = TrainConfig(EPOCH_CAP, augment=augment, label_smoothing=LABEL_SMOOTHING,
                      time_limit=seconds, time_reports=0, after_images=len(data.test_x), processes=0)
    result = train(model, every, cfg)
    path = final_path(study_dir, trial.number)
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_bytes(path, state_bytes(model))
    # Scored as saved: the file loaded back (tensors only, shapes checked) into a new net.
    _, saved = load_trained(study_dir, trial, path, study)
    test_acc = measure_accuracy(saved.to(device), data.test_x, data.test_y, data.info)
    figures: records.FinalRecord = {
               "state": "done", "trial": trial.number, "arch": held.arch_str,
               "params": held.params, "test_acc": test_acc,
               "search_val_acc": trial_val_acc(trial),
               "runoff_val_acc": look["val_acc"] if look else None,
               "val_acc": None,  # the validation split was trained on
               "epochs": round(result.epochs, 2), "train_images": len(every.train_x),
               "train_time": round(result.seconds, 2), "augment": augment,
               "label_smoothing": LABEL_SMOOTHING, "batch_size": result.batch_size,
               "lr": result.lr, "device": str(device), "processes": result.processes}
    files.write_json(path.with_suffix(".json"), figures)
    records.write_final(study, figures)
    return {**figures, "weights": str(path)}


def summary(held: records.FinalRecord) -> str:
    """One line on the final-trained model, for the search's and nas pareto's output."""
    if held["state"] != "done":
        return (f"final training of trial {held['trial']} did not finish: run the same "
                f"nas search command again to train it")
    return (f"final-trained: trial {held['trial']}, {held['params']:,} params, test_acc "
            f"{held['test_acc']:.4f} after {held['epochs']:g} epochs on all "
            f"{held['train_images']:,} training images ({held['train_time']:.0f}s"
            + (f", {held['processes']} processes" if type(held.get("processes")) is int
               and held["processes"] > 1 else "")
            + f", augment {held['augment']}); the table's figures are the search's weights")
