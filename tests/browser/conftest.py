"""Fixtures for the browser tests: a real JupyterLab server, a real Notebook 7 server (each
started once per session, when a test first asks for it) and a headless Chromium.

Everything runs on loopback in temporary folders: the server's runtime, config, data, settings
and workspaces folders, IPython's folder and the pipelines' state folder are all fresh, and the
notebooks are served from a temporary copy of ``notebooks/``. The browser may only talk to that
server (every other request is aborted).

The tests are skipped, with the reason, where JupyterLab, the ``playwright`` package or a
Chromium binary is missing. Never run ``playwright install`` for them: they use the system's
Chromium (``/usr/bin/chromium`` on Debian, or ``$JUPYTER_PIPELINES_CHROMIUM``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
SERVER_START_TIMEOUT = 90  # seconds; a cold start on a busy 2-core machine takes ~5-10 s


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "browser: drives a real JupyterLab in headless Chromium (slow; needs jupyterlab, "
                   "playwright and a Chromium binary)")


def chromium_path() -> str | None:
    for candidate in (os.environ.get("JUPYTER_PIPELINES_CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


# -- the server ----------------------------------------------------------------------------------

class LabServer:
    def __init__(self, process: subprocess.Popen, base_url: str, token: str, root: Path, log: Path):
        self.process, self.base_url, self.token, self.root, self.log = process, base_url, token, root, log

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}{path.lstrip('/')}{sep}token={self.token}"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _get(url: str, timeout: float = 5.0) -> int:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status


def _start_server(tmp: Path, front_end: str = "jupyterlab") -> LabServer:
    """A ``jupyterlab`` or (Notebook 7) ``notebook`` server; both are Jupyter Server apps that
    take the same options, JupyterLab also its news and update-check switches."""
    dirs = {name: tmp / name for name in ("runtime", "config", "data", "settings", "workspaces",
                                           "ipython", "pipelines", "root")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(NOTEBOOKS, dirs["root"], dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", ".jupyter_pipelines",
                                                  "abalone-synthetic.csv"))
    # Before the first start, or a "receive Jupyter news?" notification covers the page.
    notification = (dirs["settings"] / "@jupyterlab" / "apputils-extension"
                    / "notification.jupyterlab-settings")
    notification.parent.mkdir(parents=True, exist_ok=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))

    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
        "IPYTHONDIR": str(dirs["ipython"]),
        "JUPYTER_PIPELINES_HOME": str(dirs["pipelines"]),
        "PYTHONUNBUFFERED": "1",
    }
    token = secrets.token_hex(24)
    cmd = [
        sys.executable, "-m", front_end, "--no-browser",
        "--ServerApp.ip=127.0.0.1", "--ServerApp.port=0", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={dirs['root']}",
    ]
    # `window.jupyterapp` in both: the tests wait until the page's kernel connection is ready
    # (Notebook 7 has no status bar to read it from) and save a notebook through its context
    if front_end == "jupyterlab":
        cmd += ["--LabApp.news_url=None", "--LabApp.expose_app_in_browser=True",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    else:
        cmd += ["--JupyterNotebookApp.expose_app_in_browser=True"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = tmp / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, cwd=dirs["root"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    server = LabServer(process, "", token, dirs["root"], log)

    deadline = time.monotonic() + SERVER_START_TIMEOUT
    info_file = dirs["runtime"] / f"jpserver-{process.pid}.json"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{front_end} exited with {process.returncode}:\n{server.log_tail()}")
        if not server.base_url and info_file.exists():
            try:
                info = json.loads(info_file.read_text())
            except ValueError:  # being written
                info = {}
            if info.get("port"):
                server.base_url = f"http://127.0.0.1:{info['port']}{info.get('base_url', '/')}"
        if server.base_url:
            try:
                if _get(server.url("api/status")) == 200:
                    return server
            except (urllib.error.URLError, OSError):
                pass
        time.sleep(0.2)  # polling the server's start, not a wait in a test
    _stop_server(server)
    raise RuntimeError(f"{front_end} did not answer within {SERVER_START_TIMEOUT}s:\n{server.log_tail()}")


def _stop_server(server: LabServer) -> None:
    process = server.process
    if process.poll() is None and server.base_url:
        try:
            request = urllib.request.Request(server.url("api/shutdown"), method="POST", data=b"")
            urllib.request.urlopen(request, timeout=10).close()
        except (urllib.error.URLError, OSError):
            pass
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    # Whatever is left of the group (kernels included).
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        try:
            process.wait(timeout=10)
            break
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 with a random token, serving a copy of ``notebooks/``."""
    pytest.importorskip("jupyterlab", reason="the browser tests need JupyterLab")
    pytest.importorskip("anywidget", reason="the browser tests need anywidget")
    server = _start_server(tmp_path_factory.mktemp("jupyterlab"))
    try:
        yield server
    finally:
        _stop_server(server)


@pytest.fixture(scope="session")
def notebook_server(tmp_path_factory):
    """A Notebook 7 server (``jupyter notebook``), set up like `lab_server`."""
    pytest.importorskip("notebook", reason="the Notebook 7 browser tests need `notebook>=7`")
    pytest.importorskip("anywidget", reason="the browser tests need anywidget")
    server = _start_server(tmp_path_factory.mktemp("notebook7"), front_end="notebook")
    try:
        yield server
    finally:
        _stop_server(server)


# -- the browser ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def chromium():
    """Headless system Chromium through Playwright's sync API (never a downloaded browser)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need `playwright`")
    executable = chromium_path()
    if executable is None:
        pytest.skip("the browser tests need Chromium (/usr/bin/chromium; apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, chromium_sandbox=False,
                                     args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory) -> Path:
    """Where the screenshots go: pytest's temporary folder (``screenshots/`` under ``--basetemp``,
    by default ``/tmp/pytest-of-$USER/pytest-N/``, per xdist worker), never the checkout."""
    return tmp_path_factory.mktemp("screenshots", numbered=False)


def new_lab_page(chromium, server: LabServer, init_scripts=()):
    """A page in a fresh context that can reach only ``server`` (plus data: and blob: URLs)."""
    context = chromium.new_context(viewport={"width": 1440, "height": 1600}, service_workers="block")

    def only_loopback(route):
        url = route.request.url
        if url.startswith((server.base_url, "data:", "blob:")):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_loopback)
    for script in init_scripts:
        context.add_init_script(script)
    return context, context.new_page()


def watch_errors(page) -> list[str]:
    """The page's uncaught JavaScript errors, collected as they happen (tests assert none)."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


# -- page helpers both browser test modules use -----------------------------------------------------

def step_node(widget, name: str):
    """A step's node in the widget's SVG."""
    return widget.locator(f'g[data-step="{name}"]')


def screenshot(page, locator, path, timeout: int = 15_000) -> None:
    """An element screenshot once the element has stopped moving.

    JupyterLab renders off-screen cells lazily (``content-visibility``), so scrolling a cell into
    view can move it again a frame later; a screenshot taken before that is offset and cropped.
    """
    locator.scroll_into_view_if_needed()
    wait_still(page, locator, timeout)
    locator.screenshot(path=path, animations="disabled")


def wait_still(page, locator, timeout: int = 15_000) -> None:
    """Wait until the element has kept its place and size for 3 animation frames."""
    page.wait_for_function(
        """el => {
          const r = el.getBoundingClientRect(), key = [r.x, r.y, r.width, r.height].join();
          el.__stableFrames = el.__lastRect === key ? (el.__stableFrames || 0) + 1 : 0;
          el.__lastRect = key;
          return el.__stableFrames >= 3;
        }""", arg=locator.element_handle(), polling="raf", timeout=timeout)


def one_live_dag(cell, timeout: int = 15_000):
    """The cell's widget once it rendered, after checking that its output area shows no other
    DAG: the static picture saved beside it (for renderers without widgets) is there, hidden."""
    from playwright.sync_api import expect

    output = cell.locator(".jp-OutputArea")
    widget = output.locator(".jp-pipeline")
    expect(widget).to_have_count(1, timeout=timeout)
    expect(widget.locator("svg.jp-dag g[data-step]").first).to_be_visible(timeout=timeout)
    picture = output.locator('.jp-pipeline-static img[src^="data:image/svg+xml"]')
    expect(picture).to_have_count(1)
    expect(output.locator(".jp-pipeline-static")).to_be_hidden()
    expect(output.locator('svg.jp-dag:visible, img[src^="data:image/svg+xml"]:visible')).to_have_count(1)
    return widget


def outputs_text(page) -> str:
    """The notebook's outputs as text, for failure messages."""
    return page.locator(".jp-Notebook").evaluate(
        "nb => [...nb.querySelectorAll('.jp-CodeCell')].map((c, i) => "
        "`[${i}] ${c.querySelector('.jp-InputPrompt')?.textContent} ` + "
        "(c.querySelector('.jp-OutputArea')?.innerText || '').slice(0, 600)).join('\\n')")


def close_details(widget, step: str, timeout: int = 15_000) -> None:
    """Close the details panel; the selection clears (a round trip through the kernel)."""
    from playwright.sync_api import expect

    widget.locator("[data-details-for] .jp-pipeline-close").click()
    expect(widget.locator("[data-details-for]")).to_have_count(0, timeout=timeout)
    expect(step_node(widget, step)).not_to_have_class(re.compile(r"\bjp-selected\b"))


def open_idle(page, server: LabServer, notebook: str, cells: int, timeout: int = 60_000) -> None:
    """Open ``notebook`` in JupyterLab and wait until its kernel is Idle (a Run All sent before
    is dropped) and its ``cells`` code cells are there."""
    from playwright.sync_api import expect

    page.goto(server.url(f"lab/tree/{notebook}?reset"), timeout=timeout)
    expect(page.locator("#jp-main-statusbar")).to_contain_text("| Idle", timeout=timeout)
    expect(page.locator(".jp-Notebook .jp-CodeCell")).to_have_count(cells)


def open_details(widget, step: str, timeout: int = 15_000):
    """Click ``step``'s node: its details panel opens, headed by its name and a Succeeded badge."""
    from playwright.sync_api import expect

    details = widget.locator(f'[data-details-for="{step}"]')
    expect(details).to_have_count(0)
    step_node(widget, step).click()
    expect(details).to_be_visible(timeout=timeout)
    expect(details.locator(".jp-pipeline-details-head")).to_contain_text(step)
    expect(details.locator(".jp-pipeline-details-head .jp-pipeline-badge")).to_have_text("Succeeded")
    return details


RUN_TIMEOUT = 120_000  # ms: Run All of a tutorial (about 10-30 s on a busy 2-core machine)


def run_all_afresh(page, server: LabServer, errors: list, failed_shot: Path) -> None:
    """Clear the saved outputs (so what a test sees can only come from this run), then Run All
    and wait until the last cell has its number: Run All stops at the first error, so it gets
    one only if every cell passed. JupyterLab 4 and Notebook 7 share these menus."""
    from playwright.sync_api import expect

    last_prompt = page.locator(".jp-Notebook .jp-CodeCell").last.locator(".jp-InputPrompt")
    page.get_by_role("menuitem", name="Edit", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Clear Outputs of All Cells")).click()
    expect(last_prompt).to_have_text(re.compile(r"^\s*\[ \]:\s*$"))
    expect(page.locator(".jp-Notebook .jp-OutputArea-output")).to_have_count(0)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
    try:
        expect(last_prompt).to_have_text(re.compile(r"^\s*\[\d+\]:\s*$"), timeout=RUN_TIMEOUT)
    except AssertionError as exc:
        page.screenshot(path=failed_shot, full_page=True)
        raise AssertionError(f"Run All did not finish:\n{outputs_text(page)}\npage errors: "
                             f"{errors}\nserver log:\n{server.log_tail()}") from exc
