"""Views of a pipeline: DOT text (pure), SVG laid out by Graphviz, the live widget, the
compact view of a step cell, and plain text."""

from __future__ import annotations

from .static import static_svg, structure_svg, to_text

__all__ = ["live_view", "static_svg", "structure_svg", "to_text"]


def live_view(pipeline=None, execution=None):
    """A `LiveView` of ``execution`` (its own graph) or of ``pipeline``'s current structure."""
    from .widget import LiveView

    if pipeline is None and execution is not None and execution.graph is not None:
        return LiveView(execution.pipeline_name, execution.parameter_defs, execution.graph, execution)
    return LiveView(pipeline.name, dict(pipeline.parameters), pipeline.graph(), execution)
