"""A `Pipeline` as a SageMaker-format pipeline definition (Version 2020-12-01).

Each local step becomes a step object of its SageMaker type whose ``Arguments`` carry, under
``JupyterPipelines``, what we need to run it (its kind, code, inputs with where each comes
from as a SageMaker reference, outputs and kind options), next to the SageMaker arguments
that say the same in SageMaker's own terms: a condition's ``Conditions``, a fail step's
``ErrorMessage``, a register-model step's ``ModelPackageGroupName`` and
``ModelApprovalStatus``, a transform's ``ModelName``. Branch steps nest in their condition's
``IfSteps``/``ElseSteps`` as SageMaker nests them; a step output a condition or fail message
reads is declared as a ``PropertyFiles`` entry of the step that makes it. Steps read from a
SageMaker definition (kind ``aws``) are written back as they were read.
"""

from __future__ import annotations

import json
from typing import Any

from ..durations import iso_duration
from ..errors import ExportError
from ..graph import Graph
from ..steps import KINDS, Step
from . import expressions
from .expressions import NotExpressible, Output

VERSION = "2020-12-01"
BLOCK = "JupyterPipelines"           # our part of a step's Arguments and of the Metadata
FORMAT = 1                           # the version of what BLOCK holds
RETRY_EXCEPTION = "JupyterPipelines.StepFailed"  # our retry policy: the step's code raised
DERIVED = {"condition": ("Conditions",), "fail": ("ErrorMessage",),
           "register-model": ("ModelPackageGroupName", "ModelApprovalStatus"),
           "transform": ("ModelName",)}


def to_definition(pipeline) -> dict[str, Any]:
    """The definition document (raises `ExportError` naming what cannot be expressed)."""
    graph = pipeline.graph()
    for cond, absent in graph.missing_branches.items():
        raise ExportError(f"Condition `{cond}` names branch step `{absent[0]}`, which does not "
                          "exist; define it (or fix the condition's --if/--else) before exporting.")
    property_files: dict[str, list[str]] = {}
    objects = {name: step_object(step, graph, pipeline.parameters, property_files)
               for name, step in graph.steps.items()}
    for producer, names in property_files.items():
        objects[producer].setdefault("PropertyFiles", []).extend(
            {"PropertyFileName": n, "OutputName": n, "FilePath": f"{n}.json"}
            for n in sorted(set(names)))  # sorted: the same whatever order steps were added in
    parent = _branch_parents(graph)
    for name, step in graph.steps.items():
        if_steps, else_steps = step.branches
        if if_steps or else_steps:
            args = objects[name].setdefault("Arguments", {})
            args["IfSteps"] = [objects[s] for s in if_steps]
            args["ElseSteps"] = [objects[s] for s in else_steps]
    doc: dict[str, Any] = {"Version": VERSION, "Metadata": _metadata(pipeline),
                           "Parameters": [_parameter(p) for p in pipeline.parameters.values()]}
    doc.update({k: v for k, v in pipeline.definition_extras.items() if k != "Metadata"})
    doc["Steps"] = [objects[n] for n in graph.steps if n not in parent]
    return doc


def _metadata(pipeline) -> dict:
    extras = pipeline.definition_extras.get("Metadata", {})
    block = {"FormatVersion": FORMAT, "PipelineName": pipeline.name,
             "Context": [[name, source] for name, source in pipeline.context.snippets]}
    return {**{k: v for k, v in extras.items() if k != BLOCK}, BLOCK: block}


def _parameter(p) -> dict:
    out: dict[str, Any] = {"Name": p.name, "Type": p.type}
    if p.default is not None:
        out["DefaultValue"] = p.default
    if p.enum_values is not None:
        if p.type != "String":
            raise ExportError(
                f"Parameter `{p.name}` is {p.type} with allowed values {list(p.enum_values)}; "
                "SageMaker allows EnumValues on String parameters only. Make it a String "
                "parameter or drop the allowed values.")
        out["EnumValues"] = list(p.enum_values)
    return out


def _branch_parents(graph: Graph) -> dict[str, str]:
    parent: dict[str, str] = {}
    for name, step in graph.steps.items():
        for member in step.branches[0] + step.branches[1]:
            if member in parent:
                raise ExportError(
                    f"Step `{member}` is a branch of both `{parent[member]}` and `{name}`; "
                    "SageMaker's format nests each step under one condition. Make it a branch of "
                    "one condition only.")
            parent[member] = name
    return parent


def step_object(step: Step, graph: Graph, parameters, property_files: dict[str, list[str]]) -> dict:
    if step.kind == "aws":
        obj = json.loads(step.code)
        for ref in _json_gets(obj):  # a property file of a local step it reads stays declared
            producer, _, name = ref.removeprefix("Steps.").partition(".PropertyFiles.")
            if name and producer in graph.steps and graph.steps[producer].kind != "aws":
                property_files.setdefault(producer, []).append(name)
        return obj
    obj: dict[str, Any] = {"Name": step.name, "Type": KINDS[step.kind].sagemaker_type}
    if step.display_name:
        obj["DisplayName"] = step.display_name
    if step.description:
        obj["Description"] = step.description
    args = sagemaker_arguments(step, graph, parameters, property_files)
    if not _says_it_all(step, args):
        args[BLOCK] = _block(step, graph, parameters)
    obj["Arguments"] = args
    if step.depends_on:
        obj["DependsOn"] = list(step.depends_on)
    cache: dict[str, Any] = {"Enabled": step.cache}
    if step.cache_expire is not None:
        cache["ExpireAfter"] = iso_duration(step.cache_expire)
    # SageMaker caches jobs, not conditions: a condition says so only when it is not the default
    if KINDS[step.kind].cacheable and (step.kind != "condition" or cache != {"Enabled": True}):
        obj["CacheConfig"] = cache
    if step.retry:
        backoff = step.retry_backoff
        obj["RetryPolicies"] = [{
            "ExceptionType": [RETRY_EXCEPTION],
            "IntervalSeconds": int(backoff) if backoff == int(backoff) else backoff,
            "BackoffRate": 2.0, "MaxAttempts": step.retry}]
    return obj


def sagemaker_arguments(step: Step, graph: Graph, parameters,
                        property_files: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The arguments SageMaker itself reads, derived from the step (see `DERIVED`)."""
    refer = _referrer(step, graph, parameters)
    opts = step.options
    try:
        if step.kind == "condition":
            args: dict[str, Any] = {"Conditions": expressions.conditions(step.code, refer)}
        elif step.kind == "fail":
            args = {"ErrorMessage": expressions.error_message(step.code, refer)}
        elif step.kind == "register-model":
            status = opts["approval_status"]
            args = {"ModelPackageGroupName": opts["group"],
                    "ModelApprovalStatus": ({"Get": f"Parameters.{status}"}
                                            if status in parameters else status)}
        elif step.kind == "transform":
            args = {"ModelName": {"Get": f"Steps.{opts['model']}.ModelName"}}
        else:
            args = {}
    except NotExpressible as exc:
        what = "condition" if step.kind == "condition" else "message"
        raise ExportError(
            f"Step `{step.name}` cannot be exported to a definition JSON: in its {what} "
            f"`{step.code}`, {exc}. It runs here, but SageMaker's format cannot say it. "
            "Change the step, or export the pipeline as a Python script instead "
            "(`jupyter-pipelines export NOTEBOOK --format script`), which keeps any Python.") from None
    if property_files is not None:
        for ref in _json_gets(args):
            step_name, _, name = ref.removeprefix("Steps.").partition(".PropertyFiles.")
            property_files.setdefault(step_name, []).append(name)
    return args


def _says_it_all(step: Step, args: dict) -> bool:
    """A condition or fail step whose code is what its Conditions/ErrorMessage give back (the
    same syntax tree: quotes and spacing aside) needs no block: the definition then reads as
    the SageMaker SDK would write it, and is read back from SageMaker's arguments alone."""
    if step.kind not in ("condition", "fail"):
        return False
    import ast

    from ..source import analyze

    def resolve(ref: dict):
        if "Get" in ref:
            return ref["Get"].partition(".")[2], []
        inner = ref["Std:JsonGet"]
        return inner["PropertyFile"]["Get"].rpartition(".")[2], expressions.parse_path(inner["Path"])

    try:
        if step.kind == "condition":
            code = expressions.python_condition(args["Conditions"], resolve)
        else:
            code = expressions.python_message(args["ErrorMessage"], resolve)
    except NotExpressible:  # e.g. a message no f-string of this Python can spell
        return False
    same = ast.dump(ast.parse(code)) == ast.dump(ast.parse(step.code))
    return same and not step.outputs and step.reads == analyze(code).reads


def _json_gets(value: Any):
    """The ``Get`` of every JsonGet's PropertyFile below ``value``."""
    if isinstance(value, dict):
        inner = value.get("Std:JsonGet")
        if isinstance(inner, dict) and isinstance(inner.get("PropertyFile"), dict):
            yield inner["PropertyFile"]["Get"]
        for item in value.values():
            yield from _json_gets(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_gets(item)


def _referrer(step: Step, graph: Graph, parameters):
    inputs = graph.inputs.get(step.name, {})

    def refer(name: str):
        if name in parameters:
            return "parameter"
        makers = inputs.get(name, ())
        if len(makers) == 1:
            return Output(makers[0], name)
        if makers:
            raise NotExpressible(name, f"comes from {' or '.join(makers)} (whichever branch ran), "
                                 "and a JsonGet reads one step's property file")
        return None
    return refer


def _block(step: Step, graph: Graph, parameters) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for name in step.reads:
        makers = graph.inputs.get(step.name, {}).get(name, ())
        if name in parameters:
            inputs[name] = {"Get": f"Parameters.{name}"}
        elif makers:
            refs = [{"Get": f"Steps.{m}.{property_path(graph.steps[m], name)}"} for m in sorted(makers)]
            inputs[name] = refs[0] if len(refs) == 1 else refs
        else:
            inputs[name] = None  # an import or definition of the notebook, or a builtin
    options = {k: list(v) if isinstance(v, tuple) else v for k, v in step.options.items()
               if k not in ("if_steps", "else_steps")}
    block: dict[str, Any] = {"Kind": step.kind, "Code": step.code, "Inputs": inputs,
                             "Outputs": list(step.outputs)}
    if options:
        block["Options"] = options
    return block


def property_path(producer: Step, output: str) -> str:
    """Where SageMaker keeps a step's output, by the producer's type."""
    if producer.kind == "training":
        if output == producer.options["model"]:
            return "ModelArtifacts.S3ModelArtifacts"
        return "OutputDataConfig.S3OutputPath"
    return {"register-model": "ModelPackageArn", "create-model": "ModelName",
            "transform": "TransformOutput.S3OutputPath"}.get(
        producer.kind, f"ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri")
