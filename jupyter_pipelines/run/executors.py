"""Executors are standard `concurrent.futures.Executor` objects.

The default, `InKernelExecutor`, runs each step when it is submitted, in the calling thread
(in a notebook: the kernel), one at a time. A `ThreadPoolExecutor` runs independent steps in
parallel; any other Executor (e.g. ``dask.distributed.Client.get_executor()``) plugs in alike.
"""

from __future__ import annotations

from concurrent.futures import Executor, Future


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
