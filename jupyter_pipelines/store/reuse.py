"""What a run reads of the history to reuse stored results and to say why a step ran.

Part of `history.History` (its base class): the queries of a cache look-up (`cached_run`, the
stored keys, the pipeline's latest execution's runs and key parts) and what this process keeps
of its own executions so the next run here reads nothing back (`remember_runs`,
`remember_parts`: the history's thread keeps them once an execution's end is committed, after
its `start()` returned). They use the history's database, locks and `_rows`.
"""

from __future__ import annotations

import json
import sqlite3
import threading

from ..errors import StateError
from . import journal
from .schema import CACHED_COLUMNS
from .state import database_error

_PARSED: dict[str, dict] = {}  # a stored run's outputs (JSON) -> their documents (`_outputs`)


def _outputs(text: str | None) -> dict | None:
    """A stored run's outputs as documents: parsed once for a text (a re-run's rows copy their
    source's text), shared, so only read."""
    try:
        return _PARSED[text]
    except KeyError:
        if len(_PARSED) >= 8192:  # (a few re-runs of a 1000-step pipeline; a few MB)
            _PARSED.clear()
        parsed = _PARSED[text] = journal.plain_loads(text) if text is not None else None
        return parsed


class ReuseReads:
    """`History`'s reads for reuse (see the module's note)."""

    def _reuse_init(self) -> None:
        self._keys: set[str] = set()  # `stored_keys`: read up to rowid _keys_upto
        self._keys_upto: int | None = None
        self._keys_lock = threading.Lock()
        self._parts: dict[str, tuple[str, dict]] = {}  # `remember_parts`, by pipeline
        self._parts_lock = threading.Lock()
        self._runs: dict[str, tuple[int, list]] = {}  # `remember_runs`, by execution id
        self._queries()

    def _queries(self) -> None:
        usable = (f"SELECT {', '.join(CACHED_COLUMNS)} FROM step_runs WHERE {{}} AND status IN "
                  f"('Succeeded', 'Cached') AND outputs IS NOT NULL{self._valid}")
        self._latest_sql = (f"SELECT {', '.join(CACHED_COLUMNS)}, status IN ('Succeeded', "
                            f"'Cached') AND outputs IS NOT NULL{self._valid}, key_parts FROM "
                            "step_runs WHERE execution_id = ? AND end IS NOT NULL")
        self.cached_sql = usable.format("cache_key = ?") + " ORDER BY end DESC LIMIT 1"
        self._fresh_sql = (usable.format("cache_key = ? AND status = 'Succeeded' AND end >= ?")
                           + " ORDER BY end DESC LIMIT 1")

    def cached_run(self, cache_key: str, not_before: float | None = None) -> dict | None:
        """The newest successful run with this key (not older than ``not_before``): what a
        Cached record needs of it (no ``key_parts``: the caller has them, they made the key),
        and its ``rowid``, for `record_steps` to copy it."""
        if not_before is None:
            rows = self._rows(self.cached_sql, (cache_key,), None)
        else:  # the result's age counts from when a step made it
            rows = self._rows(self._fresh_sql, (cache_key, not_before), None)
        return self.cached(rows[0]) if rows else None

    def stored_keys(self, limit: int) -> set[str] | None:
        """The cache keys of every stored step run (usable or not): a key not among them has no
        stored run (`Recorder` then asks nothing more for it). Read in one go the first time (None
        if the history holds more than ``limit`` runs: too many to read for one run), then only
        the rows added since, so a process that keeps running a pipeline reads each row once.
        Rows are never deleted; a row still Executing when read has no key yet, so the next read
        starts again from it. The set is shared: callers only read it."""
        with self._keys_lock:
            if self._keys_upto is None:  # not read yet in this process
                top = self._rows("SELECT max(rowid) FROM step_runs", (), None)
                top = top[0][0] if top else None
                if top is not None and top > limit:
                    return None
                self._keys_upto = 0
            rows = self._rows("SELECT rowid, cache_key, status FROM step_runs WHERE rowid > ? "
                              "ORDER BY rowid", [self._keys_upto], None)
            keys, stop = self._keys, None
            for rowid, key, status in rows:
                if key is not None:
                    keys.add(key)
                if status == "Executing" and stop is None:
                    stop = rowid - 1  # read again from here next time: its key comes later
            if rows:
                self._keys_upto = rows[-1][0] if stop is None else stop
            return keys

    def _learn_keys(self, before: int, after: int, rows: list[list], copies: int) -> None:
        """The keys just written join `stored_keys` without a read, when they are all the rows
        added since it last read (none written by another process meanwhile, none updated in
        place) and none is still Executing (its key comes later). A copied row has the key of
        the row it copies, read already."""
        with self._keys_lock:
            if self._keys_upto != before or after - before != len(rows) + copies:
                return
            if any(row[2] == "Executing" for row in rows):
                return
            self._keys.update(row[6] for row in rows if row[6] is not None)
            self._keys_upto = after

    def stored_codes(self) -> set[str]:
        """The code parts of every stored successful run's key: a step whose code part is not
        among them cannot be Cached, whatever its inputs turn out to be (`Recorder.may_hit`)."""
        rows = self._rows("SELECT DISTINCT json_extract(key_parts, '$.code') FROM step_runs WHERE "
                          "status IN ('Succeeded', 'Cached') AND outputs IS NOT NULL "
                          f"AND key_parts IS NOT NULL{self._valid}", (), None)
        return {code for (code,) in rows}

    @staticmethod
    def cached(row: tuple) -> dict:
        """A row of `CACHED_COLUMNS` as the dict a reused run is made of."""
        rowid, execution_id, step, kind, status, end, key, source, outputs, metadata, *out = row
        return {"rowid": rowid, "execution_id": execution_id, "step": step, "kind": kind,
                "status": status, "end": end, "cache_key": key, "cache_source": source,
                "outputs": _outputs(outputs),
                "metadata": json.loads(metadata) if metadata else None,
                "stdout": out[0], "stderr": out[1]}

    def latest_execution(self, pipeline: str, *, besides: str) -> str | None:
        """The id of the pipeline's latest execution other than ``besides``, or None."""
        rows = self._rows("SELECT id FROM executions WHERE pipeline = ? AND id != ? "
                          "ORDER BY start DESC LIMIT 1", [pipeline, besides], None)
        return rows[0][0] if rows else None

    def latest_runs(self, execution_id: str) -> list[tuple]:
        """The execution's finished step runs, as rows of `CACHED_COLUMNS` and two more:
        whether the run can be reused, and its key parts (JSON), for `why`. One query where a
        re-run would make one a step, and none when this process ran the execution and read
        them as it ended (`remember_runs`); `cached` makes a row what `cached_run` gives, so
        only the runs a step reuses are decoded."""
        self._settled()  # (kept as its end's commit is made)
        known = self._runs.get(execution_id)
        if known is not None and known[0] == self._others_version():
            return known[1]
        return self._rows(self._latest_sql, [execution_id], None)

    def remember_runs(self, execution_id: str) -> None:
        """(The history's thread, once an execution's end is committed.) Read its `latest_runs`
        then, off the run's thread, for the pipeline's next run in this process (a re-run reads
        them before its first step). Its rows change no more, unless another process writes
        (`doctor` marks a run invalid): they are read again then. The last few executions (of
        at most `writer.REMEMBERED_RUNS` steps)."""
        try:
            if not self._made:
                self._make()
            version = self._others_version()  # (first: a write meanwhile makes them stale)
            with self._read_lock:
                rows = self._reader.execute(self._latest_sql, [execution_id]).fetchall()
        except (sqlite3.Error, StateError):  # the run reads them itself
            return
        with self._parts_lock:
            if len(self._runs) >= 4:
                self._runs.pop(next(iter(self._runs)))
            self._runs[execution_id] = (version, rows)

    def _others_version(self) -> int:
        """SQLite's ``data_version`` of the connection this process writes with: it changes
        when another connection (another process) commits."""
        if not self._made:
            self._make()
        with self._lock:
            try:
                return self._conn.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error as exc:
                raise database_error(exc, self.path, "history") from None

    def remember_parts(self, pipeline: str, execution_id: str, parts: dict[str, tuple]) -> None:
        """What `run_parts` reads of an execution (each finished step's ``(status, key parts)``),
        given by the process that ran it (the history's thread, once its end is committed: after
        its `start()` returned), so the pipeline's next run here says why each step ran without
        reading them back (`remembered_parts`). The last execution of a few pipelines."""
        with self._parts_lock:
            self._parts.pop(pipeline, None)
            if len(self._parts) >= 16:
                self._parts.pop(next(iter(self._parts)))
            self._parts[pipeline] = (execution_id, parts)

    def remembered_parts(self, pipeline: str, execution_id: str) -> dict[str, tuple] | None:
        """`remember_parts` of ``execution_id``, if it was the last this process gave for the
        pipeline (the caller knows it is the pipeline's latest execution in the history)."""
        known = self._parts.get(pipeline)
        return known[1] if known is not None and known[0] == execution_id else None

    def run_parts(self, execution_id: str) -> list[tuple]:
        """``(step, status, key parts JSON)`` of the execution's finished step runs: what
        `why` compares, read alone when nothing of the execution can be reused (a third of
        `latest_runs`' cost)."""
        return self._rows("SELECT step, status, key_parts FROM step_runs WHERE execution_id = ? "
                          "AND end IS NOT NULL", [execution_id], None)

    def last_parts(self, step: str, pipeline: str) -> tuple[str, dict | None] | None:
        """``(status, key parts)`` of the step's latest run in ``pipeline``: what `why` needs."""
        rows = self._rows("SELECT r.status, r.key_parts FROM step_runs r JOIN executions e ON "
                          "e.id = r.execution_id WHERE r.step = ? AND e.pipeline = ? "
                          "ORDER BY r.end DESC LIMIT 1", [step, pipeline])
        if not rows:
            return None
        status, parts = rows[0]
        return status, json.loads(parts) if parts else None
