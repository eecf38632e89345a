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
import symtable
from dataclasses import dataclass

BUILTIN_NAMES = frozenset(dir(builtins)) | {"__name__", "__file__", "__builtins__"}


@dataclass(frozen=True)
class CodeInfo:
    reads: tuple[str, ...]   # free names, in order of first use
    writes: tuple[str, ...]  # public top-level assignments, in order


def parse(code: str, where: str) -> ast.Module:
    from .errors import DefinitionError

    try:
        return ast.parse(code, filename=where)
    except SyntaxError as exc:
        line = (exc.text or "").rstrip()
        raise DefinitionError(
            f"{where} is not valid Python: {exc.msg} at line {exc.lineno}: `{line.strip()}`. "
            "Fix the syntax and run the cell again."
        ) from None


def analyze(code: str, where: str = "<step>") -> CodeInfo:
    tree = parse(code, where)
    table = symtable.symtable(code, where, "exec")
    bound = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    bound |= {c.get_name() for c in table.get_children()}  # def/class at top level
    free = _global_uses(table) - bound - BUILTIN_NAMES
    used: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in free:
            used.setdefault(node.id, None)
    return CodeInfo(tuple(used), tuple(_top_level_writes(tree.body)))


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


def _top_level_writes(body: list[ast.stmt]) -> list[str]:
    """Public names assigned at module level, also inside if/for/with/try blocks."""
    names: dict[str, None] = {}
    for stmt in body:
        if isinstance(stmt, _SCOPES):
            continue
        found: list[str] = []
        if isinstance(stmt, ast.Assign):
            found = [n for t in stmt.targets for n in _targets(t)]
        elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign)) and stmt.value is not None:
            found = _targets(stmt.target)
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            found = _targets(stmt.target)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            found = [n for i in stmt.items if i.optional_vars for n in _targets(i.optional_vars)]
        found += [n.target.id for n in ast.walk(stmt) if isinstance(n, ast.NamedExpr)]
        inner = [getattr(stmt, f, []) for f in ("body", "orelse", "finalbody")]
        inner += [h.body for h in getattr(stmt, "handlers", [])]
        for block in inner:
            found += _top_level_writes(block)
        for name in found:
            names.setdefault(name, None)
    return [n for n in names if not n.startswith("_")]


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
