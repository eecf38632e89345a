"""What runs in the Dask workers for `cluster.DaskExecutor`: a step's task reads its inputs
where they are, runs the step, writes its outputs to the store, tells the kernel (through
Dask's event stream) that it started and what it made, and keeps the whole result."""

from __future__ import annotations

import time
from dataclasses import replace

from ..steps import KINDS
from . import capture
from .protect import protect
from .task import TaskResult, merged, run_task

TOPIC = "jupyter-pipelines"


def _tell(token: str, what: str, **fields) -> None:
    from distributed import get_worker

    worker = get_worker()
    worker.log_event(TOPIC, {"token": token, "what": what, "worker": worker.address,
                             "time": time.time(), **fields})


def _namespace(base, inputs: dict, store: str | None):
    """The step's namespace on the worker; a failed upstream result gives None (not run)."""
    ns = dict(base.ns)
    for name, source in inputs.items():
        if source[0] == "remote":
            made = source[1]
            if made.status != "Succeeded":
                return None
            value = made.outputs[source[2]]
        elif source[0] == "stored":
            value = _store(store).get(source[1], output=name)
        else:
            value = source[1].value  # (`cluster._Held`)
        if name.startswith("__refs__:"):  # a step a transform names (its model)
            ns.setdefault("__refs__", {})[name[len("__refs__:"):]] = value
        else:
            ns[name] = protect(value)
    return ns


def _token() -> str:
    """The step's token: the key of the task running (a part's is the token, ``-part<i>``)."""
    from distributed import get_worker

    return str(get_worker().get_current_task())


def run_step(step, base, inputs, ctx, store):
    token = _token()
    ns = _namespace(base, inputs, store)
    if ns is None:
        result = TaskResult("NotRun", failure_reason="an upstream step failed")
    else:
        _tell(token, "started")
        capture.ensure_installed()
        result = _stored(step, run_task(step, ns, ctx), store)
    _tell(token, "finished", summary=_summary_bytes(result))
    return result


def run_part(step, base, inputs, ctx, part, parts):
    if part == 0:
        _tell(_token().rsplit("-part", 1)[0], "started")
    ns = _namespace(base, inputs, None)
    if ns is None:
        return TaskResult("NotRun", failure_reason="an upstream step failed")
    capture.ensure_installed()
    pieces = KINDS[step.kind].split(step, ns)
    return run_task(step, pieces[part], ctx) if part < len(pieces) else None


def merge_parts(step, results, store):
    token = _token()
    results = [r for r in results if r is not None]
    stopped = next((r for r in results if r.status == "NotRun"), None)
    result = stopped or _stored(step, merged(KINDS[step.kind], step, results), store)
    _tell(token, "finished", summary=_summary_bytes(result))
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
