"""Each step kind's contract through the Python API: statuses, FailureReason texts and results.

Every pipeline is built with ``Pipeline(name, home=tmp_path)`` so registries never collide.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jupyter_pipelines import Pipeline, registry
from jupyter_pipelines.errors import DefinitionError, UnknownReferenceError
from jupyter_pipelines.source import Context

from .conftest import in_processes

# The notebook's "ordinary code cells": imports and definitions every step can use.
CONTEXT_CELLS = [
    "import numpy as np\nimport pandas as pd\n"
    "from sklearn.linear_model import LinearRegression\n"
    "from sklearn.dummy import DummyRegressor",
]

# Ten rows with a labelled (non-default) index; y = 3x + 1 exactly.
TRAIN = (
    "_X = pd.DataFrame({'x': np.arange(10.0)})\n"
    "model = LinearRegression().fit(_X, 3 * _X['x'] + 1)"
)
BATCH = "batch = pd.DataFrame({'x': np.arange(7.0) * 2}, index=[f'row{i}' for i in range(7)][::-1])"


def make(tmp_path, name: str = "kinds", **parameters) -> Pipeline:
    p = Pipeline(name, home=tmp_path, context=Context.from_cells(CONTEXT_CELLS))
    for key, value in parameters.items():
        p.add_parameter(key, value)
    return p


def statuses(ex) -> dict[str, str]:
    return {name: record.status for name, record in ex.steps.items()}


def listed(ex) -> dict[str, dict]:
    """``list_steps()`` keyed by step name."""
    return {s["StepName"]: s for s in ex.list_steps()}


# ------------------------------------------------------------------------------------------------
# processing
# ------------------------------------------------------------------------------------------------


def test_processing_outputs_and_inputs_are_inferred(tmp_path):
    p = make(tmp_path, n=4)
    make_step = p.add_step("Make", (
        "import math\n"
        "_hidden = 1\n"
        "a, (b, c) = 1, (2, 3)\n"
        "if a:\n"
        "    d = 4\n"
        "def helper():\n"
        "    return 5\n"
        "e = helper() + math.floor(2.5) + n\n"
    ))
    assert make_step.outputs == ("a", "b", "c", "d", "e")
    use = p.add_step("Use", "total = a + b + c + d + e")
    assert use.outputs == ("total",)
    row = {r["Name"]: r for r in p.list_steps()}
    assert row["Make"]["Parameters"] == ["n"]
    assert row["Make"]["Inputs"] == []
    assert sorted(row["Use"]["Inputs"]) == ["a", "b", "c", "d", "e"]
    assert row["Use"]["Upstream"] == ["Make"]

    ex = p.start()
    assert ex.status == "Succeeded", ex.failure_reason
    assert ex.result("Make", "e") == 5 + 2 + 4
    assert ex.result("Use", "total") == 1 + 2 + 3 + 4 + 11
    assert set(ex.steps["Make"].outputs) == {"a", "b", "c", "d", "e"}  # no _hidden, helper, math


def test_processing_declared_output_never_assigned_is_a_contract_error(tmp_path):
    p = make(tmp_path)
    p.add_step("Make", "xs = [1, 2, 3]")
    p.add_step("Sum", "total = sum(xs)\nif total > 100:\n    extra = 1", outputs=["total", "extra"])
    p.add_step("After", "z = extra + 1")
    ex = p.start()
    assert ex.status == "Failed"
    assert statuses(ex) == {"Make": "Succeeded", "Sum": "Failed", "After": "NotRun"}
    reason = ex.steps["Sum"].failure_reason
    assert reason.startswith("Step `Sum` should output `extra`")
    assert "never assigned" in reason
    assert "`total`" not in reason  # only the missing output is named
    assert ex.failure_reason == reason
    assert ex.describe()["FailureReason"] == reason
    assert listed(ex)["Sum"]["FailureReason"] == reason


def test_processing_user_exception_gives_the_users_traceback_only(tmp_path):
    p = make(tmp_path, n=3)
    p.add_step("Make", "xs = list(range(n))")
    p.add_step("Boom", (
        "def ratio(a, b):\n"
        "    return a / b\n"
        "total = sum(xs)\n"
        "value = ratio(total, n - 3)\n"
    ))
    p.add_step("After", "again = value * 2")
    p.add_step("Independent", "other = n + 1")
    ex = p.start()

    assert ex.status == "Failed"
    assert statuses(ex) == {"Make": "Succeeded", "Boom": "Failed", "After": "NotRun",
                            "Independent": "Succeeded"}
    record = ex.steps["Boom"]
    assert record.failure_reason == "Step `Boom` raised ZeroDivisionError: division by zero"
    assert ex.failure_reason == record.failure_reason
    tb = record.traceback
    assert tb.startswith("Traceback (most recent call last):")
    assert 'File "<step Boom>", line 4, in <module>' in tb
    assert "value = ratio(total, n - 3)" in tb
    assert 'File "<step Boom>", line 2, in ratio' in tb
    assert "return a / b" in tb
    assert tb.rstrip().endswith("ZeroDivisionError: division by zero")
    frames = [line for line in tb.splitlines() if line.lstrip().startswith("File ")]
    assert len(frames) == 2, tb
    assert "jupyter_pipelines" not in tb and ".py" not in tb, tb


def test_processing_captures_stdout_and_stderr_per_step(tmp_path, capsys):
    p = make(tmp_path)
    p.add_step("Talk", "import sys\nprint('hello', 1)\nprint('careful', file=sys.stderr)\nx = 1")
    p.add_step("Quiet", "y = x + 1")
    ex = p.start()
    assert ex.status == "Succeeded"
    assert ex.steps["Talk"].stdout == "hello 1\n"
    assert ex.steps["Talk"].stderr == "careful\n"
    assert ex.steps["Quiet"].stdout == "" and ex.steps["Quiet"].stderr == ""
    out, err = capsys.readouterr()
    assert "hello" not in out and "careful" not in err  # captured, not echoed


# ------------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------------


def test_training_outputs_a_fitted_estimator(tmp_path):
    p = make(tmp_path)
    p.add_step("Train", TRAIN, "training")
    ex = p.start()
    assert ex.status == "Succeeded", ex.failure_reason
    assert listed(ex)["Train"]["StepType"] == "training"
    model = ex.result("Train", "model")
    assert model.predict(pd.DataFrame({"x": [2.0]}))[0] == pytest.approx(7.0)


def test_training_unfitted_estimator_fails(tmp_path):
    p = make(tmp_path)
    p.add_step("Train", "model = LinearRegression()", "training")
    p.add_step("Use", "kind = type(model).__name__")
    ex = p.start()
    assert ex.status == "Failed"
    assert statuses(ex) == {"Train": "Failed", "Use": "NotRun"}
    reason = ex.steps["Train"].failure_reason
    assert "Step `Train`" in reason and "`model`" in reason and "LinearRegression" in reason
    assert "not fitted" in reason
    assert ex.failure_reason == reason


def test_training_output_without_predict_fails(tmp_path):
    p = make(tmp_path)
    p.add_step("Train", "model = {'coef': 2.0}", "training")
    ex = p.start()
    assert ex.status == "Failed"
    reason = ex.steps["Train"].failure_reason
    assert reason.startswith("Step `Train` should output a fitted estimator as `model`")
    assert "dict" in reason and "no predict method" in reason


def test_training_model_option_names_another_output(tmp_path):
    p = make(tmp_path)
    p.add_step("Train", "reg = LinearRegression().fit([[0.0], [1.0]], [1.0, 3.0])\nscore = 0.5",
               "training", model="reg")
    ex = p.start()
    assert ex.status == "Succeeded", ex.failure_reason
    assert set(ex.steps["Train"].outputs) == {"reg", "score"}
    assert ex.result("Train", "reg").predict([[2.0]])[0] == pytest.approx(5.0)

    # the option is what the contract checks: `reg` unfitted fails even though `model` is absent
    p.add_step("Train", "reg = LinearRegression()\nscore = 0.5", "training", model="reg")
    ex = p.start()
    assert ex.status == "Failed"
    assert "`reg`" in ex.failure_reason and "not fitted" in ex.failure_reason


def test_training_model_name_must_be_an_output(tmp_path):
    p = make(tmp_path)
    pattern = r"Training step `Train` must output .* as `est`.*\['reg'\]"
    with pytest.raises(DefinitionError, match=pattern):
        p.add_step("Train", "reg = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])", "training",
                   model="est")
    with pytest.raises(DefinitionError, match=r"must output its fitted estimator as `model`"):
        p.add_step("Train", "reg = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])", "training")
    assert "Train" not in p.steps


# ------------------------------------------------------------------------------------------------
# condition
# ------------------------------------------------------------------------------------------------

MAKE_VALUES = (
    "report = {'mse': {'value': np.float64(2.5)}}\n"
    "label = 'b'\n"
    "n = 3\n"
    "xs = [0.1, 0.4, 0.9]"
)


def condition_pipeline(tmp_path, expression: str, t: float = 0.5) -> Pipeline:
    p = make(tmp_path, t=t)
    p.add_step("Make", MAKE_VALUES)
    p.add_step("Check", expression, "condition", if_steps=["Yes"], else_steps=["No"])
    p.add_step("Yes", "verdict = 'yes'")
    p.add_step("No", "verdict = 'no'")
    return p


# expression, outcome, [(operator, left value, right value), ...] recorded in evaluation order
CONDITIONS = [
    ("report['mse']['value'] <= t", False, [("<=", 2.5, 0.5)]),
    ("report['mse']['value'] > t", True, [(">", 2.5, 0.5)]),
    ("report['mse']['value'] > t and label == 'b'", True, [(">", 2.5, 0.5), ("==", "b", "b")]),
    ("label == 'a' or n >= 3", True, [("==", "b", "a"), (">=", 3, 3)]),
    ("label in ['a', 'c'] or not n > 2", False, [("in", "b", ["a", "c"]), (">", 3, 2)]),
    ("label not in ('a', 'c')", True, [("not in", "b", ("a", "c"))]),
    ("not n == 3", False, [("==", 3, 3)]),
    ("0 < t < 1", True, [("<", 0, 0.5), ("<", 0.5, 1)]),
    ("0 < t < 0.2", False, [("<", 0, 0.5), ("<", 0.5, 0.2)]),
    ("-1 < t != n", True, [("<", -1, 0.5), ("!=", 0.5, 3)]),
    ("xs[-1] >= 0.9", True, [(">=", 0.9, 0.9)]),
]


@pytest.mark.parametrize("expression, outcome, comparisons", CONDITIONS,
                         ids=[c[0] for c in CONDITIONS])
def test_condition_outcome_and_recorded_operands(tmp_path, expression, outcome, comparisons):
    ex = condition_pipeline(tmp_path, expression).start()
    assert ex.status == "Succeeded", ex.failure_reason
    taken, skipped = ("Yes", "No") if outcome else ("No", "Yes")
    assert statuses(ex)[taken] == "Succeeded" and statuses(ex)[skipped] == "Skipped"
    assert ex.result(taken, "verdict") == taken.lower()

    meta = listed(ex)["Check"]["Metadata"]["Condition"]
    assert meta["Outcome"] == str(outcome)
    got = [(c["Operator"], c["LeftValue"], c["RightValue"]) for c in meta["Comparisons"]]
    assert got == comparisons
    for c in meta["Comparisons"]:
        assert {"Type", "LeftExpression", "RightExpression", "Outcome"} <= set(c)
        for value in (c["LeftValue"], c["RightValue"]):
            assert not isinstance(value, np.generic)  # numpy scalars recorded as plain Python


def test_condition_records_operand_expressions(tmp_path):
    ex = condition_pipeline(tmp_path, "report['mse']['value'] <= t").start()
    (comp,) = listed(ex)["Check"]["Metadata"]["Condition"]["Comparisons"]
    assert comp["LeftExpression"] == "report['mse']['value']"
    assert comp["RightExpression"] == "t"
    assert comp["Type"] == "LessThanOrEqualTo"
    assert comp["Outcome"] == "False"


@pytest.mark.parametrize("expression, shown", [("n", "3 (int)"), ("label", "'b' (str)"),
                                               ("label == 'b' and n", "3 (int)")])
def test_condition_non_bool_result_fails(tmp_path, expression, shown):
    ex = condition_pipeline(tmp_path, expression).start()
    assert ex.status == "Failed"
    assert statuses(ex) == {"Make": "Succeeded", "Check": "Failed", "Yes": "NotRun", "No": "NotRun"}
    reason = ex.steps["Check"].failure_reason
    assert reason.startswith(f"Condition `Check` evaluated to {shown}, not True or False")
    assert ex.failure_reason == reason


def test_condition_array_comparison_fails_with_a_contract_message(tmp_path):
    p = make(tmp_path)
    p.add_step("Make", "arr = np.array([1, 2])")
    p.add_step("Check", "arr > 0", "condition")
    ex = p.start()
    assert ex.status == "Failed"
    reason = ex.steps["Check"].failure_reason
    assert reason.startswith("Condition `Check` evaluated `arr > 0` to ndarray"), reason
    assert "not True or False" in reason


@pytest.mark.parametrize("expression, expected", [
    ("max(xs) <= t", False),                  # a function call
    ("n + 1 > t", True),                      # arithmetic
    ("bool(n * 2)", True),
    ("len(xs) == 3", True),
    ("[x for x in xs] == xs", True),
    ("n is None", False),                     # `is` is evaluated whole
    ("t > 0 if n else False", True),          # a conditional expression
])
def test_any_python_condition_runs_locally(tmp_path, expression, expected):
    """Beyond SageMaker's condition language (calls, arithmetic, `is`): runs here; only the
    definition export refuses it (tests/test_definition_export.py)."""
    p = make(tmp_path, t=0.5)
    p.add_step("Make", MAKE_VALUES)
    p.add_step("Check", expression, "condition")
    ex = p.start()
    assert ex.status == "Succeeded", ex.failure_reason
    assert ex.steps["Check"].metadata["Condition"]["Outcome"] == str(expected)


@pytest.mark.parametrize("code", ["n > 1\nn < 5", "ok = n > 1", "x = 1\nx > 0", ""])
def test_condition_must_be_one_expression(tmp_path, code):
    p = make(tmp_path)
    with pytest.raises(DefinitionError, match=r"Step `Check` is a condition step, so its cell must "
                                              r"be exactly one Python expression"):
        p.add_step("Check", code, "condition")


def test_condition_branch_not_taken_and_its_dependents_are_skipped(tmp_path):
    p = make(tmp_path, t=0.5)
    p.add_step("Make", "n = 3")
    p.add_step("Check", "n > t", "condition", if_steps=["Yes"], else_steps=["No"])
    p.add_step("Yes", "a = 'yes'")
    p.add_step("No", "b = 'no'")
    p.add_step("UsesA", "a2 = a + str(n)")
    p.add_step("AfterYes", "z = 1", depends_on=["Yes"])
    p.add_step("UsesB", "b2 = b + str(n)")          # reads the skipped branch and Make
    p.add_step("UsesB2", "b3 = b2")                 # two levels down the skipped branch
    p.add_step("AfterNo", "w = 1", depends_on=["No"])
    p.add_step("Independent", "v = n * 2")
    ex = p.start()
    assert ex.status == "Succeeded", ex.failure_reason
    assert statuses(ex) == {
        "Make": "Succeeded", "Check": "Succeeded", "Yes": "Succeeded", "No": "Skipped",
        "UsesA": "Succeeded", "AfterYes": "Succeeded", "UsesB": "Skipped", "UsesB2": "Skipped",
        "AfterNo": "Skipped", "Independent": "Succeeded",
    }
    skipped = {n: s for n, s in listed(ex).items() if s["StepStatus"] == "Skipped"}
    assert set(skipped) == {"No", "UsesB", "UsesB2", "AfterNo"}  # Skipped steps are listed


@pytest.mark.parametrize("threshold, taken, estimator", [
    (10.0, "TrainLinear", "LinearRegression"),
    (0.0, "TrainDummy", "DummyRegressor"),
])
def test_condition_branches_rejoin(tmp_path, threshold, taken, estimator):
    """Both branches output `model`; the step reading it runs on either outcome and gets the
    value of the branch that ran."""
    p = make(tmp_path, threshold=threshold)
    p.add_step("Make", "X = [[0.0], [1.0], [2.0]]\ny = [1.0, 3.0, 5.0]\nmse = 1.0")
    p.add_step("Check", "mse <= threshold", "condition", if_steps=["TrainLinear"],
               else_steps=["TrainDummy"])
    p.add_step("TrainLinear", "model = LinearRegression().fit(X, y)", "training")
    p.add_step("TrainDummy", "model = DummyRegressor(strategy='constant', constant=42.0).fit(X, y)",
               "training")
    p.add_step("Use", "name = type(model).__name__\nprediction = float(model.predict([[3.0]])[0])")
    ex = p.start()
    assert ex.status == "Succeeded", ex.failure_reason
    other = {"TrainLinear": "TrainDummy", "TrainDummy": "TrainLinear"}[taken]
    assert statuses(ex)[taken] == "Succeeded"
    assert statuses(ex)[other] == "Skipped"
    assert statuses(ex)["Use"] == "Succeeded"
    assert ex.result("Use", "name") == estimator
    expected = 42.0 if taken == "TrainDummy" else 7.0  # the constant, or 2 * 3 + 1 on the line
    assert ex.result("Use", "prediction") == pytest.approx(expected)
    assert sorted(p.graph().upstream["Use"]) == ["TrainDummy", "TrainLinear"]


# ------------------------------------------------------------------------------------------------
# fail
# ------------------------------------------------------------------------------------------------


def test_fail_step_ends_the_execution_with_its_message(tmp_path):
    p = make(tmp_path, limit=2.0, who="bob")
    p.add_step("Make", "value = 3.25")
    p.add_step("Later", "base = 10")  # ready only after Stop has been scheduled
    p.add_step("Stop", "f'{who}: value {value:.1f} is above {limit}'", "fail")
    p.add_step("Independent", "other = base + 1")
    p.add_step("AfterStop", "never = 1", depends_on=["Stop"])
    ex = p.start(parameters={"who": "amy", "limit": 3})

    expected = "amy: value 3.2 is above 3.0"
    assert ex.status == "Failed"
    assert ex.failure_reason == expected
    assert ex.describe()["PipelineExecutionStatus"] == "Failed"
    assert ex.describe()["FailureReason"] == expected
    record = ex.steps["Stop"]
    assert record.status == "Failed" and record.failure_reason == expected
    assert listed(ex)["Stop"]["FailureReason"] == expected
    assert listed(ex)["Stop"]["StepType"] == "fail"
    assert statuses(ex)["Independent"] == "Succeeded"
    assert ex.result("Independent", "other") == 11
    assert statuses(ex)["AfterStop"] == "NotRun"


def test_fail_step_on_the_branch_not_taken_is_skipped(tmp_path):
    p = make(tmp_path, limit=5.0)
    p.add_step("Make", "value = 3.0")
    p.add_step("Check", "value <= limit", "condition", else_steps=["Stop"])
    p.add_step("Stop", "f'value {value} > {limit}'", "fail")
    ex = p.start()
    assert ex.status == "Succeeded" and ex.failure_reason is None
    assert listed(ex)["Stop"]["StepStatus"] == "Skipped"
    ex = p.start({"limit": 1.0})
    assert ex.status == "Failed" and ex.failure_reason == "value 3.0 > 1.0"


def test_fail_step_must_be_one_expression(tmp_path):
    p = make(tmp_path)
    with pytest.raises(DefinitionError, match="Step `Stop` is a fail step, so its cell must be "
                                              "exactly one Python expression"):
        p.add_step("Stop", "message = 'no'", "fail")


# ------------------------------------------------------------------------------------------------
# register-model
# ------------------------------------------------------------------------------------------------


def register_pipeline(tmp_path, group="Models", metrics=True, **options) -> Pipeline:
    p = make(tmp_path, status="Approved")
    p.add_step("Train", TRAIN + "\nreport = {'mse': np.float64(0.25), 'rows': np.int64(10)}",
               "training")
    opts = {"model": "model", "group": group, **options}
    if metrics:
        opts["metrics"] = "report"
    # --no-cache: each run registers a new version (a cached run would name the existing one)
    p.add_step("Register", "", "register-model", cache=False, **opts)
    return p


def test_register_model_versions_per_group_and_metadata(tmp_path):
    p = register_pipeline(tmp_path, approval_status="Approved")
    versions = []
    for _ in range(3):
        ex = p.start()
        assert ex.status == "Succeeded", ex.failure_reason
        package = ex.result("Register", "model_package")
        versions.append(package.version)
        meta = listed(ex)["Register"]["Metadata"]["RegisterModel"]
        assert meta["Group"] == "Models" and meta["Version"] == package.version
        assert meta["ModelApprovalStatus"] == "Approved"
        assert listed(ex)["Register"]["StepType"] == "register-model"
    assert versions == [1, 2, 3]

    other = register_pipeline(tmp_path, group="OtherGroup").start()
    assert other.result("Register").version == 1  # numbering is per group
    assert [pk.version for pk in registry.list_packages("Models", home=tmp_path)] == [1, 2, 3]
    assert [pk.version for pk in registry.list_packages("OtherGroup", home=tmp_path)] == [1]


def test_register_model_approval_status_literal_and_parameter(tmp_path):
    literal = register_pipeline(tmp_path, group="Lit", approval_status="Rejected").start()
    assert literal.result("Register").approval_status == "Rejected"

    default = register_pipeline(tmp_path, group="Lit").start()
    assert default.result("Register").approval_status == "PendingManualApproval"

    p = register_pipeline(tmp_path, group="Par", approval_status="status")
    assert p.list_steps()[1]["Parameters"] == ["status"]
    assert p.start().result("Register").approval_status == "Approved"  # the default
    assert p.start({"status": "Rejected"}).result("Register").approval_status == "Rejected"
    stored = {pk.version: pk.approval_status for pk in registry.list_packages("Par", home=tmp_path)}
    assert stored == {1: "Approved", 2: "Rejected"}
    assert [pk.approval_status for pk in registry.list_packages("Lit", home=tmp_path)] == [
        "Rejected", "PendingManualApproval"]


def test_register_model_invalid_status_from_a_parameter_fails(tmp_path):
    p = register_pipeline(tmp_path, approval_status="status")
    ex = p.start({"status": "Bogus"})
    assert ex.status == "Failed"
    reason = ex.steps["Register"].failure_reason
    assert reason.startswith("Step `Register`")
    assert "`status`" in reason and "'Bogus'" in reason
    assert "PendingManualApproval" in reason and "Approved" in reason and "Rejected" in reason
    assert ex.failure_reason == reason
    assert registry.list_packages("Models", home=tmp_path) == []  # nothing registered


def test_register_model_invalid_literal_status_is_a_definition_error(tmp_path):
    with pytest.raises(DefinitionError, match=r"--approval-status 'Not approved'"):
        register_pipeline(tmp_path, approval_status="Not approved")


def test_register_model_metrics_lineage_and_round_trip(tmp_path):
    p = register_pipeline(tmp_path)
    first = p.start()
    second = p.start()
    assert first.status == second.status == "Succeeded"
    packages = registry.list_packages("Models", home=tmp_path)
    assert [pk.version for pk in packages] == [1, 2]
    for package, ex in zip(packages, (first, second), strict=True):
        assert package.group == "Models"
        assert package.metrics == {"mse": 0.25, "rows": 10}
        assert package.execution_id == ex.id
        assert package.step_name == "Register"
        assert package.model_type.endswith("LinearRegression")
        assert package.describe()["PipelineExecutionArn"] == ex.id
    assert registry.list_packages(home=tmp_path) == packages

    loaded = registry.load_model("Models", 2, home=tmp_path)
    latest = registry.load_model("Models", "latest", home=tmp_path)
    original = second.result("Train", "model")
    X = pd.DataFrame({"x": [0.0, 5.0, 100.0]})
    np.testing.assert_allclose(loaded.predict(X), original.predict(X))
    np.testing.assert_allclose(latest.predict(X), [1.0, 16.0, 301.0])
    with pytest.raises(registry.RegistryError, match="latest-approved"):
        registry.load_model("Models", "latest-approved", home=tmp_path)  # both are pending
    with pytest.raises(registry.RegistryError, match="Models"):
        registry.load_model("Modles", home=tmp_path)


def test_register_model_metrics_may_hold_numpy_arrays(tmp_path):
    p = make(tmp_path)
    p.add_step("Train", TRAIN + "\nreport = {'errors': np.array([0.5, 1.5])}", "training")
    p.add_step("Register", "", "register-model", model="model", group="Arr", metrics="report")
    ex = p.start()
    assert ex.status == "Succeeded", ex.failure_reason
    (package,) = registry.list_packages("Arr", home=tmp_path)
    assert package.metrics == {"errors": [0.5, 1.5]}


@pytest.mark.parametrize("missing", ["group", "model"])
def test_register_model_requires_group_and_model(tmp_path, missing):
    options = {"model": "model", "group": "Models"}
    del options[missing]
    p = make(tmp_path)
    pattern = rf"Step `Register` is a register-model step and needs --{missing}"
    with pytest.raises(DefinitionError, match=pattern):
        p.add_step("Register", "", "register-model", **options)


def _register_many(home: str, count: int, go, results) -> None:
    """Worker: register ``count`` versions through a register-model step once all are ready."""
    p = Pipeline("concurrent", home=home, context=Context.from_cells(CONTEXT_CELLS))
    p.add_step("Train", "model = DummyRegressor().fit([[0.0], [1.0]], [0.0, 1.0])", "training")
    p.add_step("Register", "", "register-model", model="model", group="Shared", cache=False)
    go.wait(60)
    out = []
    for _ in range(count):
        ex = p.start()
        package = ex.steps["Register"].outputs.get("model_package")
        out.append((ex.status, ex.failure_reason, package.version if package else None))
    results.put(out)


def test_register_model_concurrent_processes_get_distinct_versions(tmp_path):
    outs = in_processes(_register_many, str(tmp_path), 20)
    runs = [r for out in outs for r in out]
    assert [r for r in runs if r[0] != "Succeeded"] == []
    assert sorted(r[2] for r in runs) == list(range(1, 41))
    stored = registry.list_packages("Shared", home=tmp_path)
    assert [pk.version for pk in stored] == list(range(1, 41))
    assert len({pk.execution_id for pk in stored}) == 40


# ------------------------------------------------------------------------------------------------
# create-model + transform
# ------------------------------------------------------------------------------------------------


def transform_pipeline(tmp_path, create_code="", data_code=BATCH, **transform_options) -> Pipeline:
    p = make(tmp_path)
    p.add_step("Train", TRAIN, "training")
    p.add_step("Data", data_code)
    p.add_step("Create", create_code, "create-model", model="model")
    p.add_step("Score", "", "transform", model="Create", data="batch", **transform_options)
    return p


def test_create_model_default_predict_and_predictions_aligned_with_index(tmp_path):
    ex = transform_pipeline(tmp_path).start()
    assert ex.status == "Succeeded", ex.failure_reason
    entity = ex.result("Create", "model_entity")
    assert entity.predict_fn is None
    batch = ex.result("Data", "batch")
    predictions = ex.result("Score", "predictions")
    assert isinstance(predictions, pd.Series)
    assert predictions.index.equals(batch.index)
    expected = 3 * batch["x"] + 1
    np.testing.assert_allclose(predictions.to_numpy(), expected.to_numpy())
    np.testing.assert_allclose(predictions.loc["row0"], 3 * 12.0 + 1)  # row0 is the last row
    assert listed(ex)["Score"]["Metadata"]["Transform"] == {"Rows": 7, "BatchSize": 1024}
    assert listed(ex)["Create"]["StepType"] == "create-model"


def test_create_model_custom_predict_is_used(tmp_path):
    code = "def predict(model, data):\n    return np.clip(model.predict(data), None, 20.0) * 10"
    ex = transform_pipeline(tmp_path, code).start()
    assert ex.status == "Succeeded", ex.failure_reason
    assert ex.result("Create").predict_fn is not None
    batch = ex.result("Data", "batch")
    expected = np.clip(3 * batch["x"].to_numpy() + 1, None, 20.0) * 10
    np.testing.assert_allclose(ex.result("Score").to_numpy(), expected)
    assert ex.result("Score").index.equals(batch.index)


def test_transform_ndarray_data_gives_an_ndarray(tmp_path):
    p = transform_pipeline(tmp_path, "def predict(model, data):\n    return data[:, 0] * 2",
                           data_code="batch = np.arange(12.0).reshape(6, 2)")
    ex = p.start()
    assert ex.status == "Succeeded", ex.failure_reason
    predictions = ex.result("Score")
    assert isinstance(predictions, np.ndarray)
    np.testing.assert_array_equal(predictions, np.arange(0.0, 12.0, 2) * 2)


def test_transform_list_of_rows(tmp_path):
    code = "def predict(model, data):\n    return np.asarray(data)[:, 0] * 3 + 1"
    ex = transform_pipeline(tmp_path, code, data_code="batch = [[1.0], [2.0], [3.0]]",
                            batch_size=2).start()
    assert ex.status == "Succeeded", ex.failure_reason
    np.testing.assert_allclose(np.asarray(ex.result("Score")), [4.0, 7.0, 10.0])


@pytest.mark.parametrize("size", [1, 2, 3, 6])
def test_transform_batches_give_the_same_predictions(tmp_path, size):
    calls = "def predict(model, data):\n    assert len(data) <= %d\n    return model.predict(data)"
    whole = transform_pipeline(tmp_path).start()
    batched = transform_pipeline(tmp_path, calls % size, batch_size=size).start()
    assert batched.status == "Succeeded", batched.failure_reason
    pd.testing.assert_series_equal(batched.result("Score"), whole.result("Score"),
                                   check_exact=False, rtol=1e-12)
    assert listed(batched)["Score"]["Metadata"]["Transform"] == {"Rows": 7, "BatchSize": size}


def test_transform_wrong_number_of_predictions_fails(tmp_path):
    code = "def predict(model, data):\n    return model.predict(data)[:1]"
    ex = transform_pipeline(tmp_path, code, batch_size=4).start()
    assert ex.status == "Failed"
    reason = ex.steps["Score"].failure_reason
    assert reason.startswith("Step `Score`: the model returned 1 predictions for a batch of 4 rows")
    assert "one per row" in reason
    assert ex.failure_reason == reason


def test_transform_scalar_prediction_fails_with_a_contract_message(tmp_path):
    ex = transform_pipeline(tmp_path, "def predict(model, data):\n    return 5.0").start()
    assert ex.status == "Failed"
    reason = ex.steps["Score"].failure_reason
    assert reason.startswith("Step `Score`"), reason
    assert "one per row" in reason, reason


def test_transform_user_predict_exception_is_reported_like_a_step_exception(tmp_path):
    code = "def predict(model, data):\n    scale = 1 / 0\n    return model.predict(data) * scale"
    ex = transform_pipeline(tmp_path, code).start()
    assert ex.status == "Failed"
    record = ex.steps["Score"]
    reason = record.failure_reason
    assert reason.startswith("Step `Score` raised ZeroDivisionError"), reason
    assert record.traceback and "scale = 1 / 0" in record.traceback
    assert "jupyter_pipelines" not in record.traceback


def test_transform_model_must_name_a_create_model_step(tmp_path):
    p = transform_pipeline(tmp_path)
    p.add_step("Score", "", "transform", model="Train", data="batch")
    with pytest.raises(UnknownReferenceError, match=r"`Train` is a training step.*create-model"):
        p.start()
    p.add_step("Score", "", "transform", model="Craete", data="batch")
    pattern = r"`Craete`, which does not exist\. Did you mean `Create`\?"
    with pytest.raises(UnknownReferenceError, match=pattern):
        p.start()


def test_create_model_with_unfitted_model_fails(tmp_path):
    p = transform_pipeline(tmp_path)
    p.add_step("Create", "raw = LinearRegression()", "create-model", model="raw")
    ex = p.start()
    assert ex.status == "Failed"
    assert statuses(ex)["Create"] == "Failed" and statuses(ex)["Score"] == "NotRun"
    assert "Step `Create`" in ex.failure_reason and "not fitted" in ex.failure_reason


@pytest.mark.parametrize("size", [0, -3, "x", "10", 2.5, True])
def test_transform_bad_batch_size_is_a_definition_error(tmp_path, size):
    p = make(tmp_path)
    pattern = rf"Step `Score`: --batch-size must be a positive whole number; got {size!r}"
    with pytest.raises(DefinitionError, match=pattern):
        p.add_step("Score", "", "transform", model="Create", data="batch", batch_size=size)


@pytest.mark.parametrize("missing", ["model", "data"])
def test_transform_requires_model_and_data(tmp_path, missing):
    options = {"model": "Create", "data": "batch"}
    del options[missing]
    with pytest.raises(DefinitionError, match=rf"needs --{missing}"):
        make(tmp_path).add_step("Score", "", "transform", **options)


# ------------------------------------------------------------------------------------------------
# unknown kinds and options
# ------------------------------------------------------------------------------------------------


def test_unknown_kind_is_a_definition_error_with_a_suggestion(tmp_path):
    p = make(tmp_path)
    with pytest.raises(DefinitionError) as info:
        p.add_step("Make", "x = 1", "procesing")
    message = str(info.value)
    assert message.startswith(
        "Step `Make` has unknown kind 'procesing'. Did you mean `processing`?")
    assert "register-model" in message and "transform" in message  # lists the kinds
    with pytest.raises(DefinitionError, match=r"Did you mean `register-model`"):
        p.add_step("Reg", "", "register_model", model="m", group="G")


def test_unknown_option_is_a_definition_error_with_a_suggestion(tmp_path):
    p = make(tmp_path)
    with pytest.raises(DefinitionError) as info:
        p.add_step("Score", "", "transform", model="Create", data="batch", bach_size=3)
    message = str(info.value)
    assert message.startswith("Step `Score` of kind transform does not take the option `bach_size`."
                              " Did you mean `batch_size`?")
    assert "`model`, `data`, `batch_size`" in message
    with pytest.raises(DefinitionError, match=r"Step `Make` of kind processing does not take the "
                                              r"option `model`"):
        p.add_step("Make", "model = 1", model="model")
    with pytest.raises(DefinitionError, match=r"Did you mean `if_steps`"):
        p.add_step("Check", "1 > 0", "condition", if_step=["A"])
