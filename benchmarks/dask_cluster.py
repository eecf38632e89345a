"""A Dask cluster (issue 10 §3): what running on it costs, and what stays out of the kernel.

Every figure is on a ``LocalCluster`` of 2 single-threaded worker processes, started once and
kept warm (as ``--executor dask`` keeps it for a kernel session), against a baseline measured
in the same run on the same cluster:

(a) Per-step overhead on a chain of N no-op steps (s0: ``x0 = 0``; s{i}: ``x{i} = x{i-1}``),
    against ``client.get`` on the same chain as a plain Dask graph (one task a step, each
    calling a no-op function of its input): the least Dask itself costs. Two pipelines:
    ``Pipeline(persist=False)`` (the runner alone) and the default path (history, artifact
    store written by the workers, cache keys) in a fresh state folder (a cold run: no stored
    result could stand in for any step, so steps are chained on the cluster as they are
    submitted). Target: the default path <= 1.2x ``client.get``.
(b) A 1 GB intermediate (a numpy array made by one step, summed by the next), default path, on
    a cluster whose scheduler and 2 workers are processes of their own (``dask scheduler``,
    ``dask worker``; a LocalCluster's scheduler would run in the kernel's process and its
    traffic would be counted): the bytes the kernel process read while the run went (``rchar``
    of /proc/self/io: every socket and file read), against the size of the intermediate.
    Target: < 1 MB.

The 8-step CPU workload on the same cluster is in ``benchmarks/parallel.py``.
Run from the repository root: ``python benchmarks/dask_cluster.py [--quick]``.
"""

from __future__ import annotations

import gc
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

if importlib.util.find_spec("jupyter_pipelines") is None:  # a plain clone, not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import common  # benchmarks/common.py: the shared entry point

from jupyter_pipelines import Pipeline

CHAIN_TARGET = 1.2
MOVED_TARGET = 1_000_000


def cluster():
    """A warm LocalCluster of 2 single-threaded worker processes, and our executor on it."""
    from jupyter_pipelines.run.cluster import DaskExecutor, local

    return DaskExecutor(*local(2, dashboard=False))


def noop(x):
    return x


def chain(n: int, home: str | None) -> Pipeline:
    p = Pipeline("chain", home=home, persist=home is not None)
    p.add_step("s0", "x0 = 0")
    for i in range(1, n):
        p.add_step(f"s{i}", f"x{i} = x{i - 1}")
    return p


def timed_get(client, n: int) -> float:
    graph = {"s0": 0, **{f"s{i}": (noop, f"s{i - 1}") for i in range(1, n)}}
    start = time.perf_counter()
    client.get(graph, f"s{n - 1}")
    return time.perf_counter() - start


def timed_run(executor, n: int, persist: bool) -> float:
    home = tempfile.mkdtemp(prefix="jp-bench-dask-") if persist else None
    try:
        p = chain(n, home)
        p.graph()  # built before the clock starts: (a) is about running
        gc.collect()
        start = time.perf_counter()
        ex = p.start(executor=executor, display=False)
        took = time.perf_counter() - start
        if ex.status != "Succeeded":
            raise RuntimeError(f"the chain did not succeed: {ex.failure_reason}")
        return took
    finally:
        if home:
            common.remove_state(home)


def report_chain(repeat: int, n: int = 1000) -> None:
    executor = cluster()
    try:
        timed_run(executor, 20, True)  # warm: imports in the workers
        samples: dict[str, list[float]] = {"get": [], "runner": [], "default": []}
        for _ in range(repeat):
            samples["get"].append(timed_get(executor.client, n))
            samples["runner"].append(timed_run(executor, n, False))
            samples["default"].append(timed_run(executor, n, True))
    finally:
        executor.shutdown()
    base = min(samples["get"])
    print(f"(a) {n}-step no-op chain on a LocalCluster of 2 single-threaded workers (best of {repeat})")
    print(f"  {'client.get (plain Dask)':<34} {base / n * 1e6:7.0f} µs/step")
    for key, label in (("runner", "runner (persist=False)"), ("default", "default (history + store)")):
        best = min(samples[key])
        ratio = best / base
        note = f"target <= {CHAIN_TARGET}x  {'PASS' if ratio <= CHAIN_TARGET else 'MISS'}" \
            if key == "default" else ""
        print(f"  {label:<34} {best / n * 1e6:7.0f} µs/step   {ratio:4.2f}x client.get   {note}")


def bytes_read() -> int:
    with open("/proc/self/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("rchar"))


def separate_cluster():
    """A scheduler and 2 single-threaded workers, each a process of its own."""
    import socket
    import subprocess

    from distributed import Client

    from jupyter_pipelines.run.cluster import DaskExecutor

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host",
                                   "127.0.0.1", "--port", str(port), "--no-dashboard"], **quiet)]
    processes += [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                                    "--nthreads", "1", "--no-dashboard"], **quiet) for _ in range(2)]
    client = Client(address, timeout=60, set_as_default=False)
    client.wait_for_workers(2, timeout=60)
    return DaskExecutor(client), processes


def two_steps(home: str, count: int) -> Pipeline:
    p = Pipeline("big", home=home)
    p.add_step("Big", f"import numpy as np\nbig = np.ones({count})")
    p.add_step("Sum", "total = float(big.sum())")
    return p


def report_moved(repeat: int, gigabytes: float = 1.0) -> None:
    executor, processes = separate_cluster()
    home = tempfile.mkdtemp(prefix="jp-bench-dask-")
    try:
        two_steps(home, 10).start(executor=executor, display=False)  # imports done, files open
        p = two_steps(home, int(gigabytes * 1e9 / 8))
        before = bytes_read()
        ex = p.start(executor=executor, display=False)
        moved = bytes_read() - before
        if ex.status != "Succeeded":
            raise RuntimeError(f"the run did not succeed: {ex.failure_reason}")
        size = ex.steps["Big"].refs["big"].size
    finally:
        executor.shutdown()
        for process in processes:
            process.terminate()
            process.wait(30)
        common.remove_state(home)
    verdict = "PASS" if moved < MOVED_TARGET else "MISS"
    print(f"(b) a {size / 1e9:.2f} GB intermediate between two steps (default path): the kernel read "
          f"{moved / 1e3:,.0f} kB ({moved / size:.2e} of it)   target < 1 MB  {verdict}")


if __name__ == "__main__":
    common.main(__doc__, report_chain, report_moved, repeat=3, quick=1)
