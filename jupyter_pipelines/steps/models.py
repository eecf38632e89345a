"""`register-model` (SageMaker RegisterModel), `create-model` (SageMaker Model) and
`transform` (SageMaker Transform) steps.

Their cell may hold code that runs first (its assignments stay private to the step); the kind's
action then takes the names it needs from the step's namespace. Each makes one output of its
own: a `ModelPackage`, a `ModelEntity` and the ``predictions``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import registry
from ..errors import ContractError, DefinitionError, StepFailed
from ..parameters import check_name
from .base import Kind, RunContext, Step, StepOutcome, execute, user_traceback
from .processing import check_fitted


def _required(step_name: str, kind: str, opts: dict, *names: str) -> None:
    for name in names:
        if not opts.get(name):
            flag = "--" + name.replace("_", "-")
            raise DefinitionError(
                f"Step `{step_name}` is a {kind} step and needs {flag} (option `{name}`); it was "
                "not given."
            )


def _lookup(step: Step, ns: dict, name: str, what: str) -> Any:
    if name not in ns:
        raise ContractError(
            f"Step `{step.name}` needs `{name}` as its {what}, but no input, parameter or "
            f"assignment in the cell is called `{name}`."
        )
    return ns[name]


class RegisterModelKind(Kind):
    name = "register-model"
    sagemaker_type = "RegisterModel"
    # Cached like any step: the same model with the same metrics and approval status is not
    # registered twice (the stored result names the version that holds it); --no-cache forces
    # a new version.
    needs_input_digests = True
    runs_in_kernel = True  # the model registry is the kernel's (its state folder), never a worker's
    options = {"model": None, "group": None, "approval_status": "PendingManualApproval",
               "metrics": None}
    produces = "model_package"

    def check_options(self, name: str, opts: dict) -> dict:
        _required(name, self.name, opts, "model", "group")
        check_name(opts["group"], "Model package group")
        status = opts["approval_status"]
        if status not in registry.APPROVAL_STATUSES and not str(status).isidentifier():
            raise DefinitionError(
                f"Step `{name}`: --approval-status {status!r} is neither one of "
                f"{list(registry.APPROVAL_STATUSES)} nor the name of a parameter."
            )
        return opts

    def extra_reads(self, opts: dict, writes: tuple[str, ...]) -> list[str]:
        names = [opts["model"], opts["metrics"]]
        if opts["approval_status"] not in registry.APPROVAL_STATUSES:
            names.append(opts["approval_status"])
        return [n for n in names if n and n not in writes]

    def run(self, step: Step, ns: dict, ctx: RunContext) -> StepOutcome:
        execute(step, ns)
        opts = step.options
        model = _lookup(step, ns, opts["model"], "model (--model)")
        check_fitted(step.name, opts["model"], model)
        status = opts["approval_status"]
        if status not in registry.APPROVAL_STATUSES:
            status = _lookup(step, ns, status, "approval status (--approval-status)")
            if status not in registry.APPROVAL_STATUSES:
                raise ContractError(
                    f"Step `{step.name}`: the approval status `{opts['approval_status']}` is "
                    f"{status!r}; it must be one of {list(registry.APPROVAL_STATUSES)}."
                )
        metrics = _lookup(step, ns, opts["metrics"], "metrics (--metrics)") if opts["metrics"] else None
        package = registry.register(
            opts["group"], model, approval_status=status, metrics=metrics,
            execution_id=ctx.execution_id, step_name=step.name, home=ctx.home,
            input_digests=ns.get("__digests__") or registry.digest_inputs(
                {n: ns[n] for n in step.reads if n in ns}),
        )
        meta = {"RegisterModel": {"Group": package.group, "Version": package.version,
                                  "ModelApprovalStatus": package.approval_status}}
        return StepOutcome({step.outputs[0]: package}, meta)


@dataclass(frozen=True)
class ModelEntity:
    """A model packaged with its inference function, ready for batch transform."""

    name: str
    model: Any
    predict_fn: Callable[[Any, Any], Any] | None = None

    def predict(self, data: Any) -> Any:
        if self.predict_fn is not None:
            return self.predict_fn(self.model, data)
        return self.model.predict(data)

    def __repr__(self) -> str:
        how = "custom predict(model, data)" if self.predict_fn else "model.predict"
        return f"ModelEntity({self.name!r}, {type(self.model).__name__}, {how})"


class CreateModelKind(Kind):
    name = "create-model"
    sagemaker_type = "Model"
    options = {"model": None}
    produces = "model_entity"

    def check_options(self, name: str, opts: dict) -> dict:
        _required(name, self.name, opts, "model")
        return opts

    def extra_reads(self, opts: dict, writes: tuple[str, ...]) -> list[str]:
        return [opts["model"]] if opts["model"] not in writes else []

    def run(self, step: Step, ns: dict, ctx: RunContext) -> StepOutcome:
        execute(step, ns)
        model = _lookup(step, ns, step.options["model"], "model (--model)")
        check_fitted(step.name, step.options["model"], model)
        defines_predict = any(  # `def predict(...)` or `predict = ...` in the cell
            (isinstance(s, ast.FunctionDef) and s.name == "predict")
            or (isinstance(s, ast.Assign) and any(getattr(t, "id", None) == "predict" for t in s.targets))
            for s in ast.parse(step.code).body
        )
        if defines_predict and not callable(ns["predict"]):
            raise ContractError(
                f"Step `{step.name}` assigns `predict`, but it is a {type(ns['predict']).__name__}; "
                "it must be a function predict(model, data)."
            )
        entity = ModelEntity(step.name, model, ns["predict"] if defines_predict else None)
        return StepOutcome({step.outputs[0]: entity})


class TransformKind(Kind):
    name = "transform"
    sagemaker_type = "Transform"
    options = {"model": None, "data": None, "batch_size": 1024, "instance_count": 1}
    produces = "predictions"

    def check_options(self, name: str, opts: dict) -> dict:
        _required(name, self.name, opts, "model", "data")
        for option, flag in (("batch_size", "--batch-size"), ("instance_count", "--instance-count")):
            value = opts[option]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DefinitionError(
                    f"Step `{name}`: {flag} must be a positive whole number; got {value!r}."
                )
        return opts

    def split(self, step: Step, ns: dict) -> list[dict]:
        """The namespaces of the parts the run spreads over the executor: the rows in
        ``instance_count`` contiguous slices (SageMaker's instance count), or just ``ns``."""
        count, name = step.options.get("instance_count", 1), step.options["data"]
        data = ns.get(name)
        if count <= 1 or not hasattr(data, "__len__") or not hasattr(data, "__getitem__") or len(data) < 2:
            return [ns]
        rows = data.iloc if hasattr(data, "iloc") else data
        parts = min(count, len(data))
        bounds = [round(i * len(data) / parts) for i in range(parts + 1)]
        return [{**ns, name: rows[a:b], "__row_offset__": a}
                for a, b in zip(bounds, bounds[1:], strict=False)]

    def merge(self, step: Step, parts: list[StepOutcome]) -> StepOutcome:
        """One outcome from the parts' outcomes, predictions in the rows' order."""
        import numpy as np

        output = step.outputs[0]
        values = [part.outputs[output] for part in parts]
        if hasattr(values[0], "iloc"):
            import pandas as pd

            merged = pd.concat(values)
        else:
            merged = np.concatenate(values)
        rows = sum(part.metadata["Transform"]["Rows"] for part in parts)
        return StepOutcome({output: merged}, {"Transform": {
            "Rows": rows, "BatchSize": step.options["batch_size"], "InstanceCount": len(parts)}})

    def extra_reads(self, opts: dict, writes: tuple[str, ...]) -> list[str]:
        return [opts["data"]] if opts["data"] not in writes else []

    def step_refs(self, opts: dict) -> list[str]:
        return [opts["model"]]

    def run(self, step: Step, ns: dict, ctx: RunContext) -> StepOutcome:
        execute(step, ns)
        entity = ns["__refs__"][step.options["model"]]
        data = _lookup(step, ns, step.options["data"], "data (--data)")
        if not hasattr(data, "__len__") or not hasattr(data, "__getitem__"):
            raise ContractError(
                f"Step `{step.name}`: --data `{step.options['data']}` is a {type(data).__name__}; "
                "a transform needs a DataFrame, an array or another sequence of rows."
            )
        predictions = batch_predict(step.name, entity, data, step.options["batch_size"],
                                    ns.get("__row_offset__", 0))
        return StepOutcome({step.outputs[0]: predictions},
                           {"Transform": {"Rows": len(data), "BatchSize": step.options["batch_size"]}})


def batch_predict(step: str, entity: ModelEntity, data: Any, size: int, offset: int = 0) -> Any:
    """Predictions batch by batch; ``offset`` is the position of ``data``'s first row in the
    whole input (a part of a spread transform), so messages name the real rows."""
    import numpy as np

    rows = data.iloc if hasattr(data, "iloc") else data
    parts = []
    for start in range(0, len(data), size):
        batch = rows[start:start + size]
        try:
            out = np.asarray(entity.predict(batch))
        except Exception as exc:
            raise StepFailed(
                f"Step `{step}` raised {type(exc).__name__}: {exc} in the model's predict (rows "
                f"{offset + start}..{offset + start + len(batch) - 1})",
                user_traceback(exc, f"<step {entity.name}>"),
            ) from exc
        if out.ndim == 0 or len(out) != len(batch):
            raise ContractError(
                f"Step `{step}`: the model returned {out.size if out.ndim else 'a single value'} "
                f"predictions for a batch of {len(batch)} rows (rows {offset + start}.."
                f"{offset + start + len(batch) - 1}); predictions must be one per row."
            )
        parts.append(out)
    values = np.concatenate(parts) if parts else np.empty(0)
    if hasattr(data, "iloc"):  # pandas: keep the rows' index
        import pandas as pd

        return pd.Series(values, index=data.index, name="prediction")
    return values
