"""One step's run as a task: the same plain callable on every executor, and its result."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import ExecutionFailed, PipelineError, StepFailed
from ..steps import KINDS, Step, StepOutcome
from ..steps.base import exit_message, user_traceback
from . import capture


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
    refs: dict[str, Any] = field(default_factory=dict)  # outputs a worker stored itself
    worker: str | None = None  # the Dask worker that ran the step

    def unportable(self, exc: Exception) -> TaskResult:
        """This result could not be sent back from a worker process: the failure naming the
        output that cannot cross (called by `executors.ProcessExecutor`'s workers)."""
        import cloudpickle

        for name, value in self.outputs.items():
            try:
                cloudpickle.dumps(value)
            except Exception as error:
                kind = f"{type(value).__module__}.{type(value).__qualname__}"
                return TaskResult(
                    "Failed", failure_reason=(
                        f"Output `{name}` ({kind}) cannot be sent back from the worker process "
                        f"that ran the step ({type(error).__name__}: {error}). Run this pipeline "
                        f"with --executor threads or in-kernel, or make `{name}` a value that "
                        f"can be pickled (or keep it private as `_{name}`)."),
                    stdout=self.stdout, stderr=self.stderr, start=self.start, end=self.end)
        return TaskResult("Failed", failure_reason=f"The step's result cannot be sent back from "
                          f"the worker process: {type(exc).__name__}: {exc}",
                          start=self.start, end=self.end)


def run_task(step: Step, ns: dict, ctx) -> TaskResult:
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
    except SystemExit as exc:  # from user code a kind calls (e.g. a model's predict function)
        result = TaskResult("Failed", failure_reason=exit_message(step.name, exc),
                            traceback=user_traceback(exc, step.filename))
    finally:
        capture.end(previous)
    result.stdout, result.stderr = out.getvalue(), err.getvalue()
    result.start, result.end = start, time.time()
    return result


def merged(kind, step: Step, results: list[TaskResult]) -> TaskResult:
    """The parts' results as one: the first failure (naming its part), else the merged outputs."""
    start, end = min(r.start for r in results), max(r.end for r in results)
    stdout, stderr = "".join(r.stdout for r in results), "".join(r.stderr for r in results)
    for number, result in enumerate(results, start=1):
        if result.status == "Failed":
            result.failure_reason = f"(part {number} of {len(results)}) {result.failure_reason}"
            result.start, result.end, result.stdout, result.stderr = start, end, stdout, stderr
            return result
    merged = kind.merge(step, [StepOutcome(r.outputs, r.metadata) for r in results])
    return TaskResult("Succeeded", merged.outputs, merged.metadata, stdout=stdout, stderr=stderr,
                      start=start, end=end)
