"""The same behaviours through the magics (a real IPython shell) and the Python API."""

from __future__ import annotations

import pytest

from jupyter_pipelines.errors import (
    CycleError,
    DuplicateOutputError,
    ParameterError,
    PipelineError,
    UnknownReferenceError,
)


def statuses(execution) -> dict[str, str]:
    """Each step's status; a step that reused a stored result (Cached) counts as Succeeded,
    since the magic door has already run each step once in its cell."""
    return {name: "Succeeded" if record.status == "Cached" else record.status
            for name, record in execution.steps.items()}


def test_data_flow_makes_the_dag_and_runs_in_order(door):
    door.context("import math\n\ndef square(v):\n    return v * v")
    door.parameters(n=4)
    door.step("Make", "xs = [square(i) for i in range(n)]")
    door.step("Total", "total = sum(xs) + math.floor(0.5)")
    ex = door.run()
    assert ex.status == "Succeeded"
    assert statuses(ex) == {"Make": "Succeeded", "Total": "Succeeded"}
    assert ex.result("Total", "total") == 0 + 1 + 4 + 9
    assert door.pipeline.graph().upstream["Total"] == ("Make",)


def test_parameter_override_and_bad_override(door):
    door.parameters(n=2, scale=1.5, label="x", flag=True)
    door.step("Use", "out = (n * scale, label, flag)")
    assert door.run(n=3, scale=2, label="y", flag="false").result("Use", "out") == (6.0, "y", False)
    with pytest.raises(ParameterError, match=r"`n` is an Integer.*'three'"):
        door.run(n="three")
    with pytest.raises(ParameterError, match="Did you mean `scale`"):
        door.run(scael=1)


def test_condition_branches_and_fail_step(door):
    door.parameters(threshold=6.0)
    door.step("Eval", "mse = 4.5")
    door.step("Check", "mse <= threshold", "condition", if_steps=["Register"], else_steps=["Stop"])
    door.step("Register", "registered = True")
    door.step("Stop", 'f"MSE {mse} is above {threshold}"', "fail")
    door.step("After", "done = registered")

    ok = door.run()
    assert ok.status == "Succeeded"
    assert statuses(ok) == {"Eval": "Succeeded", "Check": "Succeeded", "Register": "Succeeded",
                            "Stop": "Skipped", "After": "Succeeded"}
    cond = next(s for s in ok.list_steps() if s["StepName"] == "Check")["Metadata"]["Condition"]
    assert cond["Outcome"] == "True"
    assert cond["Comparisons"][0]["LeftValue"] == 4.5 and cond["Comparisons"][0]["RightValue"] == 6.0

    bad = door.run(threshold=3.0)
    assert bad.status == "Failed"
    assert bad.failure_reason == "MSE 4.5 is above 3.0"
    assert statuses(bad) == {"Eval": "Succeeded", "Check": "Succeeded", "Register": "Skipped",
                             "Stop": "Failed", "After": "Skipped"}
    assert bad.describe()["FailureReason"] == "MSE 4.5 is above 3.0"


def test_branch_rejoin_runs_downstream_of_both_branches(door):
    door.parameters(big=True)
    door.step("Check", "big == True", "condition", if_steps=["Large"], else_steps=["Small"])
    door.step("Large", "size = 100")
    door.step("Small", "size = 1")
    door.step("Report", "text = f'size={size}'")
    assert door.run().result("Report", "text") == "size=100"
    small = door.run(big=False)
    assert small.result("Report", "text") == "size=1"
    assert statuses(small)["Large"] == "Skipped" and statuses(small)["Report"] == "Succeeded"


def test_duplicate_output_names_both_steps(door):
    door.step("A", "x = 1")
    with pytest.raises(DuplicateOutputError, match="`A` and `B` both output `x`"):
        door.step("B", "x = 2")
        door.run()


def test_cycle_is_reported_as_a_path(door):
    door.step("a", "x = 1")
    door.step("b", "y = x + 1")
    with pytest.raises(CycleError, match="a -> b -> a|b -> a -> b"):
        door.step("a", "x = 1", depends_on=["b"])
        door.run()


def test_unknown_input_suggests_close_matches(door):
    door.step("Make", "report = {'mse': 1.0}")
    with pytest.raises(UnknownReferenceError, match="reads `reprot`.*Did you mean `report`"):
        door.step("Use", "value = reprot['mse']")
        door.run()


def test_failing_step_stops_what_depends_on_it_only(door):
    door.step("Ok", "a = 1")
    door.step("Boom", "b = 1 / 0")
    door.step("Later", "c = b + 1")
    door.step("Independent", "d = a + 1")
    ex = door.run()
    assert ex.status == "Failed"
    assert "ZeroDivisionError" in ex.failure_reason and "`Boom`" in ex.failure_reason
    assert statuses(ex) == {"Ok": "Succeeded", "Boom": "Failed", "Later": "NotRun",
                            "Independent": "Succeeded"}
    assert "Later" not in [s["StepName"] for s in ex.list_steps()]
    assert "<step Boom>" in ex.steps["Boom"].traceback
    assert "jupyter_pipelines" not in ex.steps["Boom"].traceback


def test_register_create_transform(door):
    door.context("import numpy as np\nfrom sklearn.linear_model import LinearRegression")
    door.parameters(status="Approved")
    door.step("Train", "X = np.arange(10.0).reshape(-1, 1)\nmodel = LinearRegression().fit(X, 3 * X.ravel())",
              "training")
    door.step("Register", "", "register-model", model="model", group="G", approval_status="status")
    door.step("Create", "def predict(model, data):\n    return model.predict(data) + 1", "create-model",
              model="model")
    door.step("Score", "", "transform", model="Create", data="X", batch_size=3)
    ex = door.run()
    assert ex.status == "Succeeded", ex.failure_reason
    package = ex.result("Register", "model_package")
    assert package.group == "G" and package.approval_status == "Approved"
    meta = next(s for s in ex.list_steps() if s["StepName"] == "Register")["Metadata"]
    assert meta["RegisterModel"]["Group"] == "G" and meta["RegisterModel"]["Version"] == package.version
    assert list(ex.result("Score", "predictions").round(6)) == [3.0 * i + 1 for i in range(10)]


def test_removing_a_step(door):
    door.step("A", "x = 1")
    door.step("B", "y = 2")
    door.pipeline.remove_step("B")
    assert list(door.pipeline.steps) == ["A"]
    with pytest.raises(PipelineError, match="no step `C`"):
        door.pipeline.remove_step("C")
