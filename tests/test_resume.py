"""Resuming work: retrying a failed execution (API, magic, CLI), partial runs, per-step retry
policies, a killed process, and the history commands.

Subprocesses are few (each costs about a second); the history commands are also exercised
in-process through ``jupyter_pipelines.cli.main``.
"""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import weakref
from contextlib import closing
from pathlib import Path

import nbformat
import pytest

from jupyter_pipelines import Execution, Pipeline, current
from jupyter_pipelines.cli import main
from jupyter_pipelines.errors import PipelineError, RunError, StepFailed, UnknownReferenceError
from jupyter_pipelines.source import Context
from jupyter_pipelines.store.artifacts import ArtifactRef, ArtifactStore
from jupyter_pipelines.store.history import History

from .conftest import run_cell

READ = "size = len(pathlib.Path(marker).read_text()) + base"


def statuses(ex: Execution) -> dict[str, str]:
    return {name: record.status for name, record in ex.steps.items()}


def listed(ex: Execution) -> dict[str, dict]:
    return {item["StepName"]: item for item in ex.list_steps()}


def json_statuses(doc: dict) -> dict[str, str]:
    return {s["StepName"]: s["StepStatus"] for s in doc["Steps"]}


def cli(args, *, cwd: Path, home: Path | None, extra_env: dict | None = None,
        entry_point: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m jupyter_pipelines ARGS`` (or the ``jupyter-pipelines`` script); ``home``
    None: no JUPYTER_PIPELINES_HOME at all."""
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_PIPELINES_HOME"}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8", **(extra_env or {})})
    if home is not None:
        env["JUPYTER_PIPELINES_HOME"] = str(home)
    command = [sys.executable, "-m", "jupyter_pipelines"]
    if entry_point:
        script = Path(sys.executable).with_name("jupyter-pipelines")
        command = [str(script) if script.exists() else shutil.which("jupyter-pipelines")]
        assert command[0], "the jupyter-pipelines entry point is not installed"
    return subprocess.run([*command, *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, encoding="utf-8", timeout=timeout)


def write_notebook(path: Path, cells: list[str]) -> Path:
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    return path


# -- the recorded pipeline version ----------------------------------------------------------------


def test_each_change_of_the_pipeline_is_recorded_as_a_new_version(tmp_path):
    """A run records its pipeline's version (the document an execution is described, drawn and
    retried from) without building it again while nothing changed; any change (a step, a flag
    the step's own digest leaves out, a parameter, the notebook context) is a new version."""
    from jupyter_pipelines import snapshot

    (tmp_path / "marker.txt").write_text("abc")
    p = marker_pipeline(tmp_path)
    first = p.start(display=False)
    assert p.start(display=False).version_id == first.version_id  # unchanged: the same version
    history = History(tmp_path / "state")
    edits = [lambda: p.add_step("Report", "out = size * 3"),
             lambda: p.add_step("Report", "out = size * 3", cache=False),
             lambda: p.add_step("Report", "out = size * 3", cache=False, description="thrice"),
             lambda: p.add_parameter("extra", 1),
             lambda: setattr(p, "context", Context.from_cells(["import pathlib", "import math"])),
             lambda: p.remove_step("Report")]
    seen = [first.version_id]
    for edit in edits:
        edit()
        ex = p.start(display=False)
        assert ex.status == "Succeeded" and ex.version_id not in seen
        seen.append(ex.version_id)
        document = snapshot.to_document(p)
        assert history.version(ex.version_id) == json.loads(json.dumps(document))
        with closing(sqlite3.connect(tmp_path / "state" / "history.db")) as db:
            (digest,) = db.execute("SELECT digest FROM pipeline_versions WHERE id = ?",
                                   (ex.version_id,)).fetchone()
        assert digest == snapshot.digest(document)
    assert list(p.load_execution(ex.id).graph.steps) == ["Prep", "Side", "Read"]
    twin = snapshot.from_document(history.version(ex.version_id), home=tmp_path / "state")
    again = twin.start(display=False)  # a new object with the same definition: the same version
    assert again.version_id == ex.version_id and again.id != ex.id


def test_the_version_text_is_the_document_its_digest_hashes():
    """`document_text` (memoised per step) is `to_document` encoded as `digest` encodes it."""
    from jupyter_pipelines import snapshot
    from jupyter_pipelines.steps import make_step

    p = Pipeline("versión")
    p.context = Context.from_cells(["import math\ndef half(x):\n    return x / 2"])
    p.add_parameter("t", 0.5)
    p.add_parameter("mode", "a", enum_values=["a", "b"])
    p.add_step("Make", "xs = [half(1), 2]  # é", retry=2, retry_backoff=0.5, display_name="Máke")
    p.add_step("Check", "max(xs) <= t", kind="condition", if_steps=["Then"], else_steps=["Stop"])
    p.add_step("Then", "y = 1", cache_expire="P1D", description="the \"then\" branch")
    p.add_step("Stop", "'too large'", kind="fail")
    for pipeline in (p, Pipeline("empty")):
        document = snapshot.to_document(pipeline)
        text, digest = snapshot.document_text(pipeline)
        assert text == json.dumps(document, sort_keys=True, default=repr)
        assert digest == snapshot.digest(document)
        assert snapshot.document_text(pipeline) == (text, digest)
    twin = snapshot.from_document(json.loads(snapshot.document_text(p)[0]))
    assert snapshot.document_text(twin) == snapshot.document_text(p)
    p.steps["Then"] = make_step("Then", "y = 2")  # replaced behind `add_step`'s back: seen too
    assert snapshot.document_text(p)[0] == json.dumps(snapshot.to_document(p), sort_keys=True,
                                                      default=repr)
    # the last version is kept on the pipeline object: none of it outlives the pipeline
    step = weakref.ref(p.steps["Make"])
    del p, pipeline
    gc.collect()
    assert step() is None


# -- retrying a failed execution -----------------------------------------------------------------


def marker_pipeline(tmp_path, name: str = "resume") -> Pipeline:
    """Read fails until the file named by the `marker` parameter exists."""
    p = Pipeline(name, home=tmp_path / "state")
    p.context = Context.from_cells(["import pathlib"])
    p.add_parameter("marker", str(tmp_path / "marker.txt"))
    p.add_step("Prep", "base = 10")
    p.add_step("Side", "side = base + 1")
    p.add_step("Read", READ)
    p.add_step("Report", "out = size * 2")
    return p


def test_retry_reuses_what_succeeded_and_runs_the_rest(tmp_path):
    p = marker_pipeline(tmp_path)
    first = p.start()
    assert first.status == "Failed"
    assert statuses(first) == {"Prep": "Succeeded", "Side": "Succeeded", "Read": "Failed",
                               "Report": "NotRun"}
    assert "FileNotFoundError" in first.failure_reason
    assert "Report" not in listed(first)

    (tmp_path / "marker.txt").write_text("abc")
    retried = p.retry()
    assert retried.status == "Succeeded", retried.failure_reason
    assert retried.id != first.id
    assert statuses(retried) == {"Prep": "Cached", "Side": "Cached", "Read": "Succeeded",
                                 "Report": "Succeeded"}
    for step in ("Prep", "Side"):
        assert listed(retried)[step]["Metadata"]["Cached"]["SourcePipelineExecutionArn"] == first.id
    assert retried.result("Report", "out") == 26
    assert retried.result("Side", "side") == 11  # loaded from the store

    summaries = p.list_executions()
    assert [s["PipelineExecutionArn"] for s in summaries] == [retried.id, first.id]
    assert summaries[0]["RetryOf"] == first.id and "RetryOf" not in summaries[1]
    assert [s["PipelineExecutionStatus"] for s in summaries] == ["Succeeded", "Failed"]
    assert p.load_execution(first.id).status == "Failed"  # the failed one stays as it was

    with pytest.raises(PipelineError, match=rf"{retried.id} Succeeded.*only a Failed or Stopped"):
        p.retry(retried.id)


def test_retry_runs_with_the_parameters_of_the_failed_execution(tmp_path):
    p = marker_pipeline(tmp_path)
    other = tmp_path / "other.txt"
    first = p.start({"marker": str(other)})
    assert first.status == "Failed"
    other.write_text("abcdef")
    retried = p.retry(first.id)
    assert retried.status == "Succeeded"
    assert retried.parameters == first.parameters == {"marker": str(other)}
    assert retried.result("Report", "out") == 32


def test_retry_without_a_failed_execution_is_a_clear_error(tmp_path):
    p = marker_pipeline(tmp_path)
    with pytest.raises(PipelineError, match=r"no Failed/Stopped execution of `resume`"):
        p.retry()  # no history at all
    (tmp_path / "marker.txt").write_text("x")
    assert p.start().status == "Succeeded"
    with pytest.raises(PipelineError, match=r"no Failed/Stopped execution of `resume`"):
        p.retry()
    with pytest.raises(PipelineError, match=r"No execution `nope-123`"):
        p.retry("nope-123")
    memoryless = marker_pipeline(tmp_path, "nothing-kept")
    memoryless.persist = False
    with pytest.raises(PipelineError, match=r"persist=False"):
        memoryless.retry()


def test_retry_of_a_stopped_execution(tmp_path):
    p = Pipeline("stopped", home=tmp_path / "state")
    p.context = Context.from_cells(["import pathlib"])
    p.add_parameter("go", str(tmp_path / "go.txt"))
    p.add_step("Prep", "base = 10")
    p.add_step("Halt", "if not pathlib.Path(go).exists():\n    raise KeyboardInterrupt\nhalted = base")
    stopped = p.start()
    assert stopped.status == "Stopped"
    assert statuses(stopped) == {"Prep": "Succeeded", "Halt": "Stopped"}
    (tmp_path / "go.txt").touch()
    retried = p.retry()
    assert retried.status == "Succeeded"
    assert statuses(retried) == {"Prep": "Cached", "Halt": "Succeeded"}
    assert retried.steps["Prep"].reused_from == stopped.id
    assert p.list_executions()[0]["RetryOf"] == stopped.id


def test_retry_reruns_a_succeeded_step_whose_definition_changed(tmp_path):
    p = marker_pipeline(tmp_path)
    failed = p.start()
    p.add_step("Prep", "base = 100")  # fixed after the failure, with the failing step's input
    (tmp_path / "marker.txt").write_text("abc")
    retried = p.retry()
    assert statuses(retried)["Prep"] == "Succeeded"
    assert retried.steps["Prep"].why == "its code changed since its last run"
    # Side read the old `base`: its stored result is no longer valid, so it runs again too.
    assert statuses(retried)["Side"] == "Succeeded"
    assert retried.result("Side", "side") == 101 and failed.id
    assert retried.result("Report", "out") == (3 + 100) * 2


def test_retry_refuses_an_execution_of_another_pipeline(tmp_path):
    theirs = marker_pipeline(tmp_path, "theirs")
    failed = theirs.start()
    ours = marker_pipeline(tmp_path, "ours")  # same folder, same step names
    ours.add_step("Prep", "base = 99")
    (tmp_path / "marker.txt").write_text("abc")
    with pytest.raises(PipelineError, match=r"theirs"):
        ours.retry(failed.id)


def test_magic_retry(ip, tmp_path):
    marker = tmp_path / "magic-marker.txt"
    run_cell(ip, "import pathlib")
    run_cell(ip, f"%%parameters\nmarker = {str(marker)!r}")
    run_cell(ip, "%%step Prep\nbase = 10")
    with pytest.raises(StepFailed, match="FileNotFoundError"):
        run_cell(ip, f"%%step Read\n{READ}")
    with pytest.raises(RunError, match="upstream step `Read` failed"):
        run_cell(ip, "%%step Report\nout = size * 2")
    failed = run_cell(ip, "%pipeline run")
    assert failed.status == "Failed" and statuses(failed)["Read"] == "Failed"

    marker.write_text("abc")
    ex = run_cell(ip, "%pipeline retry")
    assert ex.status == "Succeeded"
    assert statuses(ex) == {"Prep": "Cached", "Read": "Succeeded", "Report": "Succeeded"}
    assert ip.user_ns["out"] == 26  # outputs are bound into the notebook as after a run
    assert current().list_executions()[0]["RetryOf"] == failed.id
    with pytest.raises(PipelineError, match="only a Failed or Stopped"):
        run_cell(ip, f"%pipeline retry {ex.id}")


def test_cli_retry_then_a_partial_run(tmp_path):
    """State beside the notebook (no JUPYTER_PIPELINES_HOME), steps run in the notebook's
    folder also when retried from elsewhere."""
    folder = tmp_path / "project"
    folder.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    nb = write_notebook(folder / "flow.ipynb", [
        "import pathlib",
        "%%parameters\nmarker = 'marker.txt'",  # relative to the notebook's folder
        "%%step Prep\nbase = 10",
        f"%%step Read\n{READ}",
        "%%step Report\nout = size * 2",
    ])
    failed = cli(["run", nb, "--json"], cwd=elsewhere, home=None)
    assert failed.returncode == 1, failed.stderr
    doc = json.loads(failed.stdout)
    assert doc["PipelineExecutionStatus"] == "Failed"
    assert json_statuses(doc) == {"Prep": "Succeeded", "Read": "Failed"}
    assert (folder / ".jupyter_pipelines" / "history.db").is_file()

    (folder / "marker.txt").write_text("abc")
    retried = cli(["retry", "--notebook", nb, "--json"], cwd=elsewhere, home=None)
    assert retried.returncode == 0, retried.stderr
    rdoc = json.loads(retried.stdout)
    assert rdoc["PipelineExecutionStatus"] == "Succeeded"
    assert json_statuses(rdoc) == {"Prep": "Cached", "Read": "Succeeded", "Report": "Succeeded"}
    prep = next(s for s in rdoc["Steps"] if s["StepName"] == "Prep")
    assert prep["Metadata"]["Cached"]["SourcePipelineExecutionArn"] == doc["PipelineExecutionArn"]

    only = cli(["run", nb, "--only", "Read", "--json"], cwd=elsewhere, home=None)
    assert only.returncode == 0, only.stderr
    assert json_statuses(json.loads(only.stdout)) == {"Prep": "Cached", "Read": "Succeeded"}

    history = History(folder / ".jupyter_pipelines")
    try:
        rows = history.executions()
        assert [r["status"] for r in rows] == ["Succeeded", "Succeeded", "Failed"]
        assert rows[1]["retry_of"] == doc["PipelineExecutionArn"]
    finally:
        history.close()


# -- partial runs --------------------------------------------------------------------------------


CHAIN = {"Load": "raw = [3, 1, 2]",
         "Clean": "clean = sorted(raw)",
         "Train": "fitted = sum(clean) / len(clean)",
         "Report": "report = f'mean {fitted}'",
         "Other": "count = len(raw)"}


def chain_pipeline(tmp_path) -> Pipeline:
    p = Pipeline("partial", home=tmp_path / "state")
    for name, code in CHAIN.items():
        p.add_step(name, code)
    return p


def test_partial_runs_run_the_selection_and_take_upstream_from_the_store(tmp_path):
    p = chain_pipeline(tmp_path)
    full = p.start()
    assert set(statuses(full).values()) == {"Succeeded"}

    ex = p.start(only=["Clean"])
    assert statuses(ex) == {"Load": "Cached", "Clean": "Succeeded"}  # runs although stored
    assert ex.steps["Load"].reused_from == full.id
    assert "--only" in ex.steps["Clean"].why
    assert ex.result("Clean", "clean") == [1, 2, 3]

    ex = p.start(from_step="Train")
    assert statuses(ex) == {"Load": "Cached", "Clean": "Cached", "Train": "Succeeded",
                            "Report": "Succeeded"}
    assert ex.result("Report", "report") == "mean 2.0"

    ex = p.start(to_step="Clean")
    assert statuses(ex) == {"Load": "Succeeded", "Clean": "Succeeded"}

    ex = p.start(from_step="Clean", to_step="Train")
    assert statuses(ex) == {"Load": "Cached", "Clean": "Succeeded", "Train": "Succeeded"}

    ex = p.start(only=["Train", "Other"])
    assert statuses(ex) == {"Load": "Cached", "Clean": "Cached", "Train": "Succeeded",
                            "Other": "Succeeded"}
    assert set(statuses(p.start()).values()) == {"Cached"}  # partial runs fill the store alike


def test_a_needed_upstream_without_a_valid_stored_result_is_an_error(tmp_path):
    p = chain_pipeline(tmp_path)
    p.start()
    p.add_step("Clean", "clean = sorted(raw, reverse=True)")  # its stored result is stale now
    before = len(p.list_executions())
    with pytest.raises(PipelineError, match=r"Step `Clean` is needed.*no stored result") as info:
        p.start(only=["Train"])
    assert "Load" not in str(info.value)
    assert len(p.list_executions()) == before  # nothing ran, nothing recorded
    ex = p.start(from_step="Clean")
    assert statuses(ex) == {"Load": "Cached", "Clean": "Succeeded", "Train": "Succeeded",
                            "Report": "Succeeded"}

    fresh = chain_pipeline(tmp_path / "fresh")
    with pytest.raises(PipelineError, match=r"Step `Load` is needed"):
        fresh.start(from_step="Clean")


@pytest.mark.parametrize("select, wrong, right", [
    ({"only": ["Claen"]}, "Claen", "Clean"),
    ({"from_step": "Trian"}, "Trian", "Train"),
    ({"to_step": "Reprot"}, "Reprot", "Report"),
])
def test_unknown_step_names_are_errors_with_a_suggestion(tmp_path, select, wrong, right):
    p = chain_pipeline(tmp_path)
    with pytest.raises(UnknownReferenceError, match=rf"`{wrong}`.*Did you mean `{right}`"):
        p.start(**select)


def test_partial_runs_need_the_store(tmp_path):
    p = chain_pipeline(tmp_path)
    p.persist = False
    with pytest.raises(PipelineError, match=r"persist=False"):
        p.start(only=["Clean"])


def test_magic_partial_runs(ip):
    for name, code in CHAIN.items():
        run_cell(ip, f"%%step {name}\n{code}")
    run_cell(ip, "%pipeline run")
    ex = run_cell(ip, "%pipeline run --only Clean")
    assert statuses(ex) == {"Load": "Cached", "Clean": "Succeeded"}
    ex = run_cell(ip, "%pipeline run --from Train")
    assert statuses(ex) == {"Load": "Cached", "Clean": "Cached", "Train": "Succeeded",
                            "Report": "Succeeded"}
    ex = run_cell(ip, "%pipeline run --to Clean")
    assert statuses(ex) == {"Load": "Succeeded", "Clean": "Succeeded"}
    ex = run_cell(ip, "%pipeline run --only Train Other")
    assert statuses(ex) == {"Load": "Cached", "Clean": "Cached", "Train": "Succeeded",
                            "Other": "Succeeded"}
    with pytest.raises(UnknownReferenceError, match=r"Did you mean `Clean`"):
        run_cell(ip, "%pipeline run --only Claen")


# -- retry policies --------------------------------------------------------------------------------


FLAKY = ("_path = pathlib.Path(counter)\n"
         "_seen = int(_path.read_text()) if _path.exists() else 0\n"
         "_path.write_text(str(_seen + 1))\n"
         "if _seen < 2:\n"
         "    raise RuntimeError(f'flaky attempt {_seen + 1}')\n"
         "attempt = _seen + 1")


def flaky_pipeline(tmp_path, **policy) -> Pipeline:
    """Flaky fails on its first two attempts (a counter in a file), then succeeds."""
    p = Pipeline("flaky", home=tmp_path / "state")
    p.context = Context.from_cells(["import pathlib"])
    p.add_parameter("counter", str(tmp_path / "attempts.txt"))
    p.add_step("Flaky", FLAKY, **policy)
    p.add_step("After", "done = attempt * 10")
    return p


def test_a_step_retried_enough_times_succeeds(tmp_path):
    p = flaky_pipeline(tmp_path, retry=2, retry_backoff=0)
    ex = p.start()
    assert ex.status == "Succeeded", ex.failure_reason
    assert listed(ex)["Flaky"]["AttemptCount"] == 3
    assert listed(ex)["After"]["AttemptCount"] == 1
    assert ex.result("After", "done") == 30
    assert (tmp_path / "attempts.txt").read_text() == "3"
    assert listed(p.load_execution(ex.id))["Flaky"]["AttemptCount"] == 3  # kept in the history


def test_a_step_that_keeps_failing_fails_after_its_retries(tmp_path):
    p = flaky_pipeline(tmp_path, retry=1, retry_backoff=0)
    ex = p.start()
    assert ex.status == "Failed"
    assert statuses(ex) == {"Flaky": "Failed", "After": "NotRun"}
    assert listed(ex)["Flaky"]["AttemptCount"] == 2
    assert "flaky attempt 2" in ex.failure_reason
    assert "RuntimeError" in ex.steps["Flaky"].traceback

    none = flaky_pipeline(tmp_path / "none").start()
    assert listed(none)["Flaky"]["AttemptCount"] == 1 and none.status == "Failed"


def test_retry_backoff_doubles(tmp_path):
    p = flaky_pipeline(tmp_path, retry=2, retry_backoff=0.05)
    ex = p.start()
    assert ex.status == "Succeeded"
    assert ex.steps["Flaky"].duration >= 0.05 + 0.1 - 1e-3


def test_a_contract_failure_is_not_retried(tmp_path):
    p = Pipeline("contract", home=tmp_path / "state")
    p.add_step("Broken", "if False:\n    v = 1", outputs=["v"], retry=3, retry_backoff=0)
    ex = p.start()
    assert ex.status == "Failed" and listed(ex)["Broken"]["AttemptCount"] == 1
    assert "never assigned" in ex.failure_reason


def test_magic_retry_flags(ip, tmp_path):
    run_cell(ip, "import pathlib")
    run_cell(ip, f"%%parameters\ncounter = {str(tmp_path / 'magic-attempts.txt')!r}")
    run_cell(ip, f"%%step Flaky --retry 2 --retry-backoff 0\n{FLAKY}")
    step = current().steps["Flaky"]
    assert (step.retry, step.retry_backoff) == (2, 0.0)
    ex = current().executions[-1]
    assert ex.steps["Flaky"].status == "Succeeded"
    assert listed(ex)["Flaky"]["AttemptCount"] == 3
    assert ip.user_ns["attempt"] == 3


# -- a killed process --------------------------------------------------------------------------------


def slow_shown_executing(home: Path) -> bool:
    """Has the run committed step Slow as Executing (its history's thread does, soon after the
    step starts), as another process reading the history sees it?"""
    if not (home / "history.db").exists():
        return False
    with closing(sqlite3.connect(f"{(home / 'history.db').as_uri()}?mode=ro", uri=True)) as db:
        try:
            return db.execute("SELECT status FROM step_runs WHERE step = 'Slow'").fetchall() == [
                ("Executing",)]
        except sqlite3.OperationalError:  # the tables are not made yet
            return False


@pytest.fixture(scope="module")
def crashed(tmp_path_factory):
    """A headless run SIGKILLed while its second step runs; what it left behind."""
    root = tmp_path_factory.mktemp("crash")
    home, marker = root / "state", root / "slow-started"
    nb = write_notebook(root / "crash.ipynb", [
        "import os\nimport pathlib\nimport time",
        "%%step First\nrows = list(range(300))",  # over INLINE_LIMIT: an artifact file
        f"%%step Slow\npathlib.Path({str(marker)!r}).touch()\n"
        "if os.environ.get('SKIP_SLOW') != '1':\n    time.sleep(60)\ntotal = sum(rows)",
        "%%step After\ndouble = total * 2",
    ])
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_PIPELINES_HOME"}
    env["JUPYTER_PIPELINES_HOME"] = str(home)
    proc = subprocess.Popen([sys.executable, "-m", "jupyter_pipelines", "run", str(nb)], cwd=root,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() or not slow_shown_executing(home):  # conditions, not times
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the slow step never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)  # reaped: its pid is dead for the history too
    assert proc.returncode == -signal.SIGKILL
    files = sorted(p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file())
    return {"root": root, "home": home, "notebook": nb, "files_after_kill": files}


def test_a_killed_run_leaves_a_consistent_history_and_store(crashed):
    home = crashed["home"]
    assert not [f for f in crashed["files_after_kill"]
                if f.endswith(".tmp") or any(part.startswith(".") for part in f.split("/"))]
    artifacts = [f for f in crashed["files_after_kill"] if f.startswith("artifacts/")]
    assert artifacts and all(re.fullmatch(r"artifacts/([0-9a-f]{2})/\1[0-9a-f]{62}", f)
                             for f in artifacts)

    history = History(home)  # opening it notices the dead process
    assert not list((home / "journal").glob("*")), "the journal was folded into the database"
    try:
        (execution,) = [e for e in history.executions() if e["retry_of"] is None]
        assert execution["status"] == "Failed"
        assert "Interrupted" in execution["failure_reason"]
        assert execution["end"] is not None
        runs = {r["step"]: r for r in history.step_runs(execution["id"])}
        first = runs["First"]
        assert first["status"] == "Succeeded"
        store = ArtifactStore(home / "artifacts")
        ref = ArtifactRef.from_dict(first["outputs"]["rows"])
        assert ref.inline is None and f"artifacts/{ref.key}" in artifacts
        assert ref in store and store.get(ref) == list(range(300))
        assert "After" not in runs
    finally:
        history.close()
    with sqlite3.connect(home / "history.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_the_step_running_at_the_kill_is_recorded_as_interrupted(crashed):
    history = History(crashed["home"])
    try:
        (execution,) = [e for e in history.executions() if e["retry_of"] is None]
        runs = {r["step"]: r for r in history.step_runs(execution["id"])}
        assert runs["Slow"]["status"] == "Failed"
        assert "Interrupted" in runs["Slow"]["failure_reason"]
    finally:
        history.close()


def test_retry_after_a_kill_resumes(crashed):
    home = crashed["home"]
    result = cli(["retry", "--home", home, "--json"], cwd=crashed["root"], home=None,
                 extra_env={"SKIP_SLOW": "1"}, entry_point=True)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["PipelineExecutionStatus"] == "Succeeded"
    assert json_statuses(doc) == {"First": "Cached", "Slow": "Succeeded", "After": "Succeeded"}
    history = History(home)
    try:
        latest = history.executions()[0]
        assert latest["id"] == doc["PipelineExecutionArn"] and latest["retry_of"] is not None
        assert history.execution(latest["retry_of"])["status"] == "Failed"
    finally:
        history.close()


# -- the history commands ----------------------------------------------------------------------------


def test_history_commands(tmp_path, capsys):
    home = tmp_path / "state"  # also $JUPYTER_PIPELINES_HOME (conftest)
    p = marker_pipeline(tmp_path)
    failed = p.start()
    (tmp_path / "marker.txt").write_text("abc")
    retried = p.retry()
    capsys.readouterr()

    assert main(["executions", "--home", str(home), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["PipelineExecutionSummaries"]
    assert [r["PipelineExecutionArn"] for r in rows] == [retried.id, failed.id]  # newest first
    assert [r["PipelineExecutionStatus"] for r in rows] == ["Succeeded", "Failed"]
    assert rows[0]["RetryOf"] == failed.id and "FileNotFoundError" in rows[1]["FailureReason"]

    assert main(["executions", "--json"]) == 0  # the home from the environment
    assert len(json.loads(capsys.readouterr().out)["PipelineExecutionSummaries"]) == 2

    suffix = failed.id.rsplit("-", 1)[1]  # a unique part of the id is enough
    assert main(["describe", suffix, "--home", str(home), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["PipelineExecutionArn"] == failed.id and doc["PipelineExecutionStatus"] == "Failed"
    assert json_statuses(doc) == {"Prep": "Succeeded", "Side": "Succeeded", "Read": "Failed"}

    assert main(["describe", retried.id, "--home", str(home)]) == 0  # the table
    out = capsys.readouterr().out
    assert "Prep: reused " + failed.id in out and "Execution Succeeded" in out

    wrong = retried.id[:-2] + ("zz" if not retried.id.endswith("zz") else "yy")
    assert main(["describe", wrong, "--home", str(home), "--json"]) == 2
    err = capsys.readouterr().err
    assert f"No execution `{wrong}`" in err and f"Did you mean `{retried.id}`" in err

    empty = tmp_path / "empty"
    empty.mkdir()
    for command in (["executions"], ["describe", failed.id], ["retry"]):
        assert main([*command, "--home", str(empty)]) == 2
        err = capsys.readouterr().err
        assert f"There is no execution history in {empty}" in err


def test_cli_retry_of_a_succeeded_execution_is_a_usage_error(tmp_path, capsys):
    p = marker_pipeline(tmp_path)
    (tmp_path / "marker.txt").write_text("abc")
    ok = p.start()
    capsys.readouterr()
    assert main(["retry", ok.id, "--home", str(tmp_path / "state")]) == 2
    assert "only a Failed or Stopped" in capsys.readouterr().err
    assert main(["retry", "--home", str(tmp_path / "state")]) == 2
    assert "no Failed/Stopped execution" in capsys.readouterr().err


def test_cli_notebook_option_means_that_notebooks_pipeline(tmp_path, capsys):
    a = write_notebook(tmp_path / "a.ipynb", [
        "import pathlib", "%%step AStep\nv = len(pathlib.Path('a.txt').read_text())"])
    b = write_notebook(tmp_path / "b.ipynb", [
        "import pathlib", "%%step BStep\nw = len(pathlib.Path('b.txt').read_text())"])
    assert main(["run", str(a), "--json"]) == 1
    a_failed = json.loads(capsys.readouterr().out)["PipelineExecutionArn"]
    assert main(["run", str(b), "--json"]) == 1  # b failed last
    capsys.readouterr()
    (tmp_path / "a.txt").write_text("x")
    assert main(["retry", "--notebook", str(a), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert json_statuses(doc) == {"AStep": "Succeeded"}
    assert main(["executions", "--notebook", str(a), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["PipelineExecutionSummaries"]
    assert [r["PipelineExecutionArn"] for r in rows] == [doc["PipelineExecutionArn"], a_failed]
    assert rows[0]["RetryOf"] == a_failed
