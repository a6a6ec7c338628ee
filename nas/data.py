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
    return {split: (arrays[split, "x"], arrays[split, "y"]) for split in ("train", "test")}, classes


def _load_torchvision(name: str, cls: str, folder: str, root: Path, download: bool, **split_args):
    """CIFAR-10/100 and SVHN through torchvision (which checks each file's md5)."""
    import torchvision.datasets

    if not (root / folder).exists() and not download:
        raise DataError(f"dataset {name!r} not found in data dir {root} (looked for "
                        f"{root / folder}); point --data-dir or NAS_DATA_DIR at its parent "
                        f"folder, or add --download")
    dataset_cls = getattr(torchvision.datasets, cls)
    try:
        train, test = (dataset_cls(str(root), download=download, **args) for args in split_args.values())
    except (RuntimeError, ImportError) as exc:  # torchvision's integrity check; scipy for SVHN
        raise DataError(f"dataset {name!r} in {root} is unusable: {exc}") from None
    if cls == "SVHN":  # already N, C, H, W
        return {"train": (train.data, train.labels), "test": (test.data, test.labels)}, DIGITS
    to_nchw = lambda a: np.ascontiguousarray(a.transpose(0, 3, 1, 2))  # noqa: E731
    return ({"train": (to_nchw(train.data), train.targets), "test": (to_nchw(test.data), test.targets)},
            tuple(train.classes))


def make_synthetic(n_train: int = 1500, n_test: int = 400, size: int = 16,
                   num_classes: int = 4, seed: int = 0):
    """Learnable toy data for tests: each class is a fixed random pattern, plus noise."""
    rng = np.random.default_rng(seed)
    prototypes = rng.uniform(0, 255, (num_classes, 1, size, size))

    def sample(n):
        y = rng.integers(0, num_classes, n)
        x = prototypes[y] * 0.5 + rng.uniform(0, 127, (n, 1, size, size))
        return x.astype(np.uint8), y

    return ({"train": sample(n_train), "test": sample(n_test)},
            tuple(f"class{i}" for i in range(num_classes)))


# --- FER2013: the Kaggle CSV (emotion,pixels,Usage) ------------------------------------------

FER_CLASSES = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
FER_USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


def read_fer_csv(path: Path):
    """Rows -> splits by Usage; every malformed row is named by file and line."""
    import csv

    splits = {split: ([], []) for split in FER_USAGE.values()}
    try:
        f = open(path, newline="")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    with f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if "emotion" not in header or "pixels" not in header:
            raise DataError(f"{path}, line 1: expected the header emotion,pixels,Usage; got "
                            f"{','.join(header)!r}")
        col = {name: header.index(name) for name in header}
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            where = f"{path}, line {line}"
            if len(row) != len(header):
                raise DataError(f"{where}: expected {len(header)} fields ({','.join(header)}), "
                                f"got {len(row)}")
            try:
                label, pixels = int(row[col["emotion"]]), [int(v) for v in row[col["pixels"]].split()]
            except ValueError:
                raise DataError(f"{where}: emotion and pixels must be integers") from None
            if not 0 <= label < len(FER_CLASSES):
                raise DataError(f"{where}: emotion {label} out of range 0-6")
            if len(pixels) != 48 * 48 or min(pixels) < 0 or max(pixels) > 255:
                raise DataError(f"{where}: expected 2304 pixel values (48x48) in 0-255, got "
                                f"{len(pixels)} values in {min(pixels, default=0)}-{max(pixels, default=0)}")
            usage = row[col["Usage"]] if "Usage" in col else "Training"
            if usage not in FER_USAGE:
                raise DataError(f"{where}: Usage {usage!r}; valid: {', '.join(FER_USAGE)}")
            splits[FER_USAGE[usage]][0].append(pixels)
            splits[FER_USAGE[usage]][1].append(label)
    return {split: (np.array(x, dtype=np.uint8).reshape(-1, 1, 48, 48), np.array(y, dtype=np.int64))
            for split, (x, y) in splits.items() if y}


def _load_fer2013(root: Path, path: Path | None, **_):
    """The Kaggle CSV: a file, or a folder holding fer2013.csv. Without one, the same rows as
    NumPy arrays (the fer2013.tar.xz that ../shared/data carries) give identical tensors."""
    candidates = [path, (path or root) / "fer2013.csv", root / "fer2013" / "fer2013.csv"]
    csv_path = next((p for p in candidates if p is not None and p.is_file()), None)
    if csv_path is not None:
        splits = _cached(csv_path, "fer2013", lambda: read_fer_csv(csv_path))
    else:
        arrays = [p for p in ((path or root) / "fer2013.tar.xz", root / "fer2013" / "fer2013.tar.xz")
                  if p.is_file()]
        if not arrays:
            looked = ", ".join(str(p) for p in dict.fromkeys(
                [path] if path and path.suffix == ".csv" else candidates[1:]) if p is not None)
            raise DataError(f"dataset 'fer2013' not found (looked for {looked}); download "
                            f"fer2013.csv from Kaggle and point --data-dir at its folder, or "
                            f"give its path: --dataset fer2013:PATH")
        splits, _ = read_arrays(arrays[0])
    if "train" not in splits:
        raise DataError(f"{csv_path}: no Training rows")
    return splits, FER_CLASSES


# --- arrays: x_train/y_train (+ x_val/y_val, x_test/y_test) as .npy, .npz or a tar of .npy --

ARRAY_KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def read_arrays(path: Path):
    """{split: (x NCHW uint8, y int64)} and the class names ("0".."K-1")."""
    import io
    import tarfile

    found: dict[str, tuple[str, np.ndarray]] = {}  # key -> (where it came from, array)

    def take(where: str, name: str, read) -> None:
        key = Path(name).name.removesuffix(".npy")
        if key in ARRAY_KEYS:
            try:
                found[key] = (where, read())
            except (ValueError, OSError, EOFError) as exc:
                raise DataError(f"cannot read {where}: {exc}") from None

    if path.is_dir():
        for file in sorted(path.glob("*.npy")):
            take(str(file), file.name, lambda f=file: np.load(f, allow_pickle=False))
    elif path.suffix == ".npz":
        try:
            archive = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise DataError(f"cannot read {path}: {exc}") from None
        for key in archive.files:
            take(f"{path}[{key}]", key, lambda k=key: archive[k])
    elif path.is_file() and tarfile.is_tarfile(path):
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.endswith(".npy"):
                    take(f"{path}[{member.name}]", member.name, lambda m=member: np.load(
                        io.BytesIO(tar.extractfile(m).read()), allow_pickle=False))
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
    num_classes = int(max(y.max() for _, y in splits.values() if len(y))) + 1
    return splits, tuple(str(i) for i in range(num_classes))


def _load_arrays(root: Path, path: Path | None, **_):
    if path is None:
        raise DataError("dataset 'arrays' needs a path: --dataset arrays:PATH (a folder of "
                        "x_train.npy/y_train.npy..., an .npz, or a tar(.xz) of .npy files)")
    return _cached(path, "arrays", lambda: read_arrays(path))  # an .xz takes seconds to inflate


# --- folder: an ImageFolder-style tree ---------------------------------------------------------

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


def read_folder(path: Path, image_size: int | None = None, grayscale: bool = False):
    """train/<class>/* (+ val/, test/ with the same class folders), decoded with Pillow to
    uint8; grey when --grayscale or when every image is grey. Sizes must agree unless
    --image-size resizes them (bilinear, to a square)."""
    from PIL import Image, UnidentifiedImageError

    if not (path / "train").is_dir():
        raise DataError(f"{path}: expected an image tree with train/<class>/ folders "
                        f"(optional val/ and test/)")
    classes = tuple(sorted(d.name for d in (path / "train").iterdir() if d.is_dir()))
    if not classes:
        raise DataError(f"{path / 'train'}: no class folders")
    splits, all_grey, size = {}, True, None
    for split in ("train", "val", "test"):
        if not (path / split).is_dir():
            continue
        extra = sorted({d.name for d in (path / split).iterdir() if d.is_dir()} - set(classes))
        if extra:
            raise DataError(f"{path / split}: class folder(s) {', '.join(extra)} not in train/")
        images, labels = [], []
        for label, name in enumerate(classes):
            for file in sorted((path / split / name).glob("*")) if (path / split / name).is_dir() else []:
                if file.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                try:
                    with Image.open(file) as img:
                        all_grey &= img.mode in ("1", "L", "LA", "I", "I;16", "F")
                        img = img.convert("RGB")
                        if image_size:
                            img = img.resize((image_size, image_size), Image.BILINEAR)
                        array = np.asarray(img, dtype=np.uint8)
                except (UnidentifiedImageError, OSError, ValueError) as exc:
                    raise DataError(f"cannot decode image {file}: {exc}") from None
                if size is None:
                    size = array.shape[:2]
                elif array.shape[:2] != size:
                    raise DataError(f"image {file} is {array.shape[1]}x{array.shape[0]}, others are "
                                    f"{size[1]}x{size[0]}; pass --image-size N to resize all to NxN")
                images.append(array.transpose(2, 0, 1))
                labels.append(label)
        if images:
            splits[split] = (np.stack(images), np.array(labels, dtype=np.int64))
    if "train" not in splits:
        raise DataError(f"{path / 'train'}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    if grayscale or all_grey:
        splits = {k: (np.ascontiguousarray(x[:, :1]), y) for k, (x, y) in splits.items()}
    return splits, classes


def _load_folder(root: Path, path: Path | None, image_size=None, grayscale=False, **_):
    if path is None:
        raise DataError("dataset 'folder' needs a path: --dataset folder:PATH (a tree with "
                        "train/<class>/ images, optional val/ and test/)")
    return _cached(path, f"folder-{image_size}-{grayscale}",
                   lambda: read_folder(path, image_size, grayscale))


def _cached(path: Path, what: str, read):
    """Decode once: keep the result under $NAS_CACHE_DIR (default ~/.cache/nas), keyed by the
    path, every file's size and mtime, and ``what``; never written beside the data."""
    import hashlib
    import json
    import pickle

    files = sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file())
    key = hashlib.sha256(json.dumps([str(path.resolve()), what] + [
        (str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files]).encode()).hexdigest()[:24]
    cache = Path(os.environ.get("NAS_CACHE_DIR") or Path.home() / ".cache" / "nas") / f"{key}.pkl"
    if cache.is_file():
        try:
            return pickle.loads(cache.read_bytes())
        except Exception:  # a torn or stale cache file: decode again
            pass
    result = read()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps(result, protocol=5))
        tmp.replace(cache)  # atomic: concurrent workers never read half a file
    except OSError:
        pass  # no cache then; correctness does not depend on it
    return result


# Flips and crops help natural images and faces; digits must not be mirrored.
AUGMENT = {"cifar10": "flip-crop", "cifar100": "flip-crop", "svhn": "crop",
           "fer2013": "flip-crop", "folder": "flip-crop"}

LOADERS = {
    "mnist": lambda root, path, download, **_: _load_idx(
        "mnist", "MNIST", "MNIST", DIGITS, path or root, download),
    "fashion-mnist": lambda root, path, download, **_: _load_idx(
        "fashion-mnist", "FashionMNIST", "FashionMNIST", FASHION, path or root, download),
    "cifar10": lambda root, path, download, **_: _load_torchvision(
        "cifar10", "CIFAR10", "cifar-10-batches-py", path or root, download,
        train={"train": True}, test={"train": False}),
    "cifar100": lambda root, path, download, **_: _load_torchvision(
        "cifar100", "CIFAR100", "cifar-100-python", path or root, download,
        train={"train": True}, test={"train": False}),
    "svhn": lambda root, path, download, **_: _load_torchvision(
        "svhn", "SVHN", "train_32x32.mat", path or root, download,
        train={"split": "train"}, test={"split": "test"}),
    "fer2013": lambda root, path, download, **kw: _load_fer2013(root, path, **kw),
    "arrays": lambda root, path, download, **kw: _load_arrays(root, path, **kw),
    "folder": lambda root, path, download, **kw: _load_folder(root, path, **kw),
    "synthetic": lambda root, path, download, **_: make_synthetic(),
}
NEEDS_PATH = ("arrays", "folder")


def dataset_names() -> list[str]:
    return list(LOADERS)


def split_name(name: str) -> tuple[str, str | None]:
    """'arrays:some/path' -> ('arrays', 'some/path'); 'mnist' -> ('mnist', None)."""
    kind, sep, path = name.partition(":")
    return kind, (path if sep else None)


def check_name(name: str) -> None:
    kind, path = split_name(name)
    if kind not in LOADERS:
        raise DataError(f"unknown dataset {kind!r}; valid: {', '.join(LOADERS)} "
                        f"(arrays and folder as NAME:PATH)")
    if kind in NEEDS_PATH and not path:
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


def _resolve_path(path: str | None, root: Path) -> Path | None:
    if not path:
        return None
    given = Path(path).expanduser()
    return given if given.is_absolute() or given.exists() or not (root / given).exists() else root / given


def load(name: str, data_dir=None, download: bool = False, limit_train: int | None = None,
         image_size: int | None = None, grayscale: bool = False) -> Data:
    check_name(name)
    if limit_train is not None and limit_train < 1:
        raise DataError(f"--limit-train must be a positive number of images, got {limit_train}")
    kind, path = split_name(name)
    root = resolve_data_dir(data_dir)
    resolved = _resolve_path(path, root)
    if resolved is not None:  # recorded absolute, so the study finds it again from anywhere
        name = f"{kind}:{resolved.resolve()}"
    splits, classes = LOADERS[kind](root, resolved, download,
                                    image_size=image_size, grayscale=grayscale)
    tensors = {k: (torch.from_numpy(np.array(x, dtype=np.uint8)), torch.from_numpy(np.asarray(y, dtype=np.int64)))
               for k, (x, y) in splits.items()}
    train_x, train_y = tensors["train"]

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
                    tuple(classes), AUGMENT.get(kind, "none"))
    return Data(info, train_x, train_y, *tensors["val"], *tensors["test"])
