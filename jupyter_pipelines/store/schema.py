"""The history database's tables, and the statements that write step runs (`history`)."""

from __future__ import annotations

import functools
import json

from . import journal

SCHEMA = """
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
CREATE INDEX IF NOT EXISTS step_runs_by_key_end ON step_runs (cache_key, end);
CREATE INDEX IF NOT EXISTS step_runs_by_step ON step_runs (step, end);
CREATE INDEX IF NOT EXISTS executions_by_pipeline ON executions (pipeline, start);
DROP INDEX IF EXISTS step_runs_by_key;
"""
# A cache look-up walks step_runs_by_key_end from the newest run with the key and stops at the
# first usable one (no sort; ~7 µs). The (cache_key, status) index it replaced made SQLite sort.
RUN_COLUMNS = ("step", "kind", "status", "start", "end", "attempts", "cache_key", "key_parts",
               "cache_source", "outputs", "metadata", "stdout", "stderr", "failure_reason",
               "traceback", "why")
# An upsert, not INSERT OR REPLACE: a row written again (Executing, then finished; a journal
# replayed) keeps what doctor marked on it (`invalid`) and its place in the table.
WRITE_RUN = (f"INSERT INTO step_runs (execution_id, {', '.join(RUN_COLUMNS)}) "
             f"VALUES (?, {', '.join('?' * len(RUN_COLUMNS))}) ON CONFLICT (execution_id, step) "
             f"DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in RUN_COLUMNS[1:])}")
ROWS = 1000  # rows written by one statement at most (`History._rows_per_statement`)
TOP = "SELECT max(rowid) FROM step_runs"  # (rows are never deleted: a new one is above it)


@functools.lru_cache(maxsize=4)
def write_runs(n: int) -> str:
    """`WRITE_RUN` of ``n`` rows: one statement for many, so the history's thread releases
    and retakes the GIL once for them, not once a row (while the run's thread is busy, each
    retake waits up to the interpreter's switch interval, 5 ms)."""
    row = f"(?, {', '.join('?' * len(RUN_COLUMNS))})"
    return WRITE_RUN.replace(f"VALUES {row}", "VALUES " + ", ".join([row] * n))


CACHED_COLUMNS = ("rowid", "execution_id", "step", "kind", "status", "end", "cache_key",
                  "cache_source", "outputs", "metadata", "stdout", "stderr")
CHUNK = 256  # Cached rows copied by one statement (~30% faster than a statement each)


@functools.lru_cache(maxsize=16)
def copy_runs(n: int) -> str:
    """The statement copying ``n`` Cached rows, each bound as ``(source rowid, step, start,
    end)`` after the execution's id. A Cached step's row is its source run's, with this
    execution's id, name and times: copied in SQLite, nothing of it decoded or encoded again
    (step_runs rows are never deleted)."""
    values = ", ".join(["(?, ?, ?, ?)"] * n)
    return (f"INSERT INTO step_runs (execution_id, {', '.join(RUN_COLUMNS)}) SELECT ?1, "
            "v.column2, s.kind, 'Cached', v.column3, v.column4, 0, s.cache_key, s.key_parts, "
            "COALESCE(NULLIF(s.cache_source, ''), s.execution_id), s.outputs, s.metadata, "
            f"s.stdout, s.stderr, NULL, NULL, NULL FROM (VALUES {values}) v CROSS JOIN step_runs s "
            "ON s.rowid = v.column1 WHERE true" + WRITE_RUN[WRITE_RUN.index(" ON CONFLICT"):])


def step_row(run: dict) -> list:
    """A step run (a dict of `RUN_COLUMNS`) as the values written for it: what
    `History.record_steps` takes and a `journal` line holds."""
    values = [run.get(c) for c in RUN_COLUMNS]
    for i in (7, 9, 15):  # key_parts, outputs, why: our own plain data
        if values[i] is not None:
            values[i] = journal.plain_json(values[i])
    if values[10] is not None:  # metadata: the user's values too (a condition's operands)
        values[10] = json.dumps(values[10], default=repr)
    return values
