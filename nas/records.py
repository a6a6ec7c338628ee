"""What a study saves, typed: the study record (the search's settings, its data, versions,
and what later stages add) and the trial record (what a trial was, what it measured, how
it ended). The one module that writes Optuna user attributes and reads them back; the rest
of nas sees these records, never an attribute name.

Every value read is checked against its field's type, since a journal may be edited or
planted: a wrong one is a one-line UsageError naming the study, the trial and the field.

Schema versions (the study's ``schema`` attribute):
  1  studies written before the records were typed: no ``schema`` attribute; the fields
     and their meaning are those of version 2, so they read unchanged.
  2  ``schema`` added.
A study of a newer version than this code is refused: its fields may mean something else.
"""

from __future__ import annotations

import types
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import TypedDict, get_args, get_type_hints

import optuna

from nas.errors import UsageError

SCHEMA_VERSION = 2
FIRST_VERSION = 1  # a study without a schema attribute


def _fits(value, hint) -> bool:
    """Whether a JSON-read ``value`` is of type ``hint`` (int is not bool; a float may be
    written as an int, 1 for 1.0)."""
    for kind in get_args(hint) if isinstance(hint, types.UnionType) else (hint,):
        if kind is type(None):
            if value is None:
                return True
            continue
        kind = getattr(kind, "__origin__", kind)  # list[float] -> list
        if kind is float and type(value) in (int, float):
            return True
        if kind in (int, str, bool, list, dict) and type(value) is kind:
            return True
    return False


def _what(hint) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             list: "a list", dict: "a mapping", type(None): "null"}
    kinds = get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    return " or ".join(names.get(getattr(k, "__origin__", k), str(k)) for k in kinds)


def _checked(values: dict, hints: dict, where: str) -> dict:
    """The entries of ``values`` that are fields (others, from a later version, ignored),
    each of its field's type; else a UsageError naming it."""
    for name, value in values.items():
        if name in hints and not _fits(value, hints[name]):
            raise UsageError(f"{where}: user attribute {name!r} is {value!r} "
                             f"({type(value).__name__}), expected {_what(hints[name])}; the study "
                             f"was edited or damaged")
    return {name: value for name, value in values.items() if name in hints}


# ---------------------------------------------------------------- the trial record

@dataclass(frozen=True)
class TrialRecord:
    """A trial's user attributes. All optional: a trial writes them as it goes, so a pruned
    or failed one holds only what it reached."""
    # Who runs it: lets a later run tell a trial whose process was killed from a running one.
    host: str | None = None
    pid: int | None = None
    # What it is, set before anything is built.
    space: str | None = None
    arch: dict | None = None  # nas.arch.ArchSpec.to_dict()
    arch_str: str | None = None
    params: int | None = None
    macs: int | None = None
    conv_layers: int | None = None
    flash: int | None = None  # int8 weights and biases, bytes (nas.budget)
    ram: int | None = None  # int8 activation peak, bytes (nas.activations)
    budget: int | None = None
    infeasible: str | None = None  # why it was over a constraint: never built
    # How it trained.
    device: str | None = None
    time_slice: float | None = None  # --time searches: its seconds
    reports_per_epoch: int | None = None  # searches by epochs
    epochs: float | None = None  # the search's --epochs, then the epochs it trained
    val_history: list | None = None  # validation accuracy at each report
    val_acc: float | None = None
    train_time: float | None = None
    build_time: float | None = None
    capture_time: float | None = None
    eval_time: float | None = None
    batch_size: int | None = None
    lr: float | None = None
    bf16: bool | None = None
    cuda_graph: bool | None = None
    graph_fallback: str | None = None
    # How it ended, when not by completing.
    stopped_early: str | None = None  # --objective pareto's rule
    too_slow: str | None = None  # --min-speed
    fail_reason: str | None = None
    disk_full: bool | None = None
    interrupted: bool | None = None  # its process was stopped or died: not counted
    retry_of: int | None = None  # the interrupted trial whose parameters it runs again
    # Memory after it, model and optimiser gone: must not grow trial to trial.
    heap_after: int | None = None
    gpu_mem_allocated: int | None = None


TRIAL_FIELDS = get_type_hints(TrialRecord)


def trial(t: optuna.trial.FrozenTrial, study_name: str | None = None) -> TrialRecord:
    """The record of a trial as stored, each field checked."""
    where = (f"study {study_name!r}, " if study_name else "") + f"trial {t.number}"
    return TrialRecord(**_checked(t.user_attrs, TRIAL_FIELDS, where))


def trial_attrs(**values) -> dict:
    """Trial record fields as user attributes (for Optuna's enqueue_trial, say), checked."""
    unknown = set(values) - TRIAL_FIELDS.keys()
    if unknown:
        raise TypeError(f"not trial record fields: {sorted(unknown)}")
    return _checked(values, TRIAL_FIELDS, "a trial being written")


def note(t: optuna.Trial, **values) -> None:
    """Write fields of a running trial's record."""
    for name, value in trial_attrs(**values).items():
        t.set_user_attr(name, value)


def note_by_id(study: optuna.Study, trial_id: int, **values) -> None:
    """Write fields of another process's trial (Optuna has no public API for it)."""
    for name, value in trial_attrs(**values).items():
        study._storage.set_trial_user_attr(trial_id, name, value)


def enqueue_retry(study: optuna.Study, params: dict, number: int) -> None:
    """Queue trial ``number``'s parameters to run first, its record saying whose retry it is."""
    study.enqueue_trial(params, user_attrs=trial_attrs(retry_of=number))


# ---------------------------------------------------------------- the study record

@dataclass(frozen=True)
class DataRecord:
    """The dataset a study was searched on, as nas.data.DataInfo says, and how it was read."""
    name: str
    in_channels: int
    height: int
    width: int
    num_classes: int
    mean: list
    std: list
    classes: list
    augment: str = "none"
    limit_train: int | None = None
    image_size: int | None = None
    grayscale: bool = False
    dir: str | None = None  # where the search found it (a reader looks there last)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.height, self.width)


class RunoffLook(TypedDict):
    """One net's look in the runoff (nas.runoff)."""
    trial: int
    arch: str
    params: int
    val_acc: float
    search_val_acc: float | None
    epochs: float
    seconds: float
    augment: str


class FinalRecord(TypedDict, total=False):
    """Where a --time search's final training stands (nas.final): "training" (trial, host,
    pid) or "done" (trial and the figures)."""
    state: str
    trial: int
    host: str
    pid: int
    arch: str
    params: int
    test_acc: float
    search_val_acc: float | None
    runoff_val_acc: float | None
    val_acc: float | None
    epochs: float
    train_images: int
    train_time: float
    augment: str
    label_smoothing: float
    batch_size: int
    lr: float
    device: str
    processes: int  # that shared each batch (nas.spread)


LOOK_REQUIRED = ("trial", "val_acc")
FINAL_DONE = ("params", "test_acc", "epochs", "train_images", "train_time", "augment")


@dataclass(frozen=True)
class StudyRecord:
    """A study's user attributes."""
    config: dict  # nas.config.SearchConfig's fields as searched (where things are left out)
    data: DataRecord
    seed: int
    versions: dict  # nas, optuna, torch and python versions that created it
    schema: int = FIRST_VERSION
    trial_counts: dict | None = None  # finished trials by outcome, at the last run's end
    runoff: list[RunoffLook] = field(default_factory=list)
    final: FinalRecord | None = None

    def limit(self, name: str) -> int | None:
        """A size limit as searched (budget, max_flash, max_ram), checked: exports and the
        plot are held to it."""
        value = self.config.get(name)
        if value is not None and (type(value) is not int or value < 1):
            raise UsageError(f"the study records a bad {name.replace('_', ' ')} {value!r}; the "
                             f"study was edited or damaged")
        return value

    @property
    def budget(self) -> int | None:
        return self.limit("budget")

    @property
    def objective(self) -> str:
        return self.config.get("objective", "accuracy")

    @property
    def augment(self) -> str | None:
        """--augment as searched (None: the dataset's own)."""
        return self.config.get("augment")


# As stored: the nested records are JSON objects and lists, checked field by field below.
STUDY_FIELDS = {**get_type_hints(StudyRecord), "data": dict, "runoff": list, "final": dict | None}
DATA_FIELDS = get_type_hints(DataRecord)


def _bad(study: optuna.Study, name: str, value) -> UsageError:
    return UsageError(f"study {study.study_name!r}: its {name!r} record is not one nas writes "
                      f"({value!r:.200}); the study was edited or damaged")


def _looks(study: optuna.Study, held) -> list[RunoffLook]:
    hints = get_type_hints(RunoffLook)
    if not isinstance(held, list) or not all(
            isinstance(look, dict) and all(_fits(look.get(k), hints[k]) for k in LOOK_REQUIRED)
            for look in held):
        raise _bad(study, "runoff", held)
    return held


def _final(study: optuna.Study, held) -> FinalRecord | None:
    if held is None:
        return None
    hints = get_type_hints(FinalRecord)
    required = ("state", "trial") + (FINAL_DONE if isinstance(held, dict)
                                     and held.get("state") == "done" else ())
    if (not isinstance(held, dict) or held.get("state") not in ("training", "done")
            or not all(k in held and _fits(held[k], hints[k]) for k in required)):
        raise _bad(study, "final", held)
    return held


def has_study(study: optuna.Study) -> bool:
    """Whether nas has written the study's record (a new study has none yet)."""
    return "data" in study.user_attrs


def study_or_none(s: optuna.Study) -> StudyRecord | None:
    """study(), or None for a study nas has not written its record into (yet)."""
    return study(s) if has_study(s) else None


def runoff(s: optuna.Study) -> list[RunoffLook]:
    """The runoff's looks the study holds, checked (a study without a record has none)."""
    return _looks(s, s.user_attrs.get("runoff", []))


def final(s: optuna.Study) -> FinalRecord | None:
    """The study's final-training record, checked, or None."""
    return _final(s, s.user_attrs.get("final"))


def study(s: optuna.Study) -> StudyRecord:
    """The study's record as stored, checked, old versions read as the current one."""
    attrs = s.user_attrs
    version = attrs.get("schema", FIRST_VERSION)
    if type(version) is int and version > SCHEMA_VERSION:
        raise UsageError(f"study {s.study_name!r} was written by a newer nas (record version "
                         f"{version}; this one reads up to {SCHEMA_VERSION}): upgrade nas")
    where = f"study {s.study_name!r}"
    if "data" not in attrs:
        raise UsageError(f"{where} has no record of its data: it was not created by nas search")
    values = _checked(attrs, STUDY_FIELDS, where)
    data = _checked(values["data"], DATA_FIELDS, f"{where}, data")
    if any(f.default is MISSING and f.name not in data for f in fields(DataRecord)):
        raise _bad(s, "data", values["data"])
    values.update(data=DataRecord(**data), config=values.get("config", {}),
                  seed=values.get("seed", 0), versions=values.get("versions", {}),
                  runoff=runoff(s), final=final(s))
    return StudyRecord(**values)


def write_study(s: optuna.Study, config: dict, data: DataRecord, seed: int, versions: dict) -> None:
    """A new study's record, at the current schema version."""
    s.set_user_attr("schema", SCHEMA_VERSION)
    s.set_user_attr("config", config)
    s.set_user_attr("data", asdict(data))
    s.set_user_attr("seed", seed)
    s.set_user_attr("versions", versions)


def write_trial_counts(s: optuna.Study, counts: dict) -> None:
    s.set_user_attr("trial_counts", counts)


def write_runoff(s: optuna.Study, looks: list[RunoffLook]) -> None:
    s.set_user_attr("runoff", _looks(s, looks))


def write_final(s: optuna.Study, held: FinalRecord) -> None:
    s.set_user_attr("final", _final(s, held))
