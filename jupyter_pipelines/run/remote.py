"""The run loop's side of an executor that keeps outputs on its workers (`cluster.DaskExecutor`).

A step is handed to the cluster with *handles* for its inputs, never their values: the future
of an upstream step's result (still running, or done and kept on a worker), a stored artifact's
reference (a Cached upstream: the worker reads the store), or, for a value the kernel holds, the
value. The worker tells when it starts the step (then the loop emits ``step_started``) and
when it is done (the summary becomes the step's result).

**Chaining.** A step whose upstream steps are all done or on the cluster can be submitted at
once, before they finish, when nothing the kernel learns from them could change what it does:
they are not conditions (a branch is decided by the outcome), they have no retries, the step
runs on the cluster, and no stored result could stand in for it (``Cache.may_hit``, given the
inputs' digests are not known yet; without a store nothing can). A chain then runs with no
round trip to the kernel between steps. If an upstream fails, the chained step's task sees it
and does nothing; the loop records it NotRun, as it would have without chaining.
"""

from __future__ import annotations

import builtins
from concurrent.futures import Future

from ..execution import Remote
from ..steps import KINDS, Step
from . import scheduler

_DONE = ("Succeeded", "Cached")
TICK = 0.25  # seconds between looks at the cluster for tasks that ended without a word


def for_run(executor, cache, max_parallel) -> RemoteSteps | None:
    """The remote side of this run, or None for an executor whose results come back. The
    workers write the outputs to the store when they reach it (`DaskExecutor.reaches`); when
    they cannot (a ``memory://`` store, in the kernel alone), the kernel fetches them to store."""
    if not getattr(executor, "keeps_data", False):
        return None
    store = getattr(cache, "artifacts", None)
    return RemoteSteps(executor, store.location if store and executor.reaches(store) else None,
                       chaining=max_parallel is None)


def runs_here(step: Step) -> bool:
    """A kind that needs the kernel's own state (the model registry) runs in the kernel."""
    return getattr(KINDS[step.kind], "runs_in_kernel", False)


class RemoteSteps:
    def __init__(self, executor, store: str | None, chaining: bool):
        self.executor, self.store, self.chaining = executor, store, chaining
        self.handles: dict = {}     # step -> StepHandle, until its result is collected
        self.inflight: set[str] = set()  # steps on the cluster that others may chain after
        self._base = None

    def submit(self, run, step: Step) -> tuple[Future, Future]:
        """Hand ``step`` to the cluster: its (started, finished) futures."""
        if self._base is None:
            base = dict(run.base)
            if isinstance(base.get("__builtins__"), dict):  # IPython's stay in the kernel
                base["__builtins__"] = builtins
            self._base = self.executor.share(base)
        kind = KINDS[step.kind]
        parts = step.options.get("instance_count", 1) if hasattr(kind, "split") else 1
        handle = self.executor.submit_step(step, self._base, self._inputs(run, step), run.ctx,
                                           self.store, parts)
        self.handles[step.name] = handle
        if not step.branches[0] and not step.branches[1] and not step.retry:
            self.inflight.add(step.name)
        return handle.started, handle.finished

    def collected(self, name: str) -> None:
        self.handles.pop(name, None)
        self.inflight.discard(name)

    def chainable(self, run, name: str) -> bool:
        """Whether waiting step ``name`` may be submitted before its upstream finish."""
        state, step = run.state, run.graph.steps[name]
        if not self.chaining or name not in state.waiting or name in state.doomed or runs_here(step):
            return False
        ups = run.plan.upstream[name]
        if not all(state.finished.get(u) in _DONE or u in self.inflight for u in ups):
            return False
        return run.cache is None or not run.cache.may_hit(step, run.execution)

    def chain_after(self, run, name: str) -> list[str]:
        """Steps downstream of ``name`` (just submitted) that can go now; taken off the
        scheduler's waiting list, in order."""
        chained, stack = [], [name]
        while stack:
            for down in run.plan.downstream[stack.pop()]:
                if self.chainable(run, down):
                    scheduler.chain(run.state, down)
                    chained.append(down)
                    stack.append(down)
        return chained

    def cancel(self) -> None:
        for handle in self.handles.values():
            try:
                handle.cancel()
            except Exception:  # the cluster is gone: nothing left to cancel
                pass

    def _inputs(self, run, step: Step) -> dict:
        records, inputs = run.execution.steps, {}
        for name, makers in run.graph.inputs[step.name].items():
            for maker in makers:
                source = self._source(records.get(maker), maker, name)
                if source is not None:
                    inputs[name] = source
                    break
        for ref in step.step_refs:  # (a transform's model: the create-model step's one output)
            source = self._source(records.get(ref), ref, run.graph.steps[ref].outputs[0])
            if source is not None:
                inputs[f"__refs__:{ref}"] = source
        return inputs

    def _source(self, record, maker: str, name: str):
        if maker in self.handles and maker in self.inflight:
            return ("remote", self.handles[maker].full, name)
        if record is None or name not in record.outputs:
            return None
        value = record.outputs[name]
        if isinstance(value, Remote):
            return value.handle()
        if type(value).__name__ == "ArtifactRef" and record.loader is not None:
            if self.store is not None:  # the worker reads it from the store
                return ("stored", value)
            return ("value", record.value(name))  # a store only the kernel reaches
        return ("value", value)
