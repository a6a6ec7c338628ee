"""An ImageFolder-style tree: train/<class>/* (+ val/, test/), decoded once with Pillow."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from nas.datasets.cache import cached
from nas.errors import DataError

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
                if not file.is_file():  # reading a named pipe or a device would never end
                    raise DataError(f"{file} is not a regular file (a named pipe, socket or "
                                    f"device); an image folder holds image files only")
                try:
                    # The filter before open(): Pillow's size check runs as the file opens.
                    with warnings.catch_warnings():
                        warnings.simplefilter("error", Image.DecompressionBombWarning)
                        img = Image.open(file)
                    with img:
                        all_grey &= img.mode in ("1", "L", "LA", "I", "I;16", "F")
                        # "L" is ITU-R 601 luma, as users' own convert("L") gives at inference.
                        img = img.convert("L" if grayscale else "RGB")
                        if image_size:
                            img = img.resize((image_size, image_size), Image.BILINEAR)
                        array = np.asarray(img, dtype=np.uint8).reshape(img.height, img.width, -1)
                except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
                    raise DataError(f"image {file} is too large to decode safely ({exc}); "
                                    f"shrink it first") from None
                except (UnidentifiedImageError, OSError, ValueError) as exc:
                    raise DataError(f"cannot decode image {file}: {exc}") from None
                if size is None:
                    size = array.shape[:2]
                elif array.shape[:2] != size:
                    raise DataError(f"image {file} is {array.shape[1]}x{array.shape[0]}, others are "
                                    f"{size[1]}x{size[0]}; pass --image-size N to resize all to NxN")
                images.append(array.transpose(2, 0, 1))
                labels.append(label)
        if split == "train" and images:
            empty = [name for label, name in enumerate(classes) if label not in set(labels)]
            if empty:  # it would be a class the model can never learn
                raise DataError(f"{path / 'train'}: class folder(s) {', '.join(empty)} hold no "
                                f"images; remove them or add images")
        if images:
            splits[split] = (np.stack(images), np.array(labels, dtype=np.int64))
    if "train" not in splits:
        raise DataError(f"{path / 'train'}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    if grayscale or all_grey:
        splits = {k: (np.ascontiguousarray(x[:, :1]), y) for k, (x, y) in splits.items()}
    return splits, classes


def read(request):
    path, image_size, grayscale = request.path, request.image_size, request.grayscale
    if path is None:
        raise DataError("dataset 'folder' needs a path: --dataset folder:PATH (a tree with "
                        "train/<class>/ images, optional val/ and test/)")
    return cached(path, f"folder-{image_size}-{grayscale}",
                   lambda: read_folder(path, image_size, grayscale))
