"""The editor's front end in a bare page (no Jupyter): serving its files to Chromium, and the
mouse as a user moves it on the canvas (Playwright). For the browser tests and
``benchmarks/editor.py``."""

from __future__ import annotations

import json
import threading
from pathlib import Path

HARNESS = Path(__file__).resolve().parent / "editor_harness"  # the fake anywidget model, state
STATIC = Path(__file__).resolve().parents[2] / "jupyter_pipelines" / "view" / "static"
TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
TRAITS = ["name", "graph", "parameters", "steps", "header", "legend", "kinds", "selected",
          "details", "mode", "can_undo", "can_redo", "cells", "source"]  # the editor's synced state


def plain(value):
    """A trait's value as the page receives it (JSON)."""
    return json.loads(json.dumps(value, default=repr))


class KernelBridge:
    """The kernel side's `Editor` behind the harness page's fake model, through a Playwright
    binding: a command (or a trait the page set) goes to the widget as its comm would hand it;
    the traits that changed and the replies come back, in that order (a notebook's comm
    delivers them so)."""

    def __init__(self, editor):
        self.editor, self.widget = editor, editor.widget
        self.lock = threading.Lock()
        self.changes: dict = {}
        self.replies: list = []
        self.widget.send = self._reply
        self.widget.observe(self._changed, names=TRAITS)

    def _reply(self, content, buffers=None):
        with self.lock:
            self.replies.append(content)

    def _changed(self, change):
        with self.lock:
            self.changes[change["name"]] = change["new"]

    def state(self) -> dict:
        return {name: plain(getattr(self.widget, name)) for name in TRAITS}

    def apply(self, kind: str, payload) -> None:
        if kind == "send":
            self.widget._handle_custom_msg(payload, [])
        elif kind == "sync":
            for name, value in payload.items():
                setattr(self.widget, name, value)

    def take(self) -> dict:
        """What changed and the replies since the last call."""
        with self.lock:
            out = {"changes": self.changes, "replies": self.replies}
            self.changes, self.replies = {}, []
        return out

    def __call__(self, kind: str, payload) -> dict:
        self.apply(kind, payload)
        return plain(self.take())


def serve(route, base: str, pages: dict[str, bytes]) -> None:
    """Answer a request of the page from files, never the network: ``pages`` (path -> HTML),
    ``harness/...`` (the fake model), ``static/...`` (the package's built front ends);
    ``data:`` and ``blob:`` URLs (anywidget imports the bundle from one) pass; anything else is
    aborted."""
    url = route.request.url
    if url.startswith(("data:", "blob:")):
        return route.continue_()
    if not url.startswith(base):
        return route.abort()
    path = url[len(base):].split("?", 1)[0]
    if path in pages:
        return route.fulfill(status=200, body=pages[path], headers={"Content-Type": TYPES[".html"]})
    if path.startswith("harness/"):
        file = HARNESS / path[len("harness/"):]
    elif path.startswith("static/"):
        file = STATIC / path[len("static/"):]
    else:
        return route.fulfill(status=404, body="not found")
    if not file.is_file():
        return route.fulfill(status=404, body=f"{file} not found")
    return route.fulfill(status=200, body=file.read_bytes(),
                         headers={"Content-Type": TYPES.get(file.suffix, "application/octet-stream")})


def drag(page, source, target) -> None:
    """A real mouse drag from the centre of ``source`` to the centre of ``target``."""
    a, b = source.bounding_box(), target.bounding_box()
    x0, y0 = a["x"] + a["width"] / 2, a["y"] + a["height"] / 2
    x1, y1 = b["x"] + b["width"] / 2, b["y"] + b["height"] / 2
    page.mouse.move(x0, y0)
    page.mouse.down()
    steps = 12
    for i in range(1, steps + 1):
        page.mouse.move(x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps)
    page.mouse.up()


def click_pane(page) -> None:
    """Click the canvas's background where nothing (node, edge, notice, control) covers it."""
    point = page.evaluate("""() => {
      const pane = document.querySelector('[data-pipeline-editor] .react-flow__pane');
      const r = pane.getBoundingClientRect();
      for (let fy = 0.95; fy > 0.05; fy -= 0.05) for (let fx = 0.95; fx > 0.05; fx -= 0.05) {
        const x = r.x + r.width * fx, y = r.y + r.height * fy;
        if (document.elementFromPoint(x, y) === pane) return [x, y];
      }
      return null;
    }""")
    assert point, "no free point on the canvas"
    page.mouse.click(*point)
