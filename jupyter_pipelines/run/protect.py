"""Cheap protected views of values, and `protect`, a view or a copy of anything.

Chosen by type, so that the common large values cost almost nothing:
- pandas objects: a shallow copy; with pandas' copy-on-write (the default from pandas 3) any
  change the step makes copies the data first, so the producer's value is untouched;
- numpy arrays: a read-only view (a step that writes into one gets a clear error);
- immutable scalars, strings, tuples of them: passed as they are;
- dicts, lists and sets of immutable values: a shallow copy.

Anything else (nested containers, models...) has no cheap view: `protect` deep-copies it (the
notebook's inspection copies of outputs, Dask workers), while the run loop lends the value
itself and checks it afterwards (`isolation`). ``benchmarks/overhead.py`` measures the views.
"""

from __future__ import annotations

import copy
import sys
from typing import Any

_IMMUTABLE = (int, float, complex, str, bytes, bool, type(None), frozenset, range)
NO_VIEW = object()  # what `cheap_view` returns for a value only a copy would protect


def cheap_view(value: Any) -> Any:
    """The cheap view of ``value`` a step may get, or `NO_VIEW` (numpy and pandas are looked up
    only if loaded)."""
    if isinstance(value, _IMMUTABLE):
        return value
    if isinstance(value, tuple) and all(isinstance(v, _IMMUTABLE) for v in value):
        return value
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.ndarray):
            view = value.view()
            view.flags.writeable = False
            return view
        if isinstance(value, np.generic):
            return value
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(value, (pd.DataFrame, pd.Series, pd.Index)):
        return value.copy(deep=not _copy_on_write(pd))
    if type(value) in (dict, list, set):  # flat containers of immutables: a shallow copy will do
        values = value.values() if type(value) is dict else value
        if all(isinstance(v, _IMMUTABLE) for v in values):
            return value.copy()
    return NO_VIEW


def protect(value: Any) -> Any:
    """A view or copy of ``value`` that shares no change with it: the cheap view, else a deep
    copy; a value that cannot be copied (open files, generators) is shared as is, documented."""
    view = cheap_view(value)
    if view is not NO_VIEW:
        return view
    try:
        return copy.deepcopy(value)
    except Exception:
        return value


def _copy_on_write(pd) -> bool:
    try:
        return int(pd.__version__.split(".")[0]) >= 3 or bool(pd.get_option("mode.copy_on_write"))
    except Exception:  # pragma: no cover - option missing in very old pandas
        return False
