"""What the views show of an execution, as plain JSON-able dicts (the widget's synced state)."""

from __future__ import annotations

import time

from ..execution import Execution, StepRecord, condition_text


def step_state(record: StepRecord | None) -> dict:
    if record is None:
        return {"status": "Pending", "label": "Pending"}
    status = record.status
    label = "Not run" if status == "NotRun" else status
    if record.duration is not None and status != "Cached":  # a reused result took no time
        label += f" · {record.duration:.2f}s"
    state = {"status": status, "label": label}
    cond = record.metadata.get("Condition")
    if cond:
        state["outcome"] = cond["Outcome"]
        state["outcome_text"] = condition_text(cond)
    if record.failure_reason:
        state["failure"] = record.failure_reason
    if record.reused_from:
        state["reused_from"] = record.reused_from
    return state


def header_state(execution: Execution | None, total: int) -> dict:
    if execution is None:
        return {"status": "", "total": total, "done": 0}
    done = sum(r.status not in ("Pending", "Executing") for r in execution.steps.values())
    end = execution.end_time or time.time()
    return {
        "id": execution.id, "status": execution.status, "total": total, "done": done,
        "start": execution.start_time, "elapsed": round(end - execution.start_time, 2)
        if execution.start_time else 0.0,
        "parameters": {k: repr(v) for k, v in execution.parameters.items()},
        "failure": execution.failure_reason or "",
        "dashboard": getattr(execution, "dashboard", None) or "",
    }
