"""A search's settings: the dataclass every way in fills (flags, TOML presets, Python),
each field's flag declared in nas.flags, the checks that join several settings, and the
readers of presets and of the settings that are not plain values."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

import torch

import search_spaces
from nas import datasets
from nas import urls
from nas.study_folder import check_study_name, default_storage
from nas.budget import Constraints
from nas.device import resolve_device
from nas import flags as F
from nas.durations import Duration, duration, duration_text
from nas.units import SAYS as SIZE_SAYS, Bytes, byte_size
from nas.errors import UsageError
from nas.flags import check_settings, option

METRICS = ("val_acc", "params", "macs")
# Validations per epoch of a trial: a weak one can be stopped half way into its first epoch
# (the median pruner waits for the second report). Those inside an epoch score a fixed
# subset of QUICK_IMAGES validation images, with batch norm re-estimated on as many training
# images (a small share of an epoch's time); each epoch's last, and so
# the trial's last, scores the whole validation split.
REPORTS_PER_EPOCH = 4
QUICK_IMAGES = 500
# Settings that say where things are, not what was searched: not stored in the study.
LOCAL_SETTINGS = ("data_dir", "storage", "runs_dir")
# Without a GPU, a search that says nothing about its size (the card's `nas search --space
# mobilenet --budget 50000`) is a --time search of ten minutes in all: search, then the
# chosen net trained on every image (nas.search.plan). No MAC cap: equal time slices
# already rank a net by what it learns in that time on this machine, and a cap kept out
# the nets that deliver the most (benchmarks/README.md).
CPU_SIZED = {"time": 10 * 60}
# A --time search given no --trials: the time decides how many run.
TIMED_TRIALS = 100_000
SIZE_SETTINGS = ("trials", "epochs", "limit_train", "time", "timeout", "max_macs", "min_speed")


@dataclass
class SearchConfig:
    """Every setting of a search, each field's flag declared in nas.flags."""
    # Space and budget.
    space: str = option("mobilenet", F.SPACE)
    budget: int = option(50_000, F.BUDGET, "default 50k")
    conv_layers: tuple[int, int] | None = option(None, F.CONV_LAYERS)
    max_macs: int | None = option(None, F.MAX_MACS)
    max_flash: Bytes | None = option(None, F.MAX_FLASH)
    max_ram: Bytes | None = option(None, F.MAX_RAM)
    min_speed: int | None = option(None, F.MIN_SPEED)  # images/s (nas.trainer.TooSlow)
    fill: float = option(0.0, F.FILL, "default 0: off")
    # Data.
    dataset: str = option("mnist", F.DATASET)  # a name, or NAME:PATH (arrays:x.npz, fer2013:f.csv)
    data_dir: str | None = option(None, F.DATA_DIR, "default $NAS_DATA_DIR or ./data")
    download: bool = option(False, F.DOWNLOAD)
    limit_train: int | None = option(None, F.LIMIT_TRAIN)
    image_size: int | None = option(None, F.IMAGE_SIZE)
    grayscale: bool = option(False, F.GRAYSCALE)
    # Training, each trial.
    epochs: int | None = option(3, F.EPOCHS, "default 3; with --time: as many as fit in a "
                                             "trial's slice")
    batch_size: int | None = option(None, F.BATCH_SIZE, "default 128 on CPU, 512 on a GPU")
    lr: float | None = option(None, F.LR, "default 0.005 x sqrt(batch/128)")
    augment: str | None = option(None, F.AUGMENT, "default: the dataset's own")
    seed: int = option(0, F.SEED)
    # The search.
    trials: int = option(20, F.TRIALS)
    objective: str = option("accuracy", F.OBJECTIVE)
    sampler: str = option("tpe", F.SAMPLER)  # with a pareto objective: multi-objective TPE
    pruner: str = option("median", F.PRUNER)  # with a pareto objective: median = size_aware_stop
    timeout: int | None = option(None, F.TIMEOUT)
    time: Duration | None = option(None, F.TIME, "here: the search, from 25m on ending in a "
                                   "runoff of the kinds of net that differ most, then the best net trained "
                                   "on every training image until the end; nas export --best "
                                   "writes it")
    trial_time: Duration | None = option(None, F.TRIAL_TIME, "default: a twelfth of the "
                                         "search's half, at most 25s")
    # Storage and workers.
    study: str | None = option(None, F.STUDY, "default <dataset>-<budget>, e.g. mnist-50k")
    storage: str | None = option(None, F.STORAGE, "default runs/<study>/journal.log")
    runs_dir: str = option("runs", F.RUNS_DIR)
    jobs: int = option(1, F.JOBS)
    memory_limit: float | None = option(None, F.MEMORY_LIMIT)
    # Device.
    device: str = option("auto", F.DEVICE, "default auto: the GPU when there is one")
    gpus: tuple[int, ...] | None = option(None, F.GPUS)
    precision: str = option("auto", F.PRECISION, "default auto: bf16 autocast on a GPU")
    cuda_graph: bool = option(True, F.CUDA_GRAPH)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Every check of a search's settings, so bad input fails before any work starts."""
        check_settings(self)  # each flag's own range or choices (nas.flags)
        if self.objective != "accuracy" and self.pruner == "hyperband":
            raise UsageError(f"--pruner hyperband needs --objective accuracy (Optuna cannot prune "
                             f"multi-objective studies); --objective {self.objective} stops trials "
                             f"with its own rule: --pruner median (default) or none")
        if self.epochs is None and self.time is None:
            raise UsageError("epochs may be left out (None) only with a --time limit")
        if self.gpus is not None:
            self.gpus = parse_gpus(self.gpus)
            if self.device not in ("auto", "cuda"):
                raise UsageError(f"--gpus {','.join(map(str, self.gpus))} needs CUDA; "
                                 f"got --device {self.device!r}")
            have = torch.cuda.device_count()
            if max(self.gpus) >= have:
                raise UsageError(f"--gpus {','.join(map(str, self.gpus))} but this machine has "
                                 f"{have} CUDA device(s)" + (f" (valid: 0-{have - 1})" if have else ""))
        resolve_device(self.device)
        if self.study is not None:
            check_study_name(self.study)
        self.constraints()  # range checks live there

    def constraints(self) -> Constraints:
        try:
            return Constraints(self.budget, self.conv_layers, self.max_macs, self.max_flash,
                               self.max_ram, self.fill)
        except (ValueError, TypeError) as exc:
            raise UsageError(str(exc)) from None

    @property
    def spaces(self) -> tuple[str, ...]:
        """--space as the spaces it names: several make a search's trials take them by turn."""
        return search_spaces.parse_spaces(self.space)

    @property
    def study_name(self) -> str:
        return self.study or f"{datasets.label(self.dataset)}-{budget_label(self.budget)}"

    @property
    def study_dir(self) -> Path:
        return Path(self.runs_dir) / self.study_name

    @property
    def storage_url(self) -> str:
        return urls.absolute(self.storage) if self.storage else default_storage(self.study_dir)

    def resolved_device(self, worker: int = 0) -> torch.device:
        """The device of worker ``worker``: --gpus round-robin, else --device."""
        if self.gpus:
            return torch.device("cuda", self.gpus[worker % len(self.gpus)])
        return resolve_device(self.device)


def from_settings(settings: dict, preset: str | None = None, full: bool = False
                  ) -> tuple[SearchConfig, str | None]:
    """A TOML preset (if any) overridden by ``settings`` (the flags given), sized to the
    CPU when there is no GPU and neither says how big the search is (unless ``full``);
    with the note that says so, else None."""
    merged = read_preset(preset) if preset else {}
    merged.update(settings)
    note = None
    if not (full or set(SIZE_SETTINGS) & merged.keys()
            or _config(merged).resolved_device().type != "cpu"):
        merged.update(CPU_SIZED)
        note = (f"no GPU here: sized to this CPU, {duration_text(CPU_SIZED['time'])} in all, search "
                f"then final training (--time {duration_text(CPU_SIZED['time'])}).\n"
                f"full search ({SearchConfig.trials} trials x "
                f"{SearchConfig.epochs} epochs on every training image, hours on a CPU, no final "
                f"training): add --full, and --study NAME to keep it apart from this study")
    if merged.get("time") is not None:  # the time decides what runs, unless told otherwise
        merged.setdefault("epochs", None)
        merged.setdefault("trials", TIMED_TRIALS)
    return _config(merged), note


# Settings written with units ("10m", "64KB"): how each is read, and what is valid.
WITH_UNITS = {"time": (duration, "a duration such as 10m, 2h, 1h30m or 90s"),
              "trial_time": (duration, "a duration such as 10m, 2h, 1h30m or 90s"),
              "max_flash": (byte_size, SIZE_SAYS), "max_ram": (byte_size, SIZE_SAYS)}


def _config(merged: dict) -> SearchConfig:
    merged = dict(merged)
    for key, (read, says) in WITH_UNITS.items():
        if merged.get(key) is not None:
            try:
                merged[key] = read(merged[key])
            except ValueError:
                raise UsageError(f"bad {key.replace('_', '-')} {merged[key]!r}: expected {says}") from None
    if merged.get("conv_layers") is not None:
        merged["conv_layers"] = parse_range(merged["conv_layers"])
    return SearchConfig(**merged)


def read_preset(path: str) -> dict:
    """The settings of a TOML study preset (studies/*.toml), keys as the flag names."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as exc:
        raise UsageError(f"cannot read config {path!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config {path!r} is not valid TOML: {exc}") from None
    valid = {f.name for f in fields(SearchConfig)}
    settings = {key.replace("-", "_"): value for key, value in raw.get("search", raw).items()}
    unknown = sorted(set(settings) - valid)
    if unknown:
        raise UsageError(f"config {path!r}: unknown key(s) {', '.join(unknown)}; valid: "
                         f"{', '.join(sorted(k.replace('_', '-') for k in valid))}")
    types = {f.name: f.type for f in fields(SearchConfig)}
    for key, value in settings.items():
        kinds, what = PRESET_TYPES[types[key].removesuffix(" | None")]
        # bool is an int to Python; "yes" is a str to TOML: neither passes for the other.
        if isinstance(value, bool) != (bool in kinds) or not isinstance(value, kinds):
            raise UsageError(f"config {path!r}: {key.replace('_', '-')} must be {what}, got "
                             f"{value!r} ({type(value).__name__})")
    return settings


# The TOML value types each SearchConfig field type accepts, and how to say it.
PRESET_TYPES = {"str": ((str,), "a string"), "int": ((int,), "an integer"),
                "float": ((int, float), "a number"), "bool": ((bool,), "true or false"),
                "tuple[int, int]": ((str, int, list), 'a range such as "2-4" or [2, 4]'),
                "tuple[int, ...]": ((str, int, list), 'device numbers such as "0,1" or [0, 1]'),
                "Duration": ((str, int), 'a duration such as "10m", "2h" or seconds'),
                "Bytes": ((str, int), 'a size such as "64KB", "16KiB" or bytes')}


def parse_gpus(text) -> tuple[int, ...]:
    """'0,1' or [0, 1] (TOML) -> (0, 1); several workers may share one GPU."""
    items = text if isinstance(text, (list, tuple)) else str(text).split(",")
    try:
        gpus = tuple(int(str(g).strip()) for g in items)
    except ValueError:
        gpus = ()
    if not gpus or min(gpus) < 0:
        raise UsageError(f"bad --gpus {text!r}: expected CUDA device numbers, e.g. 0,1")
    return gpus


def parse_range(text) -> tuple[int, int]:
    """'2-4' or [2, 4] (TOML) -> (2, 4); '3' or 3 -> (3, 3)."""
    if isinstance(text, (list, tuple)):
        text = "-".join(map(str, text))
    try:
        parts = [int(p) for p in str(text).split("-")]
        if len(parts) == 1:
            parts *= 2
        low, high = parts
    except ValueError:
        raise UsageError(f"bad --conv-layers {text!r}: expected MIN-MAX, e.g. 2-4") from None
    if not 1 <= low <= high:
        raise UsageError(f"bad --conv-layers {text!r}: need 1 <= MIN <= MAX, e.g. 2-4")
    return low, high


def budget_label(budget: int) -> str:
    for unit, size in (("M", 1_000_000), ("k", 1000)):
        if budget % size == 0:
            return f"{budget // size}{unit}"
    return str(budget)
