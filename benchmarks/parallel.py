"""Every core of the machine (issue 10 §2): a mixed CPU workload, serial against parallel.

The pipeline: one small source step, then 4 numpy-bound steps (sorting arrays: one core each)
and 4 pure-Python steps (integer loops, which hold the GIL), each a fixed amount of work
calibrated to about 0.5 s in one thread, all reading the source. Every figure is a default run
(history, store and cache on, ``cache=False`` so every step runs) in a fresh state folder,
timed with ``time.perf_counter`` around ``Pipeline.start``; pools are warm (one untimed run
first), as they are in a kernel session. The cluster also runs the workload itself once,
untimed: Dask places and rebalances tasks by the durations it learned for their names, as it
has in a session that re-runs its pipeline; the tiny warm-up alone would teach it durations a
thousand times too short, and its next runs would leave a worker idle while the other still
has a queue (a task timeline showed 2.5 s against 2.0 s). The baseline is the in-kernel executor (serial) in
the same run, interleaved. Targets: ``processes`` >= 1.85x the serial run on 2 cores; ``dask``
(a LocalCluster of 2 single-threaded worker processes, the outputs staying on the workers,
which write them to the store) >= 1.8x. For reference, the same 8 functions on a bare warm
process pool, without a pipeline: the ceiling this machine allows. The dask row needs
``pip install 'jupyter_pipelines[bench]'``; without it, it is skipped.

Run from the repository root: ``python benchmarks/parallel.py [--quick]``.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

if importlib.util.find_spec("jupyter_pipelines") is None:  # a plain clone, not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import common  # benchmarks/common.py: the shared entry point

from jupyter_pipelines import Pipeline
from jupyter_pipelines.run.executors import _call_pickled
from jupyter_pipelines.source import Context

TARGETS = {"processes:2": 1.85, "dask": 1.8}
HELPERS = """
import numpy as np

def numpy_work(rounds, seed):
    rng = np.random.default_rng(seed)
    return sum(float(np.sort(rng.random(200_000))[100_000]) for _ in range(rounds))

def python_work(rounds):
    total = 0
    for _ in range(rounds):
        for i in range(20_000):
            total += i * i % 7
    return total
"""


def calibrate(seconds: float) -> tuple[int, int]:
    """Rounds of each kind of work that take ``seconds`` here, in one thread: a fixed amount of
    work, so that a run is only faster if the work really ran in parallel."""
    namespace: dict = {}
    exec(HELPERS, namespace)
    rounds = []
    for work, args in ((namespace["numpy_work"], (0,)), (namespace["python_work"], ())):
        start = time.perf_counter()
        work(20, *args)
        rounds.append(max(1, round(20 * seconds / (time.perf_counter() - start))))
    return rounds[0], rounds[1]


def workload(home: str, rounds: tuple[int, int]) -> Pipeline:
    p = Pipeline("parallel", home=home)
    p.context = Context.from_cells([HELPERS])
    p.add_step("Source", f"numpy_rounds, python_rounds = {rounds[0]}, {rounds[1]}")
    for i in range(4):
        p.add_step(f"Numpy{i}", f"sorted{i} = numpy_work(numpy_rounds, {i})")
        p.add_step(f"Python{i}", f"summed{i} = python_work(python_rounds)")
    return p


def dask_cluster():
    """A warm LocalCluster of 2 single-threaded worker processes (None: dask not installed)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return None
    from jupyter_pipelines.run.cluster import DaskExecutor, local

    return DaskExecutor(*local(2, dashboard=False))


def timed(executor, rounds: tuple[int, int]) -> float:
    home = tempfile.mkdtemp(prefix="jp-bench-parallel-")
    try:
        pipeline = workload(home, rounds)
        gc.collect()
        start = time.perf_counter()
        execution = pipeline.start(executor=executor, display=False, cache=False)
        took = time.perf_counter() - start
    finally:
        common.remove_state(home)
    if execution.status != "Succeeded":
        raise RuntimeError(f"the {executor} run did not succeed:\n{execution!r}")
    return took


class RawPool:
    """The hardware's ceiling: the same 8 functions on a warm 2-process pool, no pipeline."""

    def __init__(self, rounds: tuple[int, int]):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        import cloudpickle

        namespace: dict = {}
        exec(HELPERS, namespace)
        self.tasks = [cloudpickle.dumps((namespace["numpy_work"], (rounds[0], i), {})) for i in range(4)]
        self.tasks += [cloudpickle.dumps((namespace["python_work"], (rounds[1],), {}))] * 4
        method = os.environ.get("JUPYTER_PIPELINES_START_METHOD", "forkserver")
        self.pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(method))
        list(self.pool.map(_call_pickled, self.tasks[:2]))  # warm

    def timed(self) -> float:
        start = time.perf_counter()
        list(self.pool.map(_call_pickled, self.tasks))
        return time.perf_counter() - start


def report(repeat: int, seconds: float = 0.5) -> None:
    cluster = dask_cluster()
    executors = {"in-kernel": "in-kernel", "threads:2": "threads:2", "processes:2": "processes:2"}
    if cluster is not None:
        executors["dask"] = cluster
    specs = tuple(executors)
    rounds = calibrate(seconds)
    for spec in specs:  # warm-up: pools started, imports done in the workers
        timed(executors[spec], (1, 1))
    if cluster is not None:  # and Dask taught the steps' durations (see the module's note)
        timed(cluster, rounds)
    raw = RawPool(rounds)
    samples: dict[str, list[float]] = {spec: [] for spec in (*specs, "raw")}
    for _ in range(repeat):
        for spec in specs:
            samples[spec].append(timed(executors[spec], rounds))
        samples["raw"].append(raw.timed())
    raw.pool.shutdown()
    if cluster is not None:
        cluster.shutdown()
    serial = min(samples["in-kernel"])
    method = os.environ.get("JUPYTER_PIPELINES_START_METHOD", "forkserver")
    print(f"4 numpy-bound + 4 pure-Python steps of {seconds} s on {os.cpu_count()} cores "
          f"(best of {repeat}; start method {method})")
    print(f"  {'in-kernel (serial)':<22} {serial:6.2f} s")
    for spec in specs[1:]:
        best = min(samples[spec])
        speedup = serial / best
        target = TARGETS.get(spec)
        note = (f"target >= {target}x  {'PASS' if speedup >= target else 'MISS'}"
                if target else "the GIL serialises the pure-Python steps")
        print(f"  {spec:<22} {best:6.2f} s   {speedup:4.2f}x the serial run   ({note})")
    ceiling = serial / min(samples["raw"])
    print(f"  {'a bare process pool':<22} {min(samples['raw']):6.2f} s   {ceiling:4.2f}x the serial run   "
          "(the same 8 functions, no pipeline: this machine's ceiling)")
    if cluster is None:
        print("  dask: skipped (pip install 'jupyter_pipelines[bench]' to measure a LocalCluster)")


if __name__ == "__main__":
    common.main(__doc__, report, repeat=3, quick=1)
