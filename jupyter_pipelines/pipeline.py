"""`Pipeline`: parameters, steps and the notebook context, and how to run them."""

from __future__ import annotations

import secrets
from concurrent.futures import Executor
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from . import parameters as params_mod
from .errors import PipelineError, UnknownReferenceError, did_you_mean
from .execution import Execution, Listener, Released, StepRecord, execution_summary
from .graph import Graph, build, unknown_input
from .parameters import Parameter
from .registry import default_home
from .run import arguments, executors, runner
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
                 executor: Executor | None = None, context: Context | None = None,
                 persist: bool = True, store: str | None = None):
        self.name = name
        self.home = Path(home) if home else None
        self.persist = persist  # keep history and artifacts, reuse stored results
        self.store = store      # where artifacts go: a folder or an fsspec URL (default: home)
        self.executor = executor
        self._context = context or Context()
        self._graph: tuple[Graph, dict[str, list[str]]] | None = None
        self.parameters: dict[str, Parameter] = {}
        self.steps: dict[str, Step] = {}
        self.listeners: list[Listener] = []
        self.executions: list[Execution] = []
        self.definition_extras: dict[str, Any] = {}  # a loaded definition's other top-level parts
        self._memory: dict[str, tuple[_Fingerprints, StepRecord, str]] = {}
        self._document: tuple | None = None  # its last version's text, `snapshot.document_text`
        self._on_cluster: list[Execution] = []  # its executions whose outputs a cluster keeps

    # -- definition ------------------------------------------------------------------
    @property
    def context(self) -> Context:
        """The imports and definitions every step runs with."""
        return self._context

    @context.setter
    def context(self, value: Context) -> None:
        if value != self._context:
            self._context, self._graph = value, None

    def add_parameter(self, name: str, default: Any, *, enum_values=None,
                      type_name: str | None = None) -> Parameter:
        """Add (or replace) a parameter; its type is that of ``default`` unless ``type_name``
        (String, Integer, Float, Boolean) says so (then ``default`` may be None: required).
        The name of a step's output is refused (`DuplicateOutputError`)."""
        param = Parameter(params_mod.check_variable_name(name), default, enum_values, type_name)
        params_mod.check_not_an_output(name, self.steps)
        self.parameters[name] = param
        self._graph = None
        return param

    def add_step(self, name: str | Step, code: str = "", kind: str = "processing", *,
                 inputs=None, outputs=None, depends_on=None, **options) -> Step:
        """Add (or replace) a step. ``options`` are the kind's flags in snake_case. An output
        named like a parameter is refused (`DuplicateOutputError`); the graph is checked at run."""
        step = name if isinstance(name, Step) else make_step(
            name, code, kind, inputs=inputs, outputs=outputs, depends_on=depends_on, **options)
        if self.parameters:
            params_mod.check_no_output_is_a_parameter(step, self.parameters, step.name in self.steps)
        self.steps[step.name] = step
        self._graph = None
        return step

    def remove_step(self, name: str) -> None:
        if name not in self.steps:
            raise UnknownReferenceError(
                f"There is no step `{name}` to remove.{did_you_mean(name, self.steps)}")
        del self.steps[name]
        self._memory.pop(name, None)
        self._graph = None

    def reset(self) -> None:
        self.parameters.clear()
        self.steps.clear()
        self.definition_extras = {}
        self._memory.clear()
        self._graph = None

    def graph(self, unknown_names: dict[str, list[str]] | None = None) -> Graph:
        """The validated DAG (built once per change of the definition). Names no parameter,
        output or context provides raise, unless ``unknown_names`` collects them."""
        if self._graph is None:
            unknown: dict[str, list[str]] = {}
            self._graph = build(self.steps, self.parameters, self.context.names, unknown), unknown
        graph, unknown = self._graph
        if unknown_names is not None:
            unknown_names.update(unknown)
        elif unknown:
            step, names = next(iter(unknown.items()))
            raise unknown_input(step, names[0], self.known_names())
        return graph

    def known_names(self) -> list[str]:
        """Parameters and step outputs: what a step may read besides the context."""
        return list(self.parameters) + [o for s in self.steps.values() for o in s.outputs]

    @property
    def state_dir(self) -> Path:
        return self.home or default_home()

    @property
    def workspace(self):
        """The state folder's history and artifact store."""
        from .store.workspace import Workspace

        return Workspace.open(str(self.state_dir.resolve()), self.store)

    # -- the definition JSON ---------------------------------------------------------------
    def definition(self) -> str:
        """The pipeline as a SageMaker-format definition JSON (Version 2020-12-01).

        Raises `ExportError` naming a step SageMaker's format cannot express (e.g. a
        condition calling a function); `jupyter_pipelines.definition.script` keeps any Python."""
        import json

        from .definition import to_definition

        return json.dumps(to_definition(self), indent=2)

    @classmethod
    def from_definition(cls, source: Any, *, name: str | None = None, **kwargs) -> Pipeline:
        """The pipeline a definition describes: JSON text, a parsed document or a path
        (`pathlib.Path`). It is validated first (`DefinitionValidationError` lists each problem
        with its JSON path). Steps only AWS can run (from a SageMaker SDK definition) are drawn
        but not run. ``kwargs`` are `Pipeline`'s (``home``, ``executor``...)."""
        from .definition import from_definition

        return from_definition(source, name=name, **kwargs)

    # -- running -----------------------------------------------------------------------
    def start(self, parameters: dict[str, Any] | None = None, *,
              executor: Executor | str | None = None, max_parallel: int | None = None,
              listeners: list[Listener] = (), echo: bool = False, display: bool | None = None,
              from_step: str | None = None, to_step: str | None = None,
              only: list[str] | None = None, cache: bool = True) -> Execution:
        """Run the pipeline as one execution; returns it when finished.

        ``executor`` is an Executor or "in-kernel", "threads[:N]", "processes[:N]" (a warm
        pool, see `run.executors`), "dask" (a LocalCluster) or a Dask scheduler's address
        ("tcp://host:8786"; see `run.cluster`); ``max_parallel`` caps the steps running at once.
        ``from_step``/``to_step``/``only`` run part of the DAG (those steps always run; the
        other steps they need come from the store); ``cache=False`` runs every step afresh.
        In a notebook (``display`` None) or with ``display=True`` the live DAG widget is shown
        and updated while it runs."""
        arguments.check_selection(from_step, to_step, only)
        select = (from_step, to_step, tuple(only or ())) if (from_step or to_step or only) else None
        return self._execute(parameters, select=select, executor=executor, listeners=listeners,
                             echo=echo, display=_in_notebook() if display is None else display,
                             cache=cache, max_parallel=max_parallel)

    def run_step(self, name: str, parameters: dict[str, Any] | None = None, *,
                 executor: Executor | None = None, listeners: list[Listener] = (),
                 echo: bool = False) -> Execution:
        """Run one step and whatever upstream it needs, reusing in-memory results of upstream
        steps whose code, inputs and parameters have not changed (what a ``%%step`` cell does)."""
        if name not in self.steps:
            raise UnknownReferenceError(f"There is no step `{name}`.{did_you_mean(name, self.steps)}")
        return self._execute(parameters, target=name, executor=executor, listeners=listeners,
                             echo=echo)

    def retry(self, execution_id: str | None = None, **kwargs) -> Execution:
        """Re-run a Failed or Stopped execution (default: the latest) with its parameters,
        reusing the results of the steps that finished (SageMaker's RetryPipelineExecution)."""
        doc = self._require_store("retry").find(execution_id, self.name, ("Failed", "Stopped"))
        if doc["status"] not in ("Failed", "Stopped"):
            raise PipelineError(f"Execution {doc['id']} {doc['status']}; only a Failed or Stopped "
                                "execution can be retried.")
        kwargs.setdefault("display", _in_notebook())
        return self._execute(doc["parameters"], retry_of=doc["id"], **kwargs)

    def _execute(self, overrides, *, target=None, select=None, retry_of=None, executor=None,
                 listeners=(), echo=False, display=False, cache=True, max_parallel=None) -> Execution:
        arguments.check_executor(executor, listeners, max_parallel)
        executor = executors.resolve(executor or self.executor)
        values = params_mod.resolve(self.parameters, overrides)
        graph, names = self._selection(target)
        external = [graph.steps[n] for n in names if graph.steps[n].kind == "aws"]
        if external:
            from .steps.external import needs_aws

            raise PipelineError(needs_aws(external))
        forced: frozenset[str] = frozenset()
        if select:
            forced = self._selected(graph, *select)
            names = [n for n in graph.order if n in forced | graph.ancestors(forced)]
        elif not cache:
            forced = frozenset(names)
        prints = _Fingerprints(graph, values, self.context)
        reused = self._reusable(names, prints, target) if target else {}
        execution_id = f"{self.name}-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        listeners = [*self.listeners, *listeners]
        recorder = None
        if self.persist:
            recorder = self._recorder(graph, values, retry_of, forced)
            if retry_of:
                reused.update(self.workspace.succeeded_steps(retry_of, graph, recorder))
            if select:
                upstream = [n for n in names if n not in forced and n not in reused]
                reused.update(self.workspace.stored_upstream(recorder, graph, upstream))
            listeners.append(recorder)
        elif select or retry_of:
            self._require_store("partial runs and retries")
        if display:
            from .view import live_view

            view = live_view(self)
            view.show()
            listeners.append(view)
        execution = Execution(execution_id, self.name, values,
                              {n: graph.steps[n].kind for n in names}, listeners)
        execution.graph, execution.parameter_defs = graph, dict(self.parameters)
        execution.shown_live = bool(display)
        execution.dashboard = getattr(executor, "dashboard", None)  # a Dask cluster's
        execution.keeps_data = bool(getattr(executor, "keeps_data", False))  # outputs stay there
        base = self.context.namespace()
        base.update(values)
        ctx = RunContext(execution_id, self.state_dir, MappingProxyType(values))
        runner.run(execution, graph, names, executor, base, ctx, reused, echo, recorder, max_parallel)
        for n, record in execution.steps.items():
            if record.status == "Succeeded":
                self._memory[n] = (prints, record, execution.id)  # its fingerprint: prints[n]
        self.executions.append(execution)
        for older in self._on_cluster:  # a cluster keeps the latest execution's outputs only
            older.let_go(self.workspace.artifacts.loader if self.persist else None)
        self._on_cluster = [execution] if execution.keeps_data else []
        return execution

    def _recorder(self, graph: Graph, values: dict, retry_of: str | None, forced: frozenset[str]):
        from .snapshot import document_text
        from .store.recorder import Recorder

        workspace = self.workspace
        text, digest = document_text(self)  # memoised: not built again for an unchanged pipeline
        return Recorder(self.name, workspace.history, workspace.artifacts, graph, self.context,
                        values, (digest, text), retry_of, forced)  # (recorded as it starts)

    def _require_store(self, what: str):
        if not self.persist:
            raise PipelineError(f"This pipeline keeps no history (persist=False), so {what} cannot "
                                "use stored results. Create it with persist=True (the default).")
        return self.workspace

    def _selected(self, graph: Graph, from_step, to_step, only) -> frozenset[str]:
        for name in [from_step, to_step, *only]:
            if name and name not in graph.steps:
                raise UnknownReferenceError(
                    f"There is no step `{name}` to run.{did_you_mean(name, graph.steps)}")
        if only:
            return frozenset(only)
        chosen = set(graph.steps)
        if from_step:
            chosen &= graph.descendants([from_step]) | {from_step}
        if to_step:
            chosen &= graph.ancestors([to_step]) | {to_step}
        if not chosen:
            raise PipelineError(f"No step is both downstream of `{from_step}` and upstream of "
                                f"`{to_step}`: nothing to run.")
        return frozenset(chosen)

    # -- history -------------------------------------------------------------------------
    def edit(self, *, definition: str | Path | None = None):
        """The drag-and-drop editor on this pipeline (an `edit.widget.Editor`: display it in
        a notebook); ``definition``: the JSON file its Save writes back."""
        from .edit import editor

        return editor(self, definition=definition)

    def list_executions(self) -> list[dict]:
        """Recorded executions of this pipeline, newest first (SageMaker's summary fields)."""
        history = self._require_store("history").history
        return [execution_summary(doc) for doc in history.executions(self.name)]

    def load_execution(self, execution_id: str | None = None) -> Execution:
        """A recorded execution (default: the latest), also after a kernel restart."""
        workspace = self._require_store("history")
        return workspace.load(workspace.find(execution_id, self.name))

    def doctor(self, *, repair: bool = False):
        """Check the state folder (databases, every stored artifact re-hashed, interrupted
        executions); ``repair`` marks what is broken so the next run recomputes it. A `Report`."""
        from .store.doctor import doctor

        return doctor(self._require_store("doctor").home, store=self.store, repair=repair)

    def why(self, step: str) -> str:
        """Why ``step`` ran (or was reused) in its latest recorded run."""
        run = self._require_store("why").history.latest_run(step, self.name)
        if run is None:
            raise PipelineError(f"Step `{step}` has no recorded run yet.{did_you_mean(step, self.steps)}")
        if run["status"] == "Cached":
            return (f"`{step}` did not run in {run['execution_id']}: it reused the stored result of "
                    f"{run['cache_source']} (same code, helpers, inputs, parameters and packages).")
        return f"`{step}` ran in {run['execution_id']} because {run['why'] or 'it was selected to run'}."

    def _selection(self, target: str | None) -> tuple[Graph, list[str]]:
        """The validated graph and the steps to run: all, or ``target`` and its upstream (a step
        elsewhere that reads an unknown name or misses a branch does not block that)."""
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
        for n in names:
            if unknown.get(n):
                raise unknown_input(n, unknown[n][0], self.known_names())
        return graph, names

    def _reusable(self, names: list[str], prints: _Fingerprints, target: str) -> dict[str, StepRecord]:
        """Upstream results from memory whose fingerprint still matches, as Cached records."""
        reused = {}
        for n in names:
            memo = self._memory.get(n)
            if n != target and memo and memo[0][n] == prints[n] and not any(
                    type(v) is Released for v in memo[1].outputs.values()):  # (gone: run again)
                reused[n] = replace(memo[1], status="Cached", reused_from=memo[2])
        return reused

    # -- views -------------------------------------------------------------------------
    def list_steps(self) -> list[dict]:
        """Each step with its kind, inputs, outputs and upstream steps."""
        graph = self.graph()
        return [{"Name": s.name, "Kind": s.kind, "Inputs": list(graph.inputs[s.name]),
                 "Parameters": list(graph.params[s.name]), "Outputs": list(s.outputs),
                 "Upstream": list(graph.upstream[s.name])} for s in self.steps.values()]

    def _ipython_display_(self) -> None:
        """In a notebook a pipeline shows as its DAG (the live widget, not run yet)."""
        from IPython.display import display

        from .view import live_view

        try:
            view = live_view(self)
        except PipelineError:  # not a valid DAG yet: say what it holds
            display({"text/plain": repr(self)}, raw=True)
            return
        display(view)

    def __repr__(self) -> str:
        return (f"Pipeline({self.name!r}, parameters={list(self.parameters)}, "
                f"steps={list(self.steps)})")


class _Fingerprints:
    """Each step's fingerprint in one run (`store.keys.fingerprints`), worked out when first
    read: a run of the whole pipeline keeps them for a later `run_step` that may never come."""

    def __init__(self, graph: Graph, values: dict[str, Any], context: Context):
        self._of: tuple | None = (graph, dict(values), context)
        self._prints: dict[str, str] = {}

    def __getitem__(self, name: str) -> str:
        if self._of is not None:
            from .store.keys import fingerprints

            self._prints, self._of = fingerprints(*self._of), None
        return self._prints[name]


def _in_notebook() -> bool:
    """True in a Jupyter kernel (where a widget can render), False in scripts and terminals."""
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython else None
    return type(shell).__name__ == "ZMQInteractiveShell"
