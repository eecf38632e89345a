"""The pipeline editor end to end, as a user drives it, in JupyterLab 4 and in Notebook 7.

A notebook (``%load_ext``, imports, ``%%parameters n = 4``, one step ``Make``, ``%pipeline edit``
and a last cell that runs the pipeline and prints a JSON summary of it) is opened and run with
Run All. Then, with the real mouse and keyboard on the editor's canvas (over the real kernel):

1. the editor shows ``Make`` (screenshot ``initial``);
2. a processing step dragged from the palette is renamed ``Total`` in its side panel; its code is
   typed in CodeMirror: a typo first (the panel warns about the unknown name), then the fix,
   committed with Ctrl+Enter;
3. ``Make``'s ``out`` handle is dragged onto ``Total``'s ``in`` handle, output ``xs`` chosen;
4. a condition step (connected from ``Total``, output ``total``; code ``total > 3``), a step
   ``Report`` and a fail step are added, the condition's True handle connected to ``Report``, its
   False handle to the fail step (screenshot ``mid-edit``);
5. ``Report`` → ``Make`` would close a cycle: refused, the message bar says so, no edge;
6. the False edge is deleted (click, Delete) and brought back with Ctrl+Z on the canvas;
7. Run (with ``n = 5`` in the run form): every step Succeeded, the fail step Skipped, the
   condition's outcome True (screenshot ``after-run``);
8. the notebook's cells hold the pipeline (the saved file, read through the contents API), and no
   conflict bar appeared;
9. the summary cell, run before and after Kernel > Restart Kernel and Run All Cells, prints the
   same steps, flags, edges and results; ``jupyter-pipelines definition`` of the saved notebook
   passes ``jupyter-pipelines validate``.

Waits are on conditions only. Screenshots go to the test's ``tmp_path`` (printed). The canvas
fits itself to the graph only when the set of steps changes, so a connect that makes Graphviz lay
the graph out taller can leave a step cut off: the test then clicks Fit, as a user would, and
prints which steps were cut off when.

`test_no_fallback_buttons_in_a_notebook_front_end`: inside a notebook front end with the
extension, the editor never offers the no-extension fallback buttons ("Save as notebook…",
"Copy cells"), not even before the first edit (its probe, revision 0, is answered).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from .conftest import new_lab_page, open_idle, screenshot, wait_still
from .editor_page import click_pane, drag
from .test_cells_sync_browser import extension_installed, save_and_wait
from .test_notebook7_browser import KERNEL_READY, code_cell, page_error

pytestmark = pytest.mark.browser

KERNEL_TIMEOUT = 60_000  # ms: the page loaded, its kernel idle
RUN_TIMEOUT = 120_000    # ms: Run All / Restart and Run All of the notebook
UI_TIMEOUT = 20_000      # ms: a command answered by the kernel, a repaint, a cell rewritten

SUMMARY_CODE = """\
ex = %pipeline run
_p = current()
print("SUMMARY " + json.dumps({
    "steps": {name: [s.kind, sorted(s.reads), sorted(s.outputs), list(s.depends_on), dict(s.options)]
              for name, s in _p.steps.items()},
    "parameters": {name: repr(p.default) for name, p in _p.parameters.items()},
    "total": ex.result("Total", "total") if "Total" in _p.steps else None,
    "message": ex.result("Report", "message") if "Report" in _p.steps else None,
}, sort_keys=True, default=list))"""

CELLS = [
    "%load_ext jupyter_pipelines",
    "import json\nfrom jupyter_pipelines import current",
    "%%parameters\nn = 4",
    "%%step Make\nxs = list(range(n))",
    "%pipeline edit",
    SUMMARY_CODE,
]

# The cells the pipeline's edits must leave in the notebook (the kernel writes them, the
# jupyter-pipelines-sync extension applies them).
STEP_CELLS = {
    "parameters": "%%parameters\nn = 4",
    "Make": "%%step Make\nxs = list(range(n))",
    "Total": "%%step Total\ntotal = sum(xs)",
    "Condition1": "%%step Condition1 --kind condition --if Report --else Fail1\ntotal > 3",
    "Report": '%%step Report\nmessage = f"total is {total}"',
    "Fail1": '%%step Fail1 --kind fail\nf"The pipeline stopped: explain why here."',
}

# What the summary cell must print after the edits (n = 4: total 0+1+2+3).
EXPECTED_SUMMARY = {
    "steps": {
        "Make": ["processing", ["n"], ["xs"], [], {}],
        "Total": ["processing", ["xs"], ["total"], [], {}],
        "Condition1": ["condition", ["total"], [], [], {"if_steps": ["Report"], "else_steps": ["Fail1"]}],
        "Report": ["processing", ["total"], ["message"], [], {}],
        "Fail1": ["fail", [], [], [], {}],
    },
    "parameters": {"n": "4"},
    "total": 6,
    "message": "total is 6",
}

# Records every conflict bar the editor ever shows (a check now and then could miss one).
WATCH_CONFLICTS = """
window.__conflicts = [];
new MutationObserver(records => {
  for (const r of records) for (const n of r.addedNodes) {
    if (n.nodeType !== 1) continue;
    const bars = n.matches('[data-editor-conflicts]') ? [n]
      : [...n.querySelectorAll('[data-editor-conflicts]')];
    for (const bar of bars) window.__conflicts.push(bar.textContent);
  }
}).observe(document, {childList: true, subtree: true});
"""


def stable(page, *locators, timeout: int = UI_TIMEOUT) -> None:
    """Wait until the elements have kept their place for 3 animation frames (Graphviz re-lays
    the graph out and the canvas fits it after each structure change: a drag started before
    that would miss its handle)."""
    for locator in locators:
        locator.wait_for(timeout=timeout)
        wait_still(page, locator, timeout)


class EditorPage:
    """The editor's output in the notebook page, and the user's gestures on it."""

    def __init__(self, page):
        self.page = page
        self.root = page.locator(".jp-OutputArea .jp-pipeline-editor")
        self.canvas = self.root.locator("[data-pipeline-editor]")
        self.cut_off: list = []  # (after what, the steps cut off)

    def node(self, name: str):
        return self.canvas.locator(f'[data-step="{name}"]')

    def handle(self, name: str, which: str):
        return self.node(name).locator(f'[data-handle="{which}"]')

    def edge(self, source: str, target: str):
        return self.canvas.locator(f'.react-flow__edge[data-id="{source}->{target}"]')

    def panel(self, name: str):
        return self.root.locator(f'[data-editor-for="{name}"]')

    OUTSIDE = """canvas => {
      const c = canvas.getBoundingClientRect();
      return [...canvas.querySelectorAll('[data-step]')].filter(n => {
        const r = n.getBoundingClientRect();
        return r.top < c.top - 0.5 || r.bottom > c.bottom + 0.5
            || r.left < c.left - 0.5 || r.right > c.right + 0.5;
      }).map(n => n.dataset.step);
    }"""

    def outside(self) -> list[str]:
        """The steps the canvas does not show whole (after its own fit)."""
        stable(self.page, self.canvas.locator(".react-flow__viewport"))
        return self.canvas.evaluate(self.OUTSIDE)

    def in_view(self, when: str) -> None:
        """If the canvas cuts a step off (it fits itself only when the set of steps changes,
        not when Graphviz lays the graph out taller), note it and click Fit, as a user would."""
        outside = self.outside()
        if outside:
            self.cut_off.append((when, outside))
            self.fit()

    def fit(self) -> None:
        """Click Fit, as a user does when a step is cut off; every step is then in view."""
        self.root.locator('[data-action="fit"]').click()
        self.page.wait_for_function(f"canvas => ({self.OUTSIDE})(canvas).length === 0",
                                    arg=self.canvas.element_handle(), timeout=UI_TIMEOUT)
        stable(self.page, self.canvas.locator(".react-flow__viewport"))

    def drawn(self) -> dict:
        """What the canvas draws: each step's kind, each edge's label."""
        return self.canvas.evaluate("""canvas => ({
          steps: Object.fromEntries([...canvas.querySelectorAll('[data-step]')].map(
            n => [n.dataset.step, n.dataset.kind])),
          edges: Object.fromEntries([...canvas.querySelectorAll('.react-flow__edge')].map(
            e => [e.dataset.id, e.querySelector('.react-flow__edge-text')?.textContent || ''])),
        })""")

    def no_conflicts(self) -> None:
        from playwright.sync_api import expect

        expect(self.root.locator("[data-editor-conflicts]")).to_have_count(0)

    def add_from_palette(self, kind: str, name: str):
        """Drag ``kind`` from the palette onto the canvas (HTML5 drag and drop): the kernel adds
        step ``name``, the canvas selects it and opens its side panel."""
        from playwright.sync_api import expect

        self.canvas.scroll_into_view_if_needed()
        pane = self.canvas.locator(".react-flow__pane")
        box = pane.bounding_box()
        self.root.locator(f'[data-palette-kind="{kind}"]').drag_to(
            pane, target_position={"x": box["width"] * 0.15, "y": box["height"] * 0.85})
        expect(self.node(name)).to_have_attribute("data-kind", kind, timeout=UI_TIMEOUT)
        expect(self.panel(name)).to_be_visible(timeout=UI_TIMEOUT)

    def select(self, name: str):
        from playwright.sync_api import expect

        stable(self.page, self.node(name))
        self.node(name).click()
        expect(self.panel(name)).to_be_visible(timeout=UI_TIMEOUT)
        expect(self.node(name)).to_have_class(re.compile(r"\bjp-selected\b"), timeout=UI_TIMEOUT)
        return self.panel(name)

    def rename(self, old: str, new: str):
        from playwright.sync_api import expect

        field = self.select(old).locator("[data-editor-name]")
        field.fill(new)
        field.press("Enter")
        expect(self.node(new)).to_be_visible(timeout=UI_TIMEOUT)
        expect(self.node(old)).to_have_count(0)
        expect(self.panel(new)).to_be_visible(timeout=UI_TIMEOUT)
        return self.panel(new)

    def type_code(self, name: str, code: str) -> None:
        """Replace the step's code in its CodeMirror editor, typed key by key."""
        from playwright.sync_api import expect

        content = self.panel(name).locator("[data-editor-code] .cm-content")
        content.click()
        self.page.keyboard.press("Control+a")
        self.page.keyboard.press("Delete")
        self.page.keyboard.type(code)
        # closeBrackets and autocompletion must not have changed what the user typed
        expect(content).to_have_text(code)

    def commit_code(self) -> None:
        self.page.keyboard.press("Control+Enter")

    def connect(self, source: str, handle: str, target: str, output: str | None = None,
                offered: list[str] | None = None) -> None:
        """Drag from ``source``'s ``handle`` to ``target``'s ``in`` handle; with ``output``, the
        chooser opens (offering ``offered``): tick it (``""``: order only) and Connect."""
        from playwright.sync_api import expect

        self.canvas.scroll_into_view_if_needed()
        self.in_view(f"before connecting {source}.{handle} -> {target}")
        start, end = self.handle(source, handle), self.handle(target, "in")
        stable(self.page, start, end)
        drag(self.page, start, end)
        chooser = self.root.locator("[data-editor-chooser]")
        if output is None:
            expect(chooser).to_have_count(0)
            return
        try:
            expect(chooser).to_be_visible(timeout=UI_TIMEOUT)
        except AssertionError as exc:
            raise AssertionError(
                f"no output chooser after dragging {source}.{handle} ({start.bounding_box()}) to "
                f"{target}.in ({end.bounding_box()}); canvas at {self.canvas.bounding_box()}") from exc
        if offered is not None:
            names = chooser.locator("input[data-output]").evaluate_all(
                "els => els.map(e => e.dataset.output)")
            assert names == offered, names
        tick = "input[data-order-only]" if output == "" else f'input[data-output="{output}"]'
        chooser.locator(tick).check()
        chooser.locator('[data-action="connect-ok"]').click()
        expect(chooser).to_have_count(0)


def saved_cells(page, server, name: str, expected_steps: dict, timeout: int = UI_TIMEOUT) -> list:
    """Save and wait until the file holds every cell of ``expected_steps`` once; the file's
    cells as [type, source]."""
    return save_and_wait(page, server, name, "(cells, wanted) => wanted.every(w => "
                         "cells.filter(c => c[1] === w).length === 1)",
                         list(expected_steps.values()), timeout)


def summary_of(cell, prompt: re.Pattern, timeout: int = RUN_TIMEOUT) -> dict:
    """The JSON the summary cell printed, once its prompt matches ``prompt``."""
    from playwright.sync_api import expect

    expect(cell.locator(".jp-InputPrompt")).to_have_text(prompt, timeout=timeout)
    output = cell.locator(".jp-OutputArea-output", has_text="SUMMARY ")
    expect(output).to_have_count(1, timeout=UI_TIMEOUT)
    line = next(text for text in output.inner_text().splitlines() if text.startswith("SUMMARY "))
    return json.loads(line[len("SUMMARY "):])


@pytest.fixture(params=["jupyterlab", "notebook7"])
def front_end(request, chromium):
    """The test notebook written into the server's root and opened in a page of JupyterLab 4 or
    Notebook 7, its kernel idle."""
    import nbformat

    if not extension_installed():
        pytest.skip("the jupyter-pipelines-sync extension is not installed (pip install -e .)")
    server = request.getfixturevalue("lab_server" if request.param == "jupyterlab" else "notebook_server")
    # one notebook (so one kernel session) per test and front end
    name = f"{request.node.originalname}_{request.param}.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nbformat.write(nb, server.root / name)
    context, page = new_lab_page(chromium, server, init_scripts=[WATCH_CONFLICTS])
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(page_error(exc)))
    try:
        if request.param == "jupyterlab":
            open_idle(page, server, name, cells=len(CELLS), timeout=KERNEL_TIMEOUT)
        else:
            page.goto(server.url(f"notebooks/{name}"), timeout=KERNEL_TIMEOUT)
            page.wait_for_function(KERNEL_READY, timeout=KERNEL_TIMEOUT)
        yield request.param, server, name, page, errors
    finally:
        context.close()
        (server.root / name).unlink(missing_ok=True)


def test_edit_run_and_restart(front_end, tmp_path):
    from playwright.sync_api import expect

    which, server, name, page, errors = front_end
    shots = {}
    ed = EditorPage(page)
    summary_cell = code_cell(page, "ex = %pipeline run")

    # 1. Run All: the editor shows Make; the summary cell printed the one-step pipeline.
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
    expect(ed.node("Make")).to_be_visible(timeout=RUN_TIMEOUT)
    expect(ed.canvas.locator("[data-step]")).to_have_count(1)
    first = summary_of(summary_cell, re.compile(r"^\s*\[\d+\]:\s*$"))
    assert sorted(first["steps"]) == ["Make"] and first["total"] is None, first
    ed.no_conflicts()
    shots["initial"] = tmp_path / f"editor-{which}-1-initial.png"
    screenshot(page, ed.root, shots["initial"])

    # 2. A processing step from the palette, renamed Total; its code typed with a typo first.
    ed.add_from_palette("processing", "Processing1")
    # The notebook front end took the edit's cells: no "Save as notebook" / "Copy cells" fallback.
    expect(ed.root.locator("[data-editor-cells]")).to_have_count(0, timeout=UI_TIMEOUT)
    panel = ed.rename("Processing1", "Total")
    unknown = panel.locator("[data-editor-unknown]")
    ed.type_code("Total", "total = sum(xz)")
    expect(unknown).to_be_visible(timeout=UI_TIMEOUT)
    expect(unknown).to_contain_text("`xz`")
    ed.type_code("Total", "total = sum(xs)")
    ed.commit_code()
    expect(unknown).to_be_hidden(timeout=UI_TIMEOUT)
    io = panel.locator(".jp-editor-io")
    expect(io).to_contain_text("reads xs", timeout=UI_TIMEOUT)
    expect(io).to_contain_text("outputs total")

    # 3. Make's out -> Total's in, output xs.
    ed.connect("Make", "out", "Total", output="xs", offered=["xs", ""])
    expect(ed.edge("Make", "Total")).to_contain_text("xs", timeout=UI_TIMEOUT)

    # 4. A condition fed by Total, then Report (True) and a fail step (False).
    ed.add_from_palette("condition", "Condition1")
    ed.connect("Total", "out", "Condition1", output="total", offered=["total", ""])
    expect(ed.edge("Total", "Condition1")).to_contain_text("total", timeout=UI_TIMEOUT)
    ed.select("Condition1")
    ed.type_code("Condition1", "total > 3")
    ed.commit_code()
    # The notebook follows: the condition's cell now holds the new code.
    expect(code_cell(page, "%%step Condition1").locator(".jp-InputArea-editor")).to_contain_text(
        "total > 3", timeout=UI_TIMEOUT)
    ed.add_from_palette("processing", "Processing1")
    ed.rename("Processing1", "Report")
    ed.type_code("Report", 'message = f"total is {total}"')
    ed.commit_code()
    expect(ed.panel("Report").locator(".jp-editor-io")).to_contain_text("reads total", timeout=UI_TIMEOUT)
    expect(ed.edge("Total", "Report")).to_contain_text("total", timeout=UI_TIMEOUT)
    ed.add_from_palette("fail", "Fail1")
    ed.connect("Condition1", "True", "Report")
    expect(ed.edge("Condition1", "Report")).to_contain_text("True", timeout=UI_TIMEOUT)
    ed.connect("Condition1", "False", "Fail1")
    expect(ed.edge("Condition1", "Fail1")).to_contain_text("False", timeout=UI_TIMEOUT)
    edges = ed.canvas.locator(".react-flow__edge")
    expect(edges).to_have_count(5)
    expect(ed.canvas.locator("[data-step]")).to_have_count(5)
    ed.no_conflicts()
    click_pane(page)
    ed.in_view("before the mid-edit screenshot")
    shots["mid-edit"] = tmp_path / f"editor-{which}-2-mid-edit.png"
    screenshot(page, ed.root, shots["mid-edit"])

    # 5. Report -> Make closes a cycle: refused, said, not drawn.
    ed.connect("Report", "out", "Make", output="", offered=["message", ""])
    bar = ed.root.locator('[data-editor-message][data-kind="error"]')
    expect(bar).to_be_visible(timeout=UI_TIMEOUT)
    expect(bar).to_contain_text("cycle")
    expect(bar).to_contain_text("Report -> Make")
    expect(ed.edge("Report", "Make")).to_have_count(0)
    expect(edges).to_have_count(5)
    bar.locator(".jp-pipeline-close").click()
    expect(bar).to_have_count(0)

    # 6. Delete the False edge (click it, Delete), then Ctrl+Z on the canvas brings it back.
    false_edge = ed.edge("Condition1", "Fail1")
    stable(page, false_edge.locator(".react-flow__edge-textwrapper"))
    false_edge.locator(".react-flow__edge-textwrapper").click()
    expect(ed.root.locator('[data-editor-edge="Condition1->Fail1"]')).to_be_visible(timeout=UI_TIMEOUT)
    page.keyboard.press("Delete")
    expect(false_edge).to_have_count(0, timeout=UI_TIMEOUT)
    expect(edges).to_have_count(4)
    expect(code_cell(page, "%%step Condition1").locator(".jp-InputArea-editor")).not_to_contain_text(
        "--else", timeout=UI_TIMEOUT)
    click_pane(page)
    page.keyboard.press("Control+z")
    expect(false_edge).to_contain_text("False", timeout=UI_TIMEOUT)
    expect(edges).to_have_count(5)
    expect(code_cell(page, "%%step Condition1").locator(".jp-InputArea-editor")).to_contain_text(
        "--else Fail1", timeout=UI_TIMEOUT)

    # 7. Run with n = 5 from the run form: all Succeeded but the fail step, Skipped.
    ed.root.locator('[data-action="run-options"]').click()
    form = ed.root.locator("[data-editor-run-form]")
    form.locator('[data-run-param="n"]').fill("5")
    form.locator('[data-action="run-start"]').click()
    for step in ("Make", "Total", "Condition1", "Report"):
        expect(ed.node(step)).to_have_attribute("data-status", "Succeeded", timeout=RUN_TIMEOUT)
    expect(ed.node("Fail1")).to_have_attribute("data-status", "Skipped")
    expect(ed.root.locator(".jp-pipeline-header .jp-pipeline-badge")).to_have_attribute(
        "data-status", "Succeeded", timeout=UI_TIMEOUT)
    condition = ed.node("Condition1")
    expect(condition).to_have_attribute("data-outcome", "True")
    expect(condition.locator('[data-role="outcome"]')).to_have_text("total 10 > 3 → True")
    expect(condition).to_have_attribute("title", re.compile(r"Condition1 .*Succeeded"))
    # The outcome's text (total 10 > 3 → True) in the condition's side panel / node.
    ed.select("Condition1")
    expect(ed.root.locator('[data-details-for="Condition1"]')).to_contain_text("10 > 3", timeout=UI_TIMEOUT)
    click_pane(page)
    ed.no_conflicts()
    ed.in_view("before the after-run screenshot")
    shots["after-run"] = tmp_path / f"editor-{which}-3-after-run.png"
    screenshot(page, ed.root, shots["after-run"])

    # 8. The notebook's cells hold the pipeline (the saved file), other cells untouched.
    cells = saved_cells(page, server, name, STEP_CELLS)
    sources = [source for _, source in cells]
    print(f"{which}: the notebook's cells: {json.dumps(sources, indent=1)}")
    assert all(kind == "code" for kind, _ in cells), cells
    others = [c for c in CELLS if not c.startswith("%%")]  # left alone by the extension
    assert sorted(sources) == sorted([*STEP_CELLS.values(), *others]), sources
    assert sources[:2] == CELLS[:2] and sources[-1] == SUMMARY_CODE, sources
    for step in ("Total", "Condition1", "Report", "Fail1"):  # each new cell after the one it reads from
        assert sources.index(STEP_CELLS["Make"]) < sources.index(STEP_CELLS[step]), sources
    ed.no_conflicts()

    # 9. The summary before and after Kernel > Restart Kernel and Run All Cells.
    summary_cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+Enter")
    # (the prompt may not have changed yet: wait for this run's own output)
    expect(summary_cell.locator(".jp-OutputArea-output", has_text='"total": 6')).to_have_count(
        1, timeout=RUN_TIMEOUT)
    before = summary_of(summary_cell, re.compile(r"^\s*\[\d+\]:\s*$"))
    assert before == EXPECTED_SUMMARY, before
    saved_cells(page, server, name, STEP_CELLS)
    drawn = ed.drawn()
    page.get_by_role("menuitem", name="Kernel", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Restart Kernel and Run All Cells")).click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_be_visible(timeout=UI_TIMEOUT)
    dialog.locator(".jp-mod-accept").click()
    code_cells = len(cells)
    after = summary_of(summary_cell, re.compile(rf"^\s*\[{code_cells}\]:\s*$"))
    assert after == before, (before, after)
    # The new editor (a new kernel's) draws the same graph, and asks the notebook for nothing.
    expect(ed.canvas.locator("[data-step]")).to_have_count(5, timeout=UI_TIMEOUT)
    expect(ed.canvas.locator(".react-flow__edge")).to_have_count(5)
    expect(ed.edge("Condition1", "Fail1")).to_contain_text("False")
    assert ed.drawn() == drawn, (drawn, ed.drawn())
    ed.no_conflicts()
    after_cells = saved_cells(page, server, name, STEP_CELLS)
    assert [s for _, s in after_cells] == sources

    # The saved notebook's definition JSON passes `jupyter-pipelines validate`.
    env = {**os.environ, "JUPYTER_PIPELINES_HOME": str(tmp_path / "state"), "PYTHONDONTWRITEBYTECODE": "1"}
    definition = tmp_path / "edited.json"
    for argv in (["definition", str(server.root / name), "--out", str(definition)],
                 ["validate", str(definition)]):
        done = subprocess.run([sys.executable, "-m", "jupyter_pipelines", *argv], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
        print(f"jupyter-pipelines {argv[0]}: {done.stdout.strip()} {done.stderr.strip()}")
    names: set = set()

    def walk(value):  # steps in a condition's branches sit inside its arguments
        if isinstance(value, dict):
            names.add(value.get("Name"))
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(json.loads(definition.read_text())["Steps"])
    assert set(EXPECTED_SUMMARY["steps"]) <= names, names

    assert page.evaluate("window.__conflicts") == [], "the editor showed a conflict bar"
    print(f"{which}: steps the canvas cut off (Fit clicked): {ed.cut_off}")
    for label, path in shots.items():
        print(f"screenshot {label}: {path}")
        assert path.stat().st_size > 10_000, path
    assert not list(filter(None, errors)), f"JavaScript errors on the page: {errors}"


def test_no_fallback_buttons_in_a_notebook_front_end(front_end):
    """With the extension there, the canvas never offers the no-extension fallback buttons, not
    even before the first edit (docs/editor-protocol.md: only "with no extension")."""
    from playwright.sync_api import expect

    which, server, name, page, errors = front_end
    ed = EditorPage(page)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
    expect(ed.node("Make")).to_be_visible(timeout=RUN_TIMEOUT)
    summary_of(code_cell(page, "ex = %pipeline run"), re.compile(r"^\s*\[\d+\]:\s*$"))
    expect(ed.root.locator("[data-editor-cells]")).to_have_count(0, timeout=5_000)
