"""Inputs lent, not copied: a step may read another step's outputs, never change them.

An input with a cheap view (`protect.cheap_view`: pandas copy-on-write copies, read-only numpy
views, immutable values, flat containers) gets that view. Any other value (a fitted model,
nested containers, objects) is *lent*: the step gets the producer's value itself and pays no
copy. What keeps that safe:

- A *snapshot* of the output, its pickle (cloudpickle where plain pickle cannot), is taken when
  a step first reads it and kept while steps that read it are still to run in the execution:
  one pickle per output, not one copy per reader.
- When the step has run (`returned`, called by the run loop as it collects the result), each
  value it was lent is pickled again. Another value (`pickled.equal`) means the step changed
  it: the step fails with a message naming the input, the step that made it and the fix
  (change a copy), and the value is put back from the snapshot, in place where its type allows
  (so another output holding the same object, e.g. a create-model step's entity holding the
  model, is restored too), else in the producer's record. Later readers get the value as its
  producer made it. A step stopped by an interrupt is not checked as it stops: what it held
  is, before the next step is lent a value.
- One step at a time holds lent values. A step that starts while another holds some (a thread
  pool running steps at once) gets copies unpickled from the snapshots (an output without a
  snapshot yet is pickled then, after checking that the holder has not changed what it holds,
  which that output may contain), and its copies are checked in the same way when it ends: a
  step that changes an input fails on every in-process executor, whether it got the value or a
  copy. On the in-kernel executor every step runs alone, so no step pays for a copy.
- On a process pool the inputs are pickled to the worker anyway: a step's changes never come
  back, and are not checked. A value that cannot be pickled is deep-copied for each reader
  (shared as is if it cannot be copied either), unchecked, as before.

What a check cannot see: a change the step undoes before it ends (harmless when it ran alone; a
thread-pool neighbour copying the value at that moment could see it), and changes to what a
value names by reference (modules, classes, importable functions). A value whose pickle changes
though nobody changed it (a cache it fills when read) fails the steps that read it; they can
work on a copy.

State, module-level behind one lock (run loops of several executions may share records):
    _SNAPSHOTS  id(producer record) -> (weak reference to it, output name -> Snapshot)
    _LOANS      id(borrower record) -> what its step got, from `lend` until `returned`
"""

from __future__ import annotations

import pickle
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from ..errors import PipelineError
from . import pickled
from .protect import NO_VIEW, cheap_view, protect

_PENDING = ("Pending", "Executing")  # the step may still read its inputs


@dataclass(eq=False)
class Snapshot:
    """An output's pickle as its producer made it; ``data`` None: it cannot be pickled."""

    data: bytes | None
    plain: bool = True               # pickle.dumps made it (else cloudpickle)
    roundtrips: bool | None = None   # a copy unpickled from it pickles to ``data`` again


@dataclass(eq=False)
class Loan:
    """What one step got for one output: the value itself (``original``) or a copy."""

    borrower: Any   # the StepRecord of the step that got it
    producer: Any   # the StepRecord whose output it is
    name: str
    value: Any
    original: bool
    snapshot: Snapshot
    baseline: bytes | None = None  # what a copy pickled to when made, if not ``snapshot.data``


_LOCK = threading.Lock()
_SNAPSHOTS: dict[int, tuple[weakref.ref, dict[str, Snapshot]]] = {}
_LOANS: dict[int, list[Loan]] = {}


def lend(records: dict, borrower: str, producer: Any, name: str) -> Any:
    """What step ``borrower`` gets for output ``name`` of ``producer`` (a StepRecord of
    ``records``, the execution's): a cheap view, the value itself, or a copy."""
    value = producer.value(name)
    view = cheap_view(value)
    if view is not NO_VIEW:
        return view
    me = records[borrower]
    with _LOCK:
        for loan in _LOANS.get(id(me), ()):
            if loan.producer is producer and loan.name == name:
                return loan.value  # read twice (a transform's model: an input and --model)
        holders = _held_by_others(me)
        snapshot = _kept(producer, name)
        taken = snapshot is None
        if taken:
            snapshot = _take(value)
        if snapshot.data is None:  # cannot be pickled: a copy for each reader, unchecked
            value = protect(value)
        if taken or snapshot.data is None:
            if holders:  # the value may contain what a running step holds: is that intact?
                _check_holders(borrower, producer, name, holders)
            _keep(producer, name, snapshot)
        if snapshot.data is None:
            return value
        loan = (_copy(me, producer, name, snapshot) if holders
                else Loan(me, producer, name, value, True, snapshot))
        _LOANS.setdefault(id(me), []).append(loan)
        return loan.value


def returned(graph: Any, step: Any, records: dict, result: Any, executor: Any = None) -> Any:
    """After ``step`` ran: check what it was lent, put back what it changed and fail it for
    that. Returns ``result`` (its TaskResult), failed if the step changed an input."""
    me = records.get(step.name)
    if id(me) not in _LOANS:  # lent nothing (cheap views only): the common case, no lock
        return result          # (only this step's run loop adds its loans, before it runs)
    with _LOCK:
        loans = [loan for loan in _LOANS.pop(id(me), ()) if loan.borrower is me]
        if not loans:
            return result
        changed = []
        if not getattr(executor, "crosses_processes", False):
            for loan in loans:
                verdict = _verdict(loan)
                if verdict != "same" and loan.original:
                    _put_back(loan)
                if verdict == "changed":
                    changed.append(loan)
        for loan in loans:
            _release(graph, records, loan)
    if changed:
        _fail(result, step, changed)
    return result


# -- snapshots ------------------------------------------------------------------------------
def _take(value: Any) -> Snapshot:
    made = pickled.dumps(value)
    return Snapshot(None) if made is None else Snapshot(made[0], made[1])


def _kept(producer: Any, name: str) -> Snapshot | None:
    entry = _SNAPSHOTS.get(id(producer))
    return entry[1].get(name) if entry is not None and entry[0]() is producer else None


def _keep(producer: Any, name: str, snapshot: Snapshot) -> None:
    key = id(producer)
    entry = _SNAPSHOTS.get(key)
    if entry is None or entry[0]() is not producer:
        def forget(ref: weakref.ref, key: int = key) -> None:  # the record is gone
            if _SNAPSHOTS.get(key, (None,))[0] is ref:
                _SNAPSHOTS.pop(key, None)

        entry = _SNAPSHOTS[key] = (weakref.ref(producer, forget), {})
    entry[1][name] = snapshot


def _release(graph: Any, records: dict, loan: Loan) -> None:
    """Forget the snapshot once no step of the execution is still to read the output."""
    producer, name = loan.producer, loan.name
    for reader in graph.downstream.get(producer.name, ()):
        record = records.get(reader)
        if (record is not None and record is not loan.borrower and record.status in _PENDING
                and producer.name in graph.inputs.get(reader, {}).get(name, ())):
            return
    entry = _SNAPSHOTS.get(id(producer))
    if entry is not None and entry[0]() is producer:
        entry[1].pop(name, None)
        if not entry[1]:
            _SNAPSHOTS.pop(id(producer), None)


# -- loans ----------------------------------------------------------------------------------
def _held_by_others(me: Any) -> list[Loan]:
    """Values lent as themselves to other running steps. Loans of steps no longer running
    (stopped by an interrupt, abandoned) are settled here: checked and put back."""
    held = []
    for key, loans in list(_LOANS.items()):
        holder = loans[0].borrower if loans else None
        if holder is me:
            continue
        if holder is None or holder.status != "Executing":
            del _LOANS[key]
            for loan in loans:
                if loan.original and _verdict(loan) != "same":
                    _put_back(loan)
            continue
        held += [loan for loan in loans if loan.original]
    return held


def _copy(me: Any, producer: Any, name: str, snapshot: Snapshot) -> Loan:
    """A copy from the snapshot, with what to compare it with when the step ends."""
    value = pickle.loads(snapshot.data)
    baseline = None
    if snapshot.roundtrips is not True:
        made = pickled.dumps(value, snapshot.plain)
        baseline = made[0] if made else None
        if snapshot.roundtrips is None:
            snapshot.roundtrips = baseline == snapshot.data
        if snapshot.roundtrips:
            baseline = None
    return Loan(me, producer, name, value, False, snapshot, baseline)


def _verdict(loan: Loan) -> str:
    """"same", "changed", or "unstable": its pickle differs from one moment to the next, so
    no change can be told (the value is put back anyway, nobody is blamed)."""
    snapshot = loan.snapshot
    if not loan.original and loan.baseline is None and not snapshot.roundtrips:
        return "same"  # a copy whose pickle could not be taken: nothing to compare with
    now = pickled.dumps(loan.value, snapshot.plain)
    if now is None:
        return "changed"  # it could be pickled before the step
    expected = loan.baseline if loan.baseline is not None else snapshot.data
    if pickled.equal(now[0], expected, snapshot.plain):
        return "same"
    again = pickled.dumps(loan.value, snapshot.plain)
    return "changed" if again is not None and again[0] == now[0] else "unstable"


def _put_back(loan: Loan) -> None:
    """The value as its producer made it: restored in place where it can be (other outputs
    may hold the same object), else a fresh copy in the producer's record."""
    snapshot = loan.snapshot
    value, in_place = pickled.put_back(loan.value, snapshot.data, snapshot.plain)
    if not in_place:
        loan.producer.outputs[loan.name] = value
    if _kept(loan.producer, loan.name) is snapshot:  # later checks compare with its new bytes
        _keep(loan.producer, loan.name, _take(value))


# -- messages -------------------------------------------------------------------------------
def _described(loan: Loan, step: Any) -> str:
    if loan.producer.name in getattr(step, "step_refs", ()):
        return f"the model of create-model step `{loan.producer.name}` (its output `{loan.name}`)"
    return f"`{loan.name}`, an output of step `{loan.producer.name}`"


def _check_holders(borrower: str, producer: Any, name: str, holders: list[Loan]) -> None:
    for loan in holders:
        if _verdict(loan) == "changed":
            raise PipelineError(
                f"step `{loan.borrower.name}`, running at the same time, has changed its input "
                f"`{loan.name}` (an output of step `{loan.producer.name}`), which `{name}` of "
                f"step `{producer.name}` may contain, so no clean copy of `{name}` could be made "
                f"for `{borrower}`. Make `{loan.borrower.name}` change a copy instead (its own "
                "check fails it when it ends), then run again.")


def _fail(result: Any, step: Any, changed: list[Loan]) -> None:
    what = " and ".join(_described(loan, step) for loan in changed)
    makers = " and ".join(dict.fromkeys(f"`{loan.producer.name}`" for loan in changed))
    it = "them" if len(changed) > 1 else "it"
    model = changed[0].producer.name in step.step_refs
    name = "model" if model else changed[0].name
    where = "in the predict function" if model else "at the top of the cell"
    message = (
        f"Step `{step.name}` changed {what}. A step may read other steps' outputs but not "
        f"change them (other steps read them too): `{step.name}` failed, and the other steps "
        f"that read {it} get {it} as {makers} made {it}. To change a value in a step, change a "
        f"copy: `import copy` and `{name} = copy.deepcopy({name})` first ({where}), or build the "
        "new value under another name.")
    if result.status == "Failed":
        result.failure_reason = f"{result.failure_reason} Besides, {message[0].lower()}{message[1:]}"
        return
    result.status, result.failure_reason, result.traceback = "Failed", message, None
    result.outputs, result.metadata, result.fails_execution = {}, {}, False
    if getattr(result, "refs", None):
        result.refs = {}
