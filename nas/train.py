"""``nas train``: retrain a found architecture from scratch, for longer, and score it.
(The training loop itself is ``nas.trainer``.)

A search trains each candidate briefly; the chosen one deserves a full run: more epochs,
the warm-up + cosine schedule, the dataset's augmentation, label smoothing and optionally
knowledge distillation from any TorchScript teacher. The weights and figures are stored in
the study folder (``retrained/trial-N[-kd].pt`` and ``.json``), and ``nas export --weights``
turns them into a TorchScript file.
"""

from __future__ import annotations

import warnings
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from nas import files, store
from nas.arch import ArchSpec
from nas.errors import UsageError
from nas.model import build
from nas.recipe import TrainingRun
from nas.evaluate import measure_accuracy
from nas.trainer import train


@dataclass(kw_only=True)
class RetrainConfig(TrainingRun):
    trial: int | None = None  # None: the best trial
    epochs: int = 30
    label_smoothing: float = 0.1
    teacher: str | None = None  # TorchScript file
    temperature: float = 4.0
    alpha: float = 0.5

    def validate(self) -> None:
        super().validate()
        if not 0 <= self.alpha <= 1:
            raise UsageError(f"--alpha must be in [0, 1], got {self.alpha}")
        if not self.temperature > 0:
            raise UsageError(f"--temperature must be > 0, got {self.temperature}")


def load_teacher(path: str, data, device: torch.device) -> torch.nn.Module:
    """A TorchScript classifier taking [0, 1] images of the dataset's shape (what `nas
    export` writes); checked on real images before any training starts."""
    try:
        with warnings.catch_warnings():  # TorchScript's deprecation notice
            warnings.simplefilter("ignore", FutureWarning)
            teacher = torch.jit.load(path, map_location=device).eval()
    except (RuntimeError, ValueError, OSError) as exc:
        raise UsageError(f"--teacher {path!r} is not a TorchScript file: {str(exc).splitlines()[0]}") from None
    sample = data.train_x[:4].to(device).float() / 255
    try:
        with torch.no_grad():
            out = teacher(sample)
    except RuntimeError as exc:
        raise UsageError(f"--teacher {path!r} does not take {data.info.name} images "
                         f"{tuple(sample.shape[1:])}: {str(exc).splitlines()[0]}") from None
    if out.shape != (len(sample), data.info.num_classes):
        raise UsageError(f"--teacher {path!r} gives outputs of shape {tuple(out.shape[1:])}; "
                         f"{data.info.name} has {data.info.num_classes} classes")
    return teacher


def retrain(cfg: RetrainConfig, log=print) -> dict:
    study_dir = Path(cfg.study_dir)
    study, data, device = cfg.load()
    trial = store.pick_trial(study, cfg.trial)
    teacher = load_teacher(cfg.teacher, data, device) if cfg.teacher else None
    tag = "kd" if teacher is not None else ""
    spec = ArchSpec.from_dict(trial.user_attrs["arch"])
    torch.manual_seed(cfg.seed)
    model = build(spec).to(device)
    log(f"retraining trial {trial.number} ({trial.user_attrs['arch_str']}, "
        f"{trial.user_attrs['params']:,} params) from scratch: {cfg.epochs} epochs on "
        f"{len(data.train_x):,} {data.info.name} images, {device}, augment "
        f"{cfg.augment}, label smoothing {cfg.label_smoothing}"
        + (f", distilling from {cfg.teacher} (T={cfg.temperature}, alpha={cfg.alpha})" if teacher else ""))
    start = time.perf_counter()

    def on_epoch(epoch: int, val_acc: float) -> None:
        log(f"  epoch {epoch:>3}/{cfg.epochs}  val_acc {val_acc:.4f}  "
            f"{time.perf_counter() - start:7.1f}s")

    result = train(model, data, cfg.train_config(
        teacher=teacher, kd_temperature=cfg.temperature, kd_alpha=cfg.alpha), on_epoch)
    test_acc = measure_accuracy(model, data.test_x, data.test_y, data.info)  # fp32, as exported models run

    path = store.retrained_path(study_dir, trial.number, tag)
    path.parent.mkdir(parents=True, exist_ok=True)
    with files.replacing(path) as tmp:
        torch.save(model.state_dict(), tmp)
    figures = {"trial": trial.number, "arch": trial.user_attrs["arch_str"],
               "params": trial.user_attrs["params"], "epochs": cfg.epochs,
               "val_acc": result.val_acc, "test_acc": test_acc, "search_val_acc": store.trial_val_acc(trial),
               "history": result.history, "train_time": round(result.seconds, 2),
               "label_smoothing": cfg.label_smoothing, "augment": cfg.augment,
               "teacher": str(Path(cfg.teacher).resolve()) if cfg.teacher else None,
               "temperature": cfg.temperature if teacher else None,
               "alpha": cfg.alpha if teacher else None, "device": str(device),
               "batch_size": result.batch_size, "lr": result.lr, "seed": cfg.seed}
    files.write_json(path.with_suffix(".json"), figures)
    figures["weights"] = str(path)
    return figures
