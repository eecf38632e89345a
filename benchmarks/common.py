"""The entry point every benchmark script shares: ``--quick``, the platform line, the reports."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def main(doc: str, *reports: Callable[[int], None], repeat: int = 5, quick: int = 2) -> None:
    """Parse ``--quick`` and run each report with the number of repeats (best of)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"best of {quick} instead of best of {repeat}")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]} on {sys.platform}\n")
    for report in reports:
        report(quick if args.quick else repeat)
