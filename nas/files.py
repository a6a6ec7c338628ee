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
        yield tmp
        commit(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            raise disk_full(exc, path) from None
        raise


# A full disk, a full quota, a file-size limit: the user's to fix, said in one line.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class DiskFull(UsageError):
    """A write failed for want of space: the same for every write after it, so a search
    stops on it rather than fail every later trial."""


def disk_full(exc: OSError, path) -> DiskFull:
    return DiskFull(f"cannot write {path}: {exc.strerror} ({errno.errorcode.get(exc.errno, exc.errno)}); "
                      f"nothing half-written was kept, and an earlier file there is unchanged: "
                      f"free some space and run the command again")


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
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise disk_full(exc, path) from None
        raise
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
