"""Reusing stored step results: what counts in a cache key, what does not, why a step re-ran,
per-step and per-run switches, expiry, and reuse across a kernel restart.

Every test has its own state folder (conftest's autouse fixture); API pipelines put their
history under ``tmp_path / "state"`` as well.
"""

from __future__ import annotations

import json
import re
import sqlite3
import struct
import time
import zipfile
from types import SimpleNamespace

import pandas as pd
import pytest

from jupyter_pipelines import Execution, Pipeline, current, durations, snapshot
from jupyter_pipelines.errors import DefinitionError
from jupyter_pipelines.source import Context
from jupyter_pipelines.store import keys

from .conftest import run_cell

HELPERS = ("import math\n"
           "def helper(x):\n    return x + 1\n"
           "def inner(x):\n    return x * 2\n"
           "def outer(x):\n    return inner(x) + 1")

# A calls `helper` directly; C calls `outer`, which calls `inner`; B and D are downstream of
# them; E calls nothing of the notebook's but `math`.
STEPS = {
    "A": "xs = [helper(i) for i in range(n)]",
    "B": "total = sum(xs)",
    "C": "y = outer(k)",
    "D": "z = y * 10",
    "E": "root = math.sqrt(n)",
}

CACHED_WHY = "reused the stored result"


def statuses(ex: Execution) -> dict[str, str]:
    return {name: record.status for name, record in ex.steps.items()}


def listed(ex: Execution) -> dict[str, dict]:
    return {item["StepName"]: item for item in ex.list_steps()}


def source_of(ex: Execution, step: str) -> str | None:
    meta = listed(ex)[step].get("Metadata", {})
    return meta.get("Cached", {}).get("SourcePipelineExecutionArn")


def define(door, helpers: str = HELPERS) -> None:
    door.context(helpers)
    door.parameters(n=3, k=1)
    for name, code in STEPS.items():
        door.step(name, code)


def wait_until(deadline: float) -> None:
    """Let wall-clock time pass a point (a condition on the clock, not a fixed sleep)."""
    while time.time() <= deadline:
        time.sleep(0.01)


def api_pipeline(tmp_path, name: str = "caching", helpers: str = HELPERS) -> Pipeline:
    p = Pipeline(name, home=tmp_path / "state")
    p.context = Context.from_cells([helpers])
    p.add_parameter("n", 3)
    p.add_parameter("k", 1)
    for step, code in STEPS.items():
        p.add_step(step, code)
    return p


# -- an unchanged pipeline ----------------------------------------------------------------------


MODEL_CONTEXT = "from sklearn.linear_model import LinearRegression"


def model_pipeline(tmp_path) -> Pipeline:
    p = Pipeline("models", home=tmp_path / "state")
    p.context = Context.from_cells([MODEL_CONTEXT])
    p.add_parameter("slope", 2.0)
    p.add_step("Data", "X = [[0.0], [1.0], [2.0], [3.0]]\ny = [slope * r[0] + 1.0 for r in X]")
    p.add_step("Train", "model = LinearRegression().fit(X, y)", "training")
    p.add_step("Score", "prediction = float(model.predict([[10.0]])[0])")
    p.add_step("Register", "", "register-model", model="model", group="CachingGroup")
    p.add_step("Stop", "f'stopped after {len(y)} rows'", "fail")
    return p


def test_second_start_reuses_every_cacheable_step_and_always_runs_fail(tmp_path):
    p = model_pipeline(tmp_path)
    first = p.start()
    assert first.status == "Failed" and first.failure_reason == "stopped after 4 rows"
    assert statuses(first) == {"Data": "Succeeded", "Train": "Succeeded", "Score": "Succeeded",
                               "Register": "Succeeded", "Stop": "Failed"}

    second = p.start()
    assert statuses(second) == {"Data": "Cached", "Train": "Cached", "Score": "Cached",
                                "Register": "Cached", "Stop": "Failed"}
    for step in ("Data", "Train", "Score", "Register"):
        assert source_of(second, step) == first.id
        assert second.steps[step].reused_from == first.id
    # a fail step runs every time, never standing in for a stored run
    assert source_of(second, "Stop") is None
    assert "always runs" in second.steps["Stop"].why
    assert "a fail step always runs" in p.why("Stop")
    assert second.status == "Failed" and second.failure_reason == first.failure_reason

    assert second.result("Data", "y") == first.result("Data", "y") == [1.0, 3.0, 5.0, 7.0]
    assert second.result("Score", "prediction") == pytest.approx(first.result("Score", "prediction"))
    assert second.result("Score", "prediction") == pytest.approx(21.0)
    assert second.result("Train", "model").coef_.tolist() == pytest.approx([2.0])
    # the same model with the same metrics is not registered twice: the cached step names the
    # version that holds it; --no-cache registers a new one
    versions = [ex.steps["Register"].metadata["RegisterModel"]["Version"] for ex in (first, second)]
    assert versions == [1, 1]
    forced = p.start(cache=False)
    assert forced.steps["Register"].metadata["RegisterModel"]["Version"] == 2


def test_a_cached_step_says_where_its_result_came_from(tmp_path):
    p = api_pipeline(tmp_path)
    first = p.start()
    assert set(statuses(first).values()) == {"Succeeded"}
    assert all(r.why == "it had not run before" for r in first.steps.values())
    second = p.start()
    assert set(statuses(second).values()) == {"Cached"}
    assert all(r.reused_from == first.id for r in second.steps.values())
    message = p.why("A")
    assert CACHED_WHY in message and first.id in message and second.id in message
    assert second.result("B", "total") == first.result("B", "total") == 6


# -- what re-runs when something changes -------------------------------------------------------


def test_editing_a_helper_reruns_its_callers_and_downstream_whose_inputs_changed(door):
    define(door)
    base = door.run()
    assert base.status == "Succeeded"
    assert (base.result("B", "total"), base.result("D", "z")) == (6, 30)

    door.context("def helper(x):\n    return x + 2")  # called by A directly
    ex = door.run()
    assert statuses(ex) == {"A": "Succeeded", "B": "Succeeded", "C": "Cached", "D": "Cached",
                            "E": "Cached"}
    assert ex.steps["A"].why == "a notebook function or class it calls changed since its last run"
    assert ex.steps["B"].why.startswith("its inputs")
    assert ex.result("B", "total") == 9
    why = door.pipeline.why("A")
    assert "a notebook function or class it calls" in why and ex.id in why
    assert "its inputs" in door.pipeline.why("B")

    door.context("def inner(x):\n    return x + x")  # reached through `outer`: same values
    ex = door.run()
    assert statuses(ex) == {"A": "Cached", "B": "Cached", "C": "Succeeded", "D": "Cached",
                            "E": "Cached"}
    assert "a notebook function or class it calls" in ex.steps["C"].why
    assert ex.result("C", "y") == 3  # its output did not change, so D's input digest did not
    assert CACHED_WHY in door.pipeline.why("D")

    door.context("def inner(x):\n    return x * 3")  # transitive, and this time the value changes
    ex = door.run()
    assert statuses(ex) == {"A": "Cached", "B": "Cached", "C": "Succeeded", "D": "Succeeded",
                            "E": "Cached"}
    assert "a notebook function or class it calls" in ex.steps["C"].why
    assert "its inputs" in ex.steps["D"].why
    assert ex.result("D", "z") == 40


def test_comments_and_formatting_do_not_count(door):
    define(door)
    base = door.run()
    door.context("def helper(x):\n    # a comment\n    return (x  +  1)   # another\n\n\n"
                 "def inner(x):\n\n    return x*2")  # reformatted: same syntax tree
    door.step("A", "# make the list\nxs = [helper(i)\n      for i in range(n)]   # same thing")
    door.step("C", "y = outer( k )  # spaced out")
    ex = door.run()
    assert set(statuses(ex).values()) == {"Cached"}, {n: r.why for n, r in ex.steps.items()}
    assert ex.result("B", "total") == base.result("B", "total")


def test_changing_a_parameter_reruns_only_its_readers(door):
    define(door)
    base = door.run()
    ex = door.run(k=5)
    assert statuses(ex) == {"A": "Cached", "B": "Cached", "C": "Succeeded", "D": "Succeeded",
                            "E": "Cached"}
    assert ex.steps["C"].why == "a parameter it reads changed since its last run"
    assert "its inputs" in ex.steps["D"].why
    assert "a parameter it reads" in door.pipeline.why("C")
    assert ex.result("D", "z") == 110

    again = door.run(k=1)  # back to the first value: its stored results stand again
    assert set(statuses(again).values()) == {"Cached"}
    assert again.result("D", "z") == base.result("D", "z")

    ex = door.run(n=4)
    assert statuses(ex) == {"A": "Succeeded", "B": "Succeeded", "C": "Cached", "D": "Cached",
                            "E": "Succeeded"}
    assert ex.steps["E"].why == "a parameter it reads changed since its last run"


def test_editing_the_step_code_names_its_code(tmp_path):
    p = api_pipeline(tmp_path)
    p.start()
    p.add_step("B", "total = sum(xs) + 1")
    ex = p.start()
    assert statuses(ex)["B"] == "Succeeded" and statuses(ex)["A"] == "Cached"
    assert ex.steps["B"].why == "its code changed since its last run"
    assert "its code" in p.why("B")


def test_a_package_version_change_reruns_the_steps_importing_it(tmp_path, monkeypatch):
    p = Pipeline("packages", home=tmp_path / "state")
    p.context = Context.from_cells(["import numpy as np\nimport math"])
    p.add_step("UsesNumpy", "arr_total = int(np.arange(4).sum())")
    p.add_step("NoNumpy", "root = math.sqrt(16)")
    p.add_step("After", "both = arr_total + root")
    first = p.start()
    assert set(statuses(first).values()) == {"Succeeded"}
    assert set(statuses(p.start()).values()) == {"Cached"}

    real = keys.package_version

    def upgraded(module: str) -> str:
        return "numpy==999.0" if module == "numpy" else real(module)

    monkeypatch.setattr(keys, "package_version", upgraded)
    ex = p.start()
    assert statuses(ex) == {"UsesNumpy": "Succeeded", "NoNumpy": "Cached", "After": "Cached"}
    assert ex.steps["UsesNumpy"].why == "a package it imports (its version) changed since its last run"
    assert "a package it imports" in p.why("UsesNumpy")


def test_package_version_is_what_the_key_uses(tmp_path):
    """The version comes from the installed distribution, looked up once per module."""
    import numpy

    assert keys.package_version("numpy") == f"numpy=={numpy.__version__}"
    step = Pipeline("k").add_step("S", "v = np.zeros(1)")
    ctx = Context.from_cells(["import numpy as np"])
    parts = keys.key_parts(step, {}, {}, ctx)
    keys.package_version.cache_clear()
    assert keys.key_parts(step, {}, {}, ctx) == parts  # stable across lookups


def test_the_inputs_part_of_a_step_reading_one_input_is_that_inputs_digest(tmp_path):
    """One input: its own digest (no digest of it; its name is in the code part). None: one
    constant. Several: a digest of their digests by name, which a change to any one changes."""
    p = Pipeline("inputs", home=tmp_path / "state")
    p.add_step("A", "a = 1")
    p.add_step("B", "b = a + 1")
    p.add_step("C", "c = a + b")
    p.add_step("D", "d = 2")
    ex = p.start(display=False)
    digest = ex.steps["A"].refs["a"].digest
    assert ex.steps["B"].key_parts["inputs"] == digest[:32]
    assert ex.steps["A"].key_parts["inputs"] == ex.steps["D"].key_parts["inputs"]  # none
    both = ex.steps["C"].key_parts["inputs"]
    assert both not in (digest[:32], ex.steps["B"].refs["b"].digest[:32])
    assert both == keys._digest({"a": digest, "b": ex.steps["B"].refs["b"].digest})


# -- switching caching off ------------------------------------------------------------------------


def test_cache_false_on_a_step_always_runs_it(tmp_path):
    p = api_pipeline(tmp_path)
    p.add_step("B", STEPS["B"], cache=False)
    p.start()
    ex = p.start()
    assert statuses(ex) == {"A": "Cached", "B": "Succeeded", "C": "Cached", "D": "Cached",
                            "E": "Cached"}
    assert ex.steps["B"].why == "caching is off for this step (--no-cache)"
    assert "caching is off" in p.why("B")


def test_start_with_cache_false_runs_everything(tmp_path):
    p = api_pipeline(tmp_path)
    first = p.start()
    ex = p.start(cache=False)
    assert set(statuses(ex).values()) == {"Succeeded"}
    assert all(r.reused_from is None for r in ex.steps.values())
    assert "--no-cache" in ex.steps["A"].why
    assert ex.result("D", "z") == first.result("D", "z")
    assert set(statuses(p.start()).values()) == {"Cached"}  # and caching is back next time


def test_magic_no_cache_on_a_step_and_on_a_run(ip):
    run_cell(ip, "%%parameters\nn = 3")
    run_cell(ip, "%%step Make\nxs = list(range(n))")
    run_cell(ip, "%%step Sum --no-cache\ntotal = sum(xs)")
    assert current().steps["Sum"].cache is False
    ex = run_cell(ip, "%pipeline run")
    assert statuses(ex) == {"Make": "Cached", "Sum": "Succeeded"}
    assert ex.steps["Sum"].why == "caching is off for this step (--no-cache)"

    ex = run_cell(ip, "%pipeline run --no-cache")
    assert statuses(ex) == {"Make": "Succeeded", "Sum": "Succeeded"}
    assert "--no-cache" in ex.steps["Make"].why
    ex = run_cell(ip, "%pipeline run")
    assert statuses(ex) == {"Make": "Cached", "Sum": "Succeeded"}


# -- expiry -----------------------------------------------------------------------------------------


def test_a_stored_result_expires(tmp_path):
    p = api_pipeline(tmp_path)
    p.add_step("A", STEPS["A"], cache_expire="PT0.05S")
    assert p.steps["A"].cache_expire == pytest.approx(0.05)
    first = p.start()
    t0 = first.steps["A"].end
    wait_until(t0 + 0.1)
    ex = p.start()
    assert statuses(ex)["A"] == "Succeeded"
    assert "expired" in ex.steps["A"].why
    assert "expired" in p.why("A")
    # A made the same value, so nothing downstream re-runs; C never expires
    assert statuses(ex) == {"A": "Succeeded", "B": "Cached", "C": "Cached", "D": "Cached",
                            "E": "Cached"}


def test_expiry_counts_from_when_the_result_was_made_not_when_it_was_reused(tmp_path):
    p = api_pipeline(tmp_path)
    p.add_step("A", STEPS["A"], cache_expire="PT0.6S")
    first = p.start()
    made = first.steps["A"].end
    wait_until(made + 0.2)
    reused = p.start()
    assert statuses(reused)["A"] == "Cached"  # 0.2 s old: still valid
    wait_until(made + 0.7)
    ex = p.start()  # the stored result is 0.7 s old now, past its 0.6 s
    assert statuses(ex)["A"] == "Succeeded", ex.steps["A"].reused_from


def test_a_zero_cache_expire_means_a_stored_result_is_never_reused(tmp_path):
    p = api_pipeline(tmp_path)
    p.add_step("A", STEPS["A"], cache_expire="PT0S")
    assert p.steps["A"].cache_expire == 0
    first = p.start()
    wait_until(first.steps["A"].end + 0.01)
    ex = p.start()
    assert statuses(ex)["A"] == "Succeeded", ex.steps["A"].reused_from
    assert "expired" in ex.steps["A"].why


@pytest.mark.parametrize("value", ["PT0.5S", "P1D", "PT12H", "P1Y2M3W4DT5H6M7S", "P30D"])
def test_cache_expire_accepts_iso_8601_durations(value):
    step = Pipeline("d").add_step("S", "v = 1", cache_expire=value)
    assert step.cache_expire == durations.duration_seconds(value, "S") > 0


@pytest.mark.parametrize("value", ["30 days", "P", "PT", "P1DT", "1D", "", "P-1D"])
def test_a_bad_cache_expire_is_a_definition_error_naming_the_step(value):
    with pytest.raises(DefinitionError, match=r"Step `Slowly`.*ISO-8601"):
        Pipeline("d").add_step("Slowly", "v = 1", cache_expire=value)


def test_magic_cache_expire_flag(ip):
    run_cell(ip, "%%step Quick --cache-expire P1D\nv = 1")
    assert current().steps["Quick"].cache_expire == 86400
    with pytest.raises(DefinitionError, match=r"Step `Bad`.*ISO-8601"):
        run_cell(ip, "%%step Bad --cache-expire P\nv = 2")
    assert "Bad" not in current().steps


# -- after a kernel restart -----------------------------------------------------------------------


def test_a_new_pipeline_object_reuses_the_stored_results(tmp_path):
    first = api_pipeline(tmp_path).start()
    restarted = api_pipeline(tmp_path)  # same home, same definition, nothing in memory
    ex = restarted.start()
    assert set(statuses(ex).values()) == {"Cached"}
    assert all(r.reused_from == first.id for r in ex.steps.values())
    assert ex.result("B", "total") == 6 and ex.result("E", "root") == pytest.approx(3 ** 0.5)

    loaded = api_pipeline(tmp_path).load_execution(first.id)
    assert loaded.status == "Succeeded" and loaded.id == first.id
    assert loaded.result("D", "z") == 30  # outputs load from the store
    assert [e["PipelineExecutionArn"] for e in restarted.list_executions()] == [ex.id, first.id]


def test_magic_after_a_restart_reuses_results_and_reads_the_history(ip, capsys):
    run_cell(ip, HELPERS)
    run_cell(ip, "%%parameters\nn = 3\nk = 1")
    for name, code in STEPS.items():
        run_cell(ip, f"%%step {name}\n{code}")
    first = run_cell(ip, "%pipeline run")
    assert first.status == "Succeeded"
    recorded = len(current().list_executions())

    current().executions.clear()  # what a kernel restart loses
    current()._memory.clear()
    ex = run_cell(ip, "%pipeline run")
    assert set(statuses(ex).values()) == {"Cached"}
    assert ex.result("D", "z") == 30

    table = run_cell(ip, "%pipeline executions")
    assert isinstance(table, pd.DataFrame)
    assert len(table) == recorded + 1
    assert list(table.index[:2]) == [ex.id, first.id]  # newest first
    assert set(table["PipelineExecutionStatus"]) == {"Succeeded"}

    current().executions.clear()
    described = run_cell(ip, "%pipeline describe")
    assert isinstance(described, Execution) and described is not ex
    assert described.id == ex.id and described.status == "Succeeded"
    assert statuses(described) == statuses(ex)
    assert described.result("B", "total") == 6
    older = run_cell(ip, f"%pipeline describe {first.id}")
    assert older.id == first.id and older.result("D", "z") == 30

    capsys.readouterr()
    run_cell(ip, "%pipeline why D")
    out = capsys.readouterr().out
    assert CACHED_WHY in out and ex.steps["D"].reused_from in out


def test_magic_why_prints_what_changed(ip, capsys):
    run_cell(ip, "def scale(v):\n    return v * 2")
    run_cell(ip, "%%step Make\nvals = [scale(i) for i in range(3)]")
    run_cell(ip, "%%step Total\ntotal = sum(vals)")
    run_cell(ip, "def scale(v):\n    return v * 3")
    run_cell(ip, "%pipeline run")
    capsys.readouterr()
    run_cell(ip, "%pipeline why Make")
    out = capsys.readouterr().out
    assert re.search(r"`Make` ran in \S+ because a notebook function or class it calls changed", out)
    run_cell(ip, "%pipeline why Total")
    assert "its inputs" in capsys.readouterr().out
    with pytest.raises(Exception, match=r"Did you mean `Total`"):
        run_cell(ip, "%pipeline why Totl")


def test_step_cell_reruns_upstream_whose_transitive_helper_changed(ip):
    run_cell(ip, "def inner(x):\n    return x * 2\n\ndef outer(x):\n    return inner(x) + 1")
    run_cell(ip, "%%step C\ny = outer(1)")
    run_cell(ip, "%%step D\nz = y * 10")
    assert ip.user_ns["z"] == 30
    run_cell(ip, "def inner(x):\n    return x * 3")  # outer is unchanged; what it calls is not
    run_cell(ip, "%%step D\nz = y * 10")
    ex = current().executions[-1]
    assert ex.steps["C"].status == "Succeeded", ex.steps["C"].reused_from
    assert ip.user_ns["z"] == 40


def test_step_cell_reruns_upstream_whose_direct_helper_changed(ip):
    run_cell(ip, "def inner(x):\n    return x * 2\n\ndef outer(x):\n    return inner(x) + 1")
    run_cell(ip, "%%step C\ny = outer(1)")
    run_cell(ip, "%%step D\nz = y * 10")
    run_cell(ip, "def outer(x):\n    return inner(x) + 2")
    run_cell(ip, "%%step D\nz = y * 10")
    ex = current().executions[-1]
    assert statuses(ex) == {"C": "Succeeded", "D": "Succeeded"}
    assert "a notebook function or class it calls" in ex.steps["C"].why
    assert ip.user_ns["z"] == 40


def test_an_identical_retrained_model_leaves_downstream_cached(tmp_path, monkeypatch):
    """An estimator's stored bytes are a function of the model (pickled, structured arrays'
    padding zeroed; no time stamps), so its digest, and downstream, stand."""
    p = Pipeline("retrain", home=tmp_path / "state")
    p.context = Context.from_cells([MODEL_CONTEXT + "\ndef make_model():\n    return LinearRegression()"])
    p.add_step("Data", "X = [[0.0], [1.0], [2.0]]\ny = [1.0, 3.0, 5.0]")
    p.add_step("Train", "model = make_model().fit(X, y)", "training")
    p.add_step("Score", "prediction = float(model.predict([[10.0]])[0])")
    first = p.start()
    p.context = Context.from_cells([MODEL_CONTEXT + "\ndef make_model():\n"
                                    "    return LinearRegression(fit_intercept=True)"])
    # re-trained an hour later, as far as the zip writer can tell (zip times have a 2 s grain)
    later = time.time
    monkeypatch.setattr(zipfile, "time", SimpleNamespace(time=lambda: later() + 3600,
                                                         localtime=time.localtime))
    ex = p.start()
    assert statuses(ex)["Train"] == "Succeeded"  # its helper changed...
    assert ex.steps["Train"].digests == first.steps["Train"].digests  # ...but not its model
    assert statuses(ex)["Score"] == "Cached", ex.steps["Score"].why


def test_a_parameter_read_through_a_helper_is_part_of_the_key(tmp_path):
    p = Pipeline("indirect", home=tmp_path / "state")
    p.context = Context.from_cells(["def scaled(v):\n    return v * factor"])
    p.add_parameter("factor", 2)
    p.add_step("Scale", "out = scaled(3)")
    assert p.start().result("Scale", "out") == 6  # the helper does see the parameter
    ex = p.start({"factor": 5})
    assert statuses(ex) == {"Scale": "Succeeded"}, ex.steps["Scale"].reused_from
    assert ex.result("Scale", "out") == 15


def test_a_fully_cached_run_is_one_history_transaction_of_copied_rows(tmp_path, monkeypatch):
    """Cached rows computed nothing a kill could lose: they wait for the execution's end and
    are written with it, in one transaction, as copies of the stored rows they reuse (made in
    SQLite, nothing decoded or encoded again)."""
    from jupyter_pipelines.store import writer
    from jupyter_pipelines.store.history import History

    monkeypatch.setattr(writer, "FLUSH_INTERVAL", 3600.0)  # only the end commits
    first = chain_of_three(tmp_path).start(display=False)
    history = chain_of_three(tmp_path).workspace.history
    history.settle()  # the end's commit, made by the history's thread after start() returns
    writes: list[tuple] = []
    real = History.record_steps

    def spy(self, execution_id, rows, finish=None, copies=()):
        writes.append(([r[0] for r in rows], [c[1] for c in copies], finish is not None))
        return real(self, execution_id, rows, finish, copies)

    monkeypatch.setattr(History, "record_steps", spy)
    cached = chain_of_three(tmp_path).start(display=False)
    history.settle()
    assert writes == [([], ["A", "B", "C"], True)]
    made = {r["step"]: r for r in history.step_runs(first.id)}
    copied = {r["step"]: r for r in history.step_runs(cached.id)}
    assert {n: r["status"] for n, r in copied.items()} == {"A": "Cached", "B": "Cached", "C": "Cached"}
    for name, row in copied.items():
        assert row["cache_source"] == first.id and row["attempts"] == 0
        assert (row["outputs"], row["key_parts"], row["cache_key"]) == (
            made[name]["outputs"], made[name]["key_parts"], made[name]["cache_key"])
        assert row["start"] == cached.steps[name].start and row["why"] is None
    assert chain_of_three(tmp_path).start(display=False).result("C", "z") == 3  # and it hits


def test_cached_rows_are_copied_a_chunk_of_rows_per_statement(tmp_path, monkeypatch):
    """The copies are made by a few statements of many rows each (`schema.CHUNK`): split
    over several, every row is still the stored one's, in the run's order."""
    from jupyter_pipelines.store import schema

    monkeypatch.setattr(schema, "CHUNK", 2)  # three copies: a statement of 2, one of 1
    first = chain_of_three(tmp_path).start(display=False)
    cached = chain_of_three(tmp_path).start(display=False)
    history = chain_of_three(tmp_path).workspace.history
    made = {r["step"]: r for r in history.step_runs(first.id)}
    copied = history.step_runs(cached.id)
    assert [r["step"] for r in copied] == ["A", "B", "C"]
    for row in copied:
        source = made[row["step"]]
        assert (row["status"], row["cache_source"], row["attempts"]) == ("Cached", first.id, 0)
        assert {k: row[k] for k in ("kind", "outputs", "key_parts", "cache_key", "stdout")} == \
            {k: source[k] for k in ("kind", "outputs", "key_parts", "cache_key", "stdout")}
        record = cached.steps[row["step"]]
        assert (row["start"], row["end"]) == (record.start, record.end)


def test_a_step_that_runs_is_journaled_at_once_and_committed_in_a_batch(tmp_path, monkeypatch):
    """A finished step is appended to the execution's journal as it ends (a kill loses
    nothing that finished); the database gets the rows in one transaction at the end (or
    FLUSH_INTERVAL after they wait), and the journal is then removed."""
    from jupyter_pipelines.store import journal, writer

    monkeypatch.setattr(writer, "FLUSH_INTERVAL", 3600.0)
    p = chain_of_three(tmp_path)
    p.add_step("Look", "import glob, json, sqlite3\n"  # what another process sees meanwhile
               f"_j = glob.glob({str(tmp_path / 'state' / 'journal' / '*.jsonl')!r})\n"
               "_lines = open(_j[0], 'rb').read().split(b'\\0')[0].splitlines()\n"  # (zeros past
               "_lines = [json.loads(l) for l in _lines]\n"  # the lines if mapped)
               "journaled = [l['run'][0] if 'run' in l else list(l) for l in _lines]\n"
               f"made = glob.glob({str(tmp_path / 'state' / 'history.db')!r})\n"
               "looked = z", cache=False)
    ex = p.start(display=False)
    assert ex.status == "Succeeded"
    # the execution's start and its (new) version first: the first commit records them
    assert ex.result("Look", "journaled") == [["start"], ["version"], "A", "B", "C"]
    assert ex.result("Look", "made") == []  # a new state folder's database: by that commit
    rows = {r["step"]: r["status"] for r in p.workspace.history.step_runs(ex.id)}
    assert rows == dict.fromkeys("ABC", "Succeeded") | {"Look": "Succeeded"}
    left = [f.name for f in (tmp_path / "state" / "journal").iterdir()]
    assert left in ([], [journal.spare_name()])  # (at most this process's spare: zeros)


def test_a_running_step_shows_executing_to_other_readers_within_the_flush_interval(tmp_path):
    """While a step runs, the steps before it and its own Executing row reach the database
    (FLUSH_INTERVAL later, from the history's thread), so another process sees the run."""
    p = chain_of_three(tmp_path)
    p.add_step("Wait", "import os, sqlite3, time\n"  # (the first commit makes the database)
               f"_path = {str(tmp_path / 'state' / 'history.db')!r}\n"
               "_deadline, seen = time.monotonic() + 60, {}\n"
               "while time.monotonic() < _deadline and seen.get('Wait') != 'Executing':\n"
               "    time.sleep(0.01)\n"
               "    try:\n"
               "        with sqlite3.connect(f'file:{_path}?mode=ro', uri=True) as _db:\n"
               "            seen = dict(_db.execute('SELECT step, status FROM step_runs'))\n"
               "        _db.close()\n"
               "    except sqlite3.OperationalError:\n"  # (not made yet, or being made)
               "        pass\n"
               "done = z", cache=False)
    ex = p.start(display=False)
    assert ex.result("Wait", "seen") == dict.fromkeys("ABC", "Succeeded") | {"Wait": "Executing"}
    rows = {r["step"]: r["status"] for r in p.workspace.history.step_runs(ex.id)}
    assert rows["Wait"] == "Succeeded"


def chain_of_three(tmp_path, code: str = "z = y + 1") -> Pipeline:
    p = Pipeline("batched", home=tmp_path / "state")
    p.add_step("A", "x = 1")
    p.add_step("B", "y = x + 1")
    p.add_step("C", code)
    return p


def test_the_memoised_key_parts_equal_the_ones_made_afresh(tmp_path):
    """`CacheKeys` (what a run uses: fixed parts memoised per step definition and context)
    gives the same parts as `key_parts`, so stored results keep matching."""
    ctx = Context.from_cells([HELPERS, "import numpy as np"])
    p = Pipeline("keys", context=ctx)
    p.add_parameter("n", 3)
    p.add_parameter("k", 2.5)
    p.add_step("Uses", "v = np.zeros(n)\nw = outer(k) + helper(1)", outputs=["v", "w"])
    p.add_step("Plain", "u = 1", depends_on=["Uses"])
    p.add_step("Inputs", "t = float(v.sum()) + w")
    values = {"n": 3, "k": 2.5}
    made = keys.CacheKeys(ctx, values)
    for step in p.steps.values():
        reads = {n: values[n] for n in keys.parameters_read(step, ctx, values)}
        for digests in ({}, {"v": "ab" * 16, "w": "cd" * 16}, {"données": "ef" * 16}):
            expected = keys.key_parts(step, reads, digests, ctx)
            assert made.parts(step, digests) == expected
            assert made.parts(step, digests) == expected  # memoised: the same again
            assert keys.cache_key(expected) == keys._digest([expected[k] for k in keys.PARTS])
            key, parts = made.key(step, digests)  # the key and the parts' JSON, made directly
            assert (key, parts) == (keys.cache_key(expected), expected)
            assert keys.parts_json(parts) == json.dumps(expected)
    again = keys.CacheKeys(ctx, {"n": 4, "k": 2.5})  # another run, other values
    assert again.parts(p.steps["Uses"], {})["parameters"] != made.parts(p.steps["Uses"], {})["parameters"]


def test_what_changed_since_a_run_is_read_from_its_parts_text_as_from_its_parts():
    """`changed_since` (the text a history row keeps, compared without parsing when only the
    inputs' part can differ) says what `changed_parts` says of the parsed parts, whichever
    parts changed, and for a text written otherwise (spaces, another order, a short value)."""
    import itertools

    now = keys.KeyParts({p: f"{i:x}" * 32 for i, p in enumerate(keys.PARTS, start=1)})
    now.around = tuple(keys.parts_json(dict(now)).split(now["inputs"]))
    assert now.json == json.dumps(dict(now))
    twin = keys.KeyParts(now)  # parts made of the same texts: only the inputs' part compared
    twin.around = now.around
    assert keys.changed_since(twin, now) == []
    twin["inputs"] = "e" * 32
    assert keys.changed_since(twin, now) == ["inputs"]
    for count in range(len(keys.PARTS) + 1):
        for changed in itertools.combinations(keys.PARTS, count):
            before = {p: ("f" * 32 if p in changed else v) for p, v in now.items()}
            expected = keys.changed_parts(before, now)
            assert expected == list(changed)
            assert keys.changed_since(keys.parts_json(before), now) == expected
            assert keys.changed_since(json.dumps(before, indent=1), now) == expected
            assert keys.changed_since(json.dumps(dict(reversed(before.items()))), now) == expected
            assert keys.changed_since(before, now) == expected
    short = {**now, "inputs": "ab"}
    assert keys.changed_since(json.dumps(short), now) == ["inputs"]
    assert keys.changed_since(None, now) == [] and keys.changed_since("", now) == []


def test_a_records_row_is_what_step_row_makes_of_its_fields(tmp_path):
    """`record_row` (the run's fast path) writes the same values as `schema.step_row`."""
    from jupyter_pipelines.store.rows import record_row
    from jupyter_pipelines.store.schema import step_row

    p = Pipeline("rows", home=tmp_path / "state")
    p.add_parameter("t", 2)
    p.add_step("Make", "x = {'é': [1.5, None]}\nbig = list(range(200))")
    p.add_step("Check", "x['é'][0] < t", kind="condition", if_steps=["Then"])
    p.add_step("Then", "y = 1", depends_on=["Check"])
    ex = p.start(display=False)
    store = p.workspace.artifacts
    # a small JSON value keeps its text (`inline`), a file its identity when verified (`seen`)
    assert ex.steps["Make"].refs["x"].inline is not None and ex.steps["Make"].refs["big"].inline is None
    for record in ex.steps.values():
        fields = {"step": record.name, "kind": record.kind, "status": record.status,
                  "start": record.start, "end": record.end, "attempts": record.attempts,
                  "cache_key": record.cache_key, "key_parts": record.key_parts,
                  "cache_source": record.reused_from,
                  "outputs": {n: r.as_dict() if r.inline is not None
                              else {**r.as_dict(), "seen": store.seen(r)}
                              for n, r in record.refs.items()},
                  "metadata": record.metadata or None, "stdout": record.stdout,
                  "stderr": record.stderr, "failure_reason": record.failure_reason,
                  "traceback": record.traceback, "why": record.why}
        assert record_row(record, store) == step_row(fields), record.name


def test_a_journal_line_reads_back_as_the_records_row(tmp_path):
    """`journal_line` (what a run appends as each step ends; the usual line made from pieces,
    any other through the JSON encoder) reads back (`journal.read`, what a replay after a kill
    writes) as the very row `record_row` makes: a quiet step, one that prints, a condition
    (metadata), a failed step and a skipped one."""
    from jupyter_pipelines.store import journal
    from jupyter_pipelines.store.rows import journal_line, record_row

    p = Pipeline("lines", home=tmp_path / "state")
    p.add_step("Make", "x = {'é': [1.5, None]}\nbig = list(range(200))\nname = 'a \"b\"\\n'")
    p.add_step("Say", "print('hi')\ny = 2")
    p.add_step("Check", "x['é'][0] < 2", kind="condition", if_steps=["Then"], else_steps=["Skip"])
    p.add_step("Then", "z = 1 / 0", depends_on=["Check"])
    p.add_step("Skip", "w = 1", depends_on=["Check"])
    ex = p.start(display=False)
    assert {n: r.status for n, r in ex.steps.items()} == {
        "Make": "Succeeded", "Say": "Succeeded", "Check": "Succeeded", "Then": "Failed",
        "Skip": "Skipped"}
    store = p.workspace.artifacts
    path = tmp_path / "one.jsonl"
    for record in ex.steps.values():
        path.write_text(journal_line(record, store) + "\n")
        rows, end = journal.read(path, 16)
        assert (rows, end) == ([record_row(record, store)], None), record.name
    path.write_text(json.dumps(record_row(ex.steps["Say"], store)) + "\n")  # a line of old
    assert journal.read(path, 16) == ([record_row(ex.steps["Say"], store)], None)
    make = ex.steps["Make"]
    hexes = f'"{struct.pack("<d", make.start).hex()}", "{struct.pack("<d", make.end).hex()}"'
    assert f'"Make", "processing", "Succeeded", {hexes}, ' in journal_line(make, store)
    old = journal_line(make, store).replace(hexes, f'"{make.start.hex()}", "{make.end.hex()}"')
    path.write_text(old + "\n")  # times as `float.hex` texts, as earlier versions wrote them
    assert journal.read(path, 16) == ([record_row(make, store)], None)


def test_an_executions_end_reads_back_with_the_exact_times_of_its_cached_steps(tmp_path):
    """The end a run journals (`end_line`: its status, and the Cached rows still to copy, their
    times written as the hex of their bytes) reads back with the very times, as does an end of
    old (times as numbers, or `float.hex` texts); a time that is not one is dropped, not
    misread."""
    from jupyter_pipelines.store import journal
    from jupyter_pipelines.store.rows import end_line

    wide(tmp_path, steps=2).start(display=False)
    again = wide(tmp_path, steps=2).start(display=False)
    assert {r.status for r in again.steps.values()} == {"Cached"}
    copies = [(i + 1, n, r.start, r.end) for i, (n, r) in enumerate(again.steps.items())]
    copies.append((9, "Unstarted", None, None))
    path = tmp_path / "end.jsonl"
    path.write_text(end_line(("Succeeded", again.end_time, None), copies) + "\n")
    rows, end = journal.read(path, 16)
    assert rows == [] and end["end"] == ["Succeeded", again.end_time, None]
    assert [tuple(c) for c in end["copies"]] == copies
    assert f'"{struct.pack("<d", copies[0][2]).hex()}"' in path.read_text()
    path.write_text(json.dumps({"end": ["Failed", 3.0, "x"], "copies": [
        [7, "S0", 1.25, "zz"], [8, "S1", (1.5).hex(), "0123456789abcdeX"]]}) + "\n")
    assert journal.read(path, 16)[1]["copies"] == [[7, "S0", 1.25, None], [8, "S1", 1.5, None]]


def counting(monkeypatch, owner, *names: str) -> dict[str, int]:
    """Count the calls of ``owner``'s methods ``names`` (still calling them)."""
    calls = dict.fromkeys(names, 0)
    for name in names:
        real = getattr(owner, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)
    return calls


def wide(tmp_path, steps: int = 12, name: str = "wide") -> Pipeline:
    p = Pipeline(name, home=tmp_path / "state")
    p.add_parameter("n", 1)
    for i in range(steps):
        p.add_step(f"S{i}", f"x{i} = n + {i}")
    p.add_step("Total", " + ".join(f"x{i}" for i in range(steps)).join(["total = ", ""]))
    return p


def test_a_step_with_a_new_key_asks_the_history_nothing(tmp_path, monkeypatch):
    """A first run asks SQLite nothing per step (no stored run can match); a re-run whose
    steps all changed reads the few stored keys once instead of a query a step, and says why
    each step ran from the latest execution's runs, read at once."""
    from jupyter_pipelines.store.history import History

    calls = counting(monkeypatch, History, "cached_run", "last_parts", "latest_execution",
                     "latest_runs", "run_parts", "stored_keys")
    first = wide(tmp_path).start(display=False)
    assert set(statuses(first).values()) == {"Succeeded"}
    assert calls == {"cached_run": 0, "last_parts": 0, "latest_execution": 1, "latest_runs": 0,
                     "run_parts": 0, "stored_keys": 1}
    assert {r.why for r in first.steps.values()} == {"it had not run before"}

    calls.update(dict.fromkeys(calls, 0))
    changed = wide(tmp_path).start({"n": 2}, display=False)
    assert set(statuses(changed).values()) == {"Succeeded"}
    # every key is new: only what `why` compares is needed of the latest execution, and this
    # process ran it: nothing is read back
    assert calls == {"cached_run": 0, "last_parts": 0, "latest_execution": 1, "latest_runs": 0,
                     "run_parts": 0, "stored_keys": 1}
    whys = {n: r.why for n, r in changed.steps.items()}
    assert whys.pop("Total") == "its inputs (an upstream step's output) changed since its last run"
    assert set(whys.values()) == {"a parameter it reads changed since its last run"}

    calls.update(dict.fromkeys(calls, 0))
    again = wide(tmp_path).start({"n": 1}, display=False)  # the first run's results, not the latest
    assert set(statuses(again).values()) == {"Cached"}
    assert again.result("Total", "total") == first.result("Total", "total")
    assert calls["cached_run"] == 13 and calls["last_parts"] == 0
    assert calls["latest_runs"] == 1 and calls["run_parts"] == 0  # every key is a stored one


def test_a_large_history_is_asked_a_step_at_a_time_with_the_same_outcome(tmp_path, monkeypatch):
    """A history too big to read at once when a process first asks is asked a step at a time,
    and reuses, misses and explains exactly as with its keys read."""
    from jupyter_pipelines.store.history import History
    from jupyter_pipelines.store.recorder import Recorder
    from jupyter_pipelines.store.workspace import Workspace

    monkeypatch.setattr(Recorder, "_small", property(lambda self: 0))
    calls = counting(monkeypatch, History, "cached_run", "last_parts", "latest_runs", "run_parts")
    first = wide(tmp_path, steps=3).start(display=False)
    assert set(statuses(first).values()) == {"Succeeded"} and calls["cached_run"] == 0  # first run
    Workspace._open.cache_clear()  # as a new process would: the history is too big to read
    changed = wide(tmp_path, steps=3).start({"n": 2}, display=False)
    # no stored keys to rule a key out: the latest execution is read whole at the first look-up
    assert calls == {"cached_run": 4, "last_parts": 0, "latest_runs": 1, "run_parts": 0}
    assert changed.steps["S0"].why == "a parameter it reads changed since its last run"
    again = wide(tmp_path, steps=3).start({"n": 1}, display=False)
    assert set(statuses(again).values()) == {"Cached"}
    assert {r.reused_from for r in again.steps.values()} == {first.id}


def test_a_result_stored_by_another_pipeline_is_found_by_a_first_run(tmp_path):
    """The stored keys read at once are every pipeline's: a first run of another pipeline
    reuses a step stored by this one (its key is the same)."""
    made = wide(tmp_path, steps=2, name="one").start(display=False)
    other = wide(tmp_path, steps=2, name="two").start(display=False)
    assert set(statuses(other).values()) == {"Cached"}
    assert {r.reused_from for r in other.steps.values()} == {made.id}


def test_the_stored_keys_are_read_once_then_only_the_rows_added_since(tmp_path, monkeypatch):
    """A process reads the history's keys once; each later run reads only the rows added since
    by others (the rows it committed itself it knows already), and a row still Executing when
    read is read again once it finished (its key comes then)."""
    from jupyter_pipelines.store.history import History

    p = wide(tmp_path, steps=2)
    p.start(display=False)
    history = p.workspace.history
    history.settle()
    read: list[int] = []
    real = History._rows

    def spy(self, sql, args, factory=None):
        rows = real(self, sql, args, factory)
        if sql.startswith("SELECT rowid, cache_key"):
            read.append(len(rows))
        return rows

    monkeypatch.setattr(History, "_rows", spy)
    wide(tmp_path, steps=2).start({"n": 2}, display=False)  # 3 new rows, committed here
    history.settle()
    assert read[-1] == 0
    with sqlite3.connect(history.path) as other:  # another process's finished step
        other.execute("INSERT INTO step_runs (execution_id, step, kind, status, cache_key) "
                      "VALUES ('another', 'Quick', 'processing', 'Succeeded', 'k-quick')")
    other.close()
    assert "k-quick" in history.stored_keys(limit=10**6) and read[-1] == 1
    with history._tx() as db:  # another process's step, still running: no key yet
        db.execute("INSERT INTO step_runs (execution_id, step, kind, status) VALUES "
                   "('other', 'Slow', 'processing', 'Executing')")
    keys = set(history.stored_keys(limit=10**6))
    with history._tx() as db:  # ... then finished, its row updated in place
        db.execute("UPDATE step_runs SET status = 'Succeeded', cache_key = 'k-slow' "
                   "WHERE execution_id = 'other'")
    assert "k-slow" not in keys and "k-slow" in history.stored_keys(limit=10**6)


def test_a_run_writes_nothing_to_the_database_itself(tmp_path, monkeypatch):
    """A run's start, its version's document and its steps are all committed by the history's
    thread (a run in a new state folder does not even wait for the database to be made): the
    run's own thread only journals them. The version's id is known once that commit is made,
    which asking for it waits for."""
    import threading

    from jupyter_pipelines.store.history import History

    writers = []
    real = History._tx

    def watched(self):
        writers.append(threading.current_thread() is threading.main_thread())
        return real(self)

    monkeypatch.setattr(History, "_tx", watched)
    p = chain_of_three(tmp_path)
    first = p.start(display=False)
    assert first.status == "Succeeded" and not any(writers)  # (none from the run)
    history = p.workspace.history
    assert first.version_id == 1 and writers and not any(writers)  # (waited for: its commit)
    (doc,) = history.executions()
    assert doc["status"] == "Succeeded" and doc["version_id"] == 1
    assert history.version(1) == snapshot.to_document(p)
    p.add_step("C", "z = y + 2")  # a new version
    second = p.start(display=False)
    assert second.version_id == 2 and history.version(2) == snapshot.to_document(p)
    again = p.start(display=False)  # a version the history has: its id known at once
    assert again.version_id == 2 and not any(writers)
    assert [e["status"] for e in history.executions()] == ["Succeeded"] * 3


def test_a_rerun_reads_the_latest_runs_its_process_kept_unless_another_wrote_since(tmp_path,
                                                                                   monkeypatch):
    """The history's thread reads an execution's runs once its end is committed
    (`History.remember_runs`), so a re-run in the same process reuses them with no query; once
    another connection (another process) has written to the history, or a run was marked
    invalid, they are read again. The same steps are Cached either way."""
    import sqlite3
    from contextlib import closing

    from jupyter_pipelines.store.history import History

    home = tmp_path / "state"
    wide(tmp_path, steps=3).start(display=False)
    queries = []
    real = History._rows
    monkeypatch.setattr(History, "_rows", lambda self, sql, *args: (
        queries.append(sql == self._latest_sql), real(self, sql, *args))[1])

    def rerun():
        queries.clear()
        ex = wide(tmp_path, steps=3).start(display=False)
        assert {r.status for r in ex.steps.values()} == {"Cached"}
        return sum(queries)

    assert rerun() == 0  # kept as the first run ended
    assert rerun() == 0  # and as the re-run ended
    history = wide(tmp_path, steps=3).workspace.history
    history.settle()  # (kept once the end is committed, after `start` returns)
    with closing(sqlite3.connect(home / "history.db")) as db, db:  # another process writes
        db.execute("INSERT INTO pipeline_versions (pipeline, digest, definition, created) "
                   "VALUES ('other', 'd', '{}', 0)")
    assert rerun() == 1  # read again
    history.settle()
    history.mark_invalid("no-such-digest", "a test")
    assert rerun() == 1


def test_why_a_step_ran_is_told_from_memory_only_of_the_latest_execution(tmp_path, monkeypatch):
    """A run says why each step ran from the key parts its process kept of the pipeline's last
    execution it ran (`History.remember_parts`), no read; when another process ran the pipeline
    since, that execution is the latest and its parts are read from the history: the same
    explanations either way."""
    from jupyter_pipelines.store.history import History
    from jupyter_pipelines.store.workspace import Workspace

    wide(tmp_path, steps=3).start(display=False)
    calls = counting(monkeypatch, History, "run_parts")
    here = wide(tmp_path, steps=3).start({"n": 2}, display=False)
    assert calls["run_parts"] == 0
    Workspace._open.cache_clear()  # another process: it keeps nothing of what this one ran
    there = wide(tmp_path, steps=3).start({"n": 3}, display=False)
    assert calls["run_parts"] == 1
    assert [r.why for r in there.steps.values()] == [r.why for r in here.steps.values()]
    assert there.steps["Total"].why == ("its inputs (an upstream step's output) changed since "
                                        "its last run")
    Workspace._open.cache_clear()
    back = wide(tmp_path, steps=3)  # the first process's history object: an older execution
    back.workspace.history.remember_parts("wide", here.id, {
        n: (r.status, r.key_parts) for n, r in here.steps.items()})
    again = back.start({"n": 4}, display=False)
    assert calls["run_parts"] == 2  # `there` is the latest, not `here`: read, not remembered
    assert [r.why for r in again.steps.values()] == [r.why for r in here.steps.values()]
