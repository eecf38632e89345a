"""What `cluster.DaskExecutor` sends the cluster for a step: its tasks, in a Dask graph.

A step's task (`cluster_worker.run_step`) is given its `Payload` (the step, and its *sources*,
saying where each input comes from), the run's base namespace (a future every worker holds)
and, as arguments of their own, the results of the upstream steps it reads: those are what
Dask sees as the task's dependencies (their futures, or references to tasks in the same
graph), the only references among the arguments. A source is ``("made", i, output)`` (an
output of the i-th upstream result), ``("stored", ref)`` (the worker reads the store) or
``("value", Held)`` (a value the kernel holds, sent as it is).

The steps submitted together are sent as one graph (`graph`): the scheduler's work for each
graph it is sent grows with the tasks it holds, so a chain sent step by step cost it n^2.
"""

from __future__ import annotations

from . import cluster_worker as work


class Held:
    """A value a step reads, as the kernel holds it."""

    def __init__(self, value):
        self.value = value


class Payload:
    """What a task is given besides the base namespace and the upstream results: the step,
    its run's context, the store's location, its sources and, for a part of a transform,
    which part. One object to Dask, which names a graph by a token of its arguments and would
    otherwise pickle each of them (the step, and any value the kernel holds) to make it."""

    __slots__ = ("key", "step", "ctx", "store", "sources", "part", "parts")

    def __init__(self, key: str, step, ctx, store: str | None, sources: dict,
                 part: int = 0, parts: int = 1):
        self.key, self.step, self.ctx, self.store, self.sources = key, step, ctx, store, sources
        self.part, self.parts = part, parts

    def __dask_tokenize__(self):  # (its task's key is unique)
        return ("jupyter-pipelines", self.key)


def tasks_of(step, token: str, base, inputs: dict, ctx, store: str | None,
             parts: int) -> tuple[list[tuple], dict]:
    """The step's tasks, ``(key, function, arguments)`` with the step's own last (its key is
    ``token``), and its sources. ``inputs`` maps names to ("remote", result, output) (a
    future, or a `TaskRef` to a task not sent yet), ("stored", ref) or ("value", value)."""
    from dask.task_spec import TaskRef

    made: list = []
    made_keys: list[str] = []
    sources = {}
    for name, source in inputs.items():
        if source[0] == "remote":
            key = source[1].key
            if key not in made_keys:
                made_keys.append(key)
                made.append(source[1])
            sources[name] = ("made", made_keys.index(key), source[2])
        elif source[0] == "value":
            sources[name] = ("value", Held(source[1]))
        else:
            sources[name] = source
    if parts == 1:
        return [(token, work.run_step, (Payload(token, step, ctx, store, sources), base, *made))], sources
    keys = [f"{token}-part{i}" for i in range(parts)]
    tasks = [(key, work.run_part, (Payload(key, step, ctx, None, sources, i, parts), base, *made))
             for i, key in enumerate(keys)]
    merge = Payload(token, step, ctx, store, {})
    return tasks + [(token, work.merge_parts, (merge, *map(TaskRef, keys)))], sources


def graph(tasks: list[tuple], sent: dict) -> dict:
    """The Dask graph of ``tasks``; a reference to a task ``sent`` already is its future."""
    from dask.task_spec import Task, TaskRef

    def arg(value):
        return sent.get(value.key, value) if type(value) is TaskRef else value

    return {key: Task(key, function, *map(arg, args)) for key, function, args in tasks}


def unsendable(sources: dict, exc: Exception) -> str:
    """Why a step could not be sent: the input that cannot be pickled, if one is to blame."""
    import cloudpickle

    while exc.__cause__ is not None or exc.__context__ is not None:  # Dask's wrapping: to the root
        exc = exc.__cause__ or exc.__context__
    for name, source in sources.items():
        if source[0] == "value":
            try:
                cloudpickle.dumps(source[1].value)
            except Exception as cause:
                kind = type(source[1].value)
                return (f"its input `{name}`, a {kind.__module__}.{kind.__qualname__}, cannot "
                        f"be pickled: {cause}")
    return f"{type(exc).__name__}: {exc}"
