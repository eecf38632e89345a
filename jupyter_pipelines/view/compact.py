"""The compact view a ``%%step`` cell shows: one line per step the cell ran (the step itself
and any upstream it needed), with status, duration, outputs and a condition's outcome,
updated in place while it runs."""

from __future__ import annotations

import time
from html import escape

from ..execution import Execution, StepRecord, outcome_text
from .dot import COLOURS


def _detail(record: StepRecord) -> str:
    detail = outcome_text(record)
    if record.status in ("Succeeded", "Cached") and record.outputs and not detail:
        detail = "outputs: " + ", ".join(f"{k} ({_type(v)})" for k, v in record.outputs.items())
    return detail


def _type(value) -> str:
    if type(value).__name__ == "ArtifactRef":  # a stored output, not loaded yet
        return value.type.rsplit(".", 1)[-1]
    return type(value).__name__


class CompactRun:
    def __init__(self, target: str):
        self.target = target
        self.execution: Execution | None = None
        self._handle = None
        self._last = 0.0

    def show(self) -> None:
        from IPython.display import display

        self._handle = display(self, display_id=True)

    def __call__(self, event: str, *, execution: Execution, **future) -> None:
        self.execution = execution
        now = time.monotonic()
        if self._handle is not None and (event == "execution_finished" or now - self._last > 0.1):
            self._last = now
            self._handle.update(self)

    def _records(self) -> list[StepRecord]:
        """The steps this cell ran (reused upstream results are summed up in one line)."""
        if self.execution is None:
            return []
        return [r for r in self.execution.steps.values()
                if r.name == self.target or r.status not in ("Pending", "Cached")]

    def _reused(self) -> str:
        names = [r.name for r in self.execution.steps.values()
                 if r.status == "Cached" and r.name != self.target] if self.execution else []
        return f"reused upstream results: {', '.join(names)}" if names else ""

    def __repr__(self) -> str:
        lines = [self._reused()] if self._reused() else []
        for r in self._records():
            took = f" in {r.duration:.2f}s" if r.duration is not None and r.status != "Cached" else ""
            detail = _detail(r)
            lines.append(f"{r.name} · {r.kind} · {r.status}{took}" + (f" · {detail}" if detail else ""))
        return "\n".join(lines) or f"{self.target} · Pending"

    def _repr_html_(self) -> str:
        rows = []
        for r in self._records():
            took = f"{r.duration:.2f}s" if r.duration is not None and r.status != "Cached" else ""
            weight = "600" if r.name == self.target else "400"
            rows.append(
                f'<tr data-step="{escape(r.name)}" data-status="{r.status}">'
                f'<td style="font-weight:{weight}">{escape(r.name)}</td>'
                f'<td style="color:#6b7280">{escape(r.kind)}</td>'
                f'<td><span style="background:{COLOURS.get(r.status, "#fff")};border-radius:8px;'
                f'padding:0 6px">{r.status}</span></td><td>{took}</td>'
                f"<td>{escape(_detail(r))}</td></tr>")
        reused = self._reused()
        note = f'<div style="color:#6b7280;font-size:11px">↺ {escape(reused)}</div>' if reused else ""
        return (note + '<table class="jp-pipeline-compact" style="font-size:12px;border-collapse:collapse">'
                + "".join(rows) + "</table>")
