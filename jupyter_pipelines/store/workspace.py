"""The state folder as a whole: history, artifacts, and what to reuse for retries and partial
runs. One `Workspace` per folder and process."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from ..errors import PipelineError, did_you_mean
from ..execution import Execution, StepRecord
from ..graph import Graph
from .artifacts import ArtifactStore
from .history import History
from .recorder import Recorder, damaged_output, stored_record

TERMINAL = ("Succeeded", "Cached")


class Workspace:
    def __init__(self, home: str | os.PathLike, store: str | None = None):
        self.home = Path(home)
        self.history = History(self.home)
        self.artifacts = ArtifactStore(store or self.home / "artifacts")

    @classmethod
    def open(cls, home: str, store: str | None = None) -> Workspace:
        """The workspace of ``home`` (one per process); the store defaults to
        ``$JUPYTER_PIPELINES_STORE`` (e.g. an s3:// URL a Dask cluster's workers share), else
        the state folder's ``artifacts/``."""
        return cls._open(home, store or os.environ.get("JUPYTER_PIPELINES_STORE") or None)

    @classmethod
    @functools.lru_cache(maxsize=8)
    def _open(cls, home: str, store: str | None) -> Workspace:
        return cls(home, store)

    # -- executions from the history -----------------------------------------------------------
    def find(self, execution_id: str | None, pipeline: str | None = None,
             statuses: tuple[str, ...] | None = None) -> dict:
        """An execution's history row: by (part of) its id, else the newest (with a status)."""
        if execution_id:
            doc = self.history.execution(execution_id)
            if doc is not None and pipeline and doc["pipeline"] != pipeline:
                raise PipelineError(
                    f"Execution {doc['id']} belongs to pipeline `{doc['pipeline']}`, not `{pipeline}`."
                    " Retry or describe it from that pipeline (its notebook).")
            if doc is None:
                known = [e["id"] for e in self.history.executions(pipeline, limit=50)]
                raise PipelineError(
                    f"No execution `{execution_id}` in the history at {self.home}."
                    f"{did_you_mean(execution_id, known)} `%pipeline executions` lists them."
                )
            return doc
        for doc in self.history.executions(pipeline):
            if statuses is None or doc["status"] in statuses:
                return doc
        wanted = f" {'/'.join(statuses)}" if statuses else ""
        of = f" of `{pipeline}`" if pipeline else ""
        raise PipelineError(f"There is no{wanted} execution{of} in the history at {self.home} yet.")

    def load(self, doc: dict) -> Execution:
        """An `Execution` rebuilt from the history; outputs load from the store when read."""
        runs = self.history.step_runs(doc["id"])
        execution = Execution(doc["id"], doc["pipeline"], doc["parameters"],
                              {r["step"]: r["kind"] for r in runs})
        execution.status, execution.failure_reason = doc["status"], doc["failure_reason"]
        execution.start_time, execution.end_time = doc["start"], doc["end"]
        execution.version_id = doc["version_id"]
        for run in runs:
            record = self.record(run, status=run["status"], reused_from=run["cache_source"])
            record.start, record.end, record.attempts = run["start"], run["end"], run["attempts"]
            record.failure_reason, record.traceback, record.why = (
                run["failure_reason"], run["traceback"], run["why"])
            execution.steps[run["step"]] = record
        execution._done.set()
        version = self.version(doc["version_id"])
        if version is not None:
            from ..snapshot import from_document

            pipeline = from_document(version)
            execution.graph = pipeline.graph({})
            execution.parameter_defs = dict(pipeline.parameters)
            order = {name: i for i, name in enumerate(execution.graph.order)}  # run order
            execution.steps = dict(sorted(execution.steps.items(), key=lambda kv: order.get(kv[0], 0)))
        return execution

    def record(self, run: dict, *, status: str, reused_from: str | None) -> StepRecord:
        return stored_record(run, self.artifacts, status=status, reused_from=reused_from)

    def version(self, version_id: int | None) -> dict[str, Any] | None:
        return self.history.version(version_id)

    # -- what a retry or a partial run reuses ---------------------------------------------------
    def succeeded_steps(self, execution_id: str, graph: Graph, recorder: Recorder) -> dict[str, StepRecord]:
        """The steps of an execution that finished well and are still valid for the current
        definition (same cache key), as Cached records: what a retry reuses."""
        runs = {r["step"]: r for r in self.history.step_runs(execution_id)
                if r["status"] in TERMINAL and r["outputs"] is not None}
        reused: dict[str, StepRecord] = {}
        for name in graph.order:
            run = runs.get(name)
            if run is None:
                continue
            keyed = recorder.key(graph.steps[name], reused)
            if keyed and keyed[0] == run["cache_key"]:
                record = self.record(run, status="Cached",
                                     reused_from=run["cache_source"] or execution_id)
                if not damaged_output(record, self.artifacts):
                    reused[name] = record
        return reused

    def stored_upstream(self, recorder: Recorder, graph: Graph, names: list[str]) -> dict[str, StepRecord]:
        """Records for ``names`` (steps a partial run does not run) from their latest valid
        stored results, in dependency order; a missing one is an error naming it."""
        records: dict[str, StepRecord] = {}
        for name in names:
            step = graph.steps[name]
            keyed = recorder.key(step, records)
            run = self.history.cached_run(keyed[0]) if keyed else None
            if run is not None:
                run["key_parts"] = keyed[1]
            record = self.record(run, status="Cached", reused_from=run["cache_source"] or
                                 run["execution_id"]) if run else None
            damaged = damaged_output(record, self.artifacts) if record else None
            if record is None or damaged:
                state = damaged or ("it has no stored result valid for the current code, inputs "
                                    "and parameters")
                raise PipelineError(
                    f"Step `{name}` is needed by the steps selected to run, but {state}. Run it "
                    f"first (e.g. include it with --from/--only, or `%pipeline run --to {name}`)."
                )
            records[name] = record
        return records
