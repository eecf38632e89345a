"""A value as pickle bytes: what `isolation` keeps of an output, compares after a step, and
puts back when the step changed it.

- `dumps`: plain pickle (protocol 5, the C pickler: about half the time of a deep copy) or,
  when it cannot, cloudpickle (notebook functions and classes).
- `equal`: two pickles of one value differ when only the sharing of equal immutable parts
  differs (an unpickled numpy scalar gets its own dtype object), so bytes that differ are
  compared again after one round trip each before a change is called.
- `put_back`: the value's state as pickled, put into the live object in place, recursively,
  so an object that other values hold too (a create-model step's entity holds the fitted
  model) comes back for all of them. Containers, plain numpy arrays and instances of classes
  written in Python are restored in place; anything else is replaced by a fresh copy in its
  parent, and the result is checked with `equal`.
"""

from __future__ import annotations

import pickle
import sys
from typing import Any

_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class written in Python (its state is in __dict__)


def dumps(value: Any, plain: bool | None = None) -> tuple[bytes, bool] | None:
    """(bytes, made by plain pickle): plain pickle first unless ``plain`` says which; None if
    the value cannot be pickled."""
    if plain is not False:
        try:
            return pickle.dumps(value, protocol=5), True
        except Exception:
            if plain:
                return None
    try:
        import cloudpickle

        return cloudpickle.dumps(value, protocol=5), False
    except Exception:
        return None


def equal(a: bytes, b: bytes, plain: bool) -> bool:
    """Do two pickles hold the same value (up to how equal immutable parts are shared)?"""
    if a == b:
        return True
    try:
        return _normal(a, plain) == _normal(b, plain)
    except Exception:
        return False


def _normal(data: bytes, plain: bool) -> bytes:
    made = dumps(pickle.loads(data), plain)
    if made is None:
        raise ValueError("cannot be pickled again")
    return made[0]


def put_back(target: Any, data: bytes, plain: bool) -> tuple[Any, bool]:
    """Make ``target`` the value pickled in ``data``: (the value to keep, restored in place).
    The value to keep is ``target`` itself when it could be restored in place, else a fresh
    unpickled copy (then only holders of the copy see the original)."""
    fresh = pickle.loads(data)
    kept = _restore(target, fresh, {})
    if kept is target:
        again = dumps(target, plain)
        if again is not None and equal(again[0], data, plain):
            return target, True
    return fresh, False


def _restore(target: Any, fresh: Any, seen: dict[int, Any]) -> Any:
    """``fresh``'s state in ``target`` where it can be; returns what stands for ``fresh``."""
    if type(target) is not type(fresh) or isinstance(target, type):
        return fresh
    if id(target) in seen:
        return seen[id(target)]
    seen[id(target)] = target
    if type(target) is tuple:  # immutable, but what it holds may be restored in place
        items = tuple(_restore(t, f, seen) for t, f in zip(target, fresh, strict=False))
        kept = target if all(a is b for a, b in zip(items, target, strict=False)) else items
        seen[id(target)] = kept = kept if len(target) == len(fresh) else fresh
        return kept
    try:
        done = _restore_contents(target, fresh, seen)
    except Exception:
        done = False
    if not done:
        seen[id(target)] = fresh
        return fresh
    return target


def _restore_contents(target: Any, fresh: Any, seen: dict[int, Any]) -> bool:
    np = sys.modules.get("numpy")
    if np is not None and isinstance(target, (np.ndarray, np.generic)):
        if (type(target) is not np.ndarray or target.dtype.hasobject
                or target.shape != fresh.shape or target.dtype != fresh.dtype
                or not target.flags.writeable):
            return False
        target[...] = fresh
        return True
    if "pandas" in type(target).__module__:  # state beyond __dict__ (managers, weak refs)
        return False
    if isinstance(target, dict):
        items = {k: (_restore(target[k], v, seen) if k in target else v) for k, v in fresh.items()}
        target.clear()
        target.update(items)
    elif isinstance(target, list):
        items = [_restore(t, f, seen) for t, f in zip(target, fresh, strict=False)]
        target[:] = items + list(fresh[len(target):])
    elif isinstance(target, (set, bytearray)):
        if isinstance(target, set):
            target.clear()
            target.update(fresh)
        else:
            target[:] = fresh
    elif not all(cls.__flags__ & _HEAPTYPE for cls in type(target).__mro__[:-1]):
        return False  # an extension type (or a Python subclass of one): hidden state
    state = getattr(target, "__dict__", None)
    if isinstance(state, dict):
        old = dict(state)
        new = {k: (_restore(old[k], v, seen) if k in old else v) for k, v in vars(fresh).items()}
        state.clear()
        state.update(new)
    for cls in type(target).__mro__:
        slots = getattr(cls, "__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            if slot in ("__dict__", "__weakref__"):
                continue
            if hasattr(fresh, slot):
                now = getattr(target, slot) if hasattr(target, slot) else None
                object.__setattr__(target, slot, _restore(now, getattr(fresh, slot), seen))
            elif hasattr(target, slot):
                object.__delattr__(target, slot)
    return True
