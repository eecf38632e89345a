"""Writing one execution's history while it runs: each finished step to the `journal` at once,
the database in batches, from a thread of the history's own.

A SQLite commit costs ~35 µs (WAL, synchronous=NORMAL), twice the runner's whole cost per step,
and inserting a row ~5 µs more; an append to the journal ~3 µs. So:

* `HistoryWriter.begin` journals the execution's start (and its pipeline version's document,
  if the history may not have it), which the first commit records before the first rows: a
  run writes nothing to SQLite before its steps (a run in a new state folder does not even
  wait for the database to be made: the first commit makes it);
* `HistoryWriter.finished` appends the step's line to the journal (one ``write()``: durable
  against a killed process, see `journal`) and queues its record; a Cached record is only
  queued (a kill loses nothing it computed), as a copy of the stored row it reuses when it can
  (`copied`). The rows are made of the records by the thread that commits them;
* the queue is committed by `_COMMITTER`'s thread at most `FLUSH_INTERVAL` after its first row,
  in one transaction with an ``Executing`` row for each step running then, while the run's
  thread goes on (SQLite works without the GIL; the run's look-ups read through a connection
  of their own, `History`). The thread looks every FLUSH_INTERVAL while the execution runs, and
  finds the running steps in the execution's records itself: a step's start costs the run
  nothing here;
* `end` journals the execution's end (with the Cached rows still queued) and leaves its commit,
  with what is left, to the thread: the run returns without waiting for SQLite. A read of the
  history waits for it (`History.settle`), and so does the interpreter's exit (`atexit`).

So a kill -9 loses only the steps that were running (and those only if they started less than
FLUSH_INTERVAL before: a longer one is recorded Executing, and the next `History` opened marks
it interrupted); the next `History` opened replays the journal of a dead execution. Other
processes see a finished step within FLUSH_INTERVAL.

Fields, guarded by ``_lock`` (the run's thread and the committer's both use them):
    _records    finished step records queued, their rows not committed yet
    _copies     Cached rows to copy, queued: (source rowid, step, start, end)
    _finished   steps whose row came (`finished`), by name
    _shown      steps whose Executing row was committed
    _appended   journal lines written: a commit clears the journal only if none came meanwhile
    _due        a commit is scheduled; _ended: the execution ended (`_finish`), its last
                commit is the thread's (claimed once: `_final_claimed`)
Commits hold ``_commit_lock``, so they go one at a time, each of a later snapshot.
"""

from __future__ import annotations

import atexit
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from .artifacts import ArtifactStore
from .history import History
from .journal import Journal
from .rows import end_line, journal_line, record_row, start_line, version_line
from .schema import step_row

FLUSH_INTERVAL = 0.1  # seconds a queued row waits at most for its commit
JOURNAL_LIMIT = 8 << 20  # bytes: a journal this long is cleared by a commit on the run's thread
REMEMBERED_RUNS = 20_000  # steps of an execution whose runs are kept for a re-run (about 14 MB)


class HistoryWriter:
    def __init__(self, history: History, artifacts: ArtifactStore, execution_id: str,
                 steps: dict[str, Any], start: list, document: str | None,
                 started: Callable[[int], None]):
        """``steps``: the execution's records by name (a record whose status is Executing is
        running), read by the committer's thread; ``artifacts``: the store of their outputs;
        ``start``: the execution's `rows.start_row`, recorded by the first commit with
        ``document``, the text of its pipeline version if the history may not have it (the
        version is then named by its digest), and passed the version's id (``started``)."""
        self.history, self.artifacts, self.execution_id = history, artifacts, execution_id
        self._steps = steps
        self.pipeline = start[1]
        self._start: list | None = start
        self._document = document
        self._started = started
        self._journal = Journal(history.folder, execution_id)
        self._journal_failed = False
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._records: list = []
        self._copies: list[tuple] = []
        self._finished: set[str] = set()
        self._shown: set[str] = set()
        self._appended = 0
        self._due = self._ended = False
        self._finish: tuple | None = None
        self._final_claimed = False

    def begin(self, records: list) -> None:
        """The execution started, with ``records`` that need no journal (Cached records the
        run starts with): its start (and its version's document, if new) is journaled, for the
        first commit to record (a kill before that loses nothing: the next `History` opened
        records it from the journal), and the committer's thread looks from now on."""
        lines = [start_line(self._start)]
        if self._document is not None:
            lines.append(version_line(self._start[2], self._document))
        journaled = 0
        try:
            self._journal.append("\n".join(lines))
            journaled = 1
        except Exception:  # the first step's append says why (and stops the run); the start
            pass           # is recorded by the first commit all the same
        with self._lock:
            self._appended += journaled
            self._records.extend(records)
            self._schedule()

    def finished(self, record) -> None:
        """A step record is final: journaled (unless Cached: nothing of it is new) and queued."""
        line = journal_line(record, self.artifacts) if record.status != "Cached" else None
        with self._lock:
            self._finished.add(record.name)
            self._records.append(record)
            if not self._due:
                self._schedule()
            if line is None or self._journal_failed:
                return
            try:
                self._journal.append(line)
            except Exception:  # the run stops (the loop's `_abandon`); its end is committed
                self._journal_failed = True
                raise
            self._appended += 1
            full = self._journal.size >= JOURNAL_LIMIT
        if full:  # a long run: keep the journal short (rare, so on this thread)
            try:
                self._commit()
            except Exception:  # busy now: the journal waits for a later commit
                pass

    def copied(self, rowid: int, name: str, start: float | None, end: float | None) -> None:
        with self._lock:
            self._copies.append((rowid, name, start, end))
            self._schedule()

    def unfinished(self) -> list:
        """The records of steps shown Executing that never finished (a chained step not run)."""
        with self._lock:
            return [self._steps[n] for n in self._shown if n not in self._finished]

    def end(self, finish: tuple, records: list = ()) -> None:
        """The execution ended: ``records`` (steps shown Executing that never finished) and its end
        (status, end, reason) are journaled with what is still queued, and committed by the
        history's thread after the run returns (`History.settle`: a read waits for it); the
        journal is removed then. A kill before that commit loses nothing: the next `History`
        opened replays the journal, end included."""
        _COMMITTER.forget(self)  # (no reference kept: the history's connection can close)
        with self._lock:
            self._ended = True
            self._records.extend(records)
            self._finish = finish
            copies = list(self._copies)
        if not self._journal_failed:
            try:  # (best effort: a journal that fails here fails the same way at the replay)
                self._journal.append("\n".join([*(journal_line(r, self.artifacts) for r in records),
                                                end_line(finish, copies)]))
                with self._lock:
                    self._appended += 1  # (a commit in flight must not clear it)
            except Exception:
                self._journal_failed = True
        self.history.pending(1)
        _COMMITTER.ending(self)

    def _final_commit(self) -> None:
        """(The committer's thread.) The end's commit, tried again while the database is busy;
        if it never goes through, the journal keeps it for the next `History` opened."""
        with self._lock:
            if self._final_claimed:  # (the exit's `flush` and the thread: one of them)
                return
            self._final_claimed = True
        try:
            for wait in (0.2, 1.0, 5.0, None):
                try:
                    self._commit(self._finish)
                except Exception as exc:
                    if wait is None:
                        print(f"jupyter-pipelines: the end of execution {self.execution_id} could "
                              f"not be written to the history ({exc}); its journal "
                              f"{self._journal.path} keeps it, and the next session that opens "
                              "the state folder writes it.", file=sys.stderr)
                        self._journal.close()
                        return
                    time.sleep(wait)
                else:
                    self._journal.remove()
                    self.history.remember_parts(self.pipeline, self.execution_id, {
                        name: (r.status, r.key_parts) for name, r in self._steps.items()
                        if r.end is not None})  # (why the next run here ran each step)
                    if len(self._steps) <= REMEMBERED_RUNS:  # (for a re-run here)
                        self.history.remember_runs(self.execution_id)
                    return
        finally:
            self.history.pending(-1)
            _COMMITTER.ended(self)

    # -- committing ---------------------------------------------------------------------------
    def _schedule(self) -> None:
        """(Holding the lock.) Make sure a commit comes within FLUSH_INTERVAL."""
        if not self._due and not self._ended:
            self._due = True
            _COMMITTER.due(self, time.monotonic() + FLUSH_INTERVAL)

    def _timed_commit(self) -> None:
        """(The committer's thread.)"""
        if self._ended:
            return self._final_commit()
        with self._lock:
            self._due = False
        try:
            self._commit()
        except Exception:  # busy or unwritable now: the rows stay journaled and queued, and
            pass           # the execution's end commits them or says why it cannot
        with self._lock:  # look again while the execution runs (a step may start meanwhile)
            self._schedule()

    def _commit(self, finish: tuple | None = None) -> None:
        with self._commit_lock:
            if self._start is not None:  # (first: nothing is taken off the queue if it fails)
                version_id = self.history.start_execution(self._start, self._document)
                self._start = self._document = None
                self._started(version_id)
            with self._lock:
                if self._ended and finish is None:  # the end's commit has them all
                    return
                records, copies = self._records, self._copies
                self._records, self._copies = [], []
                running = [] if finish else [
                    r for r in list(self._steps.values())  # (a copy: the run's thread goes on)
                    if r.status == "Executing" and r.name not in self._shown
                    and r.name not in self._finished]
                appended = self._appended
            rows = [record_row(r, self.artifacts) for r in records]
            rows += [step_row({"step": r.name, "kind": r.kind, "status": "Executing",
                               "start": r.start, "attempts": r.attempts}) for r in running]
            if rows or copies or finish is not None:
                try:
                    self.history.record_steps(self.execution_id, rows, finish, copies)
                except BaseException:
                    with self._lock:  # not lost: first in the next commit
                        self._records[:0] = records
                        self._copies[:0] = copies
                    raise
            with self._lock:
                self._shown.update(r.name for r in running)
                if self._appended == appended and not self._journal_failed:
                    self._journal.clear()


class _Committer:
    """One daemon thread per process making the commits writers ask for when they are due,
    started by the first that asks."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[HistoryWriter, float] = {}
        self._ending: set[HistoryWriter] = set()  # ended, their last commit not made yet
        self._thread: threading.Thread | None = None

    def due(self, writer: HistoryWriter, when: float) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, daemon=True,
                                                name="jupyter-pipelines-history")
                self._thread.start()
            self._due[writer] = when
            self._cond.notify()

    def ending(self, writer: HistoryWriter) -> None:
        """``writer``'s execution ended: its last commit is made now, on the thread."""
        with self._cond:
            self._ending.add(writer)
        self.due(writer, 0.0)

    def ended(self, writer: HistoryWriter) -> None:
        with self._cond:
            self._ending.discard(writer)

    def flush(self, timeout: float = 60.0) -> None:
        """Make the executions' last commits now and wait for them: at the interpreter's exit
        (the thread, a daemon, stops there; a commit it leaves undone is in the journal)."""
        with self._cond:
            ending = list(self._ending)
            for writer in ending:
                self._due.pop(writer, None)
        for writer in ending:
            writer._final_commit()  # (unless the thread has it: then wait for it)
            writer.history.settle(timeout)

    def forget(self, writer: HistoryWriter) -> None:
        with self._cond:
            self._due.pop(writer, None)

    def _serve(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                ready = [w for w, when in self._due.items() if when <= now]
                if not ready:
                    self._cond.wait(min(self._due.values()) - now if self._due else None)
                    continue
                # (no loop variable: one left on this frame would keep a writer, and its
                # history's connections, alive past the interpreter's exit, WAL unfolded)
                self._due = {w: when for w, when in self._due.items() if when > now}
            while ready:  # outside the condition: a commit may wait for the database
                ready.pop()._timed_commit()


_COMMITTER = _Committer()
atexit.register(_COMMITTER.flush)
