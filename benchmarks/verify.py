"""What verifying every read against its digest costs (issue 9; run by ``benchmarks/store.py``).

(d) Reading a 1,000,000-row x 10-column float DataFrame back from the store. The baseline is
    the read as it was before verification: the file's bytes, then Parquet decoding
    (``backend[key]`` + ``serialize.decode``). Against it:
    - ``get`` as a kernel does it after its own run wrote the artifact (the store knows the file
      by identity, so it checks inode/size/mtime/ctime and does not hash again);
    - ``get`` by a store that knows nothing of the file (a fresh ``ArtifactStore`` given no
      identity; a new process is given the one the history kept, so this is a copied state
      folder, or a file changed since): the bytes are hashed (SHA-256) before they are decoded.
    Target: verified / unverified <= 1.05.
(e) The fully cached Abalone re-run (as ``store.py`` (a) runs it: a new ``Pipeline`` object on
    a state folder the cold run filled), with verification against the same re-run with it
    switched off (``ArtifactStore.check`` always "intact", ``get`` unverified) in the same run,
    interleaved (per sample one cold run, then the best of 20 re-runs); the re-run in a new
    process's position (the store's memory of verified files cleared: it goes by the file
    identities the history kept); and with nothing known of the files (as in a state folder
    copied elsewhere: every reused output hashed). Target: <= 1.05 (the last has none).
Every figure is the best of N samples; a MISS is printed, never an exit status.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

VERIFY_TARGET = 1.05


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


@contextmanager
def unverified():
    """The store as it was before issue 9: every check passes, reads are not hashed."""
    from jupyter_pipelines.store.artifacts import ArtifactStore
    from jupyter_pipelines.store.serialize import decode

    saved = ArtifactStore.check, ArtifactStore.get
    ArtifactStore.check = lambda self, ref: None
    ArtifactStore.get = lambda self, ref, **names: decode(ref.format, self.backend[ref.key])
    try:
        yield
    finally:
        ArtifactStore.check, ArtifactStore.get = saved


def best(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def report_read(repeat: int) -> None:
    import numpy as np
    import pandas as pd

    from jupyter_pipelines.store.artifacts import ArtifactStore

    rows, cols = 1_000_000, 10
    df = pd.DataFrame(np.random.default_rng(0).random((rows, cols)),
                      columns=[f"c{i}" for i in range(cols)])
    scratch = Path(tempfile.mkdtemp(prefix="jp-bench-read-"))
    try:
        store = ArtifactStore(scratch)
        ref = store.put(df)

        def plain():  # the same store object as known(): only the verification differs
            with unverified():
                store.get(ref)

        def known():  # the kernel's own store: verified when written
            store.get(ref)

        def fresh():  # nothing known of the file: hash, then decode
            ArtifactStore(scratch).get(ref)

        plain(), known(), fresh()  # warm-up: page cache, imports
        samples = {"plain": [], "known": [], "fresh": []}
        for _ in range(repeat):  # interleaved, so drift hits all alike
            for name, function in (("plain", plain), ("known", known), ("fresh", fresh)):
                samples[name].append(best(function, 1))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    base, warm, cold = (min(samples[k]) for k in ("plain", "known", "fresh"))
    print(f"\n(d) Reading a {rows:,} x {cols} float DataFrame back ({ref.size / 1e6:.1f} MB of "
          f"Parquet; best of {repeat})")
    print(f"  {'unverified read (bytes + decode)':<44} {base * 1e3:8.1f} ms")
    print(f"  {'verified, file known by identity (kernel)':<44} {warm * 1e3:8.1f} ms   "
          f"{warm / base:5.2f}x  (target <= {VERIFY_TARGET}x)  {verdict(warm / base <= VERIFY_TARGET)}")
    print(f"  {'verified, hashed first (nothing known)':<44} {cold * 1e3:8.1f} ms   "
          f"{cold / base:5.2f}x  (the SHA-256 of every byte; no target)")


def report_cached(repeat: int) -> None:
    from store import ABALONE, state_home  # benchmarks/store.py

    from jupyter_pipelines.datasets import write_abalone
    from jupyter_pipelines.notebook import load_notebook

    def rerun(params: dict, mode: str, times: int = 20) -> float:
        """One cold run, then the best of ``times`` cached re-runs, each on a new object."""
        took = []
        with state_home("jp-bench-verify-"):
            if load_notebook(ABALONE).start(params, display=False).status != "Succeeded":
                raise RuntimeError("the cold Abalone run did not succeed")
            for _ in range(times):
                pipeline = load_notebook(ABALONE)
                artifacts = pipeline.workspace.artifacts
                if mode in ("new process", "nothing known"):
                    artifacts.forget_verified()
                if mode == "nothing known":
                    artifacts.vouch = lambda ref, seen: None
                gc.collect()
                start = time.perf_counter()
                if mode == "unverified":
                    with unverified():
                        execution = pipeline.start(params, display=False)
                else:
                    execution = pipeline.start(params, display=False)
                took.append(time.perf_counter() - start)
                artifacts.__dict__.pop("vouch", None)
                if any(r.status not in ("Cached", "Skipped") for r in execution.steps.values()):
                    raise RuntimeError(f"expected a fully cached re-run:\n{execution!r}")
        return min(took)

    data_dir = tempfile.mkdtemp(prefix="jp-bench-data-")
    try:
        params = {"input_data": str(write_abalone(Path(data_dir) / "abalone-synthetic.csv"))}
        modes = ("unverified", "verified", "new process", "nothing known")
        for mode in modes:  # warm-up
            rerun(params, mode)
        samples = {mode: [] for mode in modes}
        for _ in range(repeat):
            for mode in modes:
                samples[mode].append(rerun(params, mode))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    base, warm, cold, blind = (min(samples[m]) for m in modes)
    print(f"\n(e) Fully cached Abalone re-run, a new Pipeline object (best of {repeat} x 20)")
    print(f"  {'verification off':<44} {base * 1e3:8.1f} ms")
    print(f"  {'verified (the kernel that ran it)':<44} {warm * 1e3:8.1f} ms   {warm / base:5.2f}x  "
          f"(target <= {VERIFY_TARGET}x)  {verdict(warm / base <= VERIFY_TARGET)}")
    print(f"  {'verified, new process (history identities)':<44} {cold * 1e3:8.1f} ms   "
          f"{cold / base:5.2f}x  (target <= {VERIFY_TARGET}x)  {verdict(cold / base <= VERIFY_TARGET)}")
    print(f"  {'verified, all hashed (nothing known)':<44} {blind * 1e3:8.1f} ms   "
          f"{blind / base:5.2f}x  (no target)")
