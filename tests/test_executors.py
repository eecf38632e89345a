"""Every executor gives the same results: in the kernel, on a thread pool, and on process
pools started with forkserver and with spawn (issue 10 §2). Plus `--max-parallel`, warm pools,
and the clear failure of an output that cannot leave its worker process."""

from __future__ import annotations

import json
import threading

import pytest

from jupyter_pipelines import Pipeline
from jupyter_pipelines.errors import PipelineError
from jupyter_pipelines.notebook import load_notebook
from jupyter_pipelines.run import executors
from jupyter_pipelines.source import Context

from .conftest import run_cell
from .test_cli import ABALONE, cli, write_notebook

CONTEXT = """
import math
import pandas as pd

def scale(values, factor):
    return [v * factor for v in values]

class Summary:
    def __init__(self, total):
        self.total = total
"""
EXECUTORS = ["in-kernel", "threads:2", "processes:2", "processes:2/spawn"]


def resolve(spec: str):
    name, _, method = spec.partition("/")
    return executors.resolve(name, start_method=method or None)


def contract_pipeline(home) -> Pipeline:
    p = Pipeline("contract", home=home)
    p.context = Context.from_cells([CONTEXT])
    p.add_parameter("factor", 2.0)
    p.add_parameter("limit", 200.0)
    p.add_step("Make", "xs = list(range(10))\nframe = pd.DataFrame({'x': xs})")
    p.add_step("Scale", "ys = scale(xs, factor)")
    p.add_step("Frame", "frame2 = frame.assign(y=frame['x'] * factor)")
    p.add_step("Sum", "summary = Summary(sum(ys) + float(frame2['y'].sum()))\ntotal = summary.total")
    p.add_step("Check", "total <= limit", "condition", if_steps=["Keep"], else_steps=["Stop"])
    p.add_step("Keep", "kept = math.floor(total)")
    p.add_step("Stop", "f'total {total} is above {limit}'", "fail")
    return p


def outcome(execution) -> dict:
    return {
        "status": execution.status,
        "steps": {n: r.status for n, r in execution.steps.items()},
        "condition": execution.steps["Check"].metadata.get("Condition", {}).get("Outcome"),
        "total": execution.result("Sum", "total"),
        "failure": execution.failure_reason,
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    p = contract_pipeline(tmp_path_factory.mktemp("reference"))
    return {limit: outcome(p.start({"limit": limit}, display=False)) for limit in (200.0, 10.0)}


@pytest.mark.parametrize("spec", EXECUTORS)
def test_every_executor_gives_the_same_results_statuses_and_caching(spec, reference, tmp_path):
    p = contract_pipeline(tmp_path / "state")
    for limit in (200.0, 10.0):  # both branches of the condition
        got = outcome(p.start({"limit": limit}, executor=resolve(spec), display=False))
        assert got == reference[limit]
    again = contract_pipeline(tmp_path / "state").start({"limit": 200.0}, executor=resolve(spec),
                                                        display=False)
    assert {r.status for r in again.steps.values()} == {"Cached", "Skipped"}
    assert again.result("Keep", "kept") == 180 and len(p.list_executions()) == 3


@pytest.mark.parametrize("spec", ["processes:2", "processes:2/spawn"])
def test_an_output_that_cannot_leave_its_worker_names_step_output_and_type(spec, tmp_path):
    p = Pipeline("unportable", home=tmp_path / "state")
    p.add_step("Make", "import threading\nlock = threading.Lock()\nn = 1")
    p.add_step("Use", "m = n + 1")
    ex = p.start(executor=resolve(spec), display=False)
    assert ex.status == "Failed" and ex.steps["Use"].status == "NotRun"
    reason = ex.steps["Make"].failure_reason
    assert "Output `lock` (_thread.lock) cannot be sent back from the worker process" in reason
    assert "--executor threads" in reason


def test_sys_exit_in_a_worker_process_fails_only_the_step(tmp_path):
    p = Pipeline("exit", home=tmp_path / "state")
    p.add_step("Quit", "import sys\nsys.exit(4)")
    ex = p.start(executor="processes:2", display=False)
    assert ex.status == "Failed" and "exit code 4" in ex.steps["Quit"].failure_reason
    assert executors.resolve("processes:2").submit(sum, [1, 2]).result() == 3  # the pool lives



def test_a_result_that_comes_after_the_run_stopped_is_dropped_quietly(caplog):
    """An interrupt cancels what the run waits for; a pool's result that comes later is
    nobody's (it used to print "exception calling callback" with two tracebacks)."""
    import time

    pool = executors.resolve("processes:1")
    waiting = pool.submit(time.sleep, 0.5)
    assert waiting.cancel()  # as the run's stop does
    done = pool.submit(sum, [1, 2])  # on one process: after the sleep, and its result after
    assert done.result(timeout=60) == 3
    assert [r for r in caplog.records if r.name == "concurrent.futures"] == []

def test_abalone_on_a_process_pool_matches_the_kernel(tmp_path, monkeypatch):
    from jupyter_pipelines.datasets import write_abalone

    data = str(write_abalone(tmp_path / "abalone.csv"))
    runs = {}
    for spec in ("in-kernel", "processes:2"):
        monkeypatch.setenv("JUPYTER_PIPELINES_HOME", str(tmp_path / spec.replace(":", "-")))
        p = load_notebook(ABALONE)
        ex = p.start({"input_data": data}, executor=spec, display=False)
        runs[spec] = ({n: r.status for n, r in ex.steps.items()},
                      ex.result("AbaloneEval", "report")["regression_metrics"]["mse"]["value"],
                      list(ex.result("AbaloneTransform", "predictions")[:5]))
    assert runs["processes:2"] == runs["in-kernel"]


def test_pools_are_warm_for_the_session():
    assert executors.resolve("processes:2") is executors.resolve("processes:2")
    assert executors.resolve("threads:3") is executors.resolve("threads:3")
    assert executors.resolve("threads:3") is not executors.resolve("threads:2")


def concurrency(p: Pipeline, **kwargs) -> int:
    """The most steps Executing at once, seen by a listener in the run loop."""
    running, most, lock = set(), [0], threading.Lock()

    def listener(event, *, execution, step=None, record=None, **future):
        with lock:
            if event == "step_started":
                running.add(step)
                most[0] = max(most[0], len(running))
            elif event == "step_finished":
                running.discard(step)

    p.start(listeners=[listener], display=False, cache=False, **kwargs)
    return most[0]


def test_max_parallel_caps_the_steps_running_at_once(tmp_path):
    p = Pipeline("cap", home=tmp_path / "state")
    p.add_step("Src", "x = 1")
    for i in range(4):
        p.add_step(f"Wait{i}", f"import time\ntime.sleep(0.3)\ny{i} = x")
    assert concurrency(p, executor="threads:4") == 4
    assert concurrency(p, executor="threads:4", max_parallel=2) == 2
    assert concurrency(p, executor="threads:4", max_parallel=1) == 1


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"executor": "procs"}, "'procs'"),
    ({"executor": "threads:0"}, "'threads:0'"),
    ({"executor": 3}, "int"),
    ({"max_parallel": 0}, "max_parallel"),
    ({"max_parallel": "2"}, "max_parallel"),
])
def test_bad_executor_arguments_are_refused_before_anything_runs(tmp_path, kwargs, named):
    p = Pipeline("bad", home=tmp_path / "state")
    p.add_step("Make", "xs = [1]")
    with pytest.raises(PipelineError) as info:
        p.start(display=False, **kwargs)
    assert named in str(info.value)
    assert not (tmp_path / "state" / "history.db").exists() or p.list_executions() == []


def test_the_magic_and_the_cli_take_executor_and_max_parallel(ip, tmp_path):
    run_cell(ip, "%%step Make\nxs = [1, 2, 3]")
    run_cell(ip, "%%step Total\ntotal = sum(xs)")
    ex = run_cell(ip, "%pipeline run --no-cache --executor processes:2 --max-parallel 1")
    assert ex.status == "Succeeded" and ex.result("Total", "total") == 6
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="--executor and --max-parallel are for %pipeline run and retry"):
        run_cell(ip, "%pipeline show --executor threads")
    with pytest.raises(PipelineError, match="'nope'"):
        run_cell(ip, "%pipeline run --executor nope")

    nb = write_notebook(tmp_path / "nb.ipynb", ["%%step Make\nxs = [1, 2]", "%%step Total\ntotal = sum(xs)"])
    done = cli(["run", nb, "--executor", "processes:2", "--max-parallel", "2", "--json"], tmp_path,
               tmp_path / "state")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["PipelineExecutionStatus"] == "Succeeded"
    bad = cli(["run", nb, "--executor", "gpu"], tmp_path, tmp_path / "state")
    assert bad.returncode == 2 and "'gpu'" in bad.stderr


TRANSFORM_CONTEXT = """
import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression

def picky_predict(model, data):
    if (data["x"] == 13).any():
        raise ValueError("row 13 is not allowed")
    return model.predict(data)
"""


def transform_pipeline(home, instances: int, predict: str = "") -> Pipeline:
    p = Pipeline("transform", home=home)
    p.context = Context.from_cells([TRANSFORM_CONTEXT])
    p.add_step("Data", "train = pd.DataFrame({'x': np.arange(50.0)})\ny = train['x'] * 3 + 1\n"
                       "rows = pd.DataFrame({'x': np.arange(20.0)}, index=[f'r{i}' for i in range(20)])")
    p.add_step("Train", "model = LinearRegression().fit(train, y)", "training")
    p.add_step("Package", predict, "create-model", model="model")
    p.add_step("Score", "", "transform", model="Package", data="rows", batch_size=4,
               instance_count=instances)
    return p


@pytest.mark.parametrize("spec", ["in-kernel", "threads:2", "processes:2"])
def test_a_transform_spreads_its_rows_over_the_executor_in_order(spec, tmp_path):
    one = transform_pipeline(tmp_path / "one", 1).start(display=False)
    spread = transform_pipeline(tmp_path / "three", 3).start(executor=spec, display=False)
    assert spread.status == "Succeeded"
    expected, got = one.result("Score", "predictions"), spread.result("Score", "predictions")
    assert list(got.index) == [f"r{i}" for i in range(20)]  # aligned with the input rows
    assert got.round(6).tolist() == expected.round(6).tolist() == [3 * i + 1.0 for i in range(20)]
    meta = spread.steps["Score"].metadata["Transform"]
    assert meta == {"Rows": 20, "BatchSize": 4, "InstanceCount": 3}


def test_a_failing_part_of_a_transform_names_its_part(tmp_path):
    p = transform_pipeline(tmp_path / "state", 3, "predict = picky_predict")
    ex = p.start(executor="threads:2", display=False)
    reason = ex.steps["Score"].failure_reason
    assert ex.status == "Failed" and reason.startswith("(part 3 of 3)") and "row 13" in reason
    assert "(rows 13..16)" in reason  # positions in the whole input, not in the part


def test_instance_count_must_be_a_positive_whole_number(ip):
    with pytest.raises(PipelineError, match="--instance-count must be a positive whole number; got 0"):
        run_cell(ip, "%%step Score --kind transform --model M --data rows --instance-count 0\n# score")


def test_a_retry_runs_on_the_executor_asked_for(ip, tmp_path):
    run_cell(ip, "import os")
    run_cell(ip, "%%parameters\nflag = 'missing.txt'")
    run_cell(ip, "%%step Make\nxs = [1, 2]")
    failed = ip.run_cell("%%step Read\ntext = open(flag).read()")
    assert failed.error_in_exec is not None
    first = run_cell(ip, "%pipeline run")
    assert first.status == "Failed"
    (tmp_path / "missing.txt").write_text("here")
    statuses = []

    def listener(event, *, execution, step=None, record=None, **future):
        if event == "step_finished" and step == "Read":
            statuses.append(record.status)

    from jupyter_pipelines import current

    current().listeners.append(listener)
    try:
        os_cwd = run_cell(ip, "os.getcwd()")
        run_cell(ip, f"os.chdir({str(tmp_path)!r})")
        retried = run_cell(ip, f"%pipeline retry {first.id} --executor threads:2 --max-parallel 1")
    finally:
        current().listeners.remove(listener)
        run_cell(ip, f"os.chdir({os_cwd!r})")
    assert retried.status == "Succeeded" and retried.steps["Make"].status == "Cached"
    assert statuses == ["Succeeded"] and retried.result("Read", "text") == "here"

    nb = write_notebook(tmp_path / "nb.ipynb", ["%%step Boom\nimport pathlib\n"
                                                 "n = len(pathlib.Path('later.txt').read_text())"])
    home = tmp_path / "cli-state"
    assert cli(["run", nb], tmp_path, home).returncode == 1
    (tmp_path / "later.txt").write_text("abc")
    done = cli(["retry", "--home", home, "--executor", "processes:2", "--json"], tmp_path, home)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["PipelineExecutionStatus"] == "Succeeded"
