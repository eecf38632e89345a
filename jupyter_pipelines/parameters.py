"""Pipeline parameters: typed, with defaults, overridable per run (SageMaker's ParameterString,
ParameterInteger, ParameterFloat and ParameterBoolean)."""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import DuplicateOutputError, NameRuleError, ParameterError, did_you_mean

NAME_RULE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TYPES = {bool: "Boolean", int: "Integer", float: "Float", str: "String"}
PYTHON_TYPES = {name: kind for kind, name in TYPES.items()}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not NAME_RULE.fullmatch(name):
        raise NameRuleError(
            f"{what} name {name!r} is not allowed: names are 1 to 64 characters of letters, digits, "
            "'_' and '-' (SageMaker's rule ^[A-Za-z0-9_-]{1,64}$). Rename it."
        )
    return name


def pipeline_name(stem: str) -> str:
    """A pipeline name from a file's stem: other characters become '-' (SageMaker's rule)."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "-" for c in stem)[:64]
    return cleaned or "pipeline"


@dataclass(frozen=True)
class Parameter:
    """A typed parameter. Its type comes from its default, or from ``type_name`` (String,
    Integer, Float, Boolean) when declared, as a SageMaker definition does; a parameter
    without a default must be given a value for every run."""

    name: str
    default: Any
    enum_values: tuple | None = None
    type_name: str | None = None

    @property
    def type(self) -> str:
        return self.type_name or TYPES[type(self.default)]

    @property
    def python_type(self) -> type:
        return PYTHON_TYPES[self.type]

    def __post_init__(self) -> None:
        check_name(self.name, "Parameter")
        if self.type_name is not None:
            if not isinstance(self.type_name, str) or self.type_name not in PYTHON_TYPES:
                raise ParameterError(
                    f"Parameter `{self.name}` has type {self.type_name!r}; the types are "
                    f"{', '.join(PYTHON_TYPES)}.")
            if self.default is None:
                return
            if self.type_name == "Float" and type(self.default) is int:
                object.__setattr__(self, "default", float(self.default))
            if type(self.default) is not PYTHON_TYPES[self.type_name]:
                raise ParameterError(
                    f"Parameter `{self.name}` is declared {self.type_name} but its default "
                    f"{self.default!r} is {_a(TYPES.get(type(self.default), type(self.default).__name__))}."
                    " Make the default match the type.")
            object.__setattr__(self, "type_name", None)  # the default says it: one spelling
        if type(self.default) not in TYPES:
            raise ParameterError(
                f"Parameter `{self.name}` has default {self.default!r} of type "
                f"{type(self.default).__name__}; a parameter is a String, Integer, Float or Boolean, "
                "and its type comes from its default. Give it a literal str, int, float or bool."
            )
        if type(self.default) is float and not math.isfinite(self.default):
            raise ParameterError(
                f"Parameter `{self.name}` has default {self.default!r}; a Float parameter's value "
                "must be a finite number (JSON, and so a pipeline definition, has no NaN or "
                "infinity). Give it a finite default.")
        if self.enum_values is not None:
            if isinstance(self.enum_values, (str, bytes, Mapping)) or not hasattr(
                    self.enum_values, "__iter__"):
                raise ParameterError(
                    f"Parameter `{self.name}`: enum_values must be a list of the allowed values "
                    f"(e.g. enum_values=['a', 'b']); got {_short(self.enum_values)}.")
            object.__setattr__(self, "enum_values", tuple(self.enum_values))
            self.check_enum(self.default)

    def check_enum(self, value: Any) -> None:
        if self.enum_values is not None and value not in self.enum_values:
            raise ParameterError(
                f"Parameter `{self.name}` got {value!r}, which is not one of its allowed values "
                f"{list(self.enum_values)}. Pass one of those."
            )

    def parse(self, value: Any) -> Any:
        """Convert an override (a string from the command line, or a Python value) to our type."""
        kind = self.python_type
        try:
            if isinstance(value, str) and kind is not str:
                text = value.strip()
                if kind is bool:
                    if text.lower() not in _TRUE | _FALSE:
                        raise ValueError
                    result = text.lower() in _TRUE
                else:
                    result = kind(text)
            elif kind is float and type(value) in (int, float):
                result = float(value)
            elif type(value) is kind:
                result = value
            else:
                raise ValueError
        except (ValueError, OverflowError):
            raise ParameterError(
                f"Parameter `{self.name}` is {_a(self.type)} (default {self.default!r}), but the "
                f"value given was {value!r}, which is not a valid {self.type}. "
                + _HINTS[self.type]
            ) from None
        if kind is float and not math.isfinite(result):
            raise ParameterError(
                f"Parameter `{self.name}` is a Float (default {self.default!r}), but the value "
                f"given was {value!r}, which is not a finite number. A Float parameter's value must "
                "be finite (JSON, and so a pipeline definition and the run's history, has no NaN "
                "or infinity). " + _HINTS["Float"])
        self.check_enum(result)
        return result


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _a(word: str) -> str:
    return ("an " if word[0] in "AEIOU" else "a ") + word


_HINTS = {
    "Integer": "Pass a whole number, e.g. --param NAME=3.",
    "Float": "Pass a number, e.g. --param NAME=6.0.",
    "Boolean": "Pass true or false.",
    "String": "Pass a string.",
}


def parse_parameters_cell(code: str) -> list[Parameter]:
    """The ``%%parameters`` cell: plain assignments of literal defaults, one per line."""
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise ParameterError(
            f"The parameters cell is not valid Python ({exc.msg} at line {exc.lineno}). It must hold "
            "plain assignments such as `mse_threshold = 6.0`."
        ) from None
    params = []
    for stmt in tree.body:
        text = ast.get_source_segment(code, stmt)
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)):
            raise ParameterError(
                f"Line {stmt.lineno} of the parameters cell, `{text}`, is not a plain assignment. "
                "A parameters cell holds only lines like `name = <literal>` (e.g. "
                "`mse_threshold = 6.0`); compute derived values in a step."
            )
        try:
            default = ast.literal_eval(stmt.value)
        except (ValueError, TypeError, MemoryError, RecursionError):
            raise ParameterError(
                f"Parameter `{stmt.targets[0].id}` on line {stmt.lineno} has the default "
                f"`{ast.get_source_segment(code, stmt.value)}`, which is not a literal. Defaults must "
                "be literal strings, integers, floats or booleans, so the pipeline can be exported."
            ) from None
        name = stmt.targets[0].id
        if any(p.name == name for p in params):
            raise ParameterError(
                f"Parameter `{name}` is assigned twice in the parameters cell (again on line "
                f"{stmt.lineno}). Keep one default."
            )
        try:
            params.append(Parameter(name, default, _allowed(code, stmt)))
        except ParameterError as exc:
            raise ParameterError(f"Line {stmt.lineno} of the parameters cell: {exc}") from None
    return params


ONE_OF = "# one of:"  # a parameter line's comment listing its allowed values


def _allowed(code: str, stmt: ast.Assign) -> tuple | None:
    """The allowed values a line's comment lists (``x = "a"  # one of: "a", "b"``), or None."""
    line = code.splitlines()[stmt.end_lineno - 1][stmt.end_col_offset:]
    comment = line.strip()
    if not comment.startswith(ONE_OF):
        return None
    text = comment[len(ONE_OF):].strip()
    try:
        values = ast.literal_eval(f"[{text}]")
    except (ValueError, SyntaxError):
        raise ParameterError(
            f"Parameter `{stmt.targets[0].id}`: its allowed values "
            f"`{text}` are not a list of literals. Write them like `{ONE_OF} \"a\", \"b\"`."
        ) from None
    return tuple(values)


def resolve(parameters: dict[str, Parameter], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The values a run uses: defaults, replaced by parsed overrides."""
    values = {name: p.default for name, p in parameters.items()}
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, Mapping):
        raise ParameterError(
            f"The parameters of a run must be a dict of parameter name to value, e.g. "
            f"start(parameters={{'mse_threshold': 3.0}}); got {_short(overrides)} "
            f"({type(overrides).__name__}).")
    for name, value in overrides.items():
        if not isinstance(name, str):
            raise ParameterError(
                f"The parameters of a run are keyed by parameter name (a str); got the key "
                f"{_short(name)} ({type(name).__name__}). The pipeline's parameters are: "
                f"{', '.join(f'`{n}`' for n in parameters) or 'none'}.")
        if name not in parameters:
            known = ", ".join(f"`{n}`" for n in parameters) or "none"
            raise ParameterError(
                f"Unknown parameter `{name}`.{did_you_mean(name, parameters)} The pipeline's "
                f"parameters are: {known}."
            )
        values[name] = parameters[name].parse(value)
    for name, value in values.items():
        if value is None:
            raise ParameterError(
                f"Parameter `{name}` ({parameters[name].type}) has no default value, so every run "
                f"must give one: --param {name}=VALUE (or start({{{name!r}: ...}}) in Python).")
    return values


def check_variable_name(name: str) -> str:
    """A parameter a step reads is a Python variable, so its name must be an identifier."""
    if not isinstance(name, str):
        raise NameRuleError(f"A parameter's name must be a str; got {_short(name)} "
                            f"({type(name).__name__}).")
    if not name.isidentifier():
        raise NameRuleError(
            f"Parameter name {name!r} must also be a Python identifier, since steps read it "
            "as a variable. Use letters, digits and '_' only."
        )
    return name


def parse_assignments(items: list[str] | None) -> dict[str, str]:
    """``["a=1", "b=x"]`` (``--param`` values) as a dict of strings."""
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ParameterError(
                f"--param {item!r} is not of the form NAME=VALUE (e.g. --param mse_threshold=3.0)."
            )
        out[name.strip()] = value
    return out


def check_not_an_output(name: str, steps: Mapping[str, Any], where: str = "") -> None:
    """A parameter and a step output with one name would overwrite each other in the
    notebook and make the DAG ambiguous: refuse it when the parameter is declared."""
    for step in steps.values():
        if name in step.outputs:
            raise DuplicateOutputError(
                f"{where}Parameter `{name}` has the name of an output of step `{step.name}` "
                f"(a step assigns `{name}`), so the two would overwrite each other. Rename the "
                f"parameter, or rename the output in step `{step.name}` (or make it private as "
                f"`_{name}`). Nothing was changed.")


def check_no_output_is_a_parameter(step: Any, parameters: Mapping[str, Any], replacing: bool) -> None:
    """`check_not_an_output` seen from the step being added."""
    clash = next((o for o in step.outputs if o in parameters), None)
    if clash is not None:  # refused now, not at the next run
        raise DuplicateOutputError(
            f"Step `{step.name}` outputs `{clash}`, which is also a parameter, so the two would "
            f"overwrite each other. Rename the output in step `{step.name}` (or make it private "
            f"as `_{clash}`), or rename the parameter. The step was not "
            + ("changed." if replacing else "added."))
