"""Exporting a pipeline as a SageMaker-format definition JSON, and as a Python script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_pipelines import Pipeline
from jupyter_pipelines.definition.script import to_script
from jupyter_pipelines.definition.validation import validate
from jupyter_pipelines.errors import ExportError
from jupyter_pipelines.notebook import load_notebook

from .conftest import run_cell

REPO = Path(__file__).resolve().parents[1]
ABALONE = REPO / "notebooks" / "abalone.ipynb"


def steps_by_name(doc: dict) -> dict[str, dict]:
    """Every step object, nested ones included."""
    found = {}

    def walk(steps):
        for s in steps:
            found[s["Name"]] = s
            walk(s.get("Arguments", {}).get("IfSteps", []))
            walk(s.get("Arguments", {}).get("ElseSteps", []))

    walk(doc["Steps"])
    return found


@pytest.fixture(scope="module")
def abalone_doc() -> dict:
    return json.loads(load_notebook(ABALONE).definition())


def test_abalone_exports_sagemakers_format(abalone_doc):
    doc = abalone_doc
    validate(doc)
    assert doc["Version"] == "2020-12-01"
    assert doc["Parameters"] == [
        {"Name": "input_data", "Type": "String", "DefaultValue": "abalone-synthetic.csv"},
        {"Name": "mse_threshold", "Type": "Float", "DefaultValue": 6.0},
        {"Name": "model_approval_status", "Type": "String", "DefaultValue": "PendingManualApproval"},
    ]
    # top level: the steps no condition owns; the branches nest, as SageMaker nests them
    assert [s["Name"] for s in doc["Steps"]] == ["AbaloneProcess", "AbaloneTrain", "AbaloneEval",
                                                 "AbaloneMSECond", "AbaloneTransform"]
    cond = doc["Steps"][3]["Arguments"]
    assert [s["Name"] for s in cond["IfSteps"]] == ["AbaloneRegisterModel", "AbaloneCreateModel"]
    assert [s["Name"] for s in cond["ElseSteps"]] == ["AbaloneMSEFail"]
    types = {n: s["Type"] for n, s in steps_by_name(doc).items()}
    assert types == {"AbaloneProcess": "Processing", "AbaloneTrain": "Training",
                     "AbaloneEval": "Processing", "AbaloneMSECond": "Condition",
                     "AbaloneRegisterModel": "RegisterModel", "AbaloneCreateModel": "Model",
                     "AbaloneTransform": "Transform", "AbaloneMSEFail": "Fail"}


def test_abalone_condition_and_fail_message_in_sagemakers_language(abalone_doc):
    steps = steps_by_name(abalone_doc)
    report = {"PropertyFile": {"Get": "Steps.AbaloneEval.PropertyFiles.report"},
              "Path": "regression_metrics.mse.value"}
    assert steps["AbaloneMSECond"]["Arguments"]["Conditions"] == [{
        "Type": "LessThanOrEqualTo", "LeftValue": {"Std:JsonGet": report},
        "RightValue": {"Get": "Parameters.mse_threshold"}}]
    # the step that makes `report` declares it as a property file
    assert steps["AbaloneEval"]["PropertyFiles"] == [
        {"PropertyFileName": "report", "OutputName": "report", "FilePath": "report.json"}]
    # the f-string message as a Std:Join (its :.3f format is Python's only)
    assert steps["AbaloneMSEFail"]["Arguments"]["ErrorMessage"] == {"Std:Join": {"On": "", "Values": [
        "Execution failed due to MSE > ", {"Get": "Parameters.mse_threshold"}, ": ",
        {"Std:JsonGet": report}]}}
    register = steps["AbaloneRegisterModel"]["Arguments"]
    assert register["ModelPackageGroupName"] == "AbaloneModelPackageGroup"
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.model_approval_status"}
    assert steps["AbaloneTransform"]["Arguments"]["ModelName"] == {
        "Get": "Steps.AbaloneCreateModel.ModelName"}


def test_each_step_carries_what_runs_it(abalone_doc):
    steps = steps_by_name(abalone_doc)
    train = steps["AbaloneTrain"]["Arguments"]["JupyterPipelines"]
    assert train["Kind"] == "training"
    assert "GradientBoostingRegressor" in train["Code"]
    assert train["Outputs"] == ["model"]
    assert train["Options"] == {"model": "model"}
    # inputs say where each comes from, as SageMaker references (null: the notebook's imports)
    assert train["Inputs"]["train"] == {
        "Get": "Steps.AbaloneProcess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}
    assert train["Inputs"]["GradientBoostingRegressor"] is None
    evaluate = steps["AbaloneEval"]["Arguments"]["JupyterPipelines"]
    assert evaluate["Inputs"]["model"] == {"Get": "Steps.AbaloneTrain.ModelArtifacts.S3ModelArtifacts"}
    meta = abalone_doc["Metadata"]["JupyterPipelines"]
    assert meta["PipelineName"] == "abalone"
    assert any(name == "make_preprocessor" and source.startswith("def make_preprocessor")
               for name, source in meta["Context"])


def test_cache_retry_depends_on_display_name(tmp_path):
    p = Pipeline("opts", persist=False)
    p.add_parameter("n", 2)
    p.add_step("A", "a = n + 1", cache_expire="P30D", retry=2, retry_backoff=0.5,
               display_name="Make a", description="Adds one")
    p.add_step("B", "b = 1", cache=False, depends_on=["A"])
    p.add_step("F", "'stop'", "fail")
    doc = json.loads(p.definition())
    validate(doc)
    a, b, f = doc["Steps"]
    assert a["DisplayName"] == "Make a" and a["Description"] == "Adds one"
    assert a["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}
    assert a["RetryPolicies"] == [{"ExceptionType": ["JupyterPipelines.StepFailed"],
                                   "IntervalSeconds": 0.5, "BackoffRate": 2.0, "MaxAttempts": 2}]
    assert b["CacheConfig"] == {"Enabled": False} and b["DependsOn"] == ["A"]
    assert "CacheConfig" not in f  # a fail step is never cached
    # a fail step whose code is exactly what its ErrorMessage gives back needs no block of ours
    assert f["Arguments"] == {"ErrorMessage": "stop"}
    p.add_step("F", 'f"stop at {n:.1f}"', "fail")  # a format Std:Join cannot say: the block keeps it
    assert json.loads(p.definition())["Steps"][2]["Arguments"] == {
        "ErrorMessage": {"Std:Join": {"On": "", "Values": ["stop at ", {"Get": "Parameters.n"}]}},
        "JupyterPipelines": {"Kind": "fail", "Code": 'f"stop at {n:.1f}"',
                             "Inputs": {"n": {"Get": "Parameters.n"}}, "Outputs": []}}



def test_definition_is_stable_text(tmp_path):
    p = load_notebook(ABALONE)
    assert p.definition() == p.definition()
    again = Pipeline.from_definition(p.definition()).definition()
    assert again == p.definition()


# -- what SageMaker's language cannot say ----------------------------------------------------------


@pytest.mark.parametrize("condition, culprit, why", [
    ("max(xs) <= t", "max(xs)", "function call"),
    ("n + 1 > t", "n + 1", "arithmetic"),
    ("n.real > t", "n.real", "attribute"),
    ("n is None", "n is None", "`is`"),
    ("report[label] > 0", "report[label]", "constant keys"),
    ("n in xs", "xs", "literal list"),
    ("flag", "flag", "not a comparison"),
])
def test_inexpressible_condition_runs_but_export_names_the_step(condition, culprit, why):
    p = Pipeline("beyond", persist=False)
    p.add_parameter("t", 0.5)
    p.add_step("Make", "report = {'mse': 1.0}\nlabel = 'mse'\nn = 3\nxs = [0.1, 0.4]\nflag = True")
    p.add_step("Check", condition, "condition")
    assert p.start(display=False).status == "Succeeded"  # runs here, whatever SageMaker says
    with pytest.raises(ExportError) as info:
        p.definition()
    message = str(info.value)
    assert message.startswith("Step `Check` cannot be exported to a definition JSON")
    assert f"`{culprit}`" in message and why in message
    assert "--format script" in message


def test_fail_message_that_is_not_a_string_is_named():
    p = Pipeline("msg", persist=False)
    p.add_parameter("t", 0.5)
    p.add_step("F", '"MSE " + str(t)', "fail")
    with pytest.raises(ExportError, match=r"Step `F` cannot be exported.*not a string or an f-string"):
        p.definition()


def test_other_export_errors_name_what_to_change():
    p = Pipeline("enum", persist=False)
    p.add_parameter("n", 1, enum_values=[1, 2])
    p.add_step("A", "a = n")
    with pytest.raises(ExportError, match=r"Parameter `n` is Integer with allowed values \[1, 2\]"):
        p.definition()
    p = Pipeline("two", persist=False)
    p.add_step("A", "a = 1")
    p.add_step("C1", "a > 0", "condition", if_steps=["B"])
    p.add_step("C2", "a > 1", "condition", if_steps=["B"])
    p.add_step("B", "b = 1")
    with pytest.raises(ExportError, match="Step `B` is a branch of both `C1` and `C2`"):
        p.definition()
    p = Pipeline("missing", persist=False)
    p.add_step("A", "a = 1")
    p.add_step("C", "a > 0", "condition", if_steps=["Nope"])
    with pytest.raises(ExportError, match="names branch step `Nope`, which does not exist"):
        p.definition()


# -- the magic --------------------------------------------------------------------------------------


def test_magic_definition_shows_and_writes(ip, tmp_path):
    run_cell(ip, "%%parameters\nt = 2")
    run_cell(ip, "%%step A\na = t * 2")
    shown = run_cell(ip, "%pipeline definition")
    assert type(shown).__name__ == "JSON" and shown.data["Steps"][0]["Name"] == "A"
    out = tmp_path / "def.json"
    run_cell(ip, f"%pipeline definition --out {out}")
    doc = json.loads(out.read_text())
    validate(doc)
    assert doc["Steps"][0]["Arguments"]["JupyterPipelines"]["Code"] == "a = t * 2"


def test_magic_definition_error_is_one_paragraph(ip):
    run_cell(ip, "%%step A\nxs = [1, 2]")
    run_cell(ip, "%%step C --kind condition\nlen(xs) > 1")
    result = ip.run_cell("%pipeline definition")
    assert isinstance(result.error_in_exec, ExportError)
    assert result.error_in_exec._render_traceback_()[0].startswith("ExportError: Step `C` cannot")


# -- the script ---------------------------------------------------------------------------------------


def test_script_runs_the_same_pipeline(tmp_path):
    p = Pipeline("scripted", persist=False)
    p.context = __import__("jupyter_pipelines.source", fromlist=["Context"]).Context.from_cells(
        ['import math\ndef scale(x):\n    """Doubles."""\n    return 2 * x'])
    p.add_parameter("n", 3)
    p.add_step("Make", "xs = [scale(i) for i in range(n)]\nbackslash = '\\\\'")
    p.add_step("Check", "math.fsum(xs) > 4", "condition", if_steps=["Big"], else_steps=["Small"])
    p.add_step("Big", "label = 'big'", cache=False, display_name="Big one")
    p.add_step("Small", "label = 'small'", retry=1, retry_backoff=0.0)
    text = to_script(p, origin="demo.ipynb", module="scripted")
    assert "(from demo.ipynb)" in text
    compile(text, "scripted.py", "exec")
    script = tmp_path / "scripted.py"
    script.write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_PIPELINES_HOME"}
    result = subprocess.run([sys.executable, str(script), "--json", "--param", "n=1"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    statuses = {s["StepName"]: s["StepStatus"] for s in doc["Steps"]}
    assert statuses == {"Make": "Succeeded", "Check": "Succeeded", "Big": "Skipped", "Small": "Succeeded"}
    assert (tmp_path / ".jupyter_pipelines").is_dir()  # its state folder is beside the script
    # the module defines the same pipeline: same steps, same code, same options
    namespace: dict = {"__name__": "scripted"}
    exec(compile(text, str(script), "exec"), namespace)
    again = namespace["pipeline"]
    assert again.steps == p.steps and again.parameters == p.parameters
    assert again.context.snippets == p.context.snippets


def test_script_refuses_aws_steps():
    p = Pipeline.from_definition(REPO / "tests" / "fixtures" / "sagemaker" / "minimal.json",
                                 persist=False)
    with pytest.raises(ExportError, match="Step `Preprocess` comes from a SageMaker definition"):
        to_script(p)


def test_cli_exports_the_abalone_notebook_as_a_script_that_runs_it(tmp_path):
    from .test_cli import cli

    shutil.copy(ABALONE, tmp_path / "abalone.ipynb")
    exported = cli(["export", "abalone.ipynb", "--format", "script", "-o", "abalone_pipeline.py"],
                   tmp_path, tmp_path / "h")
    assert exported.returncode == 0, exported.stderr
    assert "wrote abalone_pipeline.py (8 steps, 3 parameters)" in exported.stderr
    env = {**os.environ, "JUPYTER_PIPELINES_HOME": str(tmp_path / "h")}
    ran = subprocess.run([sys.executable, "abalone_pipeline.py", "--json", "--param",
                          "mse_threshold=3.0"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert ran.returncode == 1, ran.stderr  # the fail branch, as the notebook takes it
    doc = json.loads(ran.stdout)
    assert doc["FailureReason"] == "Execution failed due to MSE > 3.0: 4.824"
    # the notebook's own run reuses every result the script stored: same code, same keys
    notebook = cli(["run", "abalone.ipynb", "--json", "--param", "mse_threshold=3.0"], tmp_path,
                   tmp_path / "h")
    statuses = {s["StepName"]: s["StepStatus"] for s in json.loads(notebook.stdout)["Steps"]}
    assert statuses["AbaloneTrain"] == "Cached" and statuses["AbaloneEval"] == "Cached"


def test_magic_display_name_and_description_reach_the_definition(ip):
    run_cell(ip, '%%step A --display-name "Make a" --description \'Adds one to n\' --cache-expire PT12H\n'
                 'a = 1 + 1')
    step = json.loads(__import__("jupyter_pipelines").current().definition())["Steps"][0]
    assert step["DisplayName"] == "Make a" and step["Description"] == "Adds one to n"
    assert step["CacheConfig"] == {"Enabled": True, "ExpireAfter": "PT12H"}
