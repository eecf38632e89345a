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

# Types skops may rebuild: the scientific stack's own classes, never arbitrary code.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.", "_operator.")


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
        unknown = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
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


def _is_json(value: Any, depth: int = 0) -> bool:
    if depth > 50:
        return False
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if type(value) is list:
        return all(_is_json(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _is_json(v, depth + 1) for k, v in value.items())
    return False


def _module(value: Any) -> str:
    return type(value).__module__.split(".")[0]


def _dump_parquet(value) -> bytes:
    buffer = io.BytesIO()
    value.to_parquet(buffer, engine="pyarrow", index=True)
    return buffer.getvalue()


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

    return sio.dumps(value)


def _is_frame(value: Any) -> bool:  # parquet keeps only string column names faithfully
    return (_module(value) == "pandas" and type(value).__name__ == "DataFrame"
            and all(isinstance(c, str) for c in value.columns))


def _is_series(value: Any) -> bool:
    return (_module(value) == "pandas" and type(value).__name__ == "Series"
            and (value.name is None or isinstance(value.name, str)))


_ENCODERS = [
    ("json", _is_json, lambda v: json.dumps(v, allow_nan=False).encode()),
    ("parquet", _is_frame, _dump_parquet),
    ("parquet-series", _is_series, _dump_series),
    ("npy", lambda v: _module(v) == "numpy" and type(v).__name__ == "ndarray", _dump_npy),
    ("skops", _is_estimator, _dump_skops),
]
