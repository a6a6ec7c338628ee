"""Every setting's flag, declared once: its help, --help group, how it is read, and what
values are valid. A config dataclass (nas.config.SearchConfig, nas.recipe.TrainingRun and
its commands') names a setting's type and default in its field and the flag here
(``option``); from that one place come the parser's arguments (``add_flags``), the checks
with their error lines (``check_settings``), the recorded settings (the dataclass), and
through the parser the CLI reference (docs/cli.md). The training flags are declared once
for `nas search`, `nas train` and `nas baseline`."""

from __future__ import annotations

import argparse
import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Callable

from nas.durations import duration_flag
from nas.units import SAYS as SIZE_SAYS, byte_size_flag
from nas.errors import UsageError, integer

SECONDS_IN_A_YEAR = 366 * 86400  # past this a time is a unit mistake, not a wish


@dataclass(frozen=True)
class Flag:
    help: str
    group: str = "options"
    parse: Callable | None = None  # argparse's type (None: the text as given)
    # Valid values: a range (inclusive unless open), or a choice, or a check of its own.
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: Callable[[], tuple] | None = None
    check: Callable | None = None  # raises UsageError itself
    what: str | None = None  # how the valid range is said when not "an integer from .. to .."
    switch: str | None = None  # a bool set by a flag that takes no value: --grayscale, --no-cuda-graph


def option(default, flag: Flag, says: str | None = None):
    """A config field and its flag. ``says``: what this command's --help adds in brackets
    (its default, where the value alone would not say it; None: "default <value>")."""
    return field(default=default, metadata={"flag": flag, "says": says})


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def declared(config_class) -> list:
    """The fields of ``config_class`` that are settings with a flag."""
    return [f for f in fields(config_class) if "flag" in f.metadata]


def help_text(f) -> str:
    flag, says = f.metadata["flag"], f.metadata["says"]
    if flag.switch or says == "":
        return flag.help
    if says is None and f.default is not MISSING and f.default is not None:
        says = f"default {f.default}"
    return f"{flag.help} ({says})" if says else flag.help


def add_flags(parser: argparse.ArgumentParser, config_class, titles: dict | None = None) -> dict:
    """An argument for each flag of ``config_class``, under its --help group (titled as
    ``titles`` says, else by its name); a flag not given is left out of the parsed
    arguments (the config's default applies). Returns the groups by name."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in declared(config_class):
        flag = f.metadata["flag"]
        if flag.group not in groups:
            groups[flag.group] = parser.add_argument_group((titles or {}).get(flag.group, flag.group))
        where = groups[flag.group]
        if flag.switch:
            action = "store_false" if flag.switch.startswith("--no-") else "store_true"
            where.add_argument(flag.switch, dest=f.name, action=action, help=help_text(f),
                               default=argparse.SUPPRESS)
        else:
            where.add_argument(flag_name(f.name), dest=f.name, type=flag.parse,
                               help=help_text(f), default=argparse.SUPPRESS)
    return groups


def check(name: str, value, flag: Flag) -> None:
    """None (not given) or a valid value of ``flag``; else a UsageError saying what is."""
    if value is None:
        return
    shown = flag_name(name)
    if flag.check is not None:
        flag.check(value)
    if flag.choices is not None and value not in (valid := flag.choices()):
        raise UsageError(f"unknown {shown} {value!r}; valid: {', '.join(valid)}")
    if flag.low is None and flag.high is None:
        return
    if flag.parse is integer:
        fits = (isinstance(value, int) and not isinstance(value, bool) and value >= flag.low
                and (flag.high is None or value <= flag.high))
        what = flag.what or (f"an integer from {flag.low:,} to {flag.high:,}" if flag.high is not None
                             else f"an integer >= {flag.low}")
    else:
        fits = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                and (flag.low is None or (value > flag.low if flag.low_open else value >= flag.low))
                and (flag.high is None or (value < flag.high if flag.high_open else value <= flag.high)))
        what = flag.what or f"a number from {flag.low} to {flag.high}"
    if not fits:
        raise UsageError(f"{shown} must be {what}, got {value!r}")


def check_settings(config, skip: tuple[str, ...] = ()) -> None:
    """Every flag-declared setting of a config dataclass instance, checked."""
    for f in declared(type(config)):
        if f.name not in skip:
            check(f.name, getattr(config, f.name), f.metadata["flag"])


# ---------------------------------------------------------------- declarations

def _augments() -> tuple:
    from nas.augment import AUGMENTS

    return AUGMENTS


def _space_names() -> str:
    from search_spaces import space_names

    return ", ".join(space_names())


def _dataset_names() -> str:
    from nas.datasets import dataset_names

    return ", ".join(dataset_names())


def _check_spaces(value) -> None:
    from search_spaces import parse_spaces

    parse_spaces(value)  # raises with the valid names


def _precisions() -> tuple:
    from nas.trainer import PRECISIONS

    return PRECISIONS


def _check_dataset(value) -> None:
    from nas.datasets import check_name

    check_name(value)


PRUNERS = ("median", "hyperband", "none")
SAMPLERS = ("tpe", "tpe-grouped", "random")
# What each objective's values are, in order: validation accuracy (maximised), then sizes
# (minimised): params, MACs, the int8 model's bytes (flash) or its activation peak (ram).
OBJECTIVES = {"accuracy": ("val_acc",), "pareto": ("val_acc", "params"),
              "pareto-macs": ("val_acc", "params", "macs"), "pareto-flash": ("val_acc", "flash"),
              "pareto-ram": ("val_acc", "ram")}


def directions(objective: str) -> tuple[str, ...]:
    return tuple("maximize" if metric == "val_acc" else "minimize" for metric in OBJECTIVES[objective])

# Space and budget.
SPACE = Flag(f"search space: {_space_names()}; several, e.g. cnn,mobilenet: the trials take "
             f"them by turn", "space and budget", check=_check_spaces)
BUDGET = Flag("max trainable params, e.g. 50000 or 50k", "space and budget", integer,
              low=1, high=1_000_000_000)
CONV_LAYERS = Flag("allowed number of conv layers, MIN-MAX, e.g. 2-4", "space and budget")
MAX_MACS = Flag("max multiply-accumulates per image", "space and budget", integer, low=1)
MAX_FLASH = Flag("max bytes of the int8 model's weights and biases (a microcontroller's flash), "
                 "e.g. 64KB; units B, KB, KiB, MB", "space and budget", byte_size_flag, low=1,
                 what=SIZE_SAYS)
MAX_RAM = Flag("max bytes of int8 activations alive at once (a microcontroller's RAM), e.g. "
               "16KB", "space and budget", byte_size_flag, low=1, what=SIZE_SAYS)
MIN_SPEED = Flag("stop trials training fewer images/s here", "space and budget", integer, low=1)
FILL = Flag("prefer nets using this share of the budget, e.g. 0.9", "space and budget", float,
            low=0, high=1, what="a share of the budget from 0 to 1")

# Data.
DATASET = Flag(f"{_dataset_names()}; arrays and folder as NAME:PATH, fer2013 optionally",
               "data", check=_check_dataset)
DATA_DIR = Flag("folder holding the datasets", "data")
DOWNLOAD = Flag("download the dataset if missing", "data", switch="--download")
LIMIT_TRAIN = Flag("train on at most N images", "data", integer, low=1)
IMAGE_SIZE = Flag("folder datasets: resize images to NxN", "data", integer, low=4, high=4096)
GRAYSCALE = Flag("folder datasets: one channel", "data", switch="--grayscale")

# Training: `nas search` (each trial), `nas train` and `nas baseline`.
EPOCHS = Flag("training epochs; with --time, at most this many", "training", integer,
              low=1, high=10_000)
TIME = Flag("the command's whole time, data loading included, e.g. 10m, 2h, 1h30m", "training",
            duration_flag, low=1, high=SECONDS_IN_A_YEAR)
BATCH_SIZE = Flag("training batch size", "training", integer, low=1, high=1 << 20)
LR = Flag("peak learning rate, AdamW with warm-up and cosine decay", "training", float,
          low=0, low_open=True, what="a positive number")
AUGMENT = Flag(f"training augmentation: {' | '.join(_augments())}", "training",
               choices=_augments)
LABEL_SMOOTHING = Flag("label smoothing of the loss", "training", float, low=0, high=1,
                       high_open=True, what="in [0, 1)")
MIXUP = Flag("blend each batch with itself shuffled by a Beta(A, A) share; 0.2-1 is usual",
             "training", float, low=0, high=10,
             what="from 0 (off) to 10")
SEED = Flag("seed of the sampler and of training", "training", integer, low=0, high=2**31 - 1)
DEVICE = Flag("auto | cpu | cuda | cuda:N", "device")

# The search.
TRIALS = Flag("trials of these spaces in the study", "search", integer, low=1, high=1_000_000)
OBJECTIVE = Flag("accuracy (front computed afterwards) | pareto (maximise accuracy, minimise "
                 "params) | pareto-macs (and MACs) | pareto-flash, pareto-ram (minimise the "
                 "int8 model's bytes, or its activation peak, instead of params); pareto "
                 "objectives stop trials with their own rule",
                 "search", choices=lambda: tuple(OBJECTIVES))
SAMPLER = Flag(" | ".join(SAMPLERS), "search", choices=lambda: SAMPLERS)
PRUNER = Flag(" | ".join(PRUNERS), "search", choices=lambda: PRUNERS)
TIMEOUT = Flag("seconds: start no trial after this long", "search", integer, low=1,
               high=SECONDS_IN_A_YEAR)
TRIAL_TIME = Flag("with --time: each trial's slice, e.g. 100s", "search", duration_flag, low=1,
                  high=SECONDS_IN_A_YEAR)

# Storage and workers.
STUDY = Flag("study name", "storage and workers")
STORAGE = Flag("Optuna database URL or journal file path", "storage and workers")
RUNS_DIR = Flag("where study folders go", "storage and workers")
JOBS = Flag("worker processes on the one study; 0: one per CPU core, each on one thread",
            "storage and workers", integer, low=0, high=1024)
MEMORY_LIMIT = Flag("GiB each worker's trials may use on top of its dataset (GPU memory on a "
                    "GPU, heap on CPU); a trial over it fails as out of memory",
                    "storage and workers", float, low=0, low_open=True, high=1e6,
                    what="a number of GiB > 0")

# Device.
GPUS = Flag("CUDA devices to spread the --jobs workers over, e.g. 0,1 (several workers per GPU "
            "are fine)", "device")
PRECISION = Flag("auto | bf16 | fp32", "device", choices=_precisions)
CUDA_GRAPH = Flag("train eagerly on the GPU instead of replaying a captured CUDA graph", "device",
                  switch="--no-cuda-graph")

# `nas train`'s distillation.
TEACHER = Flag("model to distil from: a study folder (its best trial), a trial's weights file, "
               "a nas export file; another TorchScript file only with --trust-code", "distillation")
TEMPERATURE = Flag("distillation temperature", "distillation", float, low=0, low_open=True,
                   what="> 0")
ALPHA = Flag("weight of the distillation loss", "distillation", float, low=0, high=1,
             what="in [0, 1]")
TRUST_CODE = Flag("let --teacher be any TorchScript file, running its code (checked first in a "
                  "child process, stopped after 60 s)", "distillation", switch="--trust-code")
