"""A SageMaker-format pipeline definition as a `Pipeline` (validated first).

* A step whose ``Arguments`` hold a ``JupyterPipelines`` block (what `export` writes) is a
  local step made from that block; the SageMaker arguments derived from it must still say the
  same (a hand edit of only one of the two is reported, not silently ignored).
* A Condition or Fail step without the block (as the SageMaker SDK writes them) is a local
  step when its operands are literals, parameters and outputs of local steps: its Python
  expression is generated from ``Conditions``/``ErrorMessage``.
* Every other step is an ``aws`` step: drawn, inspected, never run. Its edges come from its
  property references (``{"Get": "Steps.X..."}``, property files) and ``DependsOn``, as
  SageMaker derives them.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

from ..durations import duration_seconds
from ..errors import DefinitionError, PipelineError
from ..parameters import Parameter, pipeline_name
from ..source import Context
from ..steps import KINDS, make_step
from . import expressions
from .export import BLOCK, DERIVED, RETRY_EXCEPTION, sagemaker_arguments
from .expressions import NotExpressible
from .validation import DefinitionValidationError, Problem, format_path, validate, validate_text

_STEP_REF = re.compile(r"^Steps\.([^.\[\]]+)\.(.+)$")


def read_document(source: Any, *, where: str | None = None) -> dict[str, Any]:
    """JSON text, a parsed document or a path (`os.PathLike`, or a one-line string that is
    not JSON, such as ``"abalone.json"``), validated."""
    source = _as_path(source)
    if isinstance(source, os.PathLike):
        path = Path(source)
        return validate_text(read_file(path), source=where or str(path))
    if isinstance(source, (str, bytes)):
        return validate_text(source, source=where)
    validate(source, source=where)
    return source


def read_file(path: Path) -> bytes:
    """A definition file's bytes; a missing path, a folder or an unreadable file is a
    `DefinitionError` naming it."""
    hint = "Give the path of a pipeline definition .json file."
    if path.is_dir():
        raise DefinitionError(f"Definition file {str(path)!r} is a folder, not a file. {hint}")
    if not path.is_file():
        raise DefinitionError(f"Definition file {str(path)!r} does not exist. {hint}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DefinitionError(f"Definition file {str(path)!r} cannot be read: "
                              f"{exc.strerror or exc}. {hint}") from None


def _as_path(source: Any) -> Any:
    if (isinstance(source, str) and source.strip() and "\n" not in source
            and not source.lstrip().startswith(("{", "["))):
        return Path(source)
    return source


def from_definition(source: Any, *, name: str | None = None, where: str | None = None,
                    **pipeline_kwargs):
    """The pipeline a definition describes; ``pipeline_kwargs`` go to `Pipeline`."""
    from ..pipeline import Pipeline

    source = _as_path(source)
    doc = read_document(source, where=where)
    meta = (doc.get("Metadata") or {}).get(BLOCK) or {}
    if isinstance(source, os.PathLike) and not name and "PipelineName" not in meta:
        name = pipeline_name(Path(source).stem)
    pipeline = Pipeline(name or meta.get("PipelineName") or "pipeline",
                        context=Context(tuple(tuple(s) for s in meta.get("Context", []))),
                        **pipeline_kwargs)
    extras = {k: doc[k] for k in ("PipelineExperimentConfig",) if k in doc}
    metadata = {k: v for k, v in (doc.get("Metadata") or {}).items() if k != BLOCK}
    if metadata:
        extras["Metadata"] = metadata
    pipeline.definition_extras = extras
    for i, p in enumerate(doc.get("Parameters", [])):
        try:
            pipeline.parameters[p["Name"]] = Parameter(p["Name"], p.get("DefaultValue"),
                                                       p.get("EnumValues"), p["Type"])
        except PipelineError as exc:
            raise _error(["Parameters", i], str(exc), where) from None
    _Reader(doc, pipeline, where).read()
    return pipeline


class _Reader:
    def __init__(self, doc: dict, pipeline, where: str | None):
        self.doc, self.pipeline, self.where = doc, pipeline, where
        self.flat: list[tuple[dict, list]] = list(_flatten(doc["Steps"], ["Steps"]))
        self.local = {o["Name"] for o, _ in self.flat if BLOCK in (o.get("Arguments") or {})}
        self.files: dict[str, tuple[str, str]] = {}  # property file -> (step, output name)
        for obj, _ in self.flat:
            for f in obj.get("PropertyFiles", []):
                self.files.setdefault(f["PropertyFileName"], (obj["Name"], f["OutputName"]))
        self.outputs = {o["Name"]: set(o["Arguments"][BLOCK].get("Outputs") or ())
                        for o, _ in self.flat if o["Name"] in self.local}

    def fail(self, path: list, message: str) -> DefinitionValidationError:
        return _error(path, message, self.where)

    def read(self) -> None:
        specs = []
        for obj, path in self.flat:
            branches = {}
            if obj["Type"] == "Condition":
                args = obj["Arguments"]
                branches = {"if_steps": [s["Name"] for s in args.get("IfSteps", [])],
                            "else_steps": [s["Name"] for s in args.get("ElseSteps", [])]}
            spec = self._local(obj, path) if obj["Name"] in self.local else self._translated(obj)
            specs.append((obj, path, spec, branches))
        reads = {o["Name"]: _references(o, self.files) for o, _, spec, _ in specs if spec is None}
        produced: dict[str, list[str]] = {}
        for refs in reads.values():
            for producer, label in refs["steps"]:
                produced.setdefault(producer, []).append(f"{producer}.{label}")
        for obj, path, spec, branches in specs:
            if spec is None:
                spec = self._external(obj, reads[obj["Name"]], produced.get(obj["Name"], []))
            spec.update(branches)
            common = self._common(obj, path, local=spec["kind"] != "aws")
            common["depends_on"] = list(dict.fromkeys(common["depends_on"] + spec.get("depends_on", [])))
            spec.update(common)
            try:
                self.pipeline.add_step(make_step(obj["Name"], **spec))
            except PipelineError as exc:
                raise self.fail(path, str(exc)) from None
        try:
            graph = self.pipeline.graph()
        except PipelineError as exc:
            raise self.fail(["Steps"], str(exc)) from None
        found = [p for obj, path in self.flat if obj["Name"] in self.local
                 for p in self._check_derived(obj, path, graph)]
        if found:
            raise DefinitionValidationError(found, source=self.where)

    # -- the three sorts of step ---------------------------------------------------------------
    def _local(self, obj: dict, path: list) -> dict:
        block = obj["Arguments"][BLOCK]
        kind = block["Kind"]
        if KINDS[kind].sagemaker_type != obj["Type"]:
            raise self.fail([*path, "Type"], (
                f"expected \"{KINDS[kind].sagemaker_type}\" (the SageMaker type of a {kind} step, "
                f"as its {BLOCK}.Kind says), found \"{obj['Type']}\""))
        spec = {"code": block["Code"], "kind": kind, **(block.get("Options") or {})}
        if "Inputs" in block:
            spec["inputs"] = list(block["Inputs"])
        if "Outputs" in block:
            spec["outputs"] = list(block["Outputs"])
        return spec

    def _translated(self, obj: dict) -> dict | None:
        """A SageMaker Condition/Fail as a local step, if its operands are all local."""
        try:
            if obj["Type"] == "Condition":
                code = expressions.python_condition(obj["Arguments"]["Conditions"], self._resolve)
                return {"code": code, "kind": "condition"}
            if obj["Type"] == "Fail":
                message = (obj.get("Arguments") or {}).get("ErrorMessage", "")
                return {"code": expressions.python_message(message, self._resolve), "kind": "fail"}
        except NotExpressible:
            return None
        return None

    def _resolve(self, ref: dict) -> tuple[str, list]:
        if "Get" in ref:
            root, _, rest = ref["Get"].partition(".")
            if root == "Parameters" and rest.isidentifier() and rest in self.pipeline.parameters:
                return rest, []
            raise NotExpressible(ref["Get"], "is not a parameter")
        inner = ref["Std:JsonGet"]
        prop = inner.get("PropertyFile")
        keys = expressions.parse_path(inner["Path"]) if isinstance(inner["Path"], str) else None
        file_name = prop if isinstance(prop, str) else (prop or {}).get("Get", "").rpartition(".")[2]
        step, output = self.files.get(file_name, (None, None))
        if keys is None or step not in self.local or output not in self.outputs[step]:
            raise NotExpressible(json.dumps(ref)[:80], "is not an output of a local step")
        return output, keys

    def _external(self, obj: dict, refs: dict, outputs: list[str]) -> dict:
        raw = copy.deepcopy(obj)
        if raw["Type"] == "Condition":
            raw["Arguments"].pop("IfSteps", None)
            raw["Arguments"].pop("ElseSteps", None)
        inputs, depends = list(refs["parameters"]), []
        for producer, label in refs["steps"]:
            if producer in self.local:
                depends.append(producer)
            else:
                inputs.append(f"{producer}.{label}")
        return {"code": json.dumps(raw, indent=2), "kind": "aws", "type": obj["Type"],
                "inputs": list(dict.fromkeys(inputs)), "outputs": list(dict.fromkeys(outputs)),
                "depends_on": depends}

    def _common(self, obj: dict, path: list, *, local: bool) -> dict:
        depends = list(obj.get("DependsOn", []))
        spec: dict[str, Any] = {"depends_on": depends}
        if not local:
            return spec
        spec["display_name"] = obj.get("DisplayName")
        spec["description"] = obj.get("Description")
        cache = obj.get("CacheConfig")
        spec["cache"] = cache["Enabled"] if cache else True  # absent: our default
        if cache and cache.get("ExpireAfter"):
            try:
                spec["cache_expire"] = duration_seconds(cache["ExpireAfter"], obj["Name"])
            except PipelineError:
                raise self.fail([*path, "CacheConfig", "ExpireAfter"], (
                    "expected an ISO-8601 duration such as \"P30D\" or \"PT12H\", found "
                    f"{json.dumps(cache['ExpireAfter'])}")) from None
        for i, policy in enumerate(obj.get("RetryPolicies", [])):
            if RETRY_EXCEPTION in policy.get("ExceptionType", []):
                if policy.get("BackoffRate", 2.0) != 2.0:
                    raise self.fail([*path, "RetryPolicies", i, "BackoffRate"], (
                        f"expected 2.0 (local retries double the wait), found {policy['BackoffRate']}"))
                spec["retry"] = policy.get("MaxAttempts", 1)
                spec["retry_backoff"] = policy.get("IntervalSeconds", 1)
        return spec

    def _check_derived(self, obj: dict, path: list, graph) -> list[Problem]:
        """The SageMaker arguments a local step's block derives must be the document's."""
        step = graph.steps[obj["Name"]]
        keys = DERIVED.get(step.kind, ())
        if not keys:
            return []
        try:
            derived = sagemaker_arguments(step, graph, self.pipeline.parameters)
        except PipelineError as exc:
            return [Problem(format_path([*path, "Arguments", BLOCK, "Code"]), str(exc))]
        problems = []
        for key in keys:
            found = obj["Arguments"].get(key)
            if found != derived[key]:
                problems.append(Problem(format_path([*path, "Arguments", key]), (
                    f"expected {json.dumps(derived[key])} (what the step's {BLOCK}.Code and "
                    f".Options say, which is what runs), found {json.dumps(found)}. Edit "
                    f"{BLOCK}.Code/.Options to change the step, or delete the {BLOCK} block so "
                    f"the step is read from SageMaker's {key}")))
        return problems


def _error(path: list, message: str, where: str | None) -> DefinitionValidationError:
    """One problem at ``path`` (a list of keys and indexes) as the error to raise."""
    return DefinitionValidationError([Problem(format_path(path), message)], source=where)


def _flatten(steps: list, path: list):
    for i, obj in enumerate(steps):
        here = [*path, i]
        yield obj, here
        if obj["Type"] == "Condition":
            for branch in ("IfSteps", "ElseSteps"):
                yield from _flatten(obj["Arguments"].get(branch, []), [*here, "Arguments", branch])


def _references(obj: dict, files: dict[str, tuple[str, str]]) -> dict[str, list]:
    """The parameters and (step, label) pairs an AWS step refers to (nested steps excluded)."""
    found: dict[str, list] = {"parameters": [], "steps": []}

    def walk(value: Any, top: bool = False) -> None:
        if isinstance(value, dict):
            get = value.get("Get")
            if isinstance(get, str):
                root, _, rest = get.partition(".")
                match = _STEP_REF.match(get)
                if root == "Parameters":
                    found["parameters"].append(rest)
                elif match and match.group(1) != obj["Name"]:
                    found["steps"].append((match.group(1), _label(match.group(2))))
            json_get = value.get("Std:JsonGet")
            if isinstance(json_get, dict) and isinstance(json_get.get("PropertyFile"), str):
                step, _ = files.get(json_get["PropertyFile"], (None, None))
                if step and step != obj["Name"]:
                    found["steps"].append((step, json_get["PropertyFile"]))
            for key, item in value.items():
                if not (top and key in ("IfSteps", "ElseSteps")):
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk({k: v for k, v in obj.items() if k != "Arguments"})
    walk(obj.get("Arguments") or {}, top=True)
    return found


def _label(rest: str) -> str:
    """A short edge label for a property path: ``ProcessingOutputConfig.Outputs['train']...``
    -> ``train``; ``PropertyFiles.EvaluationReport`` -> ``EvaluationReport``; ``ModelArtifacts
    .S3ModelArtifacts`` -> ``ModelArtifacts``."""
    quoted = re.search(r"\[['\"]([^'\"]+)['\"]\]", rest)
    if quoted:
        return quoted.group(1)
    if rest.startswith("PropertyFiles."):
        return rest.split(".", 2)[1]
    return re.split(r"[.\[]", rest, maxsplit=1)[0]
