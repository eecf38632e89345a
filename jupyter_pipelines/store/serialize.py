"""Turning step outputs into bytes and back, by type:

========================  ===============  ================================================
value                     format           how
========================  ===============  ================================================
pandas DataFrame/Series   parquet          pyarrow (a Series as a one-column frame)
numpy array               npy              ``numpy.save`` without pickle
JSON values               json             dicts with str keys, lists, str, int, float, bool, None
anything else             pickle           cloudpickle, protocol 5, padding bytes zeroed
(registry models)         skops            `encode_model`: loadable without unpickling
========================  ===============  ================================================

The store keeps scikit-learn estimators as pickles: every read is checked against the digest
the history recorded before it is decoded (see `artifacts`), so a pickle is only loaded if its
bytes are the ones the step wrote, and a pickle costs ~1/150 of a canonical skops file (2 ms
against 310 ms for a 200-tree gradient boosting model). skops is kept where a model leaves the
store: the model registry (`encode_model`), whose readers do not check a digest. ``skops``
artifacts written before still decode, with the same type audit.

Equal values must give equal bytes (content addressing, and downstream cache hits after a
re-fit): the pickler zeroes the padding bytes of numpy structured arrays (a tree's nodes), which
are uninitialised memory unless the library zeroed them. A value a typed format cannot hold (a
DataFrame with non-string column names, an object array) falls back to pickle; one that
cloudpickle cannot hold either raises `SerializationError` naming what it is.
"""

from __future__ import annotations

import functools
import io
import json
import math
import sys
from typing import Any

from ..errors import PipelineError

# Types skops may rebuild: classes of the scientific stack, never functions or builtins.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.")


class SerializationError(PipelineError):
    pass


def encode(value: Any) -> tuple[str, bytes]:
    """``(format, bytes)`` for ``value`` in the artifact store."""
    for fmt, test, dump in _ENCODERS:
        if test(value):
            try:
                return fmt, dump(value)
            except Exception:  # the typed format cannot hold this one: try the next
                continue
    try:
        return "pickle", dumps_pickle(value)
    except Exception as exc:
        raise SerializationError(
            f"cannot be saved: a {type(value).__module__}.{type(value).__qualname__} is not "
            f"serialisable ({type(exc).__name__}: {exc})"
        ) from None


def encode_model(value: Any) -> tuple[str, bytes]:
    """``(format, bytes)`` for a model leaving the store (the registry): a scikit-learn
    estimator as skops, so it loads without unpickling; anything else as `encode` does."""
    if _is_estimator(value):
        try:
            return "skops", _dump_skops(value)
        except Exception:  # types skops would not load safely: the registry's pickle rule
            pass
    return encode(value)


def dumps_pickle(value: Any) -> bytes:
    """cloudpickle (classes that can be imported are named, not copied: the same bytes as
    ``pickle.dumps``), protocol 5, with structured arrays' padding zeroed."""
    buffer = io.BytesIO()
    _pickler_class()(buffer, protocol=5).dump(value)
    return buffer.getvalue()


def decode(fmt: str, data: bytes) -> Any:
    if fmt == "json":
        return json.loads(data)
    if fmt == "npy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if fmt in ("parquet", "parquet-series"):
        import pandas as pd

        frame = pd.read_parquet(io.BytesIO(data))
        if fmt == "parquet-series":
            series = frame.iloc[:, 0]
            return series.rename(None) if series.name == "__series__" else series
        return frame
    if fmt == "skops":  # what the store wrote for estimators before pickles; the registry
        import skops.io as sio

        untrusted = sio.get_untrusted_types(data=data)
        unknown = [t for t in untrusted if not trusted_type(t)]
        if unknown:
            raise SerializationError(
                f"The stored model uses types outside the scientific stack ({', '.join(unknown)}); "
                "they are not loaded automatically, since that could run arbitrary code. Load it "
                "with skops.io.loads(data, trusted=[...]) after checking them."
            )
        return sio.loads(data, trusted=untrusted)
    if fmt == "pickle":
        import cloudpickle

        return cloudpickle.loads(data)
    raise SerializationError(f"Unknown artifact format {fmt!r}.")


_PICKLER = None


def _pickler_class():
    global _PICKLER
    if _PICKLER is None:
        import cloudpickle

        class Pickler(cloudpickle.CloudPickler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self._zeroed = []  # keeps the copies alive: the memo is keyed by id()

            def reducer_override(self, obj):
                if _has_padding(obj):
                    clean = _without_padding(obj)
                    self._zeroed.append(clean)
                    return clean.__reduce_ex__(5)
                return super().reducer_override(obj)

        _PICKLER = Pickler
    return _PICKLER


def _has_padding(obj: Any) -> bool:
    np = sys.modules.get("numpy")  # no numpy loaded: no numpy array to look at
    if np is None or type(obj) is not np.ndarray:
        return False
    return obj.dtype.names is not None and not obj.dtype.hasobject and _has_gaps(obj.dtype)


@functools.lru_cache(maxsize=256)
def _has_gaps(dtype) -> bool:
    """Bytes of a record no field covers (alignment padding), also inside nested records."""
    if dtype.names is None:
        return dtype.subdtype is not None and _has_gaps(dtype.subdtype[0])
    covered = bytearray(dtype.itemsize)
    for name in dtype.names:
        field, offset = dtype.fields[name][:2]
        if _has_gaps(field):
            return True
        covered[offset:offset + field.itemsize] = b"\1" * field.itemsize
    return not all(covered)


def _without_padding(array):
    """A copy of a structured array in zeroed memory, field by field (a whole-record copy
    would carry the padding along)."""
    import numpy as np

    clean = np.zeros(array.shape, dtype=array.dtype)
    _copy_fields(clean, array)
    return clean


def _copy_fields(target, source) -> None:
    for name in source.dtype.names:
        if source.dtype[name].names is not None:  # a nested record: its own padding stays 0
            _copy_fields(target[name], source[name])
        else:
            target[name] = source[name]


def trusted_type(name: str) -> bool:
    """A class (not a function) from sklearn, numpy or scipy."""
    import importlib

    if not name.startswith(TRUSTED_PREFIXES):
        return False
    module, _, attr = name.rpartition(".")
    try:
        return isinstance(getattr(importlib.import_module(module), attr), type)
    except (ImportError, AttributeError):
        return False


def _is_json(value: Any, depth: int = 0) -> bool:
    if depth > 50:
        return False
    if value is None or type(value) in (str, bool, int):  # exact types: enums, numpy scalars
        return True                                        # keep their own type via pickle
    if type(value) is float:
        return math.isfinite(value)
    if type(value) is list:
        return all(_is_json(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _is_json(v, depth + 1) for k, v in value.items())
    return False


def _module(value: Any) -> str:
    return type(value).__module__.split(".")[0]


def _dump_parquet(value):
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()  # no copy out of a BytesIO: pyarrow's own buffer
    pq.write_table(pa.Table.from_pandas(value, preserve_index=True), sink)
    return memoryview(sink.getvalue())


def _dump_series(value) -> bytes:
    return _dump_parquet(value.to_frame(name="__series__" if value.name is None else value.name))


def _dump_npy(value) -> bytes:
    import numpy as np

    if _has_padding(value):  # equal structured arrays, equal bytes (as in a pickle)
        value = _without_padding(value)
    buffer = io.BytesIO()
    np.save(buffer, value, allow_pickle=False)
    return buffer.getvalue()


def _is_estimator(value: Any) -> bool:
    if _module(value) != "sklearn" and not hasattr(value, "get_params"):
        return False
    try:
        from sklearn.base import BaseEstimator
    except ImportError:  # pragma: no cover
        return False
    return isinstance(value, BaseEstimator)


def _dump_skops(value) -> bytes:
    import skops.io as sio

    data = _canonical_skops(sio.dumps(value))
    if not all(trusted_type(t) for t in sio.get_untrusted_types(data=data)):
        raise ValueError("holds types skops would not load safely")  # -> cloudpickle instead
    return data


def _canonical_skops(data: bytes) -> bytes:
    """The same model always gives the same bytes: skops names objects by ``id()`` and stamps
    the time, so object ids are renumbered in order and timestamps fixed."""
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(data))
    schema = json.loads(source.read("schema.json"))
    ids: dict[int, int] = {}

    def renumber(node):
        if isinstance(node, dict):
            if "__id__" in node:
                node["__id__"] = ids.setdefault(node["__id__"], len(ids) + 1)
            if isinstance(node.get("file"), str) and node["file"].endswith(".npy"):
                old = int(node["file"][:-4])
                node["file"] = f"{ids.setdefault(old, len(ids) + 1)}.npy"
            for value in node.values():
                renumber(value)
        elif isinstance(node, list):
            for value in node:
                renumber(value)

    renumber(schema)
    members = {}
    for name in source.namelist():
        if name != "schema.json":
            new = f"{ids.setdefault(int(name[:-4]), len(ids) + 1)}.npy" if name.endswith(".npy") else name
            members[new] = _zero_padding(source.read(name)) if name.endswith(".npy") else source.read(name)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for name in sorted(members, key=lambda n: (len(n), n)):
            target.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), members[name])
        target.writestr(zipfile.ZipInfo("schema.json", (1980, 1, 1, 0, 0, 0)),
                        json.dumps(schema, sort_keys=True))
    return out.getvalue()


def _zero_padding(npy: bytes) -> bytes:
    """Structured arrays (e.g. a tree's nodes) carry uninitialised padding bytes: copy the
    fields into zeroed memory so equal arrays give equal bytes."""
    import numpy as np

    try:
        array = np.load(io.BytesIO(npy), allow_pickle=False)
    except ValueError:
        return npy
    return _dump_npy(array) if _has_padding(array) else npy


def _is_frame(value: Any) -> bool:  # parquet keeps only string column names faithfully
    return (_module(value) == "pandas" and type(value).__name__ == "DataFrame"
            and all(isinstance(c, str) for c in value.columns))


def _is_series(value: Any) -> bool:
    return (_module(value) == "pandas" and type(value).__name__ == "Series"
            and (value.name is None or (isinstance(value.name, str) and value.name != "__series__")))


_ENCODERS = [
    ("json", _is_json, lambda v: json.dumps(v, allow_nan=False).encode()),
    ("parquet", _is_frame, _dump_parquet),
    ("parquet-series", _is_series, _dump_series),
    ("npy", lambda v: _module(v) == "numpy" and type(v).__name__ == "ndarray", _dump_npy),
]
