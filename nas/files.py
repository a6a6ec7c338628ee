"""Every file the tool writes appears whole or not at all.

Each is written to a temporary name beside it, flushed to disk and renamed over the old one
(a rename within a folder is atomic), so a kill, a full disk or a failed check at any moment
leaves the previous file, never a torn or empty one. A kill can leave a hidden temporary
(``.NAME.PID.tmp.SUFFIX``) behind; nothing reads those.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Iterator


def temporary_name(path: Path) -> Path:
    # The real suffix stays last: writers such as savefig pick the format from it.
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path to write; on leaving without error it replaces ``path``."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        commit(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def commit(tmp: Path, path: Path) -> None:
    """fsync ``tmp``, rename it over ``path``, fsync the folder (so the rename survives a crash)."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be opened
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def write_text(path: str | Path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, value, indent: int = 2) -> None:
    write_text(path, json.dumps(value, indent=indent) + "\n")


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
