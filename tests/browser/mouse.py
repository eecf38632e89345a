"""The mouse as a user moves it on the editor's canvas (Playwright), for the browser tests and
``benchmarks/editor.py``."""

from __future__ import annotations


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
