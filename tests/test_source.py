"""Tests for reading Python source (jupyter_pipelines.source)."""
from __future__ import annotations

import pytest

from jupyter_pipelines.errors import DefinitionError
from jupyter_pipelines.source import BUILTIN_NAMES, CodeInfo, Context, analyze


def reads(code: str) -> set[str]:
    return set(analyze(code).reads)


def writes(code: str) -> tuple[str, ...]:
    return analyze(code).writes


# -- analyze: writes ----------------------------------------------------------------------------


def test_simple_assignment() -> None:
    assert analyze("y = f(a)") == CodeInfo(reads=("f", "a"), writes=("y",))


def test_writes_in_order_without_duplicates() -> None:
    assert writes("b = 1\na = 2\nb = 3\nc = a + b") == ("b", "a", "c")


def test_tuple_and_starred_unpacking() -> None:
    assert analyze("a, (b, *c) = xs") == CodeInfo(reads=("xs",), writes=("a", "b", "c"))
    assert writes("[p, q] = pair") == ("p", "q")
    assert writes("m = n = 0") == ("m", "n")


def test_augmented_and_annotated_assignments() -> None:
    assert writes("total += 1") == ("total",)
    assert writes("x: int = 3\ny: int") == ("x",)  # a bare annotation binds nothing


def test_attribute_and_subscript_targets_are_reads_not_writes() -> None:
    info = analyze("obj.attr = val\ntable[key] = 1")
    assert info.writes == ()
    assert set(info.reads) == {"obj", "val", "table", "key"}


def test_for_loop_target_and_body() -> None:
    info = analyze("for i in items:\n    total = base + i\nelse:\n    finished = True")
    assert info.writes == ("i", "total", "finished")
    assert set(info.reads) == {"items", "base"}


def test_with_block() -> None:
    info = analyze("with open(path) as fh, lock:\n    text = fh.read()")
    assert info.writes == ("fh", "text")
    assert set(info.reads) == {"path", "lock"}


def test_try_block_body_handlers_else_finally() -> None:
    code = (
        "try:\n    r = compute(x)\n"
        "except ValueError as err:\n    fallback = str(err)\n"
        "else:\n    ok = True\n"
        "finally:\n    done = True\n"
    )
    info = analyze(code)
    assert info.writes == ("r", "fallback", "ok", "done")  # the `as` name is unbound after
    assert set(info.reads) == {"compute", "x"}


def test_if_and_while_blocks() -> None:
    assert writes("if flag:\n    a = 1\nelif other:\n    b = 2\nelse:\n    c = 3") == ("a", "b", "c")
    assert writes("while n:\n    n2 = 1") == ("n2",)


def test_walrus_at_top_level_and_in_comprehension() -> None:
    info = analyze("if (n := len(data)) > 3:\n    big = n")
    assert info == CodeInfo(reads=("data",), writes=("n", "big"))
    # a walrus in a comprehension binds in the enclosing (top-level) scope
    info = analyze("ok = [j for j in range(k) if (last := j) > lim]")
    assert info.writes == ("ok", "last")
    assert set(info.reads) == {"k", "lim"}


def test_walrus_inside_lambda_or_def_is_not_an_output() -> None:
    assert writes("key = lambda r: (w := r[0])\nk = 1") == ("key", "k")
    assert writes("if True:\n    def g():\n        (w := 1)\nk = 1") == ("k",)


def test_private_names_are_not_outputs() -> None:
    info = analyze("_tmp = x * 2\ny = _tmp + 1\nfor _i in range(3):\n    pass")
    assert info == CodeInfo(reads=("x",), writes=("y",))


def test_imports_inside_a_step_are_not_outputs_nor_reads() -> None:
    info = analyze(
        "import os\nimport os.path\nfrom math import sqrt as root\n"
        "try:\n    import json\nexcept ImportError:\n    json = None\n"
        "r = root(v) + len(os.sep)"
    )
    # `json = None` is a real assignment in the handler; imports themselves are not outputs
    assert info.writes == ("json", "r")
    assert info.reads == ("v",)
    assert writes("import numpy as np\nfrom os import path") == ()


def test_defs_and_classes_are_not_outputs() -> None:
    info = analyze("def f(a):\n    return a\nclass K:\n    pass\nout = f(K())")
    assert info == CodeInfo(reads=(), writes=("out",))


# -- analyze: reads -----------------------------------------------------------------------------


def test_names_bound_at_top_level_are_not_reads() -> None:
    assert analyze("x = 1\ny = x + 1") == CodeInfo(reads=(), writes=("x", "y"))
    assert reads("total = 0\nfor i in items:\n    total = total + i") == {"items"}
    assert reads("if (n := len(data)) > 3:\n    big = n") == {"data"}
    # a function body runs later, so a name bound later in the cell is the step's own
    assert reads("def f():\n    return later\nlater = 1") == set()


def test_name_read_before_it_is_bound_is_a_read() -> None:
    assert analyze("df = df.dropna()") == CodeInfo(reads=("df",), writes=("df",))
    assert analyze("y = x\nx = 2") == CodeInfo(reads=("x",), writes=("y", "x"))
    assert reads("for i in range(3):\n    total = total + i") == {"total"}
    assert reads("while cond:\n    cond = step(cond)") == {"cond", "step"}


def test_augmented_assignment_reads_its_target() -> None:
    assert analyze("total += 1") == CodeInfo(reads=("total",), writes=("total",))


def test_name_bound_in_one_branch_is_read_in_the_other() -> None:
    assert reads("if c:\n    x = 1\nelse:\n    y = x") == {"c", "x"}


def test_nested_function_free_variables_are_reads() -> None:
    info = analyze("def f(a=default):\n    return helper(k) + a\nout = f()")
    assert set(info.reads) == {"default", "helper", "k"}
    assert info.writes == ("out",)


def test_nested_function_locals_and_enclosing_names_are_not_reads() -> None:
    code = (
        "def outer(p):\n"
        "    local = p + 1\n"
        "    def inner():\n"
        "        return local + glob\n"
        "    return inner\n"
        "res = outer(1)\n"
    )
    assert analyze(code) == CodeInfo(reads=("glob",), writes=("res",))


def test_class_body_and_lambda_free_names_are_reads() -> None:
    assert reads("class A:\n    z = y\nobj = A()") == {"y"}
    assert reads("f = lambda r: r * scale") == {"scale"}


def test_comprehension_variables_are_not_reads() -> None:
    assert analyze("sq = [i * i for i in values]") == CodeInfo(reads=("values",), writes=("sq",))
    info = analyze("d2 = {k: v for k, v in d.items() if k > limit}\ng = (q for q in w)")
    assert set(info.reads) == {"d", "limit", "w"}
    assert info.writes == ("d2", "g")
    # the outermost iterable is evaluated outside the comprehension
    assert analyze("y = [x for x in x]") == CodeInfo(reads=("x",), writes=("y",))


def test_variable_named_like_a_comprehension_scope_is_a_read() -> None:
    assert reads("r = [v for v in data]\ndef f():\n    return listcomp\ny = f()") == {"data", "listcomp"}
    assert reads("g = sum(x for x in data)\nh = lambda: genexpr") == {"data", "genexpr"}


def test_builtins_are_not_reads() -> None:
    assert analyze("print(len(data), range, __name__)") == CodeInfo(reads=("data",), writes=())
    assert {"len", "print", "__name__", "__file__"} <= BUILTIN_NAMES


def test_private_names_read_from_outside_are_reads() -> None:
    assert reads("y = _hidden + 1") == {"_hidden"}


def test_reads_in_order_of_first_use() -> None:
    assert analyze("y = f(a)\nz = b").reads == ("f", "a", "b")
    assert analyze("y = x + threshold + n_rows").reads == ("x", "threshold", "n_rows")


def test_reads_are_unique() -> None:
    assert analyze("y = a + a\nz = a * 2").reads == ("a",)


def test_syntax_error_names_the_step_and_line() -> None:
    with pytest.raises(DefinitionError) as info:
        analyze("x = 1\ny = = 2", "step `prep`")
    message = str(info.value)
    assert message.startswith("step `prep` is not valid Python:")
    assert "at line 2: `y = = 2`" in message


# -- Context ------------------------------------------------------------------------------------


def test_context_collects_imports_and_defs() -> None:
    ctx = Context.from_cells([
        "import math\nfrom collections import OrderedDict as OD\nimport os.path",
        "def double(a):\n    return 2 * a\n\nclass Box:\n    size = 3",
    ])
    assert ctx.snippets == (
        ("math", "import math"),
        ("OD", "from collections import OrderedDict as OD"),
        ("os", "import os.path"),
        ("double", "def double(a):\n    return 2 * a"),
        ("Box", "class Box:\n    size = 3"),
    )
    assert ctx.names == frozenset({"math", "OD", "os", "double", "Box"})


def test_context_imports_come_before_defs() -> None:
    ctx = Context.from_cells(["def f():\n    return math.pi", "import math"])
    assert [name for name, _ in ctx.snippets] == ["math", "f"]
    assert ctx.namespace()["f"]() == pytest.approx(3.14159, abs=1e-4)


def test_context_later_cells_win() -> None:
    ctx = Context.from_cells([
        "import json as codec\ndef f(a):\n    return a\ndef g():\n    return 1",
        "import pickle as codec\ndef f(b):\n    return b * 2",
    ])
    assert ctx.snippets == (
        ("codec", "import pickle as codec"),
        ("g", "def g():\n    return 1"),
        ("f", "def f(b):\n    return b * 2"),
    )
    ns = ctx.namespace()
    assert ns["f"](3) == 6
    assert ns["codec"].__name__ == "pickle"


def test_context_multi_name_import_appears_once_in_source() -> None:
    ctx = Context.from_cells(["import json, math"])
    assert ctx.snippets == (("json", "import json, math"), ("math", "import json, math"))
    assert ctx.source == "import json, math"


def test_context_keeps_decorators() -> None:
    ctx = Context.from_cells([
        "import functools\n\n@functools.lru_cache(maxsize=None)\ndef fib(n):\n"
        "    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    ])
    assert dict(ctx.snippets)["fib"].startswith("@functools.lru_cache(maxsize=None)\ndef fib(n):")
    ns = ctx.namespace()
    assert ns["fib"](20) == 6765
    assert hasattr(ns["fib"], "cache_info")


def test_context_skips_cells_with_syntax_errors() -> None:
    ctx = Context.from_cells(["import json\ndef broken(:\n    pass", "import math", "%matplotlib inline"])
    assert ctx.snippets == (("math", "import math"),)


def test_context_ignores_other_statements() -> None:
    ctx = Context.from_cells([
        "x = 1\nprint('hi')\nif True:\n    import json\nfor i in range(2):\n    pass\nimport math",
    ])
    assert ctx.snippets == (("math", "import math"),)
    ns = ctx.namespace()
    assert "x" not in ns and "json" not in ns and "math" in ns


def test_context_empty() -> None:
    ctx = Context.from_cells([])
    assert ctx == Context()
    assert ctx.names == frozenset()
    assert ctx.source == ""
    assert set(ctx.namespace()) == {"__name__", "__builtins__"}


def test_context_namespace_is_fresh_each_time() -> None:
    ctx = Context.from_cells(["def f():\n    return 1"])
    a, b = ctx.namespace(), ctx.namespace()
    assert a is not b and a["f"] is not b["f"]
    assert a["__name__"] == "__jupyter_pipelines_step__"


def test_context_namespace_failure_is_a_definition_error() -> None:
    ctx = Context.from_cells(["import jupyter_pipelines_no_such_module_xyz"])
    with pytest.raises(DefinitionError, match="ModuleNotFoundError"):
        ctx.namespace()


def test_context_digest() -> None:
    ctx = Context.from_cells(["import math\ndef f():\n    return 1"])
    same = Context.from_cells(["import math", "def f():\n    return 1"])
    other = Context.from_cells(["import math\ndef f():\n    return 2"])
    assert len(ctx.digest()) == 16
    assert ctx.digest() == same.digest()
    assert ctx.digest() != other.digest()
    assert ctx.digest({"math"}) == other.digest({"math"})
    assert ctx.digest({"f"}) != other.digest({"f"})


def test_context_future_import_from_a_later_cell() -> None:
    ctx = Context.from_cells(["import math", "from __future__ import annotations"])
    assert "math" in ctx.namespace()
