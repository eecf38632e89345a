"""A step as the editor edits it and as a notebook cell holds it: its ``%%step`` flags (the
keys of `magics.parse_step_line`) and code, and back.

`flags_of` reads a `Step`'s flags (inputs and outputs only when they differ from what its code
implies: those are the ones the user declared); `step_cell` writes the cell's text, whose first
line `magics.parse_step_line` parses back to the same flags; `make` makes the step from flags
and code through `steps.make_step`, the path the magic takes.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from ..parameters import ONE_OF, Parameter
from ..steps import KINDS, Step, make_step

# Flags in the order the cell's line writes them; lists are written space-separated.
FLAGS = ("kind", "inputs", "outputs", "depends_on", "model", "if_steps", "else_steps", "group",
         "approval_status", "metrics", "data", "batch_size", "instance_count", "cache",
         "cache_expire", "retry", "retry_backoff", "display_name", "description")
_LISTS = ("inputs", "outputs", "depends_on", "if_steps", "else_steps")
_SPELLING = {"if_steps": "--if", "else_steps": "--else", "cache": "--no-cache"}
_DEFAULTS = {"kind": "processing", "cache": True, "retry": 0, "retry_backoff": 1.0}

# What a step dragged from the palette starts with: code valid for its kind, whose outputs are
# named after the step (``{out}``: its name in lower case), so no two new steps output one name.
TEMPLATES = {
    "processing": "# Read upstream outputs and parameters by name; assign this step's outputs.\n"
                  "{out} = 1",
    "training": "from sklearn.dummy import DummyRegressor\n\n"
                "{out} = DummyRegressor().fit([[0], [1]], [0, 1])",
    "condition": "True",
    "fail": 'f"The pipeline stopped: explain why here."',
    "register-model": "",
    "create-model": "",
    "transform": "",
}
# ... and the flags it needs (``{model}``: the newest training step's model, ``{create_model}``:
# the newest create-model step).
TEMPLATE_FLAGS = {
    "training": {"model": "{out}"},
    "register-model": {"model": "{model}", "group": "{name}Group", "outputs": ["{out}"]},
    "create-model": {"model": "{model}", "outputs": ["{out}"]},
    "transform": {"model": "{create_model}", "data": "data", "outputs": ["{out}"]},
}


def flags_of(step: Step) -> dict[str, Any]:
    """The step's ``%%step`` flags; defaults left out."""
    flags: dict[str, Any] = {"kind": step.kind}
    implied = _implied(step)
    if implied is None or list(step.reads) != list(implied.reads):
        flags["inputs"] = list(step.reads)
    if implied is None or list(step.outputs) != list(implied.outputs):
        flags["outputs"] = list(step.outputs)
    if step.depends_on:
        flags["depends_on"] = list(step.depends_on)
    kind = KINDS[step.kind]
    for key, value in step.options.items():
        if key in kind.options and value not in (None, [], ()) and value != kind.options[key]:
            flags[key] = list(value) if isinstance(value, (list, tuple)) else value
    if not step.cache and kind.cacheable:
        flags["cache"] = False
    if step.cache_expire is not None:
        flags["cache_expire"] = _duration(step.cache_expire)
    if step.retry:
        flags["retry"] = step.retry
    if step.retry_backoff != 1.0:
        flags["retry_backoff"] = step.retry_backoff
    for key in ("display_name", "description"):
        if getattr(step, key):
            flags[key] = getattr(step, key)
    return flags


def _implied(step: Step) -> Step | None:
    """The step its code makes with no declared inputs/outputs (None if it cannot be made)."""
    options = {k: v for k, v in step.options.items() if k in KINDS[step.kind].options}
    try:
        return make_step(step.name, step.code, step.kind, depends_on=list(step.depends_on),
                         **options)
    except Exception:
        return None


def _duration(seconds: float) -> str:
    """Seconds as the ISO-8601 duration `--cache-expire` takes."""
    days, rest = divmod(seconds, 86400)
    if not rest:
        return f"P{int(days)}D"
    return f"PT{seconds:g}S"


def step_line(name: str, flags: dict[str, Any]) -> str:
    """The ``%%step`` line: ``%%step NAME --kind ... --if A B``."""
    words = ["%%step", name]
    for key in FLAGS:
        value = flags.get(key)
        if value is None or value == _DEFAULTS.get(key) or (key in _LISTS and not value):
            continue
        flag = _SPELLING.get(key, "--" + key.replace("_", "-"))
        if key == "cache":
            words.append(flag)  # only False is written
        elif key in _LISTS:
            words += [flag, *(shlex.quote(v) for v in value)]
        else:
            words += [flag, _word(value)]
    return " ".join(words)


def _word(value: Any) -> str:
    text = str(value)
    if text and all(c.isalnum() or c in "_-.:/" for c in text):
        return text
    # The magic's line parser takes a quoted word as it is, with no escapes: quote with the
    # mark the text does not hold (a text with both has its double quotes made single).
    if '"' not in text:
        return f'"{text}"'
    return f"'{text}'" if "'" not in text else "'" + text.replace('"', "'") + "'"


def step_cell(step: Step) -> str:
    """The text of the step's notebook cell."""
    line = step_line(step.name, flags_of(step))
    return f"{line}\n{step.code}" if step.code else line


def parameters_cell(parameters: dict[str, Parameter]) -> str:
    """The ``%%parameters`` cell: one ``name = default`` line each."""
    lines = ["%%parameters"]
    for p in parameters.values():
        allowed = f"  {ONE_OF} {', '.join(map(_literal, p.enum_values))}" if p.enum_values else ""
        lines.append(f"{p.name} = {_literal(p.default)}{allowed}")
    return "\n".join(lines)


def _literal(value: Any) -> str:
    """A default as the cell writes it: strings in double quotes, as the tutorials do."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)


def make(name: str, code: str, flags: dict[str, Any]) -> Step:
    """The step these flags and code define, made as the magic makes it."""
    kwargs = {k: v for k, v in flags.items() if k in FLAGS and v is not None}
    kind = kwargs.pop("kind", "processing")
    if "cache_expire" in kwargs and kwargs["cache_expire"] == "":
        del kwargs["cache_expire"]
    for key in _LISTS:
        if key in kwargs and not kwargs[key] and key not in ("if_steps", "else_steps"):
            del kwargs[key]
    return make_step(name, code, kind, **kwargs)
