"""The Dask executor (issue 10 §3): a LocalCluster of worker processes gives the same results,
statuses, outcomes, caching and history as the kernel, with both stores (a folder the workers
write themselves, and fsspec's memory://); outputs stay on the workers; an unreachable store,
a cluster that is not there and an interrupt are handled."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid

import pytest

pytest.importorskip("distributed", reason="the Dask tests need jupyter_pipelines[dask]")

from jupyter_pipelines import Pipeline
from jupyter_pipelines.errors import PipelineError
from jupyter_pipelines.execution import Remote
from jupyter_pipelines.notebook import load_notebook
from jupyter_pipelines.run import executors

from .conftest import run_cell
from .test_cli import ABALONE, cli, write_notebook
from .test_executors import contract_pipeline, outcome, transform_pipeline

STORES = ["folder", "memory"]
DATA = ("builtins.int", "builtins.float", "builtins.list", "pandas.")


@pytest.fixture(scope="module")
def dask():
    return executors.resolve("dask")


def store_for(kind: str, tmp_path) -> str | None:
    return None if kind == "folder" else f"memory://jp-dask-{uuid.uuid4().hex}"


def history(p: Pipeline) -> list[dict]:
    """What the history says of each run: each step's status and its outputs' digests (of data:
    a class the notebook defines pickles differently in another process)."""
    return [{run["step"]: (run["status"], sorted(o["digest"] for o in (run["outputs"] or {}).values()
                                                 if o["type"].startswith(DATA)))
             for run in p.workspace.history.step_runs(doc["id"])}
            for doc in p.workspace.history.executions(p.name)]


@pytest.mark.parametrize("store", STORES)
def test_dask_gives_the_kernels_results_statuses_caching_and_history(dask, store, tmp_path):
    here = contract_pipeline(tmp_path / "kernel")
    there = contract_pipeline(tmp_path / "dask")
    there.store = store_for(store, tmp_path)
    for limit in (200.0, 10.0):  # both branches of the condition
        want = outcome(here.start({"limit": limit}, display=False))
        ran = there.start({"limit": limit}, executor=dask, display=False)
        assert outcome(ran) == want
        workers = {r.worker for r in ran.steps.values() if r.status == "Succeeded"}
        assert workers and all(w and w.startswith("tcp://") for w in workers)
    again = contract_pipeline(tmp_path / "dask")
    again.store = there.store
    cached = again.start({"limit": 200.0}, executor=dask, display=False)
    assert {r.status for r in cached.steps.values()} == {"Cached", "Skipped"}, {
        n: (r.status, r.why) for n, r in cached.steps.items()}
    assert cached.result("Keep", "kept") == 180
    assert history(there)[1:] == history(here)  # (newest first: the cached run, then those two)


def test_outputs_stay_on_the_workers_until_asked_for(dask, tmp_path):
    p = Pipeline("stay", home=tmp_path / "state")
    p.add_step("Big", "import numpy as np\nbig = np.ones(10)")
    p.add_step("Sum", "total = float(big.sum())")
    assert p.start(executor=dask, display=False).status == "Succeeded"  # what a first run
    # imports is read from files (3.6 MB of them): not what this test counts
    p.add_step("Big", "import numpy as np\nbig = np.ones(25_000_000)")  # 200 MB
    before = _bytes_read()
    ex = p.start(executor=dask, display=False)
    moved = _bytes_read() - before
    assert ex.status == "Succeeded", ex.failure_reason
    assert isinstance(ex.steps["Big"].outputs["big"], Remote)
    assert moved < 1_000_000, f"{moved:,} bytes came into the kernel"
    assert ex.result("Sum", "total") == 25_000_000.0  # asked for: now it comes
    digest = ex.steps["Big"].refs["big"].digest  # written by a worker, read back verified here
    assert p.workspace.artifacts.get(ex.steps["Big"].refs["big"]).shape == (25_000_000,)
    assert len(digest) == 64


def _bytes_read() -> int:
    """Bytes this process has read (files and sockets): what came into the kernel."""
    with open("/proc/self/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("rchar"))


def _held(dask, keys: list[str]) -> list[str]:
    """Which of these task keys the scheduler still holds, once the releases sent have landed
    (waited for, up to 30 s: the client lets go of a future asynchronously)."""
    deadline = time.monotonic() + 30
    while True:
        held = dask.client.run_on_scheduler(
            lambda dask_scheduler, keys: [k for k in keys if k in dask_scheduler.tasks], keys=keys)
        if not held or time.monotonic() > deadline:
            return held
        time.sleep(0.05)


def test_a_pipeline_keeps_only_its_latest_executions_outputs_on_the_cluster(dask, tmp_path):
    """Run after run, the workers keep the latest execution's outputs, not every one's: an
    older execution's stored outputs are read from the store; Dask knows what a result holds."""
    p = Pipeline("latest", home=tmp_path / "state")
    p.add_parameter("k", 1)
    p.add_step("Big", "import numpy as np\nbig = np.ones(100_000) * k")
    p.add_step("Sum", "total = float(big.sum())")
    first = p.start({"k": 1}, executor=dask, display=False)
    keys = [first.steps[n].outputs[o].full.key for n, o in (("Big", "big"), ("Sum", "total"))]
    sizes = dask.client.run_on_scheduler(
        lambda dask_scheduler, keys: [dask_scheduler.tasks[k].nbytes for k in keys], keys=keys)
    assert sizes[0] >= 800_000  # the array the result holds, not the few bytes of its object
    latest = [p.start({"k": k}, executor=dask, display=False) for k in (2, 3)][-1]
    assert _held(dask, keys) == []  # the first execution's results are gone from the workers
    assert isinstance(latest.steps["Big"].outputs["big"], Remote)  # the latest's stay there
    assert type(first.steps["Big"].outputs["big"]).__name__ == "ArtifactRef"
    assert first.result("Sum", "total") == 100_000.0  # read from the store now
    assert first.result("Big", "big").shape == (100_000,) and latest.result("Sum") == 300_000.0


def test_an_older_executions_output_not_stored_says_it_is_gone(dask):
    p = Pipeline("gone", persist=False)
    p.add_parameter("k", 1)
    p.add_step("Make", "made = [k] * 3")
    first = p.start({"k": 1}, executor=dask, display=False)
    assert first.result("Make") == [1, 1, 1]  # (fetched while it is the latest)
    second = p.start({"k": 2}, executor=dask, display=False)
    assert second.result("Make") == [2, 2, 2]
    older = p.start({"k": 1}, executor=dask, display=False)  # let go of the second's
    assert older.result("Make") == [1, 1, 1]
    with pytest.raises(PipelineError) as gone:
        second.result("Make")
    message = str(gone.value)
    assert "`made` of step `Make`" in message and second.id in message
    assert "no longer on the Dask cluster" in message and "persist=True" in message
    assert "let go" in repr(second.steps["Make"].outputs["made"])


def test_a_chain_runs_on_the_cluster_without_the_kernel_between_steps(dask, tmp_path):
    p = Pipeline("chain", persist=False)
    p.add_step("s0", "x0 = 0")
    for i in range(1, 30):
        p.add_step(f"s{i}", f"x{i} = x{i - 1} + 1")
    started = []

    def listener(event, *, execution, step=None, record=None, **future):
        if event == "step_started":
            started.append(step)

    ex = p.start(executor=dask, listeners=[listener], display=False)
    assert ex.status == "Succeeded" and ex.result("s29", "x29") == 29
    assert sorted(started) == sorted(f"s{i}" for i in range(30))  # told as each began on a worker
    p.add_step("s5", "x5 = 1 / 0")  # a failure in the middle: the rest of the chain never runs
    failed = p.start(executor=dask, display=False)
    assert failed.steps["s5"].status == "Failed" and "ZeroDivisionError" in failed.failure_reason
    assert {failed.steps[f"s{i}"].status for i in range(6, 30)} == {"NotRun"}


def test_retry_and_partial_runs_on_dask(dask, tmp_path):
    p = contract_pipeline(tmp_path / "state")
    first = p.start({"limit": 200.0}, executor=dask, display=False)
    only = p.start({"limit": 200.0}, only=["Frame"], executor=dask, display=False)
    assert only.steps["Frame"].status == "Succeeded" and only.steps["Make"].status == "Cached"
    assert only.result("Frame", "frame2")["y"].sum() == first.result("Frame", "frame2")["y"].sum()
    marker = tmp_path / "later.txt"
    p.add_step("Read", f"text = open({str(marker)!r}).read() + str(kept)")
    broken = p.start({"limit": 200.0}, executor=dask, display=False)
    assert broken.status == "Failed" and "FileNotFoundError" in broken.failure_reason
    marker.write_text("kept ")
    retried = p.retry(broken.id, executor=dask, display=False)
    assert retried.status == "Succeeded" and retried.result("Read", "text") == "kept 180"
    assert retried.steps["Sum"].status == "Cached" and retried.steps["Read"].status == "Succeeded"


def test_abalone_on_dask_matches_the_kernel_on_both_branches(dask, tmp_path, monkeypatch):
    from jupyter_pipelines.datasets import write_abalone

    data = str(write_abalone(tmp_path / "abalone.csv"))
    for threshold in (6.0, 3.0):  # registers and transforms; fails
        runs = {}
        for spec in ("in-kernel", "dask"):
            monkeypatch.setenv("JUPYTER_PIPELINES_HOME", str(tmp_path / f"{spec}-{threshold}"))
            p = load_notebook(ABALONE)
            ex = p.start({"input_data": data, "mse_threshold": threshold},
                         executor=dask if spec == "dask" else spec, display=False)
            runs[spec] = ({n: r.status for n, r in ex.steps.items()},
                          ex.result("AbaloneEval", "report")["regression_metrics"]["mse"]["value"],
                          ex.steps["AbaloneMSECond"].metadata["Condition"]["Outcome"],
                          list(ex.result("AbaloneTransform", "predictions")[:5])
                          if ex.steps["AbaloneTransform"].status == "Succeeded" else None)
        assert runs["dask"] == runs["in-kernel"]


@pytest.mark.parametrize("store", STORES)
def test_a_transform_spreads_over_the_workers(dask, store, tmp_path):
    one = transform_pipeline(tmp_path / "one", 1).start(display=False)
    p = transform_pipeline(tmp_path / "three", 3)
    p.store = store_for(store, tmp_path)
    spread = p.start(executor=dask, display=False)
    assert spread.status == "Succeeded", spread.failure_reason
    got = spread.result("Score", "predictions")
    assert list(got.index) == [f"r{i}" for i in range(20)]
    assert got.round(6).tolist() == one.result("Score", "predictions").round(6).tolist()
    assert spread.steps["Score"].metadata["Transform"]["InstanceCount"] == 3


def test_a_value_the_cluster_cannot_be_sent_fails_the_step_clearly(dask, tmp_path):
    p = Pipeline("unsendable", home=tmp_path / "state")
    p.add_step("Make", "import threading\nlock = threading.Lock()\nn = 1")
    p.add_step("Use", "m = n + 1")
    ex = p.start(executor=dask, display=False)
    assert ex.status == "Failed" and ex.steps["Use"].status == "NotRun"
    assert "lock" in ex.steps["Make"].failure_reason



def test_a_step_that_cannot_be_sent_fails_alone_and_the_rest_of_its_graph_runs(dask, monkeypatch):
    """Chained steps are sent as one graph; when it cannot be sent, each step is sent alone, so
    the one at fault fails with why, its downstream is NotRun and the others run."""
    from jupyter_pipelines.run import remote

    real = remote.RemoteSteps._inputs

    def inputs(self, run, step):
        found = real(self, run, step)
        if step.name == "b":  # as a value held in the kernel that cannot be pickled would be
            found["extra"] = ("value", threading.Lock())
        return found

    monkeypatch.setattr(remote.RemoteSteps, "_inputs", inputs)
    p = Pipeline("unsent", persist=False)
    p.add_step("a", "x = 1")
    p.add_step("b", "y = x + 1")
    p.add_step("c", "z = y + 1")
    p.add_step("d", "w = x + 2")
    ex = p.start(executor=dask, display=False)
    status = {name: record.status for name, record in ex.steps.items()}
    assert status == {"a": "Succeeded", "b": "Failed", "c": "NotRun", "d": "Succeeded"}
    reason = ex.steps["b"].failure_reason
    assert reason.startswith("Step `b` could not be handed to the Dask cluster (its input `extra`, "
                             "a _thread.lock, cannot be pickled: ")
    assert ex.result("d", "w") == 3


def test_a_register_model_step_runs_in_the_kernel(dask, tmp_path, monkeypatch):
    """The model registry is the kernel's (a remote worker would write another machine's)."""
    from jupyter_pipelines import registry
    from jupyter_pipelines.source import Context

    calls, real = [], registry.register

    def register(*args, **kwargs):
        calls.append(os.getpid())
        return real(*args, **kwargs)

    monkeypatch.setattr(registry, "register", register)
    p = Pipeline("registered", home=tmp_path / "state",
                 context=Context.from_cells(["from sklearn.dummy import DummyRegressor"]))
    p.add_step("Train", "model = DummyRegressor().fit([[0.0], [1.0]], [0.0, 1.0])", "training")
    p.add_step("Register", "", "register-model", model="model", group="Here")
    ex = p.start(executor=dask, display=False)
    assert ex.status == "Succeeded", ex.failure_reason
    assert calls == [os.getpid()] and ex.steps["Train"].worker is not None
    assert [pk.version for pk in registry.list_packages("Here", home=tmp_path / "state")] == [1]

def test_an_interrupt_cancels_the_running_steps(dask, tmp_path):
    import _thread

    p = Pipeline("stop", home=tmp_path / "state")
    p.add_step("Slow", "import time\ntime.sleep(20)\nx = 1")
    p.add_step("After", "y = x")
    seen = threading.Event()

    def listener(event, *, execution, step=None, **future):
        if event == "step_started" and step == "Slow":
            seen.set()

    threading.Thread(target=lambda: seen.wait(60) and _thread.interrupt_main(), daemon=True).start()
    began = time.time()
    ex = p.start(executor=dask, listeners=[listener], display=False)
    assert ex.status == "Stopped" and time.time() - began < 15
    assert ex.steps["Slow"].status == "Stopped" and ex.steps["After"].status == "NotRun"
    assert dask.client.submit(sum, [1, 2]).result() == 3  # the cluster is still there


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path):
    p = Pipeline("nowhere", home=tmp_path / "state")
    p.add_step("Make", "x = 1")
    with pytest.raises(PipelineError, match="Cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        p.start(executor="dask://127.0.0.1:9", display=False)
    assert p.list_executions() == []


def test_a_store_the_workers_cannot_see_is_refused_before_anything_runs(tmp_path):
    """A worker in a private mount namespace, where the state folder is hidden under a tmpfs:
    a 'remote' worker that does not share the kernel's disk."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and util-linux's unshare to hide a folder from a worker")
    from distributed import Client, LocalCluster

    from jupyter_pipelines.run.cluster import DaskExecutor

    cluster = LocalCluster(n_workers=0, dashboard_address=None)
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    script = (f"mount -t tmpfs tmpfs '{hidden}' && exec '{sys.executable}' -m distributed.cli.dask_worker "
              f"{cluster.scheduler_address} --nthreads 1 --no-dashboard")
    worker = subprocess.Popen(["unshare", "-m", "sh", "-c", script], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        client = Client(cluster)
        client.wait_for_workers(1, timeout=60)
        p = Pipeline("hidden", home=hidden / "state")
        p.add_step("Make", "x = 1")
        with pytest.raises(PipelineError) as info:
            p.start(executor=DaskExecutor(client), display=False)
        message = str(info.value)
        assert str(hidden / "state") in message and "cannot see" in message
        assert "s3://" in message and p.list_executions() == []
    finally:
        worker.terminate()
        worker.wait(30)
        cluster.close()


def test_the_magic_and_the_cli_run_on_dask(ip, tmp_path):
    run_cell(ip, "%%step Make\nxs = [1, 2, 3]")
    run_cell(ip, "%%step Total\ntotal = sum(xs)")
    ex = run_cell(ip, "%pipeline run --no-cache --executor dask")
    assert ex.status == "Succeeded" and ex.steps["Total"].worker.startswith("tcp://")
    bound = ip.user_ns["total"]  # a handle: the run moved no output into the kernel
    assert isinstance(bound, Remote) and not bound._fetched
    assert "on the Dask cluster" in repr(bound) and bound.fetch() == 6 == ex.result("Total", "total")
    cached = run_cell(ip, "%pipeline run --executor dask")  # Cached: the outputs are in the store
    assert cached.steps["Total"].status == "Cached"
    stored = ip.user_ns["xs"]  # (a small JSON value: kept in the history, not a file)
    assert "in the history: .fetch() loads it" in repr(stored) and stored.fetch() == [1, 2, 3]
    assert run_cell(ip, "%pipeline run").steps["Total"].status == "Cached"
    assert ip.user_ns["xs"] == [1, 2, 3]  # in the kernel: the values, as always

    # outputs over INLINE_LIMIT, so that each has a file (a small JSON value is kept inline)
    nb = write_notebook(tmp_path / "nb.ipynb", ["%%step Make\nxs = list(range(300))",
                                                "%%step Total\ntotal = [x * 2 for x in xs]"])
    shared = tmp_path / "shared-store"  # a store of its own, as a cluster's workers would share
    os.environ["JUPYTER_PIPELINES_STORE"] = str(shared)
    try:
        done = cli(["run", nb, "--executor", "dask", "--json"], tmp_path, tmp_path / "cli-state")
    finally:
        del os.environ["JUPYTER_PIPELINES_STORE"]
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["PipelineExecutionStatus"] == "Succeeded"
    assert "Traceback" not in done.stderr
    assert len([f for f in shared.rglob("*") if f.is_file()]) == 2  # xs and total, by the workers
    assert not list((tmp_path / "cli-state").rglob("artifacts/*/*"))


def test_the_widget_shows_the_worker_and_links_the_dashboard_without_fetching(dask, tmp_path):
    from jupyter_pipelines.view import live_view
    from jupyter_pipelines.view.details import step_details

    p = Pipeline("seen", home=tmp_path / "state")
    p.add_step("Big", "import numpy as np\nbig = np.arange(1_000_000)")
    p.add_step("Sum", "total = int(big.sum())")
    ex = p.start(executor=dask, display=False)
    view = live_view(execution=ex)
    header = view.widget.header
    assert header["dashboard"] == dask.dashboard and header["dashboard"].startswith("http")
    before = _bytes_read()
    info = step_details(ex, ex.graph, "Big")
    assert info["worker"] == ex.steps["Big"].worker and info["worker"].startswith("tcp://")
    assert info["outputs"][0]["summary"] == "shape (1000000,), dtype int64"
    assert _bytes_read() - before < 100_000  # previewed on the worker, not fetched
    assert not ex.steps["Big"].outputs["big"]._fetched


def test_a_cold_chain_is_chained_and_recorded_like_the_kernel(dask, tmp_path):
    """With a store, a step is chained only when no stored result could stand in for it; the
    history then says why it ran, with its key, as if it had been looked up."""
    def chain(home):
        p = Pipeline("keys", home=home)
        p.add_step("a", "x = 1")
        p.add_step("b", "y = x + 1")
        p.add_step("c", "z = y * 2")
        return p

    here = chain(tmp_path / "kernel").start(display=False)
    there = chain(tmp_path / "dask").start(executor=dask, display=False)
    for name in "abc":
        assert there.steps[name].cache_key == here.steps[name].cache_key
        assert there.steps[name].why == here.steps[name].why == "it had not run before"
    p = chain(tmp_path / "dask")
    p.add_step("a", "x = 1  # a comment: the same code, the same output")
    p.add_step("c", "z = y * 3")
    again = p.start(executor=dask, display=False)  # b may hit: it waits for a, then is Cached
    assert [again.steps[n].status for n in "abc"] == ["Cached", "Cached", "Succeeded"]
    assert again.steps["c"].why == "its code changed since its last run"


def test_the_local_cluster_spares_pure_python_steps_the_profiler(dask):
    """Dask's sampling profiler takes the GIL from the step every 10 ms: off in our workers."""
    import dask as dask_config

    settings = dask.client.run(lambda: (dask_config.config.get("distributed.worker.profile.enabled"),
                                        dask_config.config.get("distributed.worker.daemon")))
    assert len(settings) >= 1 and set(settings.values()) == {(False, False)}


@pytest.mark.parametrize(("hidden", "said"), [
    ("distributed", "--executor dask needs Dask's distributed scheduler, which is not installed: "
                    "pip install 'jupyter_pipelines[dask]'"),
    ("dask.task_spec", "--executor dask needs Dask 2025.1 or later; this environment has Dask "),
])
def test_without_dask_installed_the_cli_says_what_to_install(tmp_path, hidden, said):
    nb = write_notebook(tmp_path / "nb.ipynb", ["%%step Make\nxs = [1, 2]"])
    code = (f"import sys; sys.modules[{hidden!r}] = None\n"  # as if it were not installed
            "from jupyter_pipelines.cli import main\n"
            f"sys.exit(main(['run', {str(nb)!r}, '--executor', 'dask']))")
    env = {**os.environ, "JUPYTER_PIPELINES_HOME": str(tmp_path / "state"), "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    assert said in " ".join(done.stderr.split()) and "Traceback" not in done.stderr
