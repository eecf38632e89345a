"""DOT text for a pipeline's DAG (pure: no Graphviz needed to build it).

The text depends only on the pipeline's *structure*: status, duration and condition outcome
lines hold placeholders wide enough for any value, so Graphviz lays the graph out once per
change of the structure and a run only repaints it (`view.svg.paint`, or the widget in the
browser). Every step node gets the SVG id ``step-<name>``; the first text line is its name,
the second its kind, the third its status, and a condition's fourth line its outcome.

With ``status_lines=False`` the text is a structure-only drawing (``jupyter-pipelines show``,
the static picture of a pipeline that has not run): no placeholders, just each step's name
and kind, and a condition's expression as its third line.
"""

from __future__ import annotations

from ..graph import Graph
from ..parameters import Parameter

# One shape per kind (the legend in the widget shows the same), SageMaker type in brackets.
SHAPES = {"processing": "box", "training": "box3d", "condition": "hexagon", "fail": "octagon",
          "register-model": "cylinder", "create-model": "component", "transform": "parallelogram"}
COLOURS = {"Pending": "#eef0f3", "Executing": "#bfdbfe", "Succeeded": "#bbf7d0",
           "Cached": "#a5f3fc", "Failed": "#fecaca", "Stopped": "#fed7aa",
           "Skipped": "#e5e7eb", "NotRun": "#f9fafb"}
# Steps only AWS can run (read from a SageMaker definition) take the shape of their type.
TYPE_SHAPES = {"Processing": "box", "Training": "box3d", "Condition": "hexagon", "Fail": "octagon",
               "RegisterModel": "cylinder", "Model": "component", "Transform": "parallelogram"}
STATUS_PLACEHOLDER = "Succeeded · 0000.00s"  # the widest status line a node will show
FONT = "Helvetica,Arial,sans-serif"


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def outcome_placeholder(code: str) -> str:
    """As wide as the outcome line will be: ``mse 0000.0000 <= mse_threshold 0000.0000 → False``."""
    from ..steps.conditions import short_expression

    return f"{short_expression(code)} 0000.0000 0000.0000 → False"


def shape(step) -> str:
    return TYPE_SHAPES.get(step.options["type"], "box") if step.kind == "aws" else SHAPES[step.kind]


def data_label(name: str) -> str:
    """An edge's label for a data name; an AWS step's property ``Producer.property`` shows as
    ``property`` (a Python name never holds a dot)."""
    return name.split(".", 1)[1] if "." in name else name


def parameter_row(p: Parameter) -> str:
    return f"{p.name}: {p.type} = {p.default!r}" if p.default is not None else \
        f"{p.name}: {p.type} (required)"


def to_dot(name: str, parameters: dict[str, Parameter], graph: Graph, *,
           status_lines: bool = True) -> str:
    lines = [
        f"digraph {quote(name)} {{",
        f'  graph [rankdir=TB fontname="{FONT}" fontsize=11 nodesep=0.35 ranksep=0.45 '
        'bgcolor="transparent" labeljust=l]',
        f'  node [fontname="{FONT}" fontsize=11 style="filled,rounded" fillcolor="{COLOURS["Pending"]}" '
        'color="#475569" penwidth=1.2 margin="0.15,0.06"]',
        f'  edge [fontname="{FONT}" fontsize=9 color="#64748b" fontcolor="#334155" arrowsize=0.7]',
    ]
    placed = _clusters(graph, lines, status_lines)
    for name, step in graph.steps.items():
        if name not in placed:
            lines.append("  " + _node(name, step, status_lines))
    lines += _edges(graph)
    if parameters:
        rows = [parameter_row(p) for p in parameters.values()]
        label = "Parameters\\l" + "".join(quote(r)[1:-1] + "\\l" for r in rows)
        lines.append(f'  "__parameters__" [id="parameters" shape=note style=filled '
                     f'fillcolor="#fefce8" color="#a16207" label="{label}"]')
    lines.append("}")
    return "\n".join(lines)


def _node(name: str, step, status_lines: bool) -> str:
    from ..steps.conditions import short_expression
    from ..steps.external import kind_label

    label = [name, kind_label(step)]
    if status_lines:
        label.append(STATUS_PLACEHOLDER)
        if step.kind == "condition":
            label.append(outcome_placeholder(step.code.strip()))
    elif step.kind == "condition":
        label.append(short_expression(step.code.strip()))
    drawn = shape(step)
    style = "filled" if drawn in ("cylinder", "parallelogram", "hexagon", "octagon", "component",
                                  "box3d") else "filled,rounded"
    style = quote(style + (",dashed" if step.kind == "aws" else ""))
    return (f"{quote(name)} [id={quote('step-' + name)} shape={drawn} style={style} "
            f"label={quote(chr(10).join(label))} tooltip={quote(name)}]")


def _clusters(graph: Graph, lines: list[str], status_lines: bool) -> set[str]:
    """Each condition's branches as labelled clusters ("if steps" / "else steps")."""
    placed: set[str] = set()
    for name, step in graph.steps.items():
        if not any(step.branches):
            continue
        for label, members in zip(("if steps", "else steps"), step.branches, strict=True):
            members = [m for m in members if m in graph.steps and m not in placed]
            if not members:
                continue
            kind = label.split()[0]
            lines.append(f"  subgraph {quote(f'cluster_{kind}_{name}')} {{")
            lines.append(f'    id={quote(f"cluster-{kind}-{name}")} label={quote(f"{name}: {label}")} '
                         'style="dashed,rounded" color="#94a3b8" fontcolor="#475569" fontsize=10')
            for member in members:
                lines.append("    " + _node(member, graph.steps[member], status_lines))
                placed.add(member)
            lines.append("  }")
    return placed


def _edges(graph: Graph) -> list[str]:
    """One edge per pair of steps; data edges labelled with the names that flow."""
    merged: dict[tuple[str, str], list] = {}
    for edge in graph.edges:
        merged.setdefault((edge.source, edge.target), []).append(edge)
    out = []
    for (source, target), edges in merged.items():
        kinds = {e.kind for e in edges}
        attrs = [f"id={quote(f'edge-{source}-{target}')}"]
        if "branch" in kinds:
            outcome = next(e.label for e in edges if e.kind == "branch")
            attrs += [f"label={quote(outcome)}", "style=bold",
                      f'color="{"#15803d" if outcome == "True" else "#b91c1c"}"',
                      f'fontcolor="{"#15803d" if outcome == "True" else "#b91c1c"}"']
        elif "data" in kinds:
            names = sorted({data_label(e.label) for e in edges if e.kind == "data"})
            attrs.append(f"label={quote(', '.join(names))}")
        else:
            attrs.append('style=dashed label="after"')
        out.append(f"  {quote(source)} -> {quote(target)} [{' '.join(attrs)}]")
    return out
