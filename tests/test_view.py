"""The DAG views, Python side: DOT text, the annotated SVG contract, widget state, coalesced
updates, deterministic reprs, the static fallback and both Graphviz renderers."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys

import pytest

from jupyter_pipelines import Pipeline
from jupyter_pipelines.source import Context
from jupyter_pipelines.view import static_svg, structure_svg, to_text
from jupyter_pipelines.view.dot import SHAPES, to_dot
from jupyter_pipelines.view.state import step_state
from jupyter_pipelines.view.widget import LiveView

ALL_KINDS = [
    ("Make", "import numpy as np\nX = np.arange(6.0).reshape(-1, 1)\ny = 2 * X.ravel()", "processing", {}),
    ("Train", "from sklearn.linear_model import LinearRegression\nmodel = LinearRegression().fit(X, y)",
     "training", {}),
    ("Score", "mse = float(((model.predict(X) - y) ** 2).mean())", "processing", {}),
    ("Check", "mse <= limit", "condition", {"if_steps": ["Register", "Create"], "else_steps": ["Stop"]}),
    ("Register", "", "register-model", {"model": "model", "group": "G"}),
    ("Create", "", "create-model", {"model": "model"}),
    ("Predict", "", "transform", {"model": "Create", "data": "X"}),
    ("Stop", "f'mse {mse} above {limit}'", "fail", {}),
    ("Report", "done = True", "processing", {"depends_on": ["Score"]}),
]


@pytest.fixture
def pipe(tmp_path):
    p = Pipeline("demo", home=tmp_path)
    p.add_parameter("limit", 1.0)
    for name, code, kind, options in ALL_KINDS:
        p.add_step(name, code, kind, **options)
    return p


def view_of(pipe, execution=None, **kw):
    return LiveView(pipe.name, pipe.parameters, pipe.graph(), execution, **kw)


def test_dot_has_one_shaped_node_per_step_labelled_edges_and_branch_clusters(pipe):
    dot = to_dot(pipe.name, pipe.parameters, pipe.graph())
    for name, _, kind, _ in ALL_KINDS:
        assert re.search(rf'"{name}" \[id="step-{name}" shape={SHAPES[kind]} ', dot), name
    assert '"Make" -> "Train" [id="edge-Make-Train" label="X, y"]' in dot
    assert '"Score" -> "Report" [id="edge-Score-Report" style=dashed label="after"]' in dot
    assert re.search(r'"Check" -> "Stop" \[id="edge-Check-Stop" label="False" style=bold', dot)
    assert 'label="Check: if steps"' in dot and 'label="Check: else steps"' in dot
    assert "limit: Float = 1.0" in dot  # the parameters box
    assert "mse <= limit 0000.0000 0000.0000 → False" in dot  # room for the outcome line


def test_layout_once_per_structure_and_svg_contract(pipe):
    graph = pipe.graph()
    svg = structure_svg(pipe.name, pipe.parameters, graph)
    assert structure_svg(pipe.name, pipe.parameters, graph) == svg
    for name, _, kind, _ in ALL_KINDS:
        assert f'data-step="{name}" data-kind="{kind}" data-status="Pending"' in svg
    assert svg.count('data-role="status"') == len(ALL_KINDS)
    assert svg.count('data-role="outcome"') == 1
    assert "width=" not in svg.split(">", 1)[0]  # responsive


@pytest.mark.parametrize("limit, outcome, skipped", [(1.0, "True", "Stop"), (-1.0, "False", "Register")])
def test_painted_svg_and_widget_state_after_a_run(pipe, limit, outcome, skipped):
    ex = pipe.start({"limit": limit})
    view = view_of(pipe, ex)
    state = view.widget.steps
    assert state["Check"]["outcome"] == outcome
    assert state["Check"]["outcome_text"] == f"mse 0.0 <= limit {limit} → {outcome}" or \
        state["Check"]["outcome_text"].endswith(f"→ {outcome}")
    assert state[skipped]["status"] == "Skipped"
    assert state["Train"]["label"].startswith("Succeeded · ")
    svg = view.static_svg()
    assert re.search(rf'data-step="Check" data-kind="condition" data-status="Succeeded" '
                     rf'data-outcome="{outcome}"', svg)
    assert re.search(rf'data-step="{skipped}" data-kind="\w[\w-]*" data-status="Skipped"'
                     r'[^>]*opacity="0.45"', svg)
    assert f"limit: Float = {limit!r}" in svg
    header = view.widget.header
    assert header["status"] == ex.status and header["done"] == header["total"] == len(ALL_KINDS)
    assert header["parameters"] == {"limit": repr(limit)}


def test_failed_step_carries_its_error_in_state_tooltip_and_header(tmp_path):
    p = Pipeline("f", home=tmp_path)
    p.add_step("Boom", "x = 1 / 0")
    ex = p.start()
    view = view_of(p, ex)
    assert "ZeroDivisionError" in view.widget.steps["Boom"]["failure"]
    assert "ZeroDivisionError" in view.widget.header["failure"]
    assert "<title>Boom: Step `Boom` raised ZeroDivisionError" in view.static_svg()


@pytest.mark.parametrize("status", ["Pending", "Executing", "Succeeded", "Failed", "Stopped",
                                    "Skipped", "Cached"])
def test_step_state_for_every_status(status):
    from jupyter_pipelines.execution import StepRecord

    record = StepRecord("S", "processing", status=status, start=10.0,
                        end=None if status in ("Pending", "Executing", "Skipped") else 10.5)
    state = step_state(record)
    assert state["status"] == status
    timed = record.end and status != "Cached"  # a reused result took no time
    assert state["label"] == (f"{status} · 0.50s" if timed else status)


def test_details_of_a_step_show_inputs_outputs_previews_and_condition(pipe):
    pipe.context = Context.from_cells(["import pandas as pd"])
    pipe.add_step("Frame", "df = pd.DataFrame({'a': range(10)})\nprint('made')")
    pipe.add_step("Use", "total = int(df['a'].sum())")
    ex = pipe.start()
    view = view_of(pipe, ex)
    view.widget.selected = "Use"
    details = view.widget.details
    assert details["step"] == "Use" and details["status"] == "Succeeded"
    (df_input,) = details["inputs"]
    assert df_input["name"] == "df" and df_input["from"] == "Frame"
    assert df_input["summary"] == "10 rows × 1 columns" and "<table" in df_input["html"]
    assert details["outputs"] == [{"name": "total", "type": "int", "text": "45"}]
    view.widget.selected = "Frame"
    assert view.widget.details["stdout"] == "made\n"
    view.widget.selected = "Check"
    assert view.widget.details["condition"]["outcome"] == "True"
    view.widget.selected = "Register"
    assert view.widget.details["register_model"]["Group"] == "G"
    view.widget.selected = ""
    assert view.widget.details == {}


def test_updates_are_coalesced(tmp_path, monkeypatch):
    p = Pipeline("many", home=tmp_path)
    for i in range(200):
        p.add_step(f"S{i}", f"x{i} = {i}")
    view = view_of(p, interval=10.0)  # one flush per 10 s at most
    flushes = []
    original = view.flush
    monkeypatch.setattr(view, "flush", lambda: (flushes.append(1), original()))
    ex = p.start(listeners=[view])
    assert ex.status == "Succeeded"
    assert 1 <= len(flushes) <= 2  # 400 events, but at most one flush per interval plus the final one
    assert view.widget.header["done"] == 200
    assert all(s["status"] == "Succeeded" for s in view.widget.steps.values())


def test_a_trailing_update_arrives_after_a_quiet_period(tmp_path):
    import threading

    p = Pipeline("slow", home=tmp_path)
    p.context = Context.from_cells(["import time"])
    p.add_step("Quick", "a = 1")
    p.add_step("Slow", "time.sleep(0.6)\nb = a")
    view = view_of(p, interval=0.2)
    seen = threading.Event()
    view.widget.observe(lambda change: seen.set() if change["new"].get("Slow", {}).get("status")
                        == "Executing" else None, names="steps")
    p.start(listeners=[view])
    assert seen.is_set()  # Slow's Executing state was sent while it ran, not only at the end


def test_reprs_are_deterministic(pipe):
    ex = pipe.start()
    view = view_of(pipe, ex)
    assert repr(view) == repr(ex)
    assert repr(view.widget) == "PipelineWidget(demo: 9 steps; Succeeded; Skipped 1, Succeeded 8)"
    assert repr(view_of(pipe)) == "Pipeline demo: 9 steps, not run yet"
    bundle = view._repr_mimebundle_()
    assert bundle["text/plain"] == repr(ex)
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["image/svg+xml"].startswith("<svg")


def test_execution_displays_as_the_widget_but_not_twice(pipe, capsys):
    ex = pipe.start()
    ex.shown_live = True
    ex._ipython_display_()  # the cell that showed it live: nothing more
    assert capsys.readouterr().out == ""
    ex._ipython_display_()  # any later display shows it
    assert "Execution Succeeded" in capsys.readouterr().out


@pytest.mark.parametrize("renderer", ["dot", "wasm"])
def test_both_renderers_draw_the_same_nodes(pipe, renderer):
    if renderer == "dot" and not shutil.which("dot"):
        pytest.skip("Graphviz's dot is not installed")
    svg = structure_svg(pipe.name, pipe.parameters, pipe.graph(), renderer)
    assert sorted(re.findall(r'data-step="([^"]+)"', svg)) == sorted(n for n, *_ in ALL_KINDS)
    assert "<polygon" in svg or "<path" in svg


def test_without_dot_the_webassembly_graphviz_draws_the_widget(pipe, tmp_path, monkeypatch):
    from jupyter_pipelines.view.render import available_renderer

    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` anywhere on PATH
    assert available_renderer() == "wasm"
    view = view_of(pipe, pipe.start())
    assert view.widget.svg.count("data-step=") == len(ALL_KINDS)
    assert 'data-step="Check" data-kind="condition" data-status="Succeeded"' in view.static_svg()


def test_text_view_lists_steps_edges_and_statuses(pipe):
    ex = pipe.start()
    text = to_text(pipe.name, pipe.parameters, pipe.graph(), ex)
    assert text.splitlines()[0] == "Pipeline demo: 9 steps"
    assert "  Stop <fail> [Skipped]" in text and "      <- Check (if False)" in text


def small_notebook(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%%parameters\nlimit = 2"),
        nbformat.v4.new_code_cell("%%step A\nx = 1"),
        nbformat.v4.new_code_cell("%%step B --kind condition --if C\nx <= limit"),
        nbformat.v4.new_code_cell("%%step C\ny = x"),
    ])
    path = tmp_path / "small.ipynb"
    nbformat.write(nb, path)
    return path


NO_STATUS = re.compile(r"Pending|Succeeded|Executing|Failed|Skipped|0000|\d\.\d\ds|→")


def test_cli_show_writes_a_structure_only_svg(tmp_path):
    out = tmp_path / "dag.svg"
    done = subprocess.run([sys.executable, "-m", "jupyter_pipelines", "show",
                           str(small_notebook(tmp_path)), "--svg", str(out)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "Pipeline small: 3 steps" in done.stdout
    svg = out.read_text()
    assert sorted(re.findall(r'data-step="(\w+)" data-kind="([\w-]+)"', svg)) == [
        ("A", "processing"), ("B", "condition"), ("C", "processing")]
    # Nothing ran: no status (not even Pending), no duration, no condition operands or outcome.
    assert "data-status" not in svg and "data-outcome" not in svg
    assert not NO_STATUS.search(svg), NO_STATUS.search(svg)
    assert re.search(r'data-role="expression"[^>]*>x &lt;= limit</text>', svg)
    assert re.match(r'<svg [^>]*width="[\d.]+pt" height="[\d.]+pt"', svg)  # an image's natural size


def test_cli_show_dot_and_text_claim_no_status(tmp_path, capsys):
    from jupyter_pipelines.cli import main

    notebook = str(small_notebook(tmp_path))
    assert main(["show", notebook, "--dot"]) == 0
    dot = capsys.readouterr().out
    assert '"B" [id="step-B" shape=hexagon style="filled" label="B\\ncondition\\nx <= limit"' in dot
    assert '"A" [id="step-A" shape=box style="filled,rounded" label="A\\nprocessing"' in dot
    assert not NO_STATUS.search(dot), NO_STATUS.search(dot)
    assert main(["show", notebook]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[2:] == ["  A <processing>", "  B <condition>", "      <- A (x)",
                                     "  C <processing>", "      <- B (if True)", "      <- A (x)"]
    assert not NO_STATUS.search(text)


def test_the_widget_keeps_room_for_statuses_the_structure_only_drawing_does_not(pipe):
    graph = pipe.graph()
    live = structure_svg(pipe.name, pipe.parameters, graph)
    bare = structure_svg(pipe.name, pipe.parameters, graph, status_lines=False)
    assert live.count('data-role="status"') == len(ALL_KINDS) and 'data-role="status"' not in bare
    assert bare.count('data-role="expression"') == 1 and "mse &lt;= limit" in bare
    assert "data-status" not in bare


def test_static_svg_without_an_execution_is_structure_only(pipe):
    svg = static_svg(pipe.name, pipe.parameters, pipe.graph())
    assert len(re.findall(r"<g [^>]*data-step=", svg)) == len(ALL_KINDS)
    assert "data-status" not in svg and not NO_STATUS.search(svg)


class Recorder:
    """Stands in for IPython's ``display``: records displays and updates by display id."""

    def __init__(self):
        self.outputs: list[dict] = []

    def display(self, bundle, raw=False, display_id=None):
        assert raw and display_id is True
        index = len(self.outputs)
        self.outputs.append(bundle)
        recorder = self

        class Handle:
            def update(self, new, raw=False):
                assert raw
                recorder.outputs[index] = new

        return Handle()


def test_live_view_displays_the_widget_then_the_static_picture_updated_at_the_end(pipe, monkeypatch):
    import IPython.display

    shown = Recorder()
    monkeypatch.setattr(IPython.display, "display", shown.display)
    ex = pipe.start({"limit": -1.0}, display=True)
    widget, static = shown.outputs
    # The widget's output: its view and the deterministic summary, nothing a renderer without
    # widgets would draw instead of the picture.
    assert set(widget) == {"application/vnd.jupyter.widget-view+json", "text/plain"}
    assert widget["text/plain"] == repr(ex)
    # Its own output: the picture of the finished execution, as an image and in HTML (a caption
    # over the same SVG as an <img>, which HTML sanitizers keep).
    assert set(static) == {"text/html", "image/svg+xml"}
    svg = static["image/svg+xml"]
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert re.search(r'data-step="Check" data-kind="condition" data-status="Succeeded" '
                     r'data-outcome="False"', svg)
    assert re.search(r'data-step="Stop" data-kind="fail" data-status="Failed"', svg)
    assert "limit: Float = -1.0" in svg
    assert re.search(r"data-role=\"outcome\"[^>]*>mse \S+ &lt;= limit -1.0 → False<", svg)
    html = static["text/html"]
    assert html.startswith('<div class="jp-pipeline-static" data-pipeline="demo">')
    assert "<b>demo</b> · Failed · 9/9 steps · Failure reason: mse" in html
    assert "<svg" not in html
    (data,) = re.findall(r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', html)
    assert base64.b64decode(data).decode() == svg
    assert 'alt="The DAG of pipeline demo, execution Failed: Make Succeeded, ' in html


def test_a_pipeline_not_run_displays_a_structure_only_picture(pipe, monkeypatch):
    import IPython.display

    shown = Recorder()
    monkeypatch.setattr(IPython.display, "display", shown.display)
    view_of(pipe)._ipython_display_()
    widget, static = shown.outputs
    assert widget["text/plain"] == "Pipeline demo: 9 steps, not run yet"
    assert "<b>demo</b> · 9 steps, not run" in static["text/html"]
    assert "data-status" not in static["image/svg+xml"]

