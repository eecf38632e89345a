"""The static DAG: DOT text from the graph and the latest statuses, rendered to SVG by
Graphviz's ``dot`` when it is installed, with a plain-text drawing as the fallback."""

from __future__ import annotations

from html import escape

from ..execution import Execution, outcome_text
from ..pipeline import Pipeline

SHAPES = {"processing": "box", "training": "box3d", "condition": "diamond", "fail": "octagon",
          "register-model": "cylinder", "create-model": "component", "transform": "parallelogram"}
COLOURS = {"Pending": "#f2f2f2", "Executing": "#cfe2ff", "Succeeded": "#c8e6c9",
           "Cached": "#b3e5fc", "Failed": "#ffcdd2", "Stopped": "#ffe0b2",
           "Skipped": "#e0e0e0", "NotRun": "#fafafa"}


def to_dot(pipeline: Pipeline, execution: Execution | None = None):
    """A `graphviz.Digraph` of the pipeline; node colours show ``execution``'s statuses."""
    import graphviz

    graph = pipeline.graph()
    dot = graphviz.Digraph(pipeline.name, graph_attr={"rankdir": "TB", "fontname": "Helvetica"},
                           node_attr={"fontname": "Helvetica", "fontsize": "11", "style": "filled"},
                           edge_attr={"fontname": "Helvetica", "fontsize": "9"})
    for name, step in graph.steps.items():
        record = execution.steps.get(name) if execution else None
        status = record.status if record else "Pending"
        label = f"{name}\n{step.kind} · {status}"
        detail = outcome_text(record) if record else ""
        if detail:
            label += f"\n{detail[:60]}"
        dot.node(name, label, shape=SHAPES[step.kind], fillcolor=COLOURS.get(status, "#ffffff"),
                 id=f"step-{name}", tooltip=(record.failure_reason or "") if record else "")
    for edge in graph.edges:
        style = {"order": "dashed", "branch": "bold"}.get(edge.kind, "solid")
        dot.edge(edge.source, edge.target, label=edge.label or "", style=style)
    if pipeline.parameters:
        rows = "".join(f"<TR><TD ALIGN='LEFT'>{escape(p.name)}: {escape(p.type)} = "
                       f"{escape(repr(p.default))}</TD></TR>" for p in pipeline.parameters.values())
        dot.node("__parameters__", f"<<TABLE BORDER='0'><TR><TD><B>Parameters</B></TD></TR>{rows}</TABLE>>",
                 shape="note", fillcolor="#fffde7")
    return dot


def to_text(pipeline: Pipeline, execution: Execution | None = None) -> str:
    """The DAG as text: each step in run order with its kind, status and upstream edges."""
    graph = pipeline.graph()
    lines = [f"Pipeline {pipeline.name}: {len(graph.steps)} steps"]
    if pipeline.parameters:
        lines.append("Parameters: " + ", ".join(
            f"{p.name}: {p.type} = {p.default!r}" for p in pipeline.parameters.values()))
    incoming: dict[str, list[str]] = {n: [] for n in graph.steps}
    for e in graph.edges:
        how = {"data": e.label, "order": "after", "branch": f"if {e.label}"}[e.kind]
        incoming[e.target].append(f"{e.source} ({how})")
    for name in graph.order:
        record = execution.steps.get(name) if execution else None
        status = f" [{record.status}]" if record else ""
        lines.append(f"  {name} <{graph.steps[name].kind}>{status}")
        for src in incoming[name]:
            lines.append(f"      <- {src}")
    return "\n".join(lines)


class DagView:
    """What ``%pipeline show`` displays: SVG when Graphviz can draw it, else text."""

    def __init__(self, pipeline: Pipeline, execution: Execution | None = None):
        self.pipeline, self.execution = pipeline, execution

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        bundle = {"text/plain": to_text(self.pipeline, self.execution)}
        try:
            bundle["image/svg+xml"] = to_dot(self.pipeline, self.execution).pipe(
                format="svg", encoding="utf-8")
        except Exception:  # `dot` not installed: the text drawing stands alone
            pass
        return bundle

    def __repr__(self) -> str:
        return to_text(self.pipeline, self.execution)
