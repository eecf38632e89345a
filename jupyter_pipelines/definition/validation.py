"""Validate a pipeline definition document (SageMaker's format, Version 2020-12-01).

Two layers, both reporting every problem with its JSON path (``$.Steps[3].Arguments...``):

* the JSON Schema shipped in the package (``schema.json``): the shape of the
  document, parameters, steps, conditions and references (``Get``, ``Std:JsonGet``,
  ``Std:Join``); step ``Arguments`` mirror AWS API requests and stay open;
* semantic checks the schema cannot express: step names unique across the whole pipeline
  (nested ``IfSteps``/``ElseSteps`` included), ``DependsOn`` naming existing steps, and
  ``{"Get": "Steps.X..."}`` / ``{"Get": "Parameters.Y"}`` / ``{"Get": "Execution.Z"}``
  naming existing steps, parameters and execution variables.

    validate(document)      raises DefinitionValidationError listing the problems
    validate_text(text)     the same for JSON text, JSON syntax errors included; returns the document
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jupyter_pipelines.errors import DefinitionError

from .schema_check import format_path, load_schema, schema_problems, suggest

__all__ = [
    "EXECUTION_VARIABLES",
    "DefinitionValidationError",
    "Problem",
    "format_path",
    "load_schema",
    "problems",
    "validate",
    "validate_text",
]

MAX_REPORTED = 10

#: ``{"Get": "Execution.<name>"}`` names the SageMaker SDK emits (ExecutionVariables).
EXECUTION_VARIABLES = frozenset(
    {
        "StartDateTime",
        "CurrentDateTime",
        "PipelineName",
        "PipelineArn",
        "PipelineExecutionId",
        "PipelineExecutionArn",
        "TrainingJobName",
        "ProcessingJobName",
    }
)
#: ``{"Get": "PipelineExperimentConfig.<name>"}`` names (PipelineExperimentConfigProperties).
EXPERIMENT_CONFIG_PROPERTIES = frozenset({"ExperimentName", "TrialName"})


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document: where (a ``$``-rooted JSON path) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"at {self.path}: {self.message}"


class DefinitionValidationError(DefinitionError):
    """The pipeline definition document is malformed; ``.problems`` lists every problem found."""

    def __init__(self, problems: list[Problem], *, source: str | None = None):
        self.problems = list(problems)
        self.source = source
        shown = self.problems[:MAX_REPORTED]
        where = f" in {source}" if source else ""
        count = len(self.problems)
        head = (
            f"The pipeline definition{where} is not valid "
            f"({count} problem{'s' if count != 1 else ''}); fix each one below:"
        )
        lines = [head, *(f"  {p}" for p in shown)]
        if count > len(shown):
            lines.append(f"  ... and {count - len(shown)} more")
        super().__init__("\n".join(lines))


# --------------------------------------------------------------------------- semantic checks


def _steps(steps: Any, path: list) -> Iterator[tuple[dict, list]]:
    """Every step object with its path, nested IfSteps/ElseSteps included (document order)."""
    if not isinstance(steps, list):
        return
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        here = [*path, i]
        yield step, here
        args = step.get("Arguments")
        if step.get("Type") == "Condition" and isinstance(args, dict):
            for branch in ("IfSteps", "ElseSteps"):
                yield from _steps(args.get(branch), [*here, "Arguments", branch])


def _references(value: Any, path: list) -> Iterator[tuple[str, list]]:
    """Every ``{"Get": "..."}`` string below value, with the path of the Get."""
    if isinstance(value, dict):
        if isinstance(value.get("Get"), str):
            yield value["Get"], [*path, "Get"]
        for key, item in value.items():
            if key != "Get":
                yield from _references(item, [*path, key])
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _references(item, [*path, i])


def _json_gets(value: Any, path: list) -> Iterator[tuple[Any, list]]:
    """Every ``Std:JsonGet`` PropertyFile below value, with its path."""
    if isinstance(value, dict):
        inner = value.get("Std:JsonGet")
        if isinstance(inner, dict) and "PropertyFile" in inner:
            yield inner["PropertyFile"], [*path, "Std:JsonGet", "PropertyFile"]
        for key, item in value.items():
            yield from _json_gets(item, [*path, key])
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _json_gets(item, [*path, i])


_STEP_REF = re.compile(r"^Steps\.([^.\[\]]+)(.*)$")
_PROPERTY_FILE_REF = re.compile(r"^Steps\.([^.\[\]]+)\.PropertyFiles\.(.+)$")


def _unknown(kind: str, name: str, known) -> str:
    hint = suggest(name, sorted(known))
    return f"expected the name of a {kind} of this pipeline, found {json.dumps(name)}{hint}"


def _semantic_problems(document: Any) -> Iterator[Problem]:
    if not isinstance(document, dict):
        return
    # names: steps (nested included) and parameters
    first_seen: dict[str, str] = {}
    property_files: dict[str, set[str]] = {}
    all_steps = list(_steps(document.get("Steps"), ["Steps"]))
    for step, path in all_steps:
        name = step.get("Name")
        if not isinstance(name, str):
            continue
        if name in first_seen:
            yield Problem(
                format_path([*path, "Name"]),
                f"expected a step name unique in the pipeline, found {json.dumps(name)} "
                f"again (first used at {first_seen[name]})",
            )
        else:
            first_seen[name] = format_path([*path, "Name"])
        files = step.get("PropertyFiles")
        if isinstance(files, list):
            property_files.setdefault(name, set()).update(
                f["PropertyFileName"]
                for f in files
                if isinstance(f, dict) and isinstance(f.get("PropertyFileName"), str)
            )
    step_names = set(first_seen)

    parameters = document.get("Parameters")
    parameter_names: set[str] = set()
    if isinstance(parameters, list):
        seen_params: dict[str, str] = {}
        for i, p in enumerate(parameters):
            if isinstance(p, dict) and isinstance(p.get("Name"), str):
                where = format_path(["Parameters", i, "Name"])
                if p["Name"] in seen_params:
                    yield Problem(
                        where,
                        f"expected a parameter name unique in the pipeline, found {json.dumps(p['Name'])} "
                        f"again (first used at {seen_params[p['Name']]})",
                    )
                else:
                    seen_params[p["Name"]] = where
        parameter_names = set(seen_params)

    # DependsOn
    for step, path in all_steps:
        depends = step.get("DependsOn")
        if not isinstance(depends, list):
            continue
        for i, target in enumerate(depends):
            if not isinstance(target, str):
                continue
            where = format_path([*path, "DependsOn", i])
            if target not in step_names:
                yield Problem(where, _unknown("step", target, step_names))
            elif target == step.get("Name"):
                yield Problem(
                    where, f"expected another step's name, found the step's own name {json.dumps(target)}"
                )

    # Get references anywhere in the document (steps and PipelineExperimentConfig)
    for ref, path in _references(
        {k: v for k, v in document.items() if k in ("Steps", "PipelineExperimentConfig")}, []
    ):
        where = format_path(path)
        root, _, rest = ref.partition(".")
        if root == "Parameters":
            if rest not in parameter_names:
                yield Problem(
                    where,
                    _unknown("parameter", rest, parameter_names).replace(
                        "expected the name", 'expected "Parameters.<name>" with the name'
                    ),
                )
        elif root == "Steps":
            match = _STEP_REF.match(ref)
            if match and match.group(1) not in step_names:
                yield Problem(
                    where,
                    _unknown("step", match.group(1), step_names).replace(
                        "expected the name", 'expected "Steps.<name>..." with the name'
                    ),
                )
        elif root == "Execution":
            if rest not in EXECUTION_VARIABLES:
                options = ", ".join(sorted(EXECUTION_VARIABLES))
                yield Problem(
                    where,
                    f"expected an execution variable ({options}), found {json.dumps(rest)}"
                    f"{suggest(rest, EXECUTION_VARIABLES)}",
                )
        elif root == "PipelineExperimentConfig" and rest not in EXPERIMENT_CONFIG_PROPERTIES:
            yield Problem(
                where,
                f"expected PipelineExperimentConfig.ExperimentName or .TrialName, found {json.dumps(ref)}",
            )

    # Std:JsonGet property files: the file must be declared by the step (or by some step)
    all_files = set().union(*property_files.values()) if property_files else set()
    for prop, path in _json_gets(document.get("Steps"), ["Steps"]):
        where = format_path(path)
        if isinstance(prop, str):
            if prop not in all_files:
                yield Problem(where, _unknown("property file", prop, all_files))
        elif isinstance(prop, dict) and isinstance(prop.get("Get"), str):
            match = _PROPERTY_FILE_REF.match(prop["Get"])
            if match is None:
                if prop["Get"].startswith("Steps."):
                    yield Problem(
                        format_path([*path, "Get"]),
                        'expected "Steps.<step>.PropertyFiles.<file>", found ' + json.dumps(prop["Get"]),
                    )
                continue
            step_name, file_name = match.groups()
            if step_name in step_names and file_name not in property_files.get(step_name, set()):
                declared = sorted(property_files.get(step_name, set()))
                yield Problem(
                    format_path([*path, "Get"]),
                    f"expected a property file declared in {step_name}'s PropertyFiles "
                    f"({', '.join(declared) or 'it declares none'}), found {json.dumps(file_name)}",
                )


# --------------------------------------------------------------------------- public API


def problems(document: Any) -> list[Problem]:
    """Every problem with the document, schema first, then semantic; duplicates removed."""
    found: list[Problem] = []
    seen: set[Problem] = set()
    schema = (Problem(path, message) for path, message in schema_problems(document))
    for problem in [*schema, *_semantic_problems(document)]:
        if problem not in seen:
            seen.add(problem)
            found.append(problem)
    return found


def validate(document: Any, *, source: str | None = None) -> None:
    """Raise DefinitionValidationError if the document is not a valid pipeline definition."""
    from .reading import check_document, guarded

    check_document(document, source)
    found = guarded(lambda: problems(document), source)
    if found:
        raise DefinitionValidationError(found, source=source)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def validate_text(text: str | bytes, *, source: str | None = None) -> dict[str, Any]:
    """Parse JSON text, validate it, return the document.

    JSON syntax errors are reported with line and column (``NaN``/``Infinity`` are refused).
    """
    from .reading import check_text, decode

    if isinstance(text, bytes):
        text = decode(text, source)
    check_text(text, source)
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise DefinitionValidationError(
            [Problem(f"line {exc.lineno}, column {exc.colno}", f"expected valid JSON: {exc.msg}")],
            source=source,
        ) from None
    except (ValueError, RecursionError) as exc:  # RecursionError: depth past the check's scan
        raise DefinitionValidationError(
            [Problem("$", f"expected valid JSON: {exc}")], source=source
        ) from None
    validate(document, source=source)
    return document
