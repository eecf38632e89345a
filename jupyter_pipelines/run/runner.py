"""The one run loop: take ready steps from the scheduler, submit them to the executor, record
what comes back. It knows nothing of notebooks or widgets: it emits events on the execution
(``step_started``, ``step_finished``, ``execution_finished``) and views listen."""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass, field
from typing import Any

from ..errors import ExecutionFailed, PipelineError, StepFailed
from ..execution import Execution, StepRecord
from ..graph import Graph
from ..steps import KINDS, RunContext, Step
from ..steps.base import user_traceback
from . import capture, scheduler
from .protect import protect


@dataclass
class TaskResult:
    status: str  # Succeeded | Failed
    outputs: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    failure_reason: str | None = None
    traceback: str | None = None
    fails_execution: bool = False
    stdout: str = ""
    stderr: str = ""
    start: float = 0.0
    end: float = 0.0


def run_task(step: Step, ns: dict, ctx: RunContext) -> TaskResult:
    """Run one step: a plain callable, the same on every executor."""
    start = time.time()
    out, err, previous = capture.begin()
    try:
        outcome = KINDS[step.kind].run(step, ns, ctx)
        result = TaskResult("Succeeded", outcome.outputs, outcome.metadata)
    except ExecutionFailed as exc:
        result = TaskResult("Failed", failure_reason=str(exc), fails_execution=True)
    except StepFailed as exc:
        result = TaskResult("Failed", failure_reason=str(exc), traceback=exc.user_traceback)
    except PipelineError as exc:
        result = TaskResult("Failed", failure_reason=str(exc))
    except Exception as exc:  # a kind's own code hit the user's value: still the step's failure
        result = TaskResult("Failed", failure_reason=f"Step `{step.name}` failed: "
                            f"{type(exc).__name__}: {exc}", traceback=user_traceback(exc, step.filename))
    finally:
        capture.end(previous)
    result.stdout, result.stderr = out.getvalue(), err.getvalue()
    result.start, result.end = start, time.time()
    return result


def run(execution: Execution, graph: Graph, names: list[str], executor: Executor,
        base: dict, ctx: RunContext, reused: dict[str, StepRecord] | None = None,
        echo: bool = False) -> Execution:
    """Run ``names`` (a set of steps closed under their upstream) of ``graph``.

    ``base`` is the namespace every step starts from (the notebook's context plus the
    parameters); ``reused`` are records of steps whose earlier results stand (Cached).
    """
    wanted = set(names)
    plan = scheduler.Plan(
        upstream={n: tuple(u for u in graph.upstream[n] if u in wanted) for n in names},
        downstream={n: tuple(d for d in graph.downstream[n] if d in wanted) for n in names},
        inputs={n: graph.inputs[n] for n in names},
    )
    outputs: dict[str, dict[str, Any]] = {}
    for name, record in (reused or {}).items():
        execution.steps[name] = record
        outputs[name] = record.outputs
    execution.start_time = time.time()
    execution.emit("execution_started")
    doomed = [s for n, r in (reused or {}).items() for s in _branch_not_taken(graph.steps[n], r.metadata)]
    state = scheduler.initial(plan, {n: "Cached" for n in (reused or {})}, doomed)
    _settled(execution, state, [n for n in names if state.finished.get(n) in ("Skipped", "NotRun")])
    futures: dict[Future, str] = {}

    def collect(future: Future) -> None:
        name = futures.pop(future)
        record = execution.steps[name]
        try:
            result = future.result()
        except Exception as exc:  # an executor failure, not the user's code
            result = TaskResult("Failed", failure_reason=f"Step `{name}` could not be run: {exc!r}",
                                start=record.start or time.time(), end=time.time())
        record.status, record.start, record.end = result.status, result.start, result.end
        record.failure_reason, record.traceback = result.failure_reason, result.traceback
        record.metadata, record.stdout, record.stderr = result.metadata, result.stdout, result.stderr
        record.outputs = outputs[name] = result.outputs
        if result.status == "Failed" and execution.failure_reason is None:
            execution.failure_reason = result.failure_reason
        execution.emit("step_finished", step=name, record=record)
        doom = _branch_not_taken(graph.steps[name], result.metadata)
        _settled(execution, state, scheduler.finish(plan, state, name, result.status, doom))

    try:
        with capture.installed(echo):
            while not state.done:
                while state.ready:
                    name = scheduler.take(state)
                    step = graph.steps[name]
                    record = execution.steps[name]
                    record.status, record.start, record.attempts = "Executing", time.time(), 1
                    execution.emit("step_started", step=name, record=record)
                    future = executor.submit(run_task, step, _namespace(graph, step, base, outputs), ctx)
                    futures[future] = name
                    if future.done():
                        collect(future)
                if futures:
                    done = [f for f in futures if f.done()] or wait(futures, return_when=FIRST_COMPLETED).done
                    for future in done:
                        collect(future)
    except KeyboardInterrupt:
        now = time.time()
        for name in scheduler.stop(state):
            record = execution.steps[name]
            record.status, record.end = "Stopped", now
            record.failure_reason = "Stopped by an interrupt."
            execution.emit("step_finished", step=name, record=record)
        for future in futures:
            future.cancel()
        _settled(execution, state, [n for n, s in state.finished.items() if s == "NotRun"])
        execution.failure_reason = "Stopped by an interrupt (Kernel > Interrupt or Ctrl-C)."
        execution._finish("Stopped", now)
        return execution
    failed = any(s == "Failed" for s in state.finished.values())
    execution._finish("Failed" if failed else "Succeeded", time.time())
    return execution


def _namespace(graph: Graph, step: Step, base: dict, outputs: dict[str, dict[str, Any]]) -> dict:
    ns = dict(base)
    for name, makers in graph.inputs[step.name].items():
        for maker in makers:
            made = outputs.get(maker)
            if made is not None and name in made:
                ns[name] = protect(made[name])
                break
    if step.step_refs:
        ns["__refs__"] = {r: next(iter(outputs[r].values())) for r in step.step_refs}
    return ns


def _branch_not_taken(step: Step, metadata: dict) -> tuple[str, ...]:
    cond = metadata.get("Condition")
    if cond is None:
        return ()
    if_steps, else_steps = step.branches
    return else_steps if cond["Outcome"] == "True" else if_steps


def _settled(execution: Execution, state: scheduler.State, names: list[str]) -> None:
    for name in names:
        record = execution.steps[name]
        record.status = state.finished[name]
        if record.status == "Skipped":
            execution.emit("step_finished", step=name, record=record)
