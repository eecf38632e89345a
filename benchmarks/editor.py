"""What the drag-and-drop pipeline editor costs in the browser: opening, an edit round trip, size.

What is measured (every figure against a baseline measured in the same run)
-----------------------------------------------------------------------------
The pipelines: ``jupyter_pipelines.Pipeline(persist=False)`` with N = 500 and N = 100 no-op
steps in layers of 10: layer 0 holds sources (``s0_i = i``), each later step reads one or two
outputs of the layer before (``s{L}_{i} = s{L-1}_a + s{L-1}_b``: chains, fan-outs and
fan-ins), and the 9th step of each layer is a report that outputs nothing
(``print(s{L-1}_a)``). ``pipeline.edit()`` is the kernel side (`edit.widget.Editor`).

The page is headless system Chromium launched as ``tests/browser/conftest.py`` does
(``/usr/bin/chromium`` or ``$JUPYTER_PIPELINES_CHROMIUM``, never a downloaded browser), a
1300x1000 viewport, served by Playwright's router from the files as
``tests/browser/test_editor_frontend.py`` does (no socket; every other request is aborted).
The widget gets the fake anywidget model of ``tests/browser/editor_harness/fake_model.js``.

(a) Opening the editor on the 500-step pipeline. Timed in the page from the moment the
    widget's state is handed over (its JSON text, as a comm message carries it) until every
    node is drawn: ``JSON.parse`` of the state, ``import()`` of the bundle from a ``blob:``
    URL (as anywidget loads ``_esm``; the text was fetched before the clock starts, as the
    comm message brings it), ``render({model, el})``, then, checked once per animation frame,
    500 ``[data-step]`` elements whose React Flow nodes are visible (React Flow hides a node
    until it has measured it), every edge drawn (a ``.react-flow__edge`` path per pair of
    connected steps) and the viewport fitted (its transform is no longer the initial one).
    The time is taken at the start of the first frame that paints that state. A fresh page
    per sample. The import and the render are also shown apart.
    Baseline: the DAG view widget (``view/static/widget.js``, `view.widget.LiveView` state of
    the same pipeline, Graphviz SVG) opened the same way, until 500 ``g[data-step]`` are in
    its SVG. Target: the editor under 2 s.
(b) An edit round trip on the 100-step pipeline, with the real kernel side behind the page:
    the page's model sends each command through a Playwright binding (``expose_function``) to
    Python, which hands it to the `EditorWidget` as its comm would
    (``_handle_custom_msg`` -> `Editor.handle`, including the Graphviz layout of the new graph;
    the layout cache is cleared before each sample) and returns the traits that changed and
    the reply, which the model applies (the bridge of the test module, without its 100 ms
    poll, so that nothing else runs in the measured window). The real mouse drags from a
    report step's ``out`` handle (it outputs nothing, so no output chooser opens) to a step
    four layers below; timed in the page from the ``pointerup`` that connects them until the
    start of the first frame whose DOM holds the new edge's path. Undo (untimed) restores the
    pipeline after each sample. The round trip is split into: canvas (pointerup -> the
    model's ``send``), Python (``_handle_custom_msg``, timed there), encode (``json.dumps`` of
    the changed traits and the reply), bridge (the binding call minus those two: Playwright's
    protocol and ``JSON.parse`` in the page, where a notebook has its comm and websocket) and
    redraw (the binding's answer -> the frame that shows the edge). For comparison (not
    judged): a data edge (``s1_0`` -> the same target), whose drag opens the output chooser;
    timed from the ``pointerup`` of the chooser's OK click, since there the drag's release
    sends nothing.
    Baselines: the same round trip with a no-op command (``check_code`` of a step's own code,
    sent through the same model and bridge; timed from ``send`` until its reply has arrived
    and a frame has started: the bridge and the kernel's dispatch with nothing to lay out or
    redraw), and `Editor.handle` of the same connect alone, in this process (Python only).
    Target: under 150 ms.
(c) The JavaScript the wheel ships: ``jupyter_pipelines/view/static/*.js`` and
    ``jupyter_pipelines/labextension/**/*.js`` (bytes on disk, and gzip -9 for scale).
    Baseline: the DAG view's ``widget.js``, what the package shipped before the editor.
    Target: under 1.5 MB (1,500,000 bytes).

Each browser figure is the median and best of the samples (5, or 2 with ``--quick``) after
one untimed warm-up. Nothing is written outside a temporary folder, which is removed.

Usage: python benchmarks/editor.py [--quick]      (from the repository root)
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True  # leave no __pycache__ behind

import contextlib  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
try:
    import jupyter_pipelines  # noqa: F401
except ImportError:  # a plain clone: use the package beside this folder
    sys.path.insert(0, str(REPO))

import common  # noqa: E402  benchmarks/common.py: the shared entry point

from jupyter_pipelines import Pipeline  # noqa: E402
from jupyter_pipelines.view.render import _layout  # noqa: E402
from jupyter_pipelines.view.widget import LiveView  # noqa: E402

sys.path.insert(0, str(REPO / "tests" / "browser"))  # the editor's harness page and the mouse
from editor_page import TRAITS as EDITOR_TRAITS  # noqa: E402
from editor_page import KernelBridge, drag, plain, serve  # noqa: E402

PACKAGE = REPO / "jupyter_pipelines"
STATIC = PACKAGE / "view" / "static"
BASE = "http://127.0.0.1:8765/"  # answered by the page's router, nothing listens there
TIMEOUT = 30_000  # ms, for any wait in the page
# As tests/browser/conftest.py launches Chromium.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
VIEW_TRAITS = ["name", "svg", "steps", "header", "legend", "selected", "details"]
OPEN_TARGET, ROUND_TRIP_TARGET, JS_TARGET = 2.0, 0.150, 1_500_000


# -- the pipelines ---------------------------------------------------------------------------------

def layered(n: int, home: Path, width: int = 10) -> Pipeline:
    """``n`` no-op steps in layers of ``width`` (module docstring)."""
    p = Pipeline(f"bench{n}", home=home, persist=False)
    prev: list[str] = []
    layer = count = 0
    while count < n:
        current = []
        for i in range(min(width, n - count)):
            name = f"s{layer}_{i}"
            count += 1
            if not prev:
                p.add_step(name, f"{name} = {i}")
                current.append(name)
            elif i % 9 == 8:  # a report: reads, outputs nothing
                p.add_step(name, f"print({prev[i % len(prev)]})")
            else:
                a, b = prev[i % len(prev)], prev[(3 * i + 1) % len(prev)]
                p.add_step(name, f"{name} = {a} + {b}" if a != b else f"{name} = {a}")
                current.append(name)
        prev, layer = current, layer + 1
    return p


def drawn_edges(graph: dict) -> int:
    """Edges the canvas draws: one per pair of connected steps."""
    return len({(e["source"], e["target"]) for e in graph["edges"]})


# -- the page ----------------------------------------------------------------------------------------

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>editor benchmark</title>
<link rel="stylesheet" href="/static/{css}">
<style>body {{ margin: 0; padding: 12px; background: #fff; font-family: system-ui, sans-serif; }}
#widget {{ width: 1260px; }}</style></head>
<body><div id="widget"></div>
<script type="module">
import {{ FakeModel }} from "/harness/fake_model.js";
// performance.now() in the callback: the callback's own timestamp is the frame's start, which
// may precede the work that was started during that frame's tasks.
const frame = () => new Promise((resolve) => requestAnimationFrame(() => resolve(performance.now())));
window.marks = [];

// The state's JSON text -> import of the bundle (blob: URL) -> render -> every node drawn.
window.openWidget = async ({{ esm, stateJson, steps, edges, kind, kernel }}) => {{
  const el = document.getElementById("widget");
  const done = kind === "editor" ? () => {{
    const nodes = el.querySelectorAll(".react-flow__node");
    if (el.querySelectorAll("[data-step]").length !== steps || nodes.length !== steps) return false;
    for (const n of nodes) if (!n.checkVisibility({{ visibilityProperty: true }})) return false;
    if (el.querySelectorAll(".react-flow__edge path.react-flow__edge-path").length < edges) return false;
    const vp = el.querySelector(".react-flow__viewport");
    return !!vp && vp.style.transform !== "" && vp.style.transform !== "translate(0px, 0px) scale(1)";
  }} : () => el.querySelectorAll("svg.jp-dag g[data-step]").length === steps;
  const t0 = performance.now();
  const state = JSON.parse(stateJson);
  const url = URL.createObjectURL(new Blob([esm], {{ type: "text/javascript" }}));
  const mod = await import(url);
  const t1 = performance.now();
  const model = new FakeModel(state);
  window.fake = model;
  if (kernel) {{  // the real kernel side, without the harness's poll
    const raw = window.__kernel;
    model.kernel = async (what, payload) => {{
      const sent = performance.now();
      const out = JSON.parse(await raw(what, payload));  // JSON text, as a comm carries it
      const back = performance.now();
      window.marks.push({{ what, op: payload && payload.op, sent, back, py: out.py, encode: out.encode }});
      return out;
    }};
  }}
  mod.default.render({{ model, el }});
  const t2 = performance.now();
  for (;;) {{
    const now = await frame();
    if (done()) return {{ import: t1 - t0, render: now - t1, total: now - t0, renderCall: t2 - t1 }};
    if (now - t0 > {timeout}) throw new Error("not drawn in time: " +
      el.querySelectorAll("[data-step]").length + " steps, " +
      el.querySelectorAll(".react-flow__edge").length + " edges");
  }}
}};

// Arm the round trip: the pointerup that ends the drag starts the clock; the first frame whose
// DOM holds the edge `id` stops it.
window.armConnect = (id) => {{
  window.marks = [];
  window.connected = new Promise((resolve, reject) => {{
    const sel = `.react-flow__edge[data-id="${{CSS.escape(id)}}"] path.react-flow__edge-path`;
    const onUp = () => {{
      const up = performance.now();
      window.removeEventListener("pointerup", onUp, true);
      const poll = () => {{
        const now = performance.now();
        const path = document.querySelector(sel);
        if (path && path.getAttribute("d")) return resolve({{ up, drawn: now, marks: window.marks }});
        if (now - up > {timeout}) return reject(new Error("edge not drawn; sent: " +
          JSON.stringify(window.fake.sent.slice(-3))));
        requestAnimationFrame(poll);
      }};
      requestAnimationFrame(poll);
    }};
    window.addEventListener("pointerup", onUp, true);
  }});
}};

// A command through the model and the bridge; resolves when its reply has arrived and a frame
// has started (or, with `edge`, once that edge's presence is `present`).
window.command = (content, edge, present) => new Promise((resolve) => {{
  const model = window.fake;
  const id = 900000000 + Math.floor(Math.random() * 1e8);
  const t0 = performance.now();
  const onReply = async (message) => {{
    if (!message || message.reply !== id) return;
    model.off("msg:custom", onReply);
    let now = await frame();
    const sel = edge && `.react-flow__edge[data-id="${{CSS.escape(edge)}}"]`;
    if (edge) while (!!document.querySelector(sel) !== present) now = await frame();
    resolve({{ took: now - t0, reply: message }});
  }};
  model.on("msg:custom", onReply);
  model.send({{ id, ...content }});
}});
window.ready = true;
</script></body></html>
"""


def _router(route):
    pages = {name: PAGE.format(css=name.replace(".html", ".css"), timeout=TIMEOUT).encode()
             for name in ("editor.html", "widget.html")}
    return serve(route, BASE, pages)


class Browser:
    """One headless system Chromium for the run (started when a report first needs it)."""

    def __init__(self):
        self.pw = self.browser = None
        self.why_not = ""

    def get(self):
        if self.browser is None and not self.why_not:
            executable = next((c for c in (os.environ.get("JUPYTER_PIPELINES_CHROMIUM"),
                                           "/usr/bin/chromium", shutil.which("chromium"),
                                           shutil.which("chromium-browser"))
                               if c and os.path.isfile(c) and os.access(c, os.X_OK)), None)
            try:
                from playwright.sync_api import sync_playwright
            except ImportError:
                self.why_not = "the `playwright` package is not installed"
                return None
            if executable is None:
                self.why_not = "no Chromium (/usr/bin/chromium; apt-get install chromium)"
                return None
            self.pw = sync_playwright().start()
            self.browser = self.pw.chromium.launch(executable_path=executable, headless=True,
                                                   chromium_sandbox=False, args=CHROMIUM_ARGS)
        return self.browser

    def close(self):
        if self.browser is not None:
            self.browser.close()
        if self.pw is not None:
            self.pw.stop()


BROWSER = Browser()
TMP: Path  # the run's temporary folder (pipelines' home), set in main


@contextlib.contextmanager
def page_for(kind: str, kernel=None):
    """A fresh context and page (``kind``: "editor" or "widget"), with the bridge if given."""
    context = BROWSER.get().new_context(viewport={"width": 1300, "height": 1000},
                                        service_workers="block")
    context.route("**/*", _router)
    if kernel is not None:
        context.expose_function("__kernel", kernel)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(BASE + f"{kind}.html")
    page.wait_for_function("window.ready === true", timeout=TIMEOUT)
    try:
        yield page
    finally:
        context.close()
    if errors:
        print(f"    (errors in the page: {errors[:3]})")


def open_once(kind: str, esm_name: str, state: dict, steps: int, edges: int, kernel=None, page=None):
    args = {"stateJson": json.dumps(state), "steps": steps, "edges": edges, "kind": kind,
            "kernel": kernel is not None}
    if page is not None:
        args["esm"] = page.evaluate("u => fetch(u).then(r => r.text())", f"/static/{esm_name}")
        return page.evaluate("a => window.openWidget(a)", args)
    with page_for(kind, kernel) as fresh:
        args["esm"] = fresh.evaluate("u => fetch(u).then(r => r.text())", f"/static/{esm_name}")
        return fresh.evaluate("a => window.openWidget(a)", args)


def stats(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples), min(samples)


def verdict(value: float, target: float) -> str:
    return "PASS" if value < target else "MISS"


def no_browser() -> bool:
    if BROWSER.get() is None:
        print(f"  not measured: {BROWSER.why_not}")
        return True
    return False


# -- (a) opening -------------------------------------------------------------------------------------

def report_open(repeat: int) -> None:
    n = 500
    print(f"(a) Opening on a {n}-step pipeline: state handed over -> every node drawn "
          f"(median / best of {repeat}, fresh page each)")
    if no_browser():
        return
    p = layered(n, TMP)
    editor = p.edit()
    editor_state = {name: plain(getattr(editor.widget, name)) for name in EDITOR_TRAITS}
    view = LiveView(p.name, p.parameters, p.graph()).widget
    view_state = {name: plain(getattr(view, name)) for name in VIEW_TRAITS}
    edges = drawn_edges(editor_state["graph"])
    sizes = [len(json.dumps(state)) / 1e3 for state in (editor_state, view_state)]
    print(f"  {n} steps, {edges} edges drawn; state JSON: editor {sizes[0]:.0f} kB, "
          f"DAG view {sizes[1]:.0f} kB")
    runs = {"editor": [], "widget": []}
    open_once("widget", "widget.js", view_state, n, edges)  # warm-up, untimed
    open_once("editor", "editor.js", editor_state, n, edges)
    for _ in range(repeat):  # interleaved, so drift on a noisy machine hits both alike
        runs["widget"].append(open_once("widget", "widget.js", view_state, n, edges))
        runs["editor"].append(open_once("editor", "editor.js", editor_state, n, edges))
    base_med, base_best = stats([r["total"] / 1e3 for r in runs["widget"]])
    med, best = stats([r["total"] / 1e3 for r in runs["editor"]])
    for label, key in (("DAG view widget.js (baseline)", "widget"), ("editor.js", "editor")):
        total = stats([r["total"] for r in runs[key]])
        imp = stats([r["import"] for r in runs[key]])
        ren = stats([r["render"] for r in runs[key]])
        print(f"  {label:30} total {total[0]:7.0f} ms (best {total[1]:6.0f})   import {imp[0]:5.0f} ms, "
              f"render+draw {ren[0]:6.0f} ms")
    print(f"  editor / DAG view: {med / base_med:.1f}x (median), {best / base_best:.1f}x (best);  "
          f"editor {med:.2f} s median  (target < {OPEN_TARGET:g} s)  {verdict(med, OPEN_TARGET)}")


# -- (b) the round trip -----------------------------------------------------------------------------

class TimedBridge(KernelBridge):
    """The test's bridge (tests/browser/editor_page.py), timing the Python side and the
    encoding of its answer."""

    def __call__(self, kind, payload):
        start = time.perf_counter()
        self.apply(kind, payload)
        py = time.perf_counter() - start
        start = time.perf_counter()
        text = json.dumps(self.take(), default=repr)
        encode = time.perf_counter() - start
        # JSON text, as a comm message carries it; the timings ride along at its end.
        return text[:-1] + f', "py": {py * 1e3}, "encode": {encode * 1e3}}}'



def handle_alone(p: Pipeline, connect: dict, repeat: int) -> list[float]:
    editor = p.edit()
    times = []
    for i in range(repeat + 1):
        _layout.cache_clear()
        start = time.perf_counter()
        reply = editor.handle(connect)
        took = time.perf_counter() - start
        assert reply == {} and editor.edits.can_undo, reply
        editor.handle({"op": "undo"})
        if i:
            times.append(took)
    return times


def report_round_trip(repeat: int) -> None:
    n = 100
    print(f"\n(b) Edit round trip on a {n}-step pipeline: connect by mouse -> kernel -> edge drawn "
          f"(median / best of {repeat})")
    if no_browser():
        return
    p = layered(n, TMP)
    source, target = "s1_8", "s5_3"  # a report (outputs nothing) -> a step four layers below
    assert not p.steps[source].outputs and source not in p.steps[target].depends_on
    connect = {"op": "connect", "source": source, "target": target, "handle": "out", "names": []}
    edge_id = f"{source}->{target}"
    data_source = "s1_0"  # outputs `s1_0`, which the target does not read yet
    data_edge = f"{data_source}->{target}"
    assert data_source not in p.steps[target].reads
    alone = handle_alone(layered(n, TMP), connect, repeat)

    bridge = TimedBridge(p.edit())
    state = bridge.state()
    check = {"op": "check_code", "step": target, "code": p.steps[target].code}
    with page_for("editor", bridge) as page:
        open_once("editor", "editor.js", state, n, drawn_edges(state["graph"]), kernel=bridge, page=page)
        node = lambda name: page.locator(f'[data-pipeline-editor] [data-step="{name}"]')  # noqa: E731
        out = node(source).locator('[data-handle="out"]')
        into = node(target).locator('[data-handle="in"]')
        data_out = node(data_source).locator('[data-handle="out"]')
        chooser = page.locator("[data-editor-chooser]")
        trips, noops, data_trips = [], [], []
        for i in range(repeat + 1):  # the first of each is an untimed warm-up
            _layout.cache_clear()
            page.evaluate("id => window.armConnect(id)", edge_id)
            drag(page, out, into)
            got = page.evaluate("() => window.connected")
            sends = [m for m in got["marks"] if m["what"] == "send" and m["op"] == "connect"]
            assert len(sends) == 1, got["marks"]
            m = sends[0]
            parts = {"total": got["drawn"] - got["up"], "canvas": m["sent"] - got["up"],
                     "python": m["py"], "encode": m["encode"],
                     "bridge": m["back"] - m["sent"] - m["py"] - m["encode"],
                     "redraw": got["drawn"] - m["back"]}
            assert target in p.steps and source in p.steps[target].depends_on
            undo = page.evaluate("([c, e]) => window.command(c, e, false)", [{"op": "undo"}, edge_id])
            assert undo["reply"]["ok"] and source not in p.steps[target].depends_on, undo
            noop = page.evaluate("c => window.command(c)", check)
            assert noop["reply"]["ok"], noop
            # A data edge: the drag opens the output chooser; the clock starts at its OK click.
            _layout.cache_clear()
            drag(page, data_out, into)
            chooser.locator(f'input[data-output="{data_source}"]').check(timeout=TIMEOUT)
            page.evaluate("id => window.armConnect(id)", data_edge)
            chooser.locator('[data-action="connect-ok"]').click()
            data = page.evaluate("() => window.connected")
            assert data_source in p.steps[target].reads
            undo = page.evaluate("([c, e]) => window.command(c, e, false)", [{"op": "undo"}, data_edge])
            assert undo["reply"]["ok"] and data_source not in p.steps[target].reads, undo
            if i:
                trips.append(parts)
                noops.append(noop["took"])
                data_trips.append(data["drawn"] - data["up"])
    med, best = stats([t["total"] for t in trips])
    noop_med, noop_best = stats(noops)
    alone_med, alone_best = stats([t * 1e3 for t in alone])
    data_med, data_best = stats(data_trips)
    split = "   ".join(f"{k} {statistics.median(t[k] for t in trips):.1f}"
                       for k in ("canvas", "python", "encode", "bridge", "redraw"))
    row = "  {:44} {:7.1f} ms (best {:6.1f}){}"
    print(f"  {n} steps, {drawn_edges(state['graph'])} edges drawn")
    print(row.format("Editor.handle(connect) alone (baseline)", alone_med, alone_best, "   in-process"))
    print(row.format("no-op check_code round trip (baseline)", noop_med, noop_best, ""))
    print(row.format(f"connect {edge_id} round trip", med, best,
                     f"   {med / noop_med:.1f}x the no-op, {med / alone_med:.1f}x handle alone"))
    print(f"    of which (medians, ms): {split}")
    print(row.format(f"data connect {data_edge} (chooser OK)", data_med, data_best,
                     f"   {data_med / noop_med:.1f}x the no-op (for comparison, not judged)"))
    print(f"  connect round trip {med:.0f} ms median  (target < {ROUND_TRIP_TARGET * 1e3:.0f} ms)  "
          f"{verdict(med / 1e3, ROUND_TRIP_TARGET)}")


# -- (c) size ----------------------------------------------------------------------------------------

def report_size(repeat: int) -> None:
    files = sorted(STATIC.glob("*.js")) + sorted((PACKAGE / "labextension").rglob("*.js"))
    print("\n(c) JavaScript the wheel ships (bytes on disk; gzip -9 for scale)")
    total, width = 0, max(len(str(f.relative_to(REPO))) for f in files)
    for file in files:
        size = file.stat().st_size
        total += size
        zipped = len(gzip.compress(file.read_bytes(), 9))
        print(f"  {file.relative_to(REPO)!s:{width}} {size:9,d}  gz {zipped:8,d}")
    base = (STATIC / "widget.js").stat().st_size
    print(f"  total {total:,d} bytes = {total / base:.0f}x the DAG view's widget.js ({base:,d}, baseline)  "
          f"(target < {JS_TARGET / 1e6:g} MB)  {verdict(total, JS_TARGET)}")


def main() -> None:
    global TMP
    with tempfile.TemporaryDirectory(prefix="jp-editor-bench-") as tmp:
        TMP = Path(tmp)
        try:
            common.main(__doc__, report_open, report_round_trip, report_size, repeat=5, quick=2)
        finally:
            BROWSER.close()


if __name__ == "__main__":
    main()
