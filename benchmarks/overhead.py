"""Per-step overhead of the jupyter_pipelines runner, and the cost of input protection.

What is measured
----------------
* Runner: wall time of ``Pipeline.start()`` with the default InKernelExecutor -- graph build,
  scheduling, per-step namespaces, input protection, output capture and bookkeeping: what a
  user waits for (the steps' fingerprints, which only a later cell run reads, are worked out
  when it does). Building the pipeline (``add_step``) is not timed.
  The pipelines are ``Pipeline(..., persist=False)``: no execution history, no artifact store,
  no cache lookups, so this is the core runner alone. What history and caching add per step
  (and the fully cached re-run) is measured by ``benchmarks/store.py``.
* Plain loop, the baseline, measured in the same run: ``exec(step.compiled, ns)`` for every
  step in topological order on one shared dict -- the loop a user would write by hand. For
  scale, a loop calling a trivial Python function once per step is printed as well.
* Shapes, each with N = 10, 100, 1000 no-op steps (µs/step = total time / steps run):
    chain    s0: ``x0 = 0``; s{i}: ``x{i} = x{i-1}``                               (N steps)
    fan-out  src: ``x = 0``; f{i}: ``y{i} = x``; sink: ``done = 1`` reading all y{i}  (N + 2)
* Against Dask: the chain of N = 100 and 1000 steps, and ``dask.get`` (Dask's synchronous
  scheduler) on the same chain as a task graph (``{"x0": (noop, 0), "x1": (noop, "x0"), ...}``,
  each task a no-op function of its input), measured in the same run:
    build  ``Pipeline(..., persist=False)``, its N ``add_step`` calls and the graph ``start()``
           builds (``pipeline.graph()``): what a user, ``from_definition`` or a headless notebook
           load does. Timed as a first build: the code-analysis cache is cleared first, as in a
           new process. (Built again in the same process, e.g. a kernel re-running its cells,
           the analysis is cached: printed as "warm build".)
    run    ``start()`` of that built pipeline;   build+run  the two together.
* Protection: ``protect(value)`` against passing the value as is, for a DataFrame of
  1,000,000 rows x 10 float columns, a numpy array of the same size and a 10,000-entry dict.

Targets (PASS/MISS is printed; a miss never makes the script fail, machines are noisy):
* linearity: runner time at N=1000 / runner time at N=100 <= 12x, for each shape;
* overhead per step (runner - plain loop) at N=1000 <= 25 µs;
* against ``dask.get`` on the 1000-step chain: run <= 0.5x, build+run <= 2x; and linear:
  run(1000)/run(100) and (build+run)(1000)/(build+run)(100) <= 11x.
  Without Dask installed these are skipped, saying so (``pip install dask``).

Every figure is the minimum over 5 repeats (``--quick``: 2), timed with ``time.perf_counter``.
Run from the repository root: ``python benchmarks/overhead.py [--quick]``.
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

from jupyter_pipelines.pipeline import Pipeline
from jupyter_pipelines.run.protect import protect
from jupyter_pipelines.source import clear_analysis_cache

SIZES = (10, 100, 1000)
LINEARITY_TARGET = 12.0  # runner(1000) / runner(100)
OVERHEAD_TARGET = 25.0  # µs per step at N=1000
DASK_SIZES = (100, 1000)
DASK_RUN_TARGET = 0.5  # run / dask.get at N=1000
DASK_TOTAL_TARGET = 2.0  # (build + run) / dask.get at N=1000
DASK_LINEARITY_TARGET = 11.0  # cost(1000) / cost(100)


def chain(n: int, home: str) -> Pipeline:
    p = Pipeline(f"chain{n}", home=home, persist=False)
    p.add_step("s0", "x0 = 0")
    for i in range(1, n):
        p.add_step(f"s{i}", f"x{i} = x{i - 1}")
    return p


def fan_out(n: int, home: str) -> Pipeline:
    p = Pipeline(f"fan{n}", home=home, persist=False)
    p.add_step("src", "x = 0")
    for i in range(n):
        p.add_step(f"f{i}", f"y{i} = x")
    p.add_step("sink", "done = 1", inputs=[f"y{i}" for i in range(n)])
    return p


def best_of(fn, repeat: int, number: int = 1) -> float:
    """Minimum over ``repeat`` samples of the seconds one call of ``fn`` takes (each sample
    runs it ``number`` times). Earlier garbage is collected first, then one untimed call
    warms the caches a full collection evicts (timing right after it adds ~60 µs)."""
    gc.collect()
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def _noop() -> None:
    pass


def measure_shape(make, n: int, repeat: int, home: str) -> dict:
    pipeline = make(n, home)
    graph = pipeline.graph()
    codes = [graph.steps[name].compiled for name in graph.order]
    steps = len(codes)

    def plain_loop() -> None:
        ns: dict = {}
        for code in codes:
            exec(code, ns)

    fns = [_noop] * steps

    def trivial_calls() -> None:
        for fn in fns:
            fn()

    def runner() -> float:
        """One first run of a freshly defined pipeline (nothing cached); its seconds."""
        fresh = make(n, home)
        start = time.perf_counter()
        execution = fresh.start()
        took = time.perf_counter() - start
        if execution.status != "Succeeded":
            raise RuntimeError(f"the benchmark pipeline did not succeed:\n{execution!r}")
        return took

    inner = max(1, 20_000 // steps)  # baselines are fast: time many loops per sample
    plain = best_of(plain_loop, repeat, inner)
    trivial = best_of(trivial_calls, repeat, inner)
    gc.collect()
    runner()  # warm-up
    run = min(runner() for _ in range(repeat))
    return {"steps": steps, "plain": plain, "trivial": trivial, "runner": run}


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report_runner(repeat: int) -> None:
    print(f"Runner overhead: Pipeline.start() vs the plain loop (best of {repeat})")
    print(f"{'shape':<8} {'N':>5} {'steps':>5} {'plain µs/step':>13} {'runner µs/step':>14} "
          f"{'overhead µs/step':>16} {'runner/plain':>12} {'trivial fn µs/step':>18}")
    results: dict[tuple[str, int], dict] = {}
    with tempfile.TemporaryDirectory() as home:
        for shape, make in (("chain", chain), ("fan-out", fan_out)):
            for n in SIZES:
                r = results[shape, n] = measure_shape(make, n, repeat, home)
                plain, run = r["plain"] / r["steps"] * 1e6, r["runner"] / r["steps"] * 1e6
                print(f"{shape:<8} {n:>5} {r['steps']:>5} {plain:>13.3f} {run:>14.2f} "
                      f"{run - plain:>16.2f} {run / plain:>11.0f}x "
                      f"{r['trivial'] / r['steps'] * 1e6:>18.3f}")
    print()
    for shape in ("chain", "fan-out"):
        ratio = results[shape, 1000]["runner"] / results[shape, 100]["runner"]
        print(f"linearity {shape:<8} runner(1000) / runner(100) = {ratio:5.1f}x "
              f"(target <= {LINEARITY_TARGET:.0f}x)  {verdict(ratio <= LINEARITY_TARGET)}")
    for shape in ("chain", "fan-out"):
        r = results[shape, 1000]
        over = (r["runner"] - r["plain"]) / r["steps"] * 1e6
        print(f"overhead per step at 1000, {shape:<8} = {over:5.1f} µs "
              f"(target <= {OVERHEAD_TARGET:.0f} µs)  {verdict(over <= OVERHEAD_TARGET)}")


def dask_chain(n: int) -> dict:
    """The chain as a Dask task graph: each task a no-op function of the previous one's result."""
    graph: dict = {"x0": (_identity, 0)}
    for i in range(1, n):
        graph[f"x{i}"] = (_identity, f"x{i - 1}")
    return graph


def _identity(value):
    return value


def measure_against_dask(get, n: int, repeat: int, home: str) -> dict:
    """Seconds (best of ``repeat``) of dask.get on the chain, and of building and running ours."""
    graph, last = dask_chain(n), f"x{n - 1}"
    if get(graph, last) != 0:
        raise RuntimeError("the Dask chain did not compute 0")
    inner = max(1, 2000 // n)  # dask.get on 100 tasks is ~2 ms: time several per sample
    dask_get = best_of(lambda: get(graph, last), repeat, inner)

    def build_and_run(cold: bool) -> tuple[float, float, float]:
        if cold:
            clear_analysis_cache()  # as in a new process: every step's code analysed afresh
        start = time.perf_counter()
        pipeline = chain(n, home)
        pipeline.graph()
        built = time.perf_counter()
        execution = pipeline.start()
        ran = time.perf_counter()
        if execution.status != "Succeeded":
            raise RuntimeError(f"the benchmark pipeline did not succeed:\n{execution!r}")
        return built - start, ran - built, ran - start

    gc.collect()
    build_and_run(True)  # warm-up
    cold = [build_and_run(True) for _ in range(repeat)]
    warm = [build_and_run(False) for _ in range(repeat)]
    return {"dask": dask_get, "build": min(c[0] for c in cold), "run": min(c[1] for c in cold),
            "total": min(c[2] for c in cold), "warm build": min(w[0] for w in warm)}


def report_dask(repeat: int) -> None:
    try:
        import dask
    except ImportError:
        print("\nAgainst dask.get: skipped, Dask is not installed (pip install dask).")
        return
    print(f"\nAgainst dask.get (Dask {dask.__version__}'s synchronous scheduler) on the same chain "
          f"(best of {repeat}; µs per step)")
    print(f"{'N':>5} {'dask.get':>9} {'build':>7} {'run':>7} {'build+run':>10} {'warm build':>11} "
          f"{'run/dask':>9} {'build+run/dask':>15}")
    results = {}
    with tempfile.TemporaryDirectory() as home:
        for n in DASK_SIZES:
            r = results[n] = measure_against_dask(dask.get, n, repeat, home)
            us = {k: v / n * 1e6 for k, v in r.items()}
            print(f"{n:>5} {us['dask']:>9.2f} {us['build']:>7.2f} {us['run']:>7.2f} "
                  f"{us['total']:>10.2f} {us['warm build']:>11.2f} "
                  f"{r['run'] / r['dask']:>8.2f}x {r['total'] / r['dask']:>14.2f}x")
    big, small = results[DASK_SIZES[-1]], results[DASK_SIZES[0]]
    print()
    for label, key, target in (("run", "run", DASK_RUN_TARGET),
                               ("build+run", "total", DASK_TOTAL_TARGET)):
        ratio = big[key] / big["dask"]
        print(f"{label + ' / dask.get':<20} at 1000 = {ratio:5.2f}x (target <= {target:g}x)  "
              f"{verdict(ratio <= target)}")
    for label, key in (("run", "run"), ("build+run", "total"), ("dask.get", "dask")):
        ratio = big[key] / small[key]
        line = f"linearity {label:<10} cost(1000) / cost(100) = {ratio:5.1f}x"
        if key == "dask":
            print(line + " (for reference)")
        else:
            print(line + f" (target <= {DASK_LINEARITY_TARGET:.0f}x)  "
                  f"{verdict(ratio <= DASK_LINEARITY_TARGET)}")


def per_call(fn, value, repeat: int) -> float:
    """µs per ``fn(value)``, with enough calls per sample to last ~20 ms."""
    number, once = 1, best_of(lambda: fn(value), 1)
    if once < 0.02:
        number = max(1, min(100_000, int(0.02 / max(once, 1e-7))))
    return best_of(lambda: fn(value), repeat, number) * 1e6


def report_protection(repeat: int) -> None:
    import numpy as np
    import pandas as pd

    rows, cols = 1_000_000, 10
    rng = np.random.default_rng(0)
    values = {
        f"DataFrame {rows:,} x {cols} float": pd.DataFrame(
            rng.random((rows, cols)), columns=[f"c{i}" for i in range(cols)]),
        f"ndarray {rows:,} x {cols} float64": rng.random((rows, cols)),
        "dict of 10,000 entries": {f"k{i}": float(i) for i in range(10_000)},
    }
    print(f"\nInput protection: protect(value) vs passing it as is (best of {repeat}; "
          f"pandas {pd.__version__}, numpy {np.__version__})")
    print(f"{'value':<32} {'as is µs':>9} {'protect µs':>11} {'what protect returns':<28}")
    for label, value in values.items():
        as_is = per_call(lambda v: v, value, repeat)
        guarded = per_call(protect, value, repeat)
        got = protect(value)
        kind = type(got).__name__ + (" (same object)" if got is value else "")
        if isinstance(value, np.ndarray):
            kind += " (read-only view)" if not got.flags.writeable else " (WRITABLE)"
        elif isinstance(value, pd.DataFrame):
            shared = np.shares_memory(got["c0"].to_numpy(), value["c0"].to_numpy())
            kind += " (shallow, copy-on-write)" if shared else " (deep copy)"
        print(f"{label:<32} {as_is:>9.2f} {guarded:>11.2f} {kind:<28}")

    df = next(iter(values.values()))
    before = (df.iloc[0, 0], float(df["c1"].sum()))
    copy = protect(df)
    start = time.perf_counter()
    copy.iloc[0, 0] = -1.0  # the first write pays for the copy-on-write
    first_write = (time.perf_counter() - start) * 1e6
    copy["c1"] = 0.0
    after = (df.iloc[0, 0], float(df["c1"].sum()))
    print(f"DataFrame: mutating the protected copy (cell write, column replace) leaves the "
          f"original unchanged: {'yes' if before == after else 'NO'} "
          f"(first cell write into the copy took {first_write:.0f} µs)")
    array = protect(values[f"ndarray {rows:,} x {cols} float64"])
    try:
        array[0, 0] = -1.0
        print("ndarray: writing into the protected view succeeded: NOT protected")
    except ValueError:
        print("ndarray: writing into the protected view raises ValueError (read-only): yes")


if __name__ == "__main__":
    common.main(__doc__, report_runner, report_dask, report_protection)
