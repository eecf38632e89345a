"""Cache keys that cannot be fooled, and why a step re-ran.

A step's key is the digest of its *parts*, each a digest of its own:

    kind        the kind and its options (outputs, branches, model...)
    code        the step's code, parsed: comments and formatting do not count
    helpers     the notebook functions and classes it calls, transitively, parsed alike
    parameters  the values of the parameters it reads
    inputs      the digests of its inputs (the artifacts upstream steps produced): of its
                one input, that input's digest
    packages    the versions of the packages its code and helpers import

Keeping the parts lets `why` name the part that changed since the step last ran.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
from importlib import metadata
from typing import TYPE_CHECKING, Any

from ..source import Context, analyze
from ..steps import Step

if TYPE_CHECKING:
    from ..graph import Graph

PARTS = ("kind", "code", "helpers", "parameters", "inputs", "packages")


def _digest(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@functools.lru_cache(maxsize=4096)  # keyed by the source text: re-parsed only when it changes
def normalised(code: str) -> str:
    """The code's syntax tree: what it does, not how it is laid out or commented."""
    try:
        return ast.dump(ast.parse(code), annotate_fields=False)
    except SyntaxError:
        return code


def helpers_used(context: Context, names) -> dict[str, str]:
    """Context snippets (imports, functions, classes) reachable from ``names``."""
    snippets = dict(context.snippets)
    seen: dict[str, str] = {}
    stack = [n for n in names if n in snippets]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen[name] = snippets[name]
        if not snippets[name].lstrip().startswith(("import ", "from ")):
            stack.extend(n for n in _free_names(snippets[name]) if n in snippets and n not in seen)
    return seen


@functools.lru_cache(maxsize=4096)  # helpers are re-read every run: parse each text once
def _free_names(source: str) -> tuple[str, ...]:
    return analyze(source).reads


def parameters_read(step: Step, context: Context, parameters) -> list[str]:
    """The parameters a step reads, directly or inside the notebook functions it calls."""
    names = [n for n in step.reads if n in parameters]
    for source in helpers_used(context, step.reads).values():
        if not source.lstrip().startswith(("import ", "from ")):
            names += [n for n in _free_names(source) if n in parameters and n not in names]
    return names


def _imported_modules(sources) -> set[str]:
    return set().union(*(_imports_of(source) for source in sources))


@functools.lru_cache(maxsize=4096)
def _imports_of(source: str) -> frozenset[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return frozenset()
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module.split(".")[0])
    return frozenset(modules)


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


@functools.lru_cache(maxsize=512)
def package_version(module: str) -> str:
    for dist in _distributions().get(module, []):
        try:
            return f"{dist}=={metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return f"{module} (no distribution)"


def key_parts(step: Step, params: dict[str, Any], input_digests: dict[str, str],
              context: Context) -> dict[str, str]:
    kind, code, helpers, modules = _fixed_parts(step, context)
    return {"kind": kind, "code": code, "helpers": helpers,
            "parameters": _digest({p: repr(v) for p, v in sorted(params.items())}),
            "inputs": _inputs_digest(input_digests), "packages": _packages_digest(modules)}


def _fixed_parts(step: Step, context: Context) -> tuple[str, str, str, tuple[str, ...]]:
    """The parts that depend on the step's definition and the notebook's context alone, and
    the modules its code and helpers import."""
    helpers = helpers_used(context, step.reads)
    defs = {n: normalised(s) for n, s in helpers.items() if not s.lstrip().startswith(("import ", "from "))}
    modules = _imported_modules([step.code, *helpers.values()])
    options = {k: list(v) if isinstance(v, tuple) else v for k, v in step.options.items()}
    return (_digest([step.kind, options, list(step.outputs), list(step.depends_on)]),
            _digest(normalised(step.code)), _digest(defs), tuple(sorted(modules)))


_PACKAGES: dict[tuple[str, ...], str] = {}  # versions -> their digest


def _packages_digest(modules: tuple[str, ...]) -> str:
    """The packages part: the versions are looked up each time (`package_version`)."""
    versions = tuple(sorted(package_version(m) for m in modules))
    digest = _PACKAGES.get(versions)
    if digest is None:
        if len(_PACKAGES) >= 4096:
            _PACKAGES.clear()
        digest = _PACKAGES[versions] = _digest(list(versions))
    return digest


def _as_json(text: str, quotes: int) -> bool:
    """Is ``text`` (strings written between quotes) what json.dumps would write? Yes when the
    strings need no escape: printable ASCII without quotes or backslashes."""
    return text.isascii() and text.isprintable() and "\\" not in text and text.count('"') == quotes


def _inputs_digest(input_digests: dict[str, str]) -> str:
    """The inputs' part: for the usual step, reading one input, that input's own digest (cut
    to a part's length: a digest of it would add nothing, and its name is in the step's code,
    the part "code"); for none or several, `_digest` of their digests by name."""
    if len(input_digests) == 1:
        for digest in input_digests.values():
            if type(digest) is str and len(digest) >= 32 and digest.isascii() and \
                    digest.encode().isalnum():  # (a hex digest: bytes.isalnum is 5x str.isalnum)
                return digest[:32]
    elif not input_digests:
        return _NO_INPUTS
    items = sorted(input_digests.items())
    if all(type(d) is str for _, d in items):
        text = "{" + ", ".join(f'"{n}": "{d}"' for n, d in items) + "}"
        if _as_json(text, 4 * len(items)):
            return hashlib.sha256(text.encode()).hexdigest()[:32]
    return _digest(dict(items))


_NO_INPUTS = _digest({})


class KeyParts(dict):
    """A step's key parts (`PARTS`, each a digest), with the texts of their JSON before and
    after the inputs' part (``around``: head and tail), made with them: the JSON (`json`) is
    what the step's history row keeps (`parts_json`). Parts made of the same memoised texts
    share ``around``: all their parts but the inputs' are the same. Not to be changed."""

    __slots__ = ("around",)

    @property
    def head(self) -> str:
        return self.around[0]

    @property
    def tail(self) -> str:
        return self.around[1]

    @property
    def json(self) -> str:
        return self.around[0] + self["inputs"] + self.around[1]


class CacheKeys:
    """The cache keys of the steps of one run (``values``: its parameter values), made cheaply:
    a step's kind, code and helpers (and the modules it imports) are digested once per step
    definition and notebook context, and the texts its key is made of (all its parts but the
    inputs') once per set of parameter values too (memoised across runs: an unchanged step in a
    run with the parameters of an earlier one costs two dict look-ups); each set of parameter
    values read and each set of imported modules' versions is digested once per run. So a
    step's key is then two SHA-256 of short texts, its inputs' and the key's. Equal to
    `key_parts` and `cache_key`, which make them afresh."""

    def __init__(self, context: Context, values: dict[str, Any]):
        self.context, self.values = context, values
        self._fixed = _memo(context)
        # the run's parameter values as the parameters part sees them (each one's repr)
        self._values_text = "\0".join(f"{p}\0{v!r}" for p, v in sorted(values.items()))
        self._parameters: dict[tuple[str, ...], str] = {}
        self._packages: dict[tuple[str, ...], str] = {}  # modules -> digest of their versions

    def key(self, step: Step, input_digests: dict[str, str]) -> tuple[str, KeyParts]:
        """The step's cache key and its parts."""
        fixed = self._fixed.get(step.digest) if step.digest else None
        made = fixed[5].get(self._values_text) if fixed is not None else None
        if made is None or self._packages.get(fixed[3]) is not made[3]:
            made = self._made(step, fixed)  # (also at its modules' first step in this run:
        key_text, others, around, _ = made  # `_made` looks their versions up, `_packages_of`)
        inputs = _inputs_digest(input_digests)
        parts = KeyParts(others)  # (a copy, the inputs' part in its place: `PARTS` order)
        parts["inputs"] = inputs
        parts.around = around
        return hashlib.sha256((key_text[0] + inputs + key_text[1]).encode()).hexdigest()[:32], parts

    def parts(self, step: Step, input_digests: dict[str, str]) -> dict[str, str]:
        return self.key(step, input_digests)[1]

    def _packages_of(self, modules: tuple[str, ...]) -> str:
        packages = self._packages.get(modules)
        if packages is None:
            packages = self._packages[modules] = _packages_digest(modules)
        return packages

    def _made(self, step: Step, fixed: tuple | None) -> tuple:
        """The step's parts but the inputs', and the texts around the inputs' part in its key's
        text and its parts' JSON; memoised by the run's parameter values (``fixed[5]``)."""
        if fixed is None:
            reads = tuple(sorted(parameters_read(step, self.context, _Everything())))
            fixed = (*_fixed_parts(step, self.context), reads, {})
            if step.digest:  # the digest of everything _fixed_parts reads of the step
                if len(self._fixed) >= 65536:  # a long session's edits: start afresh
                    self._fixed.clear()
                self._fixed[step.digest] = fixed
        kind, code, helpers, modules, reads, by_values = fixed
        read = tuple([n for n in reads if n in self.values])  # sorted, as `reads` is
        parameters = self._parameters.get(read)
        if parameters is None:
            parameters = self._parameters[read] = _digest({p: repr(self.values[p]) for p in read})
        packages = self._packages_of(modules)
        # every part is a hex digest, so these texts are what json.dumps writes (see
        # `cache_key`, `parts_json`)
        key_text = ('["' + '", "'.join((kind, code, helpers, parameters)) + '", "',
                    '", "' + packages + '"]')
        parts_text = tuple((_PARTS_JSON % (kind, code, helpers, parameters, "\0", packages))
                           .split("\0"))
        others = {"kind": kind, "code": code, "helpers": helpers, "parameters": parameters,
                  "inputs": "", "packages": packages}  # every part but the inputs'
        made = (key_text, others, parts_text, packages)  # (packages: `_packages`' own text)
        if len(by_values) >= 8:  # a few sets of parameter values are kept
            by_values.clear()
        by_values[self._values_text] = made
        return made


class _Everything:
    """A container holding every name: `parameters_read` then lists every name it might read."""

    def __contains__(self, name: object) -> bool:
        return True


@functools.lru_cache(maxsize=8)  # a few notebook contexts (editing a helper makes a new one)
def _memo(context: Context) -> dict[str, tuple]:
    return {}


_PARTS_JSON = "{" + ", ".join(f'"{p}": "%s"' for p in PARTS) + "}"


def parts_json(parts: dict[str, str]) -> str:
    """``json.dumps(parts)``, written directly for the usual parts (six digests)."""
    if type(parts) is KeyParts:
        return parts.json
    if tuple(parts) == PARTS:
        text = _PARTS_JSON % tuple(parts.values())
        if _as_json(text, 4 * len(PARTS)):
            return text
    return json.dumps(parts)


def cache_key(parts: dict[str, str]) -> str:
    values = [parts[p] for p in PARTS]
    text = '["' + '", "'.join(values) + '"]'  # json.dumps of the digests, written directly
    if _as_json(text, 2 * len(values)):
        return hashlib.sha256(text.encode()).hexdigest()[:32]
    return _digest(values)


def changed_parts(before: dict[str, str] | None, now: dict[str, str]) -> list[str]:
    if not before:
        return []
    return [p for p in PARTS if before.get(p) != now.get(p)]


def changed_since(before: str | dict | None, now: dict[str, str]) -> list[str]:
    """`changed_parts` of a previous run's parts, given as the JSON text its history row keeps
    (or as a dict). Quick for the usual re-run, where only the inputs' part may differ: three
    comparisons of the texts, no parsing, nothing copied."""
    if not before:
        return []
    if type(before) is KeyParts and type(now) is KeyParts and before.around is now.around:
        # (parts this process made of the same memoised texts: `History.remember_parts`)
        return [] if before["inputs"] == now["inputs"] else _INPUTS
    if type(before) is str:
        if type(now) is KeyParts:  # the same text but maybe the inputs' part?
            head, inputs, tail = now.head, now["inputs"], now.tail
            if len(before) == len(head) + len(inputs) + len(tail) and before.startswith(head) \
                    and before.endswith(tail):
                return [] if before.startswith(inputs, len(head)) else ["inputs"]
        before = json.loads(before)
    return changed_parts(before, now)


_WORDS = {"kind": "its kind or options", "code": "its code", "helpers": "a notebook function or "
          "class it calls", "parameters": "a parameter it reads", "inputs": "its inputs (an "
          "upstream step's output)", "packages": "a package it imports (its version)"}


_INPUTS = ["inputs"]  # (what `changed_since` says of most steps of a re-run: not to be changed)


def changed_why(parts: list[str]) -> str:
    """Why a step ran when these parts of its key changed since its last run."""
    if parts is _INPUTS or parts == _INPUTS:  # (what a re-run after an upstream change says)
        return _INPUTS_CHANGED
    return _changed_why(tuple(parts))


@functools.lru_cache(maxsize=64)
def _changed_why(parts: tuple[str, ...]) -> str:
    return _explained(parts) + " changed since its last run"


@functools.lru_cache(maxsize=64)  # a run explains many steps with the same few part lists
def _explained(parts: tuple[str, ...]) -> str:
    named = [_WORDS[p] for p in parts]
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]


_INPUTS_CHANGED = _changed_why(("inputs",))


def changed_why_since(before: str | dict | None, now: dict[str, str]) -> str | None:
    """`changed_why` of `changed_since`, or None if no part changed: one call for what a
    re-run after an upstream change says of most steps."""
    if type(before) is KeyParts and type(now) is KeyParts and before.around is now.around:
        return None if before["inputs"] == now["inputs"] else _INPUTS_CHANGED
    changed = changed_since(before, now)
    return changed_why(changed) if changed else None


def fingerprints(graph: Graph, values: dict[str, Any], context: Context) -> dict[str, str]:
    """A digest per step of everything its results depend on: its definition, the values of
    the parameters it reads, the notebook definitions it uses, and its upstream digests."""
    prints: dict[str, str] = {}
    has_context = bool(context.snippets)
    for name in graph.order:
        step = graph.steps[name]
        helpers = helpers_used(context, step.reads) if has_context else {}
        read = parameters_read(step, context, values) if has_context else graph.params[name]
        parts = [step.digest, *(f"{p}={values[p]!r}" for p in read),
                 *(f"{n}:{s}" for n, s in sorted(helpers.items())),
                 *(prints[u] for u in graph.upstream[name])]
        prints[name] = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return prints
