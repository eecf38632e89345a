"""A real SageMaker SDK pipeline definition drawn by the widget, in a real JupyterLab.

The SDK-style fixtures ``tests/fixtures/sagemaker/abalone.json`` and ``checks_emr_tuning.json``
are copied into the server's (temporary) notebook folder together with a small notebook,
written here with nbformat, that loads them with ``%pipeline load FILE --view-only``. The
notebook is opened in JupyterLab and run with Run All; the tests then check the widget's SVG
(nodes, kinds, edges and their labels, branch clusters, legend, geometry), the details panel of
a clicked step (its JSON definition), and that ``%pipeline run`` of the loaded definition fails
with a clear error naming the AWS-only steps while the kernel stays alive. Screenshots are saved
in pytest's temporary folder (``screenshots/definition-view.png`` and friends).

Run just these: ``python -m pytest tests/browser/test_definition_browser.py -m browser``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from .conftest import (
    close_details,
    new_lab_page,
    one_live_dag,
    open_idle,
    outputs_text,
    screenshot,
    step_node,
    watch_errors,
)

pytestmark = pytest.mark.browser

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sagemaker"
NOTEBOOK = "definition-view.ipynb"
ABALONE_FILE = "abalone-sagemaker.json"
EMR_FILE = "checks-emr-tuning-sagemaker.json"
CELLS = [
    "%load_ext jupyter_pipelines",
    f"%pipeline load {ABALONE_FILE} --view-only",
    f"%pipeline load {EMR_FILE} --view-only",
    f"%pipeline load {ABALONE_FILE}\n%pipeline run",
    'print("kernel alive:", 6 * 7)',
]
ABALONE_CELL, EMR_CELL, RUN_CELL, LATER_CELL = 1, 2, 3, 4

# The Abalone definition: step -> the kind line its node shows (all AWS-only but the fail step,
# which is translated into a runnable local fail step).
ABALONE_KINDS = {
    "AbaloneProcess": "Processing (AWS)", "AbaloneTrain": "Training (AWS)",
    "AbaloneEval": "Processing (AWS)", "AbaloneMSECond": "Condition (AWS)",
    "AbaloneRegisterModel": "RegisterModel (AWS)", "AbaloneCreateModel": "Model (AWS)",
    "AbaloneTransform": "Transform (AWS)", "AbaloneMSEFail": "fail",
}
AWS_STEPS = [name for name, kind in ABALONE_KINDS.items() if kind.endswith("(AWS)")]
IF_STEPS = ["AbaloneRegisterModel", "AbaloneCreateModel", "AbaloneTransform"]
ELSE_STEPS = ["AbaloneMSEFail"]
# The data flow SageMaker derives from property references, with the short property names
# the edges show ("train", not "AbaloneProcess.train").
DATA_EDGES = {
    "AbaloneProcess-AbaloneTrain": "train, validation",
    "AbaloneProcess-AbaloneEval": "test",
    "AbaloneTrain-AbaloneEval": "ModelArtifacts",
    "AbaloneEval-AbaloneMSECond": "EvaluationReport",
    "AbaloneTrain-AbaloneRegisterModel": "ModelArtifacts",
    "AbaloneTrain-AbaloneCreateModel": "ModelArtifacts",
    "AbaloneCreateModel-AbaloneTransform": "ModelName",
}
BRANCH_EDGES = {f"AbaloneMSECond-{name}": "True" for name in IF_STEPS} | {
    f"AbaloneMSECond-{name}": "False" for name in ELSE_STEPS}
LEGEND = {  # the legend's kind -> the SageMaker type its tooltip names
    "fail": "Fail", "Condition (AWS)": "Condition", "Model (AWS)": "Model",
    "Processing (AWS)": "Processing", "RegisterModel (AWS)": "RegisterModel",
    "Training (AWS)": "Training", "Transform (AWS)": "Transform",
}

KERNEL_TIMEOUT = 60_000   # ms: the kernel starts and becomes Idle
RUN_TIMEOUT = 120_000     # ms: Run All of the notebook (a few seconds; slow machines are slower)
UI_TIMEOUT = 15_000       # ms: a click answered by the kernel, a repaint

# The drawing's geometry in user units of the SVG: every step's outline and text lines, every
# edge label, and the branch clusters' outlines.
GEOMETRY = """
svg => {
  const box = el => { const b = el.getBBox(); return {x: b.x, y: b.y, w: b.width, h: b.height}; };
  const steps = {}, labels = {}, clusters = {};
  for (const g of svg.querySelectorAll('g[data-step]')) {
    const outline = g.querySelector('polygon, path');
    steps[g.dataset.step] = {
      shape: box(outline),
      texts: [...g.querySelectorAll('text')].filter(t => t.textContent.trim())
        .map(t => ({role: t.dataset.role, text: t.textContent, ...box(t)})),
    };
  }
  for (const g of svg.querySelectorAll('g[data-edge]')) {
    const text = g.querySelector('text');
    if (text) labels[g.dataset.edge] = {text: text.textContent, ...box(text)};
  }
  for (const g of svg.querySelectorAll('g.cluster')) {
    clusters[g.id] = {...box(g.querySelector('path, polygon')), label: g.querySelector('text').textContent};
  }
  return {steps, labels, clusters};
}
"""


def cell(page, index: int):
    return page.locator(".jp-Notebook .jp-CodeCell").nth(index)








def inside(inner: dict, outer: dict, slack: float = 0.5) -> bool:
    return (inner["x"] >= outer["x"] - slack and inner["y"] >= outer["y"] - slack
            and inner["x"] + inner["w"] <= outer["x"] + outer["w"] + slack
            and inner["y"] + inner["h"] <= outer["y"] + outer["h"] + slack)


def overlap(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def flat_steps(steps: list[dict]) -> dict[str, dict]:
    """A definition's steps by name, the condition's branch steps included."""
    out = {}
    for step in steps:
        out[step["Name"]] = step
        if step["Type"] == "Condition":
            out |= flat_steps(step["Arguments"].get("IfSteps", []))
            out |= flat_steps(step["Arguments"].get("ElseSteps", []))
    return out


def write_notebook(root: Path) -> None:
    import nbformat

    shutil.copyfile(FIXTURES / "abalone.json", root / ABALONE_FILE)
    shutil.copyfile(FIXTURES / "checks_emr_tuning.json", root / EMR_FILE)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / NOTEBOOK)


@pytest.fixture(scope="module")
def definition_page(chromium, lab_server, artifacts_dir):
    """The notebook, open in JupyterLab and run with Run All (which stops at the cell that
    tries to run the AWS-only steps)."""
    from playwright.sync_api import expect

    write_notebook(lab_server.root)
    context, page = new_lab_page(chromium, lab_server)
    errors = watch_errors(page)
    try:
        open_idle(page, lab_server, NOTEBOOK, len(CELLS), KERNEL_TIMEOUT)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
        try:
            expect(cell(page, RUN_CELL).locator(".jp-InputPrompt")).to_have_text(
                re.compile(r"^\s*\[\d+\]:\s*$"), timeout=RUN_TIMEOUT)
            expect(cell(page, RUN_CELL).locator(".jp-OutputArea")).to_contain_text(
                "need AWS", timeout=UI_TIMEOUT)
        except AssertionError as exc:
            page.screenshot(path=artifacts_dir / "definition-run-all-failed.png", full_page=True)
            raise AssertionError(f"Run All did not reach the run cell:\n{outputs_text(page)}\n"
                                 f"page errors: {errors}\nserver log:\n{lab_server.log_tail()}") from exc
        yield SimpleNamespace(page=page, errors=errors)
    finally:
        context.close()


def widget_of(page, index: int):
    """The cell's live widget (its static picture hidden: one DAG on the page per cell)."""
    return one_live_dag(cell(page, index), UI_TIMEOUT)


def test_abalone_definition_drawn(definition_page, artifacts_dir):
    from playwright.sync_api import expect

    page = definition_page.page
    widget = widget_of(page, ABALONE_CELL)
    svg = widget.locator("svg.jp-dag")

    # Header: the definition's name, never run.
    expect(widget.locator(".jp-pipeline-name")).to_have_text("abalone-sagemaker")
    expect(widget.locator(".jp-pipeline-header .jp-pipeline-badge")).to_have_text("Not run")
    expect(widget.locator(".jp-pipeline-count")).to_have_text(f"0/{len(ABALONE_KINDS)} steps")
    expect(widget.locator(".jp-pipeline-failure")).to_be_hidden()

    # Every step is a node, AWS-only ones drawn as such with their SageMaker type.
    expect(svg.locator("g[data-step]")).to_have_count(len(ABALONE_KINDS))
    for name, kind in ABALONE_KINDS.items():
        node = step_node(svg, name)
        expect(node).to_have_attribute("data-kind", "fail" if name in ELSE_STEPS else "aws")
        expect(node).to_have_attribute("data-status", "Pending")
        expect(node.locator('text[data-role="name"]')).to_have_text(name)
        expect(node.locator('text[data-role="kind"]')).to_have_text(kind)
        expect(node.locator('text[data-role="status"]')).to_have_text("Pending")

    # The edges: the data flow SageMaker derives from property references, with short
    # property names as labels, and the condition's branches.
    expect(svg.locator("g[data-edge]")).to_have_count(len(DATA_EDGES) + len(BRANCH_EDGES))
    for edge, label in (DATA_EDGES | BRANCH_EDGES).items():
        expect(svg.locator(f'g[data-edge="{edge}"] text')).to_have_text(label)
    labels = svg.locator("g[data-edge] text").all_text_contents()
    assert not [t for t in labels if "." in t or "Steps" in t], f"edge labels with a step's path: {labels}"

    # The branch clusters.
    expect(svg.locator("g#cluster-if-AbaloneMSECond > text")).to_have_text("AbaloneMSECond: if steps")
    expect(svg.locator("g#cluster-else-AbaloneMSECond > text")).to_have_text(
        "AbaloneMSECond: else steps")

    # The parameter note lists the definition's parameters with their defaults.
    note = svg.locator("g#parameters text").all_text_contents()
    assert "MseThreshold: Float = 6.0" in note and "ProcessingInstanceCount: Integer = 1" in note, note
    assert len(note) == 1 + 7, note

    # The legend lists the kinds drawn, with the SageMaker type of each.
    items = widget.locator(".jp-pipeline-legend-item")
    expect(items).to_have_count(len(LEGEND))
    shown = {items.nth(i).inner_text().strip(): items.nth(i).get_attribute("title")
             for i in range(items.count())}
    assert shown == {kind: f"SageMaker {t} step" for kind, t in LEGEND.items()}, shown
    for i in range(items.count()):  # every item has an icon that draws something
        assert items.nth(i).locator(".jp-pipeline-legend-icon svg > *").count() >= 1

    # Geometry (SVG user units): branch steps inside their cluster and only there, no two
    # nodes overlapping, every text line inside its node, edge labels clear of the nodes.
    geo = svg.evaluate(GEOMETRY)
    clusters = geo["clusters"]
    for cluster_id, members in (("cluster-if-AbaloneMSECond", IF_STEPS),
                                ("cluster-else-AbaloneMSECond", ELSE_STEPS)):
        for name, drawn in geo["steps"].items():
            assert inside(drawn["shape"], clusters[cluster_id]) == (name in members), (
                f"{name} {'outside' if name in members else 'inside'} {cluster_id}", drawn, clusters)
    names = list(geo["steps"])
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not overlap(geo["steps"][a]["shape"], geo["steps"][b]["shape"]), f"{a} overlaps {b}"
    for name, drawn in geo["steps"].items():
        for text in drawn["texts"]:
            assert inside(text, drawn["shape"]), f"{name}: {text['role']} line {text['text']!r} overflows"
    for edge, label in geo["labels"].items():
        for name, drawn in geo["steps"].items():
            assert not overlap(label, drawn["shape"]), f"label {label['text']!r} of {edge} covers {name}"
    edges = list(geo["labels"])
    for i, a in enumerate(edges):
        for b in edges[i + 1:]:
            assert not overlap(geo["labels"][a], geo["labels"][b]), f"the labels of {a} and {b} overlap"

    # Drawn at a readable size: the 11-unit text is not shrunk much below 11 px on the page.
    scale = svg.evaluate("s => s.getBoundingClientRect().width / s.viewBox.baseVal.width")
    assert scale >= 0.75, f"the drawing is scaled down to {scale:.2f}"
    # ... and shown whole: no horizontal scrolling inside the widget.
    graph = widget.locator(".jp-pipeline-graph")
    assert graph.evaluate("g => g.scrollWidth <= g.clientWidth + 1"), graph.evaluate(
        "g => [g.scrollWidth, g.clientWidth]")

    screenshot(page, widget, artifacts_dir / "definition-view.png")
    assert not definition_page.errors, f"JavaScript errors on the page: {definition_page.errors}"


def test_details_show_step_json(definition_page, artifacts_dir):
    from playwright.sync_api import expect

    page = definition_page.page
    widget = widget_of(page, ABALONE_CELL)
    definition = flat_steps(json.loads((FIXTURES / "abalone.json").read_text())["Steps"])

    details = widget.locator('[data-details-for="AbaloneTrain"]')
    expect(widget.locator("[data-details-for]")).to_have_count(0)
    step_node(widget, "AbaloneTrain").click()
    expect(details).to_be_visible(timeout=UI_TIMEOUT)
    head = details.locator(".jp-pipeline-details-head")
    expect(head.locator("strong")).to_have_text("AbaloneTrain")
    expect(head.locator(".jp-pipeline-kind")).to_have_text("Training (AWS)")
    expect(head.locator(".jp-pipeline-badge")).to_have_text("Pending")
    code = details.locator("section", has=page.locator("h4", has_text=re.compile(r"^Code$"))).locator("pre")
    expect(code).to_contain_text('"TrainingImage"')
    assert json.loads(code.inner_text()) == definition["AbaloneTrain"]
    expect(step_node(widget, "AbaloneTrain")).to_have_class(re.compile(r"\bjp-selected\b"))
    screenshot(page, widget, artifacts_dir / "definition-view-details.png")

    # Another step: the condition shows its own JSON (its conditions; branches are the clusters).
    step_node(widget, "AbaloneMSECond").click()
    details = widget.locator('[data-details-for="AbaloneMSECond"]')
    expect(details).to_be_visible(timeout=UI_TIMEOUT)
    expect(details.locator(".jp-pipeline-kind")).to_have_text("Condition (AWS)")
    shown = json.loads(details.locator("pre.jp-pipeline-code").inner_text())
    assert shown["Name"] == "AbaloneMSECond" and shown["Type"] == "Condition"
    assert shown["Arguments"]["Conditions"] == definition["AbaloneMSECond"]["Arguments"]["Conditions"]
    expect(step_node(widget, "AbaloneTrain")).not_to_have_class(re.compile(r"\bjp-selected\b"))

    # The fail step was translated into a local fail step: its code is the message it raises.
    step_node(widget, "AbaloneMSEFail").click()
    details = widget.locator('[data-details-for="AbaloneMSEFail"]')
    expect(details).to_be_visible(timeout=UI_TIMEOUT)
    expect(details.locator(".jp-pipeline-kind")).to_have_text("fail")
    expect(details.locator("pre.jp-pipeline-code")).to_have_text(
        re.compile(r"Execution failed due to MSE >.*MseThreshold"))

    close_details(widget, "AbaloneMSEFail")
    assert not definition_page.errors, f"JavaScript errors on the page: {definition_page.errors}"


def test_emr_tuning_definition_drawn(definition_page, artifacts_dir):
    from playwright.sync_api import expect

    page = definition_page.page
    widget = widget_of(page, EMR_CELL)
    svg = widget.locator("svg.jp-dag")
    kinds = {"EmrPrepare": "EMR (AWS)", "DataQualityCheck": "QualityCheck (AWS)",
             "DataBiasCheck": "ClarifyCheck (AWS)", "ChurnTuning": "Tuning (AWS)",
             "CheckTuningResult": "Condition (AWS)", "PromoteBestModel": "Lambda (AWS)",
             "TuningTooWeak": "fail"}
    expect(svg.locator("g[data-step]")).to_have_count(len(kinds))
    for name, kind in kinds.items():
        node = step_node(svg, name)
        expect(node).to_have_attribute("data-kind", "fail" if kind == "fail" else "aws")
        expect(node.locator('text[data-role="kind"]')).to_have_text(kind)
    # DependsOn becomes an ordering edge; property references become data edges.
    for edge in ("EmrPrepare-DataQualityCheck", "EmrPrepare-DataBiasCheck",
                 "DataQualityCheck-ChurnTuning", "DataBiasCheck-ChurnTuning"):
        expect(svg.locator(f'g[data-edge="{edge}"] text')).to_have_text("after")
    expect(svg.locator('g[data-edge="ChurnTuning-CheckTuningResult"] text')).to_have_text(
        "HyperParameterTuningJobStatus, TrainingJobSummaries")
    expect(svg.locator('g[data-edge="ChurnTuning-PromoteBestModel"] text')).to_have_text("BestTrainingJob")
    expect(svg.locator('g[data-edge="CheckTuningResult-PromoteBestModel"] text')).to_have_text("True")
    expect(svg.locator('g[data-edge="CheckTuningResult-TuningTooWeak"] text')).to_have_text("False")
    expect(widget.locator(".jp-pipeline-legend-item")).to_have_count(len(set(kinds.values())))
    screenshot(page, widget, artifacts_dir / "definition-view-emr-tuning.png")


def test_run_of_aws_steps_fails_clearly(definition_page):
    from playwright.sync_api import expect

    page = definition_page.page
    run_cell = cell(page, RUN_CELL)
    output = run_cell.locator(".jp-OutputArea")
    # The load reports what it read; the run names every AWS-only step and why it cannot run.
    expect(output).to_contain_text(f"Loaded pipeline abalone-sagemaker from {ABALONE_FILE}: 8 steps, "
                                   "7 parameters; 7 only run on AWS (drawn, not run).")
    error = run_cell.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    expect(error).to_contain_text("PipelineError")
    message = error.inner_text()
    named = re.search(r"Steps? (.*?) need AWS", message, re.S)
    assert named, message
    assert re.findall(r"`(\w+)`", named.group(1)) == AWS_STEPS, message
    assert "(Training)" in named.group(1) and "(RegisterModel)" in named.group(1), message
    assert "AbaloneMSEFail" not in message, message
    # A failed run shows no live widget (nothing ran).
    expect(run_cell.locator(".jp-pipeline")).to_have_count(0)

    # The kernel survived: a later cell runs (Run All stopped at the error, so run it now).
    later = cell(page, LATER_CELL)
    expect(later.locator(".jp-InputPrompt")).to_have_text(re.compile(r"^\s*\[ \]:\s*$"))
    later.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+Enter")
    expect(later.locator(".jp-OutputArea")).to_have_text(re.compile(r"kernel alive: 42"),
                                                         timeout=UI_TIMEOUT)
    expect(later.locator(".jp-InputPrompt")).to_have_text(re.compile(r"^\s*\[\d+\]:\s*$"))
    run_count = int(re.search(r"\d+", run_cell.locator(".jp-InputPrompt").inner_text()).group())
    later_count = int(re.search(r"\d+", later.locator(".jp-InputPrompt").inner_text()).group())
    assert later_count > run_count
    expect(page.locator("#jp-main-statusbar")).to_contain_text("| Idle", timeout=UI_TIMEOUT)
    assert not definition_page.errors, f"JavaScript errors on the page: {definition_page.errors}"
