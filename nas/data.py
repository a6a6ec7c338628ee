"""The data contract: every dataset loads to ``Data``, uint8 images (N, C, H, W) and int64
labels for train, validation and test, plus ``DataInfo`` (shape, classes, normalisation).
Training normalises per batch, so the whole set stays small (uint8) and can sit on the
training device. The formats themselves are read by ``nas.datasets``.

The data directory is never written to unless ``download=True`` is given. Validation is
split off the training set with a fixed seed (the same split for every search); the test
set is only used to score the Pareto front and exported models.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nas import datasets
from nas.errors import DataError

VAL_FRACTION = 0.1
SPLIT_SEED = 0  # fixed: every trial and every study sees the same validation split


@dataclass(frozen=True)
class DataInfo:
    name: str
    in_channels: int
    height: int
    width: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...]
    augment: str = "none"  # per-batch training augmentation (nas.trainer.augment)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.height, self.width)


@dataclass
class Data:
    info: DataInfo
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def resolve_data_dir(data_dir: str | os.PathLike | None, fallback: str = "data") -> Path:
    """--data-dir, else $NAS_DATA_DIR, else ``fallback`` (./data, or the folder a study used)."""
    return Path(data_dir or os.environ.get("NAS_DATA_DIR") or fallback).expanduser()


def load(name: str, data_dir=None, download: bool = False, limit_train: int | None = None,
         image_size: int | None = None, grayscale: bool = False) -> Data:
    datasets.check_name(name)
    if limit_train is not None and limit_train < 1:
        raise DataError(f"--limit-train must be a positive number of images, got {limit_train}")
    kind, path = datasets.split_name(name)
    root = resolve_data_dir(data_dir)
    resolved = datasets.resolve_path(path, root)
    if resolved is not None:  # recorded absolute, so the study finds it again from anywhere
        name = f"{kind}:{resolved.resolve()}"
    splits, classes = datasets.read(kind, datasets.Request(root, resolved, download, image_size,
                                                           grayscale))
    tensors = {k: (torch.from_numpy(np.array(x, dtype=np.uint8)),
                   torch.from_numpy(np.asarray(y, dtype=np.int64)))
               for k, (x, y) in splits.items()}
    train_x, train_y = tensors["train"]
    labels = torch.unique(train_y)
    if len(labels) < 2:  # it would "search" to accuracy 1.0 and learn nothing
        raise DataError(f"dataset {name!r}: every training image has label "
                        f"{labels.tolist()[0] if len(labels) else '-'}; a classifier needs at "
                        f"least 2 classes")
    for split, (_, y) in tensors.items():
        unseen = sorted(set(torch.unique(y).tolist()) - set(labels.tolist()))
        if unseen:  # accuracy on them is 0 whatever the search finds
            raise DataError(f"dataset {name!r}: {split} labels {unseen[:5]} never occur in training")

    # Missing validation (and test) splits come off the training set, with a fixed seed.
    order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(SPLIT_SEED))
    held = {}
    for split in ("val", "test"):
        if split not in tensors:
            n = max(1, int(len(train_x) * VAL_FRACTION))
            held[split], order = order[:n], order[n:]
    train_idx = order if held else torch.arange(len(train_x))
    if limit_train is not None:
        train_idx = train_idx[:limit_train]
    for split, idx in held.items():
        tensors[split] = (train_x[idx], train_y[idx])
    train_x, train_y = train_x[train_idx], train_y[train_idx]
    if len(train_x) == 0:
        raise DataError(f"dataset {name!r} has no training images left after the splits")
    # Normalisation statistics of the training split, per channel.
    pixels = train_x.float().div_(255).transpose(0, 1).reshape(train_x.shape[1], -1)
    info = DataInfo(name, train_x.shape[1], train_x.shape[2], train_x.shape[3],
                    max(len(classes), int(max(y.max() for _, y in tensors.values())) + 1),
                    tuple(round(v, 4) for v in pixels.mean(1).tolist()),
                    tuple(round(max(v, 1e-3), 4) for v in pixels.std(1).tolist()),
                    tuple(classes), datasets.FORMATS[kind].augment)
    return Data(info, train_x, train_y, *tensors["val"], *tensors["test"])


RECORDED = "recorded"  # load_study_data: the --limit-train the search used


def load_recorded(recorded, data_dir=None, limit_train=RECORDED) -> Data | None:
    """A study's dataset as its record (nas.records.DataRecord) says: from --data-dir, else
    $NAS_DATA_DIR, else the folder the search used; with the search's --limit-train unless
    told otherwise. None when not found."""
    data_dir = resolve_data_dir(data_dir, fallback=recorded.dir or "data")
    if limit_train == RECORDED:
        limit_train = recorded.limit_train
    try:
        return load(recorded.name, data_dir, False, limit_train, recorded.image_size,
                    recorded.grayscale)
    except DataError:
        return None
