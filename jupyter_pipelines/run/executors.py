"""Executors are standard `concurrent.futures.Executor` objects.

The default, `InKernelExecutor`, runs each step when it is submitted, in the calling thread
(in a notebook: the kernel), one at a time. Any other Executor plugs in alike (e.g.
``dask.distributed.Client.get_executor()``), and `resolve` turns the names users type into one:

    "in-kernel"            the default: one step at a time, in this process
    "threads[:N]"          a thread pool (N workers; default: the number of cores)
    "processes[:N]"        a process pool (spawn or forkserver, never fork: a kernel has threads)
    "dask", "tcp://h:p"    a Dask cluster: a LocalCluster, or a running scheduler (`cluster`)

Pools are kept warm for the process (a kernel session, a CLI run): the first run that asks for
one starts it, later runs reuse it, and they are shut down at exit. A process pool receives
each task cloudpickled (steps, their inputs and the notebook's functions cross by value) and
sends the result back the same way; `crosses_processes` tells the run loop that outputs must
survive that trip, so an output that cannot is named by its step (see `task.run_task`).
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import re
import sys
import threading
from concurrent.futures import Executor, Future, InvalidStateError, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager

from ..errors import PipelineError

_SPEC = re.compile(r"^(in-kernel|threads|processes)(?::(\d+))?$")
START_METHODS = ("forkserver", "spawn")


class InKernelExecutor(Executor):
    """Run the task now, in this thread. An interrupt (KeyboardInterrupt) propagates to the
    run loop, which stops the execution; any other exception is kept in the future."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


class ProcessExecutor(Executor):
    """A warm `ProcessPoolExecutor` whose tasks and results travel cloudpickled, so that steps
    defined in a notebook (functions and classes of its cells included) run in worker
    processes started with spawn or forkserver."""

    crosses_processes = True

    def __init__(self, workers: int, start_method: str = "forkserver"):
        if start_method not in multiprocessing.get_all_start_methods():
            start_method = "spawn"
        self.workers, self.start_method = workers, start_method
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(start_method),
                                         initializer=_ignore_interrupts)

    def submit(self, fn, /, *args, **kwargs) -> Future:
        import cloudpickle

        payload = cloudpickle.dumps((fn, args, kwargs))
        with _main_without_missing_file():  # workers start here, on demand
            outer = self._pool.submit(_call_pickled, payload)
        inner: Future = Future()

        def unpack(done: Future) -> None:
            try:
                value, error = cloudpickle.loads(done.result()), None
            except BaseException as exc:  # the pool broke, or a result that cannot be read
                value, error = None, exc
            try:
                inner.set_result(value) if error is None else inner.set_exception(error)
            except InvalidStateError:  # cancelled: the run stopped (an interrupt), and nobody
                pass                   # waits for it

        outer.add_done_callback(unpack)
        inner.add_done_callback(lambda f: f.cancelled() and outer.cancel())  # (if not begun)
        return inner

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    def __repr__(self) -> str:
        return f"ProcessExecutor(workers={self.workers}, start_method={self.start_method!r})"


def _ignore_interrupts() -> None:
    """In a worker: an interrupt is the kernel's to handle (it stops the run and cancels what
    has not started); a Ctrl-C reaching the whole process group must not kill workers mid-step."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def _main_without_missing_file():
    """A new worker re-imports the parent's ``__main__`` from its file; a session run from
    stdin or ``python -c`` has none (``<stdin>``), which would kill every worker. Tasks travel
    cloudpickled and need nothing from ``__main__``, so hide the name while workers start."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or path is None or os.path.isfile(path):
        yield
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


def _call_pickled(payload: bytes) -> bytes:
    """In the worker: run the task; a result that cannot be pickled back is replaced by what
    its ``unportable(exc)`` says (a failed step naming the output), if it has that hook."""
    import cloudpickle

    from . import capture

    capture.ensure_installed()
    fn, args, kwargs = cloudpickle.loads(payload)
    result = fn(*args, **kwargs)
    try:
        return cloudpickle.dumps(result)
    except Exception as exc:
        explain = getattr(result, "unportable", None)
        if explain is None:
            raise
        return cloudpickle.dumps(explain(exc))


_POOLS: dict[tuple, Executor] = {}
_LOCK = threading.Lock()


def resolve(spec: str | Executor | None, *, start_method: str | None = None) -> Executor:
    """The executor a run uses: an Executor as given, else the warm one ``spec`` names."""
    if spec is None:
        return InKernelExecutor()
    if isinstance(spec, Executor) or callable(getattr(spec, "submit", None)):
        return spec  # type: ignore[return-value]
    if isinstance(spec, str) and (spec.strip() == "dask" or spec.strip().startswith(("tcp://", "dask://", "tls://"))):
        from .cluster import connect

        return connect(spec.strip())
    match = _SPEC.match(spec.strip()) if isinstance(spec, str) else None
    if match is None or (match.group(2) is not None and int(match.group(2)) < 1):
        raise PipelineError(
            f"Executor {spec!r} is not one this package knows: use 'in-kernel' (the default), "
            "'threads', 'threads:N', 'processes' or 'processes:N' (N >= 1 workers), 'dask' (a "
            "Dask cluster on this machine), a Dask scheduler's address ('tcp://host:8786' or "
            "'dask://host:8786'), or pass a concurrent.futures.Executor.")
    kind, count = match.group(1), match.group(2)
    if kind == "in-kernel":
        return InKernelExecutor()
    workers = int(count) if count else (os.cpu_count() or 1)
    method = start_method or os.environ.get("JUPYTER_PIPELINES_START_METHOD") or START_METHODS[0]
    if method not in START_METHODS:
        raise PipelineError(f"Start method {method!r} is not supported: use one of "
                            f"{', '.join(START_METHODS)} (fork is unsafe in a kernel with threads).")
    key = (kind, workers, method if kind == "processes" else None)
    with _LOCK:
        pool = _POOLS.get(key)
        if pool is None or getattr(getattr(pool, "_pool", pool), "_broken", False):
            pool = (ThreadPoolExecutor(workers, thread_name_prefix="jupyter-pipelines")
                    if kind == "threads" else ProcessExecutor(workers, method))
            _POOLS[key] = pool
    return pool


@atexit.register
def _shutdown_pools() -> None:
    for pool in _POOLS.values():
        pool.shutdown(wait=False, cancel_futures=True)
    _POOLS.clear()
