"""MNIST-style idx files (MNIST, Fashion-MNIST), read straight from their published .gz files.

MNIST itself ships inside the package (``embedded/MNIST``, the four published files,
byte-identical, md5-checked on every load), so the default dataset needs no data folder
and no network; a data dir that holds the files still wins.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

from nas.errors import DataError
from nas.progress import step

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
EMBEDDED = Path(__file__).parent / "embedded"
# The published files' md5 sums (the ones torchvision checks too).
EMBEDDED_MD5 = {"MNIST": {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                          "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
                          "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
                          "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}}


def embedded(folder: str) -> Path | None:
    """The package's own copy of ``folder`` (MNIST), checked file by file; None if it has none."""
    sums = EMBEDDED_MD5.get(folder)
    if sums is None:
        return None
    for name, md5 in sums.items():
        path = EMBEDDED / folder / name
        digest = hashlib.md5(path.read_bytes()).hexdigest() if path.is_file() else "missing"
        if digest != md5:
            raise DataError(f"the embedded {folder} file {path} is damaged (md5 {digest}, published "
                            f"{md5}); reinstall nas, or point --data-dir at a copy of {folder}/")
    return EMBEDDED / folder


def find(root: Path, folder: str, stem: str) -> Path | None:
    for directory in (root / folder / "raw", root / folder, root):
        for name in (stem + ".gz", stem):
            if (directory / name).is_file():
                return directory / name
    return None


def read_idx(path: Path, magic: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if len(raw) < 8 or int.from_bytes(raw[:4], "big") != magic:
        raise DataError(f"{path} is not an idx file (expected magic number {magic})")
    if magic == IMAGES_MAGIC:  # images: count, rows, cols
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


def read(request, *, name: str, folder: str, torchvision_cls: str, classes: tuple[str, ...]):
    """The four idx files under ``<root>/<folder>/raw/`` (or ``<folder>/``, or the root itself)."""
    root = request.path or request.root

    def find_all():
        return {(split, kind): find(root, folder, stem)
                for split, stems in IDX_FILES.items() for kind, stem in zip(("x", "y"), stems)}

    paths = find_all()
    if any(p is None for p in paths.values()) and not request.download and embedded(folder):
        root = EMBEDDED  # the package's own copy
        paths = find_all()
    if any(p is None for p in paths.values()) and request.download:
        import torchvision.datasets

        dataset_cls = getattr(torchvision.datasets, torchvision_cls)
        for train in (True, False):
            dataset_cls(root=str(root), train=train, download=True)
        paths = find_all()
    missing = [key for key, p in paths.items() if p is None]
    if missing:
        split, kind = missing[0]
        stem = IDX_FILES[split][0 if kind == "x" else 1]
        raise DataError(f"dataset {name!r} not found in data dir {root} (looked for "
                        f"{root / folder / 'raw' / (stem + '.gz')}); point --data-dir or "
                        f"NAS_DATA_DIR at the folder that holds {folder}/, or add --download")
    with step(f"reading {name} from {paths['train', 'x'].parent}"):
        arrays = {key: read_idx(p, IMAGES_MAGIC if key[1] == "x" else LABELS_MAGIC)
                  for key, p in paths.items()}
    return {split: (arrays[split, "x"], arrays[split, "y"]) for split in ("train", "test")}, classes
