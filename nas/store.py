"""Where a study's results live, and how to get them back.

    runs/<study>/study.json          the study's name and Optuna storage URL
    runs/<study>/journal.log         the default storage: Optuna's journal file, safe for
                                     several worker processes; optuna-dashboard opens it
    runs/<study>/weights/trial-N.pt  trained weights of each completed trial
    runs/<study>/pareto.{csv,json,png}, test_acc.json
    runs/<study>/retrained/trial-N[-kd].pt  nas train's weights, figures beside as .json
    runs/<study>/baselines.json      nas baseline's reference models

The Optuna study holds everything else: config, seed and versions (study user attrs) and,
per trial, the architecture spec, counts, accuracy and timing (trial user attrs).
"""

from __future__ import annotations

import json
import re
import time
import warnings
from pathlib import Path

import optuna
import torch

from nas import files, journal, urls
from nas.arch import ArchSpec
from nas.data import Data, load, resolve_data_dir
from nas.errors import DataError, UsageError
from nas.model import build

STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_study_name(name: str) -> str:
    if not STUDY_NAME.fullmatch(name):  # match() would let "abc\n" through ($ before a newline)
        raise UsageError(f"bad study name {name!r}: use letters, digits, '.', '_' and '-' "
                         f"(it names a folder under the runs dir)")
    return name


def default_storage(study_dir: Path) -> str:
    return str((study_dir / "journal.log").resolve())


def open_storage(url: str):
    """A URL with '://' is a database (SQLite, PostgreSQL, MySQL, ...); anything else is the
    path of an Optuna journal file (created when missing)."""
    try:
        if "://" not in url:
            journal.repair(url)
            backend = optuna.storages.journal.JournalFileBackend(url, lock_obj=journal.open_lock(url))
            return optuna.storages.JournalStorage(backend)
        return _open_database(url)
    except UsageError:
        raise
    except Exception as exc:  # bad URL, unreachable server, missing driver, unwritable file
        hint = ("; install the PostgreSQL driver: pip install -e \".[postgres]\""
                if isinstance(exc, ImportError) and url.startswith("postgresql") else "")
        if "password" in str(exc) and urls.remembered(url) == url:
            hint = "; give the password in $PGPASSWORD or ~/.pgpass (study.json keeps none)"
        raise UsageError(f"cannot open storage {urls.shown(url)!r}: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}{hint}") from None


def _open_database(url: str, attempts: int = 5):
    import sqlalchemy.exc

    # A generous lock timeout: several workers may write to one SQLite file.
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite:") else {}
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # Several machines starting on an empty database all create Optuna's tables;
            # all but one then collide ("duplicate key", "already exists"). Once the
            # tables are there, opening it again works.
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))


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
    if "://" not in stored and Path(stored).parent == study_dir.resolve():
        stored = Path(stored).name
    files.write_json(study_dir / "study.json", {"study_name": study_name, "storage": stored})


def read_pointer(study_dir: str | Path) -> dict:
    """{"study_name", "storage"} of a study folder, the storage usable from any folder."""
    pointer = Path(study_dir) / "study.json"
    if not pointer.is_file():
        raise UsageError(f"{study_dir} is not a study folder (no study.json); give the folder "
                         f"that `nas search` wrote, e.g. runs/mnist-50k")
    try:
        meta = json.loads(pointer.read_text())
        name, storage = str(meta["study_name"]), str(meta["storage"])
    except (OSError, ValueError, KeyError, TypeError):
        raise UsageError(f"{pointer} is damaged: expected {{\"study_name\": ..., \"storage\": ...}}") from None
    if "://" not in storage:  # a journal: relative to the study folder
        storage = str((Path(study_dir) / storage).resolve())
    return {"study_name": name, "storage": storage}


def load_study(study_dir: str | Path) -> optuna.Study:
    """Open a study folder's study; never creates a storage (a missing file is an error)."""
    meta = read_pointer(study_dir)
    file = urls.file_of(meta["storage"])
    if file is not None and not file.is_file():
        raise UsageError(f"{study_dir}: its storage {file} is missing (study.json points there)")
    try:
        return optuna.load_study(study_name=meta["study_name"], storage=open_storage(meta["storage"]))
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


def pick_trial(study: optuna.Study, number: int | None) -> optuna.trial.FrozenTrial:
    """Trial ``number``, or the completed trial with the best validation accuracy."""
    done = completed_trials(study)
    if not done:
        raise UsageError(f"study {study.study_name!r} has no completed trial yet; run "
                         f"`nas search` first (or wait for a trial to finish)")
    if number is None:
        return max(done, key=lambda t: (trial_val_acc(t), -t.user_attrs["params"]))
    for trial in done:
        if trial.number == number:
            return trial
    valid = ", ".join(str(t.number) for t in done[:20])
    raise UsageError(f"trial {number} is not a completed trial of study {study.study_name!r}; "
                     f"completed: {valid}{' ...' if len(done) > 20 else ''}")


def retrained_path(study_dir: Path, number: int, tag: str = "") -> Path:
    """Weights of ``nas train`` (tag "kd" when distilled); a .json beside holds its figures."""
    return Path(study_dir) / "retrained" / f"trial-{number}{'-' + tag if tag else ''}.pt"


def load_trained(study_dir: Path, trial: optuna.trial.FrozenTrial,
                 weights: str | Path | None = None) -> tuple[ArchSpec, torch.nn.Module]:
    """Rebuild from the stored spec (not the space's current code) and load the weights:
    the search's, or ``weights`` (e.g. from ``nas train``)."""
    spec = ArchSpec.from_dict(trial.user_attrs["arch"])
    path = Path(weights) if weights else weights_path(study_dir, trial.number)
    if not path.is_file():
        raise UsageError(f"weights of trial {trial.number} missing: {path}")
    model = build(spec)
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
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise UsageError(f"{path} does not hold weights for trial {trial.number} "
                         f"({trial.user_attrs['arch_str']}): {str(exc).splitlines()[0]}") from None
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


def read_baselines(study_dir: str | Path) -> list[dict]:
    """The reference models ``nas baseline`` trained on this study's data."""
    path = Path(study_dir) / "baselines.json"
    return json.loads(path.read_text()) if path.is_file() else []


def write_baselines(study_dir: str | Path, rows: list[dict]) -> None:
    files.write_json(Path(study_dir) / "baselines.json", rows)
