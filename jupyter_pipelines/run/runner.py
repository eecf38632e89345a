"""The one run loop: take ready steps from the scheduler, submit them to the executor, record
what comes back. It knows nothing of notebooks or widgets: it emits events on the execution
(``step_started``, ``step_finished``, ``execution_finished``) and views listen."""

from __future__ import annotations

import builtins
import queue
import threading
import time
from concurrent.futures import Executor, Future
from typing import Protocol

from ..errors import PipelineError
from ..execution import Execution, StepRecord
from ..graph import Graph
from ..steps import KINDS, RunContext, Step
from . import capture, remote, scheduler
from .executors import InKernelExecutor
from .isolation import lend, returned
from .task import TaskResult, merged, run_task


class Cache(Protocol):
    """What the run loop asks of the store (see `store.recorder.Recorder`)."""

    def lookup(self, step: Step, record: StepRecord, execution: Execution) -> StepRecord | None: ...

    def store(self, step: Step, record: StepRecord) -> None: ...

    # for a cluster that chains steps (`remote`): could a stored result stand in for the step
    # whatever its inputs' digests? and, after it ran unlooked-up, its key and why
    def may_hit(self, step: Step, execution: Execution) -> bool: ...

    def explain_run(self, step: Step, record: StepRecord, execution: Execution) -> None: ...


def run(execution: Execution, graph: Graph, names: list[str], executor: Executor,
        base: dict, ctx: RunContext, reused: dict[str, StepRecord] | None = None,
        echo: bool = False, cache: Cache | None = None, max_parallel: int | None = None) -> Execution:
    """Run ``names`` (a set of steps closed under their upstream) of ``graph``.

    ``base`` is the namespace every step starts from (the notebook's context plus the
    parameters); ``reused`` are records of steps whose earlier results stand (Cached);
    ``cache``, if given, may supply a stored result for a step and keeps every new one;
    ``max_parallel`` caps the steps running at once (SageMaker's ParallelismConfiguration).
    """
    return _Run(execution, graph, names, executor, base, ctx, cache, max_parallel).go(reused or {}, echo)


class _Run:
    def __init__(self, execution, graph, names, executor, base, ctx, cache, max_parallel=None):
        self.execution, self.graph, self.executor = execution, graph, executor
        self.base, self.ctx, self.cache = base, ctx, cache
        self.max_parallel = max_parallel
        wanted = set(names)
        self.names = names
        if len(wanted) == len(graph.steps):  # the whole graph: its own maps are the plan's
            self.plan = scheduler.Plan(graph.upstream, graph.downstream, graph.inputs)
        else:
            self.plan = scheduler.Plan(
                upstream={n: tuple(u for u in graph.upstream[n] if u in wanted) for n in names},
                downstream={n: tuple(d for d in graph.downstream[n] if d in wanted) for n in names},
                inputs={n: graph.inputs[n] for n in names},
            )
        # the default executor runs a task as it is submitted: call it, with no Future between
        self.inline = type(executor) is InKernelExecutor
        self.futures: dict[Future, str] = {}   # a step's result, as it will come
        self.starting: dict[Future, str] = {}  # a remote step's start, as a worker reports it
        self.remote = remote.for_run(executor, cache, max_parallel)
        self.unlooked: set[str] = set()  # chained: submitted with no look-up (`Cache.may_hit`)
        # each future in `futures` and `starting` is put here as it ends: the loop waits on it
        # (waiting on every pending future at each turn costs a chain on a cluster n^2)
        self._ending: queue.SimpleQueue[Future] = queue.SimpleQueue()
        self._polled = time.monotonic()

    def go(self, reused: dict[str, StepRecord], echo: bool) -> Execution:
        execution, graph = self.execution, self.graph
        execution.steps.update(reused)
        execution.start_time = time.time()
        execution.emit("execution_started")
        doomed = [s for n, r in reused.items() for s in _branch_not_taken(graph.steps[n], r.metadata)]
        self.state = state = scheduler.initial(self.plan, dict.fromkeys(reused, "Cached"), doomed)
        self._settled([n for n in self.names if state.finished.get(n) in ("Skipped", "NotRun")])
        try:
            with capture.installed(echo):
                while not state.done:
                    while state.ready and (self.max_parallel is None
                                           or len(self.futures) < self.max_parallel):
                        self._start(scheduler.take(state))
                    if self.starting or self.futures:
                        for future in self._ended():
                            if future in self.starting:
                                self._began(self.starting.pop(future), future)
                            elif future in self.futures:
                                self._collect(future)
        except KeyboardInterrupt:
            return self._stop()
        except BaseException as exc:  # not the user's code: ours, or a listener's (the history)
            self._abandon(exc)
            raise
        failed = any(s == "Failed" for s in state.finished.values())
        execution._finish("Failed" if failed else "Succeeded", time.time())
        return execution

    def _ended(self) -> list[Future]:
        """The futures that ended since last asked (waiting for one), in the order they did;
        one may be stale (collected already). A cluster is also polled, every `remote.TICK`,
        for tasks that ended without a word."""
        ending = self._ending
        try:
            ended = [ending.get(timeout=remote.TICK if self.remote else None)]
        except queue.Empty:
            ended = []
        if self.remote is not None and time.monotonic() >= self._polled + remote.TICK:
            self.remote.executor.poll()
            self._polled = time.monotonic()
        while not ending.empty():
            ended.append(ending.get())
        return ended

    def _watch(self, future: Future) -> None:
        future.add_done_callback(self._ending.put)

    def _start(self, name: str) -> None:
        step, record = self.graph.steps[name], self.execution.steps[name]
        hit = self.cache.lookup(step, record, self.execution) if self.cache else None
        if hit is not None:
            self.execution.steps[name] = hit
            self.execution.emit("step_finished", step=name, record=hit)
            doom = _branch_not_taken(step, hit.metadata)
            self._settled(scheduler.finish(self.plan, self.state, name, "Cached", doom))
            return
        record.attempts = 1
        if self.remote is None or remote.runs_here(step):
            record.status, record.start = "Executing", time.time()
            self.execution.emit("step_started", step=name, record=record)
        self._submit(step)

    def _began(self, name: str, future: Future) -> None:
        """A worker started remote step ``name`` (or never will: then it ends as collected)."""
        record = self.execution.steps[name]
        if record.status != "Pending" or future.cancelled() or future.exception() is not None \
                or future.result() is None:
            return
        record.start, record.worker = future.result()
        record.status = "Executing"
        self.execution.emit("step_started", step=name, record=record)

    def _submit(self, step: Step) -> None:
        if self.remote is not None and not remote.runs_here(step):
            self._submit_remote(step)
            for down in self.remote.chain_after(self, step.name):  # what can follow it at once
                self.execution.steps[down].attempts = 1
                self.unlooked.add(down)
                self._submit_remote(self.graph.steps[down])
            for name, why in self.remote.executor.send().items():  # one graph
                self.remote.handles[name].fail(_failed(_not_sent(name, why)))
            return
        try:
            ns = _namespace(self.graph, step, self.base, self.execution.steps)
        except PipelineError as exc:  # an input that cannot be read back (missing, corrupt)
            self._done(step.name, _failed(f"Step `{step.name}` could not read its inputs: {exc}"))
            return
        # in the kernel: with the default executor, and a kind that needs the kernel's own state
        # (`remote.runs_here`: the model registry) on a cluster, whose workers may be elsewhere
        here = self.inline or self.remote is not None
        if here and not hasattr(KINDS[step.kind], "split"):
            try:
                result = run_task(step, ns, self.ctx)
            except Exception as exc:  # not the user's code (run_task catches that): ours
                result = self._broken(step.name, exc)
            self._done(step.name, result)
            return
        if getattr(self.executor, "crosses_processes", False) and isinstance(
                ns.get("__builtins__"), dict):  # IPython's builtins (its history, ...) stay
            ns["__builtins__"] = builtins      # here: the worker has its own
        try:
            future = self._spread(step, ns)
        except Exception as exc:  # e.g. an input a process pool cannot be sent
            self._done(step.name, _failed(
                f"Step `{step.name}` could not be handed to the executor ({type(exc).__name__}: "
                f"{exc}). An executor of other processes needs every input to be picklable: run "
                "it with --executor threads or in-kernel."))
            return
        self.futures[future] = step.name
        if future.done():
            self._collect(future)
        else:
            self._watch(future)

    def _submit_remote(self, step: Step) -> None:
        try:
            started, future = self.remote.submit(self, step)
        except Exception as exc:  # e.g. a notebook value the cluster cannot be sent
            future = _failed_future(_not_sent(step.name, f"{type(exc).__name__}: {exc}"))
        else:
            self.starting[started] = step.name
            self._watch(started)
        self.futures[future] = step.name
        self._watch(future)

    def _spread(self, step: Step, ns: dict) -> Future:
        """One task, or, for a kind that splits its work (a transform's instance count), one
        task per part on the executor, gathered into one future of the merged result."""
        kind = KINDS[step.kind]
        parts = kind.split(step, ns) if hasattr(kind, "split") else [ns]
        if len(parts) == 1:
            return self.executor.submit(run_task, step, parts[0], self.ctx)
        return _gathered([self.executor.submit(run_task, step, part, self.ctx) for part in parts],
                         lambda results: merged(kind, step, results))

    def _collect(self, future: Future) -> None:
        name = self.futures.pop(future)
        if self.remote is not None:  # a chained step's upstream first: its key needs theirs
            for up in self.plan.upstream[name]:
                handle = self.remote.handles.get(up)
                if handle is not None and handle.finished.done() and handle.finished in self.futures:
                    self._collect(handle.finished)
        try:
            result = future.result()
        except Exception as exc:  # an executor failure, not the user's code
            result = self._broken(name, exc)
        self._done(name, result)

    def _broken(self, name: str, exc: Exception) -> TaskResult:
        start = self.execution.steps[name].start or time.time()
        return TaskResult("Failed", failure_reason=f"Step `{name}` could not be run: {exc!r}",
                          start=start, end=time.time())

    def _done(self, name: str, result: TaskResult) -> None:
        """Step ``name`` ran (or could not): record its result and settle what follows."""
        step, record = self.graph.steps[name], self.execution.steps[name]
        if self.remote is not None:
            handle = self.remote.handles.get(name)
            if handle is not None and self.starting.pop(handle.started, None) is not None:
                self._began(name, handle.started)
            self.remote.collected(name)
        result = returned(self.graph, step, self.execution.steps, result, self.executor)
        if result.status == "NotRun" or (self.remote is not None and any(
                self.state.finished.get(u) in _BLOCKING for u in self.plan.upstream[name])):
            record.status = "NotRun"  # chained after a step that failed (see `remote`)
            self._settled(scheduler.finish(self.plan, self.state, name, "NotRun"))
            return
        if result.status == "Failed" and result.traceback and record.attempts <= step.retry:
            time.sleep(step.retry_backoff * 2 ** (record.attempts - 1))  # a transient failure?
            record.attempts += 1
            self.execution.emit("step_retried", step=name, record=record, reason=result.failure_reason)
            self._submit(step)
            return
        record.status, record.end = result.status, result.end
        record.failure_reason, record.traceback = result.failure_reason, result.traceback
        record.metadata, record.stdout, record.stderr = result.metadata, result.stdout, result.stderr
        record.outputs, record.refs = result.outputs, result.refs or record.refs
        record.start, record.worker = record.start or result.start, result.worker or record.worker
        if name in self.unlooked and self.cache is not None:
            self.cache.explain_run(step, record, self.execution)
        if result.status == "Succeeded" and self.cache is not None:
            try:
                self.cache.store(step, record)
            except PipelineError as exc:  # an output that cannot be saved fails its step
                record.status, record.failure_reason = "Failed", str(exc)
        if record.status == "Failed" and self.execution.failure_reason is None:
            self.execution.failure_reason = record.failure_reason
        self.execution.emit("step_finished", step=name, record=record)
        doom = _branch_not_taken(step, record.metadata)
        self._settled(scheduler.finish(self.plan, self.state, name, record.status, doom))

    def _stop(self) -> Execution:
        now = time.time()
        for name in scheduler.stop(self.state):
            record = self.execution.steps[name]
            if record.status == "Pending":  # chained on the cluster, never started
                self.state.finished[name] = record.status = "NotRun"
                continue
            record.status, record.end = "Stopped", now
            record.failure_reason = "Stopped by an interrupt."
            self.execution.emit("step_finished", step=name, record=record)
        for future in self.futures:
            future.cancel()
        if self.remote is not None:
            self.remote.cancel()
        self._settled([n for n, s in self.state.finished.items() if s == "NotRun"])
        self.execution.failure_reason = "Stopped by an interrupt (Kernel > Interrupt or Ctrl-C)."
        self.execution._finish("Stopped", now)
        return self.execution

    def _abandon(self, exc: BaseException) -> None:
        """The loop itself failed (our fault, or a listener's: the history could not be
        written). The execution still ends Failed with the reason, and every listener is told,
        each on its own, so one failing listener does not keep the history saying Executing."""
        now = time.time()
        reason = f"The run stopped: {exc}" if isinstance(exc, PipelineError) else (
            f"The run stopped: {type(exc).__name__}: {exc}")
        for future in self.futures:
            future.cancel()
        if self.remote is not None:
            self.remote.cancel()
        execution = self.execution
        started = [r for r in execution.steps.values() if r.status not in ("Pending", "NotRun")]
        for record in started:
            if record.status == "Executing":
                record.status, record.end, record.failure_reason = "Failed", now, reason
        execution.status, execution.end_time = "Failed", now
        execution.failure_reason = execution.failure_reason or reason
        for listener in execution.listeners:
            try:
                for record in started:
                    listener("step_finished", execution=execution, step=record.name, record=record)
                listener("execution_finished", execution=execution)
            except Exception:
                continue
        execution._done.set()

    def _settled(self, names: list[str]) -> None:
        for name in names:
            record = self.execution.steps[name]
            record.status = self.state.finished[name]
            if record.status == "Skipped":
                self.execution.emit("step_finished", step=name, record=record)


_BLOCKING = ("Failed", "Stopped", "NotRun")


def _failed(reason: str) -> TaskResult:
    """The result of a step that never reached the executor."""
    now = time.time()
    return TaskResult("Failed", failure_reason=reason, start=now, end=now)


def _not_sent(name: str, why: str) -> str:
    return (f"Step `{name}` could not be handed to the Dask cluster ({why}). Every value a step "
            "reads must be picklable: run it with --executor threads or in-kernel.")


def _failed_future(reason: str) -> Future:
    future: Future = Future()
    future.set_result(_failed(reason))
    return future


def _gathered(futures: list[Future], combine) -> Future:
    """A future done when all of ``futures`` are, holding ``combine(their results)``."""
    gathered: Future = Future()
    pending = [len(futures)]
    lock = threading.Lock()

    def one_done(_: Future) -> None:
        with lock:
            pending[0] -= 1
            if pending[0]:
                return
        try:
            gathered.set_result(combine([f.result() for f in futures]))
        except BaseException as exc:
            gathered.set_exception(exc)

    for future in futures:
        future.add_done_callback(one_done)
    return gathered


def _namespace(graph: Graph, step: Step, base: dict, records: dict[str, StepRecord]) -> dict:
    ns = dict(base)
    for name, makers in graph.inputs[step.name].items():
        for maker in makers:
            made = records.get(maker)
            if made is not None and name in made.outputs:
                ns[name] = lend(records, step.name, made, name)  # checked by `returned`
                break
    if step.step_refs:
        ns["__refs__"] = {r: lend(records, step.name, records[r], next(iter(records[r].outputs)))
                          for r in step.step_refs}
    if KINDS[step.kind].needs_input_digests:  # lineage without hashing the values again
        ns["__digests__"] = {name: records[m].refs[name].digest
                             for name, makers in graph.inputs[step.name].items()
                             for m in makers if m in records and name in records[m].refs}
    return ns


def _branch_not_taken(step: Step, metadata: dict) -> tuple[str, ...]:
    cond = metadata.get("Condition")
    if cond is None:
        return ()
    if_steps, else_steps = step.branches
    return else_steps if cond["Outcome"] == "True" else if_steps

