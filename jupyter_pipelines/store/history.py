"""Execution history in SQLite: pipeline versions, executions and step runs.

One database file in the state folder, WAL mode, every write in its own short transaction,
so a killed process leaves it consistent; an execution whose process died while it was
``Executing`` is marked Failed ("interrupted") the next time the history is opened. A
read-only history can be read; SQLite faults become a `StateError` naming the file
(`store.state`). A step run whose stored outputs ``doctor --repair`` found damaged is marked
``invalid`` (with the reason) and is never reused again.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from contextlib import closing, contextmanager
from typing import Any

from .state import connect, ensure_folder, guarded

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pipeline_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline TEXT NOT NULL, digest TEXT NOT NULL, definition TEXT NOT NULL, created REAL NOT NULL,
    UNIQUE (pipeline, digest));
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, version_id INTEGER, parameters TEXT NOT NULL,
    status TEXT NOT NULL, start REAL, end REAL, failure_reason TEXT, pid INTEGER, host TEXT,
    retry_of TEXT, workdir TEXT);
CREATE TABLE IF NOT EXISTS step_runs (
    execution_id TEXT NOT NULL, step TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
    start REAL, end REAL, attempts INTEGER NOT NULL DEFAULT 0, cache_key TEXT, key_parts TEXT,
    cache_source TEXT, outputs TEXT, metadata TEXT, stdout TEXT, stderr TEXT,
    failure_reason TEXT, traceback TEXT, why TEXT, invalid TEXT,
    PRIMARY KEY (execution_id, step));
CREATE INDEX IF NOT EXISTS step_runs_by_key ON step_runs (cache_key, status);
CREATE INDEX IF NOT EXISTS step_runs_by_step ON step_runs (step, end);
"""
_RUN_COLUMNS = ("step", "kind", "status", "start", "end", "attempts", "cache_key", "key_parts",
                "cache_source", "outputs", "metadata", "stdout", "stderr", "failure_reason",
                "traceback", "why")
_INSERT_RUN = (f"INSERT OR REPLACE INTO step_runs (execution_id, {', '.join(_RUN_COLUMNS)}) "
               f"VALUES (?, {', '.join('?' * len(_RUN_COLUMNS))})")
INTERRUPTED = ("Interrupted: the process running this execution ended (killed or crashed) "
               "before it finished. Resume it with `%pipeline retry` or `jupyter-pipelines retry`.")


class History:
    def __init__(self, home: str | os.PathLike):
        self.path = ensure_folder(home) / "history.db"
        self._conn, self.read_only = connect(self.path, "history")
        with guarded(self.path, "history"):
            if not self.read_only:
                self._conn.execute("PRAGMA synchronous=NORMAL")
                self._conn.executescript(_SCHEMA)
                if "invalid" not in self._columns():  # a history from before `invalid`
                    try:
                        self._conn.execute("ALTER TABLE step_runs ADD COLUMN invalid TEXT")
                    except sqlite3.OperationalError:  # another process added it meanwhile
                        pass
            self._valid = " AND invalid IS NULL" if "invalid" in self._columns() else ""
        if not self.read_only:
            self.mark_interrupted()

    def close(self) -> None:
        self._conn.close()

    def _columns(self) -> set[str]:
        return {row[1] for row in self._conn.execute("PRAGMA table_info(step_runs)")}

    @contextmanager
    def _tx(self):
        with guarded(self.path, "history"):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    # -- writing ---------------------------------------------------------------------------
    def record_version(self, pipeline: str, digest: str, definition: dict) -> int:
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO pipeline_versions (pipeline, digest, definition, created) "
                       "VALUES (?, ?, ?, ?)", (pipeline, digest, json.dumps(definition), time.time()))
            (version,) = db.execute("SELECT id FROM pipeline_versions WHERE pipeline = ? AND digest = ?",
                                    (pipeline, digest)).fetchone()
        return version

    def start_execution(self, execution_id: str, pipeline: str, version_id: int,
                        parameters: dict, start: float, retry_of: str | None = None) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO executions VALUES (?, ?, ?, ?, 'Executing', ?, NULL, NULL, ?, ?, ?, ?)",
                       (execution_id, pipeline, version_id, json.dumps(parameters, default=repr),
                        start, os.getpid(), socket.gethostname(), retry_of, os.getcwd()))

    def record_steps(self, execution_id: str, runs: list[dict], finish: tuple | None = None) -> None:
        """Write step runs (and, with ``finish``: status, end, reason, the execution's end) in
        one transaction."""
        rows = []
        for run in runs:
            values = [run.get(c) for c in _RUN_COLUMNS]
            for i, c in enumerate(_RUN_COLUMNS):
                if c in ("key_parts", "outputs", "metadata", "why") and values[i] is not None:
                    values[i] = json.dumps(values[i], default=repr)
            rows.append([execution_id, *values])
        with self._tx() as db:
            if rows:
                db.executemany(_INSERT_RUN, rows)
            if finish is not None:
                db.execute("UPDATE executions SET status = ?, end = ?, failure_reason = ? "
                           "WHERE id = ?", (*finish, execution_id))

    def mark_interrupted(self) -> list[str]:
        """Executions left Executing by a process of this host that no longer runs."""
        host = socket.gethostname()
        rows = self._conn.execute("SELECT id, pid FROM executions WHERE status = 'Executing' AND host = ?",
                                  (host,)).fetchall()
        dead = [eid for eid, pid in rows if pid != os.getpid() and not _alive(pid)]
        for eid in dead:
            with self._tx() as db:
                db.execute("UPDATE executions SET status = 'Failed', failure_reason = ?, end = "
                           "COALESCE(end, (SELECT MAX(end) FROM step_runs WHERE execution_id = ?), start)"
                           " WHERE id = ? AND status = 'Executing'", (INTERRUPTED, eid, eid))
                db.execute("UPDATE step_runs SET status = 'Failed', failure_reason = ? "
                           "WHERE execution_id = ? AND status = 'Executing'", (INTERRUPTED, eid))
        return dead

    def mark_invalid(self, digest: str, reason: str) -> int:
        """Never reuse again the step runs whose outputs include artifact ``digest``; the
        number of runs marked."""
        with self._tx() as db:
            cur = db.execute("UPDATE step_runs SET invalid = ? WHERE invalid IS NULL AND outputs "
                             "LIKE ?", (reason, f'%"{digest}"%'))
        return cur.rowcount

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

    def cached_run(self, cache_key: str, not_before: float | None = None) -> dict | None:
        """The newest successful run with this key (not older than ``not_before``)."""
        sql = ("SELECT * FROM step_runs WHERE cache_key = ? AND status IN ('Succeeded', 'Cached') "
               "AND outputs IS NOT NULL" + self._valid)
        args: list[Any] = [cache_key]
        if not_before is not None:  # the result's age counts from when a step made it
            sql += " AND status = 'Succeeded' AND end >= ?"
            args.append(not_before)
        rows = self._rows(sql + " ORDER BY end DESC LIMIT 1", args)
        return self._run(rows[0]) if rows else None

    def latest_run(self, step: str, pipeline: str, *, succeeded: bool = False) -> dict | None:
        sql = ("SELECT r.* FROM step_runs r JOIN executions e ON e.id = r.execution_id "
               "WHERE r.step = ? AND e.pipeline = ?")
        if succeeded:
            sql += " AND r.status IN ('Succeeded', 'Cached') AND r.outputs IS NOT NULL" + self._valid
        rows = self._rows(sql + " ORDER BY r.end DESC LIMIT 1", [step, pipeline])
        return self._run(rows[0]) if rows else None

    def _rows(self, sql: str, args) -> list[sqlite3.Row]:
        with guarded(self.path, "history"), closing(self._conn.cursor()) as cur:
            cur.row_factory = sqlite3.Row
            return cur.execute(sql, args).fetchall()

    @staticmethod
    def _execution(row: sqlite3.Row) -> dict:
        doc = dict(row)
        doc["parameters"] = json.loads(doc["parameters"])
        return doc

    @staticmethod
    def _run(row: sqlite3.Row) -> dict:
        doc = dict(row)
        for key in ("key_parts", "outputs", "metadata", "why"):
            doc[key] = json.loads(doc[key]) if doc[key] else None
        return doc


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
