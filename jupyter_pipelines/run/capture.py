"""Capturing each step's stdout and stderr, also when steps run in parallel threads.

While an execution runs, ``sys.stdout``/``sys.stderr`` are replaced by a proxy that sends
writes to the buffer of the step running in the current thread (and, when echoing, on to the
real stream as well); writes from other threads pass through unchanged.
"""

from __future__ import annotations

import io
import sys
import threading
from contextlib import contextmanager


class _Proxy(io.TextIOBase):
    def __init__(self, original, local: threading.local, which: str, echo: bool):
        self.original, self._local, self._which, self._echo = original, local, which, echo

    def write(self, text: str) -> int:
        buffer = getattr(self._local, self._which, None)
        if buffer is None:
            return self.original.write(text)
        buffer.write(text)
        if self._echo:
            self.original.write(text)
        return len(text)

    def flush(self) -> None:
        self.original.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name):
        return getattr(self.original, name)


_local = threading.local()


@contextmanager
def installed(echo: bool = False):
    """Swap in the proxies for the duration of an execution."""
    saved = sys.stdout, sys.stderr
    sys.stdout = _Proxy(saved[0], _local, "stdout", echo)
    sys.stderr = _Proxy(saved[1], _local, "stderr", echo)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def ensure_installed() -> None:
    """In a worker process (a pool's, a Dask worker's): route what steps print to their
    buffers for good (other threads' output passes through unchanged)."""
    if not isinstance(sys.stdout, _Proxy):
        sys.stdout = _Proxy(sys.stdout, _local, "stdout", False)
    if not isinstance(sys.stderr, _Proxy):
        sys.stderr = _Proxy(sys.stderr, _local, "stderr", False)


def begin() -> tuple[io.StringIO, io.StringIO, tuple]:
    """Inside a step (any thread): start collecting what it prints. A pair of plain calls
    rather than a context manager: this is on every step's path."""
    out, err = io.StringIO(), io.StringIO()
    previous = getattr(_local, "stdout", None), getattr(_local, "stderr", None)
    _local.stdout, _local.stderr = out, err
    return out, err, previous


def end(previous: tuple) -> None:
    _local.stdout, _local.stderr = previous
