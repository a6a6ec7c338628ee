"""Where a study's results live, and how to get them back.

    runs/<study>/study.json          the study's name and Optuna storage URL
    runs/<study>/journal.log         the default storage: Optuna's journal file, safe for
                                     several worker processes; optuna-dashboard opens it
    runs/<study>/weights/trial-N.pt  trained weights of each completed trial
    runs/<study>/pareto.{csv,json,png}, test_acc.json
    runs/<study>/retrained/trial-N[-kd].pt  nas train's weights, figures beside as .json
    runs/<study>/baselines.json      nas baseline's reference models
    runs/<study>/baselines/*.pt      their weights (nas.baseline.weights_name)

The Optuna study holds everything else: config, seed and versions (study user attrs) and,
per trial, the architecture spec, counts, accuracy and timing (trial user attrs).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import optuna
import torch

from nas import files, urls
from nas.arch import ArchSpec, SpecError
from nas.budget import count_params
from nas.data import Data, load, resolve_data_dir
from nas.errors import DataError, UsageError, check_int
from nas.model import build, shape_difference, state_shapes
from nas.storage import open_storage

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


def is_own_storage(url: str, study_dir: str | Path) -> bool:
    """Whether a storage is the study folder's own file (a journal or SQLite file in it)."""
    file = urls.file_of(url)
    return file is not None and inside(file, Path(study_dir))


def study_storage(study_dir: str | Path, storage: str | None = None) -> dict:
    """The study a folder names and the storage to open it in. A study folder may come from
    someone else, so what its study.json names is used only when it is the folder's own file
    (a journal or SQLite database inside it); any other storage (a file elsewhere, a database
    server) only when the user names it themselves (``storage``, i.e. --storage)."""
    meta = read_pointer(study_dir)
    if storage is not None:
        return {**meta, "storage": urls.absolute(storage)}
    file = urls.file_of(meta["storage"])
    if not is_own_storage(meta["storage"], study_dir):
        where = ("a database server" if file is None else
                 "a symlink out of the folder" if file.is_symlink() else "a file outside the folder")
        raise UsageError(f"{Path(study_dir) / 'study.json'} names {where} as its storage "
                         f"({urls.shown(meta['storage'])!r}); nas opens a storage outside the "
                         f"study folder only when you name it: add --storage "
                         f"{urls.shown(meta['storage'])!r}")
    return meta


def matching_storage(study_dir: str | Path, given: list[str] | None) -> str | None:
    """Of the storages a user named (--storage, once per study), the one this folder's
    study.json names (compared without passwords), else None."""
    stored = read_pointer(study_dir)["storage"]
    return next((url for url in given or () if urls.remembered(urls.absolute(url)) == stored), None)


def load_study(study_dir: str | Path, storage: str | None = None) -> optuna.Study:
    """Open a study folder's study to read it (``storage``: --storage, see study_storage).
    Never creates, locks, repairs or adds tables to a storage."""
    meta = study_storage(study_dir, storage)
    file = urls.file_of(meta["storage"])
    if file is not None and not file.is_file():
        raise UsageError(f"{study_dir}: its storage {file} is missing (study.json points there)")
    try:
        return optuna.load_study(study_name=meta["study_name"],
                                 storage=open_storage(meta["storage"], read_only=True))
    except KeyError:
        raise UsageError(f"study {meta['study_name']!r} not found in {urls.shown(meta['storage'])}") from None


def weights_path(study_dir: Path, number: int) -> Path:
    return Path(study_dir) / "weights" / f"trial-{number}.pt"


def completed_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Completed trials that carry an architecture (i.e. were trained by nas)."""
    return [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if "arch" in t.user_attrs]


def trial_val_acc(trial: optuna.trial.FrozenTrial) -> float | None:
    """Validation accuracy of a finished trial: its value, or its first value in a
    multi-objective (--objective pareto) study; None when it has none."""
    return trial.values[0] if trial.values else None


def search_rank(trial: optuna.trial.FrozenTrial) -> tuple:
    """How the search ranks its completed trials: validation accuracy, then the smaller net."""
    return trial_val_acc(trial), -trial.user_attrs["params"]


RUNOFF_ATTR = "runoff"  # nas.runoff's looks: [{"trial": N, "val_acc": A, ...}, ...]


def runoff_looks(study: optuna.Study) -> list[dict]:
    """The runoff's looks the study holds (nas.runoff), checked: a journal may be edited."""
    looks = study.user_attrs.get(RUNOFF_ATTR, [])
    if not isinstance(looks, list) or not all(
            isinstance(held, dict) and type(held.get("trial")) is int
            and type(held.get("val_acc")) in (int, float) for held in looks):
        raise UsageError(f"study {study.study_name!r}: its {RUNOFF_ATTR!r} record is not one nas "
                         f"writes; the study was edited or damaged")
    return looks


def pick_trial(study: optuna.Study, number: int | None) -> optuna.trial.FrozenTrial:
    """Trial ``number``, or the best: the runoff's winner when a runoff ran (nas.runoff),
    else the completed trial with the best validation accuracy."""
    done = completed_trials(study)
    if not done:
        raise UsageError(f"study {study.study_name!r} has no completed trial yet; run "
                         f"`nas search` first (or wait for a trial to finish)")
    if number is None:
        if looks := runoff_looks(study):
            number = max(looks, key=lambda held: held["val_acc"])["trial"]
        else:
            return max(done, key=search_rank)
    for trial in done:
        if trial.number == number:
            return trial
    valid = ", ".join(str(t.number) for t in done[:20])
    raise UsageError(f"trial {number} is not a completed trial of study {study.study_name!r}; "
                     f"completed: {valid}{' ...' if len(done) > 20 else ''}")


def retrained_path(study_dir: Path, number: int, tag: str = "") -> Path:
    """Weights of ``nas train`` (tag "kd" when distilled); a .json beside holds its figures."""
    return Path(study_dir) / "retrained" / f"trial-{number}{'-' + tag if tag else ''}.pt"


def trial_spec(trial: optuna.trial.FrozenTrial, study: optuna.Study | None = None) -> ArchSpec:
    """A trial's stored architecture, checked before anything is built from it (a journal
    may be edited or planted): one nas can build, with the params the trial recorded, within
    the study's budget."""
    try:
        spec = ArchSpec.from_dict(trial.user_attrs["arch"])
        params = count_params(spec)
    except (SpecError, KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"trial {trial.number}: its stored architecture is not one nas can build "
                         f"({str(exc)[:200]}); the study was edited or damaged") from None
    stored = trial.user_attrs.get("params")
    if stored != params:
        raise UsageError(f"trial {trial.number}: its architecture has {params:,} params but the trial "
                         f"records {stored!r}; the study was edited or damaged")
    budget = study.user_attrs.get("config", {}).get("budget") if study is not None else None
    if budget is not None:
        try:
            check_int("budget", budget)
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


RECORDED = "recorded"  # load_study_data: the --limit-train the search used


def load_study_data(study: optuna.Study, data_dir=None, limit_train=RECORDED) -> Data | None:
    """The study's dataset: from --data-dir, else $NAS_DATA_DIR, else the folder the search
    used; with the search's --limit-train unless told otherwise. None when not found."""
    recorded = study.user_attrs.get("data", {})
    data_dir = resolve_data_dir(data_dir, fallback=recorded.get("dir", "data"))
    if limit_train == RECORDED:
        limit_train = recorded.get("limit_train")
    try:
        return load(recorded.get("name", "mnist"), data_dir, False, limit_train,
                    recorded.get("image_size"), recorded.get("grayscale", False))
    except DataError:
        return None


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
