"""A study folder's layout: what lives where, and the small files nas keeps there.

    runs/<study>/study.json          the study's name and Optuna storage URL
    runs/<study>/journal.log         the default storage: Optuna's journal file, safe for
                                     several worker processes; optuna-dashboard opens it
    runs/<study>/weights/trial-N.pt  trained weights of each completed trial
    runs/<study>/pareto.{csv,json,png}, test_acc.json
    runs/<study>/retrained/trial-N[-kd].pt  nas train's weights, figures beside as .json
    runs/<study>/final/trial-N-final.pt     a --time search's final training (nas.final)
    runs/<study>/baselines.json      nas baseline's reference models
    runs/<study>/baselines/*.pt      their weights (nas.baseline.weights_name)

The Optuna study holds everything else, as nas.records defines (opened by nas.storage).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from nas import files, urls
from nas.errors import UsageError

STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_study_name(name: str) -> str:
    if not STUDY_NAME.fullmatch(name):  # match() would let "abc\n" through ($ before a newline)
        raise UsageError(f"bad study name {name!r}: use letters, digits, '.', '_' and '-' "
                         f"(it names a folder under the runs dir)")
    return name


def default_storage(study_dir: Path) -> str:
    # Not resolved: a journal.log planted as a symlink must show as one (study_storage).
    return os.path.abspath(Path(study_dir) / "journal.log")


def make_study_dir(study_dir: Path) -> None:
    """The study folder, created if need be and checked writable: a search writes its
    journal lock, weights and front there, and must fail before it trains, not after."""
    try:
        study_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create study folder {str(study_dir)!r}: {exc.strerror}; "
                         f"pass a writable --runs-dir") from None
    probe = files.temporary_name(study_dir / "probe")
    try:
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"cannot write in study folder {str(study_dir)!r}: {exc.strerror}; a "
                         f"search adds to it: pass a writable --runs-dir (or copy the folder)") from None


def write_pointer(study_dir: Path, study_name: str, storage: str) -> None:
    """study.json: the study's name and storage; a journal inside the folder by its name
    (so a copied folder reads its own copy), a database without its password."""
    make_study_dir(study_dir)
    stored = urls.remembered(storage)
    if "://" not in stored and Path(stored).parent.resolve() == study_dir.resolve():
        stored = Path(stored).name
    files.write_json(study_dir / "study.json", {"study_name": study_name, "storage": stored})


def read_pointer(study_dir: str | Path) -> dict:
    """{"study_name", "storage"} of a study folder as study.json says, the storage made
    usable from any folder (a journal path is relative to the study folder)."""
    pointer = Path(study_dir) / "study.json"
    if not pointer.is_file():
        raise UsageError(f"{study_dir} is not a study folder (no study.json); give the folder "
                         f"that `nas search` wrote, e.g. runs/mnist-50k")
    try:
        meta = json.loads(pointer.read_text())
        name, storage = str(meta["study_name"]), str(meta["storage"])
    except (OSError, ValueError, KeyError, TypeError):
        raise UsageError(f"{pointer} is damaged: expected {{\"study_name\": ..., \"storage\": ...}}") from None
    if "://" not in storage:  # a journal: relative to the study folder (symlinks kept, so
        storage = os.path.abspath(Path(study_dir) / storage)  # study_storage sees them)
    return {"study_name": name, "storage": storage}


def inside(file: Path, folder: Path) -> bool:
    """Whether ``file``, symlinks followed, lies in ``folder``."""
    return file.resolve().is_relative_to(folder.resolve())


def weights_path(study_dir: Path, number: int) -> Path:
    return Path(study_dir) / "weights" / f"trial-{number}.pt"


def retrained_path(study_dir: Path, number: int, tag: str = "") -> Path:
    """Weights of ``nas train`` (tag "kd" when distilled); a .json beside holds its figures."""
    return Path(study_dir) / "retrained" / f"trial-{number}{'-' + tag if tag else ''}.pt"


BASELINE_FIELDS = {"name": str, "model": str, "params": int, "macs": int, "val_acc": float,
                   "test_acc": float, "epochs": float}  # a --time run may end inside an epoch


def read_baselines(study_dir: str | Path) -> list[dict]:
    """The reference models ``nas baseline`` trained on this study's data, each row checked."""
    path = Path(study_dir) / "baselines.json"
    if not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} is damaged ({exc}); delete it, or run nas baseline again") from None
    if not isinstance(rows, list):
        raise UsageError(f"{path} is damaged: expected a list of baseline rows, got "
                         f"{type(rows).__name__}; delete it, or run nas baseline again")
    for i, row in enumerate(rows):
        bad = ([] if isinstance(row, dict) else ["the row"]) or [
            key for key, kind in BASELINE_FIELDS.items()
            if isinstance(row.get(key), bool) or not isinstance(row.get(key), (int, float) if kind is float else kind)]
        if bad:
            raise UsageError(f"{path}, row {i + 1}: {bad[0]} is missing or of the wrong type "
                             f"(a row holds {', '.join(BASELINE_FIELDS)}); delete the file, or run "
                             f"nas baseline again")
    return rows


def write_baselines(study_dir: str | Path, rows: list[dict]) -> None:
    files.write_json(Path(study_dir) / "baselines.json", rows)
