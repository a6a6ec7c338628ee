"""The integrity of an Optuna journal file, checked before a study is opened on it.

Only a file that is an Optuna journal is ever opened as one: every record Optuna writes
starts with ``{"op_code":``, so a file that does not (a key file, someone's settings, a
database) is refused before anything reads, locks or cuts it.

Optuna appends each batch of records with one write. A kill or a full disk in the middle of
it leaves a torn last line with no newline; Optuna's reader skips such a line, but its next
append glues the fragment to a new record, and from then on every reader fails on that line
and the whole study is unreachable. So before a writer appends, holding the same lock file
the writers use, a torn tail is cut back to the last complete record (said once, on stderr).
Readers (pareto, export, ...) take no lock and cut nothing: the reader skips the torn line.
A damaged line before the end is not guessed at: it is named by line number, the file is
left as it is, and the message says how to keep every record before it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import optuna

from nas.errors import UsageError

RECORD_START = b'{"op_code":'  # how Optuna's JournalFileBackend writes every record
# Optuna's lock gives up waiting and removes a lock file unchanged for this long.
LOCK_GRACE_SECONDS = 30
# How long a young lock may stand before it is worth a word: a live writer holds it for the
# microseconds of one append, so one still there after this is held by a stuck or killed writer.
LOCK_SETTLE_SECONDS = 2.0


def open_lock(path: str):
    """The lock the writers of this journal take (nas always opens journals with it)."""
    return optuna.storages.journal.JournalFileOpenLock(path, grace_period=LOCK_GRACE_SECONDS)


class ReadOnlyLock:
    """For commands that only read a study: any attempt to append is a bug, refused.
    (Optuna's lock base class is private; its backend only calls these two.)"""

    def acquire(self) -> bool:
        raise UsageError("this command only reads the study; it does not write to its journal")

    def release(self) -> None:
        pass


def check_is_journal(file: Path, data: bytes) -> None:
    if data and not data.startswith(RECORD_START):
        preview = data[:24].decode("utf-8", "replace")
        raise UsageError(f"{file} is not an Optuna journal (it starts {preview!r}, a journal "
                         f"starts {RECORD_START.decode()!r}); nas opens, locks or repairs only "
                         f"journal files")


def check_readable(path: str) -> None:
    """A reader's check: a journal, damaged nowhere but (perhaps) its torn last line."""
    file = Path(path)
    data = file.read_bytes()
    check_is_journal(file, data)
    check(file, data)


def repair(path: str) -> None:
    """A writer's check: as check_readable, and a torn tail cut back under the lock."""
    file = Path(path)
    if not file.is_file() or file.stat().st_size == 0:
        return
    with open(file, "rb") as f:
        check_is_journal(file, f.read(len(RECORD_START)))
    lock = open_lock(path)
    clear_stale_lock(Path(path + ".lock"))
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


def clear_stale_lock(lock_file: Path) -> None:
    """A lock file is held for the microseconds of one append. One older than Optuna's grace
    period was left by a writer killed mid-append: Optuna would wait that long again in
    silence before removing it; it is removed now, and said. A younger one is given a moment
    to go (a live writer's, mid-append: nothing to say) and said only if it stays."""
    settle_until = time.monotonic() + LOCK_SETTLE_SECONDS
    while True:
        try:
            age = time.time() - lock_file.stat().st_mtime
        except OSError:
            return
        if age > LOCK_GRACE_SECONDS or time.monotonic() > settle_until:
            break
        time.sleep(0.01)
    if age > LOCK_GRACE_SECONDS:
        try:
            lock_file.unlink()
        except OSError as exc:
            raise UsageError(f"{lock_file} is a stale lock ({age:.0f} s old, left by a killed "
                             f"writer) and cannot be removed ({exc.strerror}); delete it") from None
        print(f"nas: removed {lock_file}, a lock {age:.0f} s old left by a writer killed "
              f"mid-append (a live writer holds it for microseconds)", file=sys.stderr)
    else:
        print(f"nas: {lock_file} exists: another writer holds it, or one killed {age:.0f} s ago "
              f"left it; waiting up to {LOCK_GRACE_SECONDS} s, then it is removed", file=sys.stderr)


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
