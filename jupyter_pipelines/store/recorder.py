"""The store side of a run: keeps every result and every record, and supplies stored results.

A `Recorder` is both a listener of the execution (it writes the history as the run goes, so
a crash loses nothing already finished) and the run loop's cache: before a step runs it
computes the step's cache key and, on a hit, hands back the stored result; after a step
succeeds it saves the outputs as artifacts. It also says why a step did not hit.
"""

from __future__ import annotations

import time
from typing import Any

from ..execution import Execution, StepRecord
from ..graph import Graph
from ..source import Context
from ..steps import Step
from .artifacts import ArtifactRef, ArtifactStore
from .history import History
from .keys import cache_key, changed_parts, explain, key_parts, parameters_read


class Recorder:
    def __init__(self, pipeline: str, history: History, artifacts: ArtifactStore, graph: Graph,
                 context: Context, values: dict[str, Any], version_id: int,
                 retry_of: str | None = None, force: frozenset[str] = frozenset()):
        self.pipeline, self.history, self.artifacts = pipeline, history, artifacts
        self.graph, self.context, self.values = graph, context, values
        self.version_id, self.retry_of, self.force = version_id, retry_of, force
        self._cached: list[dict] = []  # Cached step rows waiting for the next write

    # -- the cache ---------------------------------------------------------------------------
    def key(self, step: Step, records: dict[str, StepRecord]) -> tuple[str, dict] | None:
        """The step's cache key and its parts, or None if an input has no stored digest."""
        digests = {}
        for name, makers in self.graph.inputs[step.name].items():
            made = next((records[m] for m in makers if m in records and name in records[m].refs), None)
            if made is None:
                return None
            digests[name] = made.refs[name].digest
        params = {p: self.values[p] for p in parameters_read(step, self.context, self.values)}
        parts = key_parts(step, params, digests, self.context)
        return cache_key(parts), parts

    def lookup(self, step: Step, record: StepRecord, execution: Execution) -> StepRecord | None:
        keyed = self.key(step, execution.steps)
        if keyed is None:
            record.why = "an input was not stored, so no stored result can match"
            return None
        record.cache_key, record.key_parts = keyed
        if step.name in self.force:
            record.why = "the run asked for it (--from/--to/--only, or --no-cache)"
            return None
        if not step.cache:
            from ..steps import KINDS

            record.why = ("caching is off for this step (--no-cache)" if KINDS[step.kind].cacheable
                          else f"a {step.kind} step always runs")
            return None
        not_before = time.time() - step.cache_expire if step.cache_expire is not None else None
        run = self.history.cached_run(record.cache_key, not_before)
        if run is None:
            record.why = self.why(step.name, record.key_parts, step.cache_expire)
            return None
        hit = stored_record(run, self.artifacts, status="Cached",
                            reused_from=run["cache_source"] or run["execution_id"])
        damaged = damaged_output(hit, self.artifacts)
        if damaged:
            record.why = f"{damaged}, so it ran again to store it afresh"
            return None
        return hit

    def why(self, step: str, parts: dict[str, str], expire: float | None) -> str:
        previous = self.history.latest_run(step, self.pipeline)
        if previous is None:
            return "it had not run before"
        changed = changed_parts(previous["key_parts"], parts)
        if changed:
            return explain(changed) + " changed since its last run"
        if previous["status"] not in ("Succeeded", "Cached"):
            return f"its last run {previous['status'].lower()}"
        if expire is not None:
            return "its stored result expired (--cache-expire)"
        return "no stored result matched"

    def store(self, step: Step, record: StepRecord) -> None:
        record.refs = {name: self.artifacts.put(value, name=name, what=f"Step `{step.name}` output "
                                                f"`{name}` ({type(value).__name__})")
                       for name, value in record.outputs.items()}

    # -- the listener: the history as it happens --------------------------------------------
    def __call__(self, event: str, *, execution: Execution, record: StepRecord | None = None,
                 **future: Any) -> None:
        """Every step run is written as it starts and as it ends (a kill leaves a trace), except
        Cached ones: they computed nothing a kill could lose, so they wait for the next write
        and share its transaction (a fully cached run is one transaction, not one a step)."""
        if event == "execution_started":
            execution.version_id = self.version_id
            self.history.start_execution(execution.id, self.pipeline, self.version_id,
                                         execution.parameters, execution.start_time, self.retry_of)
            self._cached = [run_row(r, self.artifacts) for r in execution.steps.values()
                            if r.status == "Cached"]
        elif event in ("step_started", "step_finished") and record is not None:
            row = run_row(record, self.artifacts)
            if record.status == "Cached":
                self._cached.append(row)
                return
            self._write(execution, [row])
        elif event == "execution_finished":
            self._write(execution, [], finish=(execution.status, execution.end_time,
                                               execution.failure_reason))

    def _write(self, execution: Execution, rows: list[dict], finish: tuple | None = None) -> None:
        waiting, self._cached = self._cached, []
        self.history.record_steps(execution.id, waiting + rows, finish)


def damaged_output(record: StepRecord, artifacts: ArtifactStore) -> str | None:
    """Why a stored step run cannot be reused (an output missing or corrupt), or None."""
    for name, ref in record.refs.items():
        problem = artifacts.check(ref)
        if problem:
            return f"stored output `{name}` of step {record.name} is {problem} ({artifacts.path(ref)})"
    return None


def stored_record(run: dict, artifacts: ArtifactStore, *, status: str,
                  reused_from: str | None) -> StepRecord:
    """A record standing for a stored step run: its outputs load from the store on first use,
    verified against their digests."""
    now = time.time()
    refs = {n: ArtifactRef.from_dict(d) for n, d in (run["outputs"] or {}).items()}
    names = {ref.digest: n for n, ref in refs.items()}
    for name, ref in refs.items():
        artifacts.vouch(ref, run["outputs"][name].get("seen"))

    def load(ref: ArtifactRef):
        return artifacts.get(ref, step=run["step"], output=names.get(ref.digest))

    return StepRecord(run["step"], run["kind"], status=status, start=now, end=now,
                      metadata=run["metadata"] or {}, stdout=run["stdout"] or "",
                      stderr=run["stderr"] or "", outputs=dict(refs), refs=refs,
                      reused_from=reused_from, cache_key=run["cache_key"],
                      key_parts=run["key_parts"], loader=load)


def run_row(record: StepRecord, artifacts: ArtifactStore) -> dict:
    return {
        "step": record.name, "kind": record.kind, "status": record.status, "start": record.start,
        "end": record.end, "attempts": record.attempts, "cache_key": record.cache_key,
        "key_parts": record.key_parts, "cache_source": record.reused_from,
        "outputs": ({n: {**r.as_dict(), "seen": artifacts.seen(r)} for n, r in record.refs.items()}
                    if record.status in ("Succeeded", "Cached") else None),
        "metadata": record.metadata or None, "stdout": record.stdout, "stderr": record.stderr,
        "failure_reason": record.failure_reason, "traceback": record.traceback, "why": record.why,
    }
