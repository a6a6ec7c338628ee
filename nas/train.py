"""``nas train``: retrain a found architecture from scratch, for longer, and score it.
(The training loop itself is ``nas.trainer``.)

A search trains each candidate briefly; the chosen one deserves a full run: more epochs,
the warm-up + cosine schedule, the final training's augmentation, label smoothing and optionally
knowledge distillation from any TorchScript teacher. The weights and figures are stored in
the study folder (``retrained/trial-N[-kd].pt`` and ``.json``), and ``nas export --weights``
turns them into a TorchScript file.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from nas import datasets, files, records
from nas.storage import load_study
from nas.study_folder import retrained_path, weights_path
from nas.trials import pick_trial, trial_val_acc
from nas.weights import load_trained, trial_spec
from nas.errors import UsageError
from nas.model import Normalized, build, state_bytes
from nas import flags as F
from nas.flags import option
from nas.recipe import TrainingRun
from nas.trusted import run_code
from nas.evaluate import measure_accuracy
from nas.trainer import train


@dataclass(kw_only=True)
class RetrainConfig(TrainingRun):
    trial: int | None = None  # None: the best trial
    DEFAULT_EPOCHS = 30
    epochs: int | None = option(None, F.EPOCHS, "default 30")
    label_smoothing: float = option(0.1, F.LABEL_SMOOTHING)
    augment: str | None = option(None, F.AUGMENT, "default: the search's --augment, else the "
                                 "dataset's long-run one, as a --time search's final training")
    # A study, a trial's weights, an exported file (see load_teacher).
    teacher: str | None = option(None, F.TEACHER)
    trust_code: bool = option(False, F.TRUST_CODE)  # --teacher may be any TorchScript file
    temperature: float = option(4.0, F.TEMPERATURE)
    alpha: float = option(0.5, F.ALPHA)

    def default_augment(self, held: records.StudyRecord, data) -> str:
        # A retrain is a long training, as a --time search's final one is: the same augmentation.
        return datasets.long_augment(held.data.name, held.augment)


TRIAL_WEIGHTS = re.compile(r"trial-(\d+)(?:-[\w.-]+)?\.pt")  # weights/trial-N.pt, retrained/trial-N-kd-2.pt


def trial_of_weights(path: Path) -> int | None:
    """The trial number a weights file of a study is named after (trial-12.pt is not trial 1's)."""
    found = TRIAL_WEIGHTS.fullmatch(path.name)
    return int(found.group(1)) if found else None


def teacher_from_study(path: Path, device: torch.device) -> tuple[torch.nn.Module, str]:
    """A trial of a study as a teacher, built from its spec, its weights loaded as tensors
    only: a study folder means its best trial (its latest nas train weights when it has
    some or a --time search's final training, else the search's); a weights file in a
    study's weights/, retrained/ or final/ means that trial with those weights. (module
    taking [0, 1] images, what it is)"""
    from nas.final import final_path

    study_dir = path if path.is_dir() else path.parent.parent
    study = load_study(study_dir)
    if path.is_dir():
        trial = pick_trial(study, None)
        trained = [*retrained_path(study_dir, trial.number).parent.glob("*.pt"),
                   final_path(study_dir, trial.number)]
        retrained = sorted((p for p in trained if p.is_file() and trial_of_weights(p) == trial.number),
                           key=lambda p: p.stat().st_mtime)
        weights = retrained[-1] if retrained else weights_path(study_dir, trial.number)
    else:
        trial, weights = pick_trial(study, trial_of_weights(path)), path
    _, net = load_trained(study_dir, trial, weights, study)
    info = records.study(study).data
    return (Normalized(net, info.mean, info.std).to(device).eval(),
            f"trial {trial.number} of {study_dir} ({records.trial(trial).arch_str}, weights {weights})")


def teacher_from_baseline(path: Path, data, device: torch.device) -> tuple[torch.nn.Module, str]:
    """A model nas baseline trained and kept in a study's baselines/ (nas.baseline.load_weights),
    taking [0, 1] images."""
    from nas.baseline import load_weights

    study_dir = path.parent.parent
    net, row = load_weights(study_dir, path, data.info)
    info = records.study(load_study(study_dir)).data
    return (Normalized(net, info.mean, info.std).to(device).eval(),
            f"baseline {row['name']} of {study_dir} ({row['model']}, {row['params']:,} params, "
            f"test_acc {row['test_acc']:.4f})")


def teacher_from_code(path: Path, data, device: torch.device) -> torch.nn.Module:
    """--trust-code: any TorchScript classifier, its code run; first on 4 images in a
    time-limited child process (one that never ends fails there, nas.trusted), then here."""
    check = ("import sys, torch; m = torch.jit.load(sys.argv[1], map_location='cpu').eval(); "
             "print(tuple(m(torch.rand(4, *map(int, sys.argv[2:]))).shape))")
    run_code(check, [path, *data.info.input_shape], f"--teacher {str(path)!r}", "4 images",
             failed=f" is not a TorchScript model that takes {data.info.name} images")
    with warnings.catch_warnings():  # TorchScript's deprecation notice
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path), map_location=device).eval()


def load_teacher(given: str, data, device: torch.device, trust_code: bool = False
                 ) -> tuple[torch.nn.Module, str]:
    """The --teacher: a study or a trial's weights (built by nas), a file nas export wrote
    (built from its sidecar's spec, the file's tensors read as data), or, with --trust-code,
    any TorchScript classifier taking [0, 1] images. Checked on real images before any
    training starts. (the module, what it is)"""
    from nas.exported import load_model, sidecar_path

    path = Path(given)
    if path.is_dir() or (path.is_file() and path.parent.name in ("weights", "retrained", "final")
                         and trial_of_weights(path) is not None):
        teacher, what = teacher_from_study(path, device)
    elif path.is_file() and path.parent.name == "baselines":
        teacher, what = teacher_from_baseline(path, data, device)
    elif path.is_file() and sidecar_path(path).is_file() and not trust_code:
        meta, net = load_model(path)
        teacher, what = net.to(device), f"{given} ({meta['arch']}, from {sidecar_path(path).name})"
    elif path.is_file() and trust_code:
        teacher, what = teacher_from_code(path, data, device), f"{given} (its own code, --trust-code)"
    elif path.is_file():
        raise UsageError(f"--teacher {given!r} is not a study, a trial's weights or a file nas "
                         f"export wrote (no {sidecar_path(path).name}); running a TorchScript "
                         f"file's code can do anything you can: if you trust it, add --trust-code")
    else:
        raise UsageError(f"--teacher {given!r} not found")
    sample = data.train_x[:4].to(device).float() / 255
    try:
        with torch.no_grad():
            out = teacher(sample)
    except RuntimeError as exc:
        raise UsageError(f"--teacher {given!r} does not take {data.info.name} images "
                         f"{tuple(sample.shape[1:])}: {str(exc).splitlines()[0]}") from None
    if out.shape != (len(sample), data.info.num_classes):
        raise UsageError(f"--teacher {given!r} gives outputs of shape {tuple(out.shape[1:])}; "
                         f"{data.info.name} has {data.info.num_classes} classes")
    return teacher, what


def retrain(cfg: RetrainConfig, log=print) -> dict:
    study_dir = Path(cfg.study_dir)
    study, data, device = cfg.load()
    trial = pick_trial(study, cfg.trial)
    spec = trial_spec(trial, study)
    teacher, teacher_what = (load_teacher(cfg.teacher, data, device, cfg.trust_code) if cfg.teacher
                             else (None, None))
    tag = "kd" if teacher is not None else ""
    torch.manual_seed(cfg.seed)
    model = build(spec).to(device)
    held = records.trial(trial)
    log(f"retraining trial {trial.number} ({held.arch_str}, {held.params:,} params) from scratch: {cfg.length()} on "
        f"{len(data.train_x):,} {data.info.name} images, {device}, augment "
        f"{cfg.augment}, label smoothing {cfg.label_smoothing}"
        + (f", mixup {cfg.mixup}" if cfg.mixup else "")
        + (f", distilling from {teacher_what} (T={cfg.temperature}, alpha={cfg.alpha})" if teacher else ""))
    start = time.perf_counter()

    result = train(model, data, cfg.train_config(
        data, teacher=teacher, kd_temperature=cfg.temperature, kd_alpha=cfg.alpha),
                   lambda report, acc: log(cfg.report_line(report, acc, start)))
    test_acc = measure_accuracy(model, data.test_x, data.test_y, data.info)  # fp32, as exported models run

    figures = {"trial": trial.number, "arch": held.arch_str, "params": held.params, "epochs": round(result.epochs, 2),
               "time_limit": cfg.time,
               "val_acc": result.val_acc, "test_acc": test_acc, "search_val_acc": trial_val_acc(trial),
               "history": result.history, "train_time": round(result.seconds, 2),
               "label_smoothing": cfg.label_smoothing, "mixup": cfg.mixup, "augment": cfg.augment,
               "teacher": str(Path(cfg.teacher).resolve()) if cfg.teacher else None,
               "temperature": cfg.temperature if teacher else None,
               "alpha": cfg.alpha if teacher else None, "device": str(device),
               "batch_size": result.batch_size, "lr": result.lr, "seed": cfg.seed,
               "processes": result.processes}
    path = save_retrained(study_dir, trial.number, tag, model, figures)
    figures["weights"] = str(path)
    first = retrained_path(study_dir, trial.number, tag)
    figures["earlier"] = str(first) if path != first else None  # kept as it was
    return figures


# The figures of a nas train run other commands rely on, by type (the .json may be edited).
RETRAIN_FIGURES = {"trial": int, "params": int, "test_acc": float, "epochs": (int, float),
                   "augment": str, "label_smoothing": (int, float)}


def retrain_names(first: Path):
    """The names retrains of one trial take, in order: trial-N.pt, trial-N-2.pt, ..."""
    yield first
    for n in itertools.count(2):
        yield first.with_name(f"{first.stem}-{n}.pt")


def latest_retrain(study_dir: Path, number: int) -> dict | None:
    """The figures of trial ``number``'s latest nas train run without a teacher
    (retrained/trial-N.json, trial-N-2.json, ...), with "weights" added; None when it has
    none, or its .json is not one nas train writes."""
    latest = None
    for path in retrain_names(retrained_path(study_dir, number)):
        if not path.exists() and not path.with_suffix(".json").exists():
            break  # names are claimed in order (save_retrained): none after a free one
        try:
            figures = json.loads(path.with_suffix(".json").read_text())
        except (OSError, ValueError):
            continue  # a run stopped between its weights and its figures
        if (isinstance(figures, dict) and figures.get("trial") == number and path.is_file()
                and all(isinstance(figures.get(k), kind) and not isinstance(figures.get(k), bool)
                        for k, kind in RETRAIN_FIGURES.items())):
            latest = {**figures, "weights": str(path)}
    return latest


def save_retrained(study_dir: Path, number: int, tag: str, model: torch.nn.Module,
                   figures: dict) -> Path:
    """retrained/trial-N[-kd].pt and its .json; an earlier retrain is never replaced: this
    one takes the next free name (trial-N-2.pt, ...), claimed without overwriting, so two
    retrains at once cannot take the same one either."""
    first = retrained_path(study_dir, number, tag)
    first.parent.mkdir(parents=True, exist_ok=True)
    data = state_bytes(model)
    for path in retrain_names(first):
        if not path.with_suffix(".json").exists() and files.write_new(path, data):
            files.write_json(path.with_suffix(".json"), figures)
            return path
