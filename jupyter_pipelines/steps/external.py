"""`aws` steps: steps of a SageMaker pipeline definition that only AWS can run (a processing
job's container, a Lambda function, a Clarify check...). They are drawn and inspected like
any step (their code is the step's JSON) but never run here."""

from __future__ import annotations

from types import MappingProxyType

from ..errors import ContractError
from .base import Kind, RunContext, Step, StepOutcome, _digest


def kind_label(step: Step) -> str:
    """How a step's kind reads in views: ``training``, or ``Lambda (AWS)``."""
    return f"{step.options['type']} (AWS)" if step.kind == "aws" else step.kind


class ExternalKind(Kind):
    name = "aws"
    sagemaker_type = ""  # each step's own, in options["type"]
    cacheable = False
    options = {"type": None, "if_steps": (), "else_steps": ()}

    def define(self, name, code, *, inputs, outputs, depends_on, options) -> Step:
        opts = {k: options.get(k, default) for k, default in self.options.items()}
        opts["if_steps"], opts["else_steps"] = tuple(opts["if_steps"]), tuple(opts["else_steps"])
        reads, outs = tuple(inputs or ()), tuple(outputs or ())
        return Step(name=name, kind=self.name, code=code, reads=reads, outputs=outs,
                    depends_on=tuple(depends_on or ()), options=MappingProxyType(opts),
                    digest=_digest(self.name, code, reads, outs, depends_on, opts))

    def run(self, step: Step, ns: dict, ctx: RunContext) -> StepOutcome:
        raise ContractError(needs_aws([step]))


def needs_aws(steps: list[Step]) -> str:
    named = ", ".join(f"`{s.name}` ({s.options['type']})" for s in steps)
    many = len(steps) > 1
    return (f"Step{'s' if many else ''} {named} need{'' if many else 's'} AWS: "
            f"{'they come' if many else 'it comes'} from a SageMaker pipeline definition and "
            f"{'hold' if many else 'holds'} container images, S3 locations or AWS resources, not "
            "Python code, so jupyter_pipelines can draw and inspect "
            f"{'them' if many else 'it'} but not run {'them' if many else 'it'}. Run the pipeline "
            f"in SageMaker, or rewrite {'each such step' if many else 'the step'} as a %%step cell.")
