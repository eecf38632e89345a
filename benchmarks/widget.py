"""What the live DAG widget costs.

1. Run time with the widget attached: a 500-step no-op chain run with a `LiveView` listening
   (coalescing its updates to at most one per 0.1 s) against the same run without it, measured
   in the same process, fresh pipelines each sample. Target: at most 10 % added run time.
2. Layout: DOT text -> SVG -> annotated SVG of a 500-node DAG, with Graphviz's ``dot`` and with
   its WebAssembly build (first call, which compiles the module, and warm). Target: under 1 s.

Usage: python benchmarks/widget.py [--quick]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import time
from pathlib import Path

try:
    import jupyter_pipelines  # noqa: F401
except ImportError:  # a plain clone: use the package beside this folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyter_pipelines import Pipeline
from jupyter_pipelines.view.dot import to_dot
from jupyter_pipelines.view.render import _layout, layout
from jupyter_pipelines.view.svg import annotate
from jupyter_pipelines.view.widget import LiveView


def chain(n: int) -> Pipeline:
    p = Pipeline("bench", persist=False)  # the core run: the widget is the only difference
    p.add_step("s0", "x0 = 0")
    for i in range(1, n):
        p.add_step(f"s{i}", f"x{i} = x{i - 1}")
    return p


def timed_run(n: int, with_view: bool) -> float:
    p = chain(n)
    listeners = []
    if with_view:
        listeners.append(LiveView(p.name, p.parameters, p.graph()))  # laid out before the run
    gc.collect()
    start = time.perf_counter()
    ex = p.start(listeners=listeners, display=False)
    took = time.perf_counter() - start
    assert ex.status == "Succeeded", ex
    return took


def run_cost(n: int, repeat: int) -> None:
    timed_run(n, False), timed_run(n, True)  # warm-up
    plain, viewed = [], []
    for _ in range(repeat):  # interleaved, so drift on a noisy machine hits both alike
        plain.append(timed_run(n, False))
        viewed.append(timed_run(n, True))
    base, with_view = min(plain), min(viewed)
    added = 100 * (with_view / base - 1)
    print(f"Run time of a {n}-step no-op chain (best of {repeat})")
    print(f"  without the widget   {base * 1e3:8.2f} ms")
    print(f"  with the live widget {with_view * 1e3:8.2f} ms   ratio {with_view / base:.3f}  "
          f"added {added:+.1f} %  (target <= 10 %)  {'PASS' if added <= 10 else 'MISS'}")


def layout_cost(n: int, repeat: int) -> None:
    p = chain(n)
    p.add_parameter("threshold", 1.0)
    graph = p.graph()
    dot = to_dot(p.name, p.parameters, graph)
    print(f"\nLayout of a {n}-node DAG (DOT -> SVG -> annotated SVG)")
    renderers = (["dot"] if shutil.which("dot") else []) + ["wasm"]
    for renderer in renderers:
        times = []
        for i in range(repeat + 1):
            _layout.cache_clear()
            if renderer == "wasm" and i == 0:
                start = time.perf_counter()
                annotate(layout(dot, renderer), graph)
                first = time.perf_counter() - start
                continue
            start = time.perf_counter()
            annotate(layout(dot, renderer), graph)
            times.append(time.perf_counter() - start)
        best = min(times)
        extra = f"   (first call, compiling the module: {first:.2f} s)" if renderer == "wasm" else ""
        print(f"  {renderer:5} {best:6.3f} s  (target < 1 s)  {'PASS' if best < 1 else 'MISS'}{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeat = 3 if args.quick else 9
    run_cost(500, repeat)
    layout_cost(500, 2 if args.quick else 3)


if __name__ == "__main__":
    main()
