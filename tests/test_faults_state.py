"""Fault injection: a state folder that is damaged, read-only, locked, a file, shared by
concurrent processes, or left behind by a killed one.

Each case asserts the exit code (3: the state folder or store cannot be used) or the error
type, that the message names the file, and that nothing stored was changed or lost.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jupyter_pipelines import Pipeline, registry
from jupyter_pipelines.errors import StateError
from jupyter_pipelines.snapshot import to_document

from .conftest import in_processes, run_cell
from .test_cli import cli, write_notebook

CELLS = ["%%parameters\nn = 3", "%%step Make\nxs = list(range(n))", "%%step Total\ntotal = sum(xs)"]


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and the digest of its bytes (not SQLite's -wal/-shm side
    files, which a reader may create: housekeeping, not content)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    folder = tmp_path_factory.mktemp("filled")
    home = folder / "state"
    nb = write_notebook(folder / "nb.ipynb", CELLS)
    assert cli(["run", nb], folder, home).returncode == 0
    registry.register("Group1", {"weights": [1, 2]}, home=home)
    return folder


@pytest.fixture
def filled(template, tmp_path):
    """A notebook with one recorded execution and one registered model in its state folder."""
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    return tmp_path, tmp_path / "nb.ipynb", tmp_path / "state"


def damage_database(path: Path, how: str) -> None:
    for extra in ("-wal", "-shm"):
        Path(str(path) + extra).unlink(missing_ok=True)
    if how == "garbage":
        path.write_bytes(b"this is not a database\n" * 100)
    else:  # truncated: the header survives, the pages do not
        path.write_bytes(path.read_bytes()[:1500])


@pytest.mark.parametrize(("command", "how"), [
    (["executions"], "garbage"), (["executions"], "truncated"), (["run", "{nb}"], "garbage"),
    (["describe", "latest-id"], "truncated"), (["doctor"], "garbage")])
def test_a_damaged_history_is_exit_3_naming_the_file(filled, how, command):
    folder, nb, home = filled
    damage_database(home / "history.db", how)
    before = fingerprint(home)
    args = [str(nb) if a == "{nb}" else a for a in command]
    result = cli(args + (["--home", home] if command[0] != "run" else []), folder, home)
    assert result.returncode == 3, result.stderr
    text = result.stderr + result.stdout
    assert str(home / "history.db") in text and "doctor" in text + " ".join(command)
    assert "Traceback" not in text
    assert fingerprint(home) == before  # nothing was changed


@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_a_damaged_registry_is_exit_3_and_a_clear_api_error(filled, how):
    folder, _, home = filled
    damage_database(home / "registry.db", how)
    result = cli(["registry", "list", "--home", home], folder, home)
    assert result.returncode == 3 and str(home / "registry.db") in result.stderr
    with pytest.raises(StateError, match="registry database .*registry.db"):
        registry.register("Group1", {"weights": [3]}, home=home)


def test_a_damaged_registry_fails_the_register_step_not_the_kernel(tmp_path):
    home = tmp_path / "state"
    home.mkdir()
    (home / "registry.db").write_bytes(b"garbage" * 500)
    p = Pipeline("reg", home=home)
    p.add_step("Train", "from sklearn.dummy import DummyRegressor\n"
                        "model = DummyRegressor().fit([[0], [1]], [0, 1])", "training")
    p.add_step("Register", "", "register-model", model="model", group="Group1")
    ex = p.start(display=False)
    assert ex.status == "Failed" and ex.steps["Register"].status == "Failed"
    assert str(home / "registry.db") in ex.steps["Register"].failure_reason
    assert ex.steps["Train"].status == "Succeeded"


def test_the_api_and_the_magic_say_a_damaged_history_in_words(tmp_path, ip, monkeypatch):
    home = tmp_path / "broken"
    home.mkdir()
    (home / "history.db").write_bytes(b"not sqlite" * 300)
    p = Pipeline("api", home=home)
    p.add_step("Make", "xs = [1]")
    with pytest.raises(StateError, match="history database .*is damaged"):
        p.start(display=False)
    monkeypatch.setenv("JUPYTER_PIPELINES_HOME", str(home))
    result = ip.run_cell("%%step Make\nxs = [1]")
    assert isinstance(result.error_in_exec, StateError)
    assert result.error_in_exec._render_traceback_()[0].startswith("StateError: The history database")
    assert run_cell(ip, "1 + 1") == 2  # the kernel is alive


@pytest.mark.parametrize("command", [["run", "{nb}"], ["executions"], ["doctor"]])
def test_a_state_path_that_is_a_file(tmp_path, command):
    nb = write_notebook(tmp_path / "nb.ipynb", CELLS)
    home = tmp_path / "state"
    home.write_text("my notes")
    args = [str(nb) if a == "{nb}" else a for a in command]
    result = cli(args, tmp_path, home)
    assert result.returncode == 3 and str(home) in result.stderr and "file" in result.stderr
    assert home.read_text() == "my notes"


def a_file_where_a_folder_goes(tmp_path, folder: str, name: str) -> tuple[Path, Pipeline]:
    """A state folder whose ``folder`` (artifacts/, journal/) is a file, and a pipeline on it."""
    home = tmp_path / "state"
    home.mkdir()
    (home / folder).write_text(f"a file where the {folder} folder goes")
    p = Pipeline(name, home=home)
    p.add_step("Make", "xs = [1]")
    return home, p


def test_an_artifact_folder_that_is_a_file(tmp_path):
    _, p = a_file_where_a_folder_goes(tmp_path, "artifacts", "api")
    with pytest.raises(StateError, match="artifact store .*artifacts is a file"):
        p.start(display=False)


def test_a_database_locked_too_long_is_a_clear_error(tmp_path, monkeypatch):
    from jupyter_pipelines.store import state

    p = Pipeline("locked", home=tmp_path / "state")
    p.add_step("Make", "xs = [1]")
    assert p.start(display=False).status == "Succeeded"
    holder = sqlite3.connect(tmp_path / "state" / "history.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        monkeypatch.setattr(state, "LOCK_TIMEOUT", 0.2)
        from jupyter_pipelines.store.history import History

        with pytest.raises(StateError, match="locked by another process"):
            History(tmp_path / "state").start_execution(
                ["e", "x", "d", "{}", 1.0, os.getpid(), "host", None, str(tmp_path)], "{}")
    finally:
        holder.execute("ROLLBACK")
        holder.close()



def _open_new_databases(folder: str, count: int, barrier, results) -> None:
    """Worker: open ``count`` new databases in ``folder``, each at the same moment as the other
    worker (the barrier), and report the errors."""
    from jupyter_pipelines.store.state import connect

    errors = []
    for i in range(count):
        barrier.wait(60)
        try:
            conn, _ = connect(Path(folder) / f"{i}.db", "registry")
            conn.close()
        except StateError as exc:
            errors.append(str(exc))
    results.put(errors)


def test_two_processes_creating_one_database_at_once_both_open_it(tmp_path):
    # The one that reads the empty file while the other writes its header is told "database is
    # locked" at once, without waiting (about half of these 40 opens failed so before the fix).
    errors = in_processes(_open_new_databases, str(tmp_path), 20)
    assert errors == [[], []]
    for i in range(20):
        with sqlite3.connect(tmp_path / f"{i}.db") as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)

# -- a read-only state folder: reading works, writing says why not --------------------------------

def read_only(folder: Path, args: list, cwd: Path) -> subprocess.CompletedProcess:
    """The CLI with ``folder`` mounted read-only in a private mount namespace (root or not)."""
    if shutil.which("unshare") is None:
        pytest.skip("needs util-linux's unshare for a read-only mount")
    flags = "-m" if os.geteuid() == 0 else "-rm"
    quoted = " ".join(f"'{a}'" for a in args)
    script = (f"mount --bind '{folder}' '{folder}' && mount -o remount,ro,bind '{folder}' "
              f"'{folder}' && exec '{sys.executable}' -m jupyter_pipelines {quoted}")
    env = {**os.environ, "JUPYTER_PIPELINES_HOME": str(folder), "COLUMNS": "200", "NO_COLOR": "1"}
    result = subprocess.run(["unshare", flags, "sh", "-c", script], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=120)
    if "mount:" in result.stderr or "unshare:" in result.stderr:
        pytest.skip(f"cannot make a read-only mount here: {result.stderr.strip()}")
    return result


@pytest.mark.parametrize(("args", "shows"), [
    (["executions"], "Succeeded"),
    (["describe", "--home", "{home}", "nb-"], "Total"),
    (["registry", "list"], "Group1"),
    (["doctor"], "Everything is intact"),
])
def test_reading_commands_work_on_a_read_only_folder(filled, args, shows):
    folder, _, home = filled
    before = fingerprint(home)
    result = read_only(home, [str(home) if a == "{home}" else a for a in args], folder)
    assert result.returncode == 0, result.stderr
    assert shows in result.stdout
    assert fingerprint(home) == before


def test_a_run_into_a_read_only_folder_is_exit_3(filled):
    folder, nb, home = filled
    before = fingerprint(home)
    result = read_only(home, ["run", str(nb)], folder)
    assert result.returncode == 3
    assert "read-only" in result.stderr and str(home) in result.stderr
    assert "Traceback" not in result.stderr
    assert fingerprint(home) == before


# -- doctor ----------------------------------------------------------------------------------------

def test_doctor_repair_moves_a_damaged_history_aside_and_runs_go_on(filled):
    folder, nb, home = filled
    damage_database(home / "history.db", "garbage")
    damaged = (home / "history.db").read_bytes()
    assert cli(["doctor", "--home", home], folder, home).returncode == 3
    repaired = cli(["doctor", "--repair", "--home", home], folder, home)
    assert repaired.returncode == 0 and "moved aside" in repaired.stdout
    (aside,) = home.glob("history.db.damaged-*")
    assert aside.read_bytes() == damaged  # kept, never deleted
    assert cli(["run", nb], folder, home).returncode == 0
    assert cli(["doctor", "--home", home], folder, home).returncode == 0


def test_doctor_json(filled):
    folder, _, home = filled
    result = cli(["doctor", "--home", home, "--json"], folder, home)
    doc = json.loads(result.stdout)
    assert result.returncode == 0 and doc["Healthy"] is True and doc["Findings"] == []
    assert doc["Checked"]["artifacts"] == 2 and doc["StateFolder"] == str(home)


def test_doctor_finds_and_repairs_an_execution_left_executing_by_a_killed_process(tmp_path):
    home = tmp_path / "state"
    nb = write_notebook(tmp_path / "slow.ipynb", [
        "%%step Make\nxs = [1]",
        "%%step Slow\nimport time\nopen('started', 'w').close()\ntime.sleep(60)\ny = xs"])
    env = {**os.environ, "JUPYTER_PIPELINES_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "jupyter_pipelines", "run", str(nb)], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    report = cli(["doctor", "--home", home], tmp_path, home)
    assert report.returncode == 3
    assert f"left Executing by process {proc.pid}" in report.stdout
    assert cli(["doctor", "--repair", "--home", home], tmp_path, home).returncode == 0
    listed = json.loads(cli(["executions", "--json", "--home", home], tmp_path, home).stdout)
    (summary,) = listed["PipelineExecutionSummaries"]
    assert summary["PipelineExecutionStatus"] == "Failed" and "Interrupted" in summary["FailureReason"]
    described = json.loads(cli(["describe", summary["PipelineExecutionArn"], "--json", "--home", home],
                               tmp_path, home).stdout)
    steps = {s["StepName"]: s["StepStatus"] for s in described["Steps"]}
    assert steps["Make"] == "Succeeded"  # finished before the kill: kept (journal or database)


# A run whose rows wait for the end (nothing but the execution's start is committed), killed
# while its third step runs: what the two finished steps left is their journal lines alone.
KILLED_STEPS = [
    ("First", "rows = list(range(5))"),
    ("Second", "total = sum(rows)"),
    ("Slow", "import os, pathlib, time\npathlib.Path(os.environ['MARKER']).touch()\n"
             "if os.environ.get('SKIP_SLOW') != '1':\n    time.sleep(60)\nafter = total"),
]
KILLED_SCRIPT = f"""
import sys
from jupyter_pipelines import Pipeline
from jupyter_pipelines.store import writer
writer.FLUSH_INTERVAL = 3600.0
p = Pipeline("killed", home=sys.argv[1])
for name, code in {KILLED_STEPS!r}:
    p.add_step(name, code)
p.start(display=False)
"""


def killed_pipeline(home: Path) -> Pipeline:
    """The pipeline of KILLED_SCRIPT, here."""
    p = Pipeline("killed", home=home)
    for name, code in KILLED_STEPS:
        p.add_step(name, code)
    return p


def test_a_kill_before_any_commit_loses_only_the_running_step(tmp_path, monkeypatch):
    home, marker = tmp_path / "state", tmp_path / "slow-started"
    env = {**os.environ, "MARKER": str(marker)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SCRIPT, str(home)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the slow step never started"
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    # nothing committed yet: a run's start is its first commit's, so in a new state folder not
    # even the database is made; the journal has it all
    assert not (home / "history.db").exists()
    (journal,) = (home / "journal").iterdir()
    lines = journal.read_bytes().split(b"\0")[0]  # (zeros follow the lines of a mapped journal)
    start, version, *steps = [json.loads(line) for line in lines.splitlines()]
    assert start["start"][0] == journal.stem and start["start"][5] == proc.pid
    assert [step["run"][:3] for step in steps] == [
        ["First", "processing", "Succeeded"], ["Second", "processing", "Succeeded"]]
    assert [s["name"] for s in version["version"][1]["steps"]] == [n for n, _ in KILLED_STEPS]
    with journal.open("r+b") as handle:  # a line a kill cut short (no newline): never replayed
        handle.seek(len(lines))
        handle.write(b'{"run": ["Slow", "processing", "Succeeded", ')

    report = cli(["doctor", "--home", home], tmp_path, home)
    assert report.returncode == 3 and f"left by process {proc.pid}" in report.stdout
    assert "only its journal" in report.stdout and not (home / "history.db").exists()
    repaired = cli(["doctor", "--repair", "--home", home], tmp_path, home)
    assert repaired.returncode == 0 and "recorded from its journal" in repaired.stdout
    p = killed_pipeline(home)
    history = p.workspace.history  # (opening it would have folded the journal in just as well)
    (doc,) = history.executions()
    assert doc["status"] == "Failed" and "Interrupted" in doc["failure_reason"]
    runs = {r["step"]: r for r in history.step_runs(doc["id"])}
    assert {n: r["status"] for n, r in runs.items()} == {"First": "Succeeded", "Second": "Succeeded"}
    assert p.load_execution(doc["id"]).result("Second", "total") == 10  # its artifact is there
    assert history.version(doc["version_id"]) == to_document(p)  # from the journal
    assert list((home / "journal").iterdir()) == []
    assert history._conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert cli(["doctor", "--home", home], tmp_path, home).returncode == 0

    monkeypatch.setenv("MARKER", str(marker))
    monkeypatch.setenv("SKIP_SLOW", "1")
    again = p.retry(display=False)
    assert statuses(again) == {"First": "Cached", "Second": "Cached", "Slow": "Succeeded"}
    assert again.result("Slow", "after") == 10


def test_a_journal_that_cannot_be_written_stops_the_run_and_the_history_says_so(tmp_path):
    home, p = a_file_where_a_folder_goes(tmp_path, "journal", "unjournaled")
    p.add_step("Then", "y = xs")
    with pytest.raises(StateError, match="journal") as caught:
        p.start(display=False)
    assert str(home / "journal") in str(caught.value)
    (summary,) = p.list_executions()
    assert summary["PipelineExecutionStatus"] == "Failed"
    assert "The run stopped" in summary["FailureReason"] and "journal" in summary["FailureReason"]
    rows = {r["step"]: r["status"] for r in p.workspace.history.step_runs(summary["PipelineExecutionArn"])}
    assert rows == {"Make": "Succeeded"}  # committed at the end, with the execution's end


def statuses(ex) -> dict[str, str]:
    return {name: record.status for name, record in ex.steps.items()}


def test_two_processes_running_one_notebook_at_once_lose_nothing(tmp_path):
    home = tmp_path / "state"
    nb = write_notebook(tmp_path / "nb.ipynb", CELLS)
    env = {**os.environ, "JUPYTER_PIPELINES_HOME": str(home)}
    procs = [subprocess.Popen([sys.executable, "-m", "jupyter_pipelines", "run", str(nb), "--param",
                               f"n={n}"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for n in (4, 5)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    listed = json.loads(cli(["executions", "--json", "--home", home], tmp_path, home).stdout)
    statuses = [s["PipelineExecutionStatus"] for s in listed["PipelineExecutionSummaries"]]
    assert statuses == ["Succeeded", "Succeeded"]
    assert cli(["doctor", "--home", home], tmp_path, home).returncode == 0


# -- the command line's manners ----------------------------------------------------------------------

def test_a_cli_piped_into_head_exits_quietly(filled):
    folder, _, home = filled
    env = {**os.environ, "JUPYTER_PIPELINES_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "jupyter_pipelines", "executions", "--json"],
                            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before a byte is written, as `| head -c 0`
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr


def test_help_documents_the_exit_codes(tmp_path):
    result = cli(["--help"], tmp_path, tmp_path / "state")
    assert result.returncode == 0
    for line in ("0  the execution Succeeded", "1  the execution Failed or was Stopped",
                 "2  a usage or definition error", "3  the state folder or the store cannot be used"):
        assert line in result.stdout


# A run that ended, killed before the history's thread committed its end: the end and the
# Cached rows still queued are in the journal, and the next History opened writes them.
ENDED_SCRIPT = """
import os, signal, sys, threading
from jupyter_pipelines import Pipeline
from jupyter_pipelines.store.history import History
blocked = threading.Event()
real = History.record_steps
def record_steps(self, execution_id, rows, finish=None, copies=()):
    if finish is not None and os.environ.get("BLOCK") == "1":
        blocked.set()
        threading.Event().wait()  # the end's commit never comes
    return real(self, execution_id, rows, finish, copies)
History.record_steps = record_steps
p = Pipeline("ended", home=sys.argv[1])
p.add_step("First", "rows = list(range(5))")
p.add_step("Second", "total = sum(rows)")
ex = p.start(display=False)
print(ex.id, ex.status, flush=True)
if os.environ.get("BLOCK") == "1":
    blocked.wait(60)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_kill_after_the_run_returned_loses_nothing_of_its_end(tmp_path):
    home = tmp_path / "state"

    def run(block: str) -> str:
        proc = subprocess.run([sys.executable, "-c", ENDED_SCRIPT, str(home)], cwd=tmp_path,
                              env={**os.environ, "BLOCK": block}, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == (-9 if block == "1" else 0), proc.stderr
        execution_id, status = proc.stdout.split()
        assert status == "Succeeded"
        return execution_id

    first = run("0")   # stores both steps
    cached = run("1")  # both Cached, killed before its end was committed
    with sqlite3.connect(f"{(home / 'history.db').as_uri()}?mode=ro", uri=True) as db:
        assert db.execute("SELECT status FROM executions WHERE id = ?", [cached]).fetchall() \
            == [("Executing",)]
    db.close()
    assert len(list((home / "journal").iterdir())) == 1

    history = Pipeline("ended", home=home).workspace.history  # opening it replays the journal
    doc = history.execution(cached)
    assert doc["status"] == "Succeeded" and doc["failure_reason"] is None and doc["end"]
    runs = {r["step"]: r for r in history.step_runs(cached)}
    assert {n: (r["status"], r["cache_source"]) for n, r in runs.items()} == {
        "First": ("Cached", first), "Second": ("Cached", first)}
    assert list((home / "journal").iterdir()) == []
