"""Dataset readers behind one factory, as timm's reader factory: ``--dataset NAME`` or
``NAME:PATH`` picks a format, and every format's reader has one signature,
``read(request) -> ({split: (images uint8 NCHW, labels int)}, class names)``.

Readers only decode. What every dataset then gets (the fixed validation split, the
normalisation statistics, tensors) is the data contract's job, in ``nas.data``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

from nas.datasets import arrays, fer2013, folder, idx, synthetic, torchvision_sets
from nas.errors import DataError

DIGITS = tuple(str(i) for i in range(10))
FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot")


@dataclass(frozen=True)
class Request:
    """What a reader is asked for."""
    root: Path  # --data-dir (or $NAS_DATA_DIR)
    path: Path | None = None  # the PATH of NAME:PATH, resolved against the root
    download: bool = False
    image_size: int | None = None  # image folders: resize to NxN
    grayscale: bool = False  # image folders: one channel


@dataclass(frozen=True)
class Format:
    read: Callable
    augment: str = "none"  # training augmentation that suits it (digits must not be mirrored)
    needs_path: bool = False  # only NAME:PATH makes sense
    # For a long training (the final one of a --time search), when it differs from augment:
    # digits get small warps (not measured against none here). Clothes get none: a net of this size trained for minutes
    # is still underfitting, and flips and shifts cost it accuracy (benchmarks/train_recipe.py).
    # Faces get a flip and small warps instead of a flip and shifts: better on validation
    # for both nets it was measured on (benchmarks/train_recipe.py).
    long_augment: str | None = None


FORMATS = {
    "mnist": Format(partial(idx.read, name="mnist", folder="MNIST", torchvision_cls="MNIST",
                            classes=DIGITS), long_augment="affine"),
    "fashion-mnist": Format(partial(idx.read, name="fashion-mnist", folder="FashionMNIST",
                                    torchvision_cls="FashionMNIST", classes=FASHION)),
    "cifar10": Format(partial(torchvision_sets.read, name="cifar10", cls="CIFAR10",
                              folder="cifar-10-batches-py", train_args={"train": True},
                              test_args={"train": False}), "flip-crop"),
    "cifar100": Format(partial(torchvision_sets.read, name="cifar100", cls="CIFAR100",
                               folder="cifar-100-python", train_args={"train": True},
                               test_args={"train": False}), "flip-crop"),
    "svhn": Format(partial(torchvision_sets.read, name="svhn", cls="SVHN", folder="train_32x32.mat",
                           train_args={"split": "train"}, test_args={"split": "test"}), "crop"),
    "fer2013": Format(fer2013.read, "flip-crop", long_augment="flip-affine"),
    "arrays": Format(arrays.read, needs_path=True),
    "folder": Format(folder.read, "flip-crop", needs_path=True),
    "synthetic": Format(synthetic.read),
}


def dataset_names() -> list[str]:
    return list(FORMATS)


def split_name(name: str) -> tuple[str, str | None]:
    """'arrays:some/path' -> ('arrays', 'some/path'); 'mnist' -> ('mnist', None)."""
    kind, sep, path = name.partition(":")
    return kind, (path if sep else None)


def long_augment(name: str, chosen: str | None = None) -> str:
    """The augmentation of a long training (a --time search's final one, nas train) on
    dataset ``name``: ``chosen`` (the search's --augment) when given, else the dataset's."""
    form = FORMATS[split_name(name)[0]]
    return chosen or form.long_augment or form.augment


def check_name(name: str) -> None:
    kind, path = split_name(name)
    if kind not in FORMATS:
        raise DataError(f"unknown dataset {kind!r}; valid: {', '.join(FORMATS)} "
                        f"(arrays and folder as NAME:PATH)")
    if FORMATS[kind].needs_path and not path:
        raise DataError(f"dataset {kind!r} needs a path: --dataset {kind}:PATH")


def label(name: str) -> str:
    """A short name for study names: the kind, or the file/folder name for NAME:PATH."""
    kind, path = split_name(name)
    if not path:
        return kind
    stem = Path(path.rstrip("/")).name
    for suffix in (".tar.xz", ".tar.gz", ".tgz", ".tar", ".npz", ".csv"):
        stem = stem.removesuffix(suffix)
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in stem) or kind


def resolve_path(path: str | None, root: Path) -> Path | None:
    """PATH as given, or inside the data dir when it is not there."""
    if not path:
        return None
    given = Path(path).expanduser()
    return given if given.is_absolute() or given.exists() or not (root / given).exists() else root / given


def read(kind: str, request: Request):
    """(splits, classes) of a dataset of format ``kind`` (a checked name's NAME part; its
    PATH, resolved, is in the request)."""
    return FORMATS[kind].read(request)
