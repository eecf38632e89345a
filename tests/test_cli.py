"""The ``jupyter-pipelines`` command as a subprocess.

Notebooks are copied or generated under tmp_path and every run gets its own
``JUPYTER_PIPELINES_HOME``, so nothing is written into the repository. The Abalone notebook is
executed three times in all (module-scoped fixtures): the table run, the --json run and the
fail-branch run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parents[1]
ABALONE = REPO / "notebooks" / "abalone.ipynb"


def cli(args, cwd: Path, home: Path, *, entry_point: bool = False) -> subprocess.CompletedProcess:
    """Run the CLI; ``entry_point`` uses the installed ``jupyter-pipelines`` script."""
    if entry_point:
        script = Path(sys.executable).with_name("jupyter-pipelines")
        command = [str(script) if script.exists() else shutil.which("jupyter-pipelines")]
        assert command[0], "the jupyter-pipelines entry point is not installed"
    else:
        command = [sys.executable, "-m", "jupyter_pipelines"]
    env = {**os.environ, "JUPYTER_PIPELINES_HOME": str(home), "COLUMNS": "200",
           "PYTHONIOENCODING": "utf-8", "NO_COLOR": "1"}
    return subprocess.run(command + [str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, encoding="utf-8", timeout=300)


def write_notebook(path: Path, cells: list[str], markdown: str | None = None) -> Path:
    nb = new_notebook(cells=([new_markdown_cell(markdown)] if markdown else [])
                      + [new_code_cell(c) for c in cells])
    nbformat.write(nb, path)
    return path


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one non-blank line a definition/usage error prints on stderr."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    return lines[0]


def table_statuses(stdout: str) -> dict[str, str]:
    """step -> status from the rich summary table."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line)]
        if len(cells) >= 5 and cells[1] and cells[1] != "step":
            rows[cells[1]] = cells[3]
    return rows


# ------------------------------------------------------------------------------------------------
# the Abalone tutorial
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def abalone(tmp_path_factory) -> Path:
    """A copy of the tutorial in a scratch folder (its data file is generated beside it)."""
    folder = tmp_path_factory.mktemp("abalone")
    shutil.copy(ABALONE, folder / "abalone.ipynb")
    return folder / "abalone.ipynb"


@pytest.fixture(scope="module")
def abalone_steps(abalone) -> dict[str, str]:
    """step name -> kind, read from the notebook's %%step lines."""
    steps = {}
    for cell in nbformat.read(abalone, as_version=4).cells:
        first = cell.source.lstrip().split("\n", 1)[0].split()
        if cell.cell_type == "code" and first and first[0] == "%%step":
            kind = first[first.index("--kind") + 1] if "--kind" in first else "processing"
            steps[first[1]] = kind
    return steps


@pytest.fixture(scope="module")
def table_run(abalone):
    """Run 1 of 3: the summary table, through the installed entry point."""
    return cli(["run", abalone.name], abalone.parent, abalone.parent / "state-table",
               entry_point=True)


@pytest.fixture(scope="module")
def json_run(abalone):
    """Run 2 of 3: --json with the default parameters."""
    return cli(["run", abalone.name, "--json"], abalone.parent, abalone.parent / "state-json")


@pytest.fixture(scope="module")
def fail_run(abalone):
    """Run 3 of 3: --json with a threshold the model cannot meet."""
    return cli(["run", abalone, "--json", "--param", "mse_threshold=3.0"], abalone.parent.parent,
               abalone.parent / "state-fail")


def test_abalone_notebook_has_every_kind(abalone_steps):
    assert set(abalone_steps.values()) == {"processing", "training", "condition", "fail",
                                           "register-model", "create-model", "transform"}
    assert abalone_steps["AbaloneMSEFail"] == "fail"
    assert abalone_steps["AbaloneMSECond"] == "condition"


def test_run_prints_a_table_of_every_step(table_run, abalone_steps):
    assert table_run.returncode == 0, table_run.stderr
    rows = table_statuses(table_run.stdout)
    assert set(rows) == set(abalone_steps), table_run.stdout
    for name, status in rows.items():
        expected = "Skipped" if abalone_steps[name] == "fail" else "Succeeded"
        assert status == expected, (name, table_run.stdout)
    assert "Execution Succeeded" in table_run.stdout
    assert "→ True" in table_run.stdout  # the condition's outcome column
    assert "AbaloneModelPackageGroup v1" in table_run.stdout


def test_run_json_success(json_run, abalone, abalone_steps):
    assert json_run.returncode == 0, json_run.stderr
    doc = json.loads(json_run.stdout)
    assert doc["PipelineExecutionStatus"] == "Succeeded"
    assert doc["FailureReason"] is None
    assert doc["Parameters"]["mse_threshold"] == 6.0
    steps = {s["StepName"]: s for s in doc["Steps"]}
    assert len(doc["Steps"]) == len(abalone_steps)  # every step, the Skipped fail step too
    assert set(steps) == set(abalone_steps)
    assert steps["AbaloneMSEFail"]["StepStatus"] == "Skipped"
    for name, step in steps.items():
        if name != "AbaloneMSEFail":
            assert step["StepStatus"] == "Succeeded", step
        assert step["StepType"] == abalone_steps[name]
    cond = steps["AbaloneMSECond"]["Metadata"]["Condition"]
    assert cond["Outcome"] == "True"
    (comparison,) = cond["Comparisons"]
    assert comparison["RightExpression"] == "mse_threshold" and comparison["RightValue"] == 6.0
    assert isinstance(comparison["LeftValue"], float) and comparison["LeftValue"] <= 6.0
    reg = steps["AbaloneRegisterModel"]["Metadata"]["RegisterModel"]
    assert reg == {"Group": "AbaloneModelPackageGroup", "Version": 1,
                   "ModelApprovalStatus": "PendingManualApproval"}

    # the registry lives in JUPYTER_PIPELINES_HOME, with the execution's lineage
    from jupyter_pipelines import registry

    (package,) = registry.list_packages(home=abalone.parent / "state-json")
    assert package.execution_id == doc["PipelineExecutionArn"]
    assert package.step_name == "AbaloneRegisterModel"
    assert (abalone.parent / "state-json" / "data" / "abalone-synthetic.csv").is_file()  # in the state
    assert not (abalone.parent / "abalone-synthetic.csv").exists()  # folder, not beside the notebook


def test_run_fail_branch(fail_run, abalone_steps):
    assert fail_run.returncode == 1, fail_run.stderr
    doc = json.loads(fail_run.stdout)
    assert doc["PipelineExecutionStatus"] == "Failed"
    assert "MSE" in doc["FailureReason"] and "3.0" in doc["FailureReason"]
    assert doc["Parameters"]["mse_threshold"] == 3.0
    steps = {s["StepName"]: s for s in doc["Steps"]}
    assert set(steps) == set(abalone_steps)
    assert steps["AbaloneMSEFail"]["StepStatus"] == "Failed"
    assert steps["AbaloneMSEFail"]["FailureReason"] == doc["FailureReason"]
    assert steps["AbaloneMSECond"]["Metadata"]["Condition"]["Outcome"] == "False"
    for name in ("AbaloneRegisterModel", "AbaloneCreateModel", "AbaloneTransform"):
        assert steps[name]["StepStatus"] == "Skipped", name
    for name in ("AbaloneProcess", "AbaloneTrain", "AbaloneEval", "AbaloneMSECond"):
        assert steps[name]["StepStatus"] == "Succeeded", name


def test_show_prints_steps_and_edges(abalone, abalone_steps, tmp_path):
    from jupyter_pipelines.notebook import load_notebook

    result = cli(["show", abalone], tmp_path, tmp_path / "state")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"{len(abalone_steps)} steps" in out
    for name, kind in abalone_steps.items():
        assert re.search(rf"^\s+{name} <{kind}>$", out, re.M), name
    # the tutorial's documented DAG
    for edge in ["AbaloneTrain <training>\n      <- AbaloneProcess (train)",
                 "<- AbaloneMSECond (if True)", "<- AbaloneMSECond (if False)",
                 "<- AbaloneCreateModel (model_entity)", "<- AbaloneEval (report)"]:
        assert edge in out, edge
    # and every edge of the loaded graph
    for edge in load_notebook(abalone).graph().edges:
        how = {"data": edge.label, "order": "after", "branch": f"if {edge.label}"}[edge.kind]
        assert f"<- {edge.source} ({how})" in out
    assert not (tmp_path / "state").exists()  # show runs nothing


def test_show_dot_prints_a_digraph(abalone, abalone_steps, tmp_path):
    result = cli(["show", abalone, "--dot"], tmp_path, tmp_path / "state")
    assert result.returncode == 0, result.stderr
    out = result.stdout.strip()
    assert out.startswith('digraph "abalone" {') and out.endswith("}")
    for name in abalone_steps:
        assert re.search(rf'^\s*"{name}" \[id="step-{name}" shape=', out, re.M), name
    assert re.search(r'"AbaloneMSECond" -> "AbaloneMSEFail" \[id="[^"]+" label="False"', out)
    assert re.search(r'"AbaloneMSECond" -> "AbaloneRegisterModel" \[id="[^"]+" label="True"', out)
    assert re.search(r'"AbaloneProcess" -> "AbaloneTrain" \[id="[^"]+" label="train"', out)


# ------------------------------------------------------------------------------------------------
# exit code 2: usage and definition errors, one line on stderr
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("param, fragments", [
    ("mse_threshld=3.0", ["Unknown parameter `mse_threshld`", "Did you mean `mse_threshold`?"]),
    ("mse_threshold=abc", ["`mse_threshold` is a Float", "'abc'"]),
    ("foo", ["--param 'foo'", "NAME=VALUE"]),
    ("=3.0", ["--param '=3.0'", "NAME=VALUE"]),
])
def test_bad_parameters_exit_2(abalone, tmp_path, param, fragments):
    result = cli(["run", abalone, "--param", param], tmp_path, tmp_path / "state")
    assert result.returncode == 2, (result.stdout, result.stderr)
    line = error_line(result)
    for fragment in fragments:
        assert fragment in line
    assert result.stdout == ""
    assert not (tmp_path / "state").exists()  # nothing ran


BAD_NOTEBOOKS = {
    "cycle": (["%%step a\nx = y + 1", "%%step b\ny = x + 1"],
              [r"The steps form a cycle: (a -> b -> a|b -> a -> b)\."]),
    "unknown_input": (["%%step a\nx = 1", "%%step b\ny = xx + 1"],
                      [r"Step `b` reads `xx`", r"Did you mean `x`\?"]),
    "bad_kind": (["%%step a --kind procesing\nx = 1"],
                 [r"bad_kind\.ipynb, cell 1", r"--kind", r"'procesing'"]),
    "bad_flag": (["%%step a --colour red\nx = 1"], [r"cell 1", r"--colour"]),
    "no_steps": (["import os", "x = 1"], [r"no %%step cells"]),
    "bad_parameters_cell": (["%%parameters\nn = 1 + 2", "%%step a\nx = n"],
                            [r"cell 1", r"`n`", r"not a literal"]),
    "kernel_variable": (["secret = 41", "%%step a\nx = secret + 1"],
                        [r"Step `a` reads `secret`", r"import/definition"]),
    "bad_condition": (["%%step a\nx = 1", "%%step c --kind condition\nok = x > 0"],
                      [r"Step `c` is a condition step", r"one Python expression"]),
}


@pytest.mark.parametrize("name", list(BAD_NOTEBOOKS))
def test_bad_notebooks_exit_2(tmp_path, name):
    cells, patterns = BAD_NOTEBOOKS[name]
    path = write_notebook(tmp_path / f"{name}.ipynb", cells)
    result = cli(["run", path.name], tmp_path, tmp_path / "state")
    assert result.returncode == 2, (result.stdout, result.stderr)
    line = error_line(result)
    for pattern in patterns:
        assert re.search(pattern, line), (pattern, line)
    assert result.stdout == ""


def test_three_step_cycle_is_reported_in_data_flow_order(tmp_path):
    path = write_notebook(tmp_path / "cycle3.ipynb",
                          ["%%step a\nx = z + 1", "%%step b\ny = x + 1", "%%step c\nz = y"])
    for command in ("run", "show"):
        result = cli([command, path], tmp_path, tmp_path / "state")
        assert result.returncode == 2
        found = re.search(r"a cycle: ((\w) -> \w -> \w -> \w)\.", error_line(result))
        assert found, result.stderr
        rotations = {"a -> b -> c -> a", "b -> c -> a -> b", "c -> a -> b -> c"}
        assert found.group(1) in rotations


def test_missing_notebook_exits_2(tmp_path):
    result = cli(["run", "nowhere.ipynb"], tmp_path, tmp_path / "state")
    assert result.returncode == 2
    line = error_line(result)
    assert "'nowhere.ipynb' does not exist" in line
    result = cli(["show", "nowhere.ipynb"], tmp_path, tmp_path / "state")
    assert result.returncode == 2 and "nowhere.ipynb" in error_line(result)


def test_unreadable_notebook_exits_2(tmp_path):
    (tmp_path / "broken.ipynb").write_text("{ this is not json")
    result = cli(["run", "broken.ipynb"], tmp_path, tmp_path / "state")
    assert result.returncode == 2
    assert "broken.ipynb is not a readable notebook" in error_line(result)


@pytest.mark.parametrize("args, fragment", [
    ([], "the following arguments are required: command"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["run"], "the following arguments are required: FILE"),
    (["run", "x.ipynb", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_argparse_usage_errors_exit_2(tmp_path, args, fragment):
    result = cli(args, tmp_path, tmp_path / "state")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: jupyter-pipelines")
    assert fragment in result.stderr
    assert result.stdout == ""


# ------------------------------------------------------------------------------------------------
# failing steps, step output, and headless semantics
# ------------------------------------------------------------------------------------------------

RAISES = [
    "import math",
    "def helper(v):\n    return v * 2",
    "%%parameters\nn = 3",
    "%%step Make\nprint('making', n)\nxs = [helper(i) for i in range(n)]",
    "%%step Boom\ntotal = sum(xs)\nratio = total / (n - 3)\n",
    "%%step After\nhalf = ratio / 2",
]


@pytest.fixture
def raising_notebook(tmp_path) -> Path:
    return write_notebook(tmp_path / "raises.ipynb", RAISES, markdown="# A step that raises")


def test_failing_step_exits_1_and_shows_the_users_traceback(raising_notebook, tmp_path):
    result = cli(["run", raising_notebook.name], tmp_path, tmp_path / "state")
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert table_statuses(out) == {"Make": "Succeeded", "Boom": "Failed", "After": "NotRun"}
    assert 'File "<step Boom>", line 2, in <module>' in out
    assert "ratio = total / (n - 3)" in out
    assert "ZeroDivisionError: division by zero" in out
    assert "Execution Failed: Step `Boom` raised ZeroDivisionError: division by zero" in out
    assert "jupyter_pipelines" not in out.split("Boom output")[-1]  # no internal frames
    assert "making 3" not in out  # a succeeded step's output only with -v


def test_verbose_shows_every_steps_output(raising_notebook, tmp_path):
    result = cli(["run", "-v", raising_notebook.name, "--param", "n=4"], tmp_path,
                 tmp_path / "state")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Make output" in result.stdout
    assert "making 4" in result.stdout
    assert table_statuses(result.stdout) == {"Make": "Succeeded", "Boom": "Succeeded",
                                             "After": "Succeeded"}


HELPER = [
    "%load_ext jupyter_pipelines",
    "import math\nfrom collections import Counter as C",
    "def scaled(v, by=2):\n    return math.sqrt(v) * by\n\n"
    "class Box:\n    def __init__(self, v):\n        self.v = v\n\n"
    "print('context cells only define things')",
    "%%parameters\nn = 5\nlabel = 'aab'",
    "%%step Make\nxs = [scaled(i) for i in range(n)]\nbox = Box(len(xs))\ncounts = dict(C(label))",
    "%%step Use\nwith open('data.txt') as _f:\n    offset = float(_f.read())\n"
    "total = round(sum(xs) + box.v + counts['a'] + offset, 6)\nprint(f'RESULT {total!r}')",
]


def plain_python(cells: list[str], cwd: Path):
    """What running the cells top to bottom in one namespace gives (the notebook's semantics)."""
    ns: dict = {}
    before = Path.cwd()
    os.chdir(cwd)
    try:
        for source in cells:
            if source.startswith("%load_ext"):
                continue
            if source.startswith("%%"):
                source = source.split("\n", 1)[1]
            exec(compile(source, "<cell>", "exec"), ns)
    finally:
        os.chdir(before)
    return ns


def test_headless_run_matches_the_notebook(tmp_path, capsys):
    folder = tmp_path / "nb"
    folder.mkdir()
    (folder / "data.txt").write_text("0.5")
    path = write_notebook(folder / "helper.ipynb", HELPER)
    expected = plain_python(HELPER, folder)["total"]
    capsys.readouterr()

    # run from another folder: steps run beside their notebook
    result = cli(["run", "-v", Path("nb") / path.name], tmp_path, tmp_path / "state")
    assert result.returncode == 0, result.stdout + result.stderr
    assert table_statuses(result.stdout) == {"Make": "Succeeded", "Use": "Succeeded"}
    found = re.search(r"^RESULT (.+)$", result.stdout, re.M)
    assert found, result.stdout
    assert float(found.group(1)) == expected
    assert "context cells only define things" not in result.stdout  # only imports/defs are shared
