"""Static views: the DAG as text (CLI, terminals) and as a painted SVG (nbconvert, GitHub,
``jupyter-pipelines show --svg``).

What is drawn without a kernel is true: the picture of an execution shows its statuses,
durations and condition outcomes; the picture of a pipeline that has not run is a
structure-only drawing (names, kinds, a condition's expression) that claims no status.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from html import escape

from ..execution import Execution
from ..graph import Graph
from ..parameters import Parameter
from ..steps.external import kind_label
from .dot import data_label, parameter_row, to_dot
from .render import layout
from .state import header_state, step_state
from .svg import annotate, paint

STATIC_CLASS = "jp-pipeline-static"  # the static picture's HTML wrapper (widget.css hides it)


def structure_svg(name: str, parameters: dict[str, Parameter], graph: Graph,
                  renderer: str | None = None, *, status_lines: bool = True) -> str:
    """The laid-out, annotated SVG of a structure (cached by `layout`); with room for the
    status lines the widget paints, or (``status_lines=False``) a structure-only drawing."""
    dot = to_dot(name, parameters, graph, status_lines=status_lines)
    return annotate(layout(dot, renderer), graph, status_lines=status_lines)


def static_svg(name: str, parameters: dict[str, Parameter], graph: Graph,
               execution: Execution | None = None, renderer: str | None = None) -> str:
    """The picture of ``execution`` (its statuses painted), or without one a structure-only
    drawing. It keeps its natural size (``width``/``height`` in pt) for use as an image."""
    if execution is None:
        return _sized(structure_svg(name, parameters, graph, renderer, status_lines=False))
    svg = structure_svg(name, parameters, graph, renderer)
    states = {n: step_state(execution.steps.get(n)) for n in graph.steps}
    return _sized(paint(svg, states, execution.parameters))


def static_bundle(name: str, parameters: dict[str, Parameter], graph: Graph,
                  execution: Execution | None = None, renderer: str | None = None) -> dict:
    """The static picture as a display bundle: ``image/svg+xml`` (the SVG, with its ``data-*``
    attributes), and ``text/html``: a one-line caption (status, progress, failure reason) over
    the same SVG as an ``<img>`` data URI. An image, not inline SVG, because HTML sanitizers (an
    untrusted notebook in JupyterLab, GitHub's) drop ``<svg>`` tags but keep their text, which
    would show as a jumble of words; an image survives them, and needs nothing from the network."""
    svg = static_svg(name, parameters, graph, execution, renderer)
    head = header_state(execution, len(graph.steps))
    if execution is None:
        caption = f"<b>{escape(name)}</b> · {head['total']} steps, not run"
        alt = f"The DAG of pipeline {name}: {', '.join(graph.steps)} (not run)"
    else:
        caption = f"<b>{escape(name)}</b> · {escape(head['status'])} · {head['done']}/{head['total']} steps"
        if head["failure"]:
            caption += f" · Failure reason: {escape(head['failure'])}"
        shown = {n: step_state(execution.steps.get(n))["status"] for n in graph.steps}
        alt = (f"The DAG of pipeline {name}, execution {head['status']}: "
               + ", ".join(f"{n} {status}" for n, status in shown.items()))
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    html = (f'<div class="{STATIC_CLASS}" data-pipeline="{escape(name)}">'
            f'<div style="font-size:12px;margin:2px 0 4px">{caption}</div>'
            f'<img src="data:image/svg+xml;base64,{data}" alt="{escape(alt)}" '
            'style="max-width:100%;height:auto"></div>')
    return {"text/html": html, "image/svg+xml": svg}


def _sized(svg: str) -> str:
    """Give an annotated (responsive) SVG its natural size back, from its viewBox."""
    root = ET.fromstring(svg)
    box = (root.get("viewBox") or "").split()
    if len(box) == 4:
        root.set("width", f"{float(box[2]):g}pt")
        root.set("height", f"{float(box[3]):g}pt")
    return ET.tostring(root, encoding="unicode")


def to_text(name: str, parameters: dict[str, Parameter], graph: Graph,
            execution: Execution | None = None) -> str:
    """The DAG as text: each step in run order with its kind, status and upstream edges."""
    lines = [f"Pipeline {name}: {len(graph.steps)} steps"]
    if parameters:
        lines.append("Parameters: " + ", ".join(parameter_row(p) for p in parameters.values()))
    incoming: dict[str, list[str]] = {n: [] for n in graph.steps}
    for e in graph.edges:
        how = {"data": e.label and data_label(e.label), "order": "after",
               "branch": f"if {e.label}"}[e.kind]
        incoming[e.target].append(f"{e.source} ({how})")
    for step in graph.order:
        record = execution.steps.get(step) if execution else None
        status = f" [{record.status}]" if record else ""
        lines.append(f"  {step} <{kind_label(graph.steps[step])}>{status}")
        for src in incoming[step]:
            lines.append(f"      <- {src}")
    return "\n".join(lines)
