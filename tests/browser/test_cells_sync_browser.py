"""The notebook side of the pipeline editor: the ``jupyter-pipelines-sync`` extension applies the
editor's ``jupyter-pipelines:cells`` events to the notebook's cells, in JupyterLab 4 and Notebook 7.

The extension is the prebuilt one ``pip install`` (``-e`` too) puts in
``<prefix>/share/jupyter/labextensions/jupyter-pipelines-sync/`` (built from ``js/labextension/``);
the tests are skipped, saying so, where it is not installed.

A notebook with a ``%%parameters`` cell, two ``%%step`` cells, a markdown cell between them and a
code cell with an output (where the editor would be) is opened; the tests dispatch the event the
editor dispatches from an element inside that output (see docs/editor-protocol.md, "Cells (kernel →
notebook)"), then check the notebook's cells, both in the page and in the file the notebook saves:

1. one revision rewrites a step cell, inserts a new step cell after it and removes the other step
   cell; the markdown cell and the editor's cell are untouched; ``respond`` gets the applied keys;
2. a revision whose ``previous`` is not the cell's text: a conflict, the cell untouched;
3. the same revision with ``force``: the cell rewritten;

and that each revision is one undo step (Z in the notebook's command mode undoes it whole).

The event's ``defaultPrevented`` is true each time (that is how the editor knows a notebook front end
is there), and false for an event from outside any notebook, which nothing answers.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from .conftest import new_lab_page, open_idle, screenshot
from .test_notebook7_browser import KERNEL_READY, page_error

pytestmark = pytest.mark.browser

EXTENSION = "jupyter-pipelines-sync"
KERNEL_TIMEOUT = 60_000  # ms: the page has loaded and its kernel is idle
UI_TIMEOUT = 15_000      # ms: an event answered, a cell re-rendered, a save written

PARAMETERS = "%%parameters\nlearning_rate = 0.1"
LOAD = "%%step Load --kind processing\ndata = [1, 2, 3]"
NOTES = "## Notes\n\n%%step Load is where the data comes from."  # markdown: never a step cell
TRAIN = "%%step Train --kind training\nmodel = sum(data) * learning_rate"
EDITOR = "editor  # the pipeline editor's cell"
TRAIN_2 = "%%step Train --kind training --inputs data\nmodel = max(data) * learning_rate"
EVALUATE = "%%step Evaluate --kind processing --inputs model\nscore = model / 2"
TRAIN_3 = "%%step Train --kind training --inputs data\nmodel = min(data) * learning_rate"


def notebook_json() -> dict:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    editor = nbformat.v4.new_code_cell(EDITOR, execution_count=1)
    editor.outputs = [nbformat.v4.new_output("stream", name="stdout", text="(the editor's canvas)\n")]
    nb.cells = [nbformat.v4.new_code_cell(PARAMETERS), nbformat.v4.new_code_cell(LOAD),
                nbformat.v4.new_markdown_cell(NOTES), nbformat.v4.new_code_cell(TRAIN), editor]
    nbformat.validate(nb)
    return nb


# The page's cells: [type, source]. A code cell's source is its editor's lines; a markdown cell
# (rendered) gives its rendered text, which the tests compare with what it rendered at first.
PAGE_CELLS = """() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')].map(cell => {
  if (cell.classList.contains('jp-MarkdownCell')) {
    return ['markdown', cell.querySelector('.jp-RenderedMarkdown').innerText.trim()];
  }
  const lines = [...cell.querySelectorAll('.jp-InputArea-editor .cm-line')].map(l => l.textContent);
  return ['code', lines.join('\\n')];
})"""

# Dispatch the editor's event from an element inside `host_cell`'s output (or, with -1, from an
# element outside any notebook); `respond` records its answers in window.__jpCellsAnswers. Returns
# [event.defaultPrevented, how many answers there are once the tasks queued meanwhile have run].
DISPATCH = """async ([hostCell, detail]) => {
  let parent = document.body;
  if (hostCell >= 0) {
    const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[hostCell];
    parent = cell.querySelector('.jp-OutputArea-output');
  }
  let host = parent.querySelector(':scope > .test-editor-host');
  if (!host) {
    host = document.createElement('div');
    host.className = 'test-editor-host';
    parent.appendChild(host);
  }
  window.__jpCellsAnswers = window.__jpCellsAnswers || [];
  let returned = false;
  const event = new CustomEvent('jupyter-pipelines:cells', {
    bubbles: true, cancelable: true,
    detail: {...detail, respond: answer => window.__jpCellsAnswers.push(
      {answer: JSON.parse(JSON.stringify(answer)), afterDispatch: returned})}});
  host.dispatchEvent(event);
  returned = true;
  // A task later, every microtask queued meanwhile (an answer's too) has run.
  await new Promise(resolve => setTimeout(resolve, 0));
  return [event.defaultPrevented, window.__jpCellsAnswers.length];
}"""


def extension_installed() -> bool:
    from jupyter_core.paths import jupyter_path

    return any((Path(p) / EXTENSION / "package.json").is_file() for p in jupyter_path("labextensions"))


@pytest.fixture(params=["jupyterlab", "notebook7"])
def notebook(request, chromium):
    """The test notebook, open in a page of JupyterLab 4 or of Notebook 7."""
    if not extension_installed():
        pytest.skip(f"the {EXTENSION} extension is not installed (pip install -e .; it is built from "
                    "js/labextension/)")
    server = request.getfixturevalue("lab_server" if request.param == "jupyterlab" else "notebook_server")
    name = f"cells_sync_{request.node.name.replace('[', '_').rstrip(']')}.ipynb"
    (server.root / name).write_text(json.dumps(notebook_json()))
    context, page = new_lab_page(chromium, server)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(page_error(exc)))
    try:
        if request.param == "jupyterlab":
            open_idle(page, server, name, cells=4, timeout=KERNEL_TIMEOUT)
        else:
            page.goto(server.url(f"notebooks/{name}"), timeout=KERNEL_TIMEOUT)
            page.wait_for_function(KERNEL_READY, timeout=KERNEL_TIMEOUT)
        yield page, server, name, errors, request.param
    finally:
        context.close()


def dispatch(page, host_cell: int, detail: dict) -> bool:
    """Dispatch the event; whether the extension called preventDefault()."""
    prevented, _ = page.evaluate(DISPATCH, [host_cell, detail])
    return prevented


def answer(page, count: int) -> dict:
    """The `count`-th answer `respond` got (waiting for it), after checking it came after
    dispatchEvent returned (the editor is answered "later", never during its dispatch)."""
    page.wait_for_function(f"() => (window.__jpCellsAnswers || []).length >= {count}", timeout=UI_TIMEOUT)
    answers = page.evaluate("() => window.__jpCellsAnswers")
    assert len(answers) == count, answers
    assert answers[-1]["afterDispatch"] is True
    return answers[-1]["answer"]


def page_cells(page, expected, timeout: int = UI_TIMEOUT):
    """The page's cells once they are `expected` (a list of [type, source]); fails with what they are."""
    try:
        page.wait_for_function(f"expected => JSON.stringify(({PAGE_CELLS})()) === JSON.stringify(expected)",
                               arg=expected, timeout=timeout)
    except Exception as exc:
        raise AssertionError(f"the notebook's cells are {page.evaluate(PAGE_CELLS)!r}, "
                             f"not {expected!r}") from exc


# Save the notebook open in the page through its document context, and say how that ended: a
# key press (Ctrl+S) depends on where the focus is, and one was lost once in CI with both cores
# busy (the file never changed); a save that fails or waits on a dialog says so here instead.
SAVE = """async (timeout) => {
  const widget = window.jupyterapp.shell.currentWidget;
  if (!widget || !widget.context) return "no document is open in the page";
  const late = new Promise(done => setTimeout(() => done("late"), timeout));
  try {
    return await Promise.race([widget.context.save().then(() => "saved"), late]);
  } catch (error) {
    return "failed: " + error;
  }
}"""


def save_and_wait(page, server, name: str, predicate: str, arg, timeout: int = UI_TIMEOUT) -> list:
    """Save the notebook (`SAVE`) and wait until its file's cells ([type, source]) satisfy
    ``predicate``, a JavaScript function of (cells, arg); the file's cells.

    The file is read from the disk, not through the server: a read of the contents API that
    meets a save mid-write makes jupyter_server "repair" the notebook (it moves the file aside
    as ``.invalid`` and puts its atomic-writing copy back), which can leave no file at all. A
    read from the disk that meets a save mid-write is simply not JSON yet: it is read again."""
    saved = page.evaluate(SAVE, timeout)
    if saved != "saved":
        dialog = page.locator(".jp-Dialog")
        shown = dialog.first.inner_text() if dialog.count() else "no dialog is shown"
        raise AssertionError(f"saving {name} in the page: {saved} ({shown})")
    path = Path(server.root) / name
    deadline = time.monotonic() + timeout / 1000
    cells = None
    while True:
        try:
            cells = [[c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list)
                      else c["source"]] for c in json.loads(path.read_text(encoding="utf-8"))["cells"]]
        except (OSError, ValueError, KeyError):  # being written
            cells = None
        if cells is not None and page.evaluate(f"([cells, arg]) => Boolean(({predicate})(cells, arg))",
                                               [cells, arg]):
            return cells
        if time.monotonic() > deadline:
            raise AssertionError(f"the saved notebook's cells did not come to satisfy {predicate}: "
                                 f"{cells!r}")
        page.wait_for_timeout(200)  # the next look at the file (the condition is the file's cells)


def assert_saved(page, server, name: str, expected: list, timeout: int = UI_TIMEOUT) -> None:
    """Save the notebook and wait until the file's cells are ``expected`` (markdown included)."""
    cells = save_and_wait(page, server, name, "(cells, expected) => JSON.stringify(cells) === "
                          "JSON.stringify(expected)", expected, timeout)
    assert cells == expected, f"the saved notebook's cells are {cells!r}, not {expected!r}"


def test_the_editor_revisions_edit_the_notebook_cells(notebook, tmp_path):
    page, server, name, errors, front_end = notebook
    start = [["code", PARAMETERS], ["code", LOAD], ["markdown", None], ["code", TRAIN], ["code", EDITOR]]
    cells = page.evaluate(PAGE_CELLS)
    notes_rendered = cells[2][1]
    assert notes_rendered.startswith("Notes") and "%%step Load" in notes_rendered, cells
    start[2][1] = notes_rendered
    page_cells(page, start)
    host = 4  # the editor's cell: the event comes from inside its output

    # 1. Rewrite Train, add Evaluate after it, remove Load; the parameters are as they were.
    assert dispatch(page, host, {
        "revision": 1,
        "cells": [{"key": "parameters", "text": PARAMETERS, "previous": PARAMETERS},
                  {"key": "step:Train", "text": TRAIN_2, "previous": TRAIN},
                  {"key": "step:Evaluate", "text": EVALUATE, "previous": None}],
        "removed": [{"key": "step:Load", "previous": LOAD}],
    }) is True, "the extension did not call preventDefault()"
    assert answer(page, 1) == {"revision": 1, "applied": ["parameters", "step:Train", "step:Evaluate",
                                                          "step:Load"], "conflicts": []}
    after_1 = [["code", PARAMETERS], ["markdown", notes_rendered], ["code", TRAIN_2], ["code", EVALUATE],
               ["code", EDITOR]]
    page_cells(page, after_1)
    # The model, as the notebook saves it: the markdown source and the editor's cell as they were.
    assert_saved(page, server, name, [["code", PARAMETERS], ["markdown", NOTES], ["code", TRAIN_2],
                                      ["code", EVALUATE], ["code", EDITOR]])
    editor_cell = page.locator(".jp-Notebook .jp-Cell").nth(4)
    assert "(the editor's canvas)" in editor_cell.locator(".jp-OutputArea").inner_text()

    # 2. A revision made from a Train the notebook no longer has: a conflict, Train untouched.
    stale = {
        "revision": 2,
        "cells": [{"key": "parameters", "text": PARAMETERS, "previous": PARAMETERS},
                  {"key": "step:Train", "text": TRAIN_3, "previous": TRAIN},
                  {"key": "step:Evaluate", "text": EVALUATE, "previous": EVALUATE}],
        "removed": [],
    }
    assert dispatch(page, host, stale) is True
    assert answer(page, 2) == {"revision": 2, "applied": ["parameters", "step:Evaluate"],
                               "conflicts": ["step:Train"]}
    page_cells(page, after_1)

    # 3. The same, forced (the user said to overwrite): Train rewritten.
    assert dispatch(page, host, {**stale, "force": True}) is True
    assert answer(page, 3) == {"revision": 2, "applied": ["parameters", "step:Train", "step:Evaluate"],
                               "conflicts": []}
    after_3 = [["code", PARAMETERS], ["markdown", notes_rendered], ["code", TRAIN_3], ["code", EVALUATE],
               ["code", EDITOR]]
    page_cells(page, after_3)
    assert_saved(page, server, name, [["code", PARAMETERS], ["markdown", NOTES], ["code", TRAIN_3],
                                      ["code", EVALUATE], ["code", EDITOR]])

    # Outside any notebook the event is left alone (the editor then offers "Save as notebook").
    assert page.evaluate(DISPATCH, [-1, {"revision": 4, "cells": [], "removed": []}]) == [False, 3]

    shot = tmp_path / f"cells-sync-{front_end}.png"
    screenshot(page, page.locator(".jp-Notebook"), shot)
    assert shot.stat().st_size > 0

    # Each revision is one undo step (Z in command mode): the forced one, then the first one whole.
    page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape")
    page.keyboard.press("z")
    page_cells(page, after_1)
    page.keyboard.press("z")
    page_cells(page, start)
    assert not list(filter(None, errors)), f"JavaScript errors on the page: {errors}"
