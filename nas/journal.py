"""The integrity of an Optuna journal file, checked before a study is opened on it.

Optuna appends each batch of records with one write. A kill or a full disk in the middle of
it leaves a torn last line with no newline; Optuna's reader skips such a line, but its next
append glues the fragment to a new record, and from then on every reader fails on that line
and the whole study is unreachable. So, holding the same lock file the writers use, a torn
tail is cut back to the last complete record (said once, on stderr) before anything is
appended. A damaged line before the end is not guessed at: it is named by line number, the
file is left as it is, and the message says how to keep every record before it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import optuna

from nas.errors import UsageError


def open_lock(path: str):
    """The lock the writers of this journal take (nas always opens journals with it)."""
    return optuna.storages.journal.JournalFileOpenLock(path)


def repair(path: str) -> None:
    file = Path(path)
    if not file.is_file() or file.stat().st_size == 0:
        return
    lock = open_lock(path)
    try:
        lock.acquire()
    except OSError:  # a read-only folder: no lock file, but then nothing is appended either
        check(file, file.read_bytes())
        return
    try:
        data = file.read_bytes()
        complete = check(file, data)
        if complete < len(data):
            os.truncate(file, complete)
            records = data.count(b"\n")
            print(f"nas: {file}: cut a torn last record ({len(data) - complete} bytes with no "
                  f"newline: a write was interrupted); the {records} records before it are "
                  f"kept", file=sys.stderr)
    finally:
        lock.release()


def check(file: Path, data: bytes) -> int:
    """Length of the complete records at the start of ``data``; a line before the last that
    is not a JSON record is a UsageError naming it."""
    lines = data.split(b"\n")  # the last item follows the last newline: empty, or torn
    for number, line in enumerate(lines[:-1], start=1):
        try:
            json.loads(line)
        except ValueError:
            preview = line[:60].decode("utf-8", "replace")
            raise UsageError(
                f"{file}, line {number}: not an Optuna journal record ({len(line)} bytes: "
                f"{preview!r}...); the {number - 1} records before it are intact: keep them "
                f"with `head -n {number - 1} {file} > fixed.log` and move fixed.log over it") from None
    return len(data) - len(lines[-1])
