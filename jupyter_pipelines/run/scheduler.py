"""The scheduler: a small pure state machine over step names. No I/O, no clocks, no threads.

Policy: a step becomes ready when all its upstream steps have finished. Then it is
- NotRun   if an upstream Failed, was Stopped, or was itself NotRun (a failure stops what
           depends on it; independent steps go on);
- Skipped  if it is on the branch a condition did not take (``doomed``), or every upstream was
           Skipped, or one of its data inputs has only Skipped producers (the branch it depends
           on did not run); steps fed by both branches of a condition still run (rejoin);
- ready    otherwise.

State fields:
    waiting   step -> upstream steps not finished yet (only steps not yet ready)
    ready     steps that may start now, in the order they became ready
    running   steps started and not finished
    finished  step -> final status: Succeeded, Cached, Failed, Stopped, Skipped or NotRun
    doomed    steps on a branch not taken, to be Skipped when their turn comes

>>> plan = Plan(upstream={"a": (), "b": ("a",)}, downstream={"a": ("b",), "b": ()}, inputs={})
>>> s = initial(plan)
>>> take(s), s.running
('a', {'a'})
>>> finish(plan, s, "a", "Succeeded")
[]
>>> s
State(waiting={}, ready=deque(['b']), running=set(), finished={'a': 'Succeeded'}, doomed=set())
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

FINAL = ("Succeeded", "Cached", "Failed", "Stopped", "Skipped", "NotRun")
_BLOCKING = frozenset({"Failed", "Stopped", "NotRun"})
_DONE = frozenset({"Succeeded", "Cached"})


@dataclass(frozen=True)
class Plan:
    upstream: dict[str, tuple[str, ...]]
    downstream: dict[str, tuple[str, ...]]
    inputs: dict[str, dict[str, tuple[str, ...]]]  # step -> data name -> producers


@dataclass
class State:
    waiting: dict[str, set[str]]
    ready: deque[str]
    running: set[str]
    finished: dict[str, str]
    doomed: set[str] = field(default_factory=set)

    @property
    def done(self) -> bool:
        return not self.ready and not self.running


def initial(plan: Plan, finished: dict[str, str] | None = None, doomed=()) -> State:
    """The start state; ``finished`` holds steps already settled (results reused) and
    ``doomed`` the branches their conditions did not take."""
    state = State(waiting={}, ready=deque(), running=set(), finished={}, doomed=set(doomed))
    for name, ups in plan.upstream.items():
        state.waiting[name] = set(ups)
    for name in finished or {}:
        state.waiting.pop(name, None)
    for name, status in (finished or {}).items():
        finish(plan, state, name, status)
    for name in [n for n, ups in state.waiting.items() if not ups]:
        if name in state.waiting:  # not settled meanwhile by an earlier root's propagation
            del state.waiting[name]
            if _settle(plan, state, name):
                _propagate(plan, state, name)
    return state


def take(state: State) -> str | None:
    """Start the next ready step (first come, first served)."""
    if not state.ready:
        return None
    name = state.ready.popleft()
    state.running.add(name)
    return name


def chain(state: State, name: str) -> None:
    """Start waiting step ``name`` before its upstream finish (its executor runs it after
    them: see `remote`); it leaves ``waiting`` for ``running``."""
    del state.waiting[name]
    state.running.add(name)


def finish(plan: Plan, state: State, name: str, status: str, doom: tuple[str, ...] = ()) -> list[str]:
    """Record ``name`` as finished with ``status``; ``doom`` lists the steps of a branch not
    taken. Returns the steps settled as Skipped or NotRun as a consequence, in order."""
    assert status in FINAL, status
    state.running.discard(name)
    state.finished[name] = status
    state.doomed.update(doom)
    return _propagate(plan, state, name)


def _propagate(plan: Plan, state: State, name: str) -> list[str]:
    """Tell the downstream of a finished step; returns the steps settled without running."""
    settled: list[str] = []
    stack = [name]
    while stack:
        current = stack.pop()
        for down in plan.downstream[current]:
            pending = state.waiting.get(down)
            if pending is None:
                continue
            pending.discard(current)
            if not pending:
                del state.waiting[down]
                if _settle(plan, state, down):
                    settled.append(down)
                    stack.append(down)
    return settled


def _settle(plan: Plan, state: State, name: str) -> bool:
    """Decide a step whose upstream all finished: True if it was settled without running."""
    verdict = _verdict(plan, state, name)
    if verdict is None:
        state.ready.append(name)
        return False
    state.finished[name] = verdict
    return True


def _verdict(plan: Plan, state: State, name: str) -> str | None:
    finished = state.finished
    skipped = 0
    for up in plan.upstream[name]:
        status = finished[up]
        if status in _BLOCKING:
            return "NotRun"
        skipped += status == "Skipped"
    if name in state.doomed:
        return "Skipped"
    if not skipped:
        return None
    if skipped == len(plan.upstream[name]):
        return "Skipped"
    for makers in plan.inputs.get(name, {}).values():
        if all(finished[m] == "Skipped" for m in makers):
            return "Skipped"
    return None


def stop(state: State) -> list[str]:
    """An interrupt: running steps become Stopped, everything not started NotRun."""
    stopped = sorted(state.running)
    for name in stopped:
        state.finished[name] = "Stopped"
    for name in list(state.ready) + list(state.waiting):
        state.finished[name] = "NotRun"
    state.running.clear()
    state.ready.clear()
    state.waiting.clear()
    return stopped
