"""``doctor``: check a state folder end to end, and on request mark what is broken.

What it checks:
- the history and registry databases: SQLite's own integrity check;
- every artifact the history refers to (as a reusable output): present, and its bytes
  re-hashed to the digest recorded for it (always re-hashed here, whatever was verified before);
- executions left ``Executing`` by a process of this host that no longer runs, and those
  whose process died before their first commit (only in their journal, see `writer`);
- half-written artifact files left by a crash (``.staged.*.tmp``).

Without ``repair`` nothing is changed: the databases are opened read-only. With ``repair``:
a damaged database is moved aside (``history.db.damaged-<time>``), so the next run starts a
new one; the step runs whose outputs are missing or corrupt are marked invalid, so the next run
recomputes them, and a corrupt file is moved into ``.damaged/`` in the store; interrupted
executions are marked Failed (recorded from their journals first, if only those have them);
staged files older than an hour are removed. Nothing else is deleted, ever.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import StateError
from . import journal
from .artifacts import ArtifactRef, ArtifactStore
from .history import settle_all
from .recovery import alive, orphaned
from .state import read_only_uri

DATABASES = (("history.db", "history"), ("registry.db", "registry"))
_STAGED_AGE = 3600  # seconds: an older staged file belongs to no live writer


@dataclass
class Finding:
    what: str      # database | artifact | execution | staged
    subject: str   # the file, artifact path or execution id
    problem: str   # what is wrong, in words
    repaired: str = ""  # what --repair did about it


@dataclass
class Report:
    home: str
    repair: bool
    checked: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """Nothing broken is left (all fine, or all repaired)."""
        return all(f.repaired for f in self.findings)

    def as_dict(self) -> dict:
        return {"StateFolder": self.home, "Repair": self.repair, "Healthy": self.healthy,
                "Checked": self.checked, "Findings": [asdict(f) for f in self.findings],
                "Notes": self.notes}

    def to_text(self) -> str:
        counts = ", ".join(f"{n} {what}" for what, n in self.checked.items())
        lines = [f"State folder {self.home}: checked {counts or 'nothing'}."]
        for f in self.findings:
            lines.append(f"- {f.what} {f.subject}: {f.problem}"
                         + (f" Repaired: {f.repaired}" if f.repaired else ""))
        lines.extend(f"  note: {note}" for note in self.notes)
        if not self.findings:
            lines.append("Everything is intact.")
        elif self.healthy:
            lines.append("Everything broken was marked or moved aside; the next run recomputes it.")
        else:
            lines.append(f"{len(self.findings)} problem(s) found; nothing was changed. Run again "
                         "with --repair to mark or move aside what is broken, so the next run "
                         "recomputes it.")
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(self.to_text())


def doctor(home: str | os.PathLike, *, store: str | None = None, repair: bool = False,
           progress: Callable[[int, int], None] | None = None) -> Report:
    """Check the state folder ``home`` (artifacts under ``store``, default ``home/artifacts``);
    ``progress(done, total)`` is called while artifacts are hashed."""
    folder = Path(home)
    if folder.exists() and not folder.is_dir():
        raise StateError(f"The state folder {folder} is a file, not a folder. Point --home (or "
                         "JUPYTER_PIPELINES_HOME) at the folder that holds history.db.")
    if not folder.is_dir():
        raise StateError(f"There is no state folder at {folder}: nothing to check. Point --home, "
                         "--notebook or JUPYTER_PIPELINES_HOME at the folder that holds history.db.")
    report = Report(str(folder), repair)
    settle_all()  # what this process ran is checked as it ended (its last commit is done)
    intact = {name: _check_database(folder / name, what, report) for name, what in DATABASES}
    if intact["history.db"]:
        _check_history(folder, store, report, progress)
    if intact["history.db"] or not (folder / "history.db").exists():
        _check_journals(folder, report)
    _check_staged(Path(store) if store and "://" not in store else folder / "artifacts", report)
    return report


def _check_database(path: Path, what: str, report: Report) -> bool:
    """SQLite's integrity check; a damaged file is moved aside with --repair."""
    if not path.exists():
        return False
    report.checked[f"{what} database"] = 1
    try:
        with _read_only(path) as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        problem = None if rows == [("ok",)] else "; ".join(r[0] for r in rows[:5])
    except sqlite3.DatabaseError as exc:
        problem = str(exc)
    if problem is None:
        return True
    finding = Finding("database", str(path), f"SQLite reports it damaged ({problem}).")
    if report.repair:
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            extra = Path(str(path) + suffix)
            if extra.exists():
                os.replace(extra, str(aside) + suffix)
        finding.repaired = f"moved aside to {aside.name}; the next run starts a new {what}."
    report.findings.append(finding)
    return False


def _read_only(path: Path):
    """A read-only connection (works on a read-only folder, never writes or recovers)."""
    return closing(sqlite3.connect(read_only_uri(path), uri=True, timeout=30))


def _check_history(folder: Path, store: str | None, report: Report, progress) -> None:
    path = folder / "history.db"
    with _read_only(path) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(step_runs)")}
        valid = " AND invalid IS NULL" if "invalid" in columns else ""
        runs = conn.execute("SELECT execution_id, step, outputs FROM step_runs WHERE status IN "
                            "('Succeeded', 'Cached') AND outputs IS NOT NULL" + valid).fetchall()
        executing = conn.execute("SELECT id, pid, host FROM executions WHERE status = 'Executing'"
                                 ).fetchall()
    # (digest, inline text) -> (ref, step, output): a file is checked once, and so is each
    # distinct copy of a small value (every row keeps its own)
    refs: dict[tuple[str, str | None], tuple[ArtifactRef, str, str]] = {}
    for _execution, step, outputs in runs:
        for name, doc in json.loads(outputs).items():
            ref = ArtifactRef.from_dict(doc)
            refs.setdefault((ref.digest, ref.inline), (ref, step, name))
    report.checked["executions left Executing"] = len(executing)
    report.checked["artifacts"] = len(refs)
    artifacts = ArtifactStore(store or folder / "artifacts")
    damaged = []
    for done, (ref, step, name) in enumerate(refs.values(), start=1):
        problem = artifacts.check(ref)
        if problem:
            damaged.append((ref, step, name, problem))
        if progress:
            progress(done, len(refs))
    history = None
    if report.repair and (damaged or executing):
        from .history import History

        history = History(folder)  # opening it marks dead Executing executions Failed
    for ref, step, name, problem in damaged:
        finding = Finding("artifact", artifacts.path(ref), f"output `{name}` of step `{step}` is "
                          f"{problem} (digest {ref.digest}).")
        if history is not None:
            reason = f"stored output `{name}` of step {step} is {problem}"
            marked = history.mark_invalid(ref.digest, reason, inline=ref.inline)
            moved = _move_aside(artifacts, ref) if problem == "corrupt" and ref.inline is None else ""
            finding.repaired = f"{marked} step run(s) marked invalid{moved}; the next run recomputes it."
        report.findings.append(finding)
    host = socket.gethostname()
    for eid, pid, where in executing:
        if where != host:
            report.notes.append(f"execution {eid} is Executing on host {where}; it cannot be "
                                "checked from here.")
        elif pid != os.getpid() and not alive(pid):
            finding = Finding("execution", eid, f"left Executing by process {pid}, which is no "
                              "longer running (killed or crashed).")
            if history is not None:
                finding.repaired = "marked Failed (interrupted); `retry` resumes it."
            report.findings.append(finding)


def _check_journals(folder: Path, report: Report) -> None:
    """Executions whose process (of this host) died before their first commit: only their
    journal has them; opening the history (with --repair) records them from it, interrupted."""
    journals = journal.left_behind(folder)
    recorded: set[str] = set()
    if journals and (folder / "history.db").exists():
        with _read_only(folder / "history.db") as conn:
            ids = list(journals)
            recorded = {eid for (eid,) in conn.execute(
                f"SELECT id FROM executions WHERE id IN ({', '.join('?' * len(ids))})", ids)}
    host, orphans = socket.gethostname(), []
    for eid, path in journals.items():
        start = orphaned(path, host)[0] if eid not in recorded else None
        if start is not None:
            orphans.append(Finding("execution", eid, f"left by process {start[5]}, which is no "
                                   "longer running (killed or crashed), before its first commit: "
                                   f"only its journal ({path.name}) has it."))
    if orphans and report.repair:
        from .history import History

        History(folder).close()  # opening it records them from their journals, interrupted
        for finding in orphans:
            finding.repaired = "recorded from its journal and marked Failed (interrupted); " \
                               "`retry` resumes it."
    report.checked["journals left behind"] = len(journals)
    report.findings.extend(orphans)


def _move_aside(artifacts: ArtifactStore, ref: ArtifactRef) -> str:
    """A corrupt local file goes to ``.damaged/`` in the store (kept, never deleted)."""
    root = getattr(artifacts.backend, "root", None)
    if not isinstance(root, Path):
        return ""
    target = root / ".damaged" / ref.digest
    target.parent.mkdir(exist_ok=True)
    os.replace(root / ref.key, target)
    return f", the corrupt file moved to {target}"


def _check_staged(root: Path, report: Report) -> None:
    if not root.is_dir():
        return
    staged = list(root.glob(".staged.*.tmp"))
    report.checked["half-written files"] = len(staged)
    now = time.time()
    for path in staged:
        if now - path.stat().st_mtime < _STAGED_AGE:
            report.notes.append(f"{path.name} is being written (less than an hour old); left alone.")
            continue
        finding = Finding("staged", str(path), "a half-written artifact left by an interrupted "
                          "write; no record refers to it.")
        if report.repair:
            path.unlink(missing_ok=True)
            finding.repaired = "removed."
        report.findings.append(finding)
