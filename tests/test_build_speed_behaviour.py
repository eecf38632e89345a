"""What the fast build path must keep: the same analysis, the same code objects, digests and
errors as the general path, whether a text is analysed for the first time or again.

`analyze` takes a fast path for cells of simple statements without nested scopes
(`source._analyze_flat`) and the compiler's symbol table otherwise (`source._analyze_nested`);
the differential tests below hold the two to the same answers on every code string of the test
suite, every step of the tutorials and generated programs.
"""
from __future__ import annotations

import ast
import hashlib
import json
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_pipelines import graph as graph_mod
from jupyter_pipelines import source
from jupyter_pipelines.errors import DefinitionError
from jupyter_pipelines.pipeline import Pipeline
from jupyter_pipelines.source import CodeInfo, analyze, clear_analysis_cache
from jupyter_pipelines.steps import make_step

ROOT = Path(__file__).resolve().parent.parent


def both_paths(code: str) -> tuple[CodeInfo | None, CodeInfo]:
    tree = ast.parse(code)
    return source._analyze_flat(tree.body), source._analyze_nested(code, "<test>", tree)


def _code_strings() -> list[str]:
    """Every string constant of the test modules that is valid Python, and every step cell of
    the tutorial notebooks (without its magic line)."""
    found: dict[str, None] = {}
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found[node.value] = None
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            text = "".join(cell["source"])
            if cell["cell_type"] == "code" and text.startswith("%%step"):
                found[text.split("\n", 1)[1] if "\n" in text else ""] = None
    codes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # messages are strings too: "\[" is no escape
        for text in found:
            try:
                source._analyze_nested(text, "<test>", ast.parse(text))
            except (SyntaxError, ValueError, RecursionError):
                continue
            codes.append(text)
    return codes


CORPUS = _code_strings()

EDGE_CASES = [
    "", "x5 = x4", "y = f(a)", "x = x + 1", "x += 1", "a[i] += 1\ni = 0", "a.b += c\na = 1",
    "y = x\nx = 1", "x = 1\ny = x", "del x\nx = 1", "del x", "print(x)\nprint = 1",
    "import os.path\np = os.path.join(a)", "import os.path as osp\nq = osp", "from m import *\nz = w",
    "from m import a as b, c\nd = b + c + e", "a, *b = xs\nc = b", "[p, q] = pair", "m = n = k",
    "x[0] = 1\nx = []", "obj.attr = val\ntable[key] = 1", "_tmp = x * 2\ny = _tmp + 1",
    "d = {**base, 'k': v}", "s = f'{a!r:>{width}} {b}'", "t = a if c else b", "u = x[1:n:step]",
    "assert ok, msg\nok = 1", "raise err from cause", "v = not a or b and c < d <= e",
    "w = f(*args, key=val, **kw)", "len = len(x)", "__name__", "x = (1, [y, {z}])\ny = 2",
    "x = 1; x = x; y = x", "a = 1\n\n\nb = a\nc = d",
]


@pytest.mark.parametrize("code", EDGE_CASES)
def test_fast_path_agrees_with_the_symbol_table_on_edge_cases(code: str) -> None:
    flat, nested = both_paths(code)
    assert flat is not None, "these cells are all simple statements: the fast path applies"
    assert flat == nested


def test_fast_path_agrees_with_the_symbol_table_on_every_code_string_of_the_suite() -> None:
    assert len(CORPUS) > 200
    fast = 0
    for code in CORPUS:
        flat, nested = both_paths(code)
        if flat is not None:
            fast += 1
            assert flat == nested, code
    assert fast > 100  # most cells are simple


@pytest.mark.parametrize("code", [
    "def f(a):\n    return a\nout = f(1)", "ys = [x for x in xs]", "g = lambda: y", "if a:\n    b = 1",
    "for i in r:\n    t = i", "with o as h:\n    z = h", "try:\n    r = 1\nexcept E as e:\n    r = e",
    "global g\ng = 1", "(n := len(d))", "x: int = 1", "class K:\n    pass", "await x",
])
def test_cells_with_blocks_scopes_or_annotations_take_the_general_path(code: str) -> None:
    assert source._analyze_flat(ast.parse(code).body) is None


NAMES = st.sampled_from(["a", "b", "c", "_p", "print", "len", "df"])


def _expressions() -> st.SearchStrategy[str]:
    leaves = st.one_of(NAMES, st.sampled_from(["1", "'s'", "None", "2.5"]))

    def extend(inner):
        return st.one_of(
            st.tuples(inner, st.sampled_from(["+", "*", "<", "and", "or", "if c else"]), inner)
            .map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(inner, inner).map(lambda t: f"({t[0]})({t[1]}, k={t[1]})"),
            st.tuples(inner, NAMES).map(lambda t: f"({t[0]}).{t[1]}"),
            st.tuples(inner, inner).map(lambda t: f"({t[0]})[{t[1]}:]"),
            st.tuples(inner, inner).map(lambda t: f"{{{t[0]}: {t[1]}, **{t[1]}}}"),
            st.tuples(NAMES, NAMES).map(lambda t: f"f'{{{t[0]}!r:>{{{t[1]}}}}}'"),
            st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
            inner.map(lambda x: f"(not {x})"),
        )

    return st.recursive(leaves, extend, max_leaves=6)


def _statements() -> st.SearchStrategy[str]:
    expr = _expressions()
    return st.one_of(
        st.tuples(NAMES, expr).map(lambda t: f"{t[0]} = {t[1]}"),
        st.tuples(NAMES, NAMES, expr).map(lambda t: f"{t[0]}, *{t[1]} = {t[2]}"),
        st.tuples(NAMES, NAMES, expr).map(lambda t: f"{t[0]} = {t[1]} = {t[2]}"),
        st.tuples(NAMES, expr).map(lambda t: f"{t[0]} += {t[1]}"),
        st.tuples(NAMES, expr, expr).map(lambda t: f"{t[0]}[{t[1]}] += {t[2]}"),
        st.tuples(NAMES, expr, expr).map(lambda t: f"{t[0]}[{t[1]}] = {t[2]}"),
        st.tuples(NAMES, expr).map(lambda t: f"{t[0]}.attr = {t[1]}"),
        NAMES.map(lambda n: f"del {n}"),
        NAMES.map(lambda n: f"import mod.sub as {n}"),
        NAMES.map(lambda n: f"from mod import {n}"),
        st.just("import a.b"),
        st.tuples(expr, expr).map(lambda t: f"assert {t[0]}, {t[1]}"),
        expr,
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(_statements(), min_size=1, max_size=6))
def test_fast_path_agrees_with_the_symbol_table_on_generated_cells(lines: list[str]) -> None:
    code = "\n".join(lines)
    flat, nested = both_paths(code)
    assert flat is not None
    assert flat == nested


# -- the cache by text -------------------------------------------------------------------------


def test_a_text_analysed_again_gives_the_same_answer() -> None:
    clear_analysis_cache()
    code = "df = df.dropna()\nout = helper(df, threshold)"
    first = analyze(code)
    assert analyze(code) == first == CodeInfo(("df", "helper", "threshold"), ("df", "out"))


def test_errors_are_not_cached_and_name_each_step() -> None:
    for name in ("A", "B", "A"):
        with pytest.raises(DefinitionError, match=rf"step `{name}` is not valid Python"):
            make_step(name, "x = (")


def test_the_cache_keeps_a_bounded_number_of_texts(monkeypatch) -> None:
    monkeypatch.setattr(source, "_ANALYSES_KEPT", 5)
    clear_analysis_cache()
    for i in range(20):
        analyze(f"y{i} = x{i}")
    assert len(source._analyses) == 5
    assert analyze("y3 = x3") == CodeInfo(("x3",), ("y3",))  # forgotten, analysed again
    clear_analysis_cache()


# -- steps built on either path are the same ---------------------------------------------------


@pytest.mark.parametrize("warm", [False, True])
def test_a_step_is_the_same_whether_its_text_was_analysed_before_or_not(warm: bool) -> None:
    code = "import math\nroot = math.sqrt(n)\ntable = {'k': root, **extra}\nroot += 1"
    clear_analysis_cache()
    if warm:
        analyze(code)
    step = make_step("Calc", code, description="d")
    assert step.reads == ("n", "extra") and step.outputs == ("root", "table")
    assert step.compiled == compile(code, "<step Calc>", "exec")  # the tree compiles as the text
    expected = json.dumps(("processing", code, list(step.reads), list(step.outputs), None, {}),
                          sort_keys=True, default=repr)
    assert step.digest == hashlib.sha256(expected.encode()).hexdigest()  # cache keys unchanged
    ns = {"n": 16.0, "extra": {"e": 1}}
    eval(step.compiled, ns)
    assert (ns["root"], ns["table"]) == (5.0, {"k": 4.0, "e": 1})


@pytest.mark.parametrize("warm", [False, True])
def test_code_the_compiler_refuses_raises_the_same_syntax_error_either_way(warm: bool) -> None:
    clear_analysis_cache()
    if warm:
        analyze("x = 1\nreturn x")
    with pytest.raises(SyntaxError, match="'return' outside function") as info:
        make_step("Early", "x = 1\nreturn x")
    assert (info.value.filename, info.value.lineno) == ("<step Early>", 2)


def test_adding_steps_never_builds_the_graph_and_it_is_built_once(monkeypatch) -> None:
    calls = []
    real = graph_mod.build
    monkeypatch.setattr("jupyter_pipelines.pipeline.build",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    p = Pipeline("chain", persist=False)
    p.add_step("s0", "x0 = 0")
    for i in range(1, 50):
        p.add_step(f"s{i}", f"x{i} = x{i - 1}")
    assert calls == []
    graph = p.graph()
    assert graph.order == [f"s{i}" for i in range(50)]
    assert p.start(display=False).status == "Succeeded"
    assert calls == [1]  # start() used the graph already built


def test_a_step_made_by_define_is_the_dataclass_it_would_be_made_as() -> None:
    from dataclasses import fields

    from jupyter_pipelines.steps.base import Step, _new_step

    step = make_step("Train", "model = make()", "training", depends_on=[])
    values = {f.name: getattr(step, f.name) for f in fields(Step)}
    again = Step(**values)
    assert step == again and repr(step) == repr(again)
    assert list(vars(step).items()) == list(vars(again).items())  # the same fields, in order
    fresh = _new_step(name="A", kind="processing", code="", reads=(), outputs=())
    assert fresh == Step("A", "processing", "", (), ())
    with pytest.raises(TypeError, match=r"missing the fields \['outputs', 'reads'\]"):
        _new_step(name="A", kind="processing", code="")


@pytest.mark.parametrize("step", [
    dict(name="Cond", code="a < 1", kind="condition", if_steps=["X"], else_steps=[]),
    dict(name="Train", code="model = f(x)", kind="training", model="model", depends_on=[]),
    dict(name="Plain", code="y = x", depends_on=["Cond"], inputs=["x"], outputs=["y"]),
])
def test_digests_with_options_are_the_json_digest_of_the_definition(step: dict) -> None:
    made = make_step(**step)
    opts = dict(made.options)
    depends_on = step.get("depends_on")  # as given: None and [] are two definitions
    expected = json.dumps((made.kind, made.code, list(made.reads), list(made.outputs),
                           depends_on, opts), sort_keys=True, default=repr)
    assert made.digest == hashlib.sha256(expected.encode()).hexdigest()


def test_a_circular_option_value_is_refused_as_json_refuses_it() -> None:
    from jupyter_pipelines.steps.base import _digest

    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference detected"):
        _digest("processing", "x = 1", {"o": loop})
