"""The store side of a run: keeps every result and every record, and supplies stored results.

A `Recorder` is both a listener of the execution (it writes the history as the run goes,
through a `writer.HistoryWriter`: each finished step journaled at once, the database in
batches) and the run loop's cache: before a step runs it computes the step's cache key
(`keys.CacheKeys`) and, on a hit, hands back the stored result; after a step succeeds it saves
the outputs as artifacts. It also says why a step did not hit.

A look-up asks SQLite as little as it can. When the history holds few runs next to the
pipeline's steps, the keys of every stored run are read at the run's first look-up (once a
process; then only the rows added since, and not even those when this process wrote them:
`History.stored_keys`): a step whose key is new, as every step of a first run, then costs no
query. The pipeline's latest execution's runs are read at most once a run, in one query each
for what is needed: all of their fields at the first key found among the stored ones (a
re-run finds each step's result there), or only each step's key parts, for `why`, if the run
has missed until then (a run whose inputs changed upstream never reads the rest); not even
those when this process ran that execution (`History.remembered_parts`).
"""

from __future__ import annotations

import time
from typing import Any

from ..execution import Execution, StepRecord
from ..graph import Graph
from ..source import Context
from ..steps import Step
from .artifacts import ArtifactRef, ArtifactStore, inline_ref
from .history import History
from .keys import CacheKeys, changed_why_since
from .rows import start_row
from .writer import HistoryWriter


class Recorder:
    # the events it takes as a listener (`Execution.emit`): a step's start writes nothing
    events = frozenset({"execution_started", "step_finished", "execution_finished"})

    def __init__(self, pipeline: str, history: History, artifacts: ArtifactStore, graph: Graph,
                 context: Context, values: dict[str, Any], version: int | tuple[str, str],
                 retry_of: str | None = None, force: frozenset[str] = frozenset()):
        """``version``: the pipeline version's id, or its ``(digest, document text)``
        (`snapshot.document_text`), recorded with the execution's start if new."""
        self.pipeline, self.history, self.artifacts = pipeline, history, artifacts
        self.graph, self.context, self.values = graph, context, values
        self.version, self.retry_of, self.force = version, retry_of, force
        self.keys = CacheKeys(context, values)
        self.writer: HistoryWriter | None = None  # the history of the execution, as it runs
        self._execution_id: str | None = None
        # the pipeline's latest execution before this one (None: there is none; False: not
        # looked up yet), its reusable runs by key (`History.latest_runs`), and each step's
        # run's status and key parts, for `why`: each read when first needed
        self._latest_id: str | None | bool = False
        self._latest: dict[str, tuple] | None = None
        self._previous: dict[str, tuple] | None = None
        self._sources: dict[str, tuple[int, StepRecord]] = {}  # a hit -> its stored run's rowid
        self._codes: set[str] | None = None  # code parts of stored runs (`may_hit`)
        # keys of stored runs, read at the first key that is not the latest execution's
        # (False: too many to read at once)
        self._keys: set[str] | bool | None = None

    # -- the cache ---------------------------------------------------------------------------
    def key(self, step: Step, records: dict[str, StepRecord]) -> tuple[str, dict] | None:
        """The step's cache key and its parts, or None if an input has no stored digest."""
        digests = {}
        for name, makers in self.graph.inputs[step.name].items():
            for maker in makers:  # the first that made it
                made = records.get(maker)
                ref = made.refs.get(name) if made is not None else None
                if ref is not None:
                    digests[name] = ref.digest
                    break
            else:
                return None
        return self.keys.key(step, digests)

    def lookup(self, step: Step, record: StepRecord, execution: Execution) -> StepRecord | None:
        keyed = self.key(step, execution.steps)
        if keyed is None:
            record.why = "an input was not stored, so no stored result can match"
            return None
        key, parts = record.cache_key, record.key_parts = keyed
        if step.name in self.force or not step.cache:
            record.why = self._not_looked_up(step)
            return None
        expire = step.cache_expire
        if self._keys is None:  # every stored key, read at the first look-up if few (`_small`)
            keys = self.history.stored_keys(limit=self._small)
            self._keys = False if keys is None else keys
        run = None if self._keys is not False and key not in self._keys else \
            self._stored_run(key, None if expire is None else time.time() - expire)
        if run is None:
            record.why = self.why(step.name, parts, expire)
            return None
        run["key_parts"] = parts  # equal: they make the key
        artifacts = self.artifacts
        hit = stored_record(run, artifacts, status="Cached",
                            reused_from=run["cache_source"] or run["execution_id"])
        hit.name = step.name  # the key has no name: the run may be of a step named otherwise
        outputs, check, seen = run["outputs"], artifacts.check, artifacts.seen
        same = True  # each file as the stored row saw it: the row is copied as it is
        for name, ref in hit.refs.items():
            problem = check(ref)  # verify on read: a stat, or a hash if the file changed
            if problem:
                damaged = _damage(hit, name, ref, problem, artifacts)
                record.why = f"{damaged}, so it ran again to store it afresh"
                return None
            same = same and seen(ref) == outputs[name].get("seen")
        if same:
            self._sources[step.name] = (run["rowid"], hit)  # its row: a copy of the stored one
        return hit

    def may_hit(self, step: Step, execution: Execution) -> bool:
        """Whether a stored result could stand in for ``step``, whatever its inputs' digests
        turn out to be (they are not known yet: a cluster may chain it after running steps)."""
        if step.name in self.force or not step.cache:
            return False
        if self._codes is None:
            self._codes = self.history.stored_codes()
        return self.keys.parts(step, {})["code"] in self._codes

    def explain_run(self, step: Step, record: StepRecord, execution: Execution) -> None:
        """The key and the why of a step that ran with no look-up (`may_hit` said none could
        match), once its inputs' digests are known."""
        keyed = self.key(step, execution.steps)
        if keyed is None:
            record.why = "an input was not stored, so no stored result can match"
            return
        record.cache_key, record.key_parts = keyed
        record.why = (self._not_looked_up(step) if step.name in self.force or not step.cache
                      else self.why(step.name, record.key_parts, step.cache_expire))

    def _not_looked_up(self, step: Step) -> str:
        from ..steps import KINDS

        if step.name in self.force:
            return "the run asked for it (--from/--to/--only, or --no-cache)"
        return ("caching is off for this step (--no-cache)" if KINDS[step.kind].cacheable
                else f"a {step.kind} step always runs")

    def _stored_run(self, key: str, not_before: float | None) -> dict | None:
        """The stored run a step with this key reuses: the one of the pipeline's latest
        execution (read once for all steps: what a re-run reuses), else the newest in the
        history (`History.cached_run`). Asked only for a key that some stored run may have
        (`lookup`: a new key asks SQLite nothing)."""
        if self._latest is None:
            self._read_latest()
        row = self._latest.pop(key, None)
        run = History.cached(row) if row is not None else None
        if run is not None and (not_before is None or (run["status"] == "Succeeded"
                                                       and run["end"] >= not_before)):
            return run
        return self.history.cached_run(key, not_before)

    def _latest_execution(self) -> str | None:
        if self._latest_id is False:
            self._latest_id = self.history.latest_execution(self.pipeline,
                                                            besides=self._execution_id or "")
        return self._latest_id

    def _read_latest(self) -> None:
        """The latest execution's runs, all their fields (one query where a re-run would make
        one a step): its reusable ones by key, and what `why` needs of each."""
        latest = self._latest_execution()
        rows = self.history.latest_runs(latest) if latest else []
        self._latest = {row[6]: row for row in rows if row[12]}
        if self._previous is None:
            self._previous = {row[2]: (row[4], row[13]) for row in rows}

    @property
    def _small(self) -> int:
        """Runs in a history small enough to read all its keys at once, the first time in this
        process (later runs read only the rows added since: `History.stored_keys`): then a step
        whose key is new asks SQLite nothing (`lookup`). About 0.5 µs a row, once, against
        a query of ~10 µs a step, each run."""
        return max(50_000, 20 * len(self.graph.steps))

    def why(self, step: str, parts: dict[str, str], expire: float | None) -> str:
        if self._previous is None:  # nothing reused yet: only what `why` needs is read
            latest = self._latest_execution()
            self._previous = self.history.remembered_parts(self.pipeline, latest) if latest else {}
            if self._previous is None:  # (not run by this process last)
                self._previous = {name: (status, text)
                                  for name, status, text in self.history.run_parts(latest)}
        if self._latest_id is None:  # none of the pipeline's steps ran before
            return "it had not run before"
        previous = self._previous.get(step)
        if previous is None:  # not in the latest execution: its own latest run
            previous = self.history.last_parts(step, self.pipeline)
        if previous is None:
            return "it had not run before"
        status, before = previous
        changed = changed_why_since(before, parts)
        if changed is not None:
            return changed
        if status not in ("Succeeded", "Cached"):
            return f"its last run {status.lower()}"
        if expire is not None:
            return "its stored result expired (--cache-expire)"
        return "no stored result matched"

    def store(self, step: Step, record: StepRecord) -> None:
        """Save the outputs as artifacts, unless ``record.refs`` already holds a reference for
        every output: a worker wrote them to the (shared) store itself, and the values here
        may be handles to where they were computed."""
        refs = record.refs
        if refs and all(isinstance(refs.get(n), ArtifactRef) for n in record.outputs):
            return
        outputs = record.outputs
        if len(outputs) == 1:  # the usual step, often of a small value: its reference holds it
            for output, made in outputs.items():
                ref = inline_ref(made)
                if ref is None:  # (anything else, a remote handle included)
                    ref = self.artifacts.put(record.value(output), name=output, step=step.name)
                record.refs = {output: ref}
            return
        put, value, name = self.artifacts.put, record.value, step.name
        record.refs = {output: put(value(output), name=output, step=name)  # fetched, if remote
                       for output in outputs}

    # -- the listener: the history as it happens --------------------------------------------
    def __call__(self, event: str, *, execution: Execution, record: StepRecord | None = None,
                 **future: Any) -> None:
        if self.writer is None:
            if event == "execution_started":
                self._started(execution)
            return
        if event == "step_finished" and record is not None:
            source = self._sources.pop(record.name, None) if self._sources else None
            if source is not None and source[1] is record:  # a hit: its row copies the stored one
                self.writer.copied(source[0], record.name, record.start, record.end)
            else:  # a step that ran (or was skipped, stopped...) is journaled; Cached is not
                self.writer.finished(record)
        elif event == "execution_finished":
            self.writer.end((execution.status, execution.end_time, execution.failure_reason),
                            self.writer.unfinished())

    def _started(self, execution: Execution) -> None:
        """The execution started: its writer journals the start, recorded by its first commit
        (`writer.HistoryWriter`); the version's id is known now if the history has the
        version, else once that commit is made."""
        self.history.check_writable()
        version, document = self.version, None
        if not isinstance(version, int):  # its id if the history has it, else its digest
            digest, text = version
            known = self.history.version_id(self.pipeline, digest)
            version, document = (digest, text) if known is None else (known, None)
        execution.version_id = version if type(version) is int else None
        execution.committed = self.history.settle  # (`Execution.version_id` waits for it)

        def started(version_id: int) -> None:
            execution.version_id = version_id

        self._execution_id = execution.id
        self.writer = HistoryWriter(self.history, self.artifacts, execution.id, execution.steps,
                                    start_row(execution, self.pipeline, version, self.retry_of),
                                    document, started)
        self.writer.begin([r for r in execution.steps.values() if r.status == "Cached"])


def damaged_output(record: StepRecord, artifacts: ArtifactStore) -> str | None:
    """Why a stored step run cannot be reused (an output missing or corrupt), or None."""
    for name, ref in record.refs.items():
        problem = artifacts.check(ref)
        if problem:
            return _damage(record, name, ref, problem, artifacts)
    return None


def _damage(record: StepRecord, name: str, ref: ArtifactRef, problem: str,
            artifacts: ArtifactStore) -> str:
    return f"stored output `{name}` of step {record.name} is {problem} ({artifacts.path(ref)})"


def stored_record(run: dict, artifacts: ArtifactStore, *, status: str,
                  reused_from: str | None) -> StepRecord:
    """A record standing for a stored step run: its outputs load from the store on first use,
    verified against their digests."""
    now = time.time()
    refs, vouch = {}, artifacts.vouch
    for name, doc in (run["outputs"] or {}).items():
        ref = refs[name] = ArtifactRef(doc["digest"], doc["format"], doc["size"], doc["type"],
                                       doc.get("inline"))
        vouch(ref, doc.get("seen"))
    step = run["step"]
    return StepRecord(step, run["kind"], status=status, start=now, end=now,
                      metadata=run["metadata"] or {}, stdout=run["stdout"] or "",
                      stderr=run["stderr"] or "", outputs=dict(refs), refs=refs,
                      reused_from=reused_from, cache_key=run["cache_key"],
                      key_parts=run["key_parts"], loader=artifacts.loader(step, refs))
