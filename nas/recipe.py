"""The recipe ``nas train`` and ``nas baseline`` share: a study's data on a device, and
the training settings both take (epochs or a time, batch, LR, label smoothing, seed,
augmentation)."""

from __future__ import annotations

import time as clock  # "time" is the --time field below
from dataclasses import dataclass, field

from nas import store
from nas.device import on_device, resolve_device
from nas.errors import UsageError, check_choice, check_int, check_positive
from nas.augment import AUGMENTS
from nas.trainer import EPOCH_CAP, TrainConfig, end_margin

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
    """What `nas train` and `nas baseline` share: a study's data, a device, the recipe."""
    study_dir: str
    epochs: int | None = None  # None: the command's default, or as many as fit in --time
    time: int | None = None  # seconds from the command's start to the end of training, data loading included
    started: float = field(default_factory=clock.time)  # when the command started (clock.time())
    storage: str | None = None  # --storage: a storage outside the study folder, named by the user
    data_dir: str | None = None
    device: str = "auto"
    batch_size: int | None = None
    lr: float | None = None  # None: 0.005 x sqrt(batch / 128)
    label_smoothing: float = 0.0
    mixup: float = 0.0  # Beta(mixup, mixup) blend of each batch with itself shuffled; 0: off
    seed: int = 0
    augment: str | None = None  # None: the search's --augment, else the dataset's own
    # Images to train on: None every one (nas train), RECORDED the search's --limit-train
    # (nas baseline, so its star sits among the front's points), else at most N.
    limit_train: int | str | None = None

    DEFAULT_EPOCHS = 12

    def validate(self) -> None:
        if self.epochs is None and self.time is None:
            self.epochs = self.DEFAULT_EPOCHS
        for name in ("epochs", "time", "batch_size", "seed"):
            check_int(name, getattr(self, name))
        if self.limit_train != store.RECORDED:
            check_int("limit_train", self.limit_train)
        check_positive("lr", self.lr)
        check_choice("augment", self.augment, AUGMENTS)
        if not 0 <= self.label_smoothing < 1:
            raise UsageError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 <= self.mixup <= 10:
            raise UsageError(f"--mixup must be from 0 (off) to 10, got {self.mixup}; 0.2-1 is usual")

    def load(self):
        """(study, its data on the device, the device), after every check."""
        self.validate()
        study = store.load_study(self.study_dir, self.storage)
        device = resolve_device(self.device)
        data = store.load_study_data(study, self.data_dir, self.limit_train)
        if data is None:
            raise UsageError(f"the dataset of study {study.study_name!r} "
                             f"({study.user_attrs['data']['name']}) was not found; pass --data-dir")
        if self.augment is None:  # train the way the search did unless told otherwise
            self.augment = study.user_attrs.get("config", {}).get("augment") or data.info.augment
        return study, on_device(data, device), device

    def train_config(self, data, **extra) -> TrainConfig:
        timed = {} if self.time is None else {
            "time_limit": time_left(self.time, self.started, f"{data.info.name}"),
            "time_reports": TIMED_REPORTS, "quick_images": 0, "after_images": len(data.test_x)}
        return TrainConfig(self.epochs or EPOCH_CAP, self.batch_size, self.lr, seed=self.seed,
                           label_smoothing=self.label_smoothing, mixup=self.mixup, augment=self.augment,
                           **timed, **extra)

    def length(self) -> str:
        """How long it trains, as its first line says it."""
        if self.time is None:
            return f"{self.epochs} epochs"
        from nas.config import duration_text

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
        """The settings given on the command line (argparse leaves the rest None), and
        when the command started."""
        skip = {"func", "command", "debug", *drop}
        return cls(**{k: v for k, v in vars(args).items() if k not in skip and v is not None})
