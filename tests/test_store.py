"""The artifact store: backends (local folder, fsspec URL), the content-addressed
`ArtifactStore`, serialisation safety, and how a pipeline run saves its outputs.

Every contract runs over the three locations a user can choose: a folder, a ``file://`` URL
and a ``memory://`` URL (unique per test)."""

from __future__ import annotations

import builtins
import copy
import enum
import hashlib
import io
import json
import re
import uuid
import zipfile
from collections.abc import MutableMapping
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin

from jupyter_pipelines import Pipeline
from jupyter_pipelines.errors import ArtifactMissing, StateError
from jupyter_pipelines.source import Context
from jupyter_pipelines.store import (
    ArtifactRef,
    ArtifactStore,
    FsspecBackend,
    LocalBackend,
    SerializationError,
    open_backend,
)
from jupyter_pipelines.store import backends as backends_mod
from jupyter_pipelines.store.artifacts import INLINE_LIMIT, inline_ref
from jupyter_pipelines.store.serialize import decode, encode, encode_model

LOCATIONS = ["folder", "file-url", "memory-url"]


# -- helpers at module level (skops and pickle refer to them by qualified name) -------------------
def double(x):
    return x * 2


TRIPPED: list[str] = []


def _trip():
    TRIPPED.append("unpickled")
    return "tripped"


class Tripwire:
    """Records it if anything ever unpickles it."""

    def __reduce__(self):
        return (_trip, ())


class Colour(enum.IntEnum):
    RED = 1


class Doubler(TransformerMixin, BaseEstimator):
    """A user's own estimator, as a notebook would define one."""

    def fit(self, X, y=None):
        self.fitted_ = True
        return self

    def transform(self, X):
        return np.asarray(X) * 2


def _location(kind: str, tmp_path: Path) -> str:
    if kind == "folder":
        return str(tmp_path / "a")
    if kind == "file-url":
        return "file://" + str(tmp_path / "b")
    return "memory://jp-test-" + uuid.uuid4().hex


def _all_names(backend) -> set[str]:
    """Every file under the backend's root, hidden ones included, relative to the root."""
    if isinstance(backend, LocalBackend):
        return {p.relative_to(backend.root).as_posix() for p in backend.root.rglob("*") if p.is_file()}
    prefix = backend.root.rstrip("/") + "/"
    return {p[len(prefix):] for p in backend.fs.find(backend.root)}


def _cleanup(backend) -> None:
    if (isinstance(backend, FsspecBackend) and backend.url.startswith("memory://")
            and backend.fs.exists(backend.root)):
        backend.fs.rm(backend.root, recursive=True)


@pytest.fixture(params=LOCATIONS)
def location(request, tmp_path):
    loc = _location(request.param, tmp_path)
    yield loc
    if loc.startswith("memory://"):
        _cleanup(open_backend(loc))


@pytest.fixture
def backend(location):
    return open_backend(location)


@pytest.fixture
def store(location):
    return ArtifactStore(location)


@pytest.fixture
def folder_store(tmp_path):
    """For what does not depend on where the bytes live (how values are encoded)."""
    return ArtifactStore(tmp_path / "one")


# =================================================================================================
# 1. The backend contract
# =================================================================================================
def test_open_backend_chooses_the_class(tmp_path):
    assert type(open_backend(tmp_path / "p")) is LocalBackend
    assert type(open_backend(str(tmp_path / "s"))) is LocalBackend
    url = "file://" + str(tmp_path / "u")
    assert type(open_backend(url)) is FsspecBackend
    mem = open_backend("memory://jp-test-" + uuid.uuid4().hex)
    try:
        assert type(mem) is FsspecBackend
        assert "memory" in mem.fs.protocol
    finally:
        _cleanup(mem)
    assert (tmp_path / "p").is_dir() and (tmp_path / "u").is_dir()  # created on open


def test_fixture_backends_are_the_expected_classes(backend, location):
    assert isinstance(backend, MutableMapping)
    expected = FsspecBackend if "://" in location else LocalBackend
    assert type(backend) is expected


def test_empty_backend(backend):
    assert list(backend) == []
    assert len(backend) == 0
    assert "ab/cdef" not in backend


def test_set_get_contains_len_iter_delete(backend):
    backend["k"] = b"one"
    backend["ab/cdef"] = b"two"
    backend["ab/cxyz"] = b"three"
    backend["zz/deep/er"] = b"four"
    assert backend["k"] == b"one"
    assert backend["ab/cdef"] == b"two"
    assert "ab/cdef" in backend and "k" in backend
    assert "ab" not in backend          # a folder is not a key
    assert 1 not in backend             # nor is a non-string
    assert len(backend) == 4
    assert sorted(backend) == ["ab/cdef", "ab/cxyz", "k", "zz/deep/er"]
    assert dict(backend.items())["zz/deep/er"] == b"four"

    del backend["ab/cdef"]
    assert "ab/cdef" not in backend
    assert sorted(backend) == ["ab/cxyz", "k", "zz/deep/er"]
    assert len(backend) == 3
    assert backend.get("ab/cdef") is None
    assert backend.pop("k") == b"one"
    assert len(backend) == 2


def test_missing_key_is_a_key_error(backend):
    with pytest.raises(KeyError):
        backend["ab/missing"]
    with pytest.raises(KeyError):
        backend["missing"]
    with pytest.raises(KeyError):
        del backend["ab/missing"]
    backend["ab/cdef"] = b"x"
    del backend["ab/cdef"]
    with pytest.raises(KeyError):
        backend["ab/cdef"]
    with pytest.raises(KeyError):
        del backend["ab/cdef"]
    assert backend.get("ab/cdef", b"default") == b"default"


def test_folder_key_reads_as_missing(backend):
    """`"ab" in backend` is False, so reading or deleting it must be a KeyError too."""
    backend["ab/cdef"] = b"x"
    assert "ab" not in backend
    assert backend.get("ab") is None
    with pytest.raises(KeyError):
        backend["ab"]
    with pytest.raises(KeyError):
        del backend["ab"]


def test_overwrite(backend):
    backend["ab/cdef"] = b"first"
    backend["ab/cdef"] = b"second, longer than the first"
    assert backend["ab/cdef"] == b"second, longer than the first"
    backend["ab/cdef"] = b"3"
    assert backend["ab/cdef"] == b"3"
    assert list(backend) == ["ab/cdef"]
    assert len(backend) == 1


@pytest.mark.parametrize("value", [bytes(range(256)) * 3, b"", b"\x00", b"\r\n\x1a\xff" * 1000],
                         ids=["all-bytes", "empty", "nul", "crlf"])
def test_binary_round_trip(backend, value):
    backend["ab/bin"] = value
    assert backend["ab/bin"] == value
    assert type(backend["ab/bin"]) is bytes


def test_no_temporary_files_left_after_writes(backend):
    for i in range(5):
        backend[f"ab/k{i}"] = bytes([i]) * 10
        backend[f"ab/k{i}"] = bytes([i]) * 20  # overwrites too
    backend["top"] = b"t"
    assert _all_names(backend) == set(backend) == {f"ab/k{i}" for i in range(5)} | {"top"}
    assert not [n for n in _all_names(backend) if n.rsplit("/", 1)[-1].startswith(".")]


def test_two_backends_on_one_location_see_the_same_keys(location):
    one, two = open_backend(location), open_backend(location)
    one["ab/cdef"] = b"shared"
    assert two["ab/cdef"] == b"shared"
    assert list(two) == ["ab/cdef"]


# =================================================================================================
# 2. The ArtifactStore contract
# =================================================================================================
def _frame():
    return pd.DataFrame(
        {"i": np.array([1, 2, 3], dtype="int64"), "f": [1.5, 2.5, np.nan],
         "b": [True, False, True], "s": ["a", "b", None],
         "d": pd.to_datetime(["2024-01-01", "2024-01-02", None]),
         "c": pd.Categorical(["x", "y", "x"]), "i32": np.array([1, 2, 3], dtype="int32")},
        index=pd.Index([10, 20, 30], name="row"))


def _model():
    from sklearn.linear_model import LinearRegression

    X = np.array([[1.0, 0.5], [2.0, 1.0], [3.0, -1.0], [4.0, 2.0]])
    return LinearRegression().fit(X, X @ np.array([2.0, -1.0]) + 0.5)


MODEL_X = np.array([[0.0, 0.0], [10.0, -3.0]])


def _same(back, value):
    if isinstance(value, pd.DataFrame):
        pd.testing.assert_frame_equal(back, value)
        assert back.index.name == value.index.name
        assert list(back.columns) == list(value.columns)
    elif isinstance(value, pd.Series):
        pd.testing.assert_series_equal(back, value)
        assert back.name == value.name
    elif isinstance(value, np.ndarray):
        assert type(back) is np.ndarray
        assert back.dtype == value.dtype and back.shape == value.shape
        np.testing.assert_array_equal(back, value)
    elif hasattr(value, "predict"):
        assert type(back) is type(value)
        np.testing.assert_allclose(back.predict(MODEL_X), value.predict(MODEL_X))
        np.testing.assert_array_equal(back.coef_, value.coef_)
    else:
        assert type(back) is type(value)
        assert back == value


CASES = {
    # id: (factory, expected format)
    "frame": (_frame, "parquet"),
    "series-named": (lambda: pd.Series([1.5, 2.5], index=pd.Index(["x", "y"], name="k"), name="s"),
                     "parquet-series"),
    "series-unnamed": (lambda: pd.Series([1, 2, 3]), "parquet-series"),
    "ndarray-float-2d": (lambda: np.arange(12, dtype="float64").reshape(3, 4) / 7, "npy"),
    "ndarray-int-2d": (lambda: np.arange(6, dtype="int32").reshape(2, 3), "npy"),
    "json-dict": (lambda: {"a": 1, "b": [1, 2.5, None], "c": {"d": True}}, "json"),
    "json-list": (lambda: [1, "two", 3.0, False, None, {"x": []}], "json"),
    "json-str": (lambda: "héllo ✓", "json"),
    "json-int": (lambda: 2 ** 70, "json"),
    "json-float": (lambda: 0.1, "json"),
    "json-bool": (lambda: True, "json"),
    "json-none": (lambda: None, "json"),
    "json-list-large": (lambda: list(range(200)), "json"),  # over INLINE_LIMIT: a file
    "json-dict-large": (lambda: {"a": list(range(100)), "b": "é" * 50}, "json"),
    "json-str-large": (lambda: "héllo ✓ " * 40, "json"),
    "sklearn": (_model, "pickle"),  # digest-checked on read; skops only in the registry
    "tuple": (lambda: (1, "a", 2.5), "pickle"),
    "dict-int-keys": (lambda: {1: "a", 2: "b"}, "pickle"),
    "frame-int-columns": (lambda: pd.DataFrame({0: [1, 2], 1: ["a", "b"]}), "pickle"),
    "nan-float": (lambda: float("inf"), "pickle"),
    "object-array": (lambda: np.array([1, "a", None], dtype=object), "pickle"),
}


# Small JSON values (at most INLINE_LIMIT bytes) get no file: the ref holds their text.
INLINE_CASES = {"json-dict", "json-list", "json-str", "json-int", "json-float", "json-bool",
                "json-none"}


@pytest.mark.parametrize("case", list(CASES))
def test_put_get_round_trip_and_format(store, case):
    factory, fmt = CASES[case]
    value = factory()
    ref = store.put(value)
    assert ref.format == fmt
    assert ref.type == f"{type(value).__module__}.{type(value).__qualname__}"
    assert ref in store
    if case in INLINE_CASES:
        assert ref.inline is not None and len(ref.inline.encode()) == ref.size <= INLINE_LIMIT
        assert ref.key not in store.backend and len(store.backend) == 0  # no file
        assert store.seen(ref) is None
    else:
        assert ref.inline is None
        assert ref.size == len(store.backend[ref.key])
        assert ref.format != "json" or ref.size > INLINE_LIMIT
    _same(store.get(ref), value)
    _same(ArtifactStore(store.location).get(ref), value)  # a fresh store at the same place


@pytest.mark.parametrize("value", [0, -7, 10**40, "abc", 'a "quoted" \\ é', True, False, None,
                                   1.5, -0.0, 1e300])
def test_a_small_scalar_gets_the_reference_put_gives_it_without_the_store(store, value):
    """`inline_ref`, the run loop's quick save of a small output, is `put`'s reference: the
    bytes `encode` makes, their digest, the type; no file."""
    ref = inline_ref(value)
    assert ref == store.put(value) and len(store.backend) == 0
    assert ref.inline.encode() == encode(value)[1] and ref.size == len(ref.inline)
    assert decode(ref.format, ref.inline.encode()) == value


@pytest.mark.parametrize("value", ["x" * INLINE_LIMIT, 10**300, float("nan"), [1], {"a": 1},
                                   np.int64(3), b"bytes"])
def test_anything_but_a_small_scalar_gets_no_quick_reference(store, value):
    assert inline_ref(value) is None  # `put` decides: a file, or inline JSON for a list/dict
    assert store.put(value).inline is None or type(value) in (list, dict)


def test_frame_with_int_columns_keeps_them_exactly(store):
    value = pd.DataFrame({0: [1, 2], 1: ["a", "b"]}, index=pd.Index([5, 6], name="i"))
    back = store.get(store.put(value))
    assert list(back.columns) == [0, 1] and all(type(c) is int for c in back.columns)
    pd.testing.assert_frame_equal(back, value)


def test_ref_shape(store):
    ref = store.put({"a": list(range(100))})  # over INLINE_LIMIT: a file
    assert re.fullmatch(r"[0-9a-f]{64}", ref.digest)
    assert ref.key == f"{ref.digest[:2]}/{ref.digest}"
    assert ref.key in store.backend
    data = store.backend[ref.key]
    assert ref.digest == hashlib.sha256(ref.format.encode() + b"\0" + data).hexdigest()
    assert ref.inline is None and "inline" not in ref.as_dict()
    assert ArtifactRef.from_dict(json.loads(json.dumps(ref.as_dict()))) == ref

    small = store.put({"a": 1})  # kept inline: its text in the ref, the same digest a file has
    assert re.fullmatch(r"[0-9a-f]{64}", small.digest)
    assert small.inline == '{"a": 1}' and small.size == len(small.inline)
    assert small.digest == hashlib.sha256(b"json\0" + small.inline.encode()).hexdigest()
    assert small.key not in store.backend and list(store.backend) == [ref.key]
    assert small.as_dict()["inline"] == small.inline
    assert ArtifactRef.from_dict(json.loads(json.dumps(small.as_dict()))) == small


class _CountingBackend(MutableMapping):
    def __init__(self, inner):
        self.inner, self.writes = inner, 0

    def __getitem__(self, key):
        return self.inner[key]

    def __setitem__(self, key, value):
        self.writes += 1
        self.inner[key] = value

    def __delitem__(self, key):
        del self.inner[key]

    def __iter__(self):
        return iter(self.inner)

    def __len__(self):
        return len(self.inner)

    def __contains__(self, key):
        return key in self.inner


@pytest.mark.parametrize("case", ["frame", "series-named", "ndarray-float-2d", "json-dict",
                                  "json-dict-large", "tuple", "frame-int-columns"])
def test_equal_values_are_stored_once(store, case):
    factory = CASES[case][0]
    store.backend = counting = _CountingBackend(store.backend)
    first, second = store.put(factory()), store.put(factory())
    assert first == second
    files = 0 if case in INLINE_CASES else 1  # a small JSON value is never written
    assert counting.writes == files
    assert len(store.backend) == files


def test_equal_models_are_stored_once(folder_store):
    model = _model()
    first, second = folder_store.put(model), folder_store.put(copy.deepcopy(model))
    assert first.digest == second.digest
    assert len(folder_store.backend) == 1


def test_different_values_have_different_digests(store):
    big = list(range(200))  # JSON over INLINE_LIMIT: files
    refs = [store.put(v) for v in ([1, 2], [1, 3], (1, 2), "[1, 2]", np.array([1, 2]),
                                   pd.Series([1, 2]), pd.DataFrame({"a": [1, 2]}), big, big + [1],
                                   json.dumps(big))]
    assert len({r.digest for r in refs}) == len(refs)
    inline = [r for r in refs if r.inline is not None]
    assert [r.inline for r in inline] == ["[1, 2]", "[1, 3]", '"[1, 2]"']
    assert len(store.backend) == len(refs) - len(inline)


def test_missing_artifact_names_digest_type_and_location(store):
    ghost = ArtifactRef("0123456789ab" + "f" * 52, "json", 2, "builtins.list")
    with pytest.raises(ArtifactMissing) as info:
        store.get(ghost)
    message = str(info.value)
    assert "0123456789ab" in message and "builtins.list" in message
    assert store.location in message

    ref = store.put(pd.DataFrame({"a": [1]}))
    del store.backend[ref.key]
    assert ref not in store
    with pytest.raises(ArtifactMissing, match=re.escape(ref.digest[:12])) as info:
        store.get(ref)
    assert "pandas" in str(info.value) and "DataFrame" in str(info.value)


def test_unserialisable_value_names_its_type(store):
    import threading

    with pytest.raises(SerializationError) as info:
        store.put(threading.Lock(), what="Output `lock`")
    message = str(info.value)
    assert "Output `lock`" in message and "_thread.lock" in message
    assert "private" in message
    assert len(store.backend) == 0


def test_custom_estimator_round_trips(folder_store):
    estimator = Doubler().fit([[1.0], [2.0]])
    back = folder_store.get(folder_store.put(estimator))
    np.testing.assert_array_equal(back.transform([[3.0]]), [[6.0]])


@pytest.mark.parametrize("value", [Colour.RED, np.float64(1.5)], ids=["IntEnum", "np.float64"])
def test_json_subclasses_keep_their_type(folder_store, value):
    back = folder_store.get(folder_store.put(value))
    assert type(back) is type(value)


def test_series_named_like_the_sentinel_keeps_its_name(folder_store):
    value = pd.Series([1, 2], name="__series__")
    pd.testing.assert_series_equal(folder_store.get(folder_store.put(value)), value)


# =================================================================================================
# 3. Serialisation safety
# =================================================================================================
def test_skops_decode_refuses_a_non_sklearn_function():
    import skops.io as sio
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    model = make_pipeline(FunctionTransformer(func=double), LinearRegression())
    model.fit(np.array([[1.0], [2.0], [3.0]]), [2.0, 4.0, 6.0])
    data = sio.dumps(model)
    name = f"{double.__module__}.{double.__qualname__}"
    assert name in sio.get_untrusted_types(data=data)  # what skops itself calls untrusted
    with pytest.raises(SerializationError, match=re.escape(name)) as info:
        decode("skops", data)
    assert "arbitrary code" in str(info.value)


def test_skops_decode_loads_a_plain_sklearn_model():
    model = _model()
    fmt, data = encode_model(model)  # the registry's encoding; the store pickles
    assert fmt == "skops"
    _same(decode(fmt, data), model)


def _skops_calling(module: str, name: str, argument: str) -> bytes:
    """A skops file whose loading calls ``module.name(argument)``."""
    schema = {
        "__class__": name, "__module__": module, "__loader__": "ConstructorFromReduceNode",
        "content": {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
                    "content": [{"__class__": "str", "__module__": "builtins",
                                 "__loader__": "JsonNode", "content": json.dumps(argument),
                                 "is_json": True, "__id__": 2}], "__id__": 3},
        "__id__": 1, "protocol": 2, "_skops_version": "0.16.0",
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
    return buffer.getvalue()


def test_skops_decode_never_runs_builtins_exec():
    import skops.io as sio

    data = _skops_calling("builtins", "exec", "import builtins; builtins._jp_skops_ran = True")
    assert sio.get_untrusted_types(data=data) == ["builtins.exec"]
    try:
        with pytest.raises(SerializationError, match="builtins.exec"):
            decode("skops", data)
        assert not getattr(builtins, "_jp_skops_ran", False)
    finally:
        builtins.__dict__.pop("_jp_skops_ran", None)


def test_object_array_is_stored_as_pickle_not_npy():
    fmt, _ = encode(np.array([{"a": 1}, None], dtype=object))
    assert fmt == "pickle"
    fmt, _ = encode(np.array([1.0, 2.0]))
    assert fmt == "npy"


def test_npy_decode_never_unpickles():
    buffer = io.BytesIO()
    np.save(buffer, np.array([Tripwire(), 1], dtype=object), allow_pickle=True)
    TRIPPED.clear()
    with pytest.raises(ValueError, match="allow_pickle"):
        decode("npy", buffer.getvalue())
    assert TRIPPED == []


def test_unknown_format_is_refused():
    with pytest.raises(SerializationError, match="bogus"):
        decode("bogus", b"")


# =================================================================================================
# 4. Through the Python API
# =================================================================================================
@pytest.mark.parametrize("cells, code, output, type_name", [
    ("import threading", "lock = threading.Lock()\nx = 1", "lock", "_thread.lock"),
    ("", "gen = (i for i in range(3))", "gen", "generator"),
], ids=["lock", "generator"])
def test_unserialisable_output_fails_the_step(tmp_path, cells, code, output, type_name):
    p = Pipeline("unsaved", home=tmp_path, context=Context.from_cells([cells]) if cells else None)
    p.add_step("Make", code)
    p.add_step("Use", f"y = str({output})")
    ex = p.start()
    record = ex.steps["Make"]
    assert ex.status == "Failed"
    assert record.status == "Failed"
    reason = record.failure_reason
    assert "Step `Make`" in reason
    assert f"`{output}`" in reason
    assert type_name in reason
    assert "private" in reason and "`_" in reason  # how to fix it
    assert ex.failure_reason == reason
    assert ex.steps["Use"].status != "Succeeded"


def test_private_unserialisable_value_is_fine(tmp_path):
    p = Pipeline("private", home=tmp_path, context=Context.from_cells(["import threading"]))
    p.add_step("Make", "_lock = threading.Lock()\nwith _lock:\n    x = [1, 2]")
    ex = p.start()
    assert ex.status == "Succeeded"
    assert ex.steps["Make"].status == "Succeeded"
    assert set(ex.steps["Make"].refs) == {"x"}
    assert ArtifactStore(tmp_path / "artifacts").get(ex.steps["Make"].refs["x"]) == [1, 2]


def _two_step_pipeline(tmp_path, **kwargs) -> Pipeline:
    p = Pipeline("stored", home=tmp_path,
                 context=Context.from_cells(["import pandas as pd\nimport numpy as np"]), **kwargs)
    p.add_step("Make", "frame = pd.DataFrame({'a': [1, 2, 3]})\narr = np.eye(2)\nmeta = {'n': 3}")
    p.add_step("Use", "total = int(frame['a'].sum())\nshape = arr.shape")
    return p


def _assert_outputs_stored(ex, store: ArtifactStore):
    assert ex.status == "Succeeded", ex.failure_reason
    expected = {"Make": {"frame", "arr", "meta"}, "Use": {"total", "shape"}}
    for step, names in expected.items():
        refs = ex.steps[step].refs
        assert set(refs) == names
        for name, ref in refs.items():
            assert ref in store
            _same(store.get(ref), ex.result(step, name))
            # small JSON values (meta, total) are kept inline, the rest in files
            assert (ref.inline is not None) == (name in ("meta", "total")), name
            assert (ref.key in store.backend) == (ref.inline is None), name
    assert {r.format for r in ex.steps["Make"].refs.values()} == {"parquet", "npy", "json"}
    assert ex.steps["Use"].refs["shape"].format == "pickle"  # a tuple


def test_artifacts_default_under_home(tmp_path):
    ex = _two_step_pipeline(tmp_path).start()
    _assert_outputs_stored(ex, ArtifactStore(tmp_path / "artifacts"))
    on_disk = {p.name for p in (tmp_path / "artifacts").rglob("*") if p.is_file()}
    files = {r.digest for rec in ex.steps.values() for r in rec.refs.values() if r.inline is None}
    assert len(files) == 3 and on_disk == files  # frame, arr, shape; meta and total are inline


class _RemoteHandle:
    """Stands for a value kept on a worker: it cannot be saved here (nor pickled)."""

    def __reduce__(self):
        raise TypeError("a remote handle does not travel")


def test_recorder_store_keeps_refs_a_worker_wrote_and_saves_the_rest(tmp_path):
    """A Dask worker that wrote a step's outputs to the shared store itself hands back their
    refs with handles for values: `Recorder.store` keeps those refs and saves nothing again.
    With a ref missing for any output, the values here are saved as usual."""
    from jupyter_pipelines.execution import StepRecord
    from jupyter_pipelines.store.history import History
    from jupyter_pipelines.store.recorder import Recorder

    p = Pipeline("remote", home=tmp_path / "state")
    step = p.add_step("Make", "a = 1\nb = 2")
    store = ArtifactStore(tmp_path / "shared")
    written = {"a": store.put(1), "b": store.put([2])}  # what the worker did
    before = sorted(store.backend)
    recorder = Recorder("remote", History(tmp_path / "state"), store, p.graph({}), p.context, {}, 1)

    record = StepRecord("Make", "processing", status="Succeeded",
                        outputs={"a": _RemoteHandle(), "b": _RemoteHandle()}, refs=dict(written))
    recorder.store(step, record)
    assert record.refs == written and sorted(store.backend) == before
    assert all(type(v) is _RemoteHandle for v in record.outputs.values())

    partial = StepRecord("Make", "processing", status="Succeeded", outputs={"a": 3, "b": [4]},
                         refs={"a": written["a"]})
    recorder.store(step, partial)
    assert store.get(partial.refs["a"]) == 3 and store.get(partial.refs["b"]) == [4]


@pytest.mark.parametrize("kind", ["folder", "memory-url"])
def test_artifacts_go_to_the_chosen_store(tmp_path, kind):
    where = str(tmp_path / "elsewhere") if kind == "folder" else "memory://jp-test-" + uuid.uuid4().hex
    try:
        p = _two_step_pipeline(tmp_path, store=where)
        ex = p.start()
        store = ArtifactStore(where)
        _assert_outputs_stored(ex, store)
        assert len(store.backend) == 3  # frame, arr, shape: meta and total are inline
        default = tmp_path / "artifacts"
        assert not default.exists() or not [q for q in default.rglob("*") if q.is_file()]
        # a reloaded execution reads its outputs back from that store
        loaded = p.load_execution(ex.id)
        assert loaded.result("Use", "total") == 6
        pd.testing.assert_frame_equal(loaded.result("Make", "frame"), ex.result("Make", "frame"))
    finally:
        if where.startswith("memory://"):
            _cleanup(open_backend(where))


# =================================================================================================
# 5. Atomicity
# =================================================================================================
class Crash(OSError):
    pass


def _hidden_leftovers(backend) -> list[str]:
    return [n for n in _all_names(backend) if n.rsplit("/", 1)[-1].startswith(".")]


def test_local_crash_before_rename_leaves_no_key(tmp_path, monkeypatch):
    b = LocalBackend(tmp_path / "store")

    def boom(*args, **kwargs):
        raise Crash("power cut")

    with monkeypatch.context() as m:
        m.setattr(backends_mod.os, "replace", boom)
        with pytest.raises(Crash):
            b["ab/cdef"] = b"half"
    assert "ab/cdef" not in b
    with pytest.raises(KeyError):
        b["ab/cdef"]
    assert list(b) == [] and len(b) == 0
    leftovers = _hidden_leftovers(b)
    assert leftovers and all(n.rsplit("/", 1)[-1].startswith(".") for n in leftovers)
    assert set(_all_names(b)) == set(leftovers)  # only the hidden temp file is there

    b["ab/cdef"] = b"whole"
    assert b["ab/cdef"] == b"whole"
    assert list(b) == ["ab/cdef"] and len(b) == 1


@pytest.mark.parametrize("where", ["fsync", "replace"])
def test_local_crash_mid_write_keeps_the_old_value(tmp_path, monkeypatch, where):
    """A write that fails before its rename (while a large file is flushed to disk, or at the
    rename itself) leaves the old bytes under the key and the new ones only in a hidden file."""
    b = LocalBackend(tmp_path / "store")
    b["ab/cdef"] = b"old"

    def boom(*args):
        raise Crash("disk full")

    large = b"new" * backends_mod.SYNC_FROM  # large enough to be fsynced
    with monkeypatch.context() as m:
        m.setattr(backends_mod.os, where, boom)
        with pytest.raises(Crash):
            b["ab/cdef"] = large
        if where == "replace":
            with pytest.raises(Crash):
                b["ab/other"] = b"x"
    assert b["ab/cdef"] == b"old"
    assert "ab/other" not in b
    assert list(b) == ["ab/cdef"]
    assert all(Path(n).name.startswith(".") for n in set(_all_names(b)) - {"ab/cdef"})
    b["ab/other"] = b"y"
    assert sorted(b) == ["ab/cdef", "ab/other"]


def test_local_writes_flush_large_files_to_disk_and_small_ones_only_to_the_os(tmp_path, monkeypatch):
    """A small file is not fsynced (a killed process loses nothing; a power cut may, and a read
    then finds it missing or corrupt, never wrong); a large one is, before its rename."""
    b = LocalBackend(tmp_path / "store")
    synced = []
    real = backends_mod.os.fsync
    monkeypatch.setattr(backends_mod.os, "fsync", lambda fd: synced.append(fd) or real(fd))
    b["ab/small"] = b"x" * (backends_mod.SYNC_FROM - 1)
    assert synced == []
    b["ab/large"] = b"x" * backends_mod.SYNC_FROM
    assert len(synced) == 1
    assert len(b["ab/small"]) == backends_mod.SYNC_FROM - 1 and len(b["ab/large"]) == backends_mod.SYNC_FROM


@pytest.mark.parametrize("kind", ["file-url", "memory-url"])
def test_fsspec_crash_before_move_leaves_no_key(tmp_path, monkeypatch, kind):
    b = FsspecBackend(_location(kind, tmp_path))
    try:
        b["ab/keep"] = b"kept"

        def boom(*args, **kwargs):
            raise Crash("connection lost")

        with monkeypatch.context() as m:
            m.setattr(b.fs, "mv", boom)
            with pytest.raises(Crash):
                b["ab/cdef"] = b"half"
        assert "ab/cdef" not in b
        with pytest.raises(KeyError):
            b["ab/cdef"]
        assert list(b) == ["ab/keep"] and len(b) == 1
        leftovers = _hidden_leftovers(b)
        assert leftovers and all(n.rsplit("/", 1)[-1].startswith(".") for n in leftovers)

        b["ab/cdef"] = b"whole"
        assert b["ab/cdef"] == b"whole"
        assert sorted(b) == ["ab/cdef", "ab/keep"]
    finally:
        _cleanup(b)


def test_store_put_after_a_crashed_write_stores_the_value(tmp_path, monkeypatch):
    store = ArtifactStore(tmp_path / "store")

    def boom(*args, **kwargs):
        raise Crash("power cut")

    with monkeypatch.context() as m:
        m.setattr(backends_mod.os, "replace", boom)
        value = {"a": list(range(100))}  # over INLINE_LIMIT: written to a file
        with pytest.raises(StateError, match="power cut") as info:  # an OSError, said in words
            store.put(value)
        assert store.location in str(info.value)
    assert len(store.backend) == 0
    ref = store.put(value)  # the half-written temp file does not count as stored
    assert store.get(ref) == value
    assert list(store.backend) == [ref.key]


# -- the history database ------------------------------------------------------------------------

def traced_history(monkeypatch, home) -> list[str]:
    """The statements the write connection of ``History(home)`` runs while it opens the
    database (a new one at its first write: `_make`)."""
    from jupyter_pipelines.store import history as history_mod

    statements: list[str] = []
    real = history_mod.connect

    def connect(path, what, **kwargs):
        conn, read_only = real(path, what, **kwargs)
        if not statements:  # the first connection: the one that writes
            conn.set_trace_callback(statements.append)
            statements.append("(connected)")
        return conn, read_only

    monkeypatch.setattr(history_mod, "connect", connect)
    history = history_mod.History(home)
    history._make()  # (what the first write does first; an existing database: at once)
    history.close()
    return [s.strip().split("\n")[0].rstrip(";") for s in statements]


def test_a_new_history_is_made_in_one_transaction_that_does_not_wait_for_the_disk(tmp_path,
                                                                                  monkeypatch):
    """A new history's tables are made in one transaction without an fsync (an empty file is
    all a power cut could lose then, as when it switches to WAL); every later commit is
    durable as always (synchronous=NORMAL), and an existing history is opened as before."""
    made = traced_history(monkeypatch, tmp_path / "state")
    off, begin = made.index("PRAGMA synchronous=OFF"), made.index("BEGIN IMMEDIATE")
    assert off < begin < made.index("COMMIT") < made.index("PRAGMA synchronous=NORMAL")
    assert [s for s in made if s.startswith("CREATE TABLE")][0] == made[begin + 1]
    opened = traced_history(monkeypatch, tmp_path / "state")
    assert "PRAGMA synchronous=NORMAL" in opened and "PRAGMA synchronous=OFF" not in opened
    assert "BEGIN IMMEDIATE" not in opened  # nothing to write
    from jupyter_pipelines.store.history import History

    history = History(tmp_path / "state")
    assert history._conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    assert history._conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_the_stored_keys_are_read_at_once_from_a_small_history_only(tmp_path):
    from jupyter_pipelines.store.history import History

    p = Pipeline("keys", home=tmp_path / "state")
    p.add_step("A", "x = 1")
    p.add_step("B", "y = x + 1")
    ex = p.start(display=False)
    p.workspace.history.settle()
    fresh = History(tmp_path / "state")  # as a new process sees it
    assert fresh.stored_keys(limit=1) is None  # more runs than that: ask a key at a time
    assert fresh.stored_keys(limit=10) == {r.cache_key for r in ex.steps.values()}
    assert fresh.stored_keys(limit=1) == {r.cache_key for r in ex.steps.values()}  # read: kept
    fresh.close()


@pytest.mark.parametrize("text", ['{"a": [1, 2.5, null, "\\u00e9", true]}', '"x"', "[]", "3",
                                  ' {"a": 1}', '{"a": 1} x', '{"a": }', "", "nope"])
def test_plain_loads_is_json_loads(text):
    from jupyter_pipelines.store.journal import plain_loads

    try:
        expected = json.loads(text)
    except ValueError as exc:
        with pytest.raises(type(exc)):
            plain_loads(text)
    else:
        assert plain_loads(text) == expected


# =================================================================================================
# 6. Small JSON values, kept inline in the history (no file)
# =================================================================================================
def _files(folder: Path) -> list[Path]:
    return [f for f in folder.rglob("*") if f.is_file()] if folder.exists() else []


def _metrics(home: Path) -> Pipeline:
    p = Pipeline("metrics", home=home)
    p.add_step("Train", "score = 0.875\nepochs = 12\nreport = {'name': 'baseline', 'ok': True}")
    p.add_step("Check", "passed = score > 0.5 and report['ok']")
    return p


SMALL = {("Train", "score"): 0.875, ("Train", "epochs"): 12,
         ("Train", "report"): {"name": "baseline", "ok": True}, ("Check", "passed"): True}


def _outputs_of(home: Path, execution_id: str) -> dict[str, dict]:
    """step -> the outputs JSON of its row in history.db, as stored."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(home / "history.db")) as db:
        rows = db.execute("SELECT step, outputs FROM step_runs WHERE execution_id = ?",
                          (execution_id,)).fetchall()
    return {step: json.loads(outputs) for step, outputs in rows}


def test_small_outputs_have_no_file_and_round_trip_through_a_cached_run(tmp_path):
    """A metric, a count, a short dict: no file in the store; the history row keeps each
    one's text (``inline``); a new Pipeline on the same home reuses them (Cached) and reads
    them back equal, with their types, from the history alone."""
    home = tmp_path / "state"
    p = _metrics(home)
    ex = p.start(display=False)
    assert ex.status == "Succeeded", ex.failure_reason
    for (step, name), value in SMALL.items():
        ref = ex.steps[step].refs[name]
        assert ref.format == "json" and ref.inline == json.dumps(value), name
        assert ex.result(step, name) == value
    assert _files(home / "artifacts") == []  # not one file for four outputs

    p.workspace.history.settle()  # the run's rows are committed after start() returns
    rows = _outputs_of(home, ex.id)
    for (step, name), value in SMALL.items():
        doc = rows[step][name]
        assert doc["inline"] == json.dumps(value) and "seen" not in doc
        assert doc["digest"] == ex.steps[step].refs[name].digest

    again = _metrics(home).start(display=False)  # a new object: only what is stored
    assert {s: r.status for s, r in again.steps.items()} == {"Train": "Cached", "Check": "Cached"}
    for (step, name), value in SMALL.items():
        back = again.result(step, name)
        assert back == value and type(back) is type(value), name
        assert again.steps[step].refs[name] == ex.steps[step].refs[name]
    loaded = _metrics(home).load_execution(ex.id)  # as after a restart
    assert {(s, n): loaded.result(s, n) for s, n in SMALL} == SMALL
    assert _files(home / "artifacts") == []
    assert _metrics(home).doctor().healthy


def test_a_small_value_has_the_digest_a_file_of_its_bytes_has(store):
    """The cache key does not depend on where the bytes are: an inline value's digest is
    the one a file of the same bytes is stored (and was stored before) under."""
    from jupyter_pipelines.store.artifacts import content_digest

    for value in (0.875, 12, True, None, "héllo", [1, 2.5, None], {"a": {"b": [1]}}):
        ref = store.put(value)
        fmt, data = encode(value)
        assert ref.inline is not None and ref.inline.encode() == data
        assert ref.digest == content_digest("json", [data]) == content_digest(fmt, [data])
        # the same bytes as a file (as stored before values were kept inline): same digest, and
        # the file's ref reads back the same value
        store.backend[ref.key] = data
        as_file = ArtifactRef(ref.digest, ref.format, ref.size, ref.type)
        assert as_file.digest == ref.digest and store.check(as_file) is None
        assert store.get(as_file) == store.get(ref) == value


def test_an_output_stored_as_a_file_before_is_reused_with_the_same_cache_key(tmp_path):
    """A history written before small values were kept inline has files for them (and
    ``seen`` in its rows): a run now reuses those runs, and its steps' cache keys are the
    ones they had."""
    import sqlite3
    from contextlib import closing

    home = tmp_path / "state"
    p = _metrics(home)
    first = p.start(display=False)
    p.workspace.history.settle()
    store = ArtifactStore(home / "artifacts")
    with closing(sqlite3.connect(home / "history.db")) as db, db:  # as an older version wrote it
        rows = db.execute("SELECT rowid, outputs FROM step_runs WHERE outputs IS NOT NULL").fetchall()
        for rowid, outputs in rows:
            doc = json.loads(outputs)
            for entry in doc.values():
                text = entry.pop("inline")
                store.backend[f"{entry['digest'][:2]}/{entry['digest']}"] = text.encode()
                entry["seen"] = None
            db.execute("UPDATE step_runs SET outputs = ? WHERE rowid = ?", (json.dumps(doc), rowid))
    assert len(_files(home / "artifacts")) == len(SMALL)

    again = _metrics(home).start(display=False)
    assert {s: r.status for s, r in again.steps.items()} == {"Train": "Cached", "Check": "Cached"}
    for step in ("Train", "Check"):
        assert again.steps[step].cache_key == first.steps[step].cache_key
    for (step, name), value in SMALL.items():
        ref = again.steps[step].refs[name]
        assert ref.digest == first.steps[step].refs[name].digest and ref.inline is None
        assert again.result(step, name) == value
    assert _metrics(home).doctor().healthy


@pytest.mark.parametrize(("value", "inline"), [
    ("x" * (INLINE_LIMIT - 2), True),    # '"xx...x"': exactly INLINE_LIMIT bytes
    ("x" * (INLINE_LIMIT - 1), False),   # one byte over
    (list(range(66)), True),             # 254 bytes of JSON
    (list(range(67)), False),            # 258
    ("é" * 42, True),                    # JSON escapes it: 254 bytes for 42 characters
    ("é" * 43, False),                   # 260 bytes: the limit counts bytes, not characters
], ids=["str-at-limit", "str-over", "list-under", "list-over", "escaped-under", "escaped-over"])
def test_a_value_over_the_inline_limit_gets_a_file(store, value, inline):
    ref = store.put(value)
    assert ref.size == len(encode(value)[1])
    assert (ref.size <= INLINE_LIMIT) is inline
    if inline:
        assert ref.inline is not None and list(store.backend) == []
    else:
        assert ref.inline is None and list(store.backend) == [ref.key]
        assert len(store.backend[ref.key]) == ref.size
    assert store.get(ref) == value
    assert ArtifactStore(store.location).get(ref) == value  # a fresh store at the same place


def test_a_step_output_just_over_the_inline_limit_is_a_file(tmp_path):
    home = tmp_path / "state"
    p = Pipeline("limit", home=home)
    p.add_step("Make", f"at = 'x' * {INLINE_LIMIT - 2}\nover = 'x' * {INLINE_LIMIT - 1}")
    ex = p.start(display=False)
    at, over = ex.steps["Make"].refs["at"], ex.steps["Make"].refs["over"]
    assert at.inline is not None and over.inline is None
    assert [f.name for f in _files(home / "artifacts")] == [over.digest]
    assert (home / "artifacts" / over.key).stat().st_size == over.size == INLINE_LIMIT + 1
    p.workspace.history.settle()
    rows = _outputs_of(home, ex.id)["Make"]
    assert "inline" in rows["at"] and "inline" not in rows["over"] and "seen" in rows["over"]
    again = Pipeline("limit", home=home)
    again.add_step("Make", f"at = 'x' * {INLINE_LIMIT - 2}\nover = 'x' * {INLINE_LIMIT - 1}")
    cached = again.start(display=False)
    assert cached.steps["Make"].status == "Cached"
    assert cached.result("Make", "over") == "x" * (INLINE_LIMIT - 1)
    assert cached.result("Make", "at") == "x" * (INLINE_LIMIT - 2)
