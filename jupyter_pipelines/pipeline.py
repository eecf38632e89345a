"""`Pipeline`: parameters, steps and the notebook context, and how to run them."""

from __future__ import annotations

import hashlib
import json
import secrets
from concurrent.futures import Executor
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from . import parameters as params_mod
from .errors import PipelineError, UnknownReferenceError, did_you_mean
from .execution import Execution, Listener, StepRecord
from .graph import Graph, build, unknown_input
from .parameters import Parameter
from .registry import default_home
from .run import runner
from .run.executors import InKernelExecutor
from .source import Context
from .steps import RunContext, Step, make_step


class Pipeline:
    """A pipeline: typed parameters, typed steps, and the imports/definitions they share.

    >>> p = Pipeline("demo")
    >>> _ = p.add_parameter("n", 3)
    >>> _ = p.add_step("Make", "xs = list(range(n))")
    >>> _ = p.add_step("Total", "total = sum(xs)")
    >>> p.start().result("Total", "total")
    3
    """

    def __init__(self, name: str = "pipeline", *, home: str | Path | None = None,
                 executor: Executor | None = None, context: Context | None = None):
        self.name = name
        self.home = Path(home) if home else None
        self.executor = executor
        self.context = context or Context()
        self.parameters: dict[str, Parameter] = {}
        self.steps: dict[str, Step] = {}
        self.listeners: list[Listener] = []
        self.executions: list[Execution] = []
        self._memory: dict[str, tuple[str, StepRecord, str]] = {}

    # -- definition ------------------------------------------------------------------
    def add_parameter(self, name: str, default: Any, *, enum_values=None) -> Parameter:
        param = Parameter(name, default, enum_values)
        self.parameters[name] = param
        return param

    def add_step(self, name: str | Step, code: str = "", kind: str = "processing", *,
                 inputs=None, outputs=None, depends_on=None, **options) -> Step:
        """Add (or replace) a step. ``options`` are the kind's flags in snake_case."""
        step = name if isinstance(name, Step) else make_step(
            name, code, kind, inputs=inputs, outputs=outputs, depends_on=depends_on, **options)
        self.steps[step.name] = step
        return step

    def remove_step(self, name: str) -> None:
        if name not in self.steps:
            raise UnknownReferenceError(
                f"There is no step `{name}` to remove.{did_you_mean(name, self.steps)}")
        del self.steps[name]
        self._memory.pop(name, None)

    def reset(self) -> None:
        self.parameters.clear()
        self.steps.clear()
        self._memory.clear()

    def graph(self, unknown_names: dict[str, list[str]] | None = None) -> Graph:
        return build(self.steps, self.parameters, self.context.names, unknown_names)

    def known_names(self) -> list[str]:
        """Parameters and step outputs: what a step may read besides the context."""
        return list(self.parameters) + [o for s in self.steps.values() for o in s.outputs]

    @property
    def state_dir(self) -> Path:
        return self.home or default_home()

    # -- running -----------------------------------------------------------------------
    def start(self, parameters: dict[str, Any] | None = None, *, executor: Executor | None = None,
              listeners: list[Listener] = (), echo: bool = False) -> Execution:
        """Run the whole pipeline as one execution; returns it when finished."""
        return self._execute(parameters, None, executor, listeners, echo, reuse=False)

    def run_step(self, name: str, parameters: dict[str, Any] | None = None, *,
                 executor: Executor | None = None, listeners: list[Listener] = (),
                 echo: bool = False) -> Execution:
        """Run one step and whatever upstream it needs, reusing in-memory results of upstream
        steps whose code, inputs and parameters have not changed (what a ``%%step`` cell does)."""
        if name not in self.steps:
            raise UnknownReferenceError(f"There is no step `{name}`.{did_you_mean(name, self.steps)}")
        return self._execute(parameters, name, executor, listeners, echo, reuse=True)

    def _execute(self, overrides, target, executor, listeners, echo, reuse) -> Execution:
        values = params_mod.resolve(self.parameters, overrides)
        unknown: dict[str, list[str]] = {}
        graph = self.graph(unknown)
        if not graph.steps:
            raise PipelineError("The pipeline has no steps yet: define one with %%step or add_step().")
        if target is None:
            for cond, absent in graph.missing_branches.items():
                raise UnknownReferenceError(
                    f"Condition `{cond}` names branch step `{absent[0]}`, which does not exist."
                    f"{did_you_mean(absent[0], graph.steps)} Define it or fix the --if/--else list."
                )
            names = list(graph.order)
        else:
            needed = graph.ancestors([target]) | {target}
            names = [n for n in graph.order if n in needed]
        for n in names:  # a step elsewhere that reads an unknown name does not block this run
            if unknown.get(n):
                raise unknown_input(n, unknown[n][0], self.known_names())
        prints = fingerprints(graph, values, self.context)
        reused = {}
        if reuse:
            for n in names:
                memo = self._memory.get(n)
                if n != target and memo and memo[0] == prints[n]:
                    reused[n] = replace(memo[1], status="Cached", reused_from=memo[2])
        execution_id = f"{self.name}-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        execution = Execution(execution_id, self.name, values,
                              {n: graph.steps[n].kind for n in names},
                              [*self.listeners, *listeners])
        base = self.context.namespace()
        base.update(values)
        ctx = RunContext(execution_id, self.state_dir, MappingProxyType(values))
        runner.run(execution, graph, names, executor or self.executor or InKernelExecutor(),
                   base, ctx, reused, echo)
        for n, record in execution.steps.items():
            if record.status == "Succeeded":
                self._memory[n] = (prints[n], record, execution.id)
        self.executions.append(execution)
        return execution

    # -- views -------------------------------------------------------------------------
    def list_steps(self) -> list[dict]:
        """Each step with its kind, inputs, outputs and upstream steps."""
        graph = self.graph()
        return [{"Name": s.name, "Kind": s.kind, "Inputs": list(graph.inputs[s.name]),
                 "Parameters": list(graph.params[s.name]), "Outputs": list(s.outputs),
                 "Upstream": list(graph.upstream[s.name])} for s in self.steps.values()]

    def __repr__(self) -> str:
        return (f"Pipeline({self.name!r}, parameters={list(self.parameters)}, "
                f"steps={list(self.steps)})")


def fingerprints(graph: Graph, values: dict[str, Any], context: Context) -> dict[str, str]:
    """A digest per step of everything its results depend on: its definition, the values of
    the parameters it reads, the notebook definitions it uses, and its upstream digests."""
    prints: dict[str, str] = {}
    for name in graph.order:
        step = graph.steps[name]
        doc = {
            "kind": step.kind, "code": step.code, "reads": step.reads, "outputs": step.outputs,
            "options": {k: list(v) if isinstance(v, tuple) else v for k, v in step.options.items()},
            "params": {p: repr(values[p]) for p in graph.params[name]},
            "context": context.digest(set(step.reads)),
            "upstream": [prints[u] for u in graph.upstream[name]],
        }
        prints[name] = hashlib.sha256(json.dumps(doc, sort_keys=True, default=repr).encode()).hexdigest()
    return prints
