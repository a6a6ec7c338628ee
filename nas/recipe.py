"""The recipe ``nas train`` and ``nas baseline`` share: a study's data on a device, and
the training settings both take (epochs, batch, LR, label smoothing, seed, augmentation)."""

from __future__ import annotations

from dataclasses import dataclass

from nas import store
from nas.device import on_device, resolve_device
from nas.errors import UsageError, check_choice, check_int, check_positive
from nas.trainer import AUGMENTS, TrainConfig


@dataclass(kw_only=True)
class TrainingRun:
    """What `nas train` and `nas baseline` share: a study's data, a device, the recipe."""
    study_dir: str
    epochs: int
    storage: str | None = None  # --storage: a storage outside the study folder, named by the user
    data_dir: str | None = None
    device: str = "auto"
    batch_size: int | None = None
    lr: float | None = None  # None: 0.005 x sqrt(batch / 128)
    label_smoothing: float = 0.0
    seed: int = 0
    augment: str | None = None  # None: the search's --augment, else the dataset's own
    # Images to train on: None every one (nas train), RECORDED the search's --limit-train
    # (nas baseline, so its star sits among the front's points), else at most N.
    limit_train: int | str | None = None

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "seed"):
            check_int(name, getattr(self, name))
        if self.limit_train != store.RECORDED:
            check_int("limit_train", self.limit_train)
        check_positive("lr", self.lr)
        check_choice("augment", self.augment, AUGMENTS)
        if not 0 <= self.label_smoothing < 1:
            raise UsageError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")

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

    def train_config(self, **extra) -> TrainConfig:
        return TrainConfig(self.epochs, self.batch_size, self.lr, seed=self.seed,
                           label_smoothing=self.label_smoothing, augment=self.augment, **extra)

    @classmethod
    def from_args(cls, args, drop: tuple[str, ...] = ()):
        """The settings given on the command line (argparse leaves the rest None)."""
        skip = {"func", "command", "debug", *drop}
        return cls(**{k: v for k, v in vars(args).items() if k not in skip and v is not None})
