"""Dask: steps run on a cluster's workers, and their outputs stay there.

``--executor dask`` starts an embedded ``LocalCluster`` (one single-threaded worker process
per core); ``tcp://host:8786`` or ``dask://host:8786`` connects to a running scheduler. Both
are kept warm for the session, like the pools of `executors`.

What crosses to the kernel is what it shows and records. A step's task (`cluster_worker.run_step`, in
a worker) reads its inputs where they are (the upstream tasks' results on the workers, or the
artifact store), runs the step, writes its outputs to the store itself when the store is one
the workers reach, and returns its whole result, which stays in the worker's memory. The kernel
is told the summary (status, metadata such as a condition's outcome, the outputs' digests
and short previews, what it printed, the worker) through Dask's event stream, not the result:
`StepHandle.finished` resolves with that summary, and the outputs become `RemoteOutput`s that
fetch a value only when asked (``result()``, a `%%step` cell binding it, a kernel-side step).

A step whose upstream steps are still running may be submitted at once, its inputs being the
upstream tasks (the runner decides when: see `remote`), so a chain of steps runs on the cluster
without a round trip to the kernel between steps; the steps submitted together are sent as one
graph (`DaskExecutor.send`).
"""

from __future__ import annotations

import atexit
import os
import socket
import threading
import time
import uuid
from concurrent.futures import Executor, Future
from urllib.parse import urlparse

from ..errors import PipelineError
from ..execution import Remote
from . import cluster_send
from . import cluster_worker as work
from .cluster_worker import TOPIC

SUMMARY_GRACE = 2.0  # seconds a finished task's summary may take to arrive before it is fetched
_CLUSTERS: dict[str, DaskExecutor] = {}
_LOCK = threading.Lock()


def connect(spec: str) -> DaskExecutor:
    """The warm executor ``spec`` names: "dask" (a LocalCluster) or a scheduler's address."""
    with _LOCK:
        executor = _CLUSTERS.get(spec)
        if executor is None or executor.client.status not in ("running", "connecting"):
            executor = _CLUSTERS[spec] = DaskExecutor(*_client(spec))
    return executor


def local(workers: int | None = None, dashboard: bool = True) -> tuple:
    """A LocalCluster of single-threaded worker processes (one per core by default) and its
    client. Dask's statistical profiler is off in its workers: sampling a worker's stack every
    10 ms takes the GIL from pure-Python steps (about 8 % of their time)."""
    import dask
    from distributed import Client, LocalCluster

    settings = {"distributed.worker.profile.enabled": False,
                "distributed.worker.daemon": False}  # a step may start processes of its own
    with dask.config.set(settings):
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                               processes=True,
                               dashboard_address="127.0.0.1:0" if dashboard else None)
    return Client(cluster, set_as_default=False), cluster


def _client(spec: str):
    try:
        from distributed import Client
    except ImportError:
        raise PipelineError(
            f"--executor {spec} needs Dask's distributed scheduler, which is not installed: "
            "pip install 'jupyter_pipelines[dask]' (or dask[distributed])."
        ) from None
    try:
        import dask.task_spec  # (steps are sent as its graphs: Dask 2025.1 on)
    except ImportError:
        import dask

        raise PipelineError(
            f"--executor {spec} needs Dask 2025.1 or later; this environment has Dask "
            f"{dask.__version__}. Upgrade it: pip install -U 'jupyter_pipelines[dask]'."
        ) from None
    if not _CLUSTERS:  # registered after distributed's own hooks, so it runs before them
        atexit.register(_shutdown_clusters)
    if spec == "dask":
        return local()
    address = "tcp://" + spec[len("dask://"):] if spec.startswith("dask://") else spec
    try:
        return Client(address, timeout=10, set_as_default=False), None
    except Exception as exc:
        raise PipelineError(
            f"Cannot reach the Dask scheduler at {address}: {type(exc).__name__}: {exc}. Check "
            "the address (tcp://host:8786, the scheduler's port) and that it is running "
            "(`dask scheduler`), or use --executor dask for a cluster on this machine."
        ) from None


class StepHandle:
    """One step submitted to the cluster: ``started`` resolves with (time, worker) when a
    worker starts it, ``finished`` with its summary `TaskResult` (outputs as `RemoteOutput`s);
    ``full`` is the Dask future of the whole result (a reference to its task until it is sent),
    what steps reading it are given."""

    def __init__(self, executor: DaskExecutor, step: str, full, tasks: list, sources: dict):
        self.step, self.full, self._tasks, self._executor = step, full, tasks, executor
        self.token, self.sources = full.key, sources  # (`_tasks`: futures once sent)
        self.started: Future = Future()
        self.finished: Future = Future()
        self.quiet_since: float | None = None  # when its task was seen done with no summary

    def fail(self, result) -> None:
        """It could not be sent: it ends with ``result`` (a failed `TaskResult`)."""
        _resolve(self.started, None)
        _resolve(self.finished, result)

    def cancel(self) -> None:
        if self in self._executor._unsent:  # not sent: nothing on the cluster
            self._executor._unsent.remove(self)
        else:
            self._executor.client.cancel(self._tasks, force=True)
        for future in (self.started, self.finished):
            future.cancel()


class RemoteOutput(Remote):
    """An output that stays on the worker that computed it. ``fetch()`` brings it over (once)."""

    def __init__(self, executor: DaskExecutor, full, name: str, preview: dict):
        self._executor, self.full, self.name, self.preview = executor, full, name, preview
        self._value, self._fetched = None, False

    def handle(self):
        return ("remote", self.full, self.name)

    def fetch(self):
        if not self._fetched:
            client = self._executor.client
            self._value = client.submit(work.output, self.full, self.name, pure=False).result()
            self._fetched = True
        return self._value

    def __repr__(self) -> str:
        return f"<{self.preview.get('type', 'value')} `{self.name}` on the Dask cluster>"


class DaskExecutor(Executor):
    """A Dask client as an executor. ``submit`` is the plain Executor (the result comes back);
    `submit_step` keeps the outputs on the workers."""

    keeps_data = True
    crosses_processes = True

    def __init__(self, client, cluster=None):
        self.client, self.cluster = client, cluster
        self._waiting: dict[str, StepHandle] = {}  # token -> step on the cluster, not summed up
        self._reach: dict[str, bool] = {}
        self._unsent: list[StepHandle] = []  # submitted, to be sent as one graph (`send`)
        client.subscribe_topic(TOPIC, self._event)

    # -- where things are -----------------------------------------------------------------
    @property
    def address(self) -> str:
        return self.client.scheduler.address

    @property
    def dashboard(self) -> str | None:
        try:
            return self.client.dashboard_link
        except Exception:
            return None

    @property
    def remote(self) -> bool:
        """True when the scheduler is on another machine (then so are, presumably, workers)."""
        host = urlparse(self.address).hostname or ""
        return host not in ("127.0.0.1", "localhost", "::1", "", socket.gethostname()) and not (
            host.startswith("127.") or _is_own_address(host))

    def reaches(self, store) -> bool:
        """Whether the workers can write ``store`` (an `ArtifactStore`, or None: nothing to
        write). A store they cannot reach is an error with a remote cluster; on this machine
        (a ``memory://`` store lives in the kernel alone) outputs then come back to be saved."""
        if store is None:
            return True
        location = store.location
        if location not in self._reach:
            self._reach[location] = self._probe(store)
        return self._reach[location]

    def _probe(self, store) -> bool:
        scheme = urlparse(location := store.location).scheme
        if scheme == "memory":
            if self.remote:
                raise PipelineError(_NOT_SHARED.format(store=location, address=self.address,
                                                       why="a memory:// store lives in this process"))
            return False
        if scheme not in ("", "file") and len(scheme) > 1:  # s3://, gcs://... (not C:\ on Windows)
            return True
        folder = os.path.abspath(location[7:] if scheme == "file" else location)
        marker = os.path.join(folder, f".probe-{uuid.uuid4().hex}")
        os.makedirs(folder, exist_ok=True)
        with open(marker, "w"):
            pass
        try:
            seen = self.client.run(os.path.exists, marker)
        finally:
            os.remove(marker)
        blind = sorted(w for w, ok in seen.items() if not ok)
        if blind:
            raise PipelineError(_NOT_SHARED.format(
                store=folder, address=self.address,
                why=f"it is a folder the workers {', '.join(blind)} cannot see"))
        return True

    # -- running steps --------------------------------------------------------------------
    def submit(self, fn, /, *args, **kwargs) -> Future:
        """Run ``fn`` on a worker and bring its result back (the plain Executor)."""
        return self.client.get_executor(pure=False).submit(fn, *args, **kwargs)

    def share(self, base: dict):
        """The run's base namespace, sent to the cluster once (steps start from a copy)."""
        return self.client.scatter(_Base(base), hash=False, broadcast=True)  # held by every
        # worker: a step that depends on it may run on any (Dask places a task with its data)

    def submit_step(self, step, base, inputs: dict, ctx, store: str | None, parts: int = 1) -> StepHandle:
        """Run ``step`` on a worker: ``inputs`` maps names to ("remote", future, output),
        ("stored", ref) or ("value", value); ``store`` is the store's location the worker
        writes outputs to (None: nothing is stored); ``parts`` > 1 spreads a transform.

        The step is sent with the others submitted until `send`, as one graph
        (`cluster_send`); until then its handle's ``full`` is a reference to its task, which
        steps chained after it read as they would read its future."""
        from dask.task_spec import TaskRef

        token = f"{step.name}-{uuid.uuid4().hex}"
        tasks, sources = cluster_send.tasks_of(step, token, base, inputs, ctx, store, parts)
        handle = self._waiting[token] = StepHandle(self, step.name, TaskRef(token), tasks, sources)
        self._unsent.append(handle)
        return handle

    def send(self) -> dict[str, str]:
        """Send the steps submitted since the last call, as one graph; returns the steps that
        could not be sent (a value the cluster cannot be sent: each is tried alone to tell
        which), by name, with why."""
        handles, self._unsent = self._unsent, []
        try:
            self._sent(handles, {})
            return {}
        except Exception:
            pass
        failed, sent = {}, {}
        for handle in handles:
            try:
                self._sent([handle], sent)
            except Exception as exc:
                failed[handle.step] = cluster_send.unsendable(handle.sources, exc)
                self._waiting.pop(handle.token, None)
        return failed

    def _sent(self, handles: list[StepHandle], sent: dict) -> None:
        """Send ``handles``' tasks; ``sent`` (key -> future) is given the new futures."""
        tasks = [task for handle in handles for task in handle._tasks]
        keys = [key for key, _, _ in tasks]
        sent.update(zip(keys, self.client.get(cluster_send.graph(tasks, sent), keys, sync=False),
                        strict=True))
        for handle in handles:
            handle._tasks = [sent[key] for key, _, _ in handle._tasks]
            handle.full = handle._tasks[-1]

    def _event(self, event) -> None:
        """A worker's message (in the client's event loop): a step started or finished."""
        _, message = event
        handle = self._waiting.get(message["token"])
        if handle is None:
            return
        if message["what"] == "started":
            _resolve(handle.started, (message["time"], message["worker"]))
        else:
            import cloudpickle

            self._waiting.pop(message["token"], None)
            _resolve(handle.started, None)  # (if the worker never said it started: NotRun)
            _resolve(handle.finished, self._summary(handle, cloudpickle.loads(message["summary"])))

    def poll(self) -> None:
        """Settle the steps whose task ended with no summary (the run loop calls this while it
        waits): a task that failed in Dask itself (a worker lost, an argument that could not
        be sent or read) sends none; nor, were it ever lost, would a finished one."""
        now = time.monotonic()
        for token, handle in list(self._waiting.items()):
            status = handle.full.status
            if status == "pending" or handle.finished.done():
                continue
            if status == "finished":
                handle.quiet_since = handle.quiet_since or now
                if now - handle.quiet_since < SUMMARY_GRACE:
                    continue
                summary = self.client.submit(work.summary_of, handle.full, pure=False).result()
                self._waiting.pop(token, None)
                _resolve(handle.started, None)
                _resolve(handle.finished, self._summary(handle, summary))
                continue
            self._waiting.pop(token, None)
            try:
                error = handle.full.exception(timeout=1)
            except BaseException as exc:  # cancelled, or lost with its worker
                error = exc
            _resolve(handle.started, None)
            if not handle.finished.done():
                handle.finished.set_exception(error if isinstance(error, BaseException)
                                              else RuntimeError(f"the task ended {status}"))

    def _summary(self, handle: StepHandle, result):
        result.outputs = {name: RemoteOutput(self, handle.full, name, preview)
                          for name, preview in result.outputs.items()}
        return result

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        try:
            if self.cluster is not None:  # its workers too: no "lost tasks", no closed streams
                self.client.run(work.quiet)
            work.quiet()
            self.client.close()
            if self.cluster is not None:
                self.cluster.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"DaskExecutor({self.address!r}, dashboard={self.dashboard!r})"


_NOT_SHARED = (
    "The artifact store {store} cannot be used with the Dask cluster at {address}: {why}, and "
    "the workers write the steps' outputs to the store themselves. Use a store every worker "
    "reaches (Pipeline(store='s3://bucket/prefix') or another fsspec URL, or a folder shared "
    "by every machine, e.g. on NFS), or run with --executor dask (a cluster on this machine).")


def _is_own_address(host: str) -> bool:
    try:
        return host in {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        return False


def _resolve(future: Future, value) -> None:
    if not future.done():
        try:
            future.set_result(value)
        except Exception:  # resolved meanwhile by the other path
            pass


class _Base:
    """The base namespace as one object, so Dask sends it as one piece (not key by key)."""

    def __init__(self, ns: dict):
        self.ns = ns


def _shutdown_clusters() -> None:
    for executor in _CLUSTERS.values():
        executor.shutdown()
    _CLUSTERS.clear()
