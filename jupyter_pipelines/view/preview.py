"""Short previews of step inputs and outputs for the details panel."""

from __future__ import annotations

import json
import reprlib
from typing import Any

_repr = reprlib.Repr()
_repr.maxstring, _repr.maxother, _repr.maxlist, _repr.maxdict = 300, 300, 20, 20


def type_name(value: Any) -> str:
    kind = type(value)
    module = kind.__module__.split(".")[0]
    return kind.__name__ if module == "builtins" else f"{module}.{kind.__name__}"


def preview(value: Any) -> dict:
    """``{"type": ..., "summary": ..., "html"|"text": ...}`` for one value."""
    out = {"type": type_name(value)}
    try:
        import pandas as pd

        if isinstance(value, pd.DataFrame):
            out["summary"] = f"{value.shape[0]:,} rows × {value.shape[1]} columns"
            out["html"] = value.head(5).to_html(max_cols=10, border=0, float_format=_short)
            return out
        if isinstance(value, pd.Series):
            out["summary"] = f"{len(value):,} values, dtype {value.dtype}"
            out["html"] = value.head(5).to_frame().to_html(border=0, float_format=_short)
            return out
    except ImportError:  # pragma: no cover
        pass
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "dtype"):
        out["summary"] = f"shape {tuple(shape)}, dtype {value.dtype}"
        out["text"] = _repr.repr(value)
        return out
    if isinstance(value, (dict, list)):
        try:
            text = json.dumps(value, indent=2, default=repr)
        except (TypeError, ValueError):
            text = _repr.repr(value)
        noun = "key" if isinstance(value, dict) else "item"
        out["summary"] = f"{len(value)} {noun}{'' if len(value) == 1 else 's'}"
        out["text"] = text if len(text) <= 3000 else text[:3000] + "\n…"
        return out
    out["text"] = repr(value) if len(repr(value)) <= 3000 else _repr.repr(value)
    return out


def _short(x: float) -> str:
    return f"{x:.4g}"
