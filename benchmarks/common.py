"""The entry point every benchmark script shares: ``--quick``, the platform line, the reports."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable


def main(doc: str, *reports: Callable[[int], None], repeat: int = 5, quick: int = 2) -> None:
    """Parse ``--quick`` and ``--only``, and run the reports with the number of repeats (best
    of)."""
    names = [report.__name__.removeprefix("report_") for report in reports]
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"best of {quick} instead of best of {repeat}")
    parser.add_argument("--only", choices=names, action="append",
                        help="run this report alone, in a process of its own (repeatable)")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]} on {sys.platform}\n")
    for name, report in zip(names, reports, strict=True):
        if not args.only or name in args.only:
            report(quick if args.quick else repeat)


def remove_state(folder) -> None:
    """Remove a benchmark's state folder once this process's commits to its history are made:
    the history's thread commits a run's end after ``start()`` returned, and a folder removed
    under it leaves that commit to fail at exit (its journal gone with it)."""
    from jupyter_pipelines.store.history import settle_all

    settle_all()
    shutil.rmtree(folder, ignore_errors=True)
