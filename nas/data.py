"""Datasets as uint8 tensors, read where they lie.

Every dataset loads to ``Data``: uint8 images (N, C, H, W) and int64 labels for train,
validation and test, plus ``DataInfo`` (shape, classes, normalisation). Training normalises
per batch, so the whole set stays small (uint8) and can sit on the training device.

The data directory is never written to unless ``download=True`` is given: MNIST-style idx
files are read straight from their published ``.gz`` files. Validation is split off the
training set with a fixed seed (the same split for every search); the test set is only
used to score the Pareto front and exported models.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nas.errors import UsageError

VAL_FRACTION = 0.1
SPLIT_SEED = 0  # fixed: every trial and every study sees the same validation split


class DataError(UsageError):
    """Missing or malformed data; the message says what was looked for and how to fix it."""


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
    augment: str = "none"  # per-batch training augmentation (nas.train.augment)

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


# --- MNIST-style idx files ------------------------------------------------------------------

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DIGITS = tuple(str(i) for i in range(10))
FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot")


def _find_idx(root: Path, folder: str, stem: str) -> Path | None:
    for directory in (root / folder / "raw", root / folder, root):
        for name in (stem + ".gz", stem):
            if (directory / name).is_file():
                return directory / name
    return None


def _read_idx(path: Path, magic: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if len(raw) < 8 or int.from_bytes(raw[:4], "big") != magic:
        raise DataError(f"{path} is not an idx file (expected magic number {magic})")
    if magic == 2051:  # images: count, rows, cols
        count, rows, cols = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
        data = np.frombuffer(raw, np.uint8, offset=16)
        if data.size != count * rows * cols:
            raise DataError(f"{path} is truncated: {data.size} bytes for {count} images of "
                            f"{rows}x{cols}")
        return data.reshape(count, 1, rows, cols)
    count = int.from_bytes(raw[4:8], "big")
    data = np.frombuffer(raw, np.uint8, offset=8)
    if data.size != count:
        raise DataError(f"{path} is truncated: {data.size} labels, header says {count}")
    return data


def _load_idx(name: str, folder: str, torchvision_cls: str, classes, root: Path, download: bool):
    def find_all():
        return {(split, kind): _find_idx(root, folder, stem)
                for split, stems in _IDX_FILES.items() for kind, stem in zip(("x", "y"), stems)}

    paths = find_all()
    if any(p is None for p in paths.values()) and download:
        import torchvision.datasets

        dataset_cls = getattr(torchvision.datasets, torchvision_cls)
        for train in (True, False):
            dataset_cls(root=str(root), train=train, download=True)
        paths = find_all()
    missing = [key for key, p in paths.items() if p is None]
    if missing:
        split, kind = missing[0]
        stem = _IDX_FILES[split][0 if kind == "x" else 1]
        raise DataError(f"dataset {name!r} not found in data dir {root} (looked for "
                        f"{root / folder / 'raw' / (stem + '.gz')}); point --data-dir or "
                        f"NAS_DATA_DIR at the folder that holds {folder}/, or add --download")
    arrays = {key: _read_idx(p, 2051 if key[1] == "x" else 2049) for key, p in paths.items()}
    return (arrays["train", "x"], arrays["train", "y"], arrays["test", "x"],
            arrays["test", "y"], classes)


def _load_cifar10(root: Path, download: bool):
    import torchvision.datasets

    if not (root / "cifar-10-batches-py").is_dir() and not download:
        raise DataError(f"dataset 'cifar10' not found in data dir {root} (looked for "
                        f"{root / 'cifar-10-batches-py'}); point --data-dir or NAS_DATA_DIR "
                        f"at its parent folder, or add --download")
    try:
        train, test = (torchvision.datasets.CIFAR10(str(root), train=t, download=download)
                       for t in (True, False))
    except RuntimeError as exc:  # torchvision's integrity check
        raise DataError(f"dataset 'cifar10' in {root} is unusable: {exc}") from None
    to_nchw = lambda a: np.ascontiguousarray(a.transpose(0, 3, 1, 2))  # noqa: E731
    return (to_nchw(train.data), np.array(train.targets), to_nchw(test.data),
            np.array(test.targets), tuple(train.classes))


def make_synthetic(n_train: int = 1500, n_test: int = 400, size: int = 16,
                   num_classes: int = 4, seed: int = 0):
    """Learnable toy data for tests: each class is a fixed random pattern, plus noise."""
    rng = np.random.default_rng(seed)
    prototypes = rng.uniform(0, 255, (num_classes, 1, size, size))

    def sample(n):
        y = rng.integers(0, num_classes, n)
        x = prototypes[y] * 0.5 + rng.uniform(0, 127, (n, 1, size, size))
        return x.astype(np.uint8), y

    train_x, train_y = sample(n_train)
    test_x, test_y = sample(n_test)
    return train_x, train_y, test_x, test_y, tuple(f"class{i}" for i in range(num_classes))


# Flips and crops help natural images; digits must not be mirrored, and the search's brief
# trials on small digit images gain nothing from translation.
AUGMENT = {"cifar10": "flip-crop"}

LOADERS = {
    "mnist": lambda root, dl: _load_idx("mnist", "MNIST", "MNIST", DIGITS, root, dl),
    "fashion-mnist": lambda root, dl: _load_idx("fashion-mnist", "FashionMNIST",
                                                "FashionMNIST", FASHION, root, dl),
    "cifar10": _load_cifar10,
    "synthetic": lambda root, dl: make_synthetic(),
}


def dataset_names() -> list[str]:
    return list(LOADERS)


def load(name: str, data_dir=None, download: bool = False, limit_train: int | None = None) -> Data:
    if name not in LOADERS:
        raise DataError(f"unknown dataset {name!r}; valid: {', '.join(LOADERS)}")
    if limit_train is not None and limit_train < 1:
        raise DataError(f"--limit-train must be a positive number of images, got {limit_train}")
    root = resolve_data_dir(data_dir)
    train_x, train_y, test_x, test_y, classes = LOADERS[name](root, download)
    train_x, test_x = torch.from_numpy(np.array(train_x)), torch.from_numpy(np.array(test_x))
    train_y = torch.from_numpy(np.asarray(train_y, dtype=np.int64))
    test_y = torch.from_numpy(np.asarray(test_y, dtype=np.int64))

    order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_val = max(1, int(len(order) * VAL_FRACTION))
    val_idx, train_idx = order[:n_val], order[n_val:]
    if limit_train is not None:
        train_idx = train_idx[:limit_train]

    val_x, val_y = train_x[val_idx], train_y[val_idx]
    train_x, train_y = train_x[train_idx], train_y[train_idx]
    # Normalisation statistics of the training split, per channel.
    pixels = train_x.float().div_(255).transpose(0, 1).reshape(train_x.shape[1], -1)
    info = DataInfo(name, train_x.shape[1], train_x.shape[2], train_x.shape[3], len(classes),
                    tuple(round(v, 4) for v in pixels.mean(1).tolist()),
                    tuple(round(max(v, 1e-3), 4) for v in pixels.std(1).tolist()), classes,
                    AUGMENT.get(name, "none"))
    return Data(info, train_x, train_y, val_x, val_y, test_x, test_y)
