"""The drag-and-drop editor: edit commands on a `Pipeline` (`commands`), the cells that define
it (`cells`), where Graphviz places its steps (`layout`), and the canvas widget (`widget`)."""

from .commands import Edits, NeedsConfirmation

__all__ = ["Edits", "NeedsConfirmation", "editor"]


def editor(pipeline, **kwargs):
    """An `widget.Editor` (the canvas) on ``pipeline``."""
    from .widget import Editor

    return Editor(pipeline, **kwargs)
