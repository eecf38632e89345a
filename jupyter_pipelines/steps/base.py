"""The `Step` value, the `Kind` protocol every kind implements, and running user code."""

from __future__ import annotations

import ast
import hashlib
import json
import linecache
import traceback
from dataclasses import MISSING, dataclass, field, fields
from json.encoder import c_make_encoder, encode_basestring_ascii
from pathlib import Path
from types import CodeType, MappingProxyType
from typing import Any

from ..errors import ContractError, DefinitionError, StepFailed, did_you_mean
from ..source import analysis, parse


@dataclass(frozen=True)
class Step:
    name: str
    kind: str
    code: str
    reads: tuple[str, ...]          # names resolved against parameters and upstream outputs
    outputs: tuple[str, ...]
    depends_on: tuple[str, ...] = ()
    step_refs: tuple[str, ...] = ()  # steps whose single output this step consumes (transform)
    options: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    compiled: Any = field(default=None, compare=False, repr=False)
    digest: str = field(default="", compare=False, repr=False)  # of the whole definition
    cache: bool = True                 # reuse a stored result with the same cache key
    cache_expire: float | None = None  # seconds a stored result stays valid (None: forever)
    retry: int = 0                     # extra attempts after a failure of the user's code
    retry_backoff: float = 1.0         # seconds before the first retry, doubling after
    display_name: str | None = None    # SageMaker's DisplayName and Description
    description: str | None = None

    @property
    def filename(self) -> str:
        return f"<step {self.name}>"

    @property
    def branches(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        options = self.options
        if not options:  # most steps (the graph asks every step)
            return (), ()
        return tuple(options.get("if_steps", ())), tuple(options.get("else_steps", ()))


_FIELDS = {f.name: f.default if f.default_factory is MISSING else f.default_factory()
           for f in fields(Step)}  # (the one default made by a factory is an empty read-only map)
_NO_OPTIONS = _FIELDS["options"]  # read-only: every step without options can share it


def _new_step(**values: Any) -> Step:
    """``Step(**values)`` at a third of the cost (`Kind.define` makes one for every step added):
    a frozen dataclass's ``__init__`` sets each of its 16 fields through ``object.__setattr__``.
    ``values`` holds every field without a default; the others take their defaults."""
    missing = _REQUIRED.difference(values)
    if missing:
        raise TypeError(f"_new_step() missing the fields {sorted(missing)}")
    step = object.__new__(Step)
    step.__dict__.update(_FIELDS, **values)  # in the fields' order, as __init__ sets them
    return step


_REQUIRED = frozenset(n for n, default in _FIELDS.items() if default is MISSING)


@dataclass(frozen=True)
class RunContext:
    """What a step may know about the run it is part of."""

    execution_id: str
    home: Path
    parameters: MappingProxyType


@dataclass
class StepOutcome:
    outputs: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)


class Kind:
    """A step kind. Subclasses set `name`, `sagemaker_type`, `options` and may override
    `check_options` (define time) and `run` (run time)."""

    name = ""
    sagemaker_type = ""
    options: dict[str, Any] = {}        # option name -> default
    produces: str | None = None         # the output a kind makes itself (e.g. predictions)
    single_expression = False
    cacheable = True  # False: a stored result never stands in for running the step
    needs_input_digests = False  # True: the run puts the inputs' stored digests in `__digests__`

    def define(self, name, code, *, inputs, outputs, depends_on, options) -> Step:
        where = f"step `{name}`"
        unknown = [k for k in options if k not in self.options] if options else ()
        if unknown:
            allowed = ", ".join(f"`{k}`" for k in self.options) or "no options"
            raise DefinitionError(
                f"Step `{name}` of kind {self.name} does not take the option `{unknown[0]}`."
                f"{did_you_mean(unknown[0], self.options)} A {self.name} step takes {allowed}."
            )
        opts = {k: options.get(k, default) for k, default in self.options.items()} if self.options else {}
        opts = self.check_options(name, opts)
        code = code.strip("\n")
        if self.single_expression:
            tree = parse(code, where)
            if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
                raise DefinitionError(
                    f"Step `{name}` is a {self.name} step, so its cell must be exactly one Python "
                    f"expression ({self.expression_hint}); found "
                    + (f"`{ast.unparse(tree.body[0])[:60]}`." if tree.body else "an empty cell.")
                )
        info, tree = analysis(code, where)
        reads = list(inputs) if inputs is not None else list(info.reads)
        extra = self.extra_reads(opts, info.writes)
        if extra:
            reads += [n for n in extra if n not in reads]
        if outputs is not None:
            outs = list(outputs)
        elif self.produces:
            outs = [self.produces]
        else:
            outs = list(info.writes)
        if self.produces and len(outs) != 1:
            raise DefinitionError(
                f"Step `{name}` is a {self.name} step and makes exactly one output "
                f"(default `{self.produces}`); --outputs gave {outs}."
            )
        step = _new_step(
            name=name, kind=self.name, code=code, reads=tuple(reads), outputs=tuple(outs),
            depends_on=tuple(depends_on or ()), step_refs=tuple(self.step_refs(opts)),
            options=MappingProxyType(opts) if opts else _NO_OPTIONS,
            compiled=self.compile(name, code, tree),
            digest=_digest(self.name, code, reads, outs, depends_on, opts),
        )
        self.check_step(step)
        return step

    expression_hint = ""

    def check_options(self, name: str, opts: dict) -> dict:
        return opts

    def extra_reads(self, opts: dict, writes: tuple[str, ...]) -> list[str]:
        return []

    def step_refs(self, opts: dict) -> list[str]:
        return []

    def check_step(self, step: Step) -> None:
        pass

    def compile(self, name: str, code: str, tree: ast.Module | None = None) -> CodeType:
        """The step's code object; ``tree``, the code already parsed, spares parsing it again
        (the same code object as compiling the text)."""
        filename = f"<step {name}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        if self.single_expression:
            return compile(code, filename, "eval")
        return compile(code if tree is None else tree, filename, "exec")

    def run(self, step: Step, ns: dict, ctx: RunContext) -> StepOutcome:
        execute(step, ns)
        return StepOutcome(collect_outputs(step, ns))


_ENCODER = json.JSONEncoder(sort_keys=True, default=repr)  # json.dumps's with these flags, made once
# Its C encoder, made once too (`encode` makes one a call): the same text, less than half the
# time. Without a check for circular values: one of those (or a nesting too deep) recurses
# until RecursionError, and then `_ENCODER` says what it says.
_C_ENCODER = c_make_encoder and c_make_encoder(
    None, repr, encode_basestring_ascii, None, ": ", ", ", True, False, True)


def _digest(*parts: Any) -> str:
    try:
        text = "".join(_C_ENCODER(parts, 0)) if _C_ENCODER else _ENCODER.encode(parts)
    except RecursionError:
        text = _ENCODER.encode(parts)
    return hashlib.sha256(text.encode()).hexdigest()


def execute(step: Step, ns: dict, code: CodeType | None = None) -> Any:
    """Run the step's code in ``ns``; a user exception becomes `StepFailed` with the user's
    own traceback (our frames cut off)."""
    code = code or step.compiled
    # site's exit()/quit() close sys.stdin before raising; these only raise SystemExit
    ns.setdefault("exit", _exit)
    ns.setdefault("quit", _exit)
    try:
        return eval(code, ns)  # eval runs exec-mode code too, and returns an expression's value
    except SystemExit as exc:  # must not end the kernel or the CLI, nor leave the run Executing
        raise StepFailed(exit_message(step.name, exc), user_traceback(exc, step.filename)) from None
    except Exception as exc:
        raise StepFailed(
            f"Step `{step.name}` raised {type(exc).__name__}: {exc}{_hint(exc)}",
            user_traceback(exc, step.filename),
        ) from exc


def _exit(code: object = None) -> None:
    raise SystemExit(code)


def exit_message(step_name: str, exc: SystemExit, filename: str | None = None) -> str:
    """The failure of a step whose code called sys.exit(), exit(), quit() or raised SystemExit."""
    filename = filename or f"<step {step_name}>"
    tb, line = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    text = linecache.getline(filename, line).strip() if line else ""
    where = f" (`{text}`, line {line})" if text else ""
    return (f"Step `{step_name}` called sys.exit() / exit(){where} with exit code {exc.code!r}. "
            "A step cannot end the kernel or the command, so the step failed instead. To fail a "
            "step on purpose raise an exception (e.g. `raise ValueError(...)`); to end the "
            "execution with a message use a fail step (--kind fail).")


def _hint(exc: Exception) -> str:
    if isinstance(exc, ValueError) and "read-only" in str(exc):
        return (" (a step's inputs are read-only so it cannot change another step's outputs; "
                "take a copy first, e.g. `x = x.copy()`)")
    if isinstance(exc, NameError):
        return (" (a step sees only its inputs, the parameters and the notebook's imports and "
                "definitions)")
    return ""


def user_traceback(exc: BaseException, filename: str) -> str:
    """The traceback from the user's code on: from the first frame in ``filename`` (a step's
    cell), else from the first frame outside this package."""
    package = str(Path(__file__).resolve().parents[1])
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    if tb is None:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename.startswith(package):
            tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def collect_outputs(step: Step, ns: dict) -> dict[str, Any]:
    try:  # ``ns`` is a plain dict: a KeyError is a missing output
        return {name: ns[name] for name in step.outputs}
    except KeyError:
        missing = [name for name in step.outputs if name not in ns]
    raise ContractError(
        f"Step `{step.name}` should output {', '.join(f'`{m}`' for m in missing)} but its code "
        "never assigned it (perhaps only in a branch of an if that did not run). Assign it on "
        "every path, or remove it from --outputs.")
