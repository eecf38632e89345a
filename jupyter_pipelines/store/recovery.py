"""What a killed process leaves in a state folder, put right when the history is next opened:
an execution it left ``Executing``, or only in its journal (it died before its run's first
commit, `writer.HistoryWriter`), is recorded from its journal, its finished steps written and
the execution marked Failed (interrupted), in one transaction each (or with its journaled end,
if it had ended); the journals of executions whose end was committed are removed, and so are
the spare journals of dead processes (`journal.Journal.remove`). A process of another host, or
one that still runs, is left alone."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from . import journal
from .schema import RUN_COLUMNS, WRITE_RUN

if TYPE_CHECKING:
    from .history import History

INTERRUPTED = ("Interrupted: the process running this execution ended (killed or crashed) "
               "before it finished. Resume it with `%pipeline retry` or `jupyter-pipelines retry`.")


def mark_interrupted(history: History) -> list[str]:
    """Put right what dead processes of this host left in ``history`` (see the module's note);
    the ids of the executions marked."""
    host = socket.gethostname()
    journals = journal.left_behind(history.folder, alive)  # (dead processes' spares removed)
    rows = history._rows("SELECT id, pid FROM executions WHERE status = 'Executing' AND host = ?",
                         [host], settle=False)
    dead = [eid for eid, pid in rows if pid != os.getpid() and not alive(pid)]
    known = _known(history, list(journals))
    for eid, path in journals.items():
        if eid not in known and _record_start(history, eid, path, host):
            dead.append(eid)
    for eid in dead:
        path = journals.pop(eid, None)
        rows, end = journal.read(path, len(RUN_COLUMNS)) if path else ([], None)
        version = journal.head(path)[1] if path else None
        if version is not None and type(version[0]) is int:  # (an earlier release's line)
            history.write_version(*version)
        if end is not None:  # it ended; the process died before committing the end
            history.record_steps(eid, rows, tuple(end["end"]),
                                 [tuple(c) for c in end.get("copies", []) if len(c) == 4])
        else:
            with history._tx() as db:
                db.executemany(WRITE_RUN, [[eid, *row] for row in rows])
                db.execute("UPDATE executions SET status = 'Failed', failure_reason = ?, end = "
                           "COALESCE(end, (SELECT MAX(end) FROM step_runs WHERE execution_id = ?), "
                           "start) WHERE id = ? AND status = 'Executing'", (INTERRUPTED, eid, eid))
                db.execute("UPDATE step_runs SET status = 'Failed', failure_reason = ? "
                           "WHERE execution_id = ? AND status = 'Executing'", (INTERRUPTED, eid))
        if path is not None:
            path.unlink(missing_ok=True)
    for eid, path in journals.items():
        if known.get(eid, "Executing") != "Executing":
            path.unlink(missing_ok=True)
    return dead


def _known(history: History, ids: list[str]) -> dict[str, str]:
    """The status of each of these executions the history has."""
    found: dict[str, str] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        found.update(history._rows(f"SELECT id, status FROM executions WHERE id IN "
                                   f"({', '.join('?' * len(chunk))})", chunk, None, settle=False))
    return found


def _record_start(history: History, execution_id: str, path: Path, host: str) -> bool:
    """Record the start of the execution of a journal the history has not got, if its
    process (of this host) no longer runs: its version too, from the journal's version
    line if that is whole (checked against its digest). The execution is the one the
    journal's name says (its rows are recorded under that id)."""
    start, version = orphaned(path, host)
    if start is None:
        return False
    start[0] = execution_id
    document = None
    if version is not None and version[0] == start[2]:
        document = version[1]
        if hashlib.sha256(document.encode()).hexdigest() != start[2]:
            document = None
    history.start_execution(start, document)
    return True


def orphaned(path: Path, host: str) -> tuple[list | None, tuple | None]:
    """`journal.head` of a journal whose process (of ``host``, this one) no longer runs; its
    start is None if the journal has none or its process may still record it."""
    start, version = journal.head(path)
    if start is None or start[6] != host or start[5] == os.getpid() or alive(start[5]):
        return None, None
    return start, version


def alive(pid: int | None) -> bool:
    """Whether process ``pid`` (of this host) still runs."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
