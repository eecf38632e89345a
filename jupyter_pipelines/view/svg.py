"""The laid-out SVG, made addressable and repaintable.

`annotate` gives every step node the stable attributes tests and the widget rely on
(``data-step``, ``data-kind``, ``data-status``; ``data-role`` on its text lines) and
`paint` sets statuses, durations, outcomes and colours on a copy for a static picture
(what nbconvert and GitHub show). The widget's JavaScript does the same as `paint`, live.
A structure-only drawing (laid out from ``to_dot(..., status_lines=False)``) claims no status:
its nodes have no ``data-status`` and no status line.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ..graph import Graph
from .dot import COLOURS

SVG = "http://www.w3.org/2000/svg"
ET.register_namespace("", SVG)
ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
_ROLES = ("name", "kind", "status", "outcome")
_STRUCTURE_ROLES = ("name", "kind", "expression")
_SHAPES = {f"{{{SVG}}}{t}" for t in ("polygon", "path", "ellipse", "rect", "polyline")}


def annotate(svg: str, graph: Graph, *, status_lines: bool = True) -> str:
    """``svg`` laid out from `view.dot.to_dot` with the same ``status_lines``, made addressable."""
    root = ET.fromstring(_strip_prolog(svg))
    root.set("class", "jp-dag")
    root.attrib.pop("width", None)   # responsive: the widget and notebooks scale it
    root.attrib.pop("height", None)
    for group in root.iter(f"{{{SVG}}}g"):
        node_id = group.get("id", "")
        if node_id.startswith("step-") and node_id[5:] in graph.steps:
            step = graph.steps[node_id[5:]]
            group.set("data-step", step.name)
            group.set("data-kind", step.kind)
            texts = list(group.iter(f"{{{SVG}}}text"))
            for role, text in zip(_ROLES if status_lines else _STRUCTURE_ROLES, texts, strict=False):
                text.set("data-role", role)
            if texts:
                texts[0].set("font-weight", "bold")
            if not status_lines:
                continue
            group.set("data-status", "Pending")
            for role_text in texts[2:]:
                role_text.text = "Pending" if role_text.get("data-role") == "status" else ""
        elif group.get("class") == "edge" and node_id.startswith("edge-"):
            group.set("data-edge", node_id[5:])
    return ET.tostring(root, encoding="unicode")


def paint(svg: str, states: dict[str, dict], parameters: dict | None = None) -> str:
    """A copy of an annotated SVG showing ``states`` (step -> `view.state.step_state`) and the
    parameter values of the run (overridden ones in bold)."""
    root = ET.fromstring(svg)
    for group in root.iter(f"{{{SVG}}}g"):
        if group.get("id") == "parameters" and parameters:
            _paint_parameters(group, parameters)
        name = group.get("data-step")
        if name is None or name not in states:
            continue
        state = states[name]
        status = state["status"]
        group.set("data-status", status)
        if state.get("outcome"):
            group.set("data-outcome", state["outcome"])
        for child in group.iter():
            if child.tag in _SHAPES:
                child.set("fill", COLOURS.get(status, COLOURS["Pending"]))
            elif child.tag == f"{{{SVG}}}title" and state.get("failure"):
                child.text = f"{name}: {state['failure']}"
            elif child.get("data-role") == "status":
                child.text = state["label"]
            elif child.get("data-role") == "outcome":
                child.text = state.get("outcome_text") or ""
        if status in ("Skipped", "NotRun"):
            group.set("opacity", "0.45")
    return ET.tostring(root, encoding="unicode")


def _paint_parameters(group: ET.Element, values: dict) -> None:
    for text in group.iter(f"{{{SVG}}}text"):
        match = re.match(r"^([A-Za-z_]\w*): (\w+) = (.*)$", text.text or "")
        if match and match.group(1) in values:
            shown = repr(values[match.group(1)])
            if shown != match.group(3):
                text.text = f"{match.group(1)}: {match.group(2)} = {shown}"
                text.set("font-weight", "bold")


def _strip_prolog(svg: str) -> str:
    return re.sub(r"^.*?(<svg\b)", r"\1", svg, count=1, flags=re.S)
