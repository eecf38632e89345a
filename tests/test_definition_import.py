"""Reading definitions back: our own (they run, with the notebook's results) and the SageMaker
SDK's (drawn with SageMaker's edges; AWS-only steps never run); every malformed document gets
an error naming its JSON path."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from jupyter_pipelines import Pipeline
from jupyter_pipelines.definition.validation import DefinitionValidationError
from jupyter_pipelines.errors import ParameterError, PipelineError
from jupyter_pipelines.notebook import load_notebook
from jupyter_pipelines.view import static_svg, to_text

from .conftest import run_cell
from .test_cli import cli

REPO = Path(__file__).resolve().parents[1]
ABALONE = REPO / "notebooks" / "abalone.ipynb"
FIXTURES = REPO / "tests" / "fixtures" / "sagemaker"


@pytest.fixture(scope="module")
def abalone_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("abalone")
    shutil.copy(ABALONE, folder / "abalone.ipynb")
    (folder / "abalone.json").write_text(load_notebook(ABALONE).definition())
    return folder


def edges(pipeline) -> set[tuple[str, str, str]]:
    return {(e.source, e.target, e.label or "") for e in pipeline.graph().edges}


# -- our own definitions ---------------------------------------------------------------------


def test_imported_abalone_runs_to_the_notebooks_results(abalone_folder, monkeypatch):
    monkeypatch.chdir(abalone_folder)  # the steps read their data beside the notebook
    notebook = load_notebook(abalone_folder / "abalone.ipynb")
    notebook.persist = False
    imported = Pipeline.from_definition(abalone_folder / "abalone.json", persist=False)
    assert imported.name == "abalone"
    # the same steps; a condition SageMaker's language says is read back from it (its code
    # the same syntax tree, quotes aside)
    def same(step):
        import ast
        from dataclasses import replace

        return replace(step, code=ast.dump(ast.parse(step.code)))
    assert {n: same(s) for n, s in imported.steps.items()} == \
        {n: same(s) for n, s in notebook.steps.items()}
    assert imported.parameters == notebook.parameters
    assert imported.context == notebook.context
    for params in (None, {"mse_threshold": 3.0}):
        a, b = notebook.start(params, display=False), imported.start(params, display=False)
        assert (a.status, a.failure_reason) == (b.status, b.failure_reason)
        assert {n: r.status for n, r in a.steps.items()} == {n: r.status for n, r in b.steps.items()}
    assert np.allclose(a.result("AbaloneEval", "report")["regression_metrics"]["mse"]["value"],
                       b.result("AbaloneEval", "report")["regression_metrics"]["mse"]["value"])


def test_cli_runs_the_exported_definition(abalone_folder, tmp_path):
    exported = cli(["definition", "abalone.ipynb", "-o", "again.json"], abalone_folder, tmp_path / "h")
    assert exported.returncode == 0, exported.stderr
    assert (abalone_folder / "again.json").read_text().strip() == \
        (abalone_folder / "abalone.json").read_text().strip()
    ran = cli(["run", "abalone.json", "--json"], abalone_folder, tmp_path / "h")
    assert ran.returncode == 0, ran.stderr
    doc = json.loads(ran.stdout)
    statuses = {s["StepName"]: s["StepStatus"] for s in doc["Steps"]}
    assert statuses["AbaloneMSECond"] == "Succeeded" and statuses["AbaloneMSEFail"] == "Skipped"
    assert statuses["AbaloneTransform"] == "Succeeded"
    failed = cli(["run", "abalone.json", "--param", "mse_threshold=3.0"], abalone_folder, tmp_path / "h")
    assert failed.returncode == 1
    assert "Execution failed due to MSE > 3.0: 4.8" in failed.stdout
    valid = cli(["validate", "abalone.json"], abalone_folder, tmp_path / "h")
    assert valid.returncode == 0
    assert "a valid pipeline definition: 8 steps (8 run here, 0 only on AWS), 3 parameters" in valid.stdout


def test_magic_load_makes_it_the_notebooks_pipeline(ip, abalone_folder, monkeypatch, capsys):
    monkeypatch.chdir(abalone_folder)
    view = run_cell(ip, "%pipeline load abalone.json")
    assert "Loaded pipeline abalone from abalone.json: 8 steps, 3 parameters" in capsys.readouterr().out
    assert type(view).__name__ == "LiveView"
    assert ip.user_ns["mse_threshold"] == 6.0
    ex = run_cell(ip, "%pipeline run --param mse_threshold=7")
    assert ex.status == "Succeeded"
    assert len(ip.user_ns["predictions"]) > 0  # outputs bound into the notebook
    # the loaded imports and definitions stay the steps' context as more cells run
    run_cell(ip, "%%step Extra\nextra = features_and_target(test)[1].mean()")
    assert ip.user_ns["extra"] > 0


def test_magic_load_view_only_leaves_the_notebook_alone(ip):
    run_cell(ip, "%%step Mine\nmine = 1")
    view = run_cell(ip, f"%pipeline load {FIXTURES / 'abalone.json'} --view-only")
    assert type(view).__name__ == "LiveView" and "AbaloneTrain" in view.graph.steps
    assert list(__import__("jupyter_pipelines").current().steps) == ["Mine"]
    result = ip.run_cell("%pipeline load nope.json")
    assert "does not exist" in str(result.error_in_exec)


# -- SageMaker SDK definitions ----------------------------------------------------------------------


def test_sdk_abalone_draws_sagemakers_dag():
    p = Pipeline.from_definition(FIXTURES / "abalone.json", persist=False)
    assert p.name == "abalone"  # from the file, as SageMaker's definition holds no name
    kinds = {n: (s.kind, s.options.get("type")) for n, s in p.steps.items()}
    assert kinds["AbaloneTrain"] == ("aws", "Training")
    assert kinds["AbaloneMSECond"] == ("aws", "Condition")  # it reads an AWS step's property file
    assert kinds["AbaloneMSEFail"] == ("fail", None)        # only parameters: it runs here
    # its Std:Join of text and a parameter, as Python
    assert p.steps["AbaloneMSEFail"].code == "f'Execution failed due to MSE > {MseThreshold}'"
    assert edges(p) == {
        ("AbaloneProcess", "AbaloneTrain", "AbaloneProcess.train"),
        ("AbaloneProcess", "AbaloneTrain", "AbaloneProcess.validation"),
        ("AbaloneTrain", "AbaloneEval", "AbaloneTrain.ModelArtifacts"),
        ("AbaloneProcess", "AbaloneEval", "AbaloneProcess.test"),
        ("AbaloneEval", "AbaloneMSECond", "AbaloneEval.EvaluationReport"),
        ("AbaloneTrain", "AbaloneRegisterModel", "AbaloneTrain.ModelArtifacts"),
        ("AbaloneTrain", "AbaloneCreateModel", "AbaloneTrain.ModelArtifacts"),
        ("AbaloneCreateModel", "AbaloneTransform", "AbaloneCreateModel.ModelName"),
        ("AbaloneMSECond", "AbaloneRegisterModel", "True"),
        ("AbaloneMSECond", "AbaloneCreateModel", "True"),
        ("AbaloneMSECond", "AbaloneTransform", "True"),
        ("AbaloneMSECond", "AbaloneMSEFail", "False"),
    }
    graph = p.graph()
    assert graph.params["AbaloneProcess"] == ("ProcessingInstanceType", "ProcessingInstanceCount",
                                              "InputData")
    text = to_text(p.name, p.parameters, graph)
    assert "AbaloneTrain <Training (AWS)>" in text and "<- AbaloneProcess (train)" in text
    svg = static_svg(p.name, p.parameters, graph)
    assert 'data-kind="aws"' in svg and "Condition (AWS)" in svg and 'id="cluster-if-AbaloneMSECond"' in svg


@pytest.mark.parametrize("fixture", ["abalone", "lambda_callback", "checks_emr_tuning", "minimal",
                                     "sdk_generated_abalone"])
def test_sdk_definitions_reexport_as_read(fixture):
    """What only AWS runs is written back exactly as it was read."""
    doc = json.loads((FIXTURES / f"{fixture}.json").read_text())
    again = json.loads(Pipeline.from_definition(copy.deepcopy(doc), persist=False).definition())
    assert again["Parameters"] == doc.get("Parameters", [])
    assert again.get("PipelineExperimentConfig") == doc.get("PipelineExperimentConfig")

    def aws_steps(d):
        found = {}

        def walk(steps):
            for s in steps:
                args = s.get("Arguments", {})
                if "JupyterPipelines" not in args and s["Type"] not in ("Fail",):
                    found[s["Name"]] = {**s, "Arguments": {k: v for k, v in args.items()
                                                           if k not in ("IfSteps", "ElseSteps")}}
                walk(args.get("IfSteps", []) if isinstance(args, dict) else [])
                walk(args.get("ElseSteps", []) if isinstance(args, dict) else [])
        walk(d["Steps"])
        return found

    assert aws_steps(again) == aws_steps(doc)


def test_sdk_edges_from_dependson_property_files_and_output_parameters():
    p = Pipeline.from_definition(FIXTURES / "checks_emr_tuning.json", persist=False)
    got = edges(p)
    assert ("EmrPrepare", "DataQualityCheck", "") in got          # DependsOn
    assert ("ChurnTuning", "CheckTuningResult", "ChurnTuning.TrainingJobSummaries") in got
    assert ("CheckTuningResult", "PromoteBestModel", "True") in got
    assert p.steps["PromoteBestModel"].options["type"] == "Lambda"
    q = Pipeline.from_definition(FIXTURES / "lambda_callback.json", persist=False)
    assert ("StartExport", "RegisterSnapshot", "StartExport.snapshot_uri") in edges(q)


def test_running_aws_steps_is_a_clear_error(tmp_path):
    p = Pipeline.from_definition(FIXTURES / "abalone.json", home=tmp_path)
    with pytest.raises(PipelineError) as info:
        p.start(display=False)
    message = str(info.value)
    assert message.startswith("Steps `AbaloneProcess` (Processing), `AbaloneTrain` (Training)")
    assert "need AWS" in message and "AbaloneMSEFail" not in message
    assert not (tmp_path / "history.db").exists()  # refused before anything was recorded


def test_cli_show_and_run_of_an_sdk_definition(tmp_path):
    shutil.copy(FIXTURES / "abalone.json", tmp_path / "sdk.json")
    shown = cli(["show", "sdk.json", "--svg", "sdk.svg"], tmp_path, tmp_path / "h")
    assert shown.returncode == 0, shown.stderr
    assert "AbaloneEval <Processing (AWS)>" in shown.stdout
    assert 'data-step="AbaloneMSECond"' in (tmp_path / "sdk.svg").read_text()
    ran = cli(["run", "sdk.json"], tmp_path, tmp_path / "h")
    assert ran.returncode == 2
    assert "need AWS" in ran.stderr


# -- parameters as SageMaker declares them -----------------------------------------------------


def test_declared_types_and_required_parameters():
    doc = {"Version": "2020-12-01", "Parameters": [
        {"Name": "Threshold", "Type": "Float", "DefaultValue": 6},
        {"Name": "Mode", "Type": "String", "EnumValues": ["a", "b"], "DefaultValue": "a"},
        {"Name": "Needed", "Type": "Integer"}],
        "Steps": [{"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": {"Std:Join": {
            "On": " ", "Values": ["needed", {"Get": "Parameters.Needed"}, "over",
                                  {"Get": "Parameters.Threshold"}]}}}}]}
    p = Pipeline.from_definition(doc, persist=False)
    assert p.parameters["Threshold"].default == 6.0 and p.parameters["Threshold"].type == "Float"
    assert p.steps["Stop"].kind == "fail"
    with pytest.raises(ParameterError, match=r"Parameter `Needed` \(Integer\) has no default value"):
        p.start(display=False)
    ex = p.start({"Needed": "3"}, display=False)
    assert ex.failure_reason == "needed 3 over 6.0"
    with pytest.raises(ParameterError, match="not one of its allowed values"):
        p.start({"Needed": 1, "Mode": "c"}, display=False)
    again = json.loads(p.definition())
    assert again["Parameters"] == [
        {"Name": "Threshold", "Type": "Float", "DefaultValue": 6.0},
        {"Name": "Mode", "Type": "String", "DefaultValue": "a", "EnumValues": ["a", "b"]},
        {"Name": "Needed", "Type": "Integer"}]


# -- malformed documents: each gets its JSON path ---------------------------------------------------


@pytest.fixture(scope="module")
def ours() -> dict:
    p = Pipeline("small", persist=False)
    p.add_parameter("t", 1.5)
    p.add_step("Make", "report = {'mse': 1.0}")
    p.add_step("Check", 'report["mse"] <= t', "condition", else_steps=["Stop"])
    p.add_step("Stop", 'f"too high: {t:.2f}"', "fail")  # Std:Join drops the format: a block
    return json.loads(p.definition())


def broken(doc: dict, change) -> str:
    doc = copy.deepcopy(doc)
    change(doc)
    with pytest.raises(DefinitionValidationError) as info:
        Pipeline.from_definition(json.dumps(doc), persist=False)
    return str(info.value)


def test_a_condition_in_sagemakers_language_is_read_from_it(ours):
    """No block: the Conditions are the condition, so editing them changes it."""
    check = ours["Steps"][1]
    assert "JupyterPipelines" not in check["Arguments"]
    doc = copy.deepcopy(ours)
    doc["Steps"][1]["Arguments"]["Conditions"][0]["RightValue"] = 0.5
    p = Pipeline.from_definition(doc, persist=False)
    assert p.steps["Check"].code == "report['mse'] <= 0.5"
    assert p.start(display=False).failure_reason == "too high: 1.50"


def test_edited_sagemaker_arguments_must_agree_with_the_code(ours):
    """A step with a block runs its Code: an edit of only the derived arguments is reported,
    every one of them."""
    def edit(doc):
        doc["Steps"][1]["Arguments"]["ElseSteps"][0]["Arguments"]["ErrorMessage"] = "edited"
        extra = copy.deepcopy(doc["Steps"][1]["Arguments"]["ElseSteps"][0])
        extra["Name"] = "Stop2"
        extra["Arguments"]["ErrorMessage"] = "also edited"
        doc["Steps"].append(extra)
    message = broken(ours, edit)
    assert "(2 problems)" in message
    assert 'at $.Steps[1].Arguments.ElseSteps[0].Arguments.ErrorMessage: expected {"Std:Join"' in message
    assert 'found "edited"' in message and 'found "also edited"' in message
    assert "at $.Steps[2].Arguments.ErrorMessage" in message
    assert "Edit JupyterPipelines.Code/.Options" in message


def test_kind_and_type_must_agree(ours):
    def edit(doc):
        doc["Steps"][0]["Type"] = "Training"
    message = broken(ours, edit)
    assert 'at $.Steps[0].Type: expected "Processing" (the SageMaker type of a processing step' in message


def test_code_errors_name_the_code_path(ours):
    def edit(doc):
        doc["Steps"][0]["Arguments"]["JupyterPipelines"]["Code"] = "report = {"
    message = broken(ours, edit)
    assert "at $.Steps[0]: step `Make` is not valid Python: '{' was never closed" in message


def test_schema_errors_name_the_path(ours):
    def edit(doc):
        doc["Steps"][0]["Arguments"]["JupyterPipelines"]["Kind"] = "procesing"
    message = broken(ours, edit)
    assert "at $.Steps[0].Arguments.JupyterPipelines.Kind: expected one of" in message
    assert 'did you mean "processing"' in message

    def dangling(doc):
        doc["Steps"][1]["Arguments"]["ElseSteps"][0]["Arguments"]["ErrorMessage"]["Std:Join"][
            "Values"][1] = {"Get": "Parameters.threshold"}
    message = broken(ours, dangling)
    assert "at $.Steps[1].Arguments.ElseSteps[0].Arguments.ErrorMessage" in message
    assert '"threshold"' in message


def test_bad_cache_expiry_names_the_path(ours):
    def edit(doc):
        doc["Steps"][0]["CacheConfig"]["ExpireAfter"] = "30 days"
    message = broken(ours, edit)
    assert 'at $.Steps[0].CacheConfig.ExpireAfter: expected an ISO-8601 duration' in message


def test_cli_validate_reports_every_problem(tmp_path, ours):
    doc = copy.deepcopy(ours)
    doc["Version"] = "2021"
    doc["Steps"][0]["DependsOn"] = ["Nowhere"]
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    (tmp_path / "syntax.json").write_text('{"Version": "2020-12-01",\n "Steps": [}')
    result = cli(["validate", "bad.json"], tmp_path, tmp_path / "h")
    assert result.returncode == 2
    assert "The pipeline definition in bad.json is not valid (2 problems)" in result.stderr
    assert '$.Version: expected the format version "2020-12-01"' in result.stderr
    assert "$.Steps[0].DependsOn[0]" in result.stderr
    result = cli(["validate", "syntax.json"], tmp_path, tmp_path / "h")
    assert result.returncode == 2 and "at line 2, column" in result.stderr


def test_a_pipeline_displays_as_its_dag(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    Pipeline.from_definition(FIXTURES / "abalone.json", persist=False)._ipython_display_()
    assert type(shown[0]).__name__ == "LiveView" and "AbaloneEval" in shown[0].graph.steps
    broken = Pipeline("broken", persist=False)
    broken.add_step("A", "a = missing_name")
    broken._ipython_display_()
    assert shown[1] == {"text/plain": "Pipeline('broken', parameters=[], steps=['A'])"}


def test_a_path_may_be_given_as_text(monkeypatch):
    monkeypatch.chdir(FIXTURES)
    assert Pipeline.from_definition("minimal.json", persist=False).name == "minimal"
    with pytest.raises(PipelineError, match="Definition file 'nope.json' does not exist"):
        Pipeline.from_definition("nope.json")


def test_an_aws_step_reading_a_local_step_runs_after_it(ours):
    doc = copy.deepcopy(ours)
    doc["Steps"].append({"Name": "Notify", "Type": "Lambda", "FunctionArn": "arn:aws:lambda:fn",
                         "Arguments": {"report": {"Get": "Steps.Make.ProcessingOutputConfig.Outputs"
                                                         "['report'].S3Output.S3Uri"}},
                         "DependsOn": ["Check"]})
    p = Pipeline.from_definition(doc, persist=False)
    assert p.steps["Notify"].depends_on == ("Check", "Make")
    assert {("Make", "Notify", ""), ("Check", "Notify", "")} <= edges(p)


def test_a_bad_parameter_names_its_path(ours):
    def edit(doc):
        doc["Parameters"].append({"Name": "Mode", "Type": "String", "DefaultValue": "c",
                                  "EnumValues": ["a", "b"]})
    assert "at $.Parameters[1]: Parameter `Mode` got 'c', which is not one of its allowed" in \
        broken(ours, edit)


def test_other_metadata_and_the_experiment_config_are_kept():
    doc = json.loads((FIXTURES / "minimal.json").read_text())
    doc["Metadata"] = {"Owner": "ml-team"}
    doc["PipelineExperimentConfig"] = {"ExperimentName": {"Get": "Execution.PipelineName"},
                                       "TrialName": "trial-1"}
    again = json.loads(Pipeline.from_definition(doc, name="mine", persist=False).definition())
    assert again["Metadata"]["Owner"] == "ml-team"
    assert again["Metadata"]["JupyterPipelines"]["PipelineName"] == "mine"
    assert again["PipelineExperimentConfig"] == doc["PipelineExperimentConfig"]


def test_a_definition_the_real_sdk_wrote_draws_sagemakers_dag():
    """Written by sagemaker 2.232.0 (tests/fixtures/sagemaker/generate_with_sdk.py): its
    ModelStep names, PropertyFile JsonGet and Std:Join fail message, exactly as the SDK emits."""
    path = FIXTURES / "sdk_generated_abalone.json"
    p = Pipeline.from_definition(path, persist=False)
    register, create = "AbaloneRegisterModel-RegisterModel", "AbaloneCreateModel-CreateModel"
    assert {n: s.options.get("type") or s.kind for n, s in p.steps.items()} == {
        "AbaloneProcess": "Processing", "AbaloneTrain": "Training", "AbaloneEval": "Processing",
        "AbaloneMSECond": "Condition", register: "RegisterModel", create: "Model",
        "AbaloneTransform": "Transform", "AbaloneMSEFail": "fail"}
    assert {(s, t) for s, t, _ in edges(p)} == {
        ("AbaloneProcess", "AbaloneTrain"), ("AbaloneProcess", "AbaloneEval"),
        ("AbaloneTrain", "AbaloneEval"), ("AbaloneEval", "AbaloneMSECond"),
        ("AbaloneTrain", register), ("AbaloneTrain", create), (create, "AbaloneTransform"),
        ("AbaloneMSECond", register), ("AbaloneMSECond", create),
        ("AbaloneMSECond", "AbaloneTransform"), ("AbaloneMSECond", "AbaloneMSEFail")}
    assert p.steps["AbaloneMSEFail"].code == "f'Execution failed due to MSE > {MseThreshold}'"
    doc = json.loads(path.read_text())
    again = json.loads(p.definition())
    assert again["Steps"][:3] == doc["Steps"][:3]  # the AWS steps written back as they were read
    assert again["Parameters"] == doc["Parameters"]
