"""The details panel's content for one step of an execution."""

from __future__ import annotations

from datetime import datetime, timezone

from ..execution import Execution, Remote, condition_text
from ..steps.external import kind_label
from .preview import preview


def _time(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%H:%M:%S.%f")[:-3] + " UTC" if ts else ""


def _preview(record, name: str) -> dict:
    """An output's preview; one kept on a Dask worker was previewed there (not fetched)."""
    value = record.outputs[name]
    return dict(value.preview) if isinstance(value, Remote) else preview(record.value(name))


def step_details(execution: Execution | None, graph, name: str) -> dict:
    step = graph.steps.get(name)
    if step is None:
        return {}
    info: dict = {"step": name, "kind": kind_label(step), "status": "Pending", "code": step.code}
    if execution is None or name not in execution.steps:
        return info
    record = execution.steps[name]
    info.update({
        "status": record.status, "start": _time(record.start), "end": _time(record.end),
        "duration": f"{record.duration:.3f}s" if record.duration is not None else "",
        "failure": record.failure_reason or "", "traceback": record.traceback or "",
        "stdout": record.stdout, "stderr": record.stderr,
        "reused_from": record.reused_from or "", "worker": record.worker or "",
    })
    inputs = []
    for input_name, makers in graph.inputs.get(name, {}).items():
        for maker in makers:
            made = execution.steps.get(maker)
            if made is not None and input_name in made.outputs:
                inputs.append({"name": input_name, "from": maker, **_preview(made, input_name)})
                break
    for param in graph.params.get(name, ()):
        inputs.append({"name": param, "from": "parameter", **preview(execution.parameters[param])})
    info["inputs"] = inputs
    info["outputs"] = [{"name": k, **_preview(record, k)} for k in record.outputs]
    meta = record.metadata
    if "Condition" in meta:
        info["condition"] = {"text": condition_text(meta["Condition"]),
                             "outcome": meta["Condition"]["Outcome"],
                             "comparisons": meta["Condition"]["Comparisons"]}
    if "RegisterModel" in meta:
        info["register_model"] = meta["RegisterModel"]
    if "Transform" in meta:
        info["transform"] = meta["Transform"]
    return info
