"""Execution history in SQLite: pipeline versions, executions and step runs.

One database file in the state folder, WAL mode with synchronous=NORMAL: a commit is durable
once it returns against a killed process, not against a power cut (which may lose the last
commits, never consistency). A run does not commit each step: it appends each finished step
to its execution's `journal` at once and commits them here in batches (`writer.HistoryWriter`),
its start with the first of them: a run writes nothing here itself, and a new state folder's
database is made by its first write (until then the history is empty). An execution whose
process died before it ended is marked Failed ("interrupted") the next time the history is
opened, after the rows of its journal are written, in the same transaction (`recovery`). A
read-only history can be read; SQLite faults become a `StateError` naming the
file (`store.state`). A step run whose stored outputs ``doctor --repair`` found damaged is
marked ``invalid`` (with the reason) and is never reused again.

A `History` has two connections, each used under a lock of its own by any thread: one writes
(a run commits from the history's thread, `writer`), one reads, so a run's cache look-ups never
wait for a commit in progress (WAL: readers see the last commit).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from typing import Any

from . import journal, recovery, schema
from .reuse import ReuseReads
from .schema import ROWS, RUN_COLUMNS, SCHEMA, TOP, copy_runs, write_runs
from .state import connect, database_error, ensure_folder, guarded, second_connection, writable

_CHECKPOINT_PAGES = 1000  # the WAL's pages after which a commit checkpoints (SQLite's default)

# Executions' ends waiting for their commit, by database file (`History.pending`).
_PENDING: dict = {}
_SETTLED = threading.Condition()


_VERSION_ID = ("SELECT id, definition = '' FROM pipeline_versions "  # (''): its document to come
               "WHERE pipeline = ? AND digest = ?")
_WRITE_VERSION = ("UPDATE pipeline_versions SET definition = ? "
                  "WHERE id = ? AND definition = '' AND digest = ?")


class History(ReuseReads):
    def __init__(self, home: str | os.PathLike):
        self.folder = ensure_folder(home)
        self.path = self.folder / "history.db"
        self._lock = threading.RLock()
        self.read_only = False
        self._valid = " AND invalid IS NULL"  # (`_open` says if a history has no such column)
        self._reuse_init()
        self._made = False  # the database opened (`_make`)
        self._make_lock = threading.Lock()
        if self.path.exists() or not writable(self.path) or journal.any_left(self.folder):
            self._make()

    def _make(self) -> None:
        """Open the database, made first if it is new (the first write to a new state folder's
        history: a run writes none before its first commit, `writer.HistoryWriter`). Until
        then the history is empty: a read finds no rows (`_rows`)."""
        with self._make_lock:
            if self._made:
                return
            self._conn, self.read_only = connect(self.path, "history")
            try:
                self._open()
            except BaseException:
                self._conn.close()
                raise
            self._made = True
        if not self.read_only:
            self.mark_interrupted()

    def _open(self) -> None:
        with guarded(self.path, "history"):
            if not self.read_only:
                (tables,) = self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                new = not tables
                if new:  # nothing to lose yet (as in `connect`): no fsync for the empty tables
                    self._conn.execute("PRAGMA synchronous=OFF")
                    self._conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")
                    self._conn.execute("PRAGMA synchronous=NORMAL")
                else:
                    self._conn.execute("PRAGMA synchronous=NORMAL")
                    self._conn.executescript(SCHEMA)
                if "invalid" not in self._columns():  # a history from before `invalid`
                    try:
                        self._conn.execute("ALTER TABLE step_runs ADD COLUMN invalid TEXT")
                    except sqlite3.OperationalError:  # another process added it meanwhile
                        pass
                self._conn.execute(f"PRAGMA wal_autocheckpoint={_CHECKPOINT_PAGES}")
            valid = " AND invalid IS NULL" if "invalid" in self._columns() else ""
            # SQLite before 3.32 binds at most 999 values to a statement; later ones 32766 or more
            limit = self._conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            self._rows_per_statement = max(1, min(ROWS, limit // (len(RUN_COLUMNS) + 1)))
        if valid != self._valid:  # (a history from before `invalid`, read-only)
            self._valid = valid
            self._queries()
        if self.read_only:
            self._reader, self._read_lock = self._conn, self._lock
        else:
            self._reader = second_connection(self.path, "history")
            self._read_lock = threading.Lock()

    def close(self) -> None:
        if not self._made:
            return
        with self._lock, self._read_lock:
            self._reader.close()
            self._conn.close()

    def pending(self, delta: int) -> None:
        """An execution's end is (+1) or is no longer (-1) waiting for its commit
        (`writer.HistoryWriter.end`). Counted by database file, so every `History` of this
        process on it waits for it."""
        with _SETTLED:
            _PENDING[self.path] = _PENDING.get(self.path, 0) + delta
            if not _PENDING[self.path]:
                del _PENDING[self.path]
                _SETTLED.notify_all()

    def settle(self, timeout: float | None = None) -> None:
        """Wait until the executions that ended in this process are committed."""
        with _SETTLED:
            _SETTLED.wait_for(lambda: self.path not in _PENDING, timeout)

    def _settled(self) -> None:
        """`settle`, if an execution this process ended is still to be committed."""
        if _PENDING and self.path in _PENDING:
            self.settle()

    def _columns(self) -> set[str]:
        return {row[1] for row in self._conn.execute("PRAGMA table_info(step_runs)")}

    @contextmanager
    def _tx(self):
        """A write transaction (the database made first if this is the history's first write)."""
        if not self._made:
            self._make()
        with self._lock, guarded(self.path, "history"):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    # -- writing ---------------------------------------------------------------------------
    def start_execution(self, start: list, document: str | None = None) -> int:
        """Record an execution as Executing, and its pipeline version if new, in one
        transaction; ``start``: its `rows.start_row` (its version's id, or the version's digest
        with ``document`` its text if the history may not have it yet). The history's thread
        does this with a run's first commit (`writer.HistoryWriter`: a run writes nothing here
        before its steps), or a replay of its journal; once only. Returns the version id."""
        execution_id, pipeline, version, parameters, begun, pid, host, retry_of, workdir = start
        with self._tx() as db:
            if type(version) is not int:
                version = self._version(db, pipeline, version, document)
            db.execute("INSERT OR IGNORE INTO executions VALUES "
                       "(?, ?, ?, ?, 'Executing', ?, NULL, NULL, ?, ?, ?, ?)",
                       (execution_id, pipeline, version, parameters, begun, pid, host, retry_of,
                        workdir))
        return version

    @staticmethod
    def _version(db: sqlite3.Connection, pipeline: str, digest: str, document: str | None) -> int:
        """The id of the version with this digest, recorded now if new (its document ``''``,
        still to come, if ``document`` is None)."""
        row = db.execute(_VERSION_ID, (pipeline, digest)).fetchone()
        if row is None:
            return db.execute("INSERT INTO pipeline_versions (pipeline, digest, definition, "
                              "created) VALUES (?, ?, ?, ?)",
                              (pipeline, digest, document or "", time.time())).lastrowid
        version, missing = row
        if missing and document:
            db.execute(_WRITE_VERSION, (document, version, digest))
        return version

    def check_writable(self) -> None:
        """Raise the error a write to a read-only history gets: before a run starts, as its
        first commit could not be made."""
        if self.read_only:
            raise database_error(sqlite3.OperationalError("attempt to write a readonly database"),
                                 self.path, "history")

    def version_id(self, pipeline: str, digest: str) -> int | None:
        """The id of the version with this digest if it is recorded with its document."""
        rows = self._rows(_VERSION_ID, [pipeline, digest], None)
        return rows[0][0] if rows and not rows[0][1] else None

    def write_version(self, version_id: int, document: str) -> None:
        """A version's document, if it is the one its digest names and none is written yet (a
        journal of an earlier release names the version by its id: `mark_interrupted`)."""
        digest = hashlib.sha256(document.encode()).hexdigest()
        with self._tx() as db:
            db.execute(_WRITE_VERSION, (document, version_id, digest))

    def record_steps(self, execution_id: str, rows: list[list], finish: tuple | None = None,
                     copies: list[tuple] = ()) -> None:
        """Write step runs (`schema.step_row` values), Cached runs that
        copy a stored one (``copies``: ``(source rowid, step, start, end)``, see `cached_run`)
        and, with ``finish`` (status, end, reason), the execution's end, in one transaction."""
        with self._tx() as db:
            (before,) = db.execute(TOP).fetchone()
            for i in range(0, len(copies), schema.CHUNK):
                chunk = copies[i:i + schema.CHUNK]
                db.execute(copy_runs(len(chunk)), [execution_id, *(v for c in chunk for v in c)])
            per = self._rows_per_statement
            for i in range(0, len(rows), per):
                chunk = rows[i:i + per]
                db.execute(write_runs(len(chunk)), [v for row in chunk for v in (execution_id, *row)])
            if finish is not None:
                db.execute("UPDATE executions SET status = ?, end = ?, failure_reason = ? "
                           "WHERE id = ?", (*finish, execution_id))
            (after,) = db.execute(TOP).fetchone()
        self._learn_keys(before or 0, after or 0, rows, len(copies))

    def mark_interrupted(self) -> list[str]:
        """Executions left Executing (or only in their journal) by a process of this host that
        no longer runs: recorded from their journals, Failed (`recovery`). Their ids."""
        return recovery.mark_interrupted(self)

    def mark_invalid(self, digest: str, reason: str, inline: str | None = None) -> int:
        """Never reuse again the step runs whose outputs include artifact ``digest`` (with
        ``inline``: only the runs holding that damaged copy of the small value; each row keeps
        its own); the number of runs marked."""
        self._runs.clear()  # (what `remember_runs` read says they can be reused)
        with self._tx() as db:
            if inline is None:
                cur = db.execute("UPDATE step_runs SET invalid = ? WHERE invalid IS NULL AND "
                                 "outputs LIKE ?", (reason, f'%"{digest}"%'))
                return cur.rowcount
            rows = db.execute("SELECT rowid, outputs FROM step_runs WHERE invalid IS NULL AND "
                              "outputs LIKE ?", (f'%"{digest}"%',)).fetchall()
            damaged = [rowid for rowid, outputs in rows
                       if any(doc.get("digest") == digest and doc.get("inline") == inline
                              for doc in json.loads(outputs).values())]
            db.executemany("UPDATE step_runs SET invalid = ? WHERE rowid = ?",
                           [(reason, rowid) for rowid in damaged])
        return len(damaged)

    # -- reading -----------------------------------------------------------------------------
    def executions(self, pipeline: str | None = None, limit: int | None = None) -> list[dict]:
        sql = "SELECT * FROM executions"
        args: list[Any] = []
        if pipeline:
            sql += " WHERE pipeline = ?"
            args.append(pipeline)
        sql += " ORDER BY start DESC, rowid DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [self._execution(row) for row in self._rows(sql, args)]

    def execution(self, execution_id: str) -> dict | None:
        rows = self._rows("SELECT * FROM executions WHERE id = ?", [execution_id])
        if not rows:
            rows = self._rows("SELECT * FROM executions WHERE id LIKE ? ORDER BY start DESC",
                              [f"%{execution_id}%"])
            if len(rows) != 1:
                return None
        return self._execution(rows[0])

    def step_runs(self, execution_id: str) -> list[dict]:
        return [self._run(r) for r in self._rows(
            "SELECT * FROM step_runs WHERE execution_id = ? ORDER BY start, rowid", [execution_id])]

    def latest_run(self, step: str, pipeline: str, *, succeeded: bool = False) -> dict | None:
        sql = ("SELECT r.* FROM step_runs r JOIN executions e ON e.id = r.execution_id "
               "WHERE r.step = ? AND e.pipeline = ?")
        if succeeded:
            sql += " AND r.status IN ('Succeeded', 'Cached') AND r.outputs IS NOT NULL" + self._valid
        rows = self._rows(sql + " ORDER BY r.end DESC LIMIT 1", [step, pipeline])
        return self._run(rows[0]) if rows else None

    def version(self, version_id: int | None) -> dict | None:
        """A recorded pipeline version's document (`snapshot`)."""
        rows = self._rows("SELECT definition FROM pipeline_versions WHERE id = ?", [version_id])
        return json.loads(rows[0][0]) if rows and rows[0][0] else None  # ('': still to come)

    def _rows(self, sql: str, args, factory=sqlite3.Row, *, settle: bool = True) -> list:
        """The rows of a query (none while the database is still to be made: `_make`); with
        ``settle``, once the executions this process ended are committed (`settle`)."""
        if settle:  # what this process ran, as it ended
            self._settled()
        if not self._made:
            if not self.path.exists():  # (made by another process meanwhile: read it then)
                return []
            self._make()
        with self._read_lock:
            try:
                cursor = self._reader.cursor()
                cursor.row_factory = factory
                return cursor.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise database_error(exc, self.path, "history") from None

    @staticmethod
    def _execution(row: sqlite3.Row) -> dict:
        doc = dict(row)
        doc["parameters"] = json.loads(doc["parameters"])
        return doc

    @staticmethod
    def _run(row: sqlite3.Row) -> dict:
        doc = dict(row)
        for key in ("key_parts", "outputs", "metadata", "why"):
            if key in doc:
                doc[key] = json.loads(doc[key]) if doc[key] else None
        return doc


def settle_all(timeout: float | None = None) -> None:
    """Wait until the executions that ended in this process are committed, in every state
    folder (`History.settle` waits for one)."""
    with _SETTLED:
        _SETTLED.wait_for(lambda: not _PENDING, timeout)
