"""Reading Python source: what a step's code reads and writes, and the notebook's context.

A step's *reads* are the free names of its code (names it uses without binding them at top
level); its *writes* are the public names it assigns at top level. The *context* is the
imports and function/class definitions of the notebook's other code cells: the only kernel
state a step may use besides its inputs and the parameters.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import operator
import symtable
import threading
from dataclasses import dataclass

BUILTIN_NAMES = frozenset(dir(builtins)) | {"__name__", "__file__", "__builtins__"}


@dataclass(frozen=True)
class CodeInfo:
    reads: tuple[str, ...]   # free names, in order of first use
    writes: tuple[str, ...]  # public top-level assignments, in order


def parse(code: str, where: str) -> ast.Module:
    try:  # ast.parse's own call, without its wrapper: this runs for every step defined
        return compile(code, where, "exec", ast.PyCF_ONLY_AST)
    except SyntaxError as exc:
        from .errors import DefinitionError

        line = (exc.text or "").rstrip()
        raise DefinitionError(
            f"{where} is not valid Python: {exc.msg} at line {exc.lineno}: `{line.strip()}`. "
            "Fix the syntax and run the cell again."
        ) from None


def analyze(code: str, where: str = "<step>") -> CodeInfo:
    """What ``code`` reads and writes; invalid code raises as `parse` does, naming ``where``."""
    return analysis(code, where)[0]


def analysis(code: str, where: str = "<step>") -> tuple[CodeInfo, ast.Module | None]:
    """`analyze`, and the syntax tree it parsed for it, so that a caller compiling the code too
    compiles that tree rather than parse the text again. The analysis is a pure function of the
    text and is cached by it (a re-run cell or a reloaded notebook is not analysed again): the
    tree is None when the text was analysed before. Errors are not cached."""
    info = _analyses.get(code)
    if info is not None:
        return info, None
    tree = parse(code, where)
    info = _analyze_flat(tree.body)
    if info is None:
        info = _analyze_nested(code, where, tree)
    with _analyses_lock:
        _analyses[code] = info
        while len(_analyses) > _ANALYSES_KEPT:
            del _analyses[next(iter(_analyses))]  # the oldest
    return info, tree


_ANALYSES_KEPT = 4096
_analyses: dict[str, CodeInfo] = {}  # by text, oldest first
_analyses_lock = threading.Lock()


def clear_analysis_cache() -> None:
    """Forget every analysed text, as a new process would (benchmarks time a first build)."""
    with _analyses_lock:
        _analyses.clear()


def _analyze_nested(code: str, where: str, tree: ast.Module) -> CodeInfo:
    """Any code: scopes come from the compiler's own symbol table."""
    table = symtable.symtable(code, where, "exec")
    bound = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    free = _global_uses(table) - bound - BUILTIN_NAMES
    free |= _read_before_bound(tree.body, bound)  # `df = df.dropna()` reads `df`
    names = sorted((n.lineno, n.col_offset, n.id) for n in ast.walk(tree)
                   if isinstance(n, ast.Name) and n.id in free)
    used = dict.fromkeys(name for _, _, name in names)  # in order of first use
    writes = [n for n in _bindings(tree.body) if not n.startswith("_")]
    return CodeInfo(tuple(used), tuple(writes))


# The fast path: most cells are a few simple statements (assignments, calls, imports) without
# nested scopes, for which the symbol table is just the cell's names by context. It gives what
# `_analyze_nested` gives (tests/test_build_speed_behaviour.py checks it on many cells) at a
# fraction of the cost; anything else (blocks, def/class/lambda, comprehensions, walrus,
# global, annotations, await/yield, match) takes the general path.
_FLAT_STATEMENTS = frozenset({ast.Expr, ast.Assign, ast.AugAssign, ast.Import, ast.ImportFrom,
                              ast.Pass, ast.Delete, ast.Assert, ast.Raise})
_FLAT_CHILDREN: dict[type, tuple[str, ...]] = {  # node type -> its fields that hold expressions
    ast.Expr: ("value",), ast.Assign: ("targets", "value"), ast.AugAssign: ("target", "value"),
    ast.Import: (), ast.ImportFrom: (), ast.Pass: (), ast.Delete: ("targets",),
    ast.Assert: ("test", "msg"), ast.Raise: ("exc", "cause"),
    ast.BoolOp: ("values",), ast.BinOp: ("left", "right"), ast.UnaryOp: ("operand",),
    ast.IfExp: ("test", "body", "orelse"), ast.Dict: ("keys", "values"), ast.Set: ("elts",),
    ast.Compare: ("left", "comparators"), ast.Call: ("func", "args", "keywords"),
    ast.keyword: ("value",), ast.FormattedValue: ("value", "format_spec"),
    ast.JoinedStr: ("values",), ast.Constant: (), ast.Attribute: ("value",),
    ast.Subscript: ("value", "slice"), ast.Starred: ("value",), ast.List: ("elts",),
    ast.Tuple: ("elts",), ast.Slice: ("lower", "upper", "step"),
    type(None): (),  # an absent optional part, or a dict's `**` (which has no key)
}


def _flat_names(node: ast.AST, found: list[ast.Name]) -> bool:
    """Collect the `Name` nodes under ``node`` into ``found``; False if ``node`` holds anything
    but plain expressions."""
    stack = [node]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is ast.Name:
            found.append(node)
            continue
        fields = _FLAT_CHILDREN.get(kind)
        if fields is None:
            return False
        for field in fields:
            value = getattr(node, field)
            if type(value) is list:
                stack += value
            else:
                stack.append(value)
    return True


def _analyze_flat(body: list[ast.stmt]) -> CodeInfo | None:
    """`analyze` for a cell of simple statements without nested scopes, else None. (Plain loops:
    this runs for every step defined, and comprehensions cost a call each before Python 3.12.)"""
    every: list[ast.Name] = []
    steps: list[tuple[set[str], list[str], bool]] = []  # per statement: reads, binds, are outputs
    loaded: set[str] = set()
    bound: set[str] = set()  # stored, deleted or imported anywhere in the cell
    for stmt in body:
        kind = type(stmt)
        names: list[ast.Name] = []
        if kind not in _FLAT_STATEMENTS or not _flat_names(stmt, names):
            return None
        every += names
        reads = set()
        for n in names:
            if type(n.ctx) is ast.Load:
                reads.add(n.id)
            else:
                bound.add(n.id)
        loaded |= reads
        made: list[str] = []
        if kind is ast.Assign:
            for target in stmt.targets:
                made += _targets(target)
        elif kind is ast.AugAssign:  # `x += 1` reads `x`; other names of the target do not count
            made = _targets(stmt.target)
            names = []
            _flat_names(stmt.value, names)
            reads = {n.id for n in names if type(n.ctx) is ast.Load}
            reads.update(made)
        elif kind is ast.Import or kind is ast.ImportFrom:
            made = [(a.asname or a.name).split(".")[0] for a in stmt.names if a.name != "*"]
            bound.update(made)
        steps.append((reads, made, kind is not ast.Import and kind is not ast.ImportFrom))
    free = loaded - bound - BUILTIN_NAMES
    so_far: set[str] = set()  # as `_read_before_bound` walks a flat body
    writes: dict[str, None] = {}
    for reads, made, outputs in steps:
        free |= (reads & bound) - so_far
        so_far.update(made)
        if outputs:
            for name in made:
                writes[name] = None
    first = [n for n in every if n.id in free]
    if len(first) > 1:
        first.sort(key=_POSITION)
    used = dict.fromkeys([n.id for n in first])  # in order of first use
    return CodeInfo(tuple(used), tuple([n for n in writes if not n.startswith("_")]))


_POSITION = operator.attrgetter("lineno", "col_offset", "id")


def _read_before_bound(body: list[ast.stmt], bound: set[str], so_far: set[str] | None = None) -> set[str]:
    """Names bound somewhere in the cell but read, at module level, before that binding.
    Function bodies run later, so their uses do not count here."""
    so_far = set() if so_far is None else so_far
    reads: set[str] = set()

    def parts(*nodes) -> set[str]:
        return set().union(*(_immediate_loads(n) for n in nodes if n is not None)) & bound

    for stmt in body:
        if isinstance(stmt, (ast.For, ast.AsyncFor)):
            reads |= parts(stmt.iter) - so_far
            so_far |= set(_targets(stmt.target))
            blocks = [stmt.body, stmt.orelse]
        elif isinstance(stmt, (ast.If, ast.While)):
            reads |= parts(stmt.test) - so_far
            so_far |= {n.target.id for n in ast.walk(stmt.test) if isinstance(n, ast.NamedExpr)}
            for block in (stmt.body, stmt.orelse):  # either may run: each sees only what is before
                reads |= _read_before_bound(block, bound, set(so_far))
            blocks = []
        elif isinstance(stmt, ast.AugAssign):  # `x += 1` reads `x`
            reads |= (parts(stmt.value) | (set(_targets(stmt.target)) & bound)) - so_far
            blocks = []
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            reads |= parts(*[i.context_expr for i in stmt.items]) - so_far
            so_far |= {n for i in stmt.items if i.optional_vars for n in _targets(i.optional_vars)}
            blocks = [stmt.body]
        elif isinstance(stmt, ast.Try):
            so_far |= {h.name for h in stmt.handlers if h.name}
            blocks = [stmt.body, *[h.body for h in stmt.handlers], stmt.orelse, stmt.finalbody]
        else:
            reads |= parts(stmt) - so_far
            blocks = []
        for block in blocks:
            reads |= _read_before_bound(block, bound, so_far)
        so_far |= set(_bindings([stmt]))
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            so_far |= {a.asname or a.name.split(".")[0] for a in stmt.names}
        if isinstance(stmt, _SCOPES):
            so_far.add(stmt.name)
    return reads


def _immediate_loads(stmt: ast.stmt) -> set[str]:
    loads: set[str] = set()
    local: set[str] = set()
    stack: list[ast.AST] = [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            stack.extend(getattr(node, "decorator_list", []))
            stack.extend(node.args.defaults + [d for d in node.args.kw_defaults if d])
            continue
        if isinstance(node, ast.comprehension):
            local |= set(_targets(node.target))
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            loads.add(node.id)
        stack.extend(ast.iter_child_nodes(node))
    return loads - local


def _global_uses(table: symtable.SymbolTable) -> set[str]:
    """Names referenced at module level, or as implicit globals in any nested scope."""
    names = {s.get_name() for s in table.get_symbols() if s.is_referenced()}
    stack = list(table.get_children())
    while stack:
        scope = stack.pop()
        names |= {s.get_name() for s in scope.get_symbols() if s.is_global() and s.is_referenced()}
        stack.extend(scope.get_children())
    return names


def _targets(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, (ast.Tuple, ast.List)):
        return [n for elt in node.elts for n in _targets(elt)]
    if isinstance(node, ast.Starred):
        return _targets(node.value)
    return []


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def _walrus_targets(node: ast.AST) -> list[str]:
    """`(x := ...)` targets bound at module level: comprehensions count, lambdas do not."""
    found, stack = [], [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.NamedExpr):
            found.append(current.target.id)
        stack.extend(c for c in ast.iter_child_nodes(current) if not isinstance(c, _SCOPES))
    return found[::-1]


def _bindings(body: list[ast.stmt]) -> list[str]:
    """Names assigned at module level, also inside if/for/with/try blocks, in order."""
    names: dict[str, None] = {}
    for stmt in body:
        if isinstance(stmt, _SCOPES):
            continue
        found: list[str] = []
        if isinstance(stmt, ast.Assign):
            found = [n for t in stmt.targets for n in _targets(t)]
        elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor)):
            if getattr(stmt, "value", True) is not None:  # `x: int` alone binds nothing
                found = _targets(stmt.target)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            found = [n for i in stmt.items if i.optional_vars for n in _targets(i.optional_vars)]
        found += _walrus_targets(stmt)
        inner = [getattr(stmt, "body", [])] + [h.body for h in getattr(stmt, "handlers", [])]
        inner += [getattr(stmt, f, []) for f in ("orelse", "finalbody")]
        for block in inner:
            found += _bindings(block)
        for name in found:
            names.setdefault(name, None)
    return list(names)


# -- the notebook's context -----------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """Imports and def/class statements gathered from code cells, later cells winning."""

    snippets: tuple[tuple[str, str], ...] = ()  # (name, source), imports first, then defs

    @property
    def names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.snippets)

    @property
    def source(self) -> str:
        seen: dict[str, None] = {}
        for _, src in self.snippets:
            seen.setdefault(src, None)
        return "\n".join(seen)

    def digest(self, names: set[str] | None = None) -> str:
        chosen = [src for name, src in self.snippets if names is None or name in names]
        return hashlib.sha256("\n".join(chosen).encode()).hexdigest()[:16]

    def namespace(self) -> dict:
        """A fresh namespace holding the context: the base of every step's namespace."""
        from .errors import DefinitionError

        ns: dict = {"__name__": "__jupyter_pipelines_step__"}
        try:
            exec(compile(self.source, "<notebook context>", "exec"), ns)
        except Exception as exc:
            raise DefinitionError(
                f"The notebook's imports and definitions could not be run: {type(exc).__name__}: "
                f"{exc}. Every step runs with them, so fix the failing import or definition."
            ) from None
        return ns

    @classmethod
    def from_cells(cls, sources: list[str]) -> Context:
        imports: dict[str, str] = {}
        defs: dict[str, str] = {}
        for source in sources:
            try:
                tree = ast.parse(source)
            except SyntaxError:
                continue
            for stmt in tree.body:
                snippet = ast.get_source_segment(source, stmt, padded=False)
                if snippet is None:
                    continue
                if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
                    continue  # compiler flags for its own cell; meaningless in a step
                if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                    for alias in stmt.names:
                        name = (alias.asname or alias.name).split(".")[0]
                        imports.pop(name, None)
                        imports[name] = snippet
                elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    decorators = "".join(
                        "@" + ast.get_source_segment(source, d) + "\n" for d in stmt.decorator_list
                    )
                    defs.pop(stmt.name, None)
                    defs[stmt.name] = decorators + snippet
        return cls(tuple(imports.items()) + tuple(defs.items()))
