"""The live DAG widget: an anywidget whose front end (``static/widget.js`` and ``.css``)
draws the laid-out SVG once and repaints statuses as the synced state changes.

`LiveView` is the listener that keeps it in step with an execution: updates are coalesced to
at most one every ``interval`` seconds (a trailing timer sends the last one), so even a run of
thousands of tiny steps is not slowed by the view.

**Where widgets cannot render.** A `LiveView` displays as two outputs: the widget (its view
plus a deterministic ``text/plain`` summary) and, right after it, the static picture
(`view.static.static_bundle`: the painted SVG as ``image/svg+xml``, and as an image under a
caption in ``text/html``). A
renderer picks one mime type per output, and nbconvert's HTML prefers the widget view whenever
the notebook holds widget state, so the picture has to be an output of its own to be seen
there, on GitHub, or in JupyterLab when the widget's model is gone. A live front end shows the
widget instead: ``widget.css``, which only a rendered view loads, hides a static picture whose
output directly follows an output holding a rendered widget (JupyterLab, Notebook 7,
nbconvert's page once its widget scripts ran). Both outputs are updated when the execution
finishes, so the saved notebook shows its final state.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import anywidget
import traitlets

from ..execution import Execution
from ..graph import Graph
from ..parameters import Parameter
from ..steps.external import kind_label
from .details import step_details
from .dot import SHAPES, shape
from .state import header_state, step_state
from .static import static_bundle, static_svg, structure_svg

STATIC = Path(__file__).parent / "static"
SAGEMAKER_TYPES = {"processing": "Processing", "training": "Training", "condition": "Condition",
                   "fail": "Fail", "register-model": "RegisterModel", "create-model": "Model",
                   "transform": "Transform"}


def legend(graph: Graph) -> list[dict]:
    """The kinds drawn, each with its shape and SageMaker type (AWS-only steps after ours)."""
    items: dict[str, dict] = {}
    for step in sorted(graph.steps.values(), key=lambda s: (s.kind == "aws", list(SHAPES).index(
            s.kind) if s.kind in SHAPES else 0, s.options.get("type") or "")):
        label = kind_label(step)
        items.setdefault(label, {"kind": label, "shape": shape(step),
                                 "type": SAGEMAKER_TYPES.get(step.kind) or step.options["type"]})
    return list(items.values())


class PipelineWidget(anywidget.AnyWidget):
    _esm = STATIC / "widget.js"
    _css = STATIC / "widget.css"
    name = traitlets.Unicode("").tag(sync=True)
    svg = traitlets.Unicode("").tag(sync=True)
    steps = traitlets.Dict().tag(sync=True)      # step -> view.state.step_state
    header = traitlets.Dict().tag(sync=True)     # view.state.header_state
    legend = traitlets.List().tag(sync=True)     # the kinds drawn, with their shapes
    selected = traitlets.Unicode("").tag(sync=True)   # set by a click in the browser
    details = traitlets.Dict().tag(sync=True)    # view.details.step_details of `selected`

    def __repr__(self) -> str:  # deterministic: nbval compares it
        counts: dict[str, int] = {}
        for state in self.steps.values():
            counts[state["status"]] = counts.get(state["status"], 0) + 1
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "not run"
        status = self.header.get("status") or "no execution"
        return f"PipelineWidget({self.name}: {len(self.steps)} steps; {status}; {summary})"


class LiveView:
    """A widget bound to a pipeline structure and (optionally) an execution of it."""

    def __init__(self, name: str, parameters: dict[str, Parameter], graph: Graph,
                 execution: Execution | None = None, *, interval: float = 0.1,
                 renderer: str | None = None):
        self.name, self.parameters, self.graph = name, parameters, graph
        self.execution = execution
        self.interval = interval
        self.renderer = renderer
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._last = 0.0
        self._handles: tuple = ()
        self.widget = PipelineWidget(
            name=name, svg=structure_svg(name, parameters, graph, renderer),
            legend=legend(graph))
        self.widget.observe(self._on_select, names="selected")
        self.flush()

    # -- the listener ----------------------------------------------------------------------
    def __call__(self, event: str, *, execution: Execution, **future) -> None:
        self.execution = execution
        if event == "execution_finished":
            self._cancel()
            self.flush()
            if any(self._handles):  # displayed (in IPython): the saved outputs show the final state
                for handle, bundle in zip(self._handles, self._bundles(), strict=True):
                    handle.update(bundle, raw=True)
            return
        now = time.monotonic()
        if now - self._last >= self.interval:
            self.flush()
        elif self._timer is None:
            self._timer = threading.Timer(self.interval - (now - self._last), self._timed_flush)
            self._timer.daemon = True
            self._timer.start()

    def _timed_flush(self) -> None:
        self._timer = None
        self.flush()

    def _cancel(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def flush(self) -> None:
        """Send the current state to the front end."""
        with self._lock:
            self._last = time.monotonic()
            records = self.execution.steps if self.execution else {}
            steps = {n: step_state(records.get(n)) for n in self.graph.steps}
            header = header_state(self.execution, len(self.graph.steps))
            with self.widget.hold_sync():
                self.widget.steps = steps
                self.widget.header = header
                if self.widget.selected:
                    self.widget.details = step_details(self.execution, self.graph,
                                                       self.widget.selected)

    def _on_select(self, change) -> None:
        name = change["new"]
        self.widget.details = step_details(self.execution, self.graph, name) if name else {}

    # -- display -----------------------------------------------------------------------------
    def show(self) -> None:
        """Display the widget and, as the next output, its static picture (module docstring)."""
        from IPython.display import display

        self._handles = tuple(display(bundle, raw=True, display_id=True) for bundle in self._bundles())

    _ipython_display_ = show

    def _bundles(self) -> tuple[dict, dict]:
        widget = self.widget._repr_mimebundle_() or {}
        if isinstance(widget, tuple):
            widget = widget[0]
        widget = {**widget, "text/plain": repr(self)}
        return widget, static_bundle(self.name, self.parameters, self.graph, self.execution,
                                     self.renderer)

    def static_svg(self) -> str:
        return static_svg(self.name, self.parameters, self.graph, self.execution, self.renderer)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """Both outputs in one bundle, for callers that ask for it directly; IPython's display
        uses `show` (two outputs), since a renderer shows only one mime type of a bundle."""
        widget, static = self._bundles()
        return {**widget, "image/svg+xml": static["image/svg+xml"]}

    def __repr__(self) -> str:
        if self.execution is not None:
            return repr(self.execution)
        return f"Pipeline {self.name}: {len(self.graph.steps)} steps, not run yet"
