"""Static views: the DAG as text (CLI, terminals) and as a painted SVG (nbconvert, GitHub,
``jupyter-pipelines show --svg``)."""

from __future__ import annotations

from ..execution import Execution
from ..graph import Graph
from ..parameters import Parameter
from ..steps.external import kind_label
from .dot import data_label, parameter_row, to_dot
from .render import layout
from .state import step_state
from .svg import annotate, paint


def structure_svg(name: str, parameters: dict[str, Parameter], graph: Graph,
                  renderer: str | None = None) -> str:
    """The laid-out, annotated SVG of a structure (cached by `layout`)."""
    return annotate(layout(to_dot(name, parameters, graph), renderer), graph)


def static_svg(name: str, parameters: dict[str, Parameter], graph: Graph,
               execution: Execution | None = None, renderer: str | None = None) -> str:
    svg = structure_svg(name, parameters, graph, renderer)
    steps = execution.steps if execution else {}
    values = execution.parameters if execution else None
    return paint(svg, {n: step_state(steps.get(n)) for n in graph.steps}, values)


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
