"""Views of a pipeline: DOT text (pure), a static SVG through Graphviz, and plain text."""

from .static import DagView, to_dot, to_text

__all__ = ["DagView", "to_dot", "to_text"]
