"""The live DAG widget in a real JupyterLab, driven by headless Chromium.

The Abalone tutorial is opened and run once (Run All, through the menu); each test then checks
the widget of one ``%pipeline run`` cell: its live updates (recorded by a MutationObserver that
is installed before JupyterLab loads), the final statuses and colours, the condition's outcome,
the details panel, and the failure banner of the strict run. A screenshot of every widget is
saved in pytest's temporary folder (``screenshots/``, see ``artifacts_dir``).

Run just these: ``python -m pytest tests/browser -m browser``; skip them: ``-m "not browser"``.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest

from .conftest import (
    close_details,
    new_lab_page,
    one_live_dag,
    open_details,
    run_all_afresh,
    screenshot,
    step_node,
    watch_errors,
)

pytestmark = pytest.mark.browser

NOTEBOOK = "abalone.ipynb"
STEPS = ["AbaloneProcess", "AbaloneTrain", "AbaloneEval", "AbaloneMSECond", "AbaloneRegisterModel",
         "AbaloneCreateModel", "AbaloneTransform", "AbaloneMSEFail"]
DEFAULT_RUN = "ex = %pipeline run --no-cache"
STRICT_RUN = "strict = %pipeline run --param mse_threshold=3.0"

KERNEL_TIMEOUT = 60_000   # ms: the kernel starts and becomes Idle
UI_TIMEOUT = 15_000       # ms: a click answered by the kernel, a repaint

# Records every data-status a step node of the DAG shows, with the cell it is in: attribute
# changes, and the status of nodes as they are added (a view re-created by a display update).
STATUS_RECORDER = """
(() => {
  window.__statusLog = [];
  let cells = 0;
  const cellKey = (node) => {
    const cell = node.closest && node.closest('.jp-Cell');
    if (!cell) return null;
    if (!cell.dataset.testCell) cell.dataset.testCell = String(++cells);
    return cell.dataset.testCell;
  };
  const record = (node, how) => window.__statusLog.push({
    cell: cellKey(node), step: node.getAttribute('data-step'),
    status: node.getAttribute('data-status'), how, t: performance.now(),
  });
  new MutationObserver((mutations) => {
    for (const m of mutations) {
      if (m.type === 'attributes') {
        if (m.target.matches && m.target.matches('g[data-step]')) record(m.target, 'changed');
      } else {
        for (const node of m.addedNodes) {
          if (node.nodeType !== 1) continue;
          if (node.matches('g[data-step]')) record(node, 'added');
          for (const g of node.querySelectorAll('g[data-step]')) record(g, 'added');
        }
      }
    }
  }).observe(document, {subtree: true, childList: true, attributes: true,
                        attributeFilter: ['data-status']});
})();
"""


def code_cell(page, source: str):
    """The notebook's code cell whose whole source is ``source``."""
    editor = page.locator(".jp-InputArea-editor", has_text=re.compile(rf"^\s*{re.escape(source)}\s*$"))
    return page.locator(".jp-Notebook .jp-CodeCell").filter(has=editor)




def status_log(page, cell) -> list[dict]:
    key = cell.evaluate("c => c.dataset.testCell || null")
    return [r for r in page.evaluate("window.__statusLog") if key is not None and r["cell"] == key]


def wait_for_opacity_below(page, locator, limit: float) -> float:
    """Wait until the element's computed opacity (after CSS transitions) is below ``limit``."""
    handle = locator.element_handle()
    page.wait_for_function("([el, limit]) => parseFloat(getComputedStyle(el).opacity) < limit",
                           arg=[handle, limit], timeout=UI_TIMEOUT)
    return float(locator.evaluate("el => getComputedStyle(el).opacity"))






@pytest.fixture(scope="module")
def abalone(chromium, lab_server, artifacts_dir):
    """The Abalone tutorial, open in JupyterLab and run once with Run All."""
    from playwright.sync_api import expect

    context, page = new_lab_page(chromium, lab_server)
    page.add_init_script(STATUS_RECORDER)
    errors = watch_errors(page)
    try:
        page.goto(lab_server.url(f"lab/tree/{NOTEBOOK}?reset"), timeout=KERNEL_TIMEOUT)
        # Run All sent before the kernel is ready is dropped: wait for "| Idle" in the status bar.
        expect(page.locator("#jp-main-statusbar")).to_contain_text("| Idle", timeout=KERNEL_TIMEOUT)
        run_all_afresh(page, lab_server, errors, artifacts_dir / "abalone-run-all-failed.png")
        yield SimpleNamespace(page=page, errors=errors)
    finally:
        context.close()


def test_default_run_widget(abalone, artifacts_dir):
    from playwright.sync_api import expect

    page = abalone.page
    cell = code_cell(page, DEFAULT_RUN)
    expect(cell).to_have_count(1)
    widget = one_live_dag(cell, UI_TIMEOUT)  # the live widget, and no second picture
    expect(widget.locator(".jp-pipeline-header .jp-pipeline-badge")).to_have_attribute(
        "data-status", "Succeeded", timeout=UI_TIMEOUT)

    # Final statuses: the True branch ran, the fail step was skipped.
    for name in STEPS:
        expected = "Skipped" if name == "AbaloneMSEFail" else "Succeeded"
        expect(step_node(widget, name)).to_have_attribute("data-status", expected)
    expect(widget.locator(".jp-pipeline-count")).to_have_text(f"{len(STEPS)}/{len(STEPS)} steps")
    expect(widget.locator(".jp-pipeline-progress-fill")).to_have_attribute(
        "style", re.compile(r"width:\s*100%"))
    expect(widget.locator(".jp-pipeline-elapsed")).to_have_text(re.compile(r"^\d+(\.\d)?s$"))
    expect(widget.locator(".jp-pipeline-legend-item")).to_have_count(7)  # the Abalone uses all 7 kinds
    expect(widget.locator(".jp-pipeline-param")).to_contain_text(["mse_threshold=6.0"])
    expect(widget.locator(".jp-pipeline-failure")).to_be_hidden()

    # Live: the slow training step (~0.5 s) was seen Executing before Succeeded, in this widget.
    log = status_log(page, cell)
    train = [r["status"] for r in log if r["step"] == "AbaloneTrain"]
    assert "Executing" in train, f"AbaloneTrain never showed Executing in the live widget: {train}"
    assert "Succeeded" in train[train.index("Executing"):], f"Executing not followed by Succeeded: {train}"
    seen_executing = sorted({r["step"] for r in log if r["status"] == "Executing"})
    assert "AbaloneTrain" in seen_executing

    # The condition: its outcome as an attribute and as the comparison text.
    cond = step_node(widget, "AbaloneMSECond")
    expect(cond).to_have_attribute("data-outcome", "True")
    expect(cond.locator('text[data-role="outcome"]')).to_have_text(
        re.compile(r"mse.* [\d.]+ <= mse_threshold 6\.0 → True"))

    screenshot(page, widget, artifacts_dir / "abalone-default.png")

    # Clicking a node opens the details panel with that step's report.
    details = open_details(widget, "AbaloneEval", UI_TIMEOUT)
    report = details.locator("section", has=page.locator("h4", has_text="Outputs")).locator(
        "tr", has=page.locator("th", has_text=re.compile(r"^report$")))
    expect(report).to_contain_text("regression_metrics")
    expect(report.locator("pre")).to_have_text(re.compile(r'"mse": \{\s*"value": \d+\.\d+', re.S))
    mse = json.loads(report.locator("pre").inner_text())["regression_metrics"]["mse"]["value"]
    assert 0 < mse <= 6.0
    expect(step_node(widget, "AbaloneEval")).to_have_class(re.compile(r"\bjp-selected\b"))
    screenshot(page, widget, artifacts_dir / "abalone-default-details.png")

    close_details(widget, "AbaloneEval")
    assert not abalone.errors, f"JavaScript errors on the page: {abalone.errors}"


def test_strict_run_widget(abalone, artifacts_dir):
    from playwright.sync_api import expect

    page = abalone.page
    cell = code_cell(page, STRICT_RUN)
    expect(cell).to_have_count(1)
    widget = one_live_dag(cell, UI_TIMEOUT)
    expect(widget.locator(".jp-pipeline-header .jp-pipeline-badge")).to_have_attribute(
        "data-status", "Failed", timeout=UI_TIMEOUT)
    expect(widget.locator(".jp-pipeline-param")).to_contain_text(["mse_threshold=3.0"])
    # The graph's parameter note shows the value this run used, not the default 6.0.
    expect(widget.locator("g#parameters text.jp-param-overridden")).to_have_text(
        ["mse_threshold: Float = 3.0"])

    expect(step_node(widget, "AbaloneMSEFail")).to_have_attribute("data-status", "Failed")
    # Process, train and evaluate reuse the stored results of the run before (same code, inputs
    # and parameters); the condition reads the changed threshold, so it runs again.
    for name in ("AbaloneProcess", "AbaloneTrain", "AbaloneEval"):
        expect(step_node(widget, name)).to_have_attribute("data-status", "Cached")
    expect(step_node(widget, "AbaloneMSECond")).to_have_attribute("data-status", "Succeeded")
    cond = step_node(widget, "AbaloneMSECond")
    expect(cond).to_have_attribute("data-outcome", "False")
    expect(cond.locator('text[data-role="outcome"]')).to_have_text(
        re.compile(r"mse.* [\d.]+ <= mse_threshold 3\.0 → False"))

    # The skipped branch is greyed out.
    for name in ("AbaloneRegisterModel", "AbaloneCreateModel", "AbaloneTransform"):
        node = step_node(widget, name)
        expect(node).to_have_attribute("data-status", "Skipped")
        opacity = wait_for_opacity_below(page, node, 0.6)
        assert opacity < 0.6, f"{name} is not greyed out (opacity {opacity})"
    assert float(step_node(widget, "AbaloneMSEFail").evaluate("el => getComputedStyle(el).opacity")) == 1

    # The failure reason, above the graph.
    failure = widget.locator(".jp-pipeline-failure")
    expect(failure).to_be_visible()
    expect(failure).to_contain_text("MSE")
    expect(failure).to_contain_text("3.0")
    failure_box = failure.bounding_box()
    graph_box = widget.locator(".jp-pipeline-graph").bounding_box()
    assert failure_box["y"] + failure_box["height"] <= graph_box["y"] + 1, (failure_box, graph_box)

    screenshot(page, widget, artifacts_dir / "abalone-strict.png")
    assert not abalone.errors, f"JavaScript errors on the page: {abalone.errors}"
