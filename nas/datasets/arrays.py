"""NumPy arrays: x_train/y_train (+ x_val/y_val, x_test/y_test) as a folder of .npy files,
one .npz, or a tar(.xz) of .npy files. Never unpickled (allow_pickle=False)."""

from __future__ import annotations

import io
import lzma
import math
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from nas.datasets.cache import cached
from nas.errors import DataError

ARRAY_KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
MAX_CLASSES = 100_000  # more distinct labels than this is a column of ids, not classes
# What a truncated or corrupt .npy / .npz / tar(.xz) raises while it is read.
UNREADABLE = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, tarfile.TarError,
              lzma.LZMAError)


def check_declared_size(where: str, f, stored: int) -> None:
    """An .npy header declares its shape and dtype: refuse one that declares more bytes than
    the file holds (a 2 KB file can declare 93 GiB, which np.load would try to allocate)."""
    try:
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f"unsupported .npy version {version}")
        shape, _, dtype = read_header(f)
    except UNREADABLE as exc:
        raise DataError(f"cannot read {where}: {exc}") from None
    declared, holds = math.prod(shape) * dtype.itemsize, stored - f.tell()
    if declared > holds:
        raise DataError(f"{where}: declares a {dtype} array of shape {shape} ({declared:,} "
                        f"bytes) but holds {holds:,} bytes: truncated, or not an array file")


def read_arrays(path: Path):
    """{split: (x NCHW uint8, y int64)} and the class names ("0".."K-1")."""
    found: dict[str, tuple[str, np.ndarray]] = {}  # key -> (where it came from, array)

    def take(where: str, name: str, open_npy, stored: int) -> None:
        """An .npy's bytes (``open_npy()``, ``stored`` of them): its header checked first."""
        key = Path(name).name.removesuffix(".npy")
        if key in ARRAY_KEYS:
            try:
                with open_npy() as f:
                    check_declared_size(where, f, stored)
                    f.seek(0)
                    found[key] = (where, np.load(f, allow_pickle=False))
            except UNREADABLE as exc:
                raise DataError(f"cannot read {where}: {exc}") from None
            except MemoryError:
                raise DataError(f"{where}: too large to load into this machine's memory") from None

    if path.is_dir():
        for file in sorted(path.glob("*.npy")):
            take(str(file), file.name, lambda f=file: open(f, "rb"), file.stat().st_size)
    elif path.suffix == ".npz":
        try:
            archive = zipfile.ZipFile(path)
        except UNREADABLE as exc:
            raise DataError(f"cannot read {path}: {exc}") from None
        with archive:
            for member in archive.infolist():
                if member.filename.endswith(".npy"):
                    take(f"{path}[{member.filename.removesuffix('.npy')}]", member.filename,
                         lambda m=member: archive.open(m), member.file_size)
    elif path.is_file() and tarfile.is_tarfile(path):
        try:
            with tarfile.open(path) as tar:
                for member in tar.getmembers():
                    if member.isfile() and member.name.endswith(".npy"):
                        take(f"{path}[{member.name}]", member.name,
                             lambda m=member: io.BytesIO(tar.extractfile(m).read()), member.size)
        except UNREADABLE as exc:
            raise DataError(f"cannot read {path}: {exc}") from None
    elif not path.exists():
        raise DataError(f"arrays not found: {path} (give a folder of .npy files, an .npz, or a "
                        f"tar(.xz) of .npy files)")
    else:
        raise DataError(f"{path}: expected a folder of .npy files, an .npz, or a tar(.xz) of .npy files")
    if "x_train" not in found or "y_train" not in found:
        raise DataError(f"{path}: needs x_train and y_train (found: {', '.join(sorted(found)) or 'none'})")

    splits = {}
    for split in ("train", "val", "test"):
        if f"x_{split}" not in found:
            continue
        (x_where, x), (y_where, y) = found[f"x_{split}"], found.get(f"y_{split}", (path, None))
        if y is None:
            raise DataError(f"{path}: has x_{split} but no y_{split}")
        if x.dtype != np.uint8:
            raise DataError(f"{x_where}: images must be uint8 (0-255), got {x.dtype}")
        if x.ndim == 3:
            x = x[:, None]
        elif x.ndim == 4 and x.shape[-1] in (1, 3, 4):
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        else:
            raise DataError(f"{x_where}: images must be (N, H, W) or (N, H, W, C) with C 1, 3 "
                            f"or 4; got shape {x.shape}")
        if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
            raise DataError(f"{y_where}: labels must be {len(x)} integers >= 0 (one per image "
                            f"of x_{split}); got shape {y.shape}, dtype {y.dtype}")
        splits[split] = (x, y.astype(np.int64))
    shapes = {split: x.shape[1:] for split, (x, _) in splits.items()}
    if len(set(shapes.values())) > 1:
        raise DataError(f"{path}: image shapes differ between splits: {shapes}")
    if len(splits["train"][0]) == 0:
        raise DataError(f"{path}: x_train holds no images")
    # The classes are the labels that occur in training, in order; each split's labels become
    # their index (labels 0..K-1 stay as they are).
    classes = np.unique(splits["train"][1])
    if len(classes) > MAX_CLASSES:
        raise DataError(f"{path}: y_train holds {len(classes):,} distinct labels (at most "
                        f"{MAX_CLASSES:,} classes); labels must be class numbers, not ids")
    for split, (x, y) in splits.items():
        index = np.searchsorted(classes, y).clip(0, len(classes) - 1)
        unseen = np.unique(y[classes[index] != y])
        if len(unseen):
            raise DataError(f"{path}: y_{split} has label(s) {', '.join(map(str, unseen[:5]))} "
                            f"that no training image has; every class needs training images")
        splits[split] = (x, index.astype(np.int64))
    return splits, tuple(str(c) for c in classes)


def read(request):
    path = request.path
    if path is None:
        raise DataError("dataset 'arrays' needs a path: --dataset arrays:PATH (a folder of "
                        "x_train.npy/y_train.npy..., an .npz, or a tar(.xz) of .npy files)")
    return cached(path, "arrays", lambda: read_arrays(path))  # an .xz takes seconds to inflate
