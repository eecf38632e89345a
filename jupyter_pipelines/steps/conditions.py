"""`condition` (SageMaker Condition) and `fail` (SageMaker Fail) steps.

A condition's cell is one Python expression giving True or False. Comparisons (``== != < <=
> >= in`` and ``not in``) joined by ``not``, ``and`` and ``or`` have each operand evaluated
separately, so its value is recorded and shown; any other expression (a call, ``is``) is
evaluated whole. Only what SageMaker's condition language can say (comparisons of inputs,
parameters, literals and subscripts of them) exports to a definition JSON
(`jupyter_pipelines.definition.expressions`).
"""

from __future__ import annotations

import ast
from typing import Any

from ..errors import ContractError, DefinitionError, ExecutionFailed
from ..parameters import check_name
from .base import Kind, RunContext, Step, StepOutcome, execute

COMPARISONS = {
    ast.Eq: "Equals", ast.NotEq: "NotEquals", ast.Lt: "LessThan", ast.LtE: "LessThanOrEqualTo",
    ast.Gt: "GreaterThan", ast.GtE: "GreaterThanOrEqualTo", ast.In: "In", ast.NotIn: "NotIn",
}
_SYMBOLS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
            ast.GtE: ">=", ast.In: "in", ast.NotIn: "not in"}
class ConditionKind(Kind):
    name = "condition"
    sagemaker_type = "Condition"
    options = {"if_steps": (), "else_steps": ()}
    single_expression = True
    expression_hint = "e.g. `report['mse'] <= mse_threshold`"

    def check_options(self, name: str, opts: dict) -> dict:
        if_steps, else_steps = tuple(opts["if_steps"] or ()), tuple(opts["else_steps"] or ())
        for branch in if_steps + else_steps:
            check_name(branch, "Branch step")
        both = sorted(set(if_steps) & set(else_steps))
        if both:
            raise DefinitionError(
                f"Condition `{name}` lists {both} in both --if and --else; a step belongs to one "
                "branch only."
            )
        if name in if_steps + else_steps:
            raise DefinitionError(f"Condition `{name}` names itself as a branch step.")
        return {"if_steps": if_steps, "else_steps": else_steps}

    def run(self, step: Step, ns: dict, ctx: RunContext) -> StepOutcome:
        operands: list[dict] = []
        expr = ast.parse(step.code, mode="eval").body
        outcome = _evaluate(step, expr, ns, operands)
        if not isinstance(outcome, bool):
            raise ContractError(
                f"Condition `{step.name}` evaluated to {outcome!r} ({type(outcome).__name__}), not "
                "True or False. Make the expression a comparison, e.g. `x <= threshold`."
            )
        meta = {"Outcome": str(outcome), "Expression": step.code, "Comparisons": operands}
        return StepOutcome({}, {"Condition": meta})


def _value(step: Step, node: ast.expr, ns: dict) -> Any:
    code = compile(ast.Expression(node), step.filename, "eval")
    return plain(execute(step, ns, code))


def plain(value: Any) -> Any:
    """numpy scalars as Python scalars, so recorded operands are JSON-able."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    return value


def _evaluate(step: Step, node: ast.expr, ns: dict, record: list[dict]) -> Any:
    if isinstance(node, ast.BoolOp):
        is_and = isinstance(node.op, ast.And)
        for value in node.values:
            result = _evaluate(step, value, ns, record)
            if bool(result) != is_and:
                return result
        return result
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _evaluate(step, node.operand, ns, record)
    if isinstance(node, ast.Compare) and all(type(op) in COMPARISONS for op in node.ops):
        left_node, left = node.left, _value(step, node.left, ns)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _value(step, right_node, ns)
            try:
                result = plain(_compare(op, left, right))
            except (TypeError, ValueError) as exc:
                raise ContractError(
                    f"Condition `{step.name}` cannot compare `{ast.unparse(left_node)}` = {left!r} "
                    f"with `{ast.unparse(right_node)}` = {right!r}: {exc}."
                ) from None
            if not isinstance(result, bool):
                raise ContractError(
                    f"Condition `{step.name}` evaluated `{ast.unparse(left_node)} "
                    f"{_SYMBOLS[type(op)]} {ast.unparse(right_node)}` to {type(result).__name__} "
                    f"{result!r}, not True or False (comparing arrays gives arrays). Compare single "
                    "values, e.g. `float(x.mean()) <= limit`."
                )
            record.append({
                "Type": COMPARISONS[type(op)], "Operator": _SYMBOLS[type(op)],
                "LeftExpression": ast.unparse(left_node), "LeftName": short_name(left_node),
                "LeftValue": left,
                "RightExpression": ast.unparse(right_node), "RightName": short_name(right_node),
                "RightValue": right,
                "Outcome": str(result),
            })
            if not result:
                return result
            left_node, left = right_node, right
        return result
    return _value(step, node, ns)


_GENERIC_KEYS = {"value", "values", "val", "score"}


def short_name(node: ast.expr) -> str:
    """A short display name for an operand: ``report["metrics"]["mse"]["value"]`` -> ``mse``."""
    keys = []
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        key = node.attr if isinstance(node, ast.Attribute) else getattr(node.slice, "value", None)
        if isinstance(key, str):
            keys.append(key)
        node = node.value
    meaningful = [k for k in keys if k.lower() not in _GENERIC_KEYS]
    if meaningful:
        return meaningful[0]
    if isinstance(node, ast.Name):
        return node.id
    return ast.unparse(node)


def short_expression(code: str) -> str:
    """The condition with operands shortened: ``mse <= mse_threshold``."""
    tree = ast.parse(code, mode="eval")

    class Shorten(ast.NodeTransformer):
        def visit_Subscript(self, node):
            return ast.Name(short_name(node))

        visit_Attribute = visit_Subscript

    return ast.unparse(Shorten().visit(tree))


def _compare(op: ast.cmpop, a: Any, b: Any) -> Any:
    import operator

    table = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
             ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
             ast.In: lambda x, y: x in y, ast.NotIn: lambda x, y: x not in y}
    return table[type(op)](a, b)


class FailKind(Kind):
    """The cell is an expression (an f-string is fine) giving the failure message."""

    name = "fail"
    sagemaker_type = "Fail"
    cacheable = False
    single_expression = True
    expression_hint = 'e.g. f"MSE {mse} is above {mse_threshold}"'

    def run(self, step: Step, ns: dict, ctx: RunContext) -> StepOutcome:
        message = str(execute(step, ns))
        raise ExecutionFailed(message)
