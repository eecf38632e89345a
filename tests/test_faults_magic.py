"""Fault injection through the magics in a real IPython shell (bad magic lines, bad graphs),
and path tricks for the state folder.

Each bad line is refused with the error type that says what kind of mistake it is, a message
naming the culprit, the kernel alive, and the notebook's pipeline exactly as it was before.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from IPython.core.error import UsageError

from jupyter_pipelines import current
from jupyter_pipelines.errors import (
    CycleError,
    DefinitionError,
    ParameterError,
    PipelineError,
    UnknownReferenceError,
)

from .conftest import run_cell
from .test_cli import cli, write_notebook

BAD_CELLS = [
    ("%%step\nx = 1", UsageError, "name"),
    ("%%step A --kind nope\nx = 1", UsageError, "'nope'"),
    ("%%step A --retry abc\nx = 1", UsageError, "--retry"),
    ("%%step A --retry -1\nx = 1", DefinitionError, "--retry"),
    ("%%step A --inputs\nx = 1", UsageError, "--inputs"),
    ("%%step A --cache-expire forever\nx = 1", DefinitionError, "'forever'"),
    ("%%step A --kind transform --model M --data d --batch-size 0\nx = 1", DefinitionError, "--batch-size"),
    ("%%step A --kind condition\nx = 1", DefinitionError, "`A` is a condition step"),
    ("%%step A\nx = (", DefinitionError, "step `A` is not valid Python"),
    ("%%step A --approval-status Approved\nx = 1", DefinitionError, "approval_status"),
    ("%%step A --depends-on A\nx = 1", CycleError, "A -> A"),
    ("%%step Reader\ny = ghost + 1", UnknownReferenceError, "`ghost`"),
    ("%%step Base\nbase = 2", DefinitionError, "`base`"),  # an output named like a parameter
    ("%%parameters x\ny = 1", UsageError, "%%parameters takes no arguments"),
    ("%%parameters\ny = foo()", ParameterError, "`y`"),
    ("%%parameters\nthreshold = float('nan')", ParameterError, "`threshold`"),
    ("%%parameters\nxs = 1", DefinitionError, "`xs`"),  # a parameter named like an output
    ("%pipeline frobnicate", UsageError, "'frobnicate'"),
    ("%pipeline run --param nonsense", ParameterError, "'nonsense'"),
    ("%pipeline run --param nope=1", ParameterError, "`nope`"),
    ("%pipeline run --param base=abc", ParameterError, "`base`"),
    ("%pipeline run --param base=inf", ParameterError, "`base`"),
    ("%pipeline run --only Ghost", UnknownReferenceError, "`Ghost`"),
    ("%pipeline why", UsageError, "step name"),
    ("%pipeline remove Ghost", UnknownReferenceError, "`Ghost`"),
    ("%pipeline load /nonexistent/definition.json", DefinitionError, "definition.json"),
    ("%pipeline describe no-such-execution", PipelineError, "`no-such-execution`"),
    ("%pipeline doctor --repair extra", UsageError, "extra"),
]


def snapshot() -> tuple:
    p = current()
    return (p.name, dict(p.parameters), {n: s.digest for n, s in p.steps.items()})


@pytest.mark.parametrize(("cell", "error", "culprit"), BAD_CELLS,
                         ids=[c[0].split("\n")[0] for c in BAD_CELLS])
def test_a_bad_magic_line_is_refused_and_changes_nothing(ip, cell, error, culprit):
    run_cell(ip, "%%parameters\nbase = 1.0")
    run_cell(ip, "%%step Make\nxs = [base, 2.0]")
    before = snapshot()
    with pytest.raises(error) as info:
        run_cell(ip, cell)
    assert culprit in str(info.value)
    if isinstance(info.value, PipelineError):  # rendered as its message alone, no traceback
        assert info.value._render_traceback_() == [f"{type(info.value).__name__}: {info.value}"]
    assert snapshot() == before
    assert run_cell(ip, "xs") == [1.0, 2.0]  # the kernel and the notebook's values are intact


def test_a_cycle_closed_by_redefining_a_cell_is_refused_and_the_old_step_kept(ip):
    run_cell(ip, "%%step First\na = 1")
    run_cell(ip, "%%step Second\nb = a + 1")
    first = current().steps["First"]
    with pytest.raises(CycleError, match="First -> Second -> First|Second -> First -> Second"):
        run_cell(ip, "%%step First --depends-on Second\na = 1")
    assert current().steps["First"] is first


# -- path tricks -----------------------------------------------------------------------------

@pytest.mark.parametrize("folder", ["with space", "ünïcode", "dots..and-dashes"])
def test_state_folders_with_unusual_names_work_end_to_end(tmp_path, folder):
    home = tmp_path / folder / ".jupyter_pipelines"
    nb = write_notebook(tmp_path / "nb.ipynb", ["%%step Make\nxs = [1, 2]"])
    assert cli(["run", nb], tmp_path, home).returncode == 0
    listed = cli(["executions", "--home", home], tmp_path, home)
    assert listed.returncode == 0 and "Succeeded" in listed.stdout
    assert cli(["doctor", "--home", home], tmp_path, home).returncode == 0


def test_a_symlinked_state_folder_is_the_same_folder(tmp_path):
    real = tmp_path / "real-state"
    nb = write_notebook(tmp_path / "nb.ipynb", ["%%step Make\nxs = [1, 2]"])
    assert cli(["run", nb], tmp_path, real).returncode == 0
    link = tmp_path / "link-state"
    link.symlink_to(real, target_is_directory=True)
    again = cli(["run", nb, "--json"], tmp_path, link)
    assert again.returncode == 0 and '"StepStatus": "Cached"' in again.stdout  # same store


def test_a_home_given_with_a_tilde_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    nb = write_notebook(tmp_path / "nb.ipynb", ["%%step Make\nxs = [1]"])
    env_home = "~/tilde-state"
    result = cli(["run", nb], tmp_path, env_home)  # type: ignore[arg-type]
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tilde-state" / "history.db").is_file()
    assert not (tmp_path / "~").exists()


def test_a_relative_notebook_path_from_another_folder(tmp_path):
    (tmp_path / "project").mkdir()
    (tmp_path / "elsewhere").mkdir()
    nb = write_notebook(tmp_path / "project" / "nb.ipynb", ["%%step Make\nxs = [1]"])
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_PIPELINES_HOME"}
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "jupyter_pipelines", "run", "../project/nb.ipynb"],
                          cwd=tmp_path / "elsewhere", env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert (nb.parent / ".jupyter_pipelines" / "history.db").is_file()
    assert not (tmp_path / "elsewhere" / ".jupyter_pipelines").exists()
    listed = subprocess.run([sys.executable, "-m", "jupyter_pipelines", "executions", "--notebook",
                             "../project/nb.ipynb"], cwd=tmp_path / "elsewhere", env=env,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and "Succeeded" in listed.stdout
    assert Path(nb).is_file()
