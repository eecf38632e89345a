"""A pytest plugin that tells the kernels nbval starts which notebook they run.

nbval starts each notebook's kernel in the notebook's folder but, unlike JupyterLab, does not
set ``JPY_SESSION_NAME``; without it a kernel cannot name its pipeline after the notebook
(see `jupyter_pipelines.locate`). While pytest sets up a notebook's cells (which is when nbval
starts the kernel) this plugin sets ``JPY_SESSION_NAME`` to the notebook's path, so a notebook
tested with nbval is the same pipeline, with the same state folder, as in JupyterLab and on the
command line. Enable it with ``pytest -p jupyter_pipelines.pytest_plugin --nbval ...`` (or
``pytest_plugins = ["jupyter_pipelines.pytest_plugin"]`` in a root conftest.py, as this
project's own does); it acts only on notebook items.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_setup(item):
    path = Path(str(getattr(item, "path", None) or item.fspath))
    if path.suffix.lower() != ".ipynb":
        yield
        return
    before = os.environ.get("JPY_SESSION_NAME")
    os.environ["JPY_SESSION_NAME"] = str(path.resolve())
    try:
        yield
    finally:  # only the kernel started now inherits it
        if before is None:
            os.environ.pop("JPY_SESSION_NAME", None)
        else:
            os.environ["JPY_SESSION_NAME"] = before
