"""Turning step outputs into bytes and back, by type:

========================  =========  =====================================================
value                     format     how
========================  =========  =====================================================
pandas DataFrame/Series   parquet    pyarrow (a Series as a one-column frame)
numpy array               npy        ``numpy.save`` without pickle
JSON values               json       dicts with str keys, lists, str, int, float, bool, None
scikit-learn estimator    skops      loadable without unpickling arbitrary code
anything else             pickle     cloudpickle
========================  =========  =====================================================

A value a typed format cannot hold (a DataFrame with non-string column names, an object
array) falls back to cloudpickle; one that cloudpickle cannot hold either raises
`SerializationError` naming what it is.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

from ..errors import PipelineError

# Types skops may rebuild: classes of the scientific stack, never functions or builtins.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.")


class SerializationError(PipelineError):
    pass


def encode(value: Any) -> tuple[str, bytes]:
    """``(format, bytes)`` for ``value``."""
    for fmt, test, dump in _ENCODERS:
        if test(value):
            try:
                return fmt, dump(value)
            except Exception:  # the typed format cannot hold this one: try the next
                continue
    try:
        import cloudpickle

        return "pickle", cloudpickle.dumps(value)
    except Exception as exc:
        raise SerializationError(
            f"cannot be saved: a {type(value).__module__}.{type(value).__qualname__} is not "
            f"serialisable ({type(exc).__name__}: {exc})"
        ) from None


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
    if fmt == "skops":
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
    if array.dtype.names is None:
        return npy
    clean = np.zeros(array.shape, dtype=array.dtype)
    for field in array.dtype.names:
        clean[field] = array[field]
    return _dump_npy(clean)


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
    ("skops", _is_estimator, _dump_skops),
]
