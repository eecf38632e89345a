"""Reading a definition's bytes safely, before json and jsonschema see them.

Both recurse once per level of nesting, so a hostile or broken file (100,000 nested ``[``, a
condition nested 50 deep) would exhaust the interpreter's stack (``RecursionError``) or panic
inside the Rust ``referencing`` stack (pyo3's ``PanicException``, a ``BaseException``). A real
SageMaker definition is about 11 levels deep, so anything past `MAX_DEPTH` is refused up front
with its line and column; the guard around validation is the last resort.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from .validation import DefinitionValidationError, Problem

#: JSON nesting allowed: SageMaker's own definitions reach about 11; jsonschema spends some
#: ten stack frames per level, so 48 levels stay well inside the default recursion limit.
MAX_DEPTH = 48
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')  # strings skipped whole: brackets in text
_T = TypeVar("_T")


def decode(data: bytes, source: str | None) -> str:
    """The file's text: UTF-8, as JSON requires (a leading byte-order mark is tolerated)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DefinitionValidationError([Problem(
            f"line {line}, byte {exc.start}",
            f"expected UTF-8 text, found the byte {data[exc.start:exc.start + 1]!r}, which is not "
            "valid UTF-8. A pipeline definition is a JSON file in UTF-8: re-save it as UTF-8 (or "
            "check that this is the definition file and not another file)")], source=source) from None


def check_text(text: str, source: str | None) -> None:
    """Refuse empty text and nesting deeper than `MAX_DEPTH`, without parsing."""
    if not text.strip():
        raise DefinitionValidationError([Problem(
            "$", "the definition is empty; expected a JSON object such as "
            '{"Version": "2020-12-01", "Parameters": [], "Steps": [...]} (write it with '
            "`jupyter-pipelines definition NOTEBOOK -o FILE` or SageMaker's "
            "pipeline.definition())")], source=source)
    depth = 0
    for token in _TOKENS.finditer(text):
        char = token.group()
        if char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                pos = token.start()
                line = text.count("\n", 0, pos) + 1
                column = pos - text.rfind("\n", 0, pos)
                raise _too_deep(f"line {line}, column {column}", source)
        elif char in "]}":
            depth -= 1


def check_document(document: Any, source: str | None) -> None:
    """`check_text` for an already parsed document (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int, str]] = [(document, 1, "$")]
    while stack:
        value, depth, path = stack.pop()
        if not isinstance(value, (dict, list)):
            continue
        if depth > MAX_DEPTH:
            raise _too_deep(path if len(path) <= 120 else path[:117] + "...", source)
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(item, (dict, list)):
                step = f"[{key}]" if isinstance(value, list) else f".{key}"
                stack.append((item, depth + 1, path + step))


def guarded(run: Callable[[], _T], source: str | None) -> _T:
    """``run()``, with a stack overflow or a Rust panic in the validators reported as a
    definition problem instead of escaping as a traceback (or killing the kernel's cell)."""
    try:
        return run()
    except RecursionError:
        raise _too_deep("$", source) from None
    except BaseException as exc:
        if type(exc).__name__ != "PanicException":  # interrupts and exits pass through
            raise
        raise DefinitionValidationError([Problem(
            "$", "the JSON Schema validator failed on this document (an internal panic, "
            f"usually from extreme nesting: {str(exc)[:100]}). Simplify the definition; a "
            "SageMaker definition is never nested this deeply")], source=source) from None


def _too_deep(where: str, source: str | None) -> DefinitionValidationError:
    return DefinitionValidationError([Problem(
        where, f"the JSON is nested more than {MAX_DEPTH} levels deep here; a pipeline definition "
        "is about 11 levels deep (SageMaker's own). Flatten it: e.g. split a deeply nested "
        "condition into several condition steps, or check that this is a pipeline definition")],
        source=source)
