"""`processing` (SageMaker Processing) and `training` (SageMaker Training) steps."""

from __future__ import annotations

from ..errors import ContractError, DefinitionError
from .base import Kind, RunContext, Step, StepOutcome


class ProcessingKind(Kind):
    """Any code: reads its inputs, assigns its outputs."""

    name = "processing"
    sagemaker_type = "Processing"


class TrainingKind(Kind):
    """Like processing, but must output a fitted estimator (an object with ``predict``)."""

    name = "training"
    sagemaker_type = "Training"
    options = {"model": "model"}

    def check_step(self, step: Step) -> None:
        model = step.options["model"]
        if model not in step.outputs:
            raise DefinitionError(
                f"Training step `{step.name}` must output its fitted estimator as `{model}`, but its "
                f"outputs are {list(step.outputs) or 'none'}. Assign `{model} = ...` in the cell, or "
                "name the estimator's output with --model NAME."
            )

    def run(self, step: Step, ns: dict, ctx: RunContext) -> StepOutcome:
        outcome = super().run(step, ns, ctx)
        check_fitted(step.name, step.options["model"], outcome.outputs[step.options["model"]])
        return outcome


def check_fitted(step: str, name: str, model) -> None:
    if not callable(getattr(model, "predict", None)):
        raise ContractError(
            f"Step `{step}` should output a fitted estimator as `{name}`, but `{name}` is a "
            f"{type(model).__name__}, which has no predict method. Assign the fitted model (e.g. "
            f"`{name} = GradientBoostingRegressor().fit(X, y)`)."
        )
    try:
        from sklearn.base import BaseEstimator
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return
    if isinstance(model, BaseEstimator):
        try:
            check_is_fitted(model)
        except NotFittedError:
            raise ContractError(
                f"Step `{step}` outputs `{name}` ({type(model).__name__}) but it is not fitted. "
                f"Call `{name}.fit(X, y)` in the step before it ends."
            ) from None
