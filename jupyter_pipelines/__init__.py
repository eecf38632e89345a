"""jupyter_pipelines: machine-learning pipelines written as notebook cells.

``%load_ext jupyter_pipelines`` registers ``%%parameters``, ``%%step`` and ``%pipeline``;
the same pipelines are built in Python with `Pipeline` and run headless with the
``jupyter-pipelines`` command.
"""

from __future__ import annotations

from .errors import PipelineError
from .execution import Execution
from .pipeline import Pipeline

__all__ = ["Execution", "Pipeline", "PipelineError", "current", "load_ipython_extension"]
__version__ = "0.1.0"

_magics = None


def load_ipython_extension(ipython) -> None:
    global _magics
    from .magics import PipelineMagics

    if _magics is None or _magics.shell is not ipython:
        if _magics is not None:
            _magics.session.close()
        _magics = PipelineMagics(ipython)
    ipython.register_magics(_magics)
    from .registry_magics import RegistryMagics

    ipython.register_magics(RegistryMagics)


def current() -> Pipeline:
    """The notebook's pipeline (after ``%load_ext jupyter_pipelines``)."""
    if _magics is None:
        raise PipelineError(
            "No notebook pipeline yet: run `%load_ext jupyter_pipelines` in the notebook first."
        )
    return _magics.session.pipeline
