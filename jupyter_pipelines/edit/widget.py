"""The editor: an anywidget canvas (``view/static/editor.js``, bundled from ``js/editor``) over
the kernel's `Pipeline`, which stays the one truth (``docs/editor-protocol.md``).

`Editor` turns each command from the canvas into an `commands.Edits` call, replies, and
re-sends the state the canvas draws (`graph`, `parameters`, statuses) and the cells the
notebook should hold (`cells`, applied by the JupyterLab/Notebook 7 extension). A `%%step` or
`%%parameters` cell run in the notebook changes the same pipeline; `Editor.refresh` redraws.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import anywidget
import nbformat
import traitlets

from ..errors import PipelineError
from ..execution import Execution
from ..pipeline import Pipeline
from ..view.details import step_details
from ..view.dot import SHAPES, shape
from ..view.state import header_state, step_state
from ..view.widget import SAGEMAKER_TYPES, STATIC, legend
from .cells import flags_of, parameters_cell, step_cell
from .commands import Edits, NeedsConfirmation
from .layout import positions


class EditorWidget(anywidget.AnyWidget):
    _esm = STATIC / "editor.js"
    _css = STATIC / "editor.css"
    name = traitlets.Unicode("").tag(sync=True)
    graph = traitlets.Dict().tag(sync=True)
    parameters = traitlets.List().tag(sync=True)
    steps = traitlets.Dict().tag(sync=True)
    header = traitlets.Dict().tag(sync=True)
    legend = traitlets.List().tag(sync=True)
    kinds = traitlets.List().tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)
    details = traitlets.Dict().tag(sync=True)
    mode = traitlets.Unicode("edit").tag(sync=True)
    can_undo = traitlets.Bool(False).tag(sync=True)
    can_redo = traitlets.Bool(False).tag(sync=True)
    cells = traitlets.Dict().tag(sync=True)
    source = traitlets.Unicode("notebook").tag(sync=True)

    def __repr__(self) -> str:  # deterministic: nbval compares it
        nodes = self.graph.get("nodes", [])
        return (f"PipelineEditor({self.name}: {len(nodes)} steps, "
                f"{len(self.parameters)} parameters; {self.header.get('status') or 'not run'})")


class Editor:
    """The canvas bound to ``pipeline``; ``definition``: the JSON file it was loaded from;
    ``cells``: the text of the notebook's cells that defined it, as typed (key -> text)."""

    def __init__(self, pipeline: Pipeline, *, definition: str | Path | None = None,
                 renderer: str | None = None, run_options: dict | None = None,
                 cells: dict[str, str] | None = None):
        self.pipeline, self.renderer = pipeline, renderer
        self.definition = Path(definition) if definition else None
        self.edits = Edits(pipeline)
        self.execution: Execution | None = None
        self.run_options = run_options or {}
        self._lock = threading.RLock()
        self._shown = 0.0  # when the last run update was sent
        self._revision, self._texts = 0, self._cell_texts()  # what the notebook holds now
        self._texts.update({k: t.rstrip("\n") for k, t in (cells or {}).items() if k in self._texts})
        self.widget = EditorWidget(
            name=pipeline.name, kinds=[{"kind": k, "shape": s, "type": SAGEMAKER_TYPES[k]}
                                       for k, s in SHAPES.items()],
            source=f"definition:{self.definition}" if self.definition else "notebook")
        self.widget.on_msg(self._on_msg)
        self.widget.observe(self._on_select, names="selected")
        self.refresh(cells=False)

    # -- state to the canvas -------------------------------------------------------------------
    def _graph(self):
        return self.edits.check()

    def refresh(self, *, cells: bool = True) -> None:
        """Redraw from the pipeline (after an edit here or a cell run in the notebook)."""
        with self._lock:
            collected: dict[str, list[str]] = {}
            graph = self.edits.check(collected)  # one build: the graph and its unknown names
            placed, width, height = positions(self.pipeline.name, graph, self.renderer)
            unknown = self.edits.unknown(collected)
            nodes = []
            for name, step in graph.steps.items():
                at = placed.get(name, {"x": 0.0, "y": 0.0, "w": 120.0, "h": 36.0})
                nodes.append({
                    "name": name, "kind": step.kind, "shape": shape(step), **at,
                    "label": name, "code": step.code,
                    "flags": flags_of(step) if step.kind != "aws" else {"kind": "aws"},
                    "outputs": list(step.outputs), "inputs": list(step.reads),
                    "unknown": unknown.get(name, ""),
                    "aws": step.code if step.kind == "aws" else ""})
            edges: dict[tuple[str, str, str], dict] = {}
            for e in graph.edges:
                kind = e.label if e.kind == "branch" else e.kind
                edge = edges.setdefault((e.source, e.target, kind),
                                        {"source": e.source, "target": e.target, "kind": kind,
                                         "names": []})
                if e.kind == "data" and e.label not in edge["names"]:
                    edge["names"].append(e.label)
            records = self.execution.steps if self.execution else {}
            w = self.widget
            with w.hold_sync():
                w.name = self.pipeline.name
                w.graph = {"nodes": nodes, "edges": list(edges.values()), "width": width,
                           "height": height}
                w.parameters = [{"name": p.name, "type": p.type, "default": p.default,
                                 "enum": list(p.enum_values or [])}
                                for p in self.pipeline.parameters.values()]
                w.legend = legend(graph)
                w.steps = {n: step_state(records.get(n)) for n in graph.steps}
                w.header = header_state(self.execution, len(graph.steps))
                w.can_undo, w.can_redo = self.edits.can_undo, self.edits.can_redo
                if w.selected:
                    w.details = step_details(self.execution, graph, w.selected)
                if cells:
                    self._send_cells(graph)

    def _on_select(self, change) -> None:
        name = change["new"]
        self.widget.details = step_details(self.execution, self._graph(), name) if name else {}

    # -- cells to the notebook -----------------------------------------------------------------
    def _cell_texts(self, graph=None) -> dict[str, str]:
        """Key -> text of every cell the pipeline needs, in the order the notebook holds them:
        the parameters, then the steps in dependency order."""
        graph = graph or self._graph()
        texts = {"parameters": parameters_cell(self.pipeline.parameters)} \
            if self.pipeline.parameters else {}
        for name in graph.order:
            step = graph.steps[name]
            if step.kind != "aws":
                texts[f"step:{name}"] = step_cell(step)
        return texts

    def _send_cells(self, graph) -> None:
        texts = self._cell_texts(graph)
        if texts == self._texts:
            return
        self._revision += 1
        previous = dict(self._texts)
        gone = [k for k in previous if k not in texts]
        new = [k for k in texts if k not in previous]
        if len(gone) == 1 and len(new) == 1:  # a rename (or its undo): the same cell, rewritten
            previous[new[0]] = previous.pop(gone[0])
            gone = []
        self.widget.cells = {
            "revision": self._revision,
            "cells": [{"key": k, "text": t, "previous": previous.get(k)} for k, t in texts.items()],
            "removed": [{"key": k, "previous": previous[k]} for k in gone]}
        self._texts = texts

    def cell_ran(self, key: str, text: str | None) -> None:
        """A cell of the notebook defined ``key`` (``"parameters"``, ``"step:<name>"``): its
        text is what the notebook holds now (the next revision rewrites it only if it is still
        that), and the canvas redraws."""
        with self._lock:
            if text is not None:
                self._texts[key] = text.rstrip("\n")
            self.refresh(cells=False)

    def notebook_cells(self) -> list[str]:
        """The cells that define the pipeline: ``%load_ext``, parameters, steps, a run."""
        context = self.pipeline.context.source.strip() if self.pipeline.context.snippets else ""
        return (["%load_ext jupyter_pipelines"] + ([context] if context else [])
                + list(self._cell_texts().values()) + ["%pipeline run"])

    # -- commands from the canvas --------------------------------------------------------------
    def _on_msg(self, widget, content, buffers) -> None:
        if not isinstance(content, dict) or "op" not in content:
            return
        reply = {"reply": content.get("id")}
        try:
            reply.update(ok=True, **self.handle(content))
        except NeedsConfirmation as exc:
            reply.update(ok=False, confirm=str(exc))
        except (PipelineError, OSError) as exc:
            reply.update(ok=False, error=str(exc))
        except Exception as exc:  # never a dead canvas: say what happened
            reply.update(ok=False, error=f"The edit failed: {type(exc).__name__}: {exc}")
        self.widget.send(reply)

    def handle(self, command: dict) -> dict:
        """Apply one command (the canvas's, or a test's) and redraw; the reply's fields."""
        op = command.get("op")
        if op == "run":
            return self._run(command.get("parameters") or {})
        if op == "save_notebook":
            return self._save_notebook(command.get("path") or f"{self.pipeline.name}-edited.ipynb")
        if op == "copy_cells":
            return {"text": "\n\n".join(self.notebook_cells())}
        if op == "save_definition":
            return self._save_definition()
        reply = self.edits.apply(command)
        if op != "check_code":
            self.refresh()
        return reply

    def __call__(self, event: str, *, execution: Execution, **_: Any) -> None:
        """A listener of an execution (the editor's Run, or ``%pipeline run``): its statuses and
        outcomes show on the canvas as it runs (at most ten updates a second, and the end)."""
        self.execution = execution
        now = time.monotonic()
        if event != "execution_finished" and now - self._shown < 0.1:
            return
        self._shown = now
        with self.widget.hold_sync():
            self.widget.steps = {n: step_state(execution.steps.get(n)) for n in self.widget.steps}
            self.widget.header = header_state(execution, len(self.widget.steps))

    def _run(self, parameters: dict) -> dict:
        self.execution = self.pipeline.start(parameters or None, display=False, listeners=[self],
                                             **self.run_options)
        self.refresh(cells=False)
        return {"status": self.execution.status, "execution": self.execution.id}

    def _save_notebook(self, path: str) -> dict:
        target = Path(path)
        if target.suffix != ".ipynb":
            raise PipelineError(f"Save as notebook needs a .ipynb file name; got {path!r}.")
        if target.exists():
            raise PipelineError(f"{target} exists; pick another name (nothing was overwritten).")
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c)
                                             for c in self.notebook_cells()])
        nbformat.write(nb, target)
        return {"path": str(target)}

    def _save_definition(self) -> dict:
        if self.definition is None:
            raise PipelineError("This pipeline was not loaded from a definition JSON, so there is "
                                "no file to save it to: use Save as notebook, or %pipeline definition "
                                "--out FILE.json.")
        from ..definition.validation import validate

        doc = json.loads(self.pipeline.definition())
        validate(doc, source=str(self.definition))  # the error names the JSON path
        self.definition.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        return {"path": str(self.definition)}

    # -- display -------------------------------------------------------------------------------
    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def __repr__(self) -> str:
        return repr(self.widget)
