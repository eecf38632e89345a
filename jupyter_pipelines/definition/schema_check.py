"""The JSON Schema layer of definition validation: the schema shipped in the package, and each
schema error said as ``expected ..., found ...`` at its JSON path (``$.Steps[3].Type``)."""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any


@functools.lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The JSON Schema shipped in the package (parsed once, cached)."""
    text = resources.files("jupyter_pipelines").joinpath("definition", "schema.json").read_text("utf-8")
    return json.loads(text)


@functools.lru_cache(maxsize=1)
def _validator():
    import jsonschema

    schema = load_schema()
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def format_path(parts) -> str:
    """``["Steps", 3, "Arguments"]`` -> ``$.Steps[3].Arguments``; odd keys as ``["Std:Join"]``."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}"
        else:
            out += f"[{json.dumps(part)}]"
    return out


_JSON_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


def _describe(value: Any) -> str:
    """How a found value reads in a message."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return f"the {'integer' if isinstance(value, int) else 'number'} {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f"the string {json.dumps(shown)}"
    if isinstance(value, list):
        return f"an array of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        keys = ", ".join(json.dumps(k) for k in list(value)[:6])
        more = ", ..." if len(value) > 6 else ""
        return f"an object with keys {keys}{more}" if value else "an empty object"
    return repr(value)


def _types(expected) -> str:
    names = [expected] if isinstance(expected, str) else list(expected)
    return " or ".join(_JSON_TYPE_NAMES.get(n, n) for n in names)


def suggest(found: Any, choices) -> str:
    if not isinstance(found, str):
        return ""
    close = difflib.get_close_matches(found, [c for c in choices if isinstance(c, str)], n=1)
    return f" (did you mean {json.dumps(close[0])}?)" if close else ""


def _schema_message(error) -> str:
    """One schema error as 'expected ..., found ...'."""
    kind, expected, found = error.validator, error.validator_value, error.instance
    custom = error.schema.get("x-expected") if isinstance(error.schema, dict) else None
    if kind == "required":
        missing = next((k for k in expected if isinstance(found, dict) and k not in found), expected[0])
        return f'expected a "{missing}" property, found {_describe(found)}'
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = [
            k
            for k in found
            if k not in allowed
            and not any(re.search(p, k) for p in error.schema.get("patternProperties", {}))
        ]
        allowed_text = ", ".join(allowed)
        extras = ", ".join(json.dumps(k) for k in extra)
        hint = suggest(extra[0], allowed) if len(extra) == 1 else ""
        return f"expected only the properties {allowed_text}, found unexpected {extras}{hint}"
    if kind == "enum":
        options = ", ".join(json.dumps(v) for v in expected)
        return f"expected one of {options}, found {_describe(found)}{suggest(found, expected)}"
    if kind == "const":
        return f"expected {custom or json.dumps(expected)}, found {_describe(found)}"
    if kind == "type":
        what = _types(expected) + (f" ({custom})" if custom else "")
        return f"expected {what}, found {_describe(found)}"
    if kind == "pattern":
        what = custom or f"a string matching {expected}"
        return f"expected {what}, found {_describe(found)}"
    if kind in ("minLength", "maxLength"):
        bound = "at least" if kind == "minLength" else "at most"
        return f"expected a string of {bound} {expected} characters, found {_describe(found)}"
    if kind in ("minItems", "maxItems"):
        bound = "at least" if kind == "minItems" else "at most"
        return f"expected {bound} {expected} items, found {_describe(found)}"
    if kind in ("minimum", "maximum"):
        return f"expected a number {'>=' if kind == 'minimum' else '<='} {expected}, found {_describe(found)}"
    if kind in ("anyOf", "oneOf") and custom:
        return f"expected {custom}, found {_describe(found)}"
    return error.message


def _most_specific(error):
    """For anyOf/oneOf failures, the sub-error that went deepest (jsonschema's best_match)."""
    from jsonschema.exceptions import best_match

    custom = error.schema.get("x-expected") if isinstance(error.schema, dict) else None
    if error.context and not custom:
        return best_match([error])
    return error


def schema_problems(document: Any) -> Iterator[tuple[str, str]]:
    """``(JSON path, "expected ..., found ...")`` for each way ``document`` breaks the schema."""
    for error in _validator().iter_errors(document):
        error = _most_specific(error)
        yield format_path(error.absolute_path), _schema_message(error)
