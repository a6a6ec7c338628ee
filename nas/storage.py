"""Opening an Optuna storage and a study folder's study in it: a journal file or a database
URL, as the user gave it, and only what a folder may name without the user. Only
a file that is an Optuna journal or database is opened as one, and commands that only read
a study open it read-only: no lock taken, no repair, no table created (nas.journal checks
journal files)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import optuna

from nas import journal, urls
from nas.errors import UsageError
from nas.study_folder import inside, read_pointer


def open_storage(url: str, read_only: bool = False):
    """A URL with '://' is a database (SQLite, PostgreSQL, MySQL, ...); anything else is the
    path of an Optuna journal file (created when missing, unless ``read_only``).

    Only a file that is an Optuna journal or database is opened as one. ``read_only``
    (commands that read a study) takes no lock, repairs nothing and creates no tables."""
    try:
        if "://" not in url:
            if read_only:
                journal.check_readable(url)
                lock = journal.ReadOnlyLock()
            else:
                journal.repair(url)
                lock = journal.open_lock(url)
            return optuna.storages.JournalStorage(
                optuna.storages.journal.JournalFileBackend(url, lock_obj=lock))
        if read_only and (file := urls.file_of(url)) is not None:
            check_is_optuna_sqlite(file)
        return _open_database(url, read_only=read_only)
    except UsageError:
        raise
    except Exception as exc:  # bad URL, unreachable server, missing driver, unwritable file
        hint = ("; install the PostgreSQL driver: pip install -e \".[postgres]\""
                if isinstance(exc, ImportError) and url.startswith("postgresql") else "")
        if "password" in str(exc) and urls.remembered(url) == url:
            hint = "; give the password in $PGPASSWORD or ~/.pgpass (study.json keeps none)"
        raise UsageError(f"cannot open storage {urls.shown(url)!r}: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}{hint}") from None


def check_is_optuna_sqlite(file: Path) -> None:
    """Opened read-only by SQLite itself: a file without Optuna's tables (someone's app
    database, any other file) is refused before SQLAlchemy or Optuna could add theirs."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{file}?mode=ro", uri=True)) as db:
            tables = {row[0] for row in db.execute("select name from sqlite_master where type='table'")}
    except sqlite3.Error as exc:
        raise UsageError(f"{file} is not an Optuna database ({exc}); nas opens only Optuna "
                         f"storages") from None
    if not {"studies", "trials", "alembic_version"} <= tables:
        raise UsageError(f"{file} is not an Optuna database (no Optuna tables in it); nas "
                         f"opens only Optuna storages and adds no tables to other databases")


def _open_database(url: str, attempts: int = 5, read_only: bool = False):
    import sqlalchemy.exc

    # A generous lock timeout: several workers may write to one SQLite file.
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite:") else {}
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs,
                                              skip_table_creation=read_only)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # Several machines starting on an empty database all create Optuna's tables;
            # all but one then collide ("duplicate key", "already exists"). Once the
            # tables are there, opening it again works.
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))


def is_own_storage(url: str, study_dir: str | Path) -> bool:
    """Whether a storage is the study folder's own file (a journal or SQLite file in it)."""
    file = urls.file_of(url)
    return file is not None and inside(file, Path(study_dir))


def study_storage(study_dir: str | Path, storage: str | None = None) -> dict:
    """The study a folder names and the storage to open it in. A study folder may come from
    someone else, so what its study.json names is used only when it is the folder's own file
    (a journal or SQLite database inside it); any other storage (a file elsewhere, a database
    server) only when the user names it themselves (``storage``, i.e. --storage)."""
    meta = read_pointer(study_dir)
    if storage is not None:
        return {**meta, "storage": urls.absolute(storage)}
    file = urls.file_of(meta["storage"])
    if not is_own_storage(meta["storage"], study_dir):
        where = ("a database server" if file is None else
                 "a symlink out of the folder" if file.is_symlink() else "a file outside the folder")
        raise UsageError(f"{Path(study_dir) / 'study.json'} names {where} as its storage "
                         f"({urls.shown(meta['storage'])!r}); nas opens a storage outside the "
                         f"study folder only when you name it: add --storage "
                         f"{urls.shown(meta['storage'])!r}")
    return meta


def matching_storage(study_dir: str | Path, given: list[str] | None) -> str | None:
    """Of the storages a user named (--storage, once per study), the one this folder's
    study.json names (compared without passwords), else None."""
    stored = read_pointer(study_dir)["storage"]
    return next((url for url in given or () if urls.remembered(urls.absolute(url)) == stored), None)


def load_study(study_dir: str | Path, storage: str | None = None) -> optuna.Study:
    """Open a study folder's study to read it (``storage``: --storage, see study_storage).
    Never creates, locks, repairs or adds tables to a storage."""
    meta = study_storage(study_dir, storage)
    file = urls.file_of(meta["storage"])
    if file is not None and not file.is_file():
        raise UsageError(f"{study_dir}: its storage {file} is missing (study.json points there)")
    try:
        return optuna.load_study(study_name=meta["study_name"],
                                 storage=open_storage(meta["storage"], read_only=True))
    except KeyError:
        raise UsageError(f"study {meta['study_name']!r} not found in {urls.shown(meta['storage'])}") from None
