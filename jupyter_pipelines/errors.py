"""Every error jupyter_pipelines raises on purpose.

    PipelineError                  base; one paragraph saying what, where and how to fix
    ├── DefinitionError            the pipeline as written cannot run (raised when a step is
    │   │                          defined or when a run starts)
    │   ├── NameRuleError          a step or parameter name breaks the naming rule
    │   ├── ParameterError         a bad parameter default or override
    │   ├── GraphError             the steps do not form a valid DAG
    │   │   ├── CycleError         a -> b -> a
    │   │   ├── DuplicateOutputError   two steps produce the same output
    │   │   └── UnknownReferenceError  a step, input or parameter that does not exist
    │   ├── IsolationError         a step reads a kernel variable that is not an input
    │   └── ExportError            a step the SageMaker-format definition cannot express
    ├── RunError                   something went wrong while a step ran
    │   ├── ContractError          the step ran but broke its kind's contract
    │   ├── StepFailed             the user's code raised; carries the user's traceback
    │   └── ExecutionFailed        a fail step (or a failed step) ended the execution
    └── StateError                 the state folder or the store cannot be used (CLI exit 3):
        │                          a corrupt or read-only database, a path that is a file
        └── ArtifactError          a stored artifact cannot be returned as it was stored
            ├── ArtifactMissing    its file is gone
            └── ArtifactCorrupted  its bytes no longer match the digest they were stored under

Every error renders in IPython as its message alone (``_render_traceback_``): users see
what they did wrong, never our internals.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PipelineError(Exception):
    """Base class: the message is complete, one paragraph, ready for a user."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class DefinitionError(PipelineError):
    pass


class NameRuleError(DefinitionError):
    pass


class ExportError(DefinitionError):
    """The pipeline runs here but its definition JSON cannot say it faithfully."""


class ParameterError(DefinitionError):
    pass


class GraphError(DefinitionError):
    pass


class CycleError(GraphError):
    def __init__(self, path: list[str]):
        self.path = path
        super().__init__(
            f"The steps form a cycle: {' -> '.join(path)}. A pipeline must be a DAG: remove one of "
            "these dependencies (an input read from a downstream step, or a --depends-on)."
        )


class DuplicateOutputError(GraphError):
    pass


class UnknownReferenceError(GraphError):
    pass


class IsolationError(DefinitionError):
    pass


class RunError(PipelineError):
    pass


class ContractError(RunError):
    pass


class StepFailed(RunError):
    """The user's code raised. ``user_traceback`` shows the user's cell and line only."""

    def __init__(self, message: str, user_traceback: str = ""):
        self.user_traceback = user_traceback
        super().__init__(message)

    def _render_traceback_(self) -> list[str]:
        if self.user_traceback:
            return [self.user_traceback.rstrip("\n"), f"{type(self).__name__}: {self}"]
        return super()._render_traceback_()


class ExecutionFailed(RunError):
    pass


class StateError(PipelineError):
    """The state folder (history, registry, artifacts) cannot be used as it is."""


class ArtifactError(StateError):
    """A stored output cannot be given back: never returned wrong, always named."""


class ArtifactMissing(ArtifactError):
    pass


class ArtifactCorrupted(ArtifactError):
    pass


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """' Did you mean `x`?' for the closest candidates, or ''."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + " or ".join(f"`{c}`" for c in close) + "?"
