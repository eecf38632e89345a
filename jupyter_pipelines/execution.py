"""An execution: one run of a pipeline, its step records, and SageMaker-shaped views of them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MethodType
from typing import Any

from .errors import PipelineError, did_you_mean


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds") if ts else None


class Remote:
    """An output kept where it was computed (a Dask worker); `fetch` brings its value over.
    ``preview`` is its details-panel preview, made where the value is."""

    preview: dict

    def fetch(self) -> Any:
        raise NotImplementedError

    def handle(self) -> tuple:
        """What a step running on the same cluster is given for it."""
        raise NotImplementedError


class Released(Remote):
    """An output a Dask cluster kept until a newer execution of its pipeline ran, and which
    was not stored: its value is gone (`Execution.let_go`). Its preview stays."""

    def __init__(self, step: str, name: str, execution_id: str, preview: dict):
        self.step, self.name, self.execution_id, self.preview = step, name, execution_id, preview

    def fetch(self) -> Any:
        raise PipelineError(
            f"Output `{self.name}` of step `{self.step}` in execution {self.execution_id} is no "
            "longer on the Dask cluster: a pipeline keeps only its latest execution's outputs on "
            "the workers, and this one was not stored (persist=False). Run the pipeline again to "
            "compute it, or keep outputs stored (persist=True, the default) to read older "
            "executions' outputs from the store.")

    handle = fetch

    def __repr__(self) -> str:
        return f"<{self.preview.get('type', 'value')} `{self.name}`, let go from the Dask cluster>"


@dataclass
class StepRecord:
    name: str
    kind: str
    status: str = "Pending"  # Pending, Executing, then a final status
    start: float | None = None
    end: float | None = None
    failure_reason: str | None = None
    traceback: str | None = None
    metadata: dict = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    reused_from: str | None = None  # execution id whose results a Cached step reused
    attempts: int = 0
    refs: dict[str, Any] = field(default_factory=dict)       # output -> stored ArtifactRef
    cache_key: str | None = None
    key_parts: dict[str, str] | None = None
    why: str | None = None         # why the step ran instead of reusing a stored result
    loader: Any = field(default=None, repr=False, compare=False)  # ArtifactRef -> value
    worker: str | None = None      # the Dask worker that ran it

    @property
    def duration(self) -> float | None:
        return self.end - self.start if self.start and self.end else None

    @property
    def digests(self) -> dict[str, str]:
        return {name: ref.digest for name, ref in self.refs.items()}

    def value(self, name: str) -> Any:
        """An output's value, loaded from the artifact store the first time it is needed."""
        value = self.outputs[name]
        if isinstance(value, Remote):
            return value.fetch()
        if self.loader is not None and type(value).__name__ == "ArtifactRef":
            value = self.outputs[name] = self.loader(value)
        return value

    def as_sagemaker(self) -> dict:
        item: dict[str, Any] = {"StepName": self.name, "StepStatus": self.status,
                                "StepType": self.kind, "StartTime": _iso(self.start),
                                "EndTime": _iso(self.end), "AttemptCount": self.attempts}
        if self.failure_reason:
            item["FailureReason"] = self.failure_reason
        meta = dict(self.metadata)
        if self.reused_from:
            meta["Cached"] = {"SourcePipelineExecutionArn": self.reused_from}
        if self.why:
            meta["Why"] = self.why
        if meta:
            item["Metadata"] = meta
        return item


Listener = Callable[..., None]


class Execution:
    """One run. ``list_steps()``/``describe()`` follow SageMaker's shapes; ``result(step,
    name)`` returns an output value."""

    def __init__(self, execution_id: str, pipeline_name: str, parameters: dict[str, Any],
                 steps: dict[str, str], listeners: list[Listener] | None = None):
        self.id = execution_id
        self.pipeline_name = pipeline_name
        self.parameters = dict(parameters)
        self.status = "Executing"
        self.start_time: float | None = None
        self.end_time: float | None = None
        self.failure_reason: str | None = None
        self.steps: dict[str, StepRecord] = {n: StepRecord(n, k) for n, k in steps.items()}
        self.listeners: list[Listener] = list(listeners or [])
        self._done = threading.Event()
        self.graph = None           # the DAG it ran (set by the pipeline), for views
        self.parameter_defs: dict = {}
        self.shown_live = False     # a live widget of it is on screen already
        self.dashboard: str | None = None  # the Dask dashboard of the cluster it ran on
        self.keeps_data = False  # ran on an executor that keeps outputs where they were made
        self._version_id: int | None = None
        self.committed: Callable[[], None] | None = None  # waits for its end's commit

    def let_go(self, loader: Callable[[str, dict], Callable] | None) -> None:
        """Let go of the outputs a Dask cluster keeps for this execution (a newer one of its
        pipeline ran: workers keep only the latest's). A stored output is read from the store
        from now on (``loader``: `ArtifactStore.loader`, None without a store); one not stored
        is gone (`Released`). Each record gets outputs of its own: a Cached copy of it in a
        newer execution keeps the handles it shares."""
        for record in self.steps.values():
            outputs = record.outputs
            if any(type(v) is not Released and isinstance(v, Remote) for v in outputs.values()):
                if record.loader is None and loader is not None and record.refs:
                    record.loader = loader(record.name, record.refs)
                record.outputs = {name: self._let_go(record, name, value)
                                  if isinstance(value, Remote) else value
                                  for name, value in outputs.items()}

    def _let_go(self, record: StepRecord, name: str, value: Remote) -> Any:
        if type(value) is Released:
            return value
        ref = record.refs.get(name)
        if ref is not None and record.loader is not None:
            return ref  # (`StepRecord.value` loads it from the store)
        return Released(record.name, name, self.id, value.preview)

    @property
    def version_id(self) -> int | None:
        """The id of the recorded pipeline version it ran. A new version is recorded by the
        history's thread with the execution's first commit: once the execution ended, asking
        waits for its end's commit (`committed`), which records it if no commit did."""
        if self._version_id is None and self.committed is not None and self._done.is_set():
            self.committed()
        return self._version_id

    @version_id.setter
    def version_id(self, value: int | None) -> None:
        self._version_id = value

    # -- events: keyword-only, with room for more fields ---------------------------------
    def emit(self, event: str, **fields: Any) -> None:
        """Call each listener with the event; one with an ``events`` attribute (a set of event
        names) only for those (the history's recorder takes no ``step_started``: a call it
        would ignore cost a step 1 µs). A bound method is called for every event (looking an
        attribute up on one costs more when it is missing)."""
        for listener in self.listeners:
            events = None if type(listener) is MethodType else getattr(listener, "events", None)
            if events is None or event in events:
                listener(event, execution=self, **fields)

    def _finish(self, status: str, end: float) -> None:
        self.status, self.end_time = status, end
        self._done.set()
        self.emit("execution_finished")

    # -- SageMaker-shaped API -----------------------------------------------------------
    def wait(self, timeout: float | None = None) -> Execution:
        if not self._done.wait(timeout):
            raise TimeoutError(f"Execution {self.id} is still running after {timeout} s.")
        return self

    def describe(self) -> dict:
        out = {"PipelineExecutionArn": self.id, "PipelineName": self.pipeline_name,
               "PipelineExecutionStatus": self.status, "CreationTime": _iso(self.start_time),
               "LastModifiedTime": _iso(self.end_time or self.start_time),
               "PipelineParameters": [{"Name": k, "Value": str(v)} for k, v in self.parameters.items()]}
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        if self.version_id is not None:
            out["PipelineVersionId"] = self.version_id
        return out

    def list_steps(self) -> list[dict]:
        """Steps that started or were skipped, newest first as SageMaker lists them."""
        shown = [r for r in self.steps.values() if r.status not in ("Pending", "NotRun")]
        shown.sort(key=lambda r: (r.start or 0, list(self.steps).index(r.name)), reverse=True)
        return [r.as_sagemaker() for r in shown]

    def result(self, step: str, name: str | None = None) -> Any:
        if step not in self.steps:
            raise PipelineError(
                f"Execution {self.id} has no step `{step}`.{did_you_mean(step, self.steps)}"
            )
        record = self.steps[step]
        if name is None and len(record.outputs) == 1:
            name = next(iter(record.outputs))
        if name not in record.outputs:
            if record.status not in ("Succeeded", "Cached"):
                raise PipelineError(
                    f"Step `{step}` has no outputs in execution {self.id}: it is {record.status}"
                    + (f" ({record.failure_reason})" if record.failure_reason else "") + "."
                )
            raise PipelineError(
                f"Step `{step}` has no output `{name}`.{did_you_mean(str(name), record.outputs)} "
                f"Its outputs are: {', '.join(record.outputs) or 'none'}."
            )
        return record.value(name)

    # -- display --------------------------------------------------------------------------
    def summary_rows(self) -> list[tuple[str, str, str, str, str]]:
        rows = []
        for r in self.steps.values():
            duration = f"{r.duration:.2f}s" if r.duration is not None else ""
            rows.append((r.name, r.kind, r.status, duration, outcome_text(r)))
        return rows

    def __repr__(self) -> str:
        lines = [f"Execution {self.status}" + (f": {self.failure_reason}" if self.failure_reason else "")]
        width = max((len(n) for n in self.steps), default=4)
        for name, kind, status, _, outcome in self.summary_rows():
            lines.append(f"  {name:<{width}}  {kind:<14}  {status:<9}  {outcome}".rstrip())
        return "\n".join(lines)

    def _ipython_display_(self) -> None:
        """Display as the DAG widget; not twice in the cell that showed it live."""
        from IPython.display import display

        if self.shown_live:
            self.shown_live = False
            return
        if self.graph is None:
            display({"text/plain": repr(self), "text/html": self._repr_html_()}, raw=True)
            return
        from .view import live_view

        view = live_view(execution=self)
        if not self._done.is_set():
            self.listeners.append(view)
        display(view)

    def _repr_html_(self) -> str:
        from html import escape

        head = f"<b>Execution {escape(self.id)}</b>: {escape(self.status)}"
        if self.failure_reason:
            head += f" — {escape(self.failure_reason)}"
        cells = "".join(
            "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
            for row in self.summary_rows()
        )
        return (f"<div>{head}<table><tr><th>step</th><th>kind</th><th>status</th>"
                f"<th>duration</th><th>outcome</th></tr>{cells}</table></div>")


def outcome_text(record: StepRecord) -> str:
    cond = record.metadata.get("Condition")
    if cond:
        return condition_text(cond)
    reg = record.metadata.get("RegisterModel")
    if reg:
        return f"{reg['Group']} v{reg['Version']} ({reg['ModelApprovalStatus']})"
    if record.status == "Failed" and record.failure_reason:
        return record.failure_reason.splitlines()[0][:100]
    return ""


def condition_text(cond: dict) -> str:
    """``mse 4.824 <= mse_threshold 6.0 → True``: each comparison with its operand values."""
    parts = [f"{_side(c['LeftName'], c['LeftValue'])} {c['Operator']} "
             f"{_side(c['RightName'], c['RightValue'])}" for c in cond["Comparisons"]]
    return "; ".join(parts) + f" → {cond['Outcome']}"


def _side(expression: str, value: Any) -> str:
    shown = f"{value:.4g}" if isinstance(value, float) and not value.is_integer() else repr(value)
    return shown if expression in (repr(value), shown, str(value)) else f"{expression} {shown}"


def execution_summary(doc: dict) -> dict:
    out = {"PipelineExecutionArn": doc["id"], "PipelineVersionId": doc["version_id"],
           "PipelineExecutionStatus": doc["status"],
           "StartTime": _iso(doc["start"]), "EndTime": _iso(doc["end"]),
           "PipelineParameters": [{"Name": k, "Value": str(v)} for k, v in doc["parameters"].items()]}
    if doc["failure_reason"]:
        out["FailureReason"] = doc["failure_reason"]
    if doc.get("retry_of"):
        out["RetryOf"] = doc["retry_of"]
    return out
