"""What runs in the Dask workers for `cluster.DaskExecutor`: a step's task reads its inputs
where they are, runs the step, writes its outputs to the store, tells the kernel (through
Dask's event stream) that it started and what it made, and keeps the whole result."""

from __future__ import annotations

import sys
import time
from dataclasses import replace

from ..steps import KINDS
from . import capture
from .protect import protect
from .task import TaskResult, merged, run_task

TOPIC = "jupyter-pipelines"


try:  # (registered where the results are: this module is imported by each worker's tasks)
    from dask.sizeof import sizeof as _sizeof

    @_sizeof.register(TaskResult)
    def _sizeof_result(result: TaskResult) -> int:
        """The bytes a step's result holds on a worker: its outputs. What Dask counts to spill
        to disk and to balance workers; without it a result counted as the few bytes of its
        object."""
        return sys.getsizeof(result) + sum(_sizeof(v) for v in (result.outputs or {}).values())
except ImportError:  # pragma: no cover - without Dask nothing runs on a cluster
    pass


def _tell(token: str, what: str, **fields) -> None:
    from distributed import get_worker

    worker = get_worker()
    worker.log_event(TOPIC, {"token": token, "what": what, "worker": worker.address,
                             "time": time.time(), **fields})


def _namespace(base, sources: dict, made: tuple, store: str | None):
    """The step's namespace on the worker (``sources``: see `cluster_send`; ``made``: the
    upstream results they name); a failed upstream result gives None (not run)."""
    ns = dict(base.ns)
    for name, source in sources.items():
        if source[0] == "made":
            result = made[source[1]]
            if result.status != "Succeeded":
                return None
            value = result.outputs[source[2]]
        elif source[0] == "stored":
            value = _store(store).get(source[1], output=name)
        else:
            value = source[1].value  # (`cluster_send.Held`)
        if name.startswith("__refs__:"):  # a step a transform names (its model)
            ns.setdefault("__refs__", {})[name[len("__refs__:"):]] = value
        else:
            ns[name] = protect(value)
    return ns


def run_step(task, base, *made):
    """A step's task (``task``: its `cluster_send.Payload`); ``made``: the upstream results."""
    step, store = task.step, task.store
    ns = _namespace(base, task.sources, made, store)
    if ns is None:
        result = TaskResult("NotRun", failure_reason="an upstream step failed")
    else:
        _tell(task.key, "started")
        capture.ensure_installed()
        result = _stored(step, run_task(step, ns, task.ctx), store)
    _tell(task.key, "finished", summary=_summary_bytes(result))
    return result


def run_part(task, base, *made):
    """One part of a transform spread over the workers."""
    if task.part == 0:
        _tell(task.key.rsplit("-part", 1)[0], "started")
    ns = _namespace(base, task.sources, made, None)
    if ns is None:
        return TaskResult("NotRun", failure_reason="an upstream step failed")
    capture.ensure_installed()
    pieces = KINDS[task.step.kind].split(task.step, ns)
    return run_task(task.step, pieces[task.part], task.ctx) if task.part < len(pieces) else None


def merge_parts(task, *results):
    step = task.step
    results = [r for r in results if r is not None]
    stopped = next((r for r in results if r.status == "NotRun"), None)
    result = stopped or _stored(step, merged(KINDS[step.kind], step, results), task.store)
    _tell(task.key, "finished", summary=_summary_bytes(result))
    return result


def _stored(step, result, store: str | None):
    """Write a successful result's outputs to the store (from the worker)."""
    if result.status != "Succeeded" or store is None:
        return result
    from ..errors import PipelineError as Error

    try:
        put = _store(store).put  # worded as the kernel's `Recorder.store` words its errors
        result.refs = {name: put(value, name=name, step=step.name) for name, value in result.outputs.items()}
    except Error as exc:
        result.status, result.failure_reason = "Failed", str(exc)
    return result


_STORES: dict = {}


def _store(location: str):
    from ..store.artifacts import ArtifactStore

    store = _STORES.get(location)
    if store is None:
        store = _STORES[location] = ArtifactStore(location)
    return store


def _summary_bytes(result) -> bytes:
    import cloudpickle

    return cloudpickle.dumps(summary_of(result))


def summary_of(result):
    """The result without its values: each output's preview instead (for the details panel)."""
    from distributed import get_worker

    from ..view.preview import preview

    return replace(result, outputs={name: preview(value) for name, value in result.outputs.items()},
                   worker=get_worker().address)


def output(result, name: str):
    return result.outputs[name]


def quiet() -> None:
    """Before a cluster of ours closes: nothing more to log of its closing."""
    import logging

    for name in ("distributed", "tornado.application"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
