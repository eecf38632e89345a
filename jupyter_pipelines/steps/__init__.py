"""Typed steps. A `Step` is a frozen value: its name, kind, code and what it reads and writes.
Each kind (one module each) checks its definition when the step is made and its contract
when the step runs; kinds map one-to-one to SageMaker step types."""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from dataclasses import replace

from ..errors import DefinitionError, did_you_mean
from ..parameters import check_name
from .base import Kind, RunContext, Step, StepOutcome
from .conditions import ConditionKind, FailKind
from .external import ExternalKind
from .models import CreateModelKind, RegisterModelKind, TransformKind
from .processing import ProcessingKind, TrainingKind

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        ProcessingKind(), TrainingKind(), ConditionKind(), FailKind(),
        RegisterModelKind(), CreateModelKind(), TransformKind(), ExternalKind(),
    )
}

__all__ = ["KINDS", "Kind", "RunContext", "Step", "StepOutcome", "make_step"]


def make_step(name, code, kind="processing", *, inputs=None, outputs=None, depends_on=None,
              cache=True, cache_expire=None, retry=0, retry_backoff=1.0, display_name=None,
              description=None, **options) -> Step:
    """Check a step definition and return the `Step` (raises `DefinitionError` subclasses).

    ``cache``/``cache_expire`` (an ISO-8601 duration such as ``"P30D"``), ``retry``/
    ``retry_backoff`` and ``display_name``/``description`` apply to every kind; ``options`` are
    the kind's own flags."""
    check_name(name, "Step")
    if not isinstance(code, str):
        raise DefinitionError(
            f"Step `{name}`: its code must be a str of Python source (e.g. add_step({name!r}, "
            f"'xs = [1, 2]')); got {_short(code)} ({type(code).__name__}).")
    if not isinstance(kind, str) or kind not in KINDS:
        close = did_you_mean(kind, KINDS) if isinstance(kind, str) else ""
        raise DefinitionError(
            f"Step `{name}` has unknown kind {_short(kind)}.{close} The kinds are: "
            f"{', '.join(KINDS)}."
        )
    if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
        raise DefinitionError(f"Step `{name}`: --retry must be a whole number >= 0; got {retry!r}.")
    if not isinstance(retry_backoff, (int, float)) or retry_backoff < 0:
        raise DefinitionError(
            f"Step `{name}`: --retry-backoff must be a number of seconds >= 0; got {retry_backoff!r}.")
    expire = None
    if isinstance(cache_expire, (int, float)) and not isinstance(cache_expire, bool):
        expire = float(cache_expire)  # seconds, as a stored definition keeps it
    elif cache_expire is not None and not isinstance(cache_expire, str):
        raise DefinitionError(
            f"Step `{name}`: --cache-expire must be an ISO-8601 duration such as 'P30D' (or a "
            f"number of seconds); got {_short(cache_expire)} ({type(cache_expire).__name__}).")
    elif cache_expire is not None:
        from ..durations import duration_seconds

        expire = duration_seconds(cache_expire, name)
    inputs, outputs, depends_on = (_names(name, "inputs", inputs), _names(name, "outputs", outputs),
                                   _names(name, "depends_on", depends_on))
    for key, value in options.items():
        if key in _NAME_LISTS:
            options[key] = _names(name, key, value)
        elif key in _NAME_OPTIONS and value is not None and not isinstance(value, str):
            raise DefinitionError(
                f"Step `{name}`: option `{key}` (--{key.replace('_', '-')}) must be a name (a str); "
                f"got {_short(value)} ({type(value).__name__}).")
    step = KINDS[kind].define(
        name, code, inputs=inputs, outputs=outputs, depends_on=depends_on, options=options
    )
    for label, text in (("--display-name", display_name), ("--description", description)):
        if text is not None and not isinstance(text, str):
            raise DefinitionError(f"Step `{name}`: {label} must be text; got {text!r}.")
    fields = {"cache": bool(cache) and KINDS[kind].cacheable, "cache_expire": expire, "retry": retry,
              "retry_backoff": float(retry_backoff), "display_name": display_name or None,
              "description": description or None}
    if fields == _DEFAULTS:  # the common case: a kind's `define` leaves these at their defaults
        return step
    return replace(step, **fields)


_DEFAULTS = {f.name: f.default for f in dataclass_fields(Step) if f.name in (
    "cache", "cache_expire", "retry", "retry_backoff", "display_name", "description")}


_NAME_LISTS = ("if_steps", "else_steps")
_NAME_OPTIONS = ("model", "group", "approval_status", "metrics", "data")


def _names(step: str, label: str, value):
    """A list of names as given (None stays None); a bare str would be split into letters."""
    if value is None:
        return None
    ok = not isinstance(value, (str, bytes)) and hasattr(value, "__iter__")
    items = list(value) if ok else []
    if not ok or not all(isinstance(v, str) for v in items):
        bad = next((v for v in items if not isinstance(v, str)), value)
        example = "['Train']" if label in ("depends_on", *_NAME_LISTS) else "['train', 'test']"
        raise DefinitionError(
            f"Step `{step}`: `{label}` must be a list of names (str), e.g. {label}={example}; "
            f"got {_short(value)}" + (f", whose item {_short(bad)} is not a str." if ok else "."))
    return items


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
