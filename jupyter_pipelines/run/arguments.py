"""Checks of what `Pipeline.start` is given, before anything runs: a wrong type gets a
sentence naming the argument, never an AttributeError from deep inside."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ..errors import PipelineError


def check_selection(from_step: Any, to_step: Any, only: Any) -> None:
    """start()'s step choices, before a bare str in ``only`` is read letter by letter."""
    for label, value in (("from_step", from_step), ("to_step", to_step)):
        if value is not None and not isinstance(value, str):
            raise PipelineError(f"start({label}=...) takes a step's name (a str); got {value!r}.")
    if only is not None and (isinstance(only, (str, bytes)) or not hasattr(only, "__iter__")
                             or not all(isinstance(n, str) for n in only)):
        raise PipelineError(f"start(only=...) takes a list of step names, e.g. only=['Train']; "
                            f"got {only!r}.")


def check_executor(executor: Any, listeners: Any, max_parallel: Any = None) -> None:
    """``executor`` (an Executor or a name `executors.resolve` checks), ``listeners`` and
    ``max_parallel`` (a whole number >= 1, or None)."""
    if executor is not None and not isinstance(executor, str) and not callable(
            getattr(executor, "submit", None)):
        raise PipelineError(
            f"executor must be a concurrent.futures.Executor (e.g. ThreadPoolExecutor()) or one "
            f"of 'in-kernel', 'threads[:N]', 'processes[:N]', 'dask', 'tcp://host:port'; got "
            f"{type(executor).__name__}.")
    if max_parallel is not None and (isinstance(max_parallel, bool) or not isinstance(max_parallel, int)
                                     or max_parallel < 1):
        raise PipelineError(f"max_parallel must be a whole number >= 1 (the most steps running at "
                            f"once), or None for no limit; got {max_parallel!r}.")
    # items are checked only in a collection: checking an iterator would use it up
    items = listeners if isinstance(listeners, Collection) else ()
    if isinstance(listeners, (str, bytes)) or not hasattr(listeners, "__iter__") or not all(
            callable(f) for f in items):
        raise PipelineError(
            "listeners must be a list of callables listener(event, *, execution, **fields); got "
            f"{listeners!r}.")
