"""Property tests (hypothesis) for the SageMaker-format definition JSON: export, import, and
the Python <-> SageMaker condition / fail-message / JsonGet-path translations.

1. Random valid pipelines export to a valid document, survive export -> import -> export
   unchanged, and the imported pipeline runs exactly as the original.
2. Expressible conditions and fail messages translate to SageMaker and back stably and with
   the same meaning.
3. ``parse_path(format_path(keys)) == keys``.
4. Conditions / fail messages SageMaker cannot say still run locally, and exporting them names
   the step and the offending sub-expression.

The bugs these properties found are pinned by regression tests at the end of the file.
"""

from __future__ import annotations

import ast
import json
import keyword
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from jupyter_pipelines import Pipeline

try:
    import jmespath
except ImportError:  # not a dependency: only for the check that paths mean what JMESPath says
    jmespath = None
from jupyter_pipelines.definition import expressions
from jupyter_pipelines.definition.expressions import NotExpressible, Output
from jupyter_pipelines.definition.validation import validate
from jupyter_pipelines.errors import ExportError, ParameterError

SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}

# -- 1. random valid pipelines ------------------------------------------------------------------

_RESERVED = set(keyword.kwlist) | set(keyword.softkwlist) | {"len", "str"}  # builtins we call
_OURS = re.compile(r"(out|dct|txt|br|joined|after)\d*")  # the names our step code assigns

param_names = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,11}", fullmatch=True),
    st.sampled_from(["x", "_x", "A1", "input", "id", "max", "sum", "Parameters", "Steps"]),  # builtins too
).filter(lambda s: s not in _RESERVED and not _OURS.fullmatch(s) and not s.startswith("__"))
step_names = st.from_regex(r"[A-Za-z0-9_-]{1,16}", fullmatch=True)
defaults = st.one_of(
    st.integers(-20, 20),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.booleans(),
)
cache_expires = st.sampled_from([None, "P1D", "PT2H", "P1DT30M", "PT1.5S", "P2W", "P1Y", 3600, 90.5])
short_text = st.none() | st.text(max_size=12)


@dataclass
class Spec:
    """A pipeline as data, shown as the Python that builds it (for readable failures)."""

    params: list[tuple[str, Any]] = field(default_factory=list)
    steps: list[tuple[str, str, str, dict]] = field(default_factory=list)  # name, code, kind, kw
    overrides: list[dict | None] = field(default_factory=list)

    def build(self) -> Pipeline:
        p = Pipeline("props", persist=False)
        for name, default in self.params:
            p.add_parameter(name, default)
        for name, code, kind, kwargs in self.steps:
            p.add_step(name, code, kind=kind, **kwargs)
        return p

    def __repr__(self) -> str:
        lines = ['p = Pipeline("props", persist=False)']
        lines += [f"p.add_parameter({n!r}, {d!r})" for n, d in self.params]
        for name, code, kind, kwargs in self.steps:
            extra = "".join(f", {k}={v!r}" for k, v in kwargs.items())
            lines.append(f"p.add_step({name!r}, {code!r}, kind={kind!r}{extra})")
        lines.append(f"# overrides: {self.overrides!r}")
        return "\n".join(lines)


def _common_options(draw, earlier: list[str]) -> dict:
    kw: dict[str, Any] = {}
    if earlier and draw(st.booleans()):
        kw["depends_on"] = draw(st.lists(st.sampled_from(earlier), max_size=2, unique=True))
    if draw(st.integers(0, 3)) == 0:
        kw["cache"] = False
    expire = draw(cache_expires)
    if expire is not None:
        kw["cache_expire"] = expire
    retry = draw(st.integers(0, 2))
    if retry:
        kw["retry"] = retry
        kw["retry_backoff"] = draw(st.sampled_from([0, 0.25, 1.0, 2]))
    for key in ("display_name", "description"):
        text = draw(short_text)
        if text is not None:
            kw[key] = text
    return kw


def _param_atom(draw, name: str, default: Any) -> tuple[str, list[dict]]:
    """A comparison of a parameter, and overrides that make it True and False."""
    if isinstance(default, bool):
        op = draw(st.sampled_from(["==", "!="]))
        return f"{name} {op} True", [{name: True}, {name: False}]
    if isinstance(default, str):
        lit = draw(st.text(max_size=3))
        form = draw(st.sampled_from(["{n} == {v!r}", "{n} != {v!r}", "{n} in [{v!r}, 'zz']",
                                     "{n} not in ['zz', {v!r}]", "{n} in ({v!r}, 'zz')"]))
        return form.format(n=name, v=lit), [{name: lit}, {name: lit + "_"}]
    c = draw(st.integers(-25, 25))
    op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
    cast = float if isinstance(default, float) else int
    # a chain is exported as two conditions, read back as `and`: a block keeps the code
    low = draw(st.sampled_from(["", "-10000000 < "]))
    return f"{low}{name} {op} {c}", [{name: cast(c)}, {name: cast(c + 1)}, {name: cast(c - 1)}]


@st.composite
def pipelines(draw) -> Spec:
    spec = Spec()
    for name in draw(st.lists(param_names, min_size=1, max_size=3, unique=True)):
        spec.params.append((name, draw(defaults)))
    names = iter(draw(st.lists(step_names, min_size=14, max_size=14, unique=True)))
    nums = [n for n, d in spec.params if not isinstance(d, str)]       # numeric expressions
    strs = [n for n, d in spec.params if isinstance(d, str)]           # string expressions
    json_reads: list[str] = []  # outputs a condition / fail message may read (JsonGet)
    made: list[str] = []        # step names, in order of creation
    steps: list[tuple[str, str, str, dict]] = []

    def processing(name: str, lines: list[str], **kw) -> None:
        steps.append((name, "\n".join(lines), "processing", {**_common_options(draw, made), **kw}))
        made.append(name)

    def number(sources: list[str]) -> str:
        chosen = draw(st.lists(st.sampled_from(sources), min_size=1, max_size=2)) if sources else []
        expr = " + ".join([*chosen, str(draw(st.integers(-5, 5)))])
        if strs and draw(st.booleans()):
            expr += f" + len({draw(st.sampled_from(strs))})"
        return expr

    for i in range(draw(st.integers(1, 3))):  # upstream chain/DAG
        lines = [f"out{i} = {number(nums)}"]
        if draw(st.booleans()):
            lines.append(f"dct{i} = {{'k': [out{i}, 1.5], 'm': {{'v': out{i} * 2}}, 'name': 'n{i}'}}")
        if draw(st.booleans()):
            lines.append(f"txt{i} = str(out{i}) + {draw(st.text(max_size=3))!r}")
        if draw(st.booleans()):
            lines.append(f"_private{i} = out{i} - 1")
        processing(next(names), lines)
        nums.append(f"out{i}")
        json_reads.append(f"out{i}")
        if any(line.startswith("dct") for line in lines):
            nums += [f"dct{i}['m']['v']", f"dct{i}['k'][0]", f"dct{i}['k'][-1]"]
            json_reads += [f"dct{i}['m']['v']", f"dct{i}['k'][0]", f"dct{i}['k'][-2]", f"dct{i}['name']"]
            strs.append(f"dct{i}['name']")
        if any(line.startswith("txt") for line in lines):
            strs.append(f"txt{i}")
            json_reads.append(f"txt{i}")

    spec.overrides = [None]
    if draw(st.integers(0, 3)):  # a condition with branches
        cond = next(names)
        pname, pdefault = draw(st.sampled_from(spec.params))
        atom, flips = _param_atom(draw, pname, pdefault)
        spec.overrides += flips
        atoms = [ast.parse(atom, mode="eval").body]
        for _ in range(draw(st.integers(0, 2))):
            left = draw(st.sampled_from([n for n in nums if n not in dict(spec.params)] or nums))
            form = draw(st.sampled_from(["{l} {op} {c}", "{c} {op} {l} {op2} {c2}", "not {l} {op} {c}"]))
            text = form.format(l=left, c=draw(st.integers(-10, 10)), c2=draw(st.integers(-10, 10)),
                               op=draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="])),
                               op2=draw(st.sampled_from(["<", "<="])))
            atoms.append(ast.parse(text, mode="eval").body)
        atoms = draw(st.permutations(atoms))
        tree = atoms[0]
        for other in atoms[1:]:
            op = draw(st.sampled_from([ast.And, ast.Or]))
            tree = ast.BoolOp(op(), [tree, other] if draw(st.booleans()) else [other, tree])
        if draw(st.integers(0, 4)) == 0:
            tree = ast.UnaryOp(ast.Not(), tree)
        code = ast.unparse(tree)
        if draw(st.booleans()):  # not as ast.unparse writes it (the same syntax tree: no block)
            code = f"({code})"
        cond_kw = _common_options(draw, made)
        made.append(cond)
        branches: dict[str, list[str]] = {"if_steps": [], "else_steps": []}
        cond_index = len(steps)
        steps.append((cond, code, "condition", cond_kw))
        post_nums = list(nums)

        if draw(st.booleans()):  # two steps on opposite branches output `joined`; a later step reads it
            for side, form in (("if_steps", "joined = {} + 1"), ("else_steps", "joined = ({}) * 2")):
                name = next(names)
                branches[side].append(name)
                processing(name, [form.format(number(nums))])
            post_nums.append("joined")
        if draw(st.booleans()):  # a fail step with an f-string message
            name = next(names)
            branches[draw(st.sampled_from(["if_steps", "else_steps"]))].append(name)
            parts: list[ast.expr] = []
            for operand in (pname, draw(st.sampled_from(json_reads))):
                text = draw(st.text(max_size=4))
                if text:
                    parts.append(ast.Constant(text))
                # `!s` is dropped by the export (Std:Join cannot format): then a block keeps the code
                conversion = draw(st.sampled_from([-1, -1, ord("s")]))
                parts.append(ast.FormattedValue(ast.parse(operand, mode="eval").body, conversion, None))
            message = ast.unparse(ast.JoinedStr(parts))
            try:  # Python < 3.12 cannot write every f-string (quotes in both text and field)
                assume(ast.unparse(ast.parse(message, mode="eval")) == message)
            except SyntaxError:
                assume(False)
            if draw(st.booleans()):
                message = f"({message})"
            steps.append((name, message, "fail", _common_options(draw, made)))
            made.append(name)
        for b in range(draw(st.integers(0, 2))):  # other branch steps
            name = next(names)
            branches[draw(st.sampled_from(["if_steps", "else_steps"]))].append(name)
            processing(name, [f"br{b} = {number(nums)}"])
            post_nums.append(f"br{b}")
        if draw(st.integers(0, 3)) == 0:  # a condition nested in a branch
            inner, leaf = next(names), next(names)
            branches[draw(st.sampled_from(["if_steps", "else_steps"]))].append(inner)
            pname2, pdefault2 = draw(st.sampled_from(spec.params))
            atom2, flips2 = _param_atom(draw, pname2, pdefault2)
            spec.overrides += flips2[:1]
            steps.append((inner, atom2, "condition",
                          {**_common_options(draw, made), "if_steps": [leaf]}))
            made.append(inner)
            processing(leaf, ["br9 = 9"])
            post_nums.append("br9")
        steps[cond_index] = (cond, code, "condition", {**cond_kw, **branches})
        nums = post_nums

    for j in range(draw(st.integers(0, 2))):  # downstream steps
        processing(next(names), [f"after{j} = {number(nums)}"])
        nums.append(f"after{j}")

    spec.steps = draw(st.permutations(steps))  # the order steps are added in does not matter
    return spec


def _nesting(steps: list[dict]) -> dict[str, tuple[list[str], list[str]]]:
    """Condition name -> the names of its IfSteps and ElseSteps, at any depth."""
    out = {}
    for obj in steps:
        if obj["Type"] == "Condition":
            if_steps, else_steps = obj["Arguments"].get("IfSteps", []), obj["Arguments"].get("ElseSteps", [])
            out[obj["Name"]] = ([s["Name"] for s in if_steps], [s["Name"] for s in else_steps])
            out.update(_nesting(if_steps + else_steps))
    return out


def _outcome(ex, pipeline: Pipeline) -> dict:
    statuses = {name: record.status for name, record in ex.steps.items()}
    outputs = {(name, out): ex.result(name, out) for name, record in ex.steps.items()
               if record.status == "Succeeded" for out in pipeline.steps[name].outputs}
    return {"status": ex.status, "failure": ex.failure_reason, "steps": statuses, "outputs": outputs}


@settings(max_examples=60, **SETTINGS)
@given(pipelines())
def test_random_pipelines_round_trip_and_run_the_same(spec):
    note(repr(spec))
    p = spec.build()
    text = p.definition()
    doc = json.loads(text)
    validate(doc)                                                # (a) a valid definition
    nested = _nesting(doc["Steps"])                              # branch steps nest in their condition
    branch_steps = set()
    for name, _, kind, kwargs in spec.steps:
        if kind == "condition":
            if_steps, else_steps = kwargs.get("if_steps", []), kwargs.get("else_steps", [])
            assert nested[name] == (if_steps, else_steps)
            branch_steps |= {*if_steps, *else_steps}
    assert {s["Name"] for s in doc["Steps"]} == {name for name, *_ in spec.steps} - branch_steps
    q = Pipeline.from_definition(text, persist=False)
    assert q.definition() == text                                # (b) export -> import -> export
    assert set(q.steps) == set(p.steps)
    for overrides in spec.overrides:                             # (c) the same runs
        expected = _outcome(p.start(overrides, display=False), p)
        assert expected["status"] in ("Succeeded", "Failed")
        assert _outcome(q.start(overrides, display=False), q) == expected


# -- 2. conditions and fail messages ----------------------------------------------------------

PARAMS = {"p0", "p1", "p2"}                 # p0, p1 numbers; p2 a string
OUTPUTS = {"o0", "o1", "o2"}                # o0, o1: {"a": {"b": n}, "l": [n, n], "s": str}; o2: n


def refer(name: str):
    if name in PARAMS:
        return "parameter"
    if name in OUTPUTS:
        return Output("Make", name)
    return None


def resolve(ref: dict) -> tuple[str, list]:
    if "Get" in ref:
        root, _, name = ref["Get"].partition(".")
        assert root == "Parameters"
        return name, []
    inner = ref["Std:JsonGet"]
    keys = expressions.parse_path(inner["Path"])
    assert keys is not None
    return inner["PropertyFile"]["Get"].rpartition(".")[2], keys


def _e(src: str) -> ast.expr:
    return ast.parse(src, mode="eval").body


small_numbers = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, -1.5, 2.0, 1e16]), st.booleans())
small_strings = st.one_of(st.sampled_from(["", "a", "b", "ab", "é"]), st.text(max_size=3))
num_operands = st.one_of(
    st.sampled_from(["p0", "p1", "o2", "o0['a']['b']", "o1['l'][0]", "o0['l'][1]", "o1['l'][-1]",
                     "o0['l'][-2]"]).map(_e),
    small_numbers.map(ast.Constant),
)
str_operands = st.one_of(
    st.sampled_from(["p2", "o0['s']", "o1['s']"]).map(_e),
    small_strings.map(ast.Constant),
)
COMPARE_OPS = [ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE]


@st.composite
def atoms(draw) -> ast.expr:
    operands = draw(st.sampled_from([num_operands, str_operands]))
    form = draw(st.sampled_from(["compare", "chain", "in"]))
    if form == "in":
        container = draw(st.sampled_from(["list", "tuple", "set"]))
        elts = draw(st.lists(operands, min_size=1 if container == "set" else 0, max_size=3))
        right = (ast.Set(elts) if container == "set" else
                 ast.List(elts, ast.Load()) if container == "list" else ast.Tuple(elts, ast.Load()))
        op = draw(st.sampled_from([ast.In, ast.NotIn]))
        return ast.Compare(draw(operands), [op()], [right])
    n = 1 if form == "compare" else draw(st.integers(2, 3))
    ops = [draw(st.sampled_from(COMPARE_OPS))() for _ in range(n)]
    return ast.Compare(draw(operands), ops, [draw(operands) for _ in range(n)])


condition_trees = st.recursive(
    atoms(),
    lambda children: st.one_of(
        st.lists(children, min_size=2, max_size=3).map(lambda v: ast.BoolOp(ast.And(), v)),
        st.lists(children, min_size=2, max_size=3).map(lambda v: ast.BoolOp(ast.Or(), v)),
        children.map(lambda c: ast.UnaryOp(ast.Not(), c)),
    ),
    max_leaves=6,
)


@st.composite
def environments(draw) -> dict:
    def output():
        return {"a": {"b": draw(small_numbers)}, "l": [draw(small_numbers), draw(small_numbers)],
                "s": draw(small_strings)}
    return {"p0": draw(small_numbers), "p1": draw(small_numbers), "p2": draw(small_strings),
            "o0": output(), "o1": output(), "o2": draw(small_numbers)}


@settings(max_examples=300, **SETTINGS)
@given(condition_trees, st.lists(environments(), min_size=3, max_size=3))
def test_conditions_translate_stably_and_with_the_same_meaning(tree, envs):
    code = ast.unparse(tree)
    exported = expressions.conditions(code, refer)
    as_json = json.loads(json.dumps(exported))              # through the JSON text, as a file does
    assert as_json == exported
    back = expressions.python_condition(as_json, resolve)
    note(f"code: {code}\nback: {back}")
    assert expressions.conditions(back, refer) == exported
    for env in envs:
        assert bool(eval(back, {}, dict(env))) == bool(eval(code, {}, dict(env)))


def test_nested_and_is_exported_with_de_morgan_and_read_back():
    code = "p0 > 1 or (p1 < 2 and o0['a']['b'] != 3)"
    exported = expressions.conditions(code, refer)
    assert exported == [{"Type": "Or", "Conditions": [
        {"Type": "GreaterThan", "LeftValue": {"Get": "Parameters.p0"}, "RightValue": 1},
        {"Type": "Not", "Condition": {"Type": "Or", "Conditions": [
            {"Type": "Not", "Condition": {"Type": "LessThan", "LeftValue": {"Get": "Parameters.p1"},
                                          "RightValue": 2}},
            {"Type": "Not", "Condition": {"Type": "Not", "Condition": {
                "Type": "Equals", "LeftValue": expressions.json_get(Output("Make", "o0"), ["a", "b"]),
                "RightValue": 3}}}]}}]}]
    assert expressions.python_condition(exported, resolve) == code
    assert expressions.conditions("1 < p0 < 3", refer) == expressions.conditions("1 < p0 and p0 < 3", refer)


def _fstring(parts: list[ast.expr]) -> str:
    """An f-string's source, if this Python can write it (< 3.12: no backslash in a field)."""
    try:
        code = ast.unparse(ast.JoinedStr(parts))
        ast.parse(code, mode="eval")
    except (ValueError, SyntaxError):
        assume(False)
    return code


# Fail messages: f-strings whose fields are operands, with any text.
message_text = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=6)
message_fields = st.one_of(num_operands, str_operands)
_AWKWARD = set("'\"\\")  # before Python 3.12 not every f-string holding these can be written


@settings(max_examples=200, **SETTINGS)
@given(st.lists(st.one_of(message_text.map(ast.Constant),
                          message_fields.map(lambda e: ast.FormattedValue(e, -1, None))),
                min_size=1, max_size=5),
       environments())
def test_fail_messages_translate_stably_and_with_the_same_meaning(parts, env):
    merged: list[ast.expr] = []  # as Python's parser would give them: adjacent texts joined
    for part in parts:
        if isinstance(part, ast.Constant) and merged and isinstance(merged[-1], ast.Constant):
            merged[-1] = ast.Constant(merged[-1].value + part.value)
        else:
            merged.append(part)
    code = _fstring(merged)
    message = expressions.error_message(code, refer)
    assert json.loads(json.dumps(message)) == message
    try:
        back = expressions.python_message(json.loads(json.dumps(message)), resolve)
    except NotExpressible:
        assert _AWKWARD & set(code), code  # only a message this Python's f-strings cannot spell
        return
    note(f"code: {code}\nback: {back}")
    assert expressions.error_message(back, refer) == message
    assert eval(back, {}, dict(env)) == eval(code, {}, dict(env))
    if all(isinstance(p, ast.Constant) for p in merged):
        assert message == merged[0].value


json_keys = st.lists(st.one_of(st.text(max_size=5), st.integers(-3, 5)), max_size=4)


@settings(max_examples=150, **SETTINGS)
@given(json_keys, st.sampled_from(["cond", "fstring"]))
def test_subscripted_outputs_translate_with_their_keys(keys, where):
    value: Any = 7
    for key in reversed(keys):  # a document that holds 7 at `keys`
        if isinstance(key, int):
            value = [0] * key + [value] if key >= 0 else [value] + [0] * (-key - 1)
        else:
            value = {key: value}
    operand = "o0" + "".join(f"[{k!r}]" for k in keys)
    if where == "cond":
        exported = expressions.conditions(f"{operand} == 7", refer)
        assert exported[0]["LeftValue"]["Std:JsonGet"]["Path"] == expressions.format_path(keys)
        back = expressions.python_condition(exported, resolve)
        assert expressions.conditions(back, refer) == exported
        assert eval(back, {}, {"o0": value}) is True
    else:
        # a negative index: see test_sdk_fail_message_negative_index
        assume(all(not isinstance(k, int) or k >= 0 for k in keys))
        code = _fstring([ast.Constant("v="), ast.FormattedValue(_e(operand), -1, None)])
        message = expressions.error_message(code, refer)
        try:
            back = expressions.python_message(message, resolve)
        except NotExpressible:
            assert any(repr(k) != f"'{k}'" for k in keys if isinstance(k, str)), keys  # needs escapes
            return
        assert expressions.error_message(back, refer) == message
        assert eval(back, {}, {"o0": value}) == "v=7"


# -- 3. JsonGet paths -------------------------------------------------------------------------

path_keys = st.lists(st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True),
    st.text(),                                                        # spaces, quotes, dots, unicode
    st.text(st.characters(codec=None, exclude_categories=[])),        # lone surrogates too
    st.sampled_from(["@", "", "a.b", "a b", 'q"q', "q'q", "[0]", "\\", "1", "-1", "é", "\n"]),
    st.integers(),
    st.integers(-3, 3),
), max_size=6)


@settings(max_examples=500, **SETTINGS)
@given(path_keys)
def test_parse_path_inverts_format_path(keys):
    path = expressions.format_path(keys)
    assert isinstance(path, str) and path
    assert expressions.parse_path(path) == keys
    if not keys:
        assert path == "@"


@pytest.mark.skipif(jmespath is None, reason="jmespath is not installed")
@settings(max_examples=300, **SETTINGS)
@given(path_keys.map(lambda keys: [k % 100 - 50 if isinstance(k, int) else k for k in keys]))
def test_format_path_means_the_same_to_jmespath(keys):
    """SageMaker evaluates a JsonGet Path as JMESPath: the path finds the value at ``keys``."""
    value: Any = 7
    for key in reversed(keys):
        if isinstance(key, int):
            value = [0] * key + [value] if key >= 0 else [value] + [0] * (-key - 1)
        else:
            value = {key: value}
    assert jmespath.search(expressions.format_path(keys), value) == 7


def test_format_path_shapes():
    assert expressions.format_path(["regression_metrics", "mse", "value"]) == "regression_metrics.mse.value"
    assert expressions.format_path([0, "a", -1]) == "[0].a[-1]"
    assert expressions.format_path(["a b", 'q"']) == '"a b"."q\\""'
    assert expressions.parse_path("a[?x > `1`]") is None


# -- 4. what SageMaker cannot say -------------------------------------------------------------

# (source, offending sub-expression): the offending part is a number (or a bool for `is`).
UNSAYABLE = [
    ("abs(x)", "abs(x)"), ("len(xs)", "len(xs)"), ("max(xs)", "max(xs)"), ("min(x, t)", "min(x, t)"),
    ("x + t", "x + t"), ("x * 2", "x * 2"), ("f - 1", "f - 1"), ("x // 2", "x // 2"), ("-x", "-x"),
    ("f.real", "f.real"), ("x.imag", "x.imag"),
    ("d[key]", "d[key]"), ("xs[t - 3]", "xs[t - 3]"),
    ("(x if t > 0 else f)", "x if t > 0 else f"),
]
UNSAYABLE_TESTS = [  # whole comparisons
    ("x is None", "x is None"), ("d is not None", "d is not None"), ("x in xs", "xs"),
    ("t in [v for v in xs]", "[v for v in xs]"), ("f'{x}' == '5'", "f'{x}'"), ("bool(t)", "bool(t)"),
]
SAYABLE = ["t > 1", "x <= 10", "d['a'] == 1.5", "key in ['a', 'b']", "not xs[0] != 1", "1 < f < 3"]


@st.composite
def unsayable_conditions(draw) -> tuple[str, str]:
    if draw(st.booleans()):
        source, offending = draw(st.sampled_from(UNSAYABLE))
        op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
        c = draw(st.integers(-5, 5))
        atom = f"{source} {op} {c}" if draw(st.booleans()) else f"{c} {op} {source}"
    else:
        atom, offending = draw(st.sampled_from(UNSAYABLE_TESTS))
    form = draw(st.sampled_from(["{u}", "{s} and {u}", "{u} or {s}", "not {u}", "{s} or ({s2} and {u})",
                                 "not ({s} or {u})"]))
    code = form.format(u=atom, s=draw(st.sampled_from(SAYABLE)), s2=draw(st.sampled_from(SAYABLE)))
    return code, offending


def _unsayable_pipeline(name: str, kind: str, code: str) -> Pipeline:
    p = Pipeline("unsayable", persist=False)
    p.add_parameter("t", 3)
    p.add_parameter("key", "a")
    p.add_step("Make", "x = 5\nf = 2.5\nd = {'a': 1.5, 'b': 2}\nxs = [1, 2, 3]")
    if kind == "condition":
        p.add_step(name, code, kind="condition", if_steps=["Yes"], else_steps=["No"])
        p.add_step("Yes", "res = 1")
        p.add_step("No", "res = 2")
        p.add_step("After", "after = res + 1")
    else:
        p.add_step(name, code, kind="fail")
    return p


@settings(max_examples=60, **SETTINGS)
@given(unsayable_conditions(), step_names.filter(lambda n: n not in ("Make", "Yes", "No", "After")))
def test_unsayable_conditions_run_but_do_not_export(case, name):
    code, offending = case
    p = _unsayable_pipeline(name, "condition", code)
    ex = p.start(display=False)
    assert ex.status == "Succeeded", ex.failure_reason
    assert ex.steps[name].status == "Succeeded"
    assert {ex.steps["Yes"].status, ex.steps["No"].status} == {"Succeeded", "Skipped"}
    with pytest.raises(ExportError) as info:
        p.definition()
    message = str(info.value)
    assert f"Step `{name}`" in message
    assert f"`{ast.unparse(_e(offending))}`" in message
    with pytest.raises(NotExpressible):
        expressions.conditions(code, lambda n: "parameter" if n in ("t", "key") else Output("Make", n))


@settings(max_examples=30, **SETTINGS)
@given(st.sampled_from(UNSAYABLE), st.text(st.characters(exclude_characters="{}'\"\\"), max_size=5),
       st.sampled_from(["fstring", "concat"]))
def test_unsayable_fail_messages_run_but_do_not_export(case, text, form):
    source, offending = case
    if form == "fstring":
        field = ast.FormattedValue(_e(source), -1, None)
        code = ast.unparse(ast.JoinedStr([ast.Constant("bad " + text), field]))
    else:
        code = f"{'bad ' + text!r} + str({source})"
        offending = code
    p = _unsayable_pipeline("Stop", "fail", code)
    ex = p.start(display=False)
    assert ex.status == "Failed"
    assert ex.steps["Stop"].status == "Failed"
    assert ("bad " + text) in ex.failure_reason
    with pytest.raises(ExportError) as info:
        p.definition()
    message = str(info.value)
    assert "Step `Stop`" in message
    assert f"`{ast.unparse(_e(offending))}`" in message


# -- regressions: bugs these properties found at 9f96890, fixed in c11b47e ------------------------


@pytest.mark.parametrize("kind, code", [("condition", "o['l'][-1] > 2"), ("fail", "f\"last {o['l'][-1]}\"")])
def test_negative_index_exports(kind, code):
    """Was: ExportError "`o['l'][-1]` uses the subscript `[-1]`" (``-1`` is a UnaryOp, not a
    Constant), although JsonGet paths (and format_path/parse_path) have ``[-1]``."""
    p = Pipeline("neg", persist=False)
    p.add_step("A", "o = {'l': [1, 5]}")
    p.add_step("C", code, kind=kind, **({"if_steps": ["B"]} if kind == "condition" else {}))
    if kind == "condition":
        p.add_step("B", "b = 1")
    expected = _outcome(p.start(display=False), p)
    text = p.definition()
    assert '"Path": "l[-1]"' in text
    q = Pipeline.from_definition(text, persist=False)
    assert q.definition() == text
    assert _outcome(q.start(display=False), q) == expected


def test_imported_negative_index_exports_again():
    """Was: a definition with the JsonGet path ``l[-1]`` imported (as ``o['l'][-1] > 2``) but
    the imported pipeline could not be exported."""
    p = Pipeline("neg", persist=False)
    p.add_step("A", "o = {'l': [1, 5]}")
    p.add_step("C", "o['l'][1] > 2", kind="condition", if_steps=["B"])
    p.add_step("B", "b = 1")
    doc = json.loads(p.definition())
    doc["Steps"][1]["Arguments"]["Conditions"][0]["LeftValue"]["Std:JsonGet"]["Path"] = "l[-1]"
    q = Pipeline.from_definition(json.dumps(doc), persist=False)
    assert q.steps["C"].code == "o['l'][-1] > 2"
    assert q.start(display=False).steps["B"].status == "Succeeded"
    assert json.loads(q.definition()) == doc


@pytest.mark.parametrize("code", ["not (p0 != 1 or p1 != 2)", "p2 == 'a' and not (p0 != 1 or p1 != 2)"])
def test_top_level_de_morgan_is_stable(code):
    """Was: python_condition read a member Not(Or(Not a, Not b)) of the Conditions list as
    ``a and b``, which exports as two members: conditions(python_condition(c)) != c."""
    exported = expressions.conditions(code, refer)
    back = expressions.python_condition(exported, resolve)
    assert expressions.conditions(back, refer) == exported


def test_sdk_condition_with_de_morgan_round_trips():
    """Was: a SageMaker SDK condition (no JupyterPipelines block) Not(Or(Not a, Not b)) came
    back from import -> export as [a, b]."""
    p = Pipeline("dm", persist=False)
    p.add_parameter("t", 1)
    p.add_parameter("u", 2)
    p.add_step("C", "t == 1 and u == 2", kind="condition", if_steps=["B"])
    p.add_step("B", "b = 1")
    doc = json.loads(p.definition())
    cond = doc["Steps"][0]["Arguments"]
    assert "JupyterPipelines" not in cond        # written as the SageMaker SDK writes it
    cond["Conditions"] = [{"Type": "Not", "Condition": {"Type": "Or", "Conditions": [
        {"Type": "Not", "Condition": c} for c in cond["Conditions"]]}}]
    q = Pipeline.from_definition(json.dumps(doc), persist=False)
    assert json.loads(q.definition()) == doc
    assert q.start(display=False).steps["B"].status == "Succeeded"


def test_empty_literal_field_is_stable():
    """Was: ``f"{p0}{''}"`` exported an empty Std:Join value that python_message dropped."""
    message = expressions.error_message("f\"{p0}{''}\"", refer)
    assert message == {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.p0"}]}}
    assert expressions.error_message(expressions.python_message(message, resolve), refer) == message


@pytest.mark.parametrize("text, key", [("v ", "a\\b"), ("v ", "C:\\temp"), ("\'\"\'\'\'\"\"\" ", "k")])
def test_sdk_fail_message_an_f_string_cannot_spell_imports(text, key):
    """Was, before Python 3.12: importing a SageMaker SDK Fail step whose ErrorMessage reads a
    property-file key holding a backslash crashed with ast.unparse's raw ValueError ("Unable to
    avoid backslash in f-string expression part"); text holding ' \" \'\'\' and \"\"\" made invalid
    Python, reported as the user's syntax error. Now it is a local fail step when some f-string
    spells it, otherwise a step drawn but not run (kind aws)."""
    p = Pipeline("msg", persist=False)
    p.add_step("A", f"o = {{'k': 1, {key!r}: 2}}")
    p.add_step("F", "f'v {o[\"k\"]}'", kind="fail")
    doc = json.loads(p.definition())
    fail = doc["Steps"][1]["Arguments"]
    assert "JupyterPipelines" not in fail
    fail["ErrorMessage"]["Std:Join"]["Values"] = [text, expressions.json_get(Output("A", "o"), [key])]
    q = Pipeline.from_definition(json.dumps(doc), persist=False)
    if q.steps["F"].kind == "fail":
        assert q.start(display=False).failure_reason.endswith(text + str({"k": 1, key: 2}[key]))
    else:
        assert q.steps["F"].kind == "aws"


@pytest.mark.parametrize("expire, written", [("PT0.00001S", "PT0.00001S"), ("PT59.9999999S", "PT1M"),
                                             ("PT0.0000001S", "PT0S"), (1e-05, "PT0.00001S"),
                                             ("P1DT0.5S", "P1DT0.5S")])
def test_fractional_cache_expire_round_trips(expire, written):
    """Was: ExpireAfter written with Python's float repr: "PT1e-05S" (which the validator
    rejects), "PT60.0S", "PT0.0S" (which change on export -> import -> export)."""
    p = Pipeline("exp", persist=False)
    p.add_step("A", "a = 1", cache_expire=expire)
    text = p.definition()
    validate(json.loads(text))
    assert json.loads(text)["Steps"][0]["CacheConfig"]["ExpireAfter"] == written
    assert Pipeline.from_definition(text, persist=False).definition() == text


@settings(max_examples=100, **SETTINGS)
@given(st.integers(0, 400), st.integers(0, 30), st.integers(0, 200), st.integers(0, 5000),
       st.integers(0, 10**7 - 1))
def test_cache_expire_round_trips(days, hours, minutes, seconds, fraction):
    text = f"P{days}DT{hours}H{minutes}M{seconds}.{fraction:07d}S"
    p = Pipeline("exp", persist=False)
    p.add_step("A", "a = 1", cache_expire=text)
    out = p.definition()
    validate(json.loads(out))
    assert Pipeline.from_definition(out, persist=False).definition() == out


@pytest.mark.parametrize("default", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_float_default_is_refused(default):
    """Was: accepted, and exported as NaN/Infinity, which is not JSON: from_definition rejected
    the package's own output."""
    p = Pipeline("nan", persist=False)
    with pytest.raises(ParameterError, match="finite"):
        p.add_parameter("v", default)


@pytest.mark.parametrize("case", ["property_files", "rejoined_input"])
def test_export_does_not_depend_on_the_order_steps_were_added(case):
    """Was: a producer's PropertyFiles, and the producers of an input made on both branches,
    were listed in the order steps were added; import re-adds steps in nesting order (branch
    steps after their condition, if before else), so export -> import -> export changed."""
    p = Pipeline("order", persist=False)
    if case == "property_files":
        p.add_step("A", "x = 1\ny = 2")
        p.add_step("F", "f'y is {y}'", kind="fail")                     # reads y, added first
        p.add_step("C", "x > 0", kind="condition", if_steps=["F"])       # reads x
    else:
        p.add_step("C", "True == True", kind="condition", if_steps=["Yes"], else_steps=["No"])
        p.add_step("No", "z = 2")                                         # else step added first
        p.add_step("Yes", "z = 1")
        p.add_step("After", "w = z + 1")
    text = p.definition()
    assert Pipeline.from_definition(text, persist=False).definition() == text


# -- regressions: bugs these tests found, fixed -------------------------------------------------


def test_sdk_fail_message_negative_index():
    """A JsonGet path `l[-1]` in an SDK Fail message reads back as `o0['l'][-1]`."""
    message = expressions.error_message("f\"last {o0['l'][-1]}\"", refer)
    assert message["Std:Join"]["Values"][1]["Std:JsonGet"]["Path"] == "l[-1]"
    back = expressions.python_message(message, resolve)
    assert expressions.error_message(back, refer) == message


def test_aws_step_reading_a_local_property_file_keeps_it():
    """Re-exported, a local step still declares the property file an AWS step reads."""
    p = Pipeline("pf", persist=False)
    p.add_step("A", "o = {'k': 1}")
    p.add_step("C", "o['k'] == 1", kind="condition", if_steps=["B"])
    p.add_step("B", "b = 1")
    doc = json.loads(p.definition())
    # no longer local: the execution id is only known to SageMaker
    doc["Steps"][1]["Arguments"]["Conditions"][0]["RightValue"] = {"Get": "Execution.PipelineExecutionId"}
    validate(doc)
    q = Pipeline.from_definition(json.dumps(doc), persist=False)
    assert q.steps["C"].kind == "aws"
    again = json.loads(q.definition())
    validate(again)       # raises: "expected a property file declared in A's PropertyFiles"
    assert again == doc
