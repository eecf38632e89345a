"""Mistakes a user makes when pointing the command line at a pipeline's state: each gets exit
code 2 (usage) or 3 (the state folder cannot be used) and one paragraph on stderr that names the
culprit, what was expected, and how to point elsewhere. Never a traceback, never a silent empty
answer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from jupyter_pipelines.cli import main

from .test_state_folder import run_json, write_project

EXIT_USAGE, EXIT_STATE = 2, 3


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A scratch project root as the working directory, without JUPYTER_PIPELINES_HOME."""
    monkeypatch.delenv("JUPYTER_PIPELINES_HOME", raising=False)
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


def fails(capsys, *argv, code: int = EXIT_USAGE) -> str:
    """Run the CLI expecting ``code``; the one error paragraph it printed."""
    assert main([str(a) for a in argv]) == code, argv
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[-1]


@pytest.fixture
def two(project, capsys):
    """Two notebooks in two folders below the working directory, each run once."""
    a = write_project(project / "one", "first")
    b = write_project(project / "two", "second", needs_input=True)
    _, doc_a = run_json(capsys, a)
    _, doc_b = run_json(capsys, b)  # Failed: two/input.txt is missing
    return a, b, doc_a["PipelineExecutionArn"], doc_b["PipelineExecutionArn"]


def test_unknown_execution_id_suggests_the_close_one(two, capsys):
    a, _, id_a, _ = two
    wrong = id_a[:-1] + ("x" if id_a[-1] != "x" else "y")
    err = fails(capsys, "describe", wrong, "--notebook", a)
    assert f"No execution `{wrong}`" in err and f"Did you mean `{id_a}`" in err


def test_unknown_id_alone_names_every_folder_it_searched(two, capsys):
    _, _, id_a, _ = two
    wrong = id_a[:-1] + ("x" if id_a[-1] != "x" else "y")
    err = fails(capsys, "describe", wrong)
    assert f"No execution `{wrong}`" in err
    assert "one/.jupyter_pipelines" in err and "two/.jupyter_pipelines" in err
    assert f"Did you mean `{id_a}`" in err


def test_several_state_folders_below_is_an_error_naming_them(two, capsys):
    err = fails(capsys, "executions")
    assert "Several state folders" in err
    assert "one/.jupyter_pipelines (beside first.ipynb)" in err
    assert "two/.jupyter_pipelines (beside second.ipynb)" in err
    assert "--notebook one/first.ipynb" in err and "JUPYTER_PIPELINES_HOME" in err


def test_a_part_of_an_id_found_in_several_folders(two, capsys):
    _, _, id_a, id_b = two
    day = id_a.split("-")[-3]  # the date both IDs share
    assert day in id_b
    err = fails(capsys, "describe", day)
    assert f"Execution `{day}` matches executions in several state folders" in err
    assert "one/.jupyter_pipelines" in err and "two/.jupyter_pipelines" in err


def test_notebook_option_naming_a_missing_file(two, capsys):
    err = fails(capsys, "executions", "--notebook", "one/frist.ipynb")
    assert "--notebook one/frist.ipynb: there is no such file" in err
    assert "Did you mean `first.ipynb`" in err


def test_home_option_pointing_at_a_regular_file(project, capsys):
    (project / "notes.txt").write_text("not a folder")
    err = fails(capsys, "executions", "--home", "notes.txt", code=EXIT_STATE)
    assert "--home notes.txt is a file, not a state folder" in err and "history.db" in err


def test_home_option_naming_a_missing_folder(project, capsys):
    err = fails(capsys, "registry", "list", "--home", "nowhere")
    assert "--home nowhere: there is no such folder" in err and "--notebook" in err


def test_notebook_whose_folder_has_no_history(project, capsys):
    nb = write_project(project / "fresh", "never_run")
    err = fails(capsys, "executions", "--notebook", nb)
    assert f"Notebook {nb} has no execution history yet" in err
    assert str(nb.parent / ".jupyter_pipelines") + " (absent)" in err
    assert f"`jupyter-pipelines run {nb}`" in err


def test_no_state_folder_anywhere_says_where_it_looked(project, capsys):
    write_project(project / "fresh", "never_run")
    err = fails(capsys, "retry")
    assert "No state folder with an execution history" in err
    assert "./.jupyter_pipelines (absent)" in err and str(project) in err
    assert "--notebook NOTEBOOK" in err and "--home DIR" in err and "JUPYTER_PIPELINES_HOME" in err


def test_environment_home_pointing_at_a_file(project, capsys, monkeypatch):
    (project / "home.txt").write_text("")
    monkeypatch.setenv("JUPYTER_PIPELINES_HOME", str(project / "home.txt"))
    err = fails(capsys, "describe", "some-id", code=EXIT_STATE)
    assert f"JUPYTER_PIPELINES_HOME {project / 'home.txt'} is a file" in err


def test_registry_list_never_silently_empty_when_no_registry_is_found(project, capsys):
    nb = write_project(project / "analysis", "unregistered", register=False)
    run_json(capsys, nb)
    (project / ".jupyter_pipelines").mkdir()  # an empty one here does not hide the search either
    err = fails(capsys, "registry", "list")
    assert "No state folder with a model registry (registry.db) found" in err
    assert "./.jupyter_pipelines (present, without registry.db)" in err
    assert "register-model step" in err


def test_home_and_notebook_together(project, capsys):
    with pytest.raises(SystemExit) as usage:
        main(["executions", "--home", "x", "--notebook", "y.ipynb"])
    assert usage.value.code == EXIT_USAGE
    assert "argument --notebook: not allowed with argument --home" in capsys.readouterr().err


def test_retry_of_a_succeeded_execution_by_id_alone(two, capsys):
    _, _, id_a, _ = two
    err = fails(capsys, "retry", id_a)
    assert f"Execution {id_a} Succeeded; only a Failed or Stopped execution can be retried" in err


def test_execution_of_another_notebook_in_the_same_folder(project, capsys):
    a = write_project(project / "shared", "alpha")
    b = write_project(project / "shared", "beta")
    _, doc = run_json(capsys, a)
    err = fails(capsys, "describe", doc["PipelineExecutionArn"], "--notebook", b)
    assert "belongs to pipeline `alpha`, not `beta`" in err


def test_notebook_without_executions_in_a_shared_folder_gets_a_hint(project, capsys):
    a = write_project(project / "shared", "alpha")
    b = write_project(project / "shared", "beta")
    run_json(capsys, a)
    assert main(["executions", "--notebook", str(b)]) == 0  # a true answer, with the way on
    out = capsys.readouterr().out
    assert "No executions of pipeline `beta`" in out and "executions of `alpha`" in out
    assert "--home " + str(b.parent / ".jupyter_pipelines") in out


def test_notebooks_state_folder_is_a_file(project, capsys):
    nb = write_project(project / "odd", "odd")
    (nb.parent / ".jupyter_pipelines").write_text("")
    err = fails(capsys, "executions", "--notebook", nb, code=EXIT_STATE)
    assert f"The state folder of {nb}, {nb.parent / '.jupyter_pipelines'}, is a file" in err


def test_retry_when_the_folder_it_ran_in_is_gone(project, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("JUPYTER_PIPELINES_HOME", str(tmp_path / "state"))
    nb = write_project(project / "temporary", "gone", needs_input=True)
    code, doc = run_json(capsys, nb)
    assert code == 1
    shutil.rmtree(nb.parent)
    err = fails(capsys, "retry", doc["PipelineExecutionArn"])
    assert f"ran in {nb.parent}, which no longer exists" in err


def test_registry_group_typo_in_the_registry_found_below(project, capsys):
    run_json(capsys, write_project(project / "analysis"))
    err = fails(capsys, "registry", "describe", "ChurnModel", "1")
    assert "No model package group `ChurnModel`" in err and "Did you mean `ChurnModels`" in err


def test_a_fault_through_the_real_command(project):
    (project / "state.db").write_text("")
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_PIPELINES_HOME"}
    done = subprocess.run([sys.executable, "-m", "jupyter_pipelines", "registry", "list", "--home",
                           "state.db"], cwd=project, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == EXIT_STATE
    assert done.stderr.startswith("error: --home state.db is a file") and "Traceback" not in done.stderr
    assert json.dumps(done.stdout) == '""'
