"""Decode once: a slow reader's result kept under $NAS_CACHE_DIR (default ~/.cache/nas),
keyed by the path, every file's size and mtime, and what was asked; never beside the data.

A reader returns (splits, classes): {split: (uint8 images N x C x H x W, int64 labels)} and
the class names. They are stored as plain arrays in an .npz and read back with
allow_pickle=False, then checked: a file someone planted under the cache's name (the name
is predictable) can hold no code that runs, and a torn or foreign file is decoded again.

The cache is per user: a decoded dataset is trusted data (it is what trains the model), and
its name can be predicted by anyone who can see the source files, so the folder is used only
when the user owns it and nobody else can write in it (created 0700), and an entry only
when the user owns it; otherwise the dataset is decoded afresh, and that is said once.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

from nas import files
from nas.progress import step


def cache_dir() -> Path:
    return Path(os.environ.get("NAS_CACHE_DIR") or Path.home() / ".cache" / "nas")


def cached(path: Path, what: str, read):
    entries = sorted([path] if path.is_file() else path.rglob("*"))
    # Folders count too: an empty class folder added is a change (a class, or an error).
    key = hashlib.sha256(json.dumps([str(path.resolve()), what] + [
        (str(p), p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else str(p)
        for p in entries]).encode()).hexdigest()[:24]
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        pass
    doubt = not_private(folder)
    cache = folder / f"{key}.npz"
    if doubt is None and cache.is_file() and not_private(cache) is None:
        result = _load(cache)
        if result is not None:
            return result
    if doubt is not None:
        _say_once(f"nas: not using the dataset cache {folder}: {doubt}, so an entry there may "
                  f"not be yours (set NAS_CACHE_DIR to a folder of your own, or chmod 700 it)")
    with step(f"decoding {path.name}" + (" (once: cached after)" if doubt is None else "")):
        result = read()
    if doubt is None:
        try:
            with files.replacing(cache) as tmp:  # concurrent workers never read half a file
                _save(tmp, *result)
        except OSError:
            pass  # no cache then; correctness does not depend on it
    return result


def not_private(path: Path) -> str | None:
    """Why another user could have put ``path`` there (None: nobody but this user)."""
    try:
        st = path.stat()
    except OSError as exc:
        return f"it cannot be read ({exc.strerror})"
    if st.st_uid != os.geteuid():
        return f"it belongs to another user (uid {st.st_uid})"
    if st.st_mode & 0o022:
        return "other users can write in it"
    return None


_said: set[str] = set()


def _say_once(message: str) -> None:
    if message not in _said:
        _said.add(message)
        print(message, file=sys.stderr)


def _save(file: Path, splits: dict, classes) -> None:
    arrays = {"classes": np.array(list(classes), dtype=str)}
    for split, (x, y) in splits.items():
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    with open(file, "wb") as f:
        np.savez(f, **arrays)


def _load(file: Path):
    """(splits, classes), or None for anything but what _save writes."""
    try:
        with np.load(file, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError):
        return None
    classes = arrays.pop("classes", None)
    if classes is None or classes.ndim != 1 or classes.dtype.kind != "U":
        return None
    splits = {}
    for name in arrays:
        if name.startswith("x_"):
            split = name[2:]
            x, y = arrays[name], arrays.get(f"y_{split}")
            if (y is None or x.dtype != np.uint8 or x.ndim != 4 or y.dtype != np.int64
                    or y.shape != (len(x),)):
                return None
            splits[split] = (x, y)
    if len(arrays) != 2 * len(splits):
        return None
    return splits, tuple(str(c) for c in classes)
