"""Every file the tool writes appears whole or not at all.

Each is written to a temporary name beside it, flushed to disk and renamed over the old one
(a rename within a folder is atomic), so a kill, a full disk or a failed check at any moment
leaves the previous file, never a torn or empty one. A kill can leave a hidden temporary
(``.NAME.PID.tmp.SUFFIX``) behind; nothing reads those.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
from pathlib import Path
from typing import Iterator

from nas.errors import UsageError


def temporary_name(path: Path) -> Path:
    # The real suffix stays last: writers such as savefig pick the format from it.
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path to write; on leaving without error it replaces ``path``."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        with said_if_full(path):
            yield tmp
            commit(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


# A full disk, a full quota, a file-size limit: the user's to fix, said in one line.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class DiskFull(UsageError):
    """A write failed for want of space: the same for every write after it, so a search
    stops on it rather than fail every later trial."""


@contextlib.contextmanager
def said_if_full(path) -> Iterator[None]:
    """Around writing ``path``: a full disk becomes DiskFull, one line naming the file."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in DISK_FULL:
            raise
        raise DiskFull(f"cannot write {path}: {exc.strerror} "
                       f"({errno.errorcode.get(exc.errno, exc.errno)}); nothing half-written was "
                       f"kept, and an earlier file there is unchanged: free some space and run "
                       f"the command again") from None


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


def write_bytes(path: str | Path, data: bytes) -> None:
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_new(path: Path, data: bytes) -> bool:
    """Write ``data`` as ``path`` only if no file has that name (False if one has): the
    whole file appears at once, and an existing one, even one created meanwhile by another
    process, is never replaced (a hard link, unlike a rename, fails on an existing name)."""
    tmp = temporary_name(path)
    try:
        with said_if_full(path), open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_json(path: str | Path, value, indent: int = 2) -> None:
    write_text(path, json.dumps(value, indent=indent) + "\n")


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
