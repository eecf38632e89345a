"""Typed steps. A `Step` is a frozen value: its name, kind, code and what it reads and writes.
Each kind (one module each) checks its definition when the step is made and its contract
when the step runs; kinds map one-to-one to SageMaker step types."""

from __future__ import annotations

from .base import Kind, RunContext, Step, StepOutcome
from .conditions import ConditionKind, FailKind
from .models import CreateModelKind, RegisterModelKind, TransformKind
from .processing import ProcessingKind, TrainingKind

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        ProcessingKind(), TrainingKind(), ConditionKind(), FailKind(),
        RegisterModelKind(), CreateModelKind(), TransformKind(),
    )
}

__all__ = ["KINDS", "Kind", "RunContext", "Step", "StepOutcome", "make_step"]


def make_step(name, code, kind="processing", *, inputs=None, outputs=None, depends_on=None,
              **options) -> Step:
    """Check a step definition and return the `Step` (raises `DefinitionError` subclasses)."""
    from ..errors import DefinitionError, did_you_mean
    from ..parameters import check_name

    check_name(name, "Step")
    if kind not in KINDS:
        raise DefinitionError(
            f"Step `{name}` has unknown kind {kind!r}.{did_you_mean(kind, KINDS)} The kinds are: "
            f"{', '.join(KINDS)}."
        )
    return KINDS[kind].define(
        name, code, inputs=inputs, outputs=outputs, depends_on=depends_on, options=options
    )
