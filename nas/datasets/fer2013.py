"""FER2013: Kaggle's CSV (emotion,pixels,Usage), or the same rows as NumPy arrays."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from nas.datasets.arrays import read_arrays
from nas.datasets.cache import cached
from nas.errors import DataError

FER_CLASSES = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
FER_USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


def read_fer_csv(path: Path):
    """Rows -> splits by Usage; every malformed row is named by file and line."""
    try:
        # Bytes that are not UTF-8 become U+FFFD, so the row that holds them is named below
        # ("must be integers") instead of a decode error with no line.
        f = open(path, newline="", encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    with f:
        reader = csv.reader(f)
        try:
            return _read_rows(path, reader)
        except csv.Error as exc:  # e.g. a field over the csv module's limit, or a stray NUL
            raise DataError(f"{path}, line {reader.line_num}: not a FER2013 CSV row ({exc})") from None


def _read_rows(path: Path, reader):
    splits = {split: ([], []) for split in FER_USAGE.values()}
    header = [h.strip() for h in next(reader, [])]
    if "emotion" not in header or "pixels" not in header:
        got = ",".join(header)
        raise DataError(f"{path}, line 1: expected the header emotion,pixels,Usage; got "
                        f"{got[:60]!r}" + (f"... ({len(got):,} characters)" if len(got) > 60 else ""))
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


def read(request):
    """The Kaggle CSV: a file, or a folder holding fer2013.csv. Without one, the same rows as
    NumPy arrays (the fer2013.tar.xz that ../shared/data carries) give identical tensors."""
    root, path = request.root, request.path
    candidates = [path, (path or root) / "fer2013.csv", root / "fer2013" / "fer2013.csv"]
    csv_path = next((p for p in candidates if p is not None and p.is_file()), None)
    if csv_path is not None:
        splits, _ = cached(csv_path, "fer2013", lambda: (read_fer_csv(csv_path), FER_CLASSES))
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
    missing = sorted(set(range(len(FER_CLASSES))) - set(np.unique(splits["train"][1]).tolist()))
    if missing:  # (the arrays form would also renumber the rest)
        raise DataError(f"{csv_path or arrays[0]}: no Training rows of emotion(s) "
                        f"{', '.join(FER_CLASSES[i] for i in missing)}; all 7 need some")
    return splits, FER_CLASSES
