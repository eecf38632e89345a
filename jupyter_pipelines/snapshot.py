"""A pipeline as a plain document (and back): what the history keeps for each pipeline
version, so an execution can be described, drawn and retried without its notebook.

This is our own lossless snapshot (any step, any condition); the SageMaker-format definition
users exchange is `jupyter_pipelines.definition`."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def to_document(pipeline) -> dict[str, Any]:
    return {
        "name": pipeline.name,
        "parameters": [{"name": p.name, "default": p.default,
                        "enum_values": list(p.enum_values) if p.enum_values else None,
                        "type": p.type_name}
                       for p in pipeline.parameters.values()],
        "context": [list(s) for s in pipeline.context.snippets],
        "steps": [{
            "name": s.name, "kind": s.kind, "code": s.code, "inputs": list(s.reads),
            "outputs": list(s.outputs), "depends_on": list(s.depends_on),
            "options": {k: list(v) if isinstance(v, tuple) else v for k, v in s.options.items()},
            "cache": s.cache, "cache_expire": s.cache_expire, "retry": s.retry,
            "retry_backoff": s.retry_backoff, "display_name": s.display_name,
            "description": s.description,
        } for s in pipeline.steps.values()],
    }


def digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=repr).encode()).hexdigest()


def from_document(document: dict[str, Any], **kwargs):
    from .parameters import Parameter
    from .pipeline import Pipeline
    from .source import Context

    pipeline = Pipeline(document["name"], context=Context(tuple(tuple(s) for s in document["context"])),
                        **kwargs)
    for p in document["parameters"]:
        pipeline.parameters[p["name"]] = Parameter(p["name"], p["default"], p.get("enum_values"),
                                                   p.get("type"))
    for s in document["steps"]:
        pipeline.add_step(s["name"], s["code"], s["kind"], inputs=s["inputs"], outputs=s["outputs"],
                          depends_on=s["depends_on"], cache=s["cache"], cache_expire=s["cache_expire"],
                          retry=s["retry"], retry_backoff=s["retry_backoff"],
                          display_name=s.get("display_name"), description=s.get("description"),
                          **s["options"])
    return pipeline
