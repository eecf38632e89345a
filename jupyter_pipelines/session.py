"""The kernel side: the one place that wires the notebook's pipeline to an IPython shell.

It keeps the notebook's context (imports and definitions of ordinary code cells) up to date,
rejects steps that read kernel variables, runs steps, and binds their outputs into the
notebook's namespace for inspection.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .errors import DefinitionError, ExecutionFailed, IsolationError, RunError, StepFailed
from .execution import Execution, Remote, StepRecord
from .graph import unknown_input
from .locate import kernel_notebook, notebook_home
from .parameters import check_not_an_output, parse_parameters_cell, pipeline_name
from .pipeline import Pipeline
from .run.protect import protect
from .source import Context
from .steps import Step, make_step


def notebook_name(notebook: Path | None = None) -> str:
    """The pipeline's name: the notebook's (as ``jupyter-pipelines run`` names it) when the
    front end tells the kernel which notebook it runs (see `locate.kernel_notebook`), else
    ``pipeline``."""
    return pipeline_name(notebook.stem) if notebook is not None else "pipeline"


class StoredOutput(Remote):
    """A stored output bound after a run on a Dask cluster, not loaded: ``.fetch()`` loads it
    (verified against its digest), once."""

    def __init__(self, record: StepRecord, name: str):
        self._record, self.name = record, name
        ref = record.outputs[name]
        # a small JSON value is kept in the history itself (`ArtifactRef.inline`)
        self.where = "the history" if ref.inline is not None else "the artifact store"
        self.preview = {"type": ref.type, "summary": f"{ref.size:,} bytes in {self.where}"}

    def fetch(self) -> Any:
        return self._record.value(self.name)

    def __repr__(self) -> str:
        return f"<{self.preview['type']} `{self.name}` in {self.where}: .fetch() loads it>"


class Session:
    def __init__(self, shell):
        self.shell = shell
        # the same notebook is the same pipeline (name, state folder) here and on the CLI
        self.notebook = kernel_notebook(shell.user_ns)
        self.pipeline = Pipeline(notebook_name(self.notebook), home=notebook_home(self.notebook))
        # Cells run before the extension was loaded are in the history (when it is kept);
        # later ones arrive through the post_run_cell event, which fires also for front ends
        # that do not store history (nbval, some test harnesses).
        history = shell.user_ns.get("In", [])
        self._cells: list[str] = [c for c in history if isinstance(c, str) and _defines(c)]
        self._loaded: list[str] = []  # the context of a loaded definition, before the cells
        self._step_cells: dict[str, tuple[str, str, Step]] = {}  # step -> (cell id, label, step)
        self._editors: list = []  # `edit.widget.Editor`s shown: a cell run redraws them
        self._typed: dict[str, str] = {}  # "step:<name>"/"parameters" -> its cell, as typed
        self._definition_file: str | None = None  # the JSON the pipeline was loaded from
        shell.events.register("post_run_cell", self._on_cell)

    def close(self) -> None:
        self.shell.events.unregister("post_run_cell", self._on_cell)

    def _on_cell(self, result) -> None:
        raw = getattr(getattr(result, "info", None), "raw_cell", None) or ""
        if raw.lstrip().startswith("%%"):
            return  # a cell magic's body is not notebook context
        try:
            code = self.shell.transform_cell(raw)
        except Exception:
            return
        if _defines(code):
            self._cells.append(code)

    # -- context and isolation -------------------------------------------------------------
    def refresh_context(self) -> None:
        self.pipeline.context = Context.from_cells(self._loaded + self._cells)

    def check_isolation(self, step: Step) -> None:
        unknown: dict[str, list[str]] = {}
        self.pipeline.graph(unknown)
        for name in unknown.get(step.name, []):
            if name in self.shell.user_ns and name not in self.shell.user_ns_hidden:
                raise IsolationError(
                    f"Step `{step.name}` reads `{name}`, a kernel variable that is neither a "
                    f"parameter nor an output of another step. Steps are isolated so the pipeline "
                    f"runs the same headless: make `{name}` an output of a step (assign it in a "
                    f"%%step cell) or a parameter (in %%parameters), or compute it in this step."
                )
            raise unknown_input(step.name, name, self.pipeline.known_names())

    # -- defining and running ----------------------------------------------------------------
    def define_parameters(self, code: str) -> list:
        params = parse_parameters_cell(code)
        for p in params:  # all checked before any is set: a refused cell changes nothing
            check_not_an_output(p.name, self.pipeline.steps, "The parameters cell was not applied: ")
        for p in params:
            self.pipeline.add_parameter(p.name, p.default, enum_values=p.enum_values)
            self.shell.user_ns[p.name] = p.default
        self._cell_ran("parameters", f"%%parameters\n{code}")
        return params

    def define_step(self, name: str, code: str, kind: str, *, source: str | None = None,
                    cell_text: str | None = None, **kwargs: Any) -> Step:
        """Define (or redefine) step ``name``. ``source`` is the cell's first line, to name the
        cell if another cell later defines a step of the same name; ``cell_text`` the whole
        cell as typed (an editor on the pipeline then knows the cell's text)."""
        self.refresh_context()
        cell = _cell_id(self.shell)
        _refuse_other_cell(self._step_cells.get(name), self.pipeline.steps.get(name), name, cell)
        step = make_step(name, code, kind, **kwargs)
        previous = self.pipeline.steps.get(name)
        self.pipeline.add_step(step)
        try:
            self.check_isolation(step)
        except Exception:
            if previous is None:
                del self.pipeline.steps[name]
            else:
                self.pipeline.steps[name] = previous
            raise
        if cell is not None:
            self._step_cells[name] = (cell, _cell_label(self.shell, source or code), step)
        self._cell_ran(f"step:{name}", cell_text)
        return step

    # -- the editor ----------------------------------------------------------------------------
    def edit(self):
        """The drag-and-drop editor on the notebook's pipeline (`edit.widget.Editor`)."""
        from .edit import editor

        self.refresh_context()
        made = editor(self.pipeline, definition=self._definition_file, cells=self._typed)
        self._editors.append(made)
        return made

    def changed(self) -> None:
        """The pipeline changed outside a cell (``%pipeline remove``, ``reset``): editors redraw."""
        for made in self._editors:
            made.refresh(cells=False)

    def _cell_ran(self, key: str, text: str | None) -> None:
        """A cell defined part of the pipeline: the editors redraw, and know the cell's text."""
        if text is not None:
            self._typed[key] = text
        for made in self._editors:
            made.cell_ran(key, text)

    def reset(self) -> None:
        """Forget every step and parameter, and what a loaded definition brought (its name
        and context)."""
        self.pipeline.reset()
        self.notebook = kernel_notebook(self.shell.user_ns)
        self.pipeline.name = notebook_name(self.notebook)
        self.pipeline.home = notebook_home(self.notebook)
        self._loaded = []
        self._definition_file = None
        self._typed = {}

    # -- the definition JSON -----------------------------------------------------------------
    def definition(self, out: str | None = None):
        """The pipeline's definition JSON: written to ``out``, or shown as a JSON tree."""
        import json

        from IPython.display import JSON

        self.refresh_context()
        text = self.pipeline.definition()
        if out:
            Path(out).write_text(text + "\n", encoding="utf-8")
            print(f"Wrote {out}: {len(self.pipeline.steps)} steps, "
                  f"{len(self.pipeline.parameters)} parameters.")
            return None
        return JSON(json.loads(text), expanded=False, root=self.pipeline.name)

    def load(self, path: str, *, view_only: bool = False):
        """Make a definition file's pipeline the notebook's (parameters, steps, and the
        imports/definitions they run with), or with ``view_only`` just draw it."""
        from .definition import from_definition
        from .view import live_view

        loaded = from_definition(Path(path), home=self.pipeline.home)
        if view_only:
            return live_view(loaded)
        self.reset()
        self._definition_file = path
        pipe = self.pipeline
        pipe.name, pipe.definition_extras = loaded.name, loaded.definition_extras
        self._loaded = [loaded.context.source] if loaded.context.snippets else []
        self.refresh_context()
        for param in loaded.parameters.values():
            pipe.parameters[param.name] = param
            if param.name.isidentifier():
                self.shell.user_ns[param.name] = param.default
        for step in loaded.steps.values():
            pipe.add_step(step)
        external = sum(s.kind == "aws" for s in pipe.steps.values())
        self.changed()
        print(f"Loaded pipeline {pipe.name} from {path}: {len(pipe.steps)} steps, "
              f"{len(pipe.parameters)} parameters"
              + (f"; {external} only run on AWS (drawn, not run)." if external else
                 ". Run it with %pipeline run."))
        return live_view(pipe)

    def run_step(self, name: str) -> Execution:
        from .view.compact import CompactRun

        view = CompactRun(name)
        view.show()
        execution = self.pipeline.run_step(name, listeners=[view], echo=True)
        self.bind(execution)
        record = execution.steps[name]
        if record.status == "Failed":
            raise _failure(record)
        if record.status == "NotRun":
            failed = [r for r in execution.steps.values() if r.status == "Failed"]
            if failed:
                raise RunError(
                    f"Step `{name}` did not run because upstream step `{failed[0].name}` failed: "
                    f"{failed[0].failure_reason}"
                )
        return execution

    def run(self, parameters: dict[str, Any] | None = None, **select: Any) -> Execution:
        self.refresh_context()
        execution = self.pipeline.start(parameters, listeners=[self.report_failures, *self._editors],
                                        echo=True, display=True, **select)
        self.bind(execution)
        return execution

    def retry(self, execution_id: str | None, **how: Any) -> Execution:
        """Resume a Failed or Stopped execution; ``how``: `Pipeline.start`'s executor and
        max_parallel."""
        self.refresh_context()
        execution = self.pipeline.retry(execution_id, listeners=[self.report_failures, *self._editors],
                                        echo=True, display=True, **how)
        self.bind(execution)
        return execution

    def latest_recorded(self) -> Execution | None:
        """The newest execution in the history (e.g. after a kernel restart), if any."""
        try:
            return self.pipeline.load_execution()
        except Exception:  # no history yet, or none for this pipeline
            return None

    def bind(self, execution: Execution) -> None:
        """The run's outputs as notebook variables. After a run on a Dask cluster they are
        handles (``.fetch()`` brings the value: one kept on a worker, or one a Cached step left
        in the store): such a run never moves every output into the kernel."""
        lazy = getattr(execution, "keeps_data", False)
        for record in execution.steps.values():
            if record.status in ("Succeeded", "Cached"):
                for key in record.outputs:
                    if key.isidentifier():
                        value = record.outputs[key]
                        if isinstance(value, Remote):
                            self.shell.user_ns[key] = value
                        elif lazy and type(value).__name__ == "ArtifactRef":
                            self.shell.user_ns[key] = StoredOutput(record, key)
                        else:
                            self.shell.user_ns[key] = protect(record.value(key))

    @staticmethod
    def report_failures(event: str, *, execution: Execution, step: str | None = None,
                        record: StepRecord | None = None, **future: Any) -> None:
        """A failed step's own traceback (the user's cell and line, never our internals)."""
        if event == "step_finished" and record is not None and record.traceback:
            print(record.traceback, file=sys.stderr)


def _defines(code: str) -> bool:
    """Cheap test: may this cell hold imports or definitions?"""
    return any(word in code for word in ("import ", "def ", "class "))


def _failure(record: StepRecord) -> Exception:
    if record.traceback:
        return StepFailed(record.failure_reason or "", record.traceback)
    if record.kind == "fail":
        return ExecutionFailed(f"Fail step `{record.name}`: {record.failure_reason}")
    return RunError(record.failure_reason or f"Step `{record.name}` failed.")


def _refuse_other_cell(known: tuple | None, current: Step | None, name: str,
                       cell: str | None) -> None:
    """Re-running a cell replaces its step; a different cell reusing the name is a mistake
    (the first cell's step would silently vanish). Without a cell id (a plain IPython shell)
    there is no telling cells apart, so the step is replaced."""
    if cell is None or known is None or known[0] == cell:
        return
    if current is not known[2]:  # removed, reset or redefined since
        return
    raise DefinitionError(
        f"Step `{name}` is already defined by another cell ({known[1]}). Each step is defined "
        f"by one cell: rename one of them, or run `%pipeline remove {name}` first to move the "
        "step to this cell. The existing step was left unchanged.")


def _cell_id(shell) -> str | None:
    """The id of the cell being run: JupyterLab and Notebook 7 send it as ``cellId`` in the
    execute_request's metadata, which ipykernel keeps as the shell's parent header. Tests
    (and other front ends) may set ``shell.parent_header`` likewise."""
    parent = getattr(shell, "parent_header", None)
    if not parent:
        kernel = getattr(shell, "kernel", None)
        get_parent = getattr(kernel, "get_parent", None)
        try:
            parent = get_parent("shell") if callable(get_parent) else None
        except Exception:  # an older ipykernel without channels: no cell id, today's behaviour
            parent = None
    metadata = parent.get("metadata") if isinstance(parent, dict) else None
    cell = metadata.get("cellId") if isinstance(metadata, dict) else None
    return cell if isinstance(cell, str) and cell else None


def _cell_label(shell, source: str) -> str:
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    first = first if len(first) <= 60 else first[:57] + "..."
    count = getattr(shell, "execution_count", None)
    run = f", last run as In [{count}]" if isinstance(count, int) and count > 0 else ""
    return f"the cell starting `{first}`{run}"
