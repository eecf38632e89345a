"""Fault injection: stored artifacts changed, truncated, replaced or deleted behind our back.

Every case checks the three promises of issue 9 §1: nothing wrong is returned (`result()`
raises ArtifactCorrupted/ArtifactMissing naming step, output, path and digest), a damaged
stored output is a cache miss (the step runs again, the history says why, the value is right
downstream), and nothing stored is lost (the run ends Succeeded, no row stays Executing).
"""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jupyter_pipelines import Pipeline
from jupyter_pipelines.errors import ArtifactCorrupted, ArtifactMissing, PipelineError
from jupyter_pipelines.source import Context
from jupyter_pipelines.store import ArtifactStore

from .conftest import run_cell
from .test_cli import cli

CONTEXT = """
import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression

class Box:
    def __init__(self, v):
        self.v = v
"""

OUTPUTS = {  # output -> (format, how to damage it)
    "n": "json", "frame": "parquet", "array": "npy", "model": "pickle", "box": "pickle",
}
# `n` is a JSON value too large to be kept inline in the history (`INLINE_LIMIT`): it has a file
# to damage. Small JSON values have none; their faults are the history's (see the end).
N = [12345] * 100


def pipeline(home: Path, store: str | None = None) -> Pipeline:
    p = Pipeline("faults", home=home, store=store)
    p.context = Context.from_cells([CONTEXT])
    p.add_step("Make", "n = [12345] * 100\n"
                       "frame = pd.DataFrame({'a': np.arange(2000.0), 'b': np.arange(2000) % 7})\n"
                       "array = np.arange(1000.0)\n"
                       "model = LinearRegression().fit(frame[['a']], frame['b'])\n"
                       "box = Box(41)\n")
    p.add_step("Use", "total = n[0] + float(frame['a'].sum()) + float(array.sum()) + box.v\n"
                      "coef = float(model.coef_[0])")
    return p


EXPECTED_TOTAL = 12345 + sum(range(2000)) + sum(range(1000)) + 41


def artifact_path(p: Pipeline, execution, step: str, output: str) -> Path:
    return Path(p.workspace.artifacts.path(execution.steps[step].refs[output]))


def flip_byte(path: Path, where: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {
    "edited": lambda path: path.write_bytes(path.read_bytes().replace(b"12345", b"12346")),
    "flipped": flip_byte,
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 2)]),
    "emptied": lambda path: path.write_bytes(b""),
    "deleted": lambda path: path.unlink(),
    "a folder": lambda path: (path.unlink(), path.mkdir()),
}


def check_no_row_executing(p: Pipeline) -> None:
    p.workspace.history.settle()  # the last run's end is committed after start() returns
    conn = p.workspace.history._conn
    assert conn.execute("SELECT count(*) FROM executions WHERE status = 'Executing'").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM step_runs WHERE status = 'Executing'").fetchone() == (0,)


@pytest.fixture
def made(tmp_path):
    p = pipeline(tmp_path / "state")
    ex = p.start(display=False)
    assert ex.status == "Succeeded" and ex.result("Use", "total") == EXPECTED_TOTAL
    return p, ex


CASES = [("n", "edited"), ("n", "deleted"), ("frame", "flipped"), ("frame", "truncated"),
         ("array", "flipped"), ("model", "flipped"), ("box", "flipped"), ("frame", "emptied"),
         ("array", "a folder")]


@pytest.mark.parametrize(("output", "damage"), CASES)
def test_a_damaged_output_is_never_returned(made, output, damage):
    p, ex = made
    path = artifact_path(p, ex, "Make", output)
    DAMAGE[damage](path)
    recorded = p.load_execution(ex.id)  # what result() reads after a restart: the store
    expected = ArtifactMissing if damage in ("deleted", "a folder") else ArtifactCorrupted
    with pytest.raises(expected) as info:
        recorded.result("Make", output)
    message = str(info.value)
    digest = ex.steps["Make"].refs[output].digest
    assert f"`{output}`" in message and "`Make`" in message
    assert str(path) in message and digest in message


@pytest.mark.parametrize(("output", "damage"), [c for c in CASES if c[1] != "a folder"])
def test_a_damaged_output_is_a_cache_miss_and_is_stored_again(made, tmp_path, output, damage):
    p, ex = made
    path = artifact_path(p, ex, "Make", output)
    good = path.read_bytes()
    DAMAGE[damage](path)
    again = pipeline(tmp_path / "state").start(display=False)  # a new object: only the store
    assert again.status == "Succeeded"
    assert again.steps["Make"].status == "Succeeded"  # ran again instead of reusing
    problem = "missing" if damage in ("deleted", "a folder") else "corrupt"
    assert f"stored output `{output}` of step Make is {problem}" in again.steps["Make"].why
    assert again.result("Use", "total") == EXPECTED_TOTAL
    new_ref = again.steps["Make"].refs[output]
    assert p.workspace.artifacts.check(new_ref) is None  # stored intact
    if new_ref.digest == ex.steps["Make"].refs[output].digest:
        assert path.read_bytes() == good  # the same content: the rerun repaired the stored copy
    check_no_row_executing(p)
    assert p.why("Make").endswith("so it ran again to store it afresh.")


def test_a_folder_where_an_artifact_was_fails_the_step_clearly(made, tmp_path):
    """Nothing of the user's is deleted to make room: the step fails, naming the path."""
    p, ex = made
    path = artifact_path(p, ex, "Make", "array")
    DAMAGE["a folder"](path)
    (path / "notes.txt").write_text("mine")
    again = pipeline(tmp_path / "state").start(display=False)
    assert again.status == "Failed" and again.steps["Make"].status == "Failed"
    reason = again.steps["Make"].failure_reason
    assert "`array`" in reason and "artifact store" in reason and "Make" in reason
    assert (path / "notes.txt").read_text() == "mine"
    check_no_row_executing(p)


def test_a_replaced_pickle_is_never_unpickled(made, tmp_path):
    p, ex = made
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Exploit(str(marker)))
    artifact_path(p, ex, "Make", "box").write_bytes(payload)
    with pytest.raises(ArtifactCorrupted, match="`box`"):
        p.load_execution(ex.id).result("Make", "box")
    again = pipeline(tmp_path / "state").start(display=False)
    assert again.result("Use", "total") == EXPECTED_TOTAL
    assert not marker.exists()  # the replaced bytes never ran


class _Exploit:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path(self.path).touch, ())


def test_a_change_after_the_file_was_verified_is_still_caught(made):
    """The store remembers files it verified by identity; any write changes the ctime."""
    p, ex = made
    recorded = p.load_execution(ex.id)
    assert recorded.result("Make", "n") == N  # verified and remembered
    path = artifact_path(p, ex, "Make", "n")
    stat = path.stat()
    path.write_bytes(path.read_bytes().replace(b"12345", b"12346"))  # same size...
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ...and the old mtime put back
    with pytest.raises(ArtifactCorrupted):
        p.load_execution(ex.id).result("Make", "n")


def test_corruption_in_an_fsspec_store_is_caught(tmp_path):
    url = f"file://{tmp_path / 'remote'}"
    p = pipeline(tmp_path / "state", store=url)
    ex = p.start(display=False)
    ref = ex.steps["Make"].refs["n"]
    (tmp_path / "remote" / ref.key).write_bytes(b"99999")
    with pytest.raises(ArtifactCorrupted, match=ref.digest):
        p.load_execution(ex.id).result("Make", "n")
    again = pipeline(tmp_path / "state", store=url).start(display=False)
    assert again.steps["Make"].status == "Succeeded" and again.result("Make", "n") == N


def test_storing_the_same_content_again_repairs_a_corrupt_copy(tmp_path):
    store = ArtifactStore(tmp_path / "store")
    value = {"a": list(range(100))}  # large enough to have a file (`INLINE_LIMIT`)
    ref = store.put(value)
    Path(store.path(ref)).write_bytes(b'{"a": 2}')
    assert store.check(ref) == "corrupt"
    assert store.put(value) == ref
    assert store.check(ref) is None and store.get(ref) == value


def test_retry_reruns_a_succeeded_step_whose_output_is_damaged(tmp_path):
    p = pipeline(tmp_path / "state")
    p.add_step("Boom", "raise RuntimeError('flaky')\nz = total")
    failed = p.start(display=False)
    assert failed.status == "Failed"
    artifact_path(p, failed, "Make", "frame").unlink()
    p.add_step("Boom", "z = total")
    retried = p.retry(failed.id, display=False)
    assert retried.status == "Succeeded"
    assert retried.steps["Make"].status == "Succeeded"  # not reused: its `frame` is gone
    assert "stored output `frame` of step Make is missing" in retried.steps["Make"].why
    assert retried.result("Boom", "z") == EXPECTED_TOTAL


def test_a_partial_run_names_a_damaged_upstream(made):
    p, ex = made
    flip_byte(artifact_path(p, ex, "Make", "frame"))
    with pytest.raises(PipelineError) as info:
        p.start(only=["Use"], display=False)
    message = str(info.value)
    assert "`Make`" in message and "`frame`" in message and "corrupt" in message
    check_no_row_executing(p)


# -- the magics ------------------------------------------------------------------------------

def test_magic_run_after_corruption_recomputes_and_says_why(ip, capsys):
    run_cell(ip, CONTEXT)
    run_cell(ip, "%%step Make\nn = [12345] * 100")  # a file (not inline) to corrupt
    run_cell(ip, "%%step Use\ntotal = n[0] + 1")
    first = run_cell(ip, "%pipeline run")
    store = ip.user_ns  # noqa: F841 - the namespace holds the bound outputs
    from jupyter_pipelines import current

    p = current()
    path = artifact_path(p, first, "Make", "n")
    path.write_bytes(b"12346")
    p._memory.clear()  # as after a kernel restart: only the store remains
    second = run_cell(ip, "%pipeline run")
    assert second.steps["Make"].status == "Succeeded" and ip.user_ns["total"] == 12346
    capsys.readouterr()
    run_cell(ip, "%pipeline why Make")
    assert "is corrupt" in capsys.readouterr().out


def test_magic_result_of_a_corrupt_output_is_one_clear_error(ip):
    run_cell(ip, "%%step Make\nn = [12345] * 100")
    first = run_cell(ip, "%pipeline run")
    from jupyter_pipelines import current

    artifact_path(current(), first, "Make", "n").write_bytes(b"1")
    result = ip.run_cell(f"%pipeline describe {first.id}\n")
    assert result.error_in_exec is None
    result = ip.run_cell(f"_ = %pipeline describe {first.id}\n_.result('Make', 'n')")
    assert isinstance(result.error_in_exec, ArtifactCorrupted)
    assert result.error_in_exec._render_traceback_()[0].startswith("ArtifactCorrupted: Stored output `n`")


def test_magic_doctor_reports_and_repairs(ip, capsys):
    run_cell(ip, "%%step Make\nn = [12345] * 100")
    first = run_cell(ip, "%pipeline run")
    from jupyter_pipelines import current

    path = artifact_path(current(), first, "Make", "n")
    path.write_bytes(b"12346")
    report = run_cell(ip, "%pipeline doctor")
    assert not report.healthy and str(path) in report.to_text()
    assert path.read_bytes() == b"12346"  # nothing changed without --repair
    repaired = run_cell(ip, "%pipeline doctor --repair")
    assert repaired.healthy and "marked invalid" in repaired.to_text()
    assert not path.exists() and (path.parents[1] / ".damaged" / path.name).read_bytes() == b"12346"
    assert run_cell(ip, "%pipeline doctor").healthy
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="--repair is for %pipeline doctor"):
        run_cell(ip, "%pipeline run --repair")


def test_a_run_after_repair_recomputes(made, tmp_path):
    p, ex = made
    artifact_path(p, ex, "Make", "array").write_bytes(b"junk")
    report = p.doctor(repair=True)
    assert report.healthy and len(report.findings) == 1
    history = p.workspace.history
    assert history.latest_run("Make", "faults", succeeded=True) is None  # no longer reusable
    marked = history.latest_run("Make", "faults")
    assert marked["execution_id"] == ex.id and "`array` of step Make is corrupt" in marked["invalid"]
    again = pipeline(tmp_path / "state").start(display=False)
    assert again.steps["Make"].status == "Succeeded"
    assert again.result("Use", "total") == EXPECTED_TOTAL
    assert p.doctor().healthy


def test_doctor_leaves_a_young_staged_file_and_repairs_an_old_one(made):
    p, _ = made
    root = Path(p.workspace.artifacts.location)
    young, old = root / ".staged.young.tmp", root / ".staged.old.tmp"
    young.write_bytes(b"half")
    old.write_bytes(b"half")
    an_hour_ago = time.time() - 7200
    os.utime(old, (an_hour_ago, an_hour_ago))
    report = p.doctor()
    assert [f.subject for f in report.findings] == [str(old)] and old.exists()
    assert p.doctor(repair=True).healthy
    assert not old.exists() and young.exists()


def test_values_of_every_format_round_trip_when_intact(made):
    p, ex = made
    recorded = p.load_execution(ex.id)
    assert recorded.result("Make", "n") == N
    assert isinstance(recorded.result("Make", "frame"), pd.DataFrame)
    assert np.array_equal(recorded.result("Make", "array"), np.arange(1000.0))
    assert recorded.result("Make", "box").v == 41
    assert p.doctor().healthy


def test_a_new_process_hashes_only_what_changed(made, monkeypatch):
    """The history keeps each output's file identity; a fresh store (a new process) trusts an
    unchanged file without hashing it, and hashes (and refuses) a changed one."""
    from jupyter_pipelines.store import artifacts as artifacts_mod
    from jupyter_pipelines.store.workspace import Workspace

    p, ex = made
    hashed = []
    real = artifacts_mod.content_digest
    monkeypatch.setattr(artifacts_mod, "content_digest",
                        lambda fmt, chunks: hashed.append(fmt) or real(fmt, chunks))
    fresh = Workspace(p.state_dir)  # not the cached one: nothing verified in memory
    recorded = fresh.load(fresh.find(ex.id))
    assert recorded.result("Make", "n") == N and hashed == []
    artifact_path(p, ex, "Make", "array").write_bytes(b"\x93NUMPY junk")
    with pytest.raises(ArtifactCorrupted):
        Workspace(p.state_dir).load(fresh.find(ex.id)).result("Make", "array")
    assert hashed == ["npy"]


def test_a_listener_failing_mid_run_leaves_no_execution_executing(tmp_path):
    """When the loop itself fails (here a listener, as a history that cannot be written
    would), start() raises that error and the history says Failed, not Executing."""
    from jupyter_pipelines.errors import StateError

    calls = []

    def flaky(event, *, execution, step=None, record=None, **future):
        calls.append(event)
        if event == "step_finished" and step == "Make" and calls.count("step_finished") == 1:
            raise StateError("the disk is full")

    p = pipeline(tmp_path / "state")
    with pytest.raises(StateError, match="disk is full"):
        p.start(listeners=[flaky], display=False)
    check_no_row_executing(p)
    (summary,) = p.list_executions()
    assert summary["PipelineExecutionStatus"] == "Failed"
    assert "The run stopped: the disk is full" in summary["FailureReason"]


def test_an_input_damaged_after_the_lookup_fails_only_its_reader(made, tmp_path, monkeypatch):
    """Between the cache lookup and the read the file changes: the reading step fails with
    the store's message; nothing escapes start()."""
    from jupyter_pipelines.store.artifacts import ArtifactStore

    p, ex = made
    p2 = pipeline(tmp_path / "state")
    p2.add_step("Use", "total = n + float(frame['a'].sum()) + float(array.sum()) + box.v + 0")
    monkeypatch.setattr(ArtifactStore, "check", lambda self, ref: None)  # the lookup saw it intact
    flip_byte(artifact_path(p, ex, "Make", "frame"))
    again = p2.start(display=False)
    assert again.status == "Failed" and again.steps["Make"].status == "Cached"
    reason = again.steps["Use"].failure_reason
    assert reason.startswith("Step `Use` could not read its inputs: Stored output `frame`")
    check_no_row_executing(p2)


# -- a small value kept in the history ---------------------------------------------------------------

def tamper_inline(home: Path, step: str, output: str, text: str) -> str:
    """Replace the text the history keeps of a small output (as a hand edit of history.db
    would): the digest beside it is left as it was. Returns the text it had."""
    with closing(sqlite3.connect(home / "history.db")) as db, db:
        rows = db.execute("SELECT rowid, outputs FROM step_runs WHERE step = ? AND outputs IS NOT "
                          "NULL", (step,)).fetchall()
        assert rows
        for rowid, outputs in rows:
            doc = json.loads(outputs)
            assert "seen" not in doc[output], "a small value has no file whose identity to keep"
            was, doc[output]["inline"] = doc[output]["inline"], text
            db.execute("UPDATE step_runs SET outputs = ? WHERE rowid = ?", (json.dumps(doc), rowid))
    return was


def small(home: Path) -> Pipeline:
    p = Pipeline("inline", home=home)
    p.add_step("Make", "score = 0.75")
    p.add_step("Use", "passed = score > 0.5")
    return p


def test_a_small_value_changed_in_the_history_is_never_returned_and_is_a_cache_miss(tmp_path):
    """A small JSON output has no file: its text is kept in its run's row in history.db and
    checked against the digest beside it, like a file's bytes. Changed there, it is never
    returned (the error names the history), the next run treats it as a cache miss and says
    why, and `doctor` reports it corrupt, moving no file aside when it repairs."""
    from jupyter_pipelines.store import ArtifactRef

    home = tmp_path / "state"
    p = small(home)
    ex = p.start(display=False)
    ref = ex.steps["Make"].refs["score"]
    assert ref.inline == "0.75"  # kept inline: no file
    assert not [f for f in (home / "artifacts").rglob("*") if f.is_file()]
    p.workspace.history.settle()
    assert tamper_inline(home, "Make", "score", "0.25") == "0.75"  # another value, same size

    with pytest.raises(ArtifactCorrupted) as info:
        p.load_execution(ex.id).result("Make", "score")
    message = str(info.value)
    assert "`score`" in message and "`Make`" in message and ref.digest in message
    assert "history" in message
    with closing(sqlite3.connect(home / "history.db")) as db:
        (outputs,) = db.execute("SELECT outputs FROM step_runs WHERE step = 'Make'").fetchone()
    tampered = ArtifactRef.from_dict(json.loads(outputs)["score"])
    assert tampered.inline == "0.25" and tampered.digest == ref.digest
    with pytest.raises(ArtifactCorrupted, match="history"):
        ArtifactStore(home / "artifacts").get(tampered, step="Make", output="score")

    report = cli(["doctor", "--home", home], tmp_path, home)
    assert report.returncode == 3, report.stdout + report.stderr
    assert "output `score` of step `Make` is corrupt" in report.stdout
    assert p.doctor().findings[0].subject == ArtifactStore(home / "artifacts").path(tampered)

    again = small(home).start(display=False)  # a new object: only the history and the store
    assert again.status == "Succeeded"
    assert again.steps["Make"].status == "Succeeded"  # ran again instead of reusing 0.25
    assert "stored output `score` of step Make is corrupt" in again.steps["Make"].why
    assert again.result("Make", "score") == 0.75 and again.result("Use", "passed") is True
    assert again.steps["Make"].refs["score"] == ref
    check_no_row_executing(p)
    assert p.why("Make").endswith("so it ran again to store it afresh.")

    repaired = p.doctor(repair=True)
    assert [f.repaired for f in repaired.findings if "marked invalid" in (f.repaired or "")]
    assert not (home / "artifacts" / ".damaged").exists()  # no file to move aside
    assert p.doctor().healthy


def test_a_small_value_changed_after_a_rerun_verified_it_is_still_a_cache_miss(tmp_path):
    """A process hashes a small value's text once (a re-run verifies it, `ArtifactStore.check`
    then knows that text): the text changed in the history afterwards is hashed again, found
    corrupt, and the step runs again, in the same process."""
    home = tmp_path / "state"
    small(home).start(display=False)
    cached = small(home).start(display=False)  # verifies "0.75" against its digest
    assert cached.steps["Make"].status == "Cached"
    small(home).workspace.history.settle()
    tamper_inline(home, "Make", "score", "0.25")
    again = small(home).start(display=False)
    assert again.steps["Make"].status == "Succeeded"
    assert "stored output `score` of step Make is corrupt" in again.steps["Make"].why
    assert again.result("Use", "passed") is True and again.result("Make", "score") == 0.75


def test_doctor_checks_every_rows_copy_of_a_small_value(tmp_path):
    """Each row keeps its own copy of a small value: a changed copy in the latest row (the one
    a run reuses) is corrupt even when an earlier row's copy of the same value is intact."""
    home = tmp_path / "state"
    p = small(home)
    p.start(display=False)
    assert small(home).start(display=False).steps["Make"].status == "Cached"
    p.workspace.history.settle()
    with closing(sqlite3.connect(home / "history.db")) as db, db:
        rowid, outputs = db.execute("SELECT rowid, outputs FROM step_runs WHERE step = 'Make' "
                                    "ORDER BY rowid DESC LIMIT 1").fetchone()
        doc = json.loads(outputs)
        doc["score"]["inline"] = "0.25"
        db.execute("UPDATE step_runs SET outputs = ? WHERE rowid = ?", (json.dumps(doc), rowid))
    assert small(home).start(display=False).steps["Make"].status == "Succeeded"  # a run sees it
    assert not p.doctor().healthy  # and so does doctor
    repaired = p.doctor(repair=True)
    assert repaired.healthy and "1 step run(s) marked invalid" in repaired.to_text()
    with closing(sqlite3.connect(home / "history.db")) as db:  # only the changed copy's row
        marked = db.execute("SELECT rowid FROM step_runs WHERE invalid IS NOT NULL").fetchall()
    assert marked == [(rowid,)]
