"""One notebook, one pipeline, one state folder: in a kernel, through nbclient and on the command
line (jupyter_pipelines/locate.py).

Every test runs in its own tmp_path: the conftest's ``JUPYTER_PIPELINES_HOME`` is removed where
the rule without it is tested, and the working directory is a scratch project folder.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import jupyter_pipelines
from jupyter_pipelines import current
from jupyter_pipelines.cli import main
from jupyter_pipelines.locate import kernel_notebook
from jupyter_pipelines.parameters import pipeline_name

from .conftest import run_cell

NAME = "customer_churn_forecasting"  # long, so IDs are long: 49 characters

CONTEXT = """import pathlib

class Doubler:
    def predict(self, xs):
        return [2 * x for x in xs]"""


def write_project(folder: Path, name: str = NAME, *, needs_input: bool = False,
                  register: bool = True) -> Path:
    """A small notebook in ``folder``: parameters, a step (reading input.txt if
    ``needs_input``, so it fails until the file exists), a training and a register-model step."""
    folder.mkdir(parents=True, exist_ok=True)
    read = "len(pathlib.Path('input.txt').read_text())" if needs_input else "0"
    cells = [CONTEXT,
             "%%parameters\nthreshold = 0.5\nnote = 'a rather long parameter value, folded "
             "rather than squeezed into three characters'",
             f"%%step Prepare\nrows = [1, 2, 3]\nsize = {read}",
             "%%step Train --kind training\nmodel = Doubler()"]
    if register:
        cells.append("%%step Register --kind register-model --model model --group ChurnModels")
    path = folder / f"{name}.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), path)
    return path


def run_json(capsys, *argv) -> tuple[int, dict]:
    code = main(["run", *map(str, argv), "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A scratch project root as the working directory, without JUPYTER_PIPELINES_HOME."""
    monkeypatch.delenv("JUPYTER_PIPELINES_HOME", raising=False)
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


# -- the kernel ----------------------------------------------------------------------------------


@pytest.fixture
def kernel(ip, monkeypatch):
    """Set what the front end tells the kernel, then start the session afresh (as %load_ext)."""
    session = jupyter_pipelines._magics.session

    def start(*, env: str | None = None, **user_ns):
        if env is None:
            monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
        else:
            monkeypatch.setenv("JPY_SESSION_NAME", env)
        ip.user_ns.update(user_ns)
        session.reset()
        return session

    yield start
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    for key in ("__session__", "__vsc_ipynb_file__"):
        ip.user_ns.pop(key, None)
    session.reset()


def test_kernel_notebook_sources_and_priority(tmp_path):
    nb = tmp_path / "work" / "My Analysis.ipynb"
    nb.parent.mkdir()
    nb.write_text("{}")
    # JupyterLab / Notebook 7: absolute (jupyter_server joins the kernel's cwd and the name)
    assert kernel_notebook({}, {"JPY_SESSION_NAME": str(nb)}) == nb
    # relative to the server's root while the kernel runs in the notebook's folder
    assert kernel_notebook({}, {"JPY_SESSION_NAME": "work/My Analysis.ipynb"}, nb.parent) == nb
    assert kernel_notebook({}, {"JPY_SESSION_NAME": "work/My Analysis.ipynb"}, tmp_path) == nb
    # IPython's __session__, and VS Code's variable first
    assert kernel_notebook({"__session__": str(nb)}, {}) == nb
    vsc = tmp_path / "vsc.ipynb"
    assert kernel_notebook({"__vsc_ipynb_file__": str(vsc)}, {"JPY_SESSION_NAME": str(nb)}) == vsc
    # a console, or nothing: no notebook
    assert kernel_notebook({}, {"JPY_SESSION_NAME": "console-1-4b3c"}) is None
    assert kernel_notebook({}, {}) is None


def test_kernel_pipeline_is_named_and_homed_like_the_cli(kernel, project):
    nb = write_project(project / "analysis", "My Analysis")
    session = kernel(env=str(nb))
    assert current().name == pipeline_name("My Analysis") == "My-Analysis"
    assert current().state_dir == nb.parent / ".jupyter_pipelines"
    assert session.notebook == nb
    # the same name as the command line gives the same notebook
    from jupyter_pipelines.notebook import load_notebook

    assert load_notebook(nb).name == current().name


def test_runs_made_in_the_kernel_are_listed_by_the_cli_for_that_notebook(
        kernel, ip, project, capsys, monkeypatch):
    nb = write_project(project / "analysis", register=False)
    kernel(env=f"analysis/{nb.name}")  # the server root is the project; the kernel runs beside nb
    monkeypatch.chdir(nb.parent)
    run_cell(ip, "%%step Prepare\nrows = [1, 2, 3]")
    ex = run_cell(ip, "%pipeline run")
    assert ex.id.startswith(NAME + "-")
    monkeypatch.chdir(project)
    capsys.readouterr()
    assert main(["executions", "--notebook", str(nb), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["PipelineExecutionSummaries"]
    ids = [r["PipelineExecutionArn"] for r in rows]
    assert ids[0] == ex.id and len(ids) == 2  # the %%step cell's run, then %pipeline run
    # and the other way round: a CLI run shows in the kernel's history
    code, doc = run_json(capsys, nb)
    assert code == 0
    listed = run_cell(ip, "%pipeline executions")
    assert list(listed.index) == [doc["PipelineExecutionArn"], *ids]


def test_jupyter_pipelines_home_still_overrides_the_kernel(kernel, project, tmp_path, monkeypatch):
    nb = write_project(project / "analysis")
    monkeypatch.setenv("JUPYTER_PIPELINES_HOME", str(tmp_path / "elsewhere"))
    kernel(env=str(nb))
    assert current().name == NAME
    assert current().state_dir == tmp_path / "elsewhere"


def test_kernel_without_a_notebook_keeps_pipeline_and_says_so(kernel, ip, project, capsys):
    kernel(env=None)
    assert current().name == "pipeline"
    assert current().state_dir == project / ".jupyter_pipelines"  # the working directory's
    capsys.readouterr()
    frame = run_cell(ip, "%pipeline executions")
    assert frame.empty
    out = capsys.readouterr().out
    assert "No executions of pipeline `pipeline`" in out
    assert "cannot tell which notebook it runs" in out and "JPY_SESSION_NAME" in out


def test_nbclient_with_jpy_session_name_names_the_pipeline(project, capsys):
    """nbclient sets no JPY_SESSION_NAME; given in the kernel's environment, it names the
    pipeline; without it the kernel keeps `pipeline`, and the folder is still found by the
    CLI's cwd rule (documented)."""
    nbclient = pytest.importorskip("nbclient")
    nb = project / "analysis" / "scored.ipynb"
    nb.parent.mkdir()
    cells = ["%load_ext jupyter_pipelines", "%%step Make\nxs = [1, 2]",
             "import jupyter_pipelines\nprint(jupyter_pipelines.current().name)"]
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), nb)
    for env, expected in (({"JPY_SESSION_NAME": str(nb)}, "scored"), ({}, "pipeline")):
        book = nbformat.read(nb, as_version=4)
        client = nbclient.NotebookClient(book, timeout=120, kernel_name="python3",
                                         resources={"metadata": {"path": str(nb.parent)}})
        base = {k: v for k, v in os.environ.items() if k != "JPY_SESSION_NAME"}
        client.execute(env={**base, **env})
        assert book.cells[-1].outputs[0]["text"].strip() == expected
    assert (nb.parent / ".jupyter_pipelines" / "history.db").is_file()
    assert main(["executions", "--notebook", str(nb), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["PipelineExecutionSummaries"]
    assert [r["PipelineExecutionArn"].rsplit("-", 3)[0] for r in rows] == ["scored"]


# -- the command line ------------------------------------------------------------------------------


def test_commands_find_the_only_state_folder_below_and_say_which(project, capsys):
    nb = write_project(project / "analysis")
    code, doc = run_json(capsys, nb)
    assert code == 0
    for argv in (["executions"], ["registry", "list"], ["describe", doc["PipelineExecutionArn"]]):
        assert main(argv) == 0, argv
        captured = capsys.readouterr()
        assert doc["PipelineExecutionArn"] in captured.out
        assert "analysis/.jupyter_pipelines" in captured.err  # said on stderr, not in the data
    assert main(["registry", "list", "--json"]) == 0
    (package,) = json.loads(capsys.readouterr().out)["ModelPackageSummaryList"]
    assert package["ModelPackageGroupName"] == "ChurnModels"


def test_the_working_directorys_state_folder_comes_first(project, capsys):
    here = write_project(project, "here_nb")
    below = write_project(project / "sub", "below_nb")
    _, doc_here = run_json(capsys, here)
    _, doc_below = run_json(capsys, below)
    assert main(["executions", "--json"]) == 0
    captured = capsys.readouterr()
    ids = [r["PipelineExecutionArn"] for r in
           json.loads(captured.out)["PipelineExecutionSummaries"]]
    assert ids == [doc_here["PipelineExecutionArn"]] and captured.err == ""
    # an ID alone is found below too
    assert main(["describe", doc_below["PipelineExecutionArn"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["PipelineName"] == "below_nb"


def test_notebook_and_home_options_and_the_environment(project, tmp_path, capsys, monkeypatch):
    a = write_project(project / "one", "first")
    b = write_project(project / "two", "second")
    _, doc_a = run_json(capsys, a)
    _, doc_b = run_json(capsys, b)
    for argv, expected in ((["--notebook", a], doc_a), (["--notebook", b], doc_b),
                           (["--home", b.parent / ".jupyter_pipelines"], doc_b)):
        assert main(["executions", *map(str, argv), "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)["PipelineExecutionSummaries"]
        assert [r["PipelineExecutionArn"] for r in rows] == [expected["PipelineExecutionArn"]]
        assert main(["registry", "list", *map(str, argv), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["ModelPackageSummaryList"][0][
            "PipelineExecutionArn"] == expected["PipelineExecutionArn"]
    monkeypatch.setenv("JUPYTER_PIPELINES_HOME", str(a.parent / ".jupyter_pipelines"))
    assert main(["executions", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["PipelineExecutionSummaries"]
    assert [r["PipelineExecutionArn"] for r in rows] == [doc_a["PipelineExecutionArn"]]


def test_describe_and_retry_by_id_alone_from_another_directory(project, tmp_path, capsys,
                                                              monkeypatch):
    a = write_project(project / "one", "first")
    b = write_project(project / "two", "second", needs_input=True)
    run_json(capsys, a)
    code, failed = run_json(capsys, b)
    assert code == 1
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(project)  # the root of both, as the README's `describe ID` is typed
    assert main(["describe", failed["PipelineExecutionArn"]]) == 0
    captured = capsys.readouterr()
    assert f"Execution {failed['PipelineExecutionArn']}" in captured.out
    assert "two/.jupyter_pipelines" in captured.err
    (b.parent / "input.txt").write_text("ready")
    monkeypatch.chdir(project / "one")  # a sibling state folder is here; the ID is still found
    assert main(["retry", failed["PipelineExecutionArn"], "--home",
                 str(b.parent / ".jupyter_pipelines"), "--json"]) == 0
    retried = json.loads(capsys.readouterr().out)
    statuses = {s["StepName"]: s["StepStatus"] for s in retried["Steps"]}
    assert statuses["Prepare"] == "Succeeded"
    monkeypatch.chdir(project)
    assert main(["describe", retried["PipelineExecutionArn"][-6:], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["PipelineName"] == "second"


def test_retry_by_id_alone(project, capsys):
    b = write_project(project / "two", "second", needs_input=True)
    write_project(project / "one", "first")
    run_json(capsys, project / "one" / "first.ipynb")
    code, failed = run_json(capsys, b)
    assert code == 1
    (b.parent / "input.txt").write_text("ready")
    assert main(["retry", failed["PipelineExecutionArn"], "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["PipelineExecutionStatus"] == "Succeeded"


# -- 80 columns and pipes ----------------------------------------------------------------------------


def _lines_holding(text: str, ident: str) -> list[str]:
    return [line for line in text.splitlines() if ident in line]


@pytest.mark.parametrize("columns", [80, 200])
def test_ids_stay_whole_at_80_columns(project, capsys, monkeypatch, columns):
    nb = write_project(project / "analysis")
    ids = [run_json(capsys, nb, "--param", f"threshold={t}")[1]["PipelineExecutionArn"]
           for t in (0.5, 0.7)]
    assert len(ids[0]) > 45
    monkeypatch.setenv("COLUMNS", str(columns))
    outputs = {}
    for argv in (["executions"], ["describe", ids[0]], ["registry", "list"]):
        assert main(argv) == 0
        outputs[argv[0]] = capsys.readouterr().out
    for name, out in outputs.items():
        for ident in (ids if name == "executions" else ids[:1]):  # the 2nd registration is cached
            assert _lines_holding(out, ident), f"{ident} not whole on one line of {name}:\n{out}"
        # every line fits, but the one naming the folder (a path is never broken either)
        assert max(len(line) for line in out.splitlines() if str(project) not in line) <= columns, out
    # the wide columns are folded, never squeezed: their words survive whole
    for word in ("threshold=0.7,", "characters"):
        assert any(word in line for line in outputs["executions"].splitlines()), outputs
    assert "ChurnModels" in outputs["registry"]


def test_ids_whole_in_a_real_pipe(project, capsys):
    nb = write_project(project / "analysis")
    _, doc = run_json(capsys, nb)
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_PIPELINES_HOME"}
    env.update(COLUMNS="80", NO_COLOR="1", PYTHONIOENCODING="utf-8")
    for argv in (["executions"], ["describe", doc["PipelineExecutionArn"]], ["registry", "list"]):
        done = subprocess.run([sys.executable, "-m", "jupyter_pipelines", *argv], cwd=project,
                              env=env, capture_output=True, text=True, encoding="utf-8",
                              timeout=120)
        assert done.returncode == 0, done.stderr
        assert re.search(re.escape(doc["PipelineExecutionArn"]), done.stdout)
        assert _lines_holding(done.stdout, doc["PipelineExecutionArn"]), done.stdout
        assert "analysis/.jupyter_pipelines" in done.stderr


def test_nbval_with_the_plugin_names_the_pipeline(project):
    """Under nbval (kernel in the notebook's folder, no JPY_SESSION_NAME) the plugin gives the
    kernel its notebook's path; without it the kernel keeps `pipeline`. (Run outside this
    checkout, so its root conftest.py, which enables the plugin, does not apply.)"""
    pytest.importorskip("nbval")
    nb = project / "analysis" / "scored.ipynb"
    nb.parent.mkdir()
    cells = ["%load_ext jupyter_pipelines",
             "import jupyter_pipelines, pathlib\n"
             "pathlib.Path('name.txt').write_text(jupyter_pipelines.current().name)"]
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), nb)
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_PIPELINES_HOME", "JPY_SESSION_NAME")}
    for plugin, expected in ((["-p", "jupyter_pipelines.pytest_plugin"], "scored"), ([], "pipeline")):
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "-p", "no:xdist", *plugin, "--nbval-lax", "--nbval-current-env",
                               str(nb)], cwd=project, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        assert (nb.parent / "name.txt").read_text() == expected
