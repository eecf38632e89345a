"""Where the editor draws each step: the positions Graphviz computes for the live DAG view's
DOT (`view.dot.to_dot`, with its status lines, so a node is as wide as its status and a
condition's outcome need), so the editor, the live view and the static SVG agree."""

from __future__ import annotations

import json

from ..graph import Graph
from ..view.dot import to_dot
from ..view.render import layout

_INCH = 72.0  # Graphviz sizes nodes in inches, places them in points


def positions(name: str, graph: Graph, renderer: str | None = None) -> tuple[dict, float, float]:
    """Step -> {x, y, w, h} (centre, points, origin top-left), and the drawing's width/height."""
    if not graph.steps:
        return {}, 0.0, 0.0
    doc = json.loads(layout(to_dot(name, {}, graph), renderer, "json"))
    _, _, width, height = (float(v) for v in doc["bb"].split(","))
    placed = {}
    for obj in doc.get("objects", []):
        if "pos" not in obj or obj.get("name") not in graph.steps:
            continue
        x, y = (float(v) for v in obj["pos"].split(","))
        placed[obj["name"]] = {"x": round(x, 1), "y": round(height - y, 1),
                               "w": round(float(obj["width"]) * _INCH, 1),
                               "h": round(float(obj["height"]) * _INCH, 1)}
    return placed, width, height
