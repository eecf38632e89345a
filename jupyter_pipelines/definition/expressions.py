"""Python condition and fail-message expressions <-> SageMaker's condition language.

Python to SageMaker (export):

* operands: a literal; a parameter ``t`` -> ``{"Get": "Parameters.t"}``; a step output, bare or
  subscripted with constant keys, ``report["mse"]["value"]`` -> ``{"Std:JsonGet":
  {"PropertyFile": {"Get": "Steps.<producer>.PropertyFiles.report"}, "Path": "mse.value"}}``
  (``"@"`` is the whole output, JMESPath's identity);
* comparisons ``== < <= > >= in`` -> Equals, LessThan, ..., In; ``!=`` and ``not in`` ->
  Not(Equals) and Not(In); ``not`` -> Not; ``or`` -> Or; a top-level ``and`` (and a
  comparison chain) -> the Conditions list, a nested one -> Not(Or(Not ..., Not ...));
* a fail message: a string, or an f-string -> ``{"Std:Join": {"On": "", "Values": [...]}}``
  (format specs and ``!r`` are dropped: Std:Join cannot format).

Anything else (a call, arithmetic, an attribute, ``is``...) raises `NotExpressible` saying
what and why. SageMaker to Python (import) is the inverse, used for condition and fail steps
written by the SageMaker SDK; it raises `NotExpressible` for operands that are not
parameters, literals or outputs of local steps (such steps are drawn, not run).
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class NotExpressible(Exception):
    """``source`` cannot be said in the other language, because ``reason``."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"`{source}` {reason}")
        self.source, self.reason = source, reason


@dataclass(frozen=True)
class Output:
    """A step output an operand reads: the step that makes it and its name."""

    step: str
    name: str


# Python -> SageMaker: ``refer(name)`` says what a bare name is: "parameter", an `Output`,
# or None (neither).
Refer = Callable[[str], "str | Output | None"]

_COMPARE = {ast.Eq: "Equals", ast.Lt: "LessThan", ast.LtE: "LessThanOrEqualTo",
            ast.Gt: "GreaterThan", ast.GtE: "GreaterThanOrEqualTo", ast.In: "In"}
_NEGATED = {ast.NotEq: ast.Eq, ast.NotIn: ast.In}
_OPS = {name: op for op, name in _COMPARE.items()}
_WHAT = {ast.Call: "is a function call", ast.BinOp: "is arithmetic", ast.Attribute:
         "is an attribute (SageMaker reads JSON keys: write x['key'])", ast.IfExp:
         "is a conditional expression", ast.Lambda: "is a lambda", ast.NamedExpr: "is an assignment",
         ast.ListComp: "is a comprehension", ast.SetComp: "is a comprehension",
         ast.DictComp: "is a comprehension", ast.GeneratorExp: "is a comprehension",
         ast.JoinedStr: "is an f-string", ast.Starred: "is a starred expression",
         ast.Slice: "is a slice"}


def conditions(code: str, refer: Refer) -> list[dict]:
    """A condition step's expression as SageMaker's ``Conditions`` list (an AND)."""
    return _condition_list(ast.parse(code, mode="eval").body, refer)


def _condition_list(node: ast.expr, refer: Refer) -> list[dict]:
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        return [c for value in node.values for c in _condition_list(value, refer)]
    if isinstance(node, ast.Compare) and len(node.ops) > 1:
        return [_comparison(op, left, right, refer) for op, left, right in _pairs(node)]
    return [_condition(node, refer)]


def _pairs(node: ast.Compare):
    lefts = [node.left, *node.comparators[:-1]]
    return zip(node.ops, lefts, node.comparators, strict=True)


def _condition(node: ast.expr, refer: Refer) -> dict:
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        return {"Type": "Or", "Conditions": [_condition(v, refer) for v in node.values]}
    if isinstance(node, ast.BoolOp) or (isinstance(node, ast.Compare) and len(node.ops) > 1):
        # a nested AND: SageMaker has no And, so not (not a or not b)
        parts = _condition_list(node, refer)
        return _not({"Type": "Or", "Conditions": [_not(p) for p in parts]})
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return _not(_condition(node.operand, refer))
    if isinstance(node, ast.Compare):
        return _comparison(node.ops[0], node.left, node.comparators[0], refer)
    raise NotExpressible(ast.unparse(node), (
        "is not a comparison; SageMaker's conditions compare two values (Equals, GreaterThan, "
        "LessThan..., In), joined by and/or/not" + _because(node)))


def _because(node: ast.expr) -> str:
    what = _WHAT.get(type(node))
    return f"; it {what}" if what else ""


def _not(condition: dict) -> dict:
    return {"Type": "Not", "Condition": condition}


def _comparison(op: ast.cmpop, left: ast.expr, right: ast.expr, refer: Refer) -> dict:
    if type(op) in _NEGATED:
        return _not(_comparison(_NEGATED[type(op)](), left, right, refer))
    if type(op) not in _COMPARE:
        symbol = "is not" if isinstance(op, ast.IsNot) else "is"
        raise NotExpressible(ast.unparse(ast.Compare(left, [op], [right])), (
            f"uses `{symbol}`, which SageMaker's conditions do not have; compare with `==` or "
            "`!=` instead"))
    if isinstance(op, ast.In):
        if not isinstance(right, (ast.List, ast.Tuple, ast.Set)):
            raise NotExpressible(ast.unparse(right), (
                "is the right side of `in` but not a literal list; SageMaker's In condition "
                "takes a list of values, e.g. `x in ['a', 'b']`"))
        return {"Type": "In", "QueryValue": operand(left, refer),
                "Values": [operand(e, refer) for e in right.elts]}
    return {"Type": _COMPARE[type(op)], "LeftValue": operand(left, refer),
            "RightValue": operand(right, refer)}


def operand(node: ast.expr, refer: Refer) -> Any:
    """A literal, a parameter reference, or a JsonGet of a step output."""
    try:
        return _literal(node)
    except ValueError:
        pass
    keys: list[str | int] = []
    root = node
    while isinstance(root, ast.Subscript):
        try:
            key = ast.literal_eval(root.slice)
        except ValueError:
            key = None
        if type(key) not in (str, int):
            raise NotExpressible(ast.unparse(node), (
                f"uses the subscript `[{ast.unparse(root.slice)}]`; SageMaker's JsonGet paths "
                "take constant keys and indexes only"))
        keys.insert(0, key)
        root = root.value
    if not isinstance(root, ast.Name):
        what = _WHAT.get(type(root), "is not an input, a parameter or a literal")
        raise NotExpressible(ast.unparse(root), f"{what}, which SageMaker's conditions cannot "
                             "compute; compute it in an upstream step and compare that output")
    found = refer(root.id)
    if found == "parameter":
        if keys:
            raise NotExpressible(ast.unparse(node), "subscripts a parameter; SageMaker "
                                 "parameters are single values")
        return {"Get": f"Parameters.{root.id}"}
    if isinstance(found, Output):
        return json_get(found, keys)
    raise NotExpressible(root.id, "is neither a parameter nor an output of a step, so the "
                         "definition cannot refer to it")


def json_get(output: Output, keys: list[str | int]) -> dict:
    return {"Std:JsonGet": {
        "PropertyFile": {"Get": f"Steps.{output.step}.PropertyFiles.{output.name}"},
        "Path": format_path(keys)}}


def _literal(node: ast.expr) -> Any:
    """A JSON literal from a Python one (ValueError if ``node`` is not one)."""
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        keys = [_literal(k) if k is not None else None for k in node.keys]
        if not all(isinstance(k, str) for k in keys):
            raise ValueError
        return dict(zip(keys, (_literal(v) for v in node.values), strict=True))
    if isinstance(node, (ast.Constant, ast.UnaryOp)):
        value = ast.literal_eval(node)
        if value is None or type(value) in (bool, int, str) or (
                type(value) is float and math.isfinite(value)):
            return value
    raise ValueError


# -- fail messages -------------------------------------------------------------------------


def error_message(code: str, refer: Refer) -> str | dict:
    """A fail step's message expression as a string or a Std:Join."""
    node = ast.parse(code, mode="eval").body
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if not isinstance(node, ast.JoinedStr):
        raise NotExpressible(ast.unparse(node), (
            "is not a string or an f-string; SageMaker's ErrorMessage joins text, parameters "
            "and step outputs (Std:Join), so write the message as an f-string"))
    values: list[Any] = []
    for part in node.values:
        if isinstance(part, ast.Constant):
            value: Any = part.value
        else:
            value = operand(part.value, refer)
            if not isinstance(value, dict):
                value = str(value)
        if value == "":
            continue
        if isinstance(value, str) and values and isinstance(values[-1], str):
            values[-1] += value
        else:
            values.append(value)
    if all(isinstance(v, str) for v in values):
        return "".join(values)
    return {"Std:Join": {"On": "", "Values": values}}


# -- SageMaker -> Python -------------------------------------------------------------------

# ``resolve(reference)`` turns a Get/JsonGet into the Python name of a parameter or local
# output and the JsonGet path's keys, or raises NotExpressible.
Resolve = Callable[[dict], "tuple[str, list[str | int]]"]


def python_condition(conditions_list: list[dict], resolve: Resolve) -> str:
    """A Conditions list as one Python expression. A member ``Not(Or(Not a, Not b))`` stays
    ``not (not a or not b)`` (as ``a and b`` it would read back as two members); nested, it
    reads ``(a and b)``."""
    nodes = [_from_condition(c, resolve, top=True) for c in conditions_list]
    node = nodes[0] if len(nodes) == 1 else ast.BoolOp(ast.And(), nodes)
    return ast.unparse(node)


def _from_condition(c: dict, resolve: Resolve, top: bool = False) -> ast.expr:
    kind = c["Type"]
    if kind == "Or":
        return ast.BoolOp(ast.Or(), [_from_condition(x, resolve) for x in c["Conditions"]])
    if kind == "Not":
        inner = c["Condition"]
        if inner["Type"] in ("Equals", "In"):
            node = _from_condition(inner, resolve)
            node.ops = [ast.NotEq() if inner["Type"] == "Equals" else ast.NotIn()]
            return node
        if not top and inner["Type"] == "Or" and all(x["Type"] == "Not" for x in inner["Conditions"]):
            return ast.BoolOp(ast.And(), [_from_condition(x["Condition"], resolve)
                                          for x in inner["Conditions"]])
        return ast.UnaryOp(ast.Not(), _from_condition(inner, resolve))
    if kind == "In":
        values = ast.List([python_operand(v, resolve) for v in c["Values"]], ast.Load())
        return ast.Compare(python_operand(c["QueryValue"], resolve), [ast.In()], [values])
    return ast.Compare(python_operand(c["LeftValue"], resolve), [_OPS[kind]()],
                       [python_operand(c["RightValue"], resolve)])


def python_operand(value: Any, resolve: Resolve) -> ast.expr:
    if isinstance(value, dict) and ("Get" in value or "Std:JsonGet" in value):
        name, keys = resolve(value)
        node: ast.expr = ast.Name(name, ast.Load())
        for key in keys:  # -1 as Python parses it: a minus applied to 1
            node = ast.Subscript(node, ast.parse(repr(key), mode="eval").body, ast.Load())
        return node
    if isinstance(value, dict) and "Std:Join" in value:
        raise NotExpressible(json.dumps(value)[:80], "is a Std:Join, which a comparison operand "
                             "here cannot be")
    if isinstance(value, list):
        return ast.List([python_operand(v, resolve) for v in value], ast.Load())
    if isinstance(value, dict):
        return ast.Dict([ast.Constant(k) for k in value],
                        [python_operand(v, resolve) for v in value.values()])
    return ast.Constant(value)


def python_message(message: str | dict, resolve: Resolve) -> str:
    """A fail step's ErrorMessage as Python: a string literal or an f-string."""
    if isinstance(message, str):
        return repr(message)
    if not (isinstance(message, dict) and "Std:Join" in message):
        return ast.unparse(python_operand(message, resolve)) if isinstance(message, dict) else \
            repr(str(message))
    join = message["Std:Join"]
    parts: list[ast.expr] = []
    for i, value in enumerate(join["Values"]):
        if i and join["On"]:
            parts.append(ast.Constant(join["On"]))
        if isinstance(value, (dict, list)):
            parts.append(ast.FormattedValue(python_operand(value, resolve), -1, None))
        else:
            parts.append(ast.Constant(value if isinstance(value, str) else json.dumps(value)))
    merged: list[ast.expr] = []
    for part in parts:
        if isinstance(part, ast.Constant) and merged and isinstance(merged[-1], ast.Constant):
            merged[-1] = ast.Constant(merged[-1].value + part.value)
        elif part != ast.Constant(""):
            merged.append(part)
    node = ast.JoinedStr(merged)
    try:  # before Python 3.12 an f-string cannot hold every quote, nor a backslash in a field
        code = ast.unparse(node)
        same = ast.dump(ast.parse(code, mode="eval").body) == ast.dump(node)
    except (ValueError, SyntaxError):
        same = False
    if not same:
        raise NotExpressible(json.dumps(message)[:80], "cannot be written as a Python f-string")
    return code


# -- JsonGet paths (the JMESPath subset SageMaker's examples use) ------------------------------

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TOKEN = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_]*)|\.?("(?:[^"\\]|\\.)*")|\[(-?\d+)\]')


def format_path(keys: list[str | int]) -> str:
    """``["regression_metrics", "mse", "value"]`` -> ``regression_metrics.mse.value``;
    ``[]`` -> ``@`` (the whole document); odd keys quoted, indexes as ``[0]``."""
    out = ""
    for key in keys:
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            out += ("." if out else "") + (key if _IDENT.match(key) else json.dumps(key))
    return out or "@"


def parse_path(path: str) -> list[str | int] | None:
    """The inverse of `format_path`; None for paths outside that subset (filters etc.)."""
    if path == "@":
        return []
    keys: list[str | int] = []
    pos = 0
    while pos < len(path):
        match = _TOKEN.match(path, pos)
        if not match or (pos == 0 and path.startswith(".")):
            return None
        ident, quoted, index = match.groups()
        keys.append(ident if ident is not None else json.loads(quoted) if quoted else int(index))
        pos = match.end()
    return keys or None
