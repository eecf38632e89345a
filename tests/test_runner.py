"""The run loop: isolation of inputs, executors, captured output, interrupts and reuse."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from jupyter_pipelines import Pipeline
from jupyter_pipelines.run.protect import protect
from jupyter_pipelines.source import Context


@pytest.fixture
def pipe(tmp_path):
    p = Pipeline("t", home=tmp_path)
    p.context = Context.from_cells(["import time\nimport numpy as np\nimport pandas as pd"])
    return p


def test_a_step_cannot_change_another_steps_outputs(pipe):
    pipe.add_step("Make", "df = pd.DataFrame({'a': [1, 2]})\nitems = {'k': [1]}\nxs = [1, 2]")
    pipe.add_step("Mutate", "df['a'] = 0\ndf.loc[0, 'a'] = 5\nxs.append(3)\nseen = 1")  # own copies
    pipe.add_step("Grow", "items['k'].append(2)\ngrown = 1")  # a lent value, changed: refused
    pipe.add_step("Read", "total = int(df['a'].sum()) + len(items['k']) + len(xs) + seen")
    ex = pipe.start()
    assert ex.steps["Grow"].status == "Failed" and "copy.deepcopy(items)" in ex.steps["Grow"].failure_reason
    assert ex.result("Read", "total") == 3 + 1 + 2 + 1
    assert ex.result("Make", "df")["a"].tolist() == [1, 2] and ex.result("Make", "items") == {"k": [1]}


def test_writing_into_an_input_array_fails_with_a_hint(pipe):
    pipe.add_step("Make", "arr = np.zeros(3)")
    pipe.add_step("Write", "arr[0] = 1.0\nout = 1")
    ex = pipe.start()
    assert ex.steps["Write"].status == "Failed"
    assert "read-only" in ex.failure_reason and "copy" in ex.failure_reason
    assert ex.result("Make", "arr").tolist() == [0.0, 0.0, 0.0]
    fixed = pipe.add_step("Write", "arr = arr.copy()\narr[0] = 1.0\nout = arr", outputs=["out"])
    assert fixed and pipe.start().result("Write", "out").tolist() == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("value", [pd.DataFrame({"a": range(5)}), pd.Series([1.0, 2.0]),
                                   np.arange(4), {"a": [1]}, [1, [2]], 3, "text", (1, "a")])
def test_protect_returns_an_equal_value_that_does_not_share_mutations(value):
    view = protect(value)
    if isinstance(value, (pd.DataFrame, pd.Series)):
        pd.testing.assert_equal = None
        assert view.equals(value)
    elif isinstance(value, np.ndarray):
        assert (view == value).all() and not view.flags.writeable and value.flags.writeable
    else:
        assert view == value


def test_thread_pool_runs_independent_steps_concurrently_and_captures_per_step(pipe):
    pipe.add_step("Source", "n = 1")
    for i in range(2):
        pipe.add_step(f"Work{i}", f"print('hello from {i}')\ntime.sleep(0.3)\nr{i} = n + {i}")
    pipe.add_step("Sink", "total = r0 + r1")
    with ThreadPoolExecutor(max_workers=2) as pool:
        ex = pipe.start(executor=pool)
    assert ex.status == "Succeeded" and ex.result("Sink", "total") == 3
    a, b = ex.steps["Work0"], ex.steps["Work1"]
    assert a.start < b.end and b.start < a.end  # the two ran at the same time
    assert a.stdout == "hello from 0\n" and b.stdout == "hello from 1\n"


def test_stderr_is_captured(pipe):
    pipe.add_step("Warn", "import sys\nprint('careful', file=sys.stderr)\nx = 1")
    ex = pipe.start()
    assert ex.steps["Warn"].stderr == "careful\n" and ex.steps["Warn"].stdout == ""


def test_interrupt_stops_the_execution(pipe):
    pipe.add_step("First", "a = 1")
    pipe.add_step("Slow", "raise KeyboardInterrupt\nb = a")  # what Kernel > Interrupt raises
    pipe.add_step("Next", "c = b")
    events = []
    ex = pipe.start(listeners=[lambda event, **kw: events.append((event, kw.get("step")))])
    assert ex.status == "Stopped" and "interrupt" in ex.failure_reason.lower()
    assert {n: r.status for n, r in ex.steps.items()} == {
        "First": "Succeeded", "Slow": "Stopped", "Next": "NotRun"}
    assert events[-1] == ("execution_finished", None)
    assert ex.wait(timeout=0) is ex


def test_events_arrive_in_order_with_keyword_fields(pipe):
    pipe.add_step("A", "x = 1")
    pipe.add_step("B", "y = x")
    seen = []
    pipe.start(listeners=[lambda event, *, execution, **fields: seen.append((event, fields.get("step")))])
    assert seen == [("execution_started", None), ("step_started", "A"), ("step_finished", "A"),
                    ("step_started", "B"), ("step_finished", "B"), ("execution_finished", None)]


def test_run_step_reuses_only_what_is_still_valid(pipe):
    pipe.persist = False  # the in-memory reuse of a cell run, without the store's cache
    pipe.add_parameter("k", 1)
    pipe.add_step("Load", "data = [1, 2, 3]")
    pipe.add_step("Scale", "scaled = [d * k for d in data]")
    pipe.add_step("Sum", "total = sum(scaled)")
    pipe.start()
    again = pipe.run_step("Sum")
    assert {n: r.status for n, r in again.steps.items()} == {
        "Load": "Cached", "Scale": "Cached", "Sum": "Succeeded"}
    assert again.steps["Load"].reused_from == pipe.executions[0].id
    changed = pipe.run_step("Sum", {"k": 10})
    assert {n: r.status for n, r in changed.steps.items()} == {
        "Load": "Cached", "Scale": "Succeeded", "Sum": "Succeeded"}
    assert changed.result("Sum", "total") == 60


def test_a_context_function_change_invalidates_the_steps_that_use_it(pipe):
    pipe.persist = False
    pipe.context = Context.from_cells(["def f(v):\n    return v + 1"])
    pipe.add_step("A", "a = f(1)")
    pipe.add_step("B", "b = a * 2")
    pipe.start()
    pipe.context = Context.from_cells(["def f(v):\n    return v + 100"])
    ex = pipe.run_step("B")
    assert ex.steps["A"].status == "Succeeded" and ex.result("B", "b") == 202


def test_execution_describe_and_list_steps_are_sagemaker_shaped(pipe):
    pipe.add_parameter("p", "x")
    pipe.add_step("A", "x = 1")
    ex = pipe.start()
    d = ex.describe()
    assert d["PipelineExecutionStatus"] == "Succeeded"
    assert d["PipelineParameters"] == [{"Name": "p", "Value": "x"}]
    assert d["CreationTime"] and d["PipelineExecutionArn"] == ex.id
    (step,) = ex.list_steps()
    assert set(step) >= {"StepName", "StepStatus", "StartTime", "EndTime", "AttemptCount"}


def test_result_errors_name_the_step_and_output(pipe):
    pipe.add_step("A", "x = 1")
    ex = pipe.start()
    assert ex.result("A") == 1
    with pytest.raises(Exception, match="no output `y`.*Its outputs are: x"):
        ex.result("A", "y")
    with pytest.raises(Exception, match="no step `B`"):
        ex.result("B", "x")


def test_an_empty_pipeline_says_how_to_start(pipe):
    with pytest.raises(Exception, match="no steps yet"):
        pipe.start()


@pytest.mark.parametrize("threads", [False, True], ids=["in-kernel", "threads"])
def test_a_task_that_breaks_outside_the_users_code_fails_its_step_alike(pipe, monkeypatch, threads):
    from jupyter_pipelines.run import runner

    real = runner.run_task

    def breaks_on_b(step, ns, ctx):
        if step.name == "B":
            raise RuntimeError("boom")
        return real(step, ns, ctx)

    monkeypatch.setattr(runner, "run_task", breaks_on_b)
    pipe.persist = False
    pipe.add_step("A", "a = 1")
    pipe.add_step("B", "b = a")
    pipe.add_step("C", "c = b")
    pipe.add_step("D", "d = a")
    with ThreadPoolExecutor(max_workers=1) as pool:
        ex = pipe.start(executor=pool if threads else None)
    assert {n: r.status for n, r in ex.steps.items()} == {
        "A": "Succeeded", "B": "Failed", "C": "NotRun", "D": "Succeeded"}
    b = ex.steps["B"]
    assert b.failure_reason == "Step `B` could not be run: RuntimeError('boom')" == ex.failure_reason
    assert b.start and b.end >= b.start


def test_a_whole_run_works_out_fingerprints_only_when_a_cell_run_needs_them(pipe, monkeypatch):
    from jupyter_pipelines.store import keys

    calls = []
    real = keys.fingerprints
    monkeypatch.setattr(keys, "fingerprints", lambda *a: calls.append(1) or real(*a))
    pipe.persist = False
    pipe.add_parameter("k", 1)
    pipe.add_step("Load", "data = [1, 2, 3]")
    pipe.add_step("Sum", "total = sum(data) * k")
    pipe.start()
    pipe.start({"k": 2})
    assert calls == []  # nothing asked for them
    again = pipe.run_step("Sum", {"k": 2})  # this run's and the previous run's: the same
    assert {n: r.status for n, r in again.steps.items()} == {"Load": "Cached", "Sum": "Succeeded"}
    assert again.steps["Load"].reused_from == pipe.executions[1].id and len(calls) == 2
    assert pipe.run_step("Sum", {"k": 3}).result("Sum", "total") == 18


def test_a_listener_with_events_is_called_for_those_only(tmp_path, monkeypatch):
    """`Execution.emit` calls a listener that lists its ``events`` for those alone, and any
    other listener (a function, a bound method, an object without the list) for every event;
    the history's recorder takes no ``step_started``, and the history is whole all the same."""
    from jupyter_pipelines.store.recorder import Recorder

    seen: dict[str, list[str]] = {"function": [], "method": [], "listed": [], "recorder": []}

    class Listed:
        events = frozenset({"step_finished"})

        def __call__(self, event, **fields):
            seen["listed"].append(event)

        def method(self, event, **fields):
            seen["method"].append(event)

    real = Recorder.__call__

    def spy(self, event, **fields):
        seen["recorder"].append(event)
        return real(self, event, **fields)

    listed = Listed()
    p = Pipeline("listened", home=tmp_path / "state")
    p.add_step("A", "x = 1")
    p.add_step("B", "y = x + 1")
    monkeypatch.setattr(Recorder, "__call__", spy)
    ex = p.start(display=False, listeners=[
        lambda event, **fields: seen["function"].append(event), listed.method, listed])
    every = ["execution_started", "step_started", "step_finished", "step_started",
             "step_finished", "execution_finished"]
    assert seen["function"] == seen["method"] == every
    assert seen["listed"] == ["step_finished", "step_finished"]
    assert seen["recorder"] == [e for e in every if e != "step_started"]
    p.workspace.history.settle()
    assert [r["status"] for r in p.workspace.history.step_runs(ex.id)] == ["Succeeded"] * 2
