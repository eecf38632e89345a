"""``jupyter-pipelines doctor``: check a state folder; ``--repair`` marks what is broken.

Exit codes: 0 everything intact (or, with ``--repair``, everything broken marked so the next
run recomputes it); 3 problems found and left as they are.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager


def add_commands(sub) -> None:
    from .locate import add_location_options

    cmd = sub.add_parser(
        "doctor", help="check the state folder: databases, every stored artifact, interrupted runs",
        description="Check a state folder: SQLite integrity of the history and registry, every "
                    "artifact the history refers to (present, and re-hashed to its digest), "
                    "executions left Executing by dead processes, half-written files. Nothing is "
                    "changed without --repair.")
    add_location_options(cmd)
    cmd.add_argument("--store", metavar="URL", help="the artifact store, if not the state "
                     "folder's artifacts/ (a folder or an fsspec URL)")
    cmd.add_argument("--repair", action="store_true",
                     help="mark broken results invalid (the next run recomputes them), move "
                          "damaged files aside, mark interrupted executions Failed")
    cmd.add_argument("--json", action="store_true", help="print the report as JSON")


def _doctor(args) -> int:
    from .cli import EXIT_STATE, EXIT_SUCCEEDED
    from .locate import state_folder
    from .store.doctor import doctor

    home = state_folder(args, need=None)
    with _progress() as progress:
        report = doctor(home, store=args.store, repair=args.repair, progress=progress)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.to_text())
    return EXIT_SUCCEEDED if report.healthy else EXIT_STATE


@contextmanager
def _progress():
    """A progress callback drawing a bar on stderr while artifacts are hashed (on a terminal)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("hashing artifacts", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


COMMANDS = {"doctor": _doctor}
