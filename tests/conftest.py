"""Shared fixtures: every behaviour is tested through both doors, the magics in a real IPython
shell and the plain Python API, by one `door` fixture parametrised over the two."""

from __future__ import annotations

import pytest
from hypothesis import settings

import jupyter_pipelines
from jupyter_pipelines import Pipeline, current

# No example database: hypothesis would keep one in `.hypothesis/` in the working directory (its
# other caches go to the session's temporary folder, see the root conftest.py).
settings.register_profile("jupyter_pipelines", database=None)
settings.load_profile("jupyter_pipelines")


@pytest.fixture(autouse=True)
def _state_home(tmp_path, monkeypatch):
    """Each test gets its own state folder (registry, data)."""
    monkeypatch.setenv("JUPYTER_PIPELINES_HOME", str(tmp_path / "state"))


@pytest.fixture
def ip():
    """A real IPython shell with the extension loaded and a fresh pipeline."""
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "jupyter_pipelines")
    session = jupyter_pipelines._magics.session
    session.reset()
    current().executions.clear()
    yield shell
    session.reset()


def run_cell(ip, source: str):
    """Run a cell as a notebook does; raise what it raised."""
    result = ip.run_cell(source)
    if result.error_in_exec is not None:
        raise result.error_in_exec
    if result.error_before_exec is not None:
        raise result.error_before_exec
    return result.result


def in_processes(target, *args, count: int = 2) -> list:
    """What each of ``count`` spawned processes running ``target(*args, barrier, results)``
    put in ``results``; they start their work together when all wait at ``barrier``."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(count), ctx.Queue()
    workers = [ctx.Process(target=target, args=(*args, barrier, results)) for _ in range(count)]
    for w in workers:
        w.start()
    try:
        return [results.get(timeout=120) for _ in workers]
    finally:
        for w in workers:
            w.join(timeout=60)


def _flags(options: dict) -> str:
    parts = []
    for key, value in options.items():
        flag = {"if_steps": "--if", "else_steps": "--else"}.get(key, "--" + key.replace("_", "-"))
        values = value if isinstance(value, (list, tuple)) else [value]
        parts.append(flag + " " + " ".join(str(v) for v in values))
    return " ".join(parts)


class MagicDoor:
    name = "magic"

    def __init__(self, ip):
        self.ip = ip

    @property
    def pipeline(self) -> Pipeline:
        return current()

    def context(self, source: str) -> None:
        run_cell(self.ip, source)

    def parameters(self, **defaults) -> None:
        run_cell(self.ip, "%%parameters\n" + "\n".join(f"{k} = {v!r}" for k, v in defaults.items()))

    def step(self, name: str, code: str, kind: str = "processing", **options) -> None:
        """Define the step (a %%step cell also runs it; run errors are not definition errors)."""
        from jupyter_pipelines.errors import RunError

        line = f"%%step {name} --kind {kind} {_flags(options)}".rstrip()
        try:
            run_cell(self.ip, line + "\n" + (code or "# no code"))
        except RunError:
            pass

    def run(self, **params):
        line = "_ex = %pipeline run " + " ".join(f"--param {k}={v}" for k, v in params.items())
        run_cell(self.ip, line)
        return self.ip.user_ns["_ex"]


class ApiDoor:
    name = "api"

    def __init__(self, tmp_path):
        from jupyter_pipelines.source import Context

        self.pipeline = Pipeline("test", home=tmp_path / "state")
        self._cells: list[str] = []
        self._Context = Context

    def context(self, source: str) -> None:
        self._cells.append(source)
        self.pipeline.context = self._Context.from_cells(self._cells)

    def parameters(self, **defaults) -> None:
        for k, v in defaults.items():
            self.pipeline.add_parameter(k, v)

    def step(self, name: str, code: str, kind: str = "processing", **options) -> None:
        self.pipeline.add_step(name, code, kind, **options)

    def run(self, **params):
        return self.pipeline.start(params or None)


@pytest.fixture(params=["magic", "api"])
def door(request, tmp_path):
    if request.param == "magic":
        return MagicDoor(request.getfixturevalue("ip"))
    return ApiDoor(tmp_path)
