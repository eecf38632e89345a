"""Fault injection, run time and definition time: a user's mistake through every door (the
Python API, the magics in a real IPython shell, the CLI) gives one clear error naming the
culprit, the kernel stays usable, and nothing stored is lost (the history says Failed, never
a stale Executing; a refused redefinition leaves the previous definition in place)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from jupyter_pipelines import Pipeline, current, registry
from jupyter_pipelines.cli import main
from jupyter_pipelines.errors import (
    DefinitionError,
    DuplicateOutputError,
    ParameterError,
    PipelineError,
    StepFailed,
)

from .conftest import run_cell


def write_notebook(path: Path, cells: list[str]) -> Path:
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), path)
    return path


def history_statuses(pipeline: Pipeline) -> list[str]:
    return [e["PipelineExecutionStatus"] for e in pipeline.list_executions()]


# -- 1. sys.exit() and friends inside a step ------------------------------------------------

EXITS = {
    "sys.exit(3)": ("import sys\nsys.exit(3)", "3"),
    "exit()": ("x = 1\nexit()", "None"),
    "quit(2)": ("quit(2)", "2"),
    "raise SystemExit(3)": ("raise SystemExit(3)", "3"),
    "a notebook helper calling sys.exit": ("stop_here()", "7"),
}


@pytest.mark.parametrize("label", list(EXITS))
def test_sys_exit_in_a_step_fails_the_step_through_the_api(tmp_path, label):
    from jupyter_pipelines.source import Context

    code, exit_code = EXITS[label]
    p = Pipeline("exits", home=tmp_path / "state",
                 context=Context.from_cells(["import sys\ndef stop_here():\n    sys.exit(7)"]))
    p.add_step("Make", code)
    p.add_step("After", "y = 2", depends_on=["Make"])
    ex = p.start()  # returns: SystemExit did not escape
    desc = ex.describe()
    assert desc["PipelineExecutionStatus"] == "Failed"
    reason = desc["FailureReason"]
    assert "Step `Make`" in reason and "sys.exit" in reason and f"exit code {exit_code}" in reason
    steps = {s["StepName"]: s["StepStatus"] for s in ex.list_steps()}
    assert steps["Make"] == "Failed" and steps.get("After", "NotRun") != "Succeeded"
    assert history_statuses(p) == ["Failed"]  # not left Executing
    assert not sys.stdin or not getattr(sys.stdin, "closed", False)  # exit() did not close it
    p.add_step("Make", "x = 1")  # and the pipeline is still usable
    assert p.start().describe()["PipelineExecutionStatus"] == "Succeeded"


def test_sys_exit_in_a_step_on_a_thread_pool_fails_only_that_step(tmp_path):
    p = Pipeline("threads", home=tmp_path / "state")
    p.add_step("Quits", "import sys\nsys.exit(5)")
    p.add_step("Independent", "z = 1")
    with ThreadPoolExecutor(2) as pool:
        ex = p.start(executor=pool)
    steps = {s["StepName"]: s["StepStatus"] for s in ex.list_steps()}
    assert steps == {"Quits": "Failed", "Independent": "Succeeded"}
    assert "`Quits`" in ex.describe()["FailureReason"] and "exit code 5" in ex.describe()["FailureReason"]
    assert history_statuses(p) == ["Failed"]


def test_sys_exit_in_a_models_predict_function_fails_the_transform(tmp_path):
    from jupyter_pipelines.source import Context

    p = Pipeline("predict", home=tmp_path / "state",
                 context=Context.from_cells(["import sys\nfrom sklearn.dummy import DummyRegressor"]))
    p.add_step("Train", "model = DummyRegressor().fit([[0], [1]], [0, 1])\nrows = [[0], [1]]",
               kind="training")
    p.add_step("Package", "def predict(model, data):\n    sys.exit(9)", kind="create-model",
               model="model")
    p.add_step("Score", "", kind="transform", model="Package", data="rows")
    ex = p.start()
    assert ex.describe()["PipelineExecutionStatus"] == "Failed"
    assert "Step `Score`" in ex.describe()["FailureReason"]
    assert "exit code 9" in ex.describe()["FailureReason"]
    assert history_statuses(p) == ["Failed"]


def test_sys_exit_in_a_step_cell_fails_the_cell_and_the_kernel_lives_on(ip):
    run_cell(ip, "import sys")
    with pytest.raises(StepFailed) as info:
        run_cell(ip, "%%step Quitter\nsys.exit(3)")
    assert "Step `Quitter`" in str(info.value) and "exit code 3" in str(info.value)
    assert history_statuses(current()) == ["Failed"]
    assert run_cell(ip, "1 + 1") == 2  # the shell still runs cells


def test_sys_exit_under_pipeline_run_ends_the_execution_failed(ip):
    run_cell(ip, "%%step Fine\na = 1")
    run_cell(ip, "import sys\ndef bail():\n    sys.exit('no more')")
    with pytest.raises(StepFailed):
        run_cell(ip, "%%step Bail\nbail()\nb = a")
    ex = run_cell(ip, "%pipeline run")
    assert ex.describe()["PipelineExecutionStatus"] == "Failed"
    assert "Step `Bail`" in ex.describe()["FailureReason"]
    assert "'no more'" in ex.describe()["FailureReason"]
    assert history_statuses(current())[0] == "Failed"


def test_sys_exit_headless_exits_1_and_records_failed(tmp_path):
    nb = write_notebook(tmp_path / "quits.ipynb", [
        "import sys", "%%step First\na = 1", "%%step Quits\nb = a\nsys.exit(3)"])
    env = {**os.environ, "JUPYTER_PIPELINES_HOME": str(tmp_path / "state")}
    done = subprocess.run([sys.executable, "-m", "jupyter_pipelines", "run", str(nb), "--json"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1, done.stderr  # not 3: the step's exit code never ends the CLI
    doc = json.loads(done.stdout)
    assert doc["PipelineExecutionStatus"] == "Failed"
    assert "Step `Quits`" in doc["FailureReason"] and "sys.exit" in doc["FailureReason"]
    listing = subprocess.run([sys.executable, "-m", "jupyter_pipelines", "executions", "--notebook",
                              str(nb), "--json"], capture_output=True, text=True, env=env,
                             timeout=300)
    rows = json.loads(listing.stdout)["PipelineExecutionSummaries"]
    assert [e["PipelineExecutionStatus"] for e in rows] == ["Failed"]


def test_keyboard_interrupt_in_a_step_still_stops_the_execution(tmp_path):
    p = Pipeline("interrupted", home=tmp_path / "state")
    p.add_step("Slow", "raise KeyboardInterrupt")
    ex = p.start()
    assert ex.describe()["PipelineExecutionStatus"] == "Stopped"
    assert "interrupt" in ex.describe()["FailureReason"].lower()
    assert history_statuses(p) == ["Stopped"]


# -- 2. non-finite Float overrides ------------------------------------------------------------

@pytest.mark.parametrize("value", [float("nan"), float("inf"), -math.inf, "nan", "-Infinity"])
def test_non_finite_float_override_is_refused_through_the_api(tmp_path, value):
    p = Pipeline("floats", home=tmp_path / "state")
    p.add_parameter("thr", 6.0)
    p.add_step("Check", "ok = thr > 0")
    with pytest.raises(ParameterError) as info:
        p.start(parameters={"thr": value})
    assert "`thr`" in str(info.value) and repr(value) in str(info.value)
    assert "finite" in str(info.value)
    assert p.list_executions() == []  # refused before anything ran


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_float_override_is_refused_by_the_magic(ip, value):
    run_cell(ip, "%%parameters\nthr = 6.0")
    run_cell(ip, "%%step Check\nok = thr > 0")
    with pytest.raises(ParameterError) as info:
        run_cell(ip, f"%pipeline run --param thr={value}")
    assert "`thr`" in str(info.value) and repr(value) in str(info.value)


@pytest.mark.parametrize("value", ["-inf", "NaN"])
def test_non_finite_float_override_exits_2_on_the_cli(tmp_path, capsys, value):
    nb = write_notebook(tmp_path / "floats.ipynb", ["%%parameters\nthr = 6.0", "%%step Check\nok = thr > 0"])
    assert main(["run", str(nb), "--param", f"thr={value}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "`thr`" in err and repr(value) in err


# -- 3. a parameter and a step output with one name ------------------------------------------

def test_parameters_cell_naming_a_step_output_is_refused_and_changes_nothing(ip):
    run_cell(ip, "%%step Make\nxs = [1, 2]")
    with pytest.raises(DuplicateOutputError) as info:
        run_cell(ip, "%%parameters\nlimit = 3\nxs = 1")
    assert "`xs`" in str(info.value) and "`Make`" in str(info.value)
    assert ip.user_ns["xs"] == [1, 2]  # the step's output was not overwritten
    assert "limit" not in current().parameters and "xs" not in current().parameters
    run_cell(ip, "_ex = %pipeline run")
    assert ip.user_ns["_ex"].describe()["PipelineExecutionStatus"] == "Succeeded"


def test_step_cell_outputting_a_parameter_is_refused_and_keeps_the_old_step(ip):
    run_cell(ip, "%%parameters\nxs = 1")
    run_cell(ip, "%%step Make\nys = xs + 1")
    with pytest.raises(DuplicateOutputError) as info:
        run_cell(ip, "%%step Make\nxs = 5")
    assert "`Make`" in str(info.value) and "`xs`" in str(info.value)
    assert current().steps["Make"].outputs == ("ys",)
    assert ip.user_ns["xs"] == 1


def test_api_refuses_the_clash_in_both_orders(tmp_path):
    p = Pipeline("clash", home=tmp_path / "state")
    p.add_step("Make", "xs = [1]")
    with pytest.raises(DuplicateOutputError, match="Parameter `xs`.*step `Make`"):
        p.add_parameter("xs", 1)
    assert "xs" not in p.parameters
    p.add_parameter("n", 1)
    with pytest.raises(DuplicateOutputError, match="Step `Other` outputs `n`"):
        p.add_step("Other", "n = 2")
    assert "Other" not in p.steps


def test_headless_notebook_with_the_clash_exits_2_naming_the_cell(tmp_path, capsys):
    nb = write_notebook(tmp_path / "clash.ipynb", ["%%parameters\nxs = 1", "%%step Make\nxs = 2"])
    assert main(["run", str(nb)]) == 2
    err = capsys.readouterr().err
    assert "cell 2" in err and "`Make`" in err and "`xs`" in err


# -- 4. two cells defining one step -------------------------------------------------------------

def _in_cell(ip, monkeypatch, cell_id: str | None, source: str):
    """Run ``source`` as the front end would for the cell ``cell_id`` (JupyterLab sends the
    cell's id as ``cellId`` in the execute_request's metadata)."""
    header = {"metadata": {"cellId": cell_id}} if cell_id else {}
    monkeypatch.setattr(ip, "parent_header", header, raising=False)
    return run_cell(ip, source)


def test_a_second_cell_defining_the_same_step_is_refused(ip, monkeypatch):
    _in_cell(ip, monkeypatch, "cell-a", "%%step Train --kind processing\nmodel_v = 1")
    with pytest.raises(DefinitionError) as info:
        _in_cell(ip, monkeypatch, "cell-b", "%%step Train\nother = 2")
    message = str(info.value)
    assert "Step `Train` is already defined by another cell" in message
    assert "%%step Train --kind processing" in message and "%pipeline remove Train" in message
    assert current().steps["Train"].outputs == ("model_v",)  # the first cell's step is intact


def test_rerunning_the_same_cell_replaces_its_step(ip, monkeypatch):
    _in_cell(ip, monkeypatch, "cell-a", "%%step Train\nv = 1")
    _in_cell(ip, monkeypatch, "cell-a", "%%step Train\nv = 2\nw = 3")
    assert current().steps["Train"].outputs == ("v", "w")


def test_without_a_cell_id_the_step_is_replaced_as_before(ip, monkeypatch):
    _in_cell(ip, monkeypatch, None, "%%step Train\nv = 1")
    _in_cell(ip, monkeypatch, None, "%%step Train\nw = 2")
    assert current().steps["Train"].outputs == ("w",)


def test_after_remove_another_cell_may_take_the_name(ip, monkeypatch):
    _in_cell(ip, monkeypatch, "cell-a", "%%step Train\nv = 1")
    _in_cell(ip, monkeypatch, "cell-c", "%pipeline remove Train")
    _in_cell(ip, monkeypatch, "cell-b", "%%step Train\nw = 2")
    assert current().steps["Train"].outputs == ("w",)


def test_headless_two_cells_with_one_step_name_exit_2_naming_both(tmp_path, capsys):
    nb = write_notebook(tmp_path / "twice.ipynb", [
        "import math", "%%step Train\nx = 1", "%%step Eval\ny = x", "%%step Train\nz = 2"])
    assert main(["run", str(nb)]) == 2
    err = capsys.readouterr().err
    assert "cell 2" in err and "cell 4" in err and "`Train`" in err
    assert "Traceback" not in err


def test_a_real_kernel_tells_cells_apart_by_their_cell_id():
    """Through ipykernel, as JupyterLab drives it: ``cellId`` in the execute_request metadata."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")

    def run(code: str, cell_id: str) -> dict:
        # stop_on_error False: the refused cell's error must not abort the next request (under
        # load ipykernel may still count it as queued behind the error)
        msg = kc.session.msg("execute_request", {"code": code, "silent": False, "store_history": True,
                                                 "user_expressions": {}, "allow_stdin": False,
                                                 "stop_on_error": False},
                             metadata={"cellId": cell_id})
        kc.shell_channel.send(msg)
        while True:
            reply = kc.get_shell_msg(timeout=120)
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                return reply["content"]

    try:
        assert run("%load_ext jupyter_pipelines", "c0")["status"] == "ok"
        assert run("%%step Train\nv = 1", "c1")["status"] == "ok"
        assert run("%%step Train\nv = 2", "c1")["status"] == "ok"  # the same cell again
        refused = run("%%step Train\nw = 3", "c2")
        assert refused["ename"] == "DefinitionError"
        assert "already defined by another cell" in refused["evalue"]
        assert "%%step Train" in refused["evalue"]
        kept = run("import jupyter_pipelines as jp\nassert jp.current().steps['Train'].outputs == ('v',)",
                   "c3")
        assert kept["status"] == "ok", kept
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# -- 5. the model registry's group names -------------------------------------------------------

@pytest.mark.parametrize("group", ["my group", "a/b", "x" * 65, 3])
def test_register_applies_the_register_model_steps_group_rule(group):
    from sklearn.dummy import DummyRegressor

    model = DummyRegressor().fit([[0], [1]], [0, 1])
    with pytest.raises(registry.RegistryError) as info:
        registry.register(group, model)
    assert repr(group) in str(info.value) and "Model package group" in str(info.value)
    assert registry.list_groups() == []
    with pytest.raises(DefinitionError):  # the step refuses exactly the same names
        Pipeline("p").add_step("Reg", "", kind="register-model", model="m", group=group)


# -- 6. wrong types given to the Python API ------------------------------------------------------

def _pipeline(tmp_path) -> Pipeline:
    p = Pipeline("types", home=tmp_path / "state")
    p.add_parameter("thr", 1.0)
    p.add_step("Make", "xs = [thr]")
    return p


API_MISTAKES = {
    "code None": (lambda p: p.add_step("W", None), "Step `W`", "None"),
    "code bytes": (lambda p: p.add_step("W", b"x = 1"), "Step `W`", "bytes"),
    "inputs as a str": (lambda p: p.add_step("W", "y = 1", inputs="xs"), "`inputs`", "'xs'"),
    "if_steps as a str": (lambda p: p.add_step("C", "thr > 0", kind="condition", if_steps="Make"),
                          "`if_steps`", "'Make'"),
    "kind not a str": (lambda p: p.add_step("W", "y = 1", kind=3), "Step `W`", "unknown kind 3"),
    "cache_expire a list": (lambda p: p.add_step("W", "y = 1", cache_expire=[30]), "--cache-expire",
                            "[30]"),
    "parameter name an int": (lambda p: p.add_parameter(3, 1.0), "name", "3"),
    "enum_values a str": (lambda p: p.add_parameter("mode", "a", enum_values="ab"), "`mode`", "'ab'"),
    "parameters a list": (lambda p: p.start(parameters=[1, 2]), "dict", "[1, 2]"),
    "parameters keyed by int": (lambda p: p.start(parameters={1: 2.0}), "key", "1"),
    "only a str": (lambda p: p.start(only="Make"), "only", "'Make'"),
    "executor not an Executor": (lambda p: p.start(executor=4), "executor", "int"),
}


@pytest.mark.parametrize("label", list(API_MISTAKES))
def test_wrong_argument_types_get_a_clear_error(tmp_path, label):
    call, culprit, found = API_MISTAKES[label]
    p = _pipeline(tmp_path)
    with pytest.raises(PipelineError) as info:
        call(p)
    assert culprit in str(info.value) and found in str(info.value)
    assert list(p.steps) == ["Make"] and list(p.parameters) == ["thr"]  # nothing half-added
