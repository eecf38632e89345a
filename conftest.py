"""The test session leaves the checkout as it found it.

Set here, at import (before any test, kernel or subprocess starts), so every process of a session
inherits it: pytest, its xdist workers (each imports this file and makes its own folder), the
kernels nbval starts, the CLI subprocesses and the browser tests' JupyterLab:

* ``JUPYTER_PIPELINES_HOME``: a temporary state folder, removed at the end. Each notebook under
  nbval gets a fresh one (history, artifacts, registry and the synthetic data, as on a fresh
  clone); each python test its own (``tests/conftest.py``).
* ``HYPOTHESIS_STORAGE_DIRECTORY``: hypothesis's caches go there too, not to ``.hypothesis/``.
* ``PYTHONDONTWRITEBYTECODE``: no ``__pycache__`` folders in the checkout.

The controller process then fails the session when the checkout gained, changed or lost a file
git does not track (ignored ones included), naming them (``--no-checkout-check`` turns that off,
for a checkout others are editing meanwhile). This file sits at the root so that it applies to
every test path, notebooks included, however pytest is started.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
# nbval's kernels learn their notebook, as JupyterLab's do (imported after the settings below:
# pytest reads this list once this file has run).
pytest_plugins = ["jupyter_pipelines.pytest_plugin"]

os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
sys.dont_write_bytecode = True
# pytest cached this very file's compiled form before running it; nothing else is written now.
for _pyc in (ROOT / "__pycache__").glob("conftest.*.pyc"):
    _pyc.unlink(missing_ok=True)
try:
    (ROOT / "__pycache__").rmdir()
except OSError:  # absent, or holds something of the user's
    pass

STATE = Path(tempfile.mkdtemp(prefix="jupyter-pipelines-tests-"))
os.environ["JUPYTER_PIPELINES_HOME"] = str(STATE / "home")
os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = str(STATE / "hypothesis")
# Removed at the end of the session, and again at exit: hypothesis may still write its constants
# cache from a thread after that (an xdist worker may end without running atexit handlers).
atexit.register(shutil.rmtree, STATE, ignore_errors=True)


def pytest_addoption(parser):
    parser.addoption("--no-checkout-check", action="store_true",
                     help="do not fail the session when the checkout gained or changed files git does "
                          "not track (say, files someone created meanwhile in the same checkout)")


def pytest_unconfigure(config):
    shutil.rmtree(STATE, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """A fresh state folder for each notebook, before nbval starts its kernel (the kernel reads
    the environment when it starts, at the notebook's first cell)."""
    notebook = item.parent
    if item.path.suffix == ".ipynb" and getattr(notebook, "kernel", None) is None:
        home = Path(tempfile.mkdtemp(prefix=f"{item.path.stem}-", dir=STATE))
        os.environ["JUPYTER_PIPELINES_HOME"] = str(home)


# -- the check: nothing new in the checkout ------------------------------------------------------

_BEFORE = pytest.StashKey[dict]()
_LEFT = pytest.StashKey[list]()


def _untracked(root: Path) -> dict[str, tuple[int, int]] | None:
    """Files git does not track, ignored ones included, with their mtime and size; None where
    there is no git or no repository."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "--no-optional-locks", *args], cwd=root, capture_output=True,
                              text=True, check=True, timeout=120).stdout

    try:
        top = Path(git("rev-parse", "--show-toplevel").strip())
        listing = git("status", "--porcelain=v1", "-z", "--ignored", "--untracked-files=all", "--", ".")
    except (OSError, subprocess.SubprocessError):
        return None
    files = {}
    for entry in listing.split("\0"):
        if entry[:3] in ("?? ", "!! "):
            try:
                stat = (top / entry[3:]).lstat()
            except OSError:
                continue
            files[entry[3:] + (" (ignored)" if entry[0] == "!" else "")] = (stat.st_mtime_ns,
                                                                            stat.st_size)
    return files


def _is_controller(config) -> bool:
    return not hasattr(config, "workerinput")  # an xdist worker has it


def pytest_sessionstart(session):
    if _is_controller(session.config) and not session.config.getoption("no_checkout_check"):
        before = _untracked(ROOT)
        if before is not None:
            session.config.stash[_BEFORE] = before


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    before = session.config.stash.get(_BEFORE, None)
    if before is None:
        return
    after = _untracked(ROOT) or {}
    changes = sorted([f"new      {path}" for path in after.keys() - before.keys()]
                     + [f"changed  {path}" for path in after.keys() & before.keys()
                        if after[path] != before[path]]
                     + [f"removed  {path}" for path in before.keys() - after.keys()])
    if not changes:
        return
    lines = ["The tests changed files in the checkout that git does not track; a test writes into "
             "tmp_path or the temporary state folder instead:", *("  " + change for change in changes[:50])]
    if len(changes) > 50:
        lines.append(f"  ... and {len(changes) - 50} more")
    lines.append("(Files someone else changed meanwhile? Then rerun with --no-checkout-check.)")
    session.config.stash[_LEFT] = lines
    if session.config.pluginmanager.get_plugin("terminalreporter") is None:
        print("\n".join(lines), file=sys.stderr)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    lines = config.stash.get(_LEFT, None)
    if lines:
        terminalreporter.section("files left in the checkout", sep="=", red=True, bold=True)
        terminalreporter.line("\n".join(lines))
