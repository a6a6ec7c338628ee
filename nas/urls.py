"""Storage URLs as the user gives them, as they are shown, and as a study folder keeps them.

A storage is an Optuna journal file (a plain path) or a database URL (``sqlite:///x.db``,
``postgresql://user:password@host/db``). Relative file paths are made absolute at once, so
every later command finds the same file from any folder. A password is never shown, and
never stored: libpq reads it from $PGPASSWORD or ~/.pgpass when the URL has none.
"""

from __future__ import annotations

from pathlib import Path

SQLITE = "sqlite:///"


def absolute(url: str) -> str:
    """``url`` with a relative journal or SQLite file path made absolute."""
    if "://" not in url:
        return str(Path(url).expanduser().resolve())
    if url.startswith(SQLITE) and not url.startswith(SQLITE + "/"):
        path, _, query = url[len(SQLITE):].partition("?")
        if path and path != ":memory:":
            return SQLITE + str(Path(path).expanduser().resolve()) + (f"?{query}" if query else "")
    return url


def file_of(url: str) -> Path | None:
    """The file a journal or SQLite storage lives in; None for a server."""
    if "://" not in url:
        return Path(url)
    if url.startswith(SQLITE):
        path = url[len(SQLITE):].partition("?")[0]
        return Path(path) if path and path != ":memory:" else None
    return None


def _with_password(url: str, action: str) -> str:
    if "://" not in url or "@" not in url.partition("://")[2]:
        return url
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # not a URL SQLAlchemy reads: show nothing after the scheme
        return url.partition("://")[0] + "://***"
    if parsed.password is None:
        return url
    if action == "hide":
        return parsed.render_as_string(hide_password=True)
    # URL.set(password=None) leaves the password as it is; URL is a named tuple.
    return parsed._replace(password=None).render_as_string(hide_password=False)


def shown(url: str) -> str:
    """For printing: the password replaced by ***."""
    return _with_password(url, "hide")


def remembered(url: str) -> str:
    """For study.json: without the password."""
    return _with_password(url, "drop")
