"""Inputs are lent, not copied: a step that changes another step's output fails, naming the
input, its producer and the fix, and every other reader (and the producer's result) keeps the
value as it was made. Through the Python API on the in-kernel executor and a thread pool, and
through `%%step` cells in a real IPython shell."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from jupyter_pipelines import Pipeline
from jupyter_pipelines.errors import PipelineError, RunError
from jupyter_pipelines.execution import StepRecord
from jupyter_pipelines.run import isolation
from jupyter_pipelines.run.task import TaskResult
from jupyter_pipelines.source import Context

from .conftest import run_cell

HELPERS = """
import copy
import time
import numpy as np
from sklearn.linear_model import LinearRegression

def fit():
    X = np.arange(20, dtype=float).reshape(-1, 1)
    return LinearRegression().fit(X, 3 * X[:, 0] + 1)
"""
EXECUTORS = ["in-kernel", "threads:3"]


def pipeline(**kwargs) -> Pipeline:
    p = Pipeline("iso", persist=False, **kwargs)
    p.context = Context.from_cells([HELPERS])
    return p


def statuses(execution) -> dict[str, str]:
    return {name: record.status for name, record in execution.steps.items()}


def assert_blames(reason: str, step: str, name: str, producer: str) -> None:
    assert f"Step `{step}` changed `{name}`, an output of step `{producer}`" in reason
    assert "not change them" in reason and f"as `{producer}` made it" in reason
    assert f"{name} = copy.deepcopy({name})" in reason


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("mutator", ["first", "last"])  # on threads: holds the model / a copy
def test_a_step_changing_a_model_fails_and_the_other_readers_get_it_intact(executor, mutator):
    p = pipeline()
    p.add_step("Fit", "model = fit()")
    readers = {"Tamper": "model.intercept_ = 100.0\nmodel.coef_[0] = 0.0\ntampered = 1",
               "Early": "early = float(model.predict([[2.0]])[0])",
               "Late": "time.sleep(0.2)\nlate = float(model.predict([[2.0]])[0])"}
    order = ["Tamper", "Early", "Late"] if mutator == "first" else ["Early", "Late", "Tamper"]
    for name in order:
        p.add_step(name, readers[name])
    ex = p.start(executor=executor, display=False)

    assert statuses(ex) == {"Fit": "Succeeded", "Tamper": "Failed", "Early": "Succeeded",
                            "Late": "Succeeded"}
    assert_blames(ex.steps["Tamper"].failure_reason, "Tamper", "model", "Fit")
    assert ex.failure_reason == ex.steps["Tamper"].failure_reason
    assert ex.result("Early", "early") == pytest.approx(7.0)
    assert ex.result("Late", "late") == pytest.approx(7.0)
    made = ex.result("Fit", "model")
    assert made.intercept_ == pytest.approx(1.0) and made.coef_[0] == pytest.approx(3.0)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_reading_without_changing_passes_the_producers_value_itself(executor):
    p = pipeline()
    p.add_step("Make", "config = {'layers': [1, 2], 'name': 'net'}")
    p.add_step("Use", "copied = copy.deepcopy(config)\ncopied['layers'].append(3)\nn = len(copied['layers'])")
    p.add_step("Read", "same = config['layers'] == [1, 2]")
    ex = p.start(executor=executor, display=False)
    assert set(statuses(ex).values()) == {"Succeeded"}  # the fix the message gives works
    assert ex.result("Use", "n") == 3 and ex.result("Read", "same") is True
    assert ex.result("Make", "config") == {"layers": [1, 2], "name": "net"}


def test_a_mutation_through_another_output_holding_the_same_object_is_undone_too():
    """The create-model step's entity holds the very model `Fit` made: a step that changes the
    model after the entity exists must not change what the transform predicts with."""
    p = pipeline()
    p.add_step("Fit", "model = fit()\nbatch = np.array([[2.0], [4.0]])")
    p.add_step("Package", "", "create-model", model="model")
    p.add_step("Tamper", "model.intercept_ = 100.0\nt = 1", depends_on=["Package"])
    p.add_step("Predict", "", "transform", model="Package", data="batch")
    order = []
    ex = p.start(display=False, listeners=[
        lambda event, *, step=None, **_: order.append(step) if event == "step_started" else None])
    assert order.index("Tamper") < order.index("Predict")  # the entity existed when it changed
    assert statuses(ex)["Tamper"] == "Failed" and statuses(ex)["Predict"] == "Succeeded"
    assert_blames(ex.steps["Tamper"].failure_reason, "Tamper", "model", "Fit")
    assert ex.result("Predict", "predictions").tolist() == pytest.approx([7.0, 13.0])


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_predict_function_changing_the_model_fails_its_transform(executor):
    p = pipeline()
    p.add_step("Fit", "model = fit()\nbatch = np.array([[2.0], [4.0]])")
    p.add_step("Package", "def predict(model, data):\n    model.intercept_ += 1.0\n"
                          "    return model.predict(data)", "create-model", model="model")
    p.add_step("Bad", "", "transform", model="Package", data="batch", outputs=["bad"])
    p.add_step("Again", "", "transform", model="Package", data="batch", outputs=["again"])
    ex = p.start(executor=executor, display=False)
    reason = ex.steps["Bad"].failure_reason
    assert statuses(ex)["Bad"] == statuses(ex)["Again"] == "Failed"  # the same function: both
    assert "Step `Bad` changed the model of create-model step `Package`" in reason
    assert "model = copy.deepcopy(model)` first (in the predict function)" in reason
    assert ex.result("Fit", "model").intercept_ == pytest.approx(1.0)
    assert ex.result("Package", "model_entity").model.intercept_ == pytest.approx(1.0)


def test_a_step_that_fails_for_its_own_reason_also_says_it_changed_an_input():
    p = pipeline()
    p.add_step("Make", "config = {'layers': [1, 2]}")
    p.add_step("Both", "config['layers'].clear()\nx = 1 / 0")
    p.add_step("Read", "n = len(config['layers'])")
    ex = p.start(display=False)
    reason = ex.steps["Both"].failure_reason
    assert "ZeroDivisionError" in reason and "Besides, step `Both` changed `config`" in reason
    assert ex.result("Read", "n") == 2


def test_a_value_that_cannot_be_pickled_is_still_deep_copied_for_each_reader():
    p = pipeline()
    p.context = Context.from_cells([HELPERS, """
class Box:  # copyable, not picklable
    def __init__(self):
        self.items = [1]

    def __reduce__(self):
        raise TypeError("no pickling")

    def __deepcopy__(self, memo):
        other = Box()
        other.items = list(self.items)
        return other
"""])
    p.add_step("Make", "box = Box()")
    p.add_step("Grow", "box.items.append(2)\ngrown = len(box.items)")
    p.add_step("Read", "n = len(box.items)")
    ex = p.start(display=False)
    assert set(statuses(ex).values()) == {"Succeeded"}  # changes stay in the step's own copy
    assert ex.result("Grow", "grown") == 2 and ex.result("Read", "n") == 1
    assert ex.result("Make", "box").items == [1]


def test_magic_a_step_cell_changing_an_input_fails_and_later_cells_see_the_original(ip):
    run_cell(ip, "%%step Make\nconfig = {'layers': [1, 2], 'rate': 0.1}")
    with pytest.raises(RunError) as info:
        run_cell(ip, "%%step Grow\nconfig['layers'].append(3)\nconfig['rate'] = 1.0\ngrown = 1")
    assert_blames(str(info.value), "Grow", "config", "Make")
    run_cell(ip, "%%step Count\nk = len(config['layers'])\nrate = config['rate']")  # reuses Make
    assert ip.user_ns["k"] == 2 and ip.user_ns["rate"] == 0.1
    assert ip.user_ns["config"] == {"layers": [1, 2], "rate": 0.1}


def test_magic_threads_run_fails_only_the_changing_step(ip):
    run_cell(ip, "import time")
    run_cell(ip, "%%step Make\nconfig = {'layers': [1, 2]}")
    with pytest.raises(RunError):  # the cell defines the step and runs it: it fails
        run_cell(ip, "%%step Grow\nconfig['layers'].append(3)\ngrown = 1")
    run_cell(ip, "%%step Count\ntime.sleep(0.2)\nk = len(config['layers'])")
    ex = run_cell(ip, "%pipeline run --executor threads:3 --no-cache")
    assert statuses(ex) == {"Make": "Succeeded", "Grow": "Failed", "Count": "Succeeded"}
    assert_blames(ex.steps["Grow"].failure_reason, "Grow", "config", "Make")
    assert ip.user_ns["k"] == 2


def test_a_copy_is_refused_while_a_running_step_holds_a_changed_part_of_it():
    """On a thread pool: `Holder` got `inner` itself and changed it while running; `Late` starts
    then and reads `outer`, which contains `inner`. No dirty copy is handed out."""
    inner = {"x": [1]}
    producer = StepRecord("Make", "processing", status="Succeeded",
                          outputs={"inner": inner, "outer": {"inner": inner}})
    records = {"Make": producer, "Holder": StepRecord("Holder", "processing", status="Executing"),
               "Late": StepRecord("Late", "processing", status="Executing")}
    lent = isolation.lend(records, "Holder", producer, "inner")
    assert lent is inner  # alone: the value itself
    lent["x"].append(2)
    with pytest.raises(PipelineError, match="step `Holder`, running at the same time, has changed"):
        isolation.lend(records, "Late", producer, "outer")
    records["Holder"].status = "Stopped"  # an interrupt: its loan is settled by the next reader
    assert isolation.lend(records, "Late", producer, "inner") is inner == {"x": [1]}
    assert producer.outputs["outer"] == {"inner": {"x": [1]}}
    graph = SimpleNamespace(downstream={}, inputs={})
    result = isolation.returned(graph, SimpleNamespace(name="Late", step_refs=()), records,
                                TaskResult("Succeeded", {"y": 1}))
    assert result.status == "Succeeded" and isolation._LOANS == {}
