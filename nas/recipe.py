"""The recipe ``nas train`` and ``nas baseline`` share: a study's data on a device, and
the training settings both take (epochs or a time, batch, LR, label smoothing, seed,
augmentation)."""

from __future__ import annotations

import time as clock  # "time" is the --time field below
from dataclasses import dataclass, field

from nas import records
from nas.data import RECORDED, load_recorded
from nas.storage import load_study
from nas.device import on_device, resolve_device
from nas import flags as F
from nas.durations import Duration, duration_text
from nas.errors import UsageError
from nas.flags import check_settings, option
from nas.schedule import EPOCH_CAP, end_margin
from nas.trainer import TrainConfig

# A --time run validates this often, spread evenly over the time, on the whole validation
# split each time.
TIMED_REPORTS = 5


def time_left(limit: float, started: float, what: str) -> float:
    """Seconds of a --time limit still left since ``started`` (clock.time()); one clear
    line when loading has already used it up."""
    left = limit - end_margin(limit) - (clock.time() - started)
    if left <= 1:
        raise UsageError(f"--time {limit:g}s was used up before training could start "
                         f"({clock.time() - started:.0f}s loading {what}); give it more time")
    return left


@dataclass(kw_only=True)
class TrainingRun:
    """What `nas train` and `nas baseline` share: a study's data, a device, the recipe;
    each setting's flag declared once in nas.flags (with `nas search`'s)."""
    study_dir: str
    storage: str | None = None  # --storage: a storage outside the study folder, named by the user
    started: float = field(default_factory=clock.time)  # when the command started (clock.time())
    data_dir: str | None = option(None, F.DATA_DIR, "default: the search's")
    # Images to train on: None every one (nas train), RECORDED the search's --limit-train
    # (nas baseline, so its star sits among the front's points), else at most N.
    limit_train: int | str | None = option(None, F.LIMIT_TRAIN, "default: every image")
    epochs: int | None = option(None, F.EPOCHS, "default 12")  # None: as many as fit in --time
    time: Duration | None = option(None, F.TIME, "as many epochs as fit, the LR schedule "
                                   "fitted to them")
    batch_size: int | None = option(None, F.BATCH_SIZE, "default 128 on CPU, 512 on a GPU")
    lr: float | None = option(None, F.LR, "default 0.005 x sqrt(batch/128)")
    label_smoothing: float = option(0.0, F.LABEL_SMOOTHING)
    mixup: float = option(0.0, F.MIXUP, "default 0: off")
    augment: str | None = option(None, F.AUGMENT, "default: the search's")
    seed: int = option(0, F.SEED)
    device: str = option("auto", F.DEVICE)

    DEFAULT_EPOCHS = 12

    def validate(self) -> None:
        if self.epochs is None and self.time is None:
            self.epochs = self.DEFAULT_EPOCHS
        check_settings(self, skip=("limit_train",) if self.limit_train == RECORDED else ())

    def load(self):
        """(study, its data on the device, the device), after every check."""
        self.validate()
        study = load_study(self.study_dir, self.storage)
        device = resolve_device(self.device)
        data = load_recorded(records.study(study).data, self.data_dir, self.limit_train)
        if data is None:
            raise UsageError(f"the dataset of study {study.study_name!r} "
                             f"({records.study(study).data.name}) was not found; pass --data-dir")
        if self.augment is None:
            self.augment = self.default_augment(records.study(study), data)
        return study, on_device(data, device), device

    def default_augment(self, held: records.StudyRecord, data) -> str:
        """The augmentation when --augment is not given: the search's (its --augment, else
        the dataset's own), so a reference net trains as the search's trials did."""
        return held.augment or data.info.augment

    def train_config(self, data, **extra) -> TrainConfig:
        timed = {} if self.time is None else {
            "time_limit": time_left(self.time, self.started, f"{data.info.name}"),
            "time_reports": TIMED_REPORTS, "quick_images": 0, "after_images": len(data.test_x)}
        return TrainConfig(self.epochs or EPOCH_CAP, self.batch_size, self.lr, seed=self.seed,
                           label_smoothing=self.label_smoothing, mixup=self.mixup, augment=self.augment,
                           processes=0, **timed, **extra)

    def length(self) -> str:
        """How long it trains, as its first line says it."""
        if self.time is None:
            return f"{self.epochs} epochs"
        end = clock.strftime("%H:%M:%S", clock.localtime(self.started + self.time))
        return (f"as many epochs as fit in --time {duration_text(self.time)} (until {end})"
                + (f", at most {self.epochs}" if self.epochs else ""))

    def report_line(self, report: int, val_acc: float, since: float) -> str:
        """The line of each validation: after each epoch, or (--time) each share of the time."""
        at = (f"epoch {report:>3}/{self.epochs}" if self.time is None
              else f"report {report}/{TIMED_REPORTS}")
        return f"  {at}  val_acc {val_acc:.4f}  {clock.perf_counter() - since:7.1f}s"

    @classmethod
    def from_args(cls, args, drop: tuple[str, ...] = ()):
        """The settings given on the command line (argparse leaves the rest out), and when
        the command started."""
        skip = {"func", "command", "debug", *drop}
        return cls(**{k: v for k, v in vars(args).items() if k not in skip and v is not None})
