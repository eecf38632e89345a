"""What a notebook shows without a kernel is true, and shows the DAG.

The quickstart tutorial is executed once with nbclient (in a temporary copy, with its own state
folder), as ``jupyter nbconvert --execute`` would. Then:

* a renderer without widgets (GitHub's, nbviewer's) that takes the first of ``image/svg+xml``,
  ``text/html``, ``text/plain`` of each output finds the DAG with the run's statuses;
* nbconvert's HTML of it, with and without the widget state nbclient saved, opened in headless
  Chromium with every network request aborted (the widget's scripts would come from a CDN),
  shows each run's DAG (an image of the SVG), captioned with the run's status; the drawing
  shows every step with its status and the condition's outcome.

The screenshots are saved in the test's temporary folder (``html-*.png``).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# The quickstart's two runs, in order: the default one reuses what the step cells ran and takes
# the True branch; the strict one (min_accuracy=1.01) evaluates the condition again and takes
# the False branch, whose fail step ends it Failed.
RUNS = [
    ("ex = %pipeline run", {"Load": "Cached", "Train": "Cached", "Evaluate": "Cached",
                            "Good": "Cached", "Keep": "Cached", "TooWeak": "Skipped"}, "True"),
    ("strict = %pipeline run --param min_accuracy=1.01",
     {"Load": "Cached", "Train": "Cached", "Evaluate": "Cached", "Good": "Succeeded",
      "Keep": "Skipped", "TooWeak": "Failed"}, "False"),
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The quickstart, executed by nbclient in a temporary folder (its state folder there too)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    folder = tmp_path_factory.mktemp("quickstart")
    shutil.copyfile(NOTEBOOKS / "quickstart.ipynb", folder / "quickstart.ipynb")
    nb = nbformat.read(folder / "quickstart.ipynb", as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(folder)}})
    client.execute(env={**os.environ, "JUPYTER_PIPELINES_HOME": str(folder / "state")})
    return nb


def run_cell(nb, source: str):
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(source)]
    return cell


def shown_without_widgets(output: dict) -> tuple[str, str] | None:
    """What a renderer that ignores widget views shows of one output: the first of these."""
    for mime in ("image/svg+xml", "text/html", "text/plain"):
        if mime in output.get("data", {}):
            return mime, output["data"][mime]
    return None


def assert_statuses(svg: str, statuses: dict[str, str], outcome: str) -> None:
    for step, status in statuses.items():
        assert re.search(rf'<g [^>]*data-step="{step}" [^>]*data-status="{status}"', svg), (step, status)
    assert re.search(rf'data-step="Good" [^>]*data-outcome="{outcome}"', svg)
    assert re.search(rf"accuracy [\d.]+ &gt;= min_accuracy [\d.]+ → {outcome}", svg)


def test_the_executed_notebook_saves_the_widget_and_the_picture_as_two_outputs(executed):
    for source, _, _ in RUNS:
        displays = [o for o in run_cell(executed, source).outputs if o.output_type == "display_data"]
        assert [sorted(o.data) for o in displays] == [
            ["application/vnd.jupyter.widget-view+json", "text/plain"], ["image/svg+xml", "text/html"]]
        # The widget's model is in the saved widget state: nbconvert will choose the widget view
        # for the first output, which is why the picture is an output of its own.
        state = executed.metadata["widgets"][WIDGET_STATE]["state"]
        assert displays[0].data[WIDGET_VIEW]["model_id"] in state


@pytest.mark.parametrize("source, statuses, outcome", RUNS, ids=["default", "strict"])
def test_a_renderer_without_widgets_shows_the_dag_with_statuses(executed, source, statuses, outcome):
    shown = [shown_without_widgets(o) for o in run_cell(executed, source).outputs]
    pictures = [text for mime, text in filter(None, shown) if "<svg" in text]
    assert len(pictures) == 1, shown  # one DAG, not two
    assert_statuses(pictures[0], statuses, outcome)
    # and the text of the run beside it
    assert any(mime == "text/plain" and text.startswith("Execution ") for mime, text in filter(None, shown))


@pytest.mark.browser
@pytest.mark.parametrize("widget_state", [True, False], ids=["with-widget-state", "without-widget-state"])
def test_nbconvert_html_shows_the_dag_with_statuses_offline(executed, widget_state, chromium, tmp_path):
    import copy

    from nbconvert import HTMLExporter
    from playwright.sync_api import expect

    nb = copy.deepcopy(executed)
    if not widget_state:
        del nb.metadata["widgets"]
    html, _ = HTMLExporter().from_notebook_node(nb)
    page_file = tmp_path / "quickstart.html"
    page_file.write_text(html, encoding="utf-8")

    context = chromium.new_context(viewport={"width": 1280, "height": 1200})
    aborted: list[str] = []

    def offline(route):
        url = route.request.url
        if url.startswith(("file://", "data:")):
            route.continue_()
        else:
            aborted.append(url)
            route.abort()

    context.route("**/*", offline)
    page = context.new_page()
    try:
        page.goto(page_file.as_uri())
        pictures = page.locator(".jp-pipeline-static")
        expect(pictures).to_have_count(len(RUNS))
        for index, (_, statuses, outcome) in enumerate(RUNS):
            image = pictures.nth(index).locator("img")
            expect(image).to_be_visible()
            # Loaded and drawn at its natural size (the page is wider than the drawing).
            size = image.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight, img.width]")
            assert size[0] and size[1] > 300 and size[2] > 300 and size[3] == size[1], size
            svg = base64.b64decode(image.get_attribute("src").split(",", 1)[1]).decode()
            assert_statuses(svg, statuses, outcome)
            name = f"html-{'with' if widget_state else 'without'}-state-{index}.png"
            pictures.nth(index).screenshot(path=tmp_path / name, animations="disabled")
            # The drawing itself, opened as a page of its own: every step visible, with its status.
            drawing = context.new_page()
            drawing.set_content(svg)
            for step, status in statuses.items():
                node = drawing.locator(f'g[data-step="{step}"]')
                expect(node).to_be_visible()
                expect(node).to_have_attribute("data-status", status)
                expect(node.locator('text[data-role="status"]')).to_have_text(
                    re.compile(rf"^{status}( · \d+\.\d\ds)?$"))
            expect(drawing.locator('g[data-step="Good"] text[data-role="outcome"]')).to_have_text(
                re.compile(rf"^accuracy [\d.]+ >= min_accuracy [\d.]+ → {outcome}$"))
            drawing.close()
        expect(pictures.nth(0)).to_contain_text(re.compile(r"^\S+ · Succeeded · 6/6 steps"))
        expect(pictures.nth(1)).to_contain_text(re.compile(
            r"^\S+ · Failed · 6/6 steps · Failure reason: accuracy [\d.]+ is below 1\.01"))
        # Only the widget scripts and fonts from the internet were asked for, and refused.
        assert all(url.startswith(("http://", "https://")) for url in aborted), aborted
    finally:
        context.close()
