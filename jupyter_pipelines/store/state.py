"""Opening the state folder's databases and folders, with every fault said in words.

The history and the registry are SQLite files in the state folder. What can go wrong with
them (a file that is not a database, a truncated or damaged one, a read-only folder, a state
path that is a regular file, a full disk, a lock held too long) becomes a `StateError` naming
the file and what to do; reading works on a read-only folder (the connection is opened
read-only), and only a write there is refused.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import StateError

LOCK_TIMEOUT = 30.0  # seconds a write waits for another process's lock before giving up
_POINT_ELSEWHERE = ("Point the state folder elsewhere with JUPYTER_PIPELINES_HOME (or --home), "
                    "or fix the path.")


def ensure_folder(folder: str | os.PathLike, what: str = "state folder") -> Path:
    """Create ``folder`` if needed; a path that is a file, or cannot be made, is a StateError."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StateError(f"The {what} {path} is a file, not a folder, so nothing can be stored "
                         f"there. Move that file away. {_POINT_ELSEWHERE}") from None
    except NotADirectoryError:
        raise StateError(f"The {what} {path} cannot be made: a part of that path is a file, not a "
                         f"folder. {_POINT_ELSEWHERE}") from None
    except PermissionError:
        raise StateError(f"The {what} {path} cannot be created: permission denied. "
                         f"{_POINT_ELSEWHERE}") from None
    except OSError as exc:
        raise StateError(f"The {what} {path} cannot be created: {exc.strerror or exc}. "
                         f"{_POINT_ELSEWHERE}") from None
    return path


def writable(path: Path) -> bool:
    """Can this process write the database file (and its folder, for the journal)?"""
    folder_ok = os.access(path.parent, os.W_OK)
    return folder_ok and (not path.exists() or os.access(path, os.W_OK))


def read_only_uri(path: Path) -> str:
    """A URI opening ``path`` read-only. In a folder nobody can write (a read-only mount), the
    WAL's shared-memory file cannot be made, so the file is read as immutable (no locks)."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    return uri if os.access(path.parent, os.W_OK) else uri + "&immutable=1"


def connect(path: Path, what: str, *, timeout: float | None = None) -> tuple[sqlite3.Connection, bool]:
    """``(connection, read_only)``: read-write when the file and folder allow it, else
    read-only (reading a read-only state folder works; writing says why it cannot).

    Two processes creating the same database at once (two runs registering their first model)
    race: the one that read the empty file while the other writes its header cannot wait for
    the lock (SQLite refuses, as waiting could deadlock) and is told "database is locked" at
    once. It opens again, until the lock timeout, as a wait for the lock would."""
    timeout = LOCK_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _connect(path, max(deadline - time.monotonic(), 0.0))
        except sqlite3.Error as exc:
            if "database is locked" not in str(exc) or time.monotonic() >= deadline:
                raise database_error(exc, path, what) from None
        time.sleep(0.002)


def _connect(path: Path, timeout: float) -> tuple[sqlite3.Connection, bool]:
    read_only = path.exists() and not writable(path)
    new = not read_only and (not path.exists() or path.stat().st_size == 0)  # nothing to lose yet
    if read_only:
        conn = sqlite3.connect(read_only_uri(path), uri=True, timeout=timeout,
                               isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None,
                               check_same_thread=False)
    try:
        if new:  # a power cut can only lose an empty file: switch to WAL without an fsync
            (sync,) = conn.execute("PRAGMA synchronous").fetchone()
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={int(sync)}")
        elif not read_only:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # a real database?
    except BaseException:
        conn.close()
        raise
    return conn, read_only


def second_connection(path: Path, what: str) -> sqlite3.Connection:
    """Another connection to a database `connect` opened (and checked, and put in WAL mode,
    which the file keeps) in this process: nothing to set up again (a third of a millisecond
    that a run in a new state folder paid)."""
    try:
        return sqlite3.connect(path, timeout=LOCK_TIMEOUT, isolation_level=None,
                               check_same_thread=False)
    except sqlite3.Error as exc:
        raise database_error(exc, path, what) from None


@contextmanager
def guarded(path: Path, what: str) -> Iterator[None]:
    """Turn SQLite errors raised inside into a StateError about ``path``."""
    try:
        yield
    except sqlite3.Error as exc:
        raise database_error(exc, path, what) from None


def database_error(exc: sqlite3.Error, path: Path, what: str) -> StateError:
    """The StateError for a SQLite failure on ``path`` (the ``what``: "history", "registry")."""
    text = str(exc)
    lower = text.lower()
    if "readonly" in lower or "read-only" in lower:
        return StateError(
            f"The {what} database {path} is read-only (or its folder is), so nothing can be "
            "recorded there; reading commands still work. Make the folder writable, or point "
            "JUPYTER_PIPELINES_HOME (or --home) at a writable folder.")
    if "not a database" in lower or "malformed" in lower or "corrupt" in lower:
        return StateError(
            f"The {what} database {path} is damaged ({text}). Nothing was changed. Run "
            f"`jupyter-pipelines doctor --home {path.parent}` to see what is affected, and "
            f"`jupyter-pipelines doctor --repair --home {path.parent}` to move the damaged file "
            f"aside (as {path.name}.damaged-*) and start a new one.")
    if "locked" in lower or "busy" in lower:
        return StateError(
            f"The {what} database {path} stayed locked by another process for too long "
            f"({text}). Wait for the other run to finish and try again.")
    if "disk is full" in lower or "disk i/o" in lower or "unable to open" in lower:
        return StateError(
            f"The {what} database {path} cannot be used: {text}. Check that the disk has room and "
            f"that the folder exists and is accessible. {_POINT_ELSEWHERE}")
    return StateError(f"The {what} database {path} cannot be used: {type(exc).__name__}: {text}. "
                      f"Run `jupyter-pipelines doctor --home {path.parent}` to check it.")
