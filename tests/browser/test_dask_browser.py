"""The live widget of a pipeline run on a Dask LocalCluster, in a real JupyterLab.

A small notebook, written here with nbformat into the server's (temporary) notebook folder,
defines two ``%%step`` cells (``Big`` makes a million-element numpy array, ``Sum`` adds it up)
and runs them with ``%pipeline run --no-cache --executor dask`` (``--no-cache``: the ``%%step``
cells already ran both steps in the kernel, and the run must not reuse those results). It is
opened in JupyterLab and run with Run All; the test then checks the run cell's widget: the
execution and every step Succeeded, the header's link to the Dask dashboard (a loopback URL that
answers), and the details panel of ``Big``: the worker that ran it, and its output's preview,
made on the worker, without the value being fetched for it (the notebook counts the fetches
from the cluster after the run; its last cell, run again after the click, says there were
none). The cluster starts in the kernel on first use (a few seconds); the kernel, and with it
the cluster, is shut down when the module is done.
Screenshots: ``screenshots/dask-*.png`` in pytest's temporary folder (see ``artifacts_dir``).

Run just this: ``python -m pytest tests/browser/test_dask_browser.py -m browser``.
"""

from __future__ import annotations

import json
import re
import urllib.request
from types import SimpleNamespace

import pytest

from .conftest import (
    close_details,
    new_lab_page,
    one_live_dag,
    open_details,
    open_idle,
    outputs_text,
    run_all_afresh,
    screenshot,
    step_node,
    watch_errors,
)

pytestmark = pytest.mark.browser

pytest.importorskip("distributed", reason="the Dask browser test needs Dask's distributed "
                                          "scheduler (pip install 'jupyter_pipelines[dask]')")

NOTEBOOK = "dask-run.ipynb"
CELLS = [
    "%load_ext jupyter_pipelines",
    "%%step Big\nimport numpy as np\nbig = np.arange(1_000_000)",
    "%%step Sum\ntotal = int(big.sum())",
    "ex = %pipeline run --no-cache --executor dask",
    # From here on, count the outputs brought over from the cluster. (The run itself fetched
    # them: `%pipeline run` binds every output into the notebook, `Session.bind`.)
    "from jupyter_pipelines.run.cluster import RemoteOutput\n"
    "fetches, _fetch = [], RemoteOutput.fetch\n"
    "def _counted_fetch(self):\n"
    "    fetches.append(self.name)\n"
    "    return _fetch(self)\n"
    "RemoteOutput.fetch = _counted_fetch",
    'print(type(ex.steps["Big"].outputs["big"]).__name__, "fetches since the run:", fetches)',
]
RUN_CELL, CHECK_CELL = 3, 5
STEPS = ["Big", "Sum"]
NOT_FETCHED = "RemoteOutput fetches since the run: []"

KERNEL_TIMEOUT = 60_000    # ms: the kernel starts and becomes Idle
CLUSTER_TIMEOUT = 120_000  # ms: the first run starts a LocalCluster in the kernel
UI_TIMEOUT = 15_000        # ms: a click answered by the kernel, a repaint

DASHBOARD = re.compile(r"^http://127\.0\.0\.1:\d+/status$")
WORKER = re.compile(r"^tcp://127\.0\.0\.1:\d+$")

# The boxes of the header's children and of the details panel's lines, in CSS pixels.
BOXES = """
el => [...el.children].map(c => {
  const r = c.getBoundingClientRect();
  return {cls: c.className, worker: c.hasAttribute('data-worker'), text: c.innerText,
          x: r.x, y: r.y, w: r.width, h: r.height,
          scrollW: c.scrollWidth, clientW: c.clientWidth};
})
"""


def cell(page, index: int):
    return page.locator(".jp-Notebook .jp-CodeCell").nth(index)


def overlap(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def write_notebook(root) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / NOTEBOOK)


def shut_down_kernel(server) -> None:
    """End the notebook's kernel (its atexit hook closes the LocalCluster and its workers)
    rather than leave the cluster running until the server stops."""
    with urllib.request.urlopen(server.url("api/sessions"), timeout=10) as response:
        sessions = json.load(response)
    for session in sessions:
        if session.get("path") == NOTEBOOK:
            request = urllib.request.Request(server.url(f"api/sessions/{session['id']}"), method="DELETE")
            urllib.request.urlopen(request, timeout=60).close()


@pytest.fixture(scope="module")
def dask_page(chromium, lab_server, artifacts_dir):
    """The notebook, open in JupyterLab and run once with Run All."""

    write_notebook(lab_server.root)
    context, page = new_lab_page(chromium, lab_server)
    errors = watch_errors(page)
    try:
        open_idle(page, lab_server, NOTEBOOK, len(CELLS), KERNEL_TIMEOUT)
        run_all_afresh(page, lab_server, errors, artifacts_dir / "dask-run-all-failed.png")
        yield SimpleNamespace(page=page, errors=errors)
    finally:
        context.close()
        try:
            shut_down_kernel(lab_server)
        except OSError:  # the server is gone already: its shutdown ends the kernel
            pass


def test_dask_run_links_the_dashboard_and_shows_the_worker(dask_page, lab_server, artifacts_dir):
    from playwright.sync_api import expect

    page = dask_page.page
    try:
        widget = one_live_dag(cell(page, RUN_CELL), CLUSTER_TIMEOUT)
        expect(widget.locator(".jp-pipeline-header .jp-pipeline-badge")).to_have_attribute(
            "data-status", "Succeeded", timeout=CLUSTER_TIMEOUT)
    except AssertionError as exc:
        page.screenshot(path=artifacts_dir / "dask-run-failed.png", full_page=True)
        raise AssertionError(f"the Dask run did not succeed:\n{outputs_text(page)}\n"
                             f"server log:\n{lab_server.log_tail()}") from exc
    for name in STEPS:
        expect(step_node(widget, name)).to_have_attribute("data-status", "Succeeded", timeout=UI_TIMEOUT)
    expect(widget.locator(".jp-pipeline-count")).to_have_text(f"{len(STEPS)}/{len(STEPS)} steps")
    expect(widget.locator(".jp-pipeline-failure")).to_be_hidden()

    # The header links the cluster's dashboard, on loopback, and the link leads somewhere.
    header = widget.locator(".jp-pipeline-header")
    link = header.locator("a.jp-pipeline-dashboard")
    expect(link).to_have_count(1)
    expect(link).to_be_visible()
    expect(link).to_have_text("Dask dashboard ↗")
    expect(link).to_have_attribute("href", DASHBOARD)
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", re.compile(r"\bnoopener\b"))
    href = link.get_attribute("href")
    with urllib.request.urlopen(href, timeout=10) as response:  # from here: the page may only reach Lab
        assert response.status == 200, (href, response.status)
    # Laid out on the header's line, inside the widget, over nothing else, never cut off.
    header_box, boxes = header.bounding_box(), header.evaluate(BOXES)
    (link_box,) = [b for b in boxes if b["cls"] == "jp-pipeline-dashboard"]
    assert link_box["w"] > 0 and link_box["scrollW"] <= link_box["clientW"] + 1, link_box
    right = header_box["x"] + header_box["width"]
    assert header_box["x"] - 0.5 <= link_box["x"] <= link_box["x"] + link_box["w"] <= right + 0.5, (
        link_box, header_box)
    for other in boxes:
        if other is not link_box and other["w"] and other["h"]:
            assert not overlap(link_box, other), (link_box, other)
    screenshot(page, widget, artifacts_dir / "dask-run.png")

    # Big's details: the worker that ran it, and its output's preview (made on the worker).
    details = open_details(widget, "Big", UI_TIMEOUT)
    worker = details.locator("[data-worker]")
    expect(worker).to_have_count(1)
    expect(worker).to_be_visible()
    expect(worker).to_have_attribute("data-worker", WORKER)
    address = worker.get_attribute("data-worker")
    expect(worker).to_have_text(f"ran on Dask worker {address}")
    outputs = details.locator("section", has=page.locator("h4", has_text="Outputs"))
    big = outputs.locator("tr", has=page.locator("th", has_text=re.compile(r"^big$")))
    expect(big).to_have_count(1)
    expect(big.locator(".jp-pipeline-type")).to_have_text(
        re.compile(r"^numpy\.ndarray · shape \(1000000,\), dtype int64$"))
    expect(big.locator(".jp-pipeline-preview pre")).to_have_text(re.compile(r"^array\(\[\s*0,\s*1,\s*2,"))
    expect(step_node(widget, "Big")).to_have_class(re.compile(r"\bjp-selected\b"))
    # The worker's line: one line of its own, between the times and the sections, not cut off.
    lines = details.evaluate(BOXES)
    (line,) = [b for b in lines if b["worker"]]
    times = next(b for b in lines if b["cls"] == "jp-pipeline-times" and not b["worker"])
    assert 0 < line["h"] <= times["h"] + 1, (line, times)  # as high as the one-line times line
    assert line["scrollW"] <= line["clientW"] + 1, line
    for other in lines:
        if other is not line and other["w"] and other["h"]:
            assert not overlap(line, other), (line, other)
    screenshot(page, widget, artifacts_dir / "dask-details.png")

    # Showing the preview did not bring the array to the kernel: ask the kernel (again).
    check = cell(page, CHECK_CELL)
    expect(check.locator(".jp-OutputArea")).to_have_text(re.compile(rf"^\s*{re.escape(NOT_FETCHED)}\s*$"))
    prompt = check.locator(".jp-InputPrompt")
    before = prompt.inner_text()
    check.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+Enter")  # run in place (Shift+Enter on the last cell adds one)
    expect(prompt).not_to_have_text(before, timeout=UI_TIMEOUT)
    expect(prompt).to_have_text(re.compile(r"^\s*\[\d+\]:\s*$"), timeout=UI_TIMEOUT)
    expect(check.locator(".jp-OutputArea")).to_have_text(re.compile(rf"^\s*{re.escape(NOT_FETCHED)}\s*$"))

    close_details(widget, "Big")
    assert not dask_page.errors, f"JavaScript errors on the page: {dask_page.errors}"
