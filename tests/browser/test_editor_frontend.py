"""The pipeline editor's front end (``view/static/editor.js``, built from ``js/editor/``) in
headless Chromium, against a FAKE anywidget model (``editor_harness/fake_model.js``).

No Jupyter and no kernel: the harness page renders the built bundle with a JS model that records
every command the canvas sends and lets the test push trait changes and replies, as the kernel
would (docs/editor-protocol.md). The test drives it with the real mouse and keyboard: palette
drag and drop, connecting handles, the output chooser, a refused connect, the side panel and its
CodeMirror editor, Delete with the confirm flow, undo, rename, the cells event.

The page is served by Playwright's router from the files (no socket); every request outside it,
``data:`` and ``blob:`` is aborted. One test puts the real kernel side (`edit.widget.Editor` on the
Abalone tutorial) behind the fake model, through a Playwright binding; the last one renders the
editor in a real JupyterLab 4 over a real kernel (conftest's server).

Skipped, saying so, where there is no Chromium (``/usr/bin/chromium``; conftest's ``chromium``
fixture); the JupyterLab test also where JupyterLab or anywidget is not installed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .editor_page import HARNESS, KernelBridge, click_pane, drag, serve

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
BASE = "http://127.0.0.1:8765/"   # answered by the page's router, nothing listens there
TIMEOUT = 10_000  # ms, for every wait on a condition


@pytest.fixture(scope="session")
def browser(chromium):
    """conftest's headless system Chromium (skipped, saying so, where there is none): one
    Playwright per session, shared with the JupyterLab test below."""
    return chromium


def _serve(route):
    index = (HARNESS / "index.html").read_bytes()
    return serve(route, BASE, {"": index, "index.html": index})


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1300, "height": 1000}, service_workers="block")
    context.route("**/*", _serve)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{exc}\n{exc.stack}"))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.errors = errors
    page.goto(BASE + "index.html")
    page.wait_for_function("window.harnessReady === true", timeout=TIMEOUT)
    page.locator('[data-pipeline-editor] [data-step="AbaloneProcess"]').wait_for(timeout=TIMEOUT)
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"errors in the page: {errors}"


# -- helpers -----------------------------------------------------------------------------------

def sent(page) -> list[dict]:
    return page.evaluate("window.fake.sent")


def wait_command(page, op: str, after: int = 0, **fields) -> dict:
    """The first command ``op`` sent at index >= ``after`` whose fields include ``fields``."""
    page.wait_for_function(
        """([op, after, fields]) => window.fake.sent.slice(after).some(c => c.op === op &&
             Object.entries(fields).every(([k, v]) => JSON.stringify(c[k]) === JSON.stringify(v)))""",
        arg=[op, after, fields], timeout=TIMEOUT)
    for command in sent(page)[after:]:
        if command["op"] == op and all(command.get(k) == v for k, v in fields.items()):
            return command
    raise AssertionError(op)


def reply(page, command: dict, **fields) -> None:
    page.evaluate("m => window.fake.reply(m)", {"reply": command["id"], **fields})


def push(page, **traits) -> None:
    page.evaluate("t => window.fake.push(t)", traits)


def node(page, name: str):
    return page.locator(f'[data-pipeline-editor] [data-step="{name}"]')


def handle(page, step: str, which: str):
    return node(page, step).locator(f'[data-handle="{which}"]')


def select(page, name: str):
    """Click a step: the view sets the `selected` trait (as the DAG view does) and opens its panel."""
    from playwright.sync_api import expect

    node(page, name).click()
    page.wait_for_function("n => window.fake.get('selected') === n", arg=name, timeout=TIMEOUT)
    panel = page.locator(f'[data-editor-for="{name}"]')
    expect(panel).to_be_visible(timeout=TIMEOUT)
    return panel


# -- tests -------------------------------------------------------------------------------------

def test_renders_the_graph_at_graphviz_positions(page, tmp_path):
    from playwright.sync_api import expect

    state = page.evaluate("window.fake.state")
    names = [n["name"] for n in state["graph"]["nodes"]]
    for n in state["graph"]["nodes"]:
        expect(node(page, n["name"])).to_have_attribute("data-kind", n["kind"])
        expect(node(page, n["name"])).to_have_attribute("data-status", state["steps"][n["name"]]["status"])
    expect(node(page, "AbaloneMSECond")).to_have_attribute("data-outcome", "True")
    expect(node(page, "AbaloneMSECond")).to_contain_text("→ True")
    # Handles: `in` on every node, `out` on all but the condition, which has True and False.
    for name in names:
        expect(handle(page, name, "in")).to_have_count(1)
    expect(handle(page, "AbaloneMSECond", "out")).to_have_count(0)
    expect(handle(page, "AbaloneMSECond", "True")).to_have_count(1)
    expect(handle(page, "AbaloneMSECond", "False")).to_have_count(1)
    expect(handle(page, "AbaloneTrain", "out")).to_have_count(1)
    # Every edge drawn, labelled; the palette has the seven kinds and "parameter".
    expect(page.locator(".react-flow__edge")).to_have_count(len(state["graph"]["edges"]))
    expect(page.locator('.react-flow__edge[data-id="AbaloneProcess->AbaloneTrain"]')).to_contain_text("train")
    expect(page.locator('.react-flow__edge[data-id="AbaloneMSECond->AbaloneMSEFail"]')).to_contain_text("False")
    expect(page.locator('.react-flow__edge[data-id="AbaloneTrain->AbaloneCreateModel"]')).to_contain_text("after")
    kinds = page.locator("[data-palette-kind]").evaluate_all("els => els.map(e => e.dataset.paletteKind)")
    assert kinds == [k["kind"] for k in state["kinds"]] + ["parameter"]
    # Nodes where Graphviz put them: screen positions are one similarity transform of x/y.
    boxes = {n: node(page, n).bounding_box() for n in names}
    first, second = state["graph"]["nodes"][0], state["graph"]["nodes"][-1]
    b1, b2 = boxes[first["name"]], boxes[second["name"]]
    scale = ((b2["x"] + b2["width"] / 2) - (b1["x"] + b1["width"] / 2)) / (second["x"] - first["x"])
    assert scale > 0.4, scale
    for n in state["graph"]["nodes"]:
        b = boxes[n["name"]]
        cx = b1["x"] + b1["width"] / 2 + (n["x"] - first["x"]) * scale
        cy = b1["y"] + b1["height"] / 2 + (n["y"] - first["y"]) * scale
        assert abs(b["x"] + b["width"] / 2 - cx) < 3 and abs(b["y"] + b["height"] / 2 - cy) < 3, n["name"]
        assert abs(b["width"] - n["w"] * scale) < 3, n["name"]
    # The header as in the DAG view.
    header = page.locator(".jp-pipeline-header")
    expect(header).to_contain_text("abalone")
    expect(header.locator(".jp-pipeline-badge")).to_have_attribute("data-status", "Executing")
    expect(header).to_contain_text("4/7 steps")
    # A status change repaints the node in place.
    steps = dict(state["steps"], AbaloneRegisterModel={"status": "Succeeded", "label": "Succeeded · 0.20s"})
    push(page, steps=steps)
    expect(node(page, "AbaloneRegisterModel")).to_have_attribute("data-status", "Succeeded")
    shot = tmp_path / "editor.png"
    select(page, "AbaloneEval")
    page.locator(".jp-pipeline-editor").screenshot(path=shot)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000


def test_palette_drag_and_click_add(page):
    from playwright.sync_api import expect

    canvas = page.locator("[data-pipeline-editor] .react-flow__pane")
    page.locator('[data-palette-kind="training"]').drag_to(canvas, target_position={"x": 120, "y": 80})
    command = wait_command(page, "add_step", kind="training")
    assert set(command) == {"id", "op", "kind"}
    # The kernel adds it: the reply names it, the new graph has it, the view selects it.
    graph = page.evaluate("window.fake.get('graph')")
    graph = dict(graph, nodes=graph["nodes"] + [dict(graph["nodes"][1], name="Training1", x=560, y=138,
                                                     code="model = None\n", outputs=["model"])])
    push(page, graph=graph)
    reply(page, command, ok=True, step="Training1")
    expect(node(page, "Training1")).to_have_attribute("data-kind", "training")
    expect(page.locator('[data-editor-for="Training1"]')).to_be_visible()
    assert page.evaluate("window.fake.get('selected')") == "Training1"
    # A plain click is the fallback; "parameter" sends add_parameter.
    count = len(sent(page))
    page.locator('[data-palette-kind="parameter"]').click()
    wait_command(page, "add_parameter", after=count)
    page.locator('[data-palette-kind="condition"]').click()
    wait_command(page, "add_step", after=count, kind="condition")


def test_connect_out_handle_with_the_output_chooser(page):
    from playwright.sync_api import expect

    edges = page.locator(".react-flow__edge").count()
    drag(page, handle(page, "AbaloneProcess", "out"), handle(page, "AbaloneCreateModel", "in"))
    chooser = page.locator("[data-editor-chooser]")
    expect(chooser).to_be_visible(timeout=TIMEOUT)
    outputs = chooser.locator("input[data-output]").evaluate_all("els => els.map(e => e.dataset.output)")
    assert outputs == ["train", "test", "validation", ""]  # "" is "order only"
    assert not any(c["op"] == "connect" for c in sent(page))
    chooser.locator('input[data-output="validation"]').check()
    chooser.locator('[data-action="connect-ok"]').click()
    command = wait_command(page, "connect", source="AbaloneProcess", target="AbaloneCreateModel")
    assert command["handle"] == "out" and command["names"] == ["validation"]
    reply(page, command, ok=True)
    expect(chooser).to_have_count(0)
    # Order only: names is empty.
    drag(page, handle(page, "AbaloneEval", "out"), handle(page, "AbaloneRegisterModel", "in"))
    expect(chooser).to_be_visible(timeout=TIMEOUT)
    chooser.locator("input[data-order-only]").check()
    chooser.locator('[data-action="connect-ok"]').click()
    command = wait_command(page, "connect", source="AbaloneEval", target="AbaloneRegisterModel")
    assert command["handle"] == "out" and command["names"] == []
    reply(page, command, ok=True)
    # The canvas adds no edge itself: only the kernel's graph does.
    expect(page.locator(".react-flow__edge")).to_have_count(edges)


def test_connect_true_false_handles_and_a_refused_connect(page):
    from playwright.sync_api import expect

    edges = page.locator(".react-flow__edge").count()
    drag(page, handle(page, "AbaloneMSECond", "True"), handle(page, "AbaloneTrain", "in"))
    command = wait_command(page, "connect", source="AbaloneMSECond", target="AbaloneTrain")
    assert command["handle"] == "True" and "names" not in command
    expect(page.locator("[data-editor-chooser]")).to_have_count(0)
    error = ("connecting AbaloneMSECond to AbaloneTrain would make a cycle: "
             "AbaloneTrain → AbaloneEval → AbaloneMSECond → AbaloneTrain.")
    reply(page, command, ok=False, error=error)
    bar = page.locator("[data-editor-message]")
    expect(bar).to_be_visible(timeout=TIMEOUT)
    expect(bar).to_have_attribute("data-kind", "error")
    expect(bar).to_contain_text("would make a cycle")
    expect(page.locator(".react-flow__edge")).to_have_count(edges)
    drag(page, handle(page, "AbaloneMSECond", "False"), handle(page, "AbaloneCreateModel", "in"))
    command = wait_command(page, "connect", source="AbaloneMSECond", target="AbaloneCreateModel")
    assert command["handle"] == "False"
    reply(page, command, ok=True)
    expect(bar).to_have_count(0)  # a success clears the error


def test_side_panel_code_flags_rename(page):
    from playwright.sync_api import expect

    panel = select(page, "AbaloneTrain")
    expect(panel.locator('[data-flag="model"] input')).to_be_visible()
    code = panel.locator("[data-editor-code] .cm-content")
    expect(code).to_contain_text("LinearRegression")
    # Python highlighting: CodeMirror marks the keyword `from` with a highlight class.
    assert panel.locator("[data-editor-code] .cm-line span").count() > 2
    code.click()
    page.keyboard.press("Control+End")
    page.keyboard.type("score = model.score(nothing)")
    check = page.wait_for_function(
        "() => window.fake.sent.find(c => c.op === 'check_code'"
        " && c.code.includes('score = model.score(nothing)'))",
        timeout=TIMEOUT).json_value()
    assert check["step"] == "AbaloneTrain"
    reply(page, check, ok=True,
          unknown="AbaloneTrain reads `nothing`, which no step outputs and no parameter defines.")
    expect(panel.locator("[data-editor-unknown]")).to_contain_text("reads `nothing`")
    # After a 600 ms pause, set_step with the code.
    update = page.wait_for_function(
        "() => window.fake.sent.find(c => c.op === 'set_step'"
        " && (c.code || '').includes('score = model.score(nothing)'))",
        timeout=TIMEOUT).json_value()
    assert update["step"] == "AbaloneTrain" and "flags" not in update
    assert update["code"].startswith("from sklearn")
    # Ctrl+Enter sends it at once.
    count = len(sent(page))
    page.keyboard.type("\nx = 1")
    page.keyboard.press("Control+Enter")
    command = wait_command(page, "set_step", after=count, step="AbaloneTrain")
    assert command["code"].endswith("x = 1")
    # A flag: Enter commits it.
    field = panel.locator('[data-flag="model"] input')
    field.fill("estimator")
    field.press("Enter")
    wait_command(page, "set_step", step="AbaloneTrain", flags={"model": "estimator"})
    field = panel.locator('[data-flag="retry"] input')
    field.fill("3")
    field.press("Tab")
    wait_command(page, "set_step", step="AbaloneTrain", flags={"retry": 3})
    # A value the flag cannot take is refused where it is typed, and stays a draft; Escape
    # puts back the committed value.
    count = len(sent(page))
    field.fill("three")
    field.press("Enter")
    bar = page.locator('[data-editor-message][data-kind="error"]')
    expect(bar).to_be_visible(timeout=TIMEOUT)
    expect(field).to_have_value("three")
    field.press("Escape")
    expect(field).to_have_value("3")
    assert [c for c in sent(page)[count:] if c["op"] == "set_step"] == []
    bar.locator(".jp-pipeline-close").click()
    # Controlled by the kernel's state: the box shows what the kernel says, once it says it.
    panel.locator('[data-flag="cache"] input').click()
    wait_command(page, "set_step", step="AbaloneTrain", flags={"cache": False})
    expect(panel.locator('[data-flag="cache"] input')).not_to_be_checked()
    graph = page.evaluate("window.fake.get('graph')")
    graph["nodes"][1]["flags"]["cache"] = False
    push(page, graph=graph)
    expect(panel.locator('[data-flag="cache"] input')).to_be_checked()
    panel.locator('[data-flag="kind"] select').select_option("processing")
    wait_command(page, "set_step", step="AbaloneTrain", flags={"kind": "processing"})
    # Rename on Enter; the selection follows the new name.
    name = panel.locator("[data-editor-name]")
    name.fill("AbaloneFit")
    name.press("Enter")
    command = wait_command(page, "rename", step="AbaloneTrain", to="AbaloneFit")
    reply(page, command, ok=True)
    page.wait_for_function("window.fake.get('selected') === 'AbaloneFit'", timeout=TIMEOUT)
    # The details of the last run show under the editor fields.
    push(page, selected="AbaloneEval", details={
        "step": "AbaloneEval", "kind": "processing", "status": "Succeeded", "duration": "0.09s",
        "outputs": [{"name": "mse", "type": "float", "text": "4.67"}]})
    details = page.locator('[data-editor-for="AbaloneEval"] [data-details-for="AbaloneEval"]')
    expect(details).to_contain_text("mse")
    expect(details).to_contain_text("4.67")


def test_delete_with_confirm_undo_redo_and_edge_delete(page):
    from playwright.sync_api import expect

    panel = select(page, "AbaloneEval")
    # Not while typing: Backspace in the name field edits the name.
    panel.locator("[data-editor-name]").click()
    page.keyboard.press("End")
    page.keyboard.press("Backspace")
    expect(panel.locator("[data-editor-name]")).to_have_value("AbaloneEva")
    page.keyboard.press("Escape")
    node(page, "AbaloneEval").click()
    page.keyboard.press("Delete")
    command = wait_command(page, "delete_step", step="AbaloneEval")
    assert "confirm" not in command
    reply(page, command, ok=False,
          confirm="AbaloneMSECond reads mse from AbaloneEval. Delete AbaloneEval anyway?")
    dialog = page.locator("[data-editor-confirm]")
    expect(dialog).to_be_visible(timeout=TIMEOUT)
    expect(dialog).to_contain_text("Delete AbaloneEval anyway?")
    dialog.locator('[data-action="confirm"]').click()
    command = wait_command(page, "delete_step", step="AbaloneEval", confirm=True)
    reply(page, command, ok=True)
    expect(dialog).to_have_count(0)
    page.wait_for_function("window.fake.get('selected') === ''", timeout=TIMEOUT)
    assert not [c for c in sent(page) if c["op"] == "delete_step" and c["step"] != "AbaloneEval"]
    # Cancel sends nothing more.
    node(page, "AbaloneTrain").click()
    count = len(sent(page))
    page.locator('[data-action="delete"]').click()
    command = wait_command(page, "delete_step", after=count, step="AbaloneTrain")
    reply(page, command, ok=False, confirm="AbaloneEval reads model. Delete anyway?")
    dialog.locator('[data-action="cancel"]').click()
    expect(dialog).to_have_count(0)
    assert len(sent(page)) == count + 1
    # Undo / redo: keys on the canvas, buttons enabled from can_undo / can_redo.
    click_pane(page)
    page.keyboard.press("Control+z")
    wait_command(page, "undo", after=count)
    expect(page.locator('[data-action="redo"]')).to_be_disabled()
    push(page, can_redo=True, can_undo=False)
    expect(page.locator('[data-action="redo"]')).to_be_enabled()
    expect(page.locator('[data-action="undo"]')).to_be_disabled()
    page.keyboard.press("Control+Shift+z")
    wait_command(page, "redo", after=count)
    page.locator('[data-action="redo"]').click()
    page.wait_for_function("n => window.fake.sent.slice(n).filter(c => c.op === 'redo').length === 2",
                           arg=count, timeout=TIMEOUT)
    assert not [c for c in sent(page)[count:] if c["op"] == "undo" and c is not None][1:]
    # An edge: click it, Delete disconnects.
    edge = page.locator('.react-flow__edge[data-id="AbaloneProcess->AbaloneEval"]')
    edge.locator(".react-flow__edge-textwrapper").click()
    expect(page.locator('[data-editor-edge="AbaloneProcess->AbaloneEval"]')).to_be_visible()
    page.keyboard.press("Delete")
    command = wait_command(page, "disconnect", source="AbaloneProcess", target="AbaloneEval")
    reply(page, command, ok=False, error="AbaloneEval's code reads test: the edge is implied by the code.")
    expect(page.locator("[data-editor-message]")).to_contain_text("implied by the code")


def test_cells_event_save_and_copy_fallbacks(page):
    from playwright.sync_api import expect

    cells = {"revision": 1,
             "cells": [{"key": "parameters", "text": "%%parameters\nx = 1", "previous": None},
                       {"key": "step:A", "text": "%%step A\ny = x", "previous": "%%step A\ny = 2"}],
             "removed": [{"key": "step:B", "previous": "%%step B\n"}]}
    # Shown, the canvas asked whether a notebook front end is there: an empty revision 0.
    page.wait_for_function("window.cellsProbes.length === 1", timeout=TIMEOUT)
    assert page.evaluate("window.cellsProbes[0]") == {"revision": 0, "cells": [], "removed": [],
                                                       "force": False, "respondIsFunction": True}
    push(page, cells=cells)
    page.wait_for_function("window.cellsEvents.length === 1", timeout=TIMEOUT)
    event = page.evaluate("window.cellsEvents[0]")
    assert event == {"revision": 1, "cells": cells["cells"], "removed": cells["removed"], "force": False,
                     "respondIsFunction": True}
    # Nobody called preventDefault: save as notebook and copy cells are offered.
    page.locator('[data-action="save-notebook"]').click()
    name = page.locator("[data-editor-saveas] input")
    expect(name).to_have_value("abalone-edited.ipynb")
    name.press("Enter")
    command = wait_command(page, "save_notebook", path="abalone-edited.ipynb")
    reply(page, command, ok=True, path="/home/me/abalone-edited.ipynb")
    expect(page.locator("[data-editor-message]")).to_contain_text("abalone-edited.ipynb")
    # The clipboard refused: the text shows in a textarea to copy by hand.
    page.evaluate("() => { navigator.clipboard.writeText = () => Promise.reject(new Error('denied')); }")
    page.locator('[data-action="copy-cells"]').click()
    command = wait_command(page, "copy_cells")
    reply(page, command, ok=True, text="%%parameters\nx = 1\n\n%%step A\ny = x\n")
    expect(page.locator("[data-editor-copy-fallback] textarea")).to_have_value(
        "%%parameters\nx = 1\n\n%%step A\ny = x\n")
    # A notebook front end takes the next revision and reports a conflict: Overwrite resends it.
    page.evaluate("""() => { window.extension = (detail) => {
        setTimeout(() => detail.respond({revision: detail.revision, applied: ["parameters"],
                                         conflicts: detail.force ? [] : ["step:A"]}), 0); }; }""")
    push(page, cells=dict(cells, revision=2))
    conflicts = page.locator("[data-editor-conflicts]")
    expect(conflicts).to_contain_text("step:A")
    expect(page.locator('[data-action="save-notebook"]')).to_have_count(0)
    conflicts.locator('[data-action="overwrite"]').click()
    page.wait_for_function("window.cellsEvents.length === 3", timeout=TIMEOUT)
    again = page.evaluate("window.cellsEvents[2]")
    assert again["revision"] == 2 and again["force"] is True
    expect(conflicts).to_have_count(0)


def test_run_parameters_definition_and_cleanup(page):
    from playwright.sync_api import expect

    push(page, header={"status": "Succeeded", "total": 7, "done": 7, "elapsed": 3.2, "parameters": {}})
    page.locator('[data-action="run-options"]').click()
    form = page.locator("[data-editor-run-form]")
    form.locator('[data-run-param="mse_threshold"]').fill("3.0")
    form.locator('[data-action="run-start"]').click()
    wait_command(page, "run", parameters={"mse_threshold": "3.0"})
    count = len(sent(page))
    page.locator('[data-action="run"]').click()
    wait_command(page, "run", after=count, parameters={"mse_threshold": "3.0"})
    # Parameters panel.
    row = page.locator('[data-parameter="input_data"]')
    field = row.locator('[data-param-field="default"]')
    field.fill("other.csv")
    field.press("Enter")
    wait_command(page, "set_parameter", name="input_data", default="other.csv")
    row = page.locator('[data-parameter="mse_threshold"]')
    row.locator('[data-param-field="default"]').fill("4.5")
    row.locator('[data-param-field="default"]').press("Enter")
    wait_command(page, "set_parameter", name="mse_threshold", default="4.5")
    row.locator('[data-param-field="type"]').select_option("Integer")
    wait_command(page, "set_parameter", name="mse_threshold", type="Integer")
    row.locator('[data-param-field="name"]').fill("threshold")
    row.locator('[data-param-field="name"]').press("Enter")
    wait_command(page, "set_parameter", name="mse_threshold", to="threshold")
    page.locator('[data-parameter="input_data"] [data-action="delete-parameter"]').click()
    wait_command(page, "delete_parameter", name="input_data")
    # A pipeline loaded from a definition: Save writes it back.
    expect(page.locator('[data-action="save-definition"]')).to_have_count(0)
    push(page, source="definition:/data/abalone.json")
    page.locator('[data-action="save-definition"]').click()
    wait_command(page, "save_definition")
    # Fit exists; many nodes show a minimap.
    page.locator('[data-action="fit"]').click()
    expect(page.locator(".react-flow__minimap")).to_have_count(0)
    graph = page.evaluate("window.fake.get('graph')")
    extra = [dict(graph["nodes"][0], name=f"Extra{i}", x=40 + 90 * (i % 10), y=640 + 80 * (i // 10),
                  w=80, h=40, outputs=[]) for i in range(30)]
    push(page, graph=dict(graph, nodes=graph["nodes"] + extra, height=900))
    expect(page.locator(".react-flow__minimap")).to_have_count(1)
    # Mode "view": no palette, no handles to drag, nothing to delete.
    push(page, mode="view")
    expect(page.locator("[data-palette-kind]")).to_have_count(0)
    expect(page.locator('[data-handle="out"]').first).to_be_hidden()
    node(page, "AbaloneTrain").click()
    expect(page.locator('[data-action="delete"]')).to_be_disabled()
    expect(page.locator('[data-editor-for="AbaloneTrain"] [data-flag="model"] input')).to_be_disabled()
    # The view's cleanup drops every listener it put on the model.
    page.evaluate("window.cleanup()")
    page.wait_for_function("window.fake.listenerCount() === 0", timeout=TIMEOUT)


# -- the same canvas over the real kernel side -----------------------------------------------------

@pytest.fixture
def kernel_page(browser, tmp_path):
    from jupyter_pipelines.notebook import load_notebook

    pipeline = load_notebook(REPO / "notebooks" / "abalone.ipynb")
    pipeline.home = tmp_path / "state"
    bridge = KernelBridge(pipeline.edit())
    context = browser.new_context(viewport={"width": 1300, "height": 1000}, service_workers="block")
    context.route("**/*", _serve)
    context.add_init_script(f"window.__initialState = {json.dumps(bridge.state())};")
    context.expose_function("__kernel", bridge)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{exc}\n{exc.stack}"))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(BASE + "index.html")
    page.wait_for_function("window.harnessReady === true", timeout=TIMEOUT)
    page.locator('[data-pipeline-editor] [data-step="AbaloneProcess"]').wait_for(timeout=TIMEOUT)
    page.bridge = bridge
    try:
        yield page
    finally:
        page.evaluate("() => clearTimeout(window.fake.timer)")
        context.close()
    assert not errors, f"errors in the page: {errors}"


def test_over_the_real_kernel_side(kernel_page, tmp_path):
    """Palette, connect, a refused connect, code, undo, delete with confirm, cells: each a real
    command applied by `edit.widget.Editor`, the canvas redrawn from its state."""
    from playwright.sync_api import expect

    page = kernel_page
    pipeline = page.bridge.editor.pipeline
    graph = page.bridge.widget.graph
    for n in graph["nodes"]:
        expect(node(page, n["name"])).to_have_attribute("data-kind", n["kind"])
    merged = {(e["source"], e["target"]) for e in graph["edges"]}
    expect(page.locator(".react-flow__edge")).to_have_count(len(merged))
    shot = tmp_path / "editor-abalone.png"
    page.locator(".jp-pipeline-editor").screenshot(path=shot)
    print(f"screenshot: {shot}")

    # Drag "processing" from the palette: a new step, laid out by Graphviz, selected.
    page.locator('[data-palette-kind="processing"]').drag_to(
        page.locator("[data-pipeline-editor] .react-flow__pane"), target_position={"x": 60, "y": 60})
    expect(node(page, "Processing1")).to_have_attribute("data-kind", "processing", timeout=TIMEOUT)
    expect(page.locator('[data-editor-for="Processing1"]')).to_be_visible(timeout=TIMEOUT)
    assert "Processing1" in pipeline.steps

    # Code: typing checks it; the kernel reports a name nothing provides; Ctrl+Enter sets it.
    panel = page.locator('[data-editor-for="Processing1"]')
    panel.locator("[data-editor-code] .cm-content").click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\nrows = 2 * nowhere")
    expect(panel.locator("[data-editor-unknown]")).to_contain_text("nowhere", timeout=TIMEOUT)
    page.keyboard.press("Backspace")
    for _ in range(len(" * nowhere") - 1):
        page.keyboard.press("Backspace")
    page.keyboard.press("Control+Enter")
    page.wait_for_function("() => window.fake.get('graph').nodes.some(n => n.name === 'Processing1'"
                           " && n.outputs.includes('rows'))", timeout=TIMEOUT)
    expect(panel.locator("[data-editor-unknown]")).to_be_hidden(timeout=TIMEOUT)
    assert "rows" in pipeline.steps["Processing1"].outputs
    assert pipeline.steps["Processing1"].code.endswith("rows = 2")

    # Connect AbaloneProcess -> Processing1, reading `train`.
    drag(page, handle(page, "AbaloneProcess", "out"), handle(page, "Processing1", "in"))
    chooser = page.locator("[data-editor-chooser]")
    chooser.locator('input[data-output="train"]').check()
    chooser.locator('[data-action="connect-ok"]').click()
    edge = page.locator('.react-flow__edge[data-id="AbaloneProcess->Processing1"]')
    expect(edge).to_contain_text("train", timeout=TIMEOUT)
    assert "train" in pipeline.steps["Processing1"].reads

    # Processing1 -> AbaloneProcess would make a cycle: refused, said, not drawn.
    drag(page, handle(page, "Processing1", "out"), handle(page, "AbaloneProcess", "in"))
    expect(chooser).to_be_visible(timeout=TIMEOUT)
    chooser.locator("input[data-order-only]").check()
    chooser.locator('[data-action="connect-ok"]').click()
    bar = page.locator('[data-editor-message][data-kind="error"]')
    expect(bar).to_be_visible(timeout=TIMEOUT)
    print(f"refused: {bar.inner_text()}")
    expect(page.locator('.react-flow__edge[data-id="Processing1->AbaloneProcess"]')).to_have_count(0)

    # Undo (Ctrl+Z on the canvas) takes the connect back; redo (Ctrl+Shift+Z) makes it again.
    click_pane(page)
    expect(page.locator('[data-action="undo"]')).to_be_enabled()
    page.keyboard.press("Control+z")
    expect(edge).to_have_count(0, timeout=TIMEOUT)
    assert "train" not in pipeline.steps["Processing1"].reads
    expect(page.locator('[data-action="redo"]')).to_be_enabled()
    page.keyboard.press("Control+Shift+z")
    expect(edge).to_contain_text("train", timeout=TIMEOUT)

    # Delete AbaloneEval: others read its report, so the kernel asks first.
    node(page, "AbaloneEval").click()
    page.keyboard.press("Delete")
    dialog = page.locator("[data-editor-confirm]")
    expect(dialog).to_be_visible(timeout=TIMEOUT)
    print(f"confirm: {dialog.inner_text()}")
    dialog.locator('[data-action="confirm"]').click()
    expect(node(page, "AbaloneEval")).to_have_count(0, timeout=TIMEOUT)
    assert "AbaloneEval" not in pipeline.steps

    # Every edit sent the notebook its cells: the last revision removes AbaloneEval's cell.
    events = page.evaluate("window.cellsEvents")
    assert events and [e["revision"] for e in events] == sorted({e["revision"] for e in events})
    assert "step:AbaloneEval" in [r["key"] for r in events[-1]["removed"]]
    assert any(c["key"] == "step:Processing1" for c in events[-1]["cells"])
    expect(page.locator('[data-action="save-notebook"]')).to_be_visible()
    page.locator(".jp-pipeline-editor").screenshot(path=tmp_path / "editor-abalone-edited.png")


# -- in a real JupyterLab, over a real kernel --------------------------------------------------------

LAB_NOTEBOOK = "editor_frontend.ipynb"
LAB_CELLS = ["%load_ext jupyter_pipelines",
             "%%step Load --kind processing\ndata = [1, 2, 3]",
             "%%step Total --kind processing\ntotal = sum(data)",
             "%pipeline edit"]


def test_in_jupyterlab(chromium, lab_server, tmp_path):
    """The bundle as anywidget loads it in JupyterLab 4 (from a blob: URL, the CSS through
    `_css`), over a real kernel's comm: a palette click adds a step, the Delete key deletes it
    (JupyterLab's own shortcuts leave the canvas's keys alone), Ctrl+Z brings it back, a drag
    connects it."""
    import nbformat
    from playwright.sync_api import expect

    from .conftest import new_lab_page, open_idle, screenshot

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in LAB_CELLS]
    nbformat.write(nb, lab_server.root / LAB_NOTEBOOK)
    context, page = new_lab_page(chromium, lab_server)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        open_idle(page, lab_server, LAB_NOTEBOOK, cells=len(LAB_CELLS))
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
        canvas = page.locator(".jp-OutputArea [data-pipeline-editor]")
        step = lambda name: canvas.locator(f'[data-step="{name}"]')  # noqa: E731
        expect(step("Total")).to_be_visible(timeout=60_000)
        expect(canvas.locator(".react-flow__edge")).not_to_have_count(0)
        cells = page.locator(".jp-Notebook .jp-Cell").count()

        page.locator('.jp-OutputArea [data-palette-kind="processing"]').click()
        expect(step("Processing1")).to_be_visible(timeout=TIMEOUT)
        expect(page.locator('.jp-OutputArea [data-editor-for="Processing1"]')).to_be_visible()
        step("Processing1").click()
        page.keyboard.press("Delete")
        expect(step("Processing1")).to_have_count(0, timeout=TIMEOUT)
        click_pane(page)
        page.keyboard.press("Control+z")
        expect(step("Processing1")).to_be_visible(timeout=TIMEOUT)

        canvas.scroll_into_view_if_needed()
        drag(page, step("Load").locator('[data-handle="out"]'),
             step("Processing1").locator('[data-handle="in"]'))
        chooser = page.locator(".jp-OutputArea [data-editor-chooser]")
        chooser.locator('input[data-output="data"]').check()
        chooser.locator('[data-action="connect-ok"]').click()
        expect(canvas.locator('.react-flow__edge[data-id="Load->Processing1"]')).to_contain_text(
            "data", timeout=TIMEOUT)
        # JupyterLab did not act on those keys itself (Delete / Ctrl+Z in command mode).
        assert page.locator(".jp-Notebook .jp-Cell").count() >= cells
        shot = tmp_path / "editor-jupyterlab.png"
        screenshot(page, page.locator(".jp-OutputArea .jp-pipeline-editor"), shot)
        print(f"screenshot: {shot}")
        assert not errors, errors
    finally:
        context.close()
