"""The pipeline definition JSON: schema + semantic validation, errors with JSON paths."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from jupyter_pipelines.definition.validation import (
    DefinitionValidationError,
    format_path,
    load_schema,
    problems,
    validate,
    validate_text,
)
from jupyter_pipelines.errors import PipelineError

FIXTURES = Path(__file__).parent / "fixtures" / "sagemaker"
FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def error_of(document) -> DefinitionValidationError:
    with pytest.raises(DefinitionValidationError) as info:
        validate(document)
    return info.value


def test_schema_is_shipped_and_is_a_valid_schema():
    import jsonschema

    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert load_schema() is schema  # cached


def test_there_are_fixtures():
    names = {p.name for p in FIXTURE_FILES}
    assert {"abalone.json", "lambda_callback.json", "checks_emr_tuning.json", "minimal.json"} <= names


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_every_sagemaker_fixture_validates(path):
    document = validate_text(path.read_text(), source=path.name)
    assert document["Version"] == "2020-12-01"
    assert problems(document) == []


def test_fixtures_cover_every_step_type():
    types = set()

    def walk(steps):
        for s in steps:
            types.add(s["Type"])
            if s["Type"] == "Condition":
                walk(s["Arguments"].get("IfSteps", []))
                walk(s["Arguments"].get("ElseSteps", []))

    for path in FIXTURE_FILES:
        walk(json.loads(path.read_text())["Steps"])
    assert {
        "Processing",
        "Training",
        "Transform",
        "Model",
        "RegisterModel",
        "Condition",
        "Fail",
        "Lambda",
        "Callback",
        "QualityCheck",
        "ClarifyCheck",
        "EMR",
        "Tuning",
    } <= types


def test_format_path():
    assert format_path([]) == "$"
    assert format_path(["Steps", 3, "Arguments", "Conditions", 0]) == "$.Steps[3].Arguments.Conditions[0]"
    assert format_path(["Steps", 0, "Std:JsonGet"]) == '$.Steps[0]["Std:JsonGet"]'


def test_error_is_a_pipeline_error_and_lists_problems():
    doc = load("minimal.json")
    del doc["Version"]
    doc["Steps"][0]["Type"] = "Procesing"
    err = error_of(doc)
    assert isinstance(err, PipelineError)
    assert len(err.problems) == 2
    assert "2 problems" in str(err)


# --- malformed variants: (mutation, exact JSON path, words the expectation must contain)


def _missing_version(d):
    del d["Version"]


def _wrong_version(d):
    d["Version"] = "2021-01-01"


def _wrong_parameter_type(d):
    d["Parameters"][1]["Type"] = "Str"


def _parameter_default_wrong_type(d):
    d["Parameters"][0]["DefaultValue"] = "one"  # ProcessingInstanceCount is an Integer


def _unknown_condition_type(d):
    d["Steps"][3]["Arguments"]["Conditions"][0]["Type"] = "LessThanOrEqual"


def _condition_missing_right_value(d):
    del d["Steps"][3]["Arguments"]["Conditions"][0]["RightValue"]


def _get_with_non_string(d):
    d["Steps"][1]["Arguments"]["ResourceConfig"]["InstanceType"] = {"Get": 3}


def _nested_step_missing_name(d):
    del d["Steps"][3]["Arguments"]["IfSteps"][0]["Name"]  # AbaloneRegisterModel: nothing refers to it


def _nested_step_bad_name(d):
    d["Steps"][3]["Arguments"]["ElseSteps"][0]["Name"] = "MSE fail!"


def _duplicate_nested_name(d):
    d["Steps"][3]["Arguments"]["ElseSteps"][0]["Name"] = "AbaloneTrain"


def _depends_on_unknown(d):
    d["Steps"][2]["DependsOn"] = ["AbaloneTrain", "AbaloneTrian"]


def _get_unknown_step(d):
    d["Steps"][1]["Arguments"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = {
        "Get": "Steps.AbaloneProces.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"
    }


def _get_unknown_parameter(d):
    d["Steps"][3]["Arguments"]["Conditions"][0]["RightValue"] = {"Get": "Parameters.MseThreshhold"}


def _get_unknown_execution_variable(d):
    d["PipelineExperimentConfig"]["TrialName"] = {"Get": "Execution.PipelineExecId"}


def _join_missing_on(d):
    del d["Steps"][3]["Arguments"]["ElseSteps"][0]["Arguments"]["ErrorMessage"]["Std:Join"]["On"]


def _json_get_unknown_property_file(d):
    cond = d["Steps"][3]["Arguments"]["Conditions"][0]
    cond["LeftValue"]["Std:JsonGet"]["PropertyFile"] = {"Get": "Steps.AbaloneEval.PropertyFiles.EvalReport"}


def _unknown_step_type(d):
    d["Steps"][0]["Type"] = "Processor"


def _processing_missing_role(d):
    del d["Steps"][0]["Arguments"]["RoleArn"]


def _cache_config_enabled_string(d):
    d["Steps"][0]["CacheConfig"]["Enabled"] = "yes"


def _not_without_condition(d):
    d["Steps"][3]["Arguments"]["Conditions"].append({"Type": "Not", "Conditions": []})


CASES = [
    (_missing_version, "$", ['"Version"']),
    (_wrong_version, "$.Version", ['"2020-12-01"', '"2021-01-01"']),
    (
        _wrong_parameter_type,
        "$.Parameters[1].Type",
        ['"String"', '"Integer"', '"Str"', 'did you mean "String"'],
    ),
    (_parameter_default_wrong_type, "$.Parameters[0].DefaultValue", ["an integer", '"one"']),
    (
        _unknown_condition_type,
        "$.Steps[3].Arguments.Conditions[0].Type",
        ['"LessThanOrEqualTo"', '"LessThanOrEqual"'],
    ),
    (_condition_missing_right_value, "$.Steps[3].Arguments.Conditions[0]", ['"RightValue"']),
    (_get_with_non_string, "$.Steps[1].Arguments.ResourceConfig.InstanceType.Get", ["a string", "integer 3"]),
    (_nested_step_missing_name, "$.Steps[3].Arguments.IfSteps[0]", ['"Name"']),
    (_nested_step_bad_name, "$.Steps[3].Arguments.ElseSteps[0].Name", ["1 to 64 letters", '"MSE fail!"']),
    (
        _duplicate_nested_name,
        "$.Steps[3].Arguments.ElseSteps[0].Name",
        ["unique", '"AbaloneTrain"', "$.Steps[1].Name"],
    ),
    (
        _depends_on_unknown,
        "$.Steps[2].DependsOn[1]",
        ["step", '"AbaloneTrian"', 'did you mean "AbaloneTrain"'],
    ),
    (
        _get_unknown_step,
        "$.Steps[1].Arguments.InputDataConfig[0].DataSource.S3DataSource.S3Uri.Get",
        ["step", '"AbaloneProces"', 'did you mean "AbaloneProcess"'],
    ),
    (
        _get_unknown_parameter,
        "$.Steps[3].Arguments.Conditions[0].RightValue.Get",
        ["parameter", '"MseThreshhold"', 'did you mean "MseThreshold"'],
    ),
    (
        _get_unknown_execution_variable,
        "$.PipelineExperimentConfig.TrialName.Get",
        ["execution variable", '"PipelineExecId"'],
    ),
    (_join_missing_on, '$.Steps[3].Arguments.ElseSteps[0].Arguments.ErrorMessage["Std:Join"]', ['"On"']),
    (
        _json_get_unknown_property_file,
        '$.Steps[3].Arguments.Conditions[0].LeftValue["Std:JsonGet"].PropertyFile.Get',
        ["EvaluationReport", '"EvalReport"'],
    ),
    (_unknown_step_type, "$.Steps[0].Type", ['"Processing"', '"Processor"']),
    (_processing_missing_role, "$.Steps[0].Arguments", ['"RoleArn"']),
    (_cache_config_enabled_string, "$.Steps[0].CacheConfig.Enabled", ["true or false", '"yes"']),
    (_not_without_condition, "$.Steps[3].Arguments.Conditions[1]", ['"Condition"']),
]


@pytest.mark.parametrize("mutate, path, words", CASES, ids=[c[0].__name__.strip("_") for c in CASES])
def test_malformed_variant_names_path_and_expectation(mutate, path, words):
    doc = copy.deepcopy(load("abalone.json"))
    mutate(doc)
    err = error_of(doc)
    at_path = [p for p in err.problems if p.path == path]
    assert at_path, f"no problem at {path}; got {[str(p) for p in err.problems]}"
    text = " | ".join(p.message for p in at_path)
    assert "expected" in text
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"
    assert f"at {path}: " in str(err)


def test_mutations_report_only_the_problem_they_introduce():
    # one mistake -> one problem (no cascade of anyOf noise)
    for mutate, path, _ in CASES:
        doc = copy.deepcopy(load("abalone.json"))
        mutate(doc)
        found = problems(doc)
        assert {p.path for p in found} == {path}, (mutate.__name__, [str(p) for p in found])


def test_many_problems_are_capped_in_the_message():
    doc = load("minimal.json")
    doc["Steps"] = [{"Name": f"S{i}", "Type": "Processing", "DependsOn": ["Nope"]} for i in range(15)]
    err = error_of(doc)
    assert len(err.problems) == 30
    assert "... and 20 more" in str(err)


def test_bad_json_text_reports_line_and_column():
    text = '{\n  "Version": "2020-12-01",\n  "Steps": [\n    {"Name": "A" "Type": "Processing"}\n  ]\n}'
    with pytest.raises(DefinitionValidationError) as info:
        validate_text(text, source="broken.json")
    (problem,) = info.value.problems
    assert problem.path == "line 4, column 18"
    assert "expected valid JSON" in problem.message and "delimiter" in problem.message
    assert "broken.json" in str(info.value)


def test_nan_is_refused():
    with pytest.raises(DefinitionValidationError, match="NaN"):
        validate_text('{"Version": "2020-12-01", "Steps": [], "Metadata": {"x": NaN}}')


def test_not_an_object():
    err = error_of([])
    assert err.problems[0].path == "$"
    assert "an object" in err.problems[0].message
