"""A notebook executed elsewhere, opened in JupyterLab: the saved DAG pictures show.

The quickstart is executed by nbclient (as CI or ``jupyter nbconvert --execute`` would), saved,
and opened in JupyterLab without running anything. JupyterLab does not trust a notebook it did
not write itself, so it renders no widget views and sanitizes HTML; the widget's model is gone
anyway. Each run cell must show the saved picture of its execution, an image, once (not a
jumble of the drawing's words, which is what inline SVG becomes after sanitizing), under the
text summary. Screenshots: ``screenshots/lab-untrusted-*.png`` in pytest's temporary folder.
"""

from __future__ import annotations

import base64
import os
import re
import shutil

import pytest

from .conftest import NOTEBOOKS, new_lab_page, screenshot

pytestmark = pytest.mark.browser

NOTEBOOK = "quickstart-executed.ipynb"
RUNS = {  # the cell's source starts with -> the execution's status, a step's status
    "ex = %pipeline run": ("Succeeded", "TooWeak", "Skipped"),
    "strict = %pipeline run": ("Failed", "TooWeak", "Failed"),
}
KERNEL_TIMEOUT = 60_000
UI_TIMEOUT = 15_000


@pytest.fixture(scope="module")
def executed_page(chromium, lab_server, tmp_path_factory):
    """The quickstart executed by nbclient, open in JupyterLab (untrusted, not run)."""
    import nbformat
    from nbclient import NotebookClient
    from playwright.sync_api import expect

    folder = tmp_path_factory.mktemp("executed")
    nb = nbformat.read(NOTEBOOKS / "quickstart.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute(
        env={**os.environ, "JUPYTER_PIPELINES_HOME": str(folder / "state")})
    nbformat.write(nb, folder / NOTEBOOK)
    shutil.copyfile(folder / NOTEBOOK, lab_server.root / NOTEBOOK)

    context, page = new_lab_page(chromium, lab_server)
    try:
        page.goto(lab_server.url(f"lab/tree/{NOTEBOOK}?reset"), timeout=KERNEL_TIMEOUT)
        expect(page.locator("#jp-main-statusbar")).to_contain_text("| Idle", timeout=KERNEL_TIMEOUT)
        yield page
    finally:
        context.close()


@pytest.mark.parametrize("source", list(RUNS), ids=["default", "strict"])
def test_an_executed_notebook_shows_its_saved_dag_pictures_in_jupyterlab(executed_page, source,
                                                                          artifacts_dir):
    from playwright.sync_api import expect

    page = executed_page
    status, step, step_status = RUNS[source]
    editor = page.locator(".jp-InputArea-editor", has_text=re.compile(rf"^\s*{re.escape(source)}"))
    cell = page.locator(".jp-Notebook .jp-CodeCell").filter(has=editor)
    expect(cell).to_have_count(1)
    cell.scroll_into_view_if_needed()
    picture = cell.locator(".jp-OutputArea .jp-pipeline-static")
    expect(picture).to_have_count(1, timeout=UI_TIMEOUT)
    image = picture.locator('img[src^="data:image/svg+xml;base64,"]')
    expect(image).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 300", arg=image.element_handle(),
                           timeout=UI_TIMEOUT)
    expect(picture).to_contain_text(re.compile(rf"· {status} · 6/6 steps"))
    svg = base64.b64decode(image.get_attribute("src").split(",", 1)[1]).decode()
    assert re.search(rf'data-step="{step}" [^>]*data-status="{step_status}"', svg)
    # One DAG: no live widget, no second drawing, no words of a sanitized inline SVG.
    output = cell.locator(".jp-OutputArea")
    expect(output.locator(".jp-pipeline")).to_have_count(0)
    expect(output.locator("svg.jp-dag")).to_have_count(0)
    expect(output.locator('img[src^="data:image/svg+xml"]:visible')).to_have_count(1)
    expect(output).not_to_contain_text("cluster_if_Good")
    expect(output).to_contain_text(f"Execution {status}")  # the widget output's text summary
    screenshot(page, cell, artifacts_dir / f"lab-untrusted-{status.lower()}.png")
