"""The DAG, pure: which step feeds which, validated.

Edges come from data flow (a step reads a name another step outputs), from ``depends_on``
(order only), from a condition to its branch steps, and from a transform to its model step.
Two steps may output the same name only when they sit on opposite branches of one condition
(exactly one of them runs): that is how branches rejoin.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

from .errors import CycleError, DuplicateOutputError, UnknownReferenceError, did_you_mean
from .source import BUILTIN_NAMES
from .steps import Step


class Edge(NamedTuple):  # a NamedTuple: big graphs make many of these
    source: str
    target: str
    label: str | None  # the data name, "True"/"False" for branches, None for order-only
    kind: str          # "data" | "order" | "branch"


@dataclass
class Graph:
    steps: dict[str, Step]
    edges: list[Edge]
    upstream: dict[str, tuple[str, ...]]
    downstream: dict[str, tuple[str, ...]]
    inputs: dict[str, dict[str, tuple[str, ...]]]  # step -> data name -> producer steps
    params: dict[str, tuple[str, ...]]             # step -> parameters it reads
    order: list[str] = field(default_factory=list)  # topological
    missing_branches: dict[str, list[str]] = field(default_factory=dict)  # not defined yet

    def ancestors(self, names) -> set[str]:
        return self._reach(names, self.upstream)

    def descendants(self, names) -> set[str]:
        return self._reach(names, self.downstream)

    @staticmethod
    def _reach(names, edges: dict[str, tuple[str, ...]]) -> set[str]:
        seen: set[str] = set()
        stack = list(names)
        while stack:
            for other in edges[stack.pop()]:
                if other not in seen:
                    seen.add(other)
                    stack.append(other)
        return seen


def build(steps: dict[str, Step], parameters, context_names=frozenset(),
          unknown_names: dict[str, list[str]] | None = None) -> Graph:
    """Resolve every step's reads and check the result is a DAG.

    Names that resolve to nothing raise `UnknownReferenceError`, unless ``unknown_names`` is a
    dict, which then collects them (step -> names) for the caller to judge (the kernel
    session tells kernel variables from typos).
    """
    producers: dict[str, list[str]] = defaultdict(list)
    for step in steps.values():
        for out in step.outputs:
            producers[out].append(step.name)
    exclusive: set[tuple[str, str]] | None = None  # worked out only if some name has two producers
    for name, makers in producers.items():
        if len(makers) > 1:
            exclusive = _exclusive_pairs(steps) if exclusive is None else exclusive
            _check_one_producer(name, makers, steps, exclusive)
        if name in parameters:
            raise DuplicateOutputError(
                f"Step `{makers[0]}` outputs `{name}`, which is also a parameter. Rename the output."
            )

    edges: list[Edge] = []
    missing: dict[str, list[str]] = {}
    inputs: dict[str, dict[str, tuple[str, ...]]] = {}
    params: dict[str, tuple[str, ...]] = {}
    known = set(steps)
    for step in steps.values():
        target = step.name
        inputs[target], reads_params = {}, []
        for name in step.reads:
            if name in parameters:
                reads_params.append(name)
            elif name in producers:
                makers = producers[name]
                makers = tuple(m for m in makers if m != target) if target in makers else tuple(makers)
                if not makers:
                    continue
                inputs[target][name] = makers
                for m in makers:
                    edges.append(Edge(m, target, name, "data"))
            elif name in context_names or name in BUILTIN_NAMES:
                continue
            elif unknown_names is not None:
                unknown_names.setdefault(target, []).append(name)
            else:
                raise unknown_input(target, name, list(producers) + list(parameters))
        params[target] = tuple(reads_params)
        for other in step.depends_on:
            _check_known(target, other, known)
            edges.append(Edge(other, target, None, "order"))
        if_steps, else_steps = step.branches
        if if_steps or else_steps:
            for other, label in [(s, "True") for s in if_steps] + [(s, "False") for s in else_steps]:
                if other in known:
                    edges.append(Edge(target, other, label, "branch"))
                else:  # a notebook defines the condition before its branch steps
                    missing.setdefault(target, []).append(other)
        for ref in step.step_refs:
            _check_known(target, ref, known)
            if steps[ref].kind != "create-model":
                raise UnknownReferenceError(
                    f"Step `{target}` names `{ref}` as its model (--model), but `{ref}` is a "
                    f"{steps[ref].kind} step. A transform's --model names a create-model step."
                )
            inputs[target][steps[ref].outputs[0]] = (ref,)
            edges.append(Edge(ref, target, steps[ref].outputs[0], "data"))

    up: dict[str, dict[str, None]] = {n: {} for n in steps}
    down: dict[str, dict[str, None]] = {n: {} for n in steps}
    for e in edges:
        up[e.target][e.source] = None
        down[e.source][e.target] = None
    graph = Graph(steps, edges, {k: tuple(v) for k, v in up.items()},
                  {k: tuple(v) for k, v in down.items()}, inputs, params)
    graph.order = topological_order(graph)
    graph.missing_branches = missing
    return graph


def unknown_input(step: str, name: str, candidates) -> UnknownReferenceError:
    return UnknownReferenceError(
        f"Step `{step}` reads `{name}`, which is not a parameter, an output of another step, or "
        f"an import/definition of the notebook.{did_you_mean(name, candidates)} Define the step "
        "that outputs it (and run that cell first), add it as a parameter, or fix the name."
    )


def _check_known(step: str, other: str, known: set[str]) -> None:
    if other not in known:
        raise UnknownReferenceError(
            f"Step `{step}` refers to step `{other}`, which does not exist.{did_you_mean(other, known)}"
            " Define that step first or fix the name."
        )


def _check_one_producer(name: str, makers: list[str], steps: dict[str, Step],
                        exclusive: set[tuple[str, str]]) -> None:
    """Two steps may output ``name`` only on opposite branches of one condition."""
    for i, a in enumerate(makers):
        for b in makers[i + 1:]:
            if (a, b) not in exclusive and name in steps[b].reads:
                raise DuplicateOutputError(
                    f"Step `{b}` reads `{name}` (from `{a}`) and assigns it again, so two "
                    f"steps would output `{name}`. Give the new value its own name (e.g. "
                    f"`{name}_clean = ...`), or make it private (`_{name}`)."
                )
            if (a, b) not in exclusive:
                raise DuplicateOutputError(
                    f"Steps `{a}` and `{b}` both output `{name}`. Every output needs one "
                    f"producer (unless the two steps are on opposite branches of one "
                    f"condition): rename it in one step, or make it private as `_{name}`."
                )


def _exclusive_pairs(steps: dict[str, Step]) -> set[tuple[str, str]]:
    pairs = set()
    for step in steps.values():
        if_steps, else_steps = step.branches
        for a in if_steps:
            for b in else_steps:
                pairs |= {(a, b), (b, a)}
    return pairs


def topological_order(graph: Graph) -> list[str]:
    """Kahn's algorithm taking the earliest-defined ready step first; a cycle raises
    `CycleError` with its path."""
    position = {n: i for i, n in enumerate(graph.steps)}
    indegree = {n: len(graph.upstream[n]) for n in graph.steps}
    ready = [position[n] for n in graph.steps if indegree[n] == 0]
    names = list(graph.steps)
    order = []
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for d in graph.downstream[name]:
            indegree[d] -= 1
            if indegree[d] == 0:
                heapq.heappush(ready, position[d])
    if len(order) < len(graph.steps):
        raise CycleError(find_cycle(graph, {n for n in graph.steps if indegree[n] > 0}))
    return order


def find_cycle(graph: Graph, candidates: set[str]) -> list[str]:
    """A cycle among ``candidates`` (steps Kahn's algorithm could not order, each with an
    upstream among them) as a path ``[a, b, ..., a]``, walked upstream then reversed."""
    node = next(n for n in graph.steps if n in candidates)
    path, index = [], {}
    while node not in index:
        index[node] = len(path)
        path.append(node)
        node = next(u for u in graph.upstream[node] if u in candidates)
    cycle = path[index[node]:] + [node]
    return cycle[::-1]
