"""The live DAG widget in Notebook 7 (``jupyter notebook``), the other main front end.

The quickstart tutorial is opened in a Notebook 7 server (its own, one per session, beside
JupyterLab's), its saved outputs cleared, and run with Run > Run All Cells. The tests then check
the widget of each ``%pipeline run`` cell: the statuses in its SVG, that the page shows exactly
one DAG per run (the static picture saved for renderers without widgets is hidden while the
widget is live), and that clicking a node opens its details. Screenshots are saved in pytest's
temporary folder (``screenshots/notebook7-*.png``).

Run just these: ``python -m pytest tests/browser/test_notebook7_browser.py -m browser``.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from .conftest import (
    close_details,
    new_lab_page,
    one_live_dag,
    run_all_afresh,
    screenshot,
    step_node,
)

pytestmark = pytest.mark.browser

NOTEBOOK = "quickstart.ipynb"
DEFAULT_RUN = "ex = %pipeline run"
STRICT_RUN = "strict = %pipeline run --param min_accuracy=1.01"

KERNEL_TIMEOUT = 60_000   # ms: the kernel starts and the page is connected to it
UI_TIMEOUT = 15_000       # ms: a click answered by the kernel, a repaint

# Notebook 7 has no status bar; with `expose_app_in_browser` its application object is on the
# page: the notebook's session is ready, connected and idle (Run All sent earlier is dropped).
KERNEL_READY = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const session = panel && panel.sessionContext;
  const kernel = session && session.session && session.session.kernel;
  return !!(session && session.isReady && kernel && kernel.connectionStatus === 'connected'
            && kernel.status === 'idle');
}"""


# Notebook 7's own keyboard-shortcut settings code (notebook_core.js) raises this while the page
# loads, before any cell runs: an upstream bug, not ours. Any other page error fails the tests.
UPSTREAM_ERROR = ("Cannot read properties of undefined (reading 'schema')", "/static/notebook/notebook_core.")


def page_error(exc) -> str | None:
    """The error as text, or None for the known upstream one."""
    message, stack = str(exc), getattr(exc, "stack", "") or ""
    first_frame = next((line for line in stack.splitlines() if line.strip().startswith("at ")), "")
    if message == UPSTREAM_ERROR[0] and UPSTREAM_ERROR[1] in first_frame:
        return None
    return f"{message}\n{stack}"


def code_cell(page, source: str):
    """The notebook's code cell whose source starts with ``source``."""
    editor = page.locator(".jp-InputArea-editor", has_text=re.compile(rf"^\s*{re.escape(source)}"))
    return page.locator(".jp-Notebook .jp-CodeCell").filter(has=editor)


@pytest.fixture(scope="module")
def quickstart(chromium, notebook_server, artifacts_dir):
    """The quickstart, open in Notebook 7 and run once with Run All."""

    context, page = new_lab_page(chromium, notebook_server)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(page_error(exc)))
    try:
        page.goto(notebook_server.url(f"notebooks/{NOTEBOOK}"), timeout=KERNEL_TIMEOUT)
        page.wait_for_function(KERNEL_READY, timeout=KERNEL_TIMEOUT)
        run_all_afresh(page, notebook_server, errors, artifacts_dir / "notebook7-run-all-failed.png")
        yield SimpleNamespace(page=page, errors=errors)
    finally:
        context.close()


@pytest.mark.parametrize("source, header, statuses, outcome", [
    (DEFAULT_RUN, "Succeeded", {"Load": "Cached", "Train": "Cached", "Evaluate": "Cached",
                                "Good": "Cached", "Keep": "Cached", "TooWeak": "Skipped"}, "True"),
    (STRICT_RUN, "Failed", {"Load": "Cached", "Train": "Cached", "Evaluate": "Cached",
                            "Good": "Succeeded", "Keep": "Skipped", "TooWeak": "Failed"}, "False"),
], ids=["default", "strict"])
def test_the_widget_shows_each_run_in_notebook7(quickstart, artifacts_dir, source, header, statuses,
                                                outcome):
    from playwright.sync_api import expect

    page = quickstart.page
    cell = code_cell(page, source)
    expect(cell).to_have_count(1)
    widget = one_live_dag(cell)
    expect(widget.locator(".jp-pipeline-header .jp-pipeline-badge")).to_have_attribute(
        "data-status", header, timeout=UI_TIMEOUT)
    for name, status in statuses.items():
        expect(step_node(widget, name)).to_have_attribute("data-status", status)
    expect(widget.locator('g[data-step][data-status="Succeeded"], g[data-step][data-status="Cached"]')
           ).to_have_count(sum(s in ("Succeeded", "Cached") for s in statuses.values()))
    good = step_node(widget, "Good")
    expect(good).to_have_attribute("data-outcome", outcome)
    expect(good.locator('text[data-role="outcome"]')).to_have_text(
        re.compile(rf"^accuracy [\d.]+ >= min_accuracy [\d.]+ → {outcome}$"))
    screenshot(page, widget, artifacts_dir / f"notebook7-{header.lower()}.png")
    assert not list(filter(None, quickstart.errors)), f"JavaScript errors on the page: {quickstart.errors}"


def test_a_click_in_notebook7_opens_the_details(quickstart, artifacts_dir):
    from playwright.sync_api import expect

    page = quickstart.page
    widget = one_live_dag(code_cell(page, STRICT_RUN))
    expect(step_node(widget, "Good")).to_have_attribute("data-status", "Succeeded", timeout=UI_TIMEOUT)
    details = widget.locator('[data-details-for="Good"]')
    expect(details).to_have_count(0)
    step_node(widget, "Good").click()
    expect(details).to_be_visible(timeout=UI_TIMEOUT)
    expect(details.locator(".jp-pipeline-details-head .jp-pipeline-badge")).to_have_text("Succeeded")
    expect(details.locator(".jp-pipeline-outcome")).to_have_attribute("data-outcome", "False")
    expect(details.locator(".jp-pipeline-outcome")).to_have_text(
        re.compile(r"accuracy [\d.]+ >= min_accuracy 1\.01 → False"))
    inputs = details.locator("section", has=page.locator("h4", has_text=re.compile(r"^Inputs$")))
    expect(inputs.locator("th")).to_have_text(["accuracy", "min_accuracy"])
    screenshot(page, widget, artifacts_dir / "notebook7-details.png")
    close_details(widget, "Good")
    assert not list(filter(None, quickstart.errors)), f"JavaScript errors on the page: {quickstart.errors}"
