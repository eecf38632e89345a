"""Storage formats (issue 10 §1): the store keeps estimators as digest-checked pickles, the
registry keeps them as skops.

Pinned here: estimators and arbitrary objects round-trip as ``pickle``; equal models (two fits
with the same seed, in this process or a fresh one) give equal bytes, also when structured
arrays carry garbage in their padding; a pickle whose bytes changed is refused before it is
unpickled; artifacts written as ``skops`` before still decode, with the same type audit; the
registry still writes skops and `load_model` still refuses pickles unless trusted; the lineage
fallback `digest_inputs` gives the store's digests without a skops encoding.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.datasets import make_regression
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from jupyter_pipelines import Pipeline, registry
from jupyter_pipelines.errors import ArtifactCorrupted
from jupyter_pipelines.registry import RegistryError
from jupyter_pipelines.store import ArtifactStore, SerializationError, serialize
from jupyter_pipelines.store.artifacts import ArtifactRef, content_digest
from jupyter_pipelines.store.serialize import encode, encode_model

from .test_store import TRIPPED, Tripwire  # a pickle that records it if it is ever loaded

X, Y = make_regression(n_samples=300, n_features=4, noise=5.0, random_state=0)

# A record with padding: 8 + 1 bytes of fields in a 16-byte item, like a tree's Node.
PADDED = np.dtype({"names": ["a", "b"], "formats": ["<i8", "u1"], "offsets": [0, 8],
                   "itemsize": 16})


# -- module-level helpers (a pickle names them by qualified name) ----------------------------

def double(x):
    return x * 2


class Scaled(RegressorMixin, BaseEstimator):
    """A user's own estimator, as a notebook would define one."""

    def __init__(self, factor: float = 2.0):
        self.factor = factor

    def fit(self, X, y):
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X):
        return np.full(len(X), self.mean_ * self.factor)


class Box:
    def __init__(self, value):
        self.value = value


def gbr(seed: int = 0) -> GradientBoostingRegressor:
    return GradientBoostingRegressor(n_estimators=20, random_state=seed).fit(X, Y)


def padded(garbage: int) -> np.ndarray:
    """A structured array whose padding bytes hold ``garbage``, as uninitialised memory may."""
    raw = bytearray(np.zeros(3, PADDED).tobytes())
    for row in range(3):
        raw[row * 16: row * 16 + 8] = (row * 7).to_bytes(8, "little")
        raw[row * 16 + 8] = row % 2
        raw[row * 16 + 9: row * 16 + 16] = bytes([garbage]) * 7
    return np.frombuffer(raw, dtype=PADDED)  # a copy would drop the garbage


@pytest.fixture
def store(tmp_path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


# -- round trips -------------------------------------------------------------------------------

ESTIMATORS = {
    "linear": lambda: LinearRegression().fit(X, Y),
    "boosting": gbr,
    "forest": lambda: RandomForestRegressor(n_estimators=5, random_state=0).fit(X, Y),
    "pipeline": lambda: make_pipeline(StandardScaler(), LinearRegression()).fit(X, Y),
    "own-function": lambda: make_pipeline(FunctionTransformer(double), LinearRegression()).fit(X, Y),
    "own-class": lambda: Scaled(3.0).fit(X, Y),
}


@pytest.mark.parametrize("case", list(ESTIMATORS))
def test_estimators_round_trip_through_the_store_as_pickle(store, case):
    model = ESTIMATORS[case]()
    ref = store.put(model)
    assert ref.format == "pickle"
    assert ref.type == f"{type(model).__module__}.{type(model).__qualname__}"
    back = ArtifactStore(store.location).get(ref)  # a fresh store: the bytes are hashed again
    assert type(back) is type(model)
    np.testing.assert_array_equal(back.predict(X), model.predict(X))


def test_arbitrary_objects_round_trip_as_pickle(store):
    values = [Box(41), (1, "a", 2.5), {1: gbr(), "box": Box([1, 2])}, padded(0xAB),
              np.array([1, "a", None], dtype=object)]
    for value in values:
        ref = store.put(value)
        back = store.get(ref)
        assert type(back) is type(value)
    assert store.get(store.put(Box(41))).value == 41
    assert store.get(store.put(values[2]))["box"].value == [1, 2]


def test_a_structured_array_keeps_its_fields_and_loses_its_padding(store):
    value = padded(0xAB)
    ref = store.put(value)
    assert ref.format == "npy"
    back = store.get(ref)
    assert back.dtype == PADDED
    np.testing.assert_array_equal(back["a"], value["a"])
    np.testing.assert_array_equal(back["b"], value["b"])


# -- determinism -------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [gbr, ESTIMATORS["forest"], ESTIMATORS["pipeline"]],
                         ids=["boosting", "forest", "pipeline"])
def test_two_fits_with_the_same_seed_give_the_same_digest(store, make):
    first, second = store.put(make()), store.put(make())
    assert first.digest == second.digest
    assert len(store.backend) == 1


def test_a_different_model_gives_a_different_digest(store):
    assert store.put(gbr(0)).digest != store.put(gbr(1)).digest


@pytest.mark.parametrize("wrap", [lambda a: a, lambda a: {"nodes": [a]}, lambda a: Box(a)],
                         ids=["npy", "in-a-dict", "in-an-object"])
def test_garbage_in_padding_bytes_does_not_change_the_bytes(wrap):
    clean, dirty = padded(0), padded(0xAB)
    assert clean.tobytes() != dirty.tobytes()  # the test means something
    assert encode(wrap(clean)) == encode(wrap(dirty))


def test_padding_inside_a_nested_record_is_zeroed_too():
    inner = np.dtype({"names": ["x", "y"], "formats": ["<i4", "u1"], "offsets": [0, 4],
                      "itemsize": 8})
    outer = np.dtype({"names": ["p", "q"], "formats": [inner, "<f8"], "offsets": [0, 8],
                      "itemsize": 16})
    raw = bytearray(32)
    raw[8:16] = raw[24:32] = np.float64(1.5).tobytes()
    dirty = bytearray(raw)
    dirty[5:8] = dirty[21:24] = b"\xab\xcd\xef"  # the inner record's padding only
    clean_array, dirty_array = np.frombuffer(raw, outer), np.frombuffer(dirty, outer)
    assert encode(clean_array) == encode(dirty_array)
    assert encode([dirty_array]) == encode([clean_array])


def test_a_model_fitted_in_a_fresh_process_gives_the_same_digest(store):
    """What a kernel restart means for the cache: the same seed, the same digest downstream.
    The child runs with another hash seed and a heap left dirty by freed, non-zero buffers."""
    script = (
        "import ctypes, sys\n"
        "libc = ctypes.CDLL(None); libc.malloc.restype = ctypes.c_void_p\n"
        "libc.malloc.argtypes = [ctypes.c_size_t]; libc.free.argtypes = [ctypes.c_void_p]\n"
        "blocks = [libc.malloc(64 * n) for n in range(1, 64) for _ in range(8)]\n"
        "for b, n in zip(blocks, [n for n in range(1, 64) for _ in range(8)]):\n"
        "    ctypes.memset(b, 0xA5, 64 * n)\n"
        "for b in blocks: libc.free(b)\n"
        "from sklearn.datasets import make_regression\n"
        "from sklearn.ensemble import GradientBoostingRegressor\n"
        "from jupyter_pipelines.store.artifacts import content_digest\n"
        "from jupyter_pipelines.store.serialize import encode\n"
        "X, Y = make_regression(n_samples=300, n_features=4, noise=5.0, random_state=0)\n"
        "fmt, data = encode(GradientBoostingRegressor(n_estimators=20, random_state=0).fit(X, Y))\n"
        "print(content_digest(fmt, [data]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           env=env, timeout=120, check=True)
    assert child.stdout.strip() == store.put(gbr()).digest


def test_a_retrained_model_leaves_downstream_cached(tmp_path):
    p = Pipeline("retrain", home=tmp_path / "state")
    p.add_step("Data", "from sklearn.datasets import make_regression\n"
                       "X, y = make_regression(n_samples=200, n_features=3, random_state=0)")
    p.add_step("Train", "from sklearn.ensemble import GradientBoostingRegressor\n"
                        "model = GradientBoostingRegressor(n_estimators=10, random_state=0).fit(X, y)",
               "training")
    p.add_step("Score", "prediction = float(model.predict(X[:1])[0])")
    first = p.start(display=False)
    p.add_step("Train", "from sklearn.ensemble import GradientBoostingRegressor\n"
                        "model = GradientBoostingRegressor(n_estimators=10, random_state=0)\n"
                        "model = model.fit(X, y)", "training")  # new code, the same model
    again = p.start(display=False)
    assert again.steps["Train"].status == "Succeeded"
    assert again.steps["Train"].refs["model"].digest == first.steps["Train"].refs["model"].digest
    assert again.steps["Score"].status == "Cached", again.steps["Score"].why


# -- trust: checked before unpickled -----------------------------------------------------------

def test_a_replaced_pickle_is_refused_before_it_is_unpickled(store):
    ref = store.put(gbr())
    assert ref.format == "pickle"
    path = Path(store.path(ref))
    path.write_bytes(serialize.dumps_pickle(Tripwire()))  # a valid pickle that would run code
    TRIPPED.clear()
    for reader in (store, ArtifactStore(store.location)):  # known file, and a new process
        with pytest.raises(ArtifactCorrupted, match="no longer match"):
            reader.get(ref, step="Train", output="model")
    assert TRIPPED == []


def test_a_replaced_model_in_a_run_is_refused_and_recomputed(tmp_path):
    p = Pipeline("trust", home=tmp_path / "state")
    p.add_step("Train", "from sklearn.linear_model import LinearRegression\n"
                        "model = LinearRegression().fit([[0.0], [1.0]], [1.0, 3.0])", "training")
    first = p.start(display=False)
    ref = first.steps["Train"].refs["model"]
    path = Path(p.workspace.artifacts.path(ref))
    path.write_bytes(serialize.dumps_pickle(Tripwire()))
    TRIPPED.clear()
    again = Pipeline("trust", home=tmp_path / "state")  # nothing in memory: the store only
    again.add_step(p.steps["Train"])
    with pytest.raises(ArtifactCorrupted, match="`model`"):
        again.load_execution(first.id).result("Train", "model")
    ex = again.start(display=False)
    assert ex.steps["Train"].status == "Succeeded" and "corrupt" in ex.steps["Train"].why
    assert ex.result("Train", "model").predict([[2.0]])[0] == pytest.approx(5.0)
    assert TRIPPED == []


# -- old artifacts -----------------------------------------------------------------------------

def _old_skops_ref(store: ArtifactStore, model) -> ArtifactRef:
    """An artifact as the store wrote estimators before: skops bytes under their digest."""
    fmt, data = encode_model(model)
    assert fmt == "skops"
    ref = ArtifactRef(content_digest(fmt, [data]), fmt, len(data),
                      f"{type(model).__module__}.{type(model).__qualname__}")
    store.backend[ref.key] = data
    return ref


def test_an_old_skops_artifact_still_decodes(store):
    model = gbr()
    ref = _old_skops_ref(store, model)
    back = ArtifactStore(store.location).get(ref)
    np.testing.assert_array_equal(back.predict(X), model.predict(X))


def test_an_old_skops_artifact_keeps_its_type_audit(store):
    import skops.io as sio

    model = make_pipeline(FunctionTransformer(double), LinearRegression()).fit(X, Y)
    data = sio.dumps(model)  # types outside the scientific stack: decode refuses them
    ref = ArtifactRef(content_digest("skops", [data]), "skops", len(data), "x.Pipeline")
    store.backend[ref.key] = data
    with pytest.raises(SerializationError, match="arbitrary code"):
        store.get(ref)


# -- the registry: where a model leaves the store ----------------------------------------------

def test_the_registry_still_stores_sklearn_models_as_skops():
    model = gbr()
    package = registry.register("Formats", model)
    assert package.model_format == "skops"
    back = registry.load_model("Formats", package.version)  # no trusted=True needed
    np.testing.assert_array_equal(back.predict(X), model.predict(X))


def test_the_registry_still_refuses_pickles_unless_trusted():
    package = registry.register("Formats", Box(3))
    assert package.model_format == "pickle"
    with pytest.raises(RegistryError, match="trusted=True"):
        registry.load_model("Formats", package.version)
    assert registry.load_model("Formats", package.version, trusted=True).value == 3


def test_a_register_model_step_stores_a_pickle_and_registers_skops(tmp_path):
    p = Pipeline("reg", home=tmp_path / "state")
    p.add_step("Train", "from sklearn.linear_model import LinearRegression\n"
                        "model = LinearRegression().fit([[0.0], [1.0]], [1.0, 3.0])", "training")
    p.add_step("Register", "", "register-model", model="model", group="FormatsStep")
    ex = p.start(display=False)
    assert ex.status == "Succeeded", ex.failure_reason
    ref = ex.steps["Train"].refs["model"]
    assert ref.format == "pickle"
    package = registry.describe("FormatsStep", 1)
    assert package.model_format == "skops"
    assert package.input_digests == {"model": ref.digest}  # the store's digest, not re-hashed


def test_digest_inputs_gives_the_store_digest_without_skops(store, monkeypatch):
    model = gbr()
    expected = store.put(model).digest

    def no_skops(value):
        raise AssertionError("digest_inputs encoded with skops")

    monkeypatch.setattr(serialize, "_dump_skops", no_skops)
    assert registry.digest_inputs({"model": model, "n": 3}) == {
        "model": expected, "n": store.put(3).digest}
