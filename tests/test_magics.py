"""What only the magics do: isolation from kernel variables, cells that run their step and
bind outputs, reuse of upstream results, help, usage errors and displays."""

from __future__ import annotations

import re

import pytest
from IPython.core.error import UsageError

from jupyter_pipelines import Execution, current
from jupyter_pipelines.errors import IsolationError, StepFailed, UnknownReferenceError
from jupyter_pipelines.magics import PipelineMagics

from .conftest import run_cell


def last_execution() -> Execution:
    return current().executions[-1]


def test_step_reading_a_kernel_variable_is_rejected_with_the_fix(ip):
    run_cell(ip, "threshold_value = 3")
    with pytest.raises(IsolationError) as info:
        run_cell(ip, "%%step Use\ny = threshold_value + 1")
    message = str(info.value)
    assert "`Use`" in message and "`threshold_value`" in message
    assert "output of a step" in message and "parameter" in message
    assert "Use" not in current().steps  # nothing half-defined is left behind


def test_notebook_imports_and_functions_are_available_to_steps(ip):
    run_cell(ip, "import statistics\n\ndef double(v):\n    return 2 * v")
    run_cell(ip, "%%step Make\nvalues = [double(i) for i in range(3)]\nmid = statistics.median(values)")
    assert ip.user_ns["mid"] == 2
    assert last_execution().steps["Make"].status == "Succeeded"


def test_step_cell_runs_upstream_reuses_it_and_binds_outputs(ip, capsys):
    run_cell(ip, "%%parameters\nfactor = 2")
    run_cell(ip, "%%step Source\nbase = [1, 2, 3]\nprint('made base')")
    run_cell(ip, "%%step Scale\nscaled = [b * factor for b in base]")
    assert ip.user_ns["scaled"] == [2, 4, 6]
    assert {n: r.status for n, r in last_execution().steps.items()} == {
        "Source": "Cached", "Scale": "Succeeded"}
    out = capsys.readouterr().out
    assert "made base" in out and "Scale · processing · Succeeded" in out

    run_cell(ip, "%%step Source\nbase = [10, 20]")  # redefining upstream invalidates downstream
    run_cell(ip, "%%step Scale\nscaled = [b * factor for b in base]")
    assert ip.user_ns["scaled"] == [20, 40]


def test_bound_outputs_cannot_change_the_pipeline_results(ip):
    run_cell(ip, "%%step Source\nitems = [1, 2]")
    run_cell(ip, "items.append(99)")  # poking at the inspection copy in the notebook
    run_cell(ip, "%%step Count\nn = len(items)")
    assert ip.user_ns["n"] == 2


def test_failing_step_cell_shows_the_users_traceback(ip):
    with pytest.raises(StepFailed) as info:
        run_cell(ip, "%%step Boom\nx = 1\ny = x / 0")
    rendered = "\n".join(info.value._render_traceback_())
    assert '<step Boom>", line 2' in rendered and "y = x / 0" in rendered
    assert "runner.py" not in rendered


def test_fail_step_cell_reports_the_message(ip):
    from jupyter_pipelines.errors import ExecutionFailed

    run_cell(ip, "%%parameters\nlimit = 1.0")
    run_cell(ip, "%%step Value\nv = 2.0")
    run_cell(ip, "%%step Check --kind condition --if Fine --else Stop\nv <= limit")
    with pytest.raises(ExecutionFailed, match="v=2.0 exceeds 1.0"):
        run_cell(ip, '%%step Stop --kind fail\nf"v={v} exceeds {limit}"')
    run_cell(ip, "%%step Fine\nok = True")  # on the branch not taken: Skipped, no error
    assert last_execution().steps["Fine"].status == "Skipped"


def test_pipeline_run_returns_the_execution_and_steps_and_show_display(ip):
    run_cell(ip, "%%step A\nx = 1")
    run_cell(ip, "%%step B\ny = x + 1")
    ex = run_cell(ip, "%pipeline run")
    assert isinstance(ex, Execution) and ex.status == "Succeeded"
    assert repr(ex).splitlines()[0] == "Execution Succeeded"
    table = run_cell(ip, "%pipeline steps")
    assert list(table.index) == ["A", "B"] and table.loc["B", "Inputs"] == ["x"]
    view = run_cell(ip, "%pipeline show")
    bundle = view._repr_mimebundle_()
    assert bundle["text/plain"].splitlines()[0] == "Execution Succeeded"
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert re.search(r'data-step="B" data-kind="processing" data-status="(Succeeded|Cached)"',
                     bundle["image/svg+xml"])


def test_remove_and_reset(ip):
    run_cell(ip, "%%step A\nx = 1")
    run_cell(ip, "%%step B\ny = 2")
    run_cell(ip, "%pipeline remove B")
    assert list(current().steps) == ["A"]
    run_cell(ip, "%pipeline reset")
    assert not current().steps


@pytest.mark.parametrize("line, message", [
    ("%%step", "name"),
    ("%%step A --kind bogus", "invalid choice"),
    ("%%step A --batch-size many", "invalid int"),
    ("%%step A B", "unrecognized arguments"),
])
def test_step_usage_errors_are_one_line(ip, line, message):
    with pytest.raises(UsageError, match=message):
        run_cell(ip, line + "\nx = 1")


@pytest.mark.parametrize("line, message", [
    ("%pipeline", "command"),
    ("%pipeline frob", "invalid choice"),
    ("%pipeline show --param a=1", "are for %pipeline run"),
    ("%pipeline remove", "needs the name"),
])
def test_pipeline_usage_errors(ip, line, message):
    with pytest.raises(UsageError, match=message):
        run_cell(ip, line)


def test_bad_names_and_parameters_cells(ip):
    from jupyter_pipelines.errors import NameRuleError, ParameterError

    with pytest.raises(NameRuleError, match="1 to 64 characters"):
        run_cell(ip, "%%step bad.name\nx = 1")
    with pytest.raises(ParameterError, match="not a plain assignment"):
        run_cell(ip, "%%parameters\nprint(1)")
    with pytest.raises(UnknownReferenceError, match="Did you mean `base`"):
        run_cell(ip, "%%step A\nbase = 1")
        run_cell(ip, "%%step B\ny = bsae")


def test_help_lists_the_flags():
    doc = PipelineMagics.step.__doc__
    for flag in ("--kind", "--inputs", "--outputs", "--depends-on", "--if", "--else", "--model",
                 "--group", "--approval-status", "--metrics", "--data", "--batch-size"):
        assert flag in doc


def test_current_is_the_notebook_pipeline(ip):
    run_cell(ip, "import jupyter_pipelines\n_p = jupyter_pipelines.current()")
    assert ip.user_ns["_p"] is current()
