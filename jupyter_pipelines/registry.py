"""The model registry: model package groups with numbered versions, in SQLite.

Lives in the state folder (``.jupyter_pipelines/registry.db`` in the working directory, or in
``$JUPYTER_PIPELINES_HOME``). Versions are 1, 2, 3... per group, assigned inside an immediate
(write-locked) transaction, so concurrent registrations, from threads or processes, never share
a number and never overwrite one another. Each version keeps its approval status, its metrics,
the model itself and its lineage: the execution and step that registered it and the digests of
the step's inputs.

Models are stored with `jupyter_pipelines.store.serialize.encode_model`: scikit-learn estimators
as skops (the artifact store keeps them as digest-checked pickles; a registry reader checks no
digest), which `load_model` rebuilds without unpickling (only scikit-learn, numpy and scipy
types are trusted); anything else falls back to cloudpickle, which `load_model` refuses unless
called with ``trusted=True``, since unpickling runs whatever code the pickle names.

    register(group, model, ...)            -> ModelPackage (the new version)
    list_groups() / list_packages(group)   -> names / ModelPackages
    describe(group, version)               -> ModelPackage
    approve(group, version) / reject(...)  -> the updated ModelPackage
    load_model(group, "latest" | "latest-approved" | N, trusted=False) -> the model

``version`` is a number (``3`` or ``"3"``), ``"latest"`` or ``"latest-approved"``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .registry_db import (
    _FIELDS,
    APPROVAL_STATUSES,
    DB_NAME,
    VERSION_ALIASES,
    ModelPackage,
    RegistryError,
    _db_path,
    _groups,
    _now,
    _open,
    _package,
    _select,
    _transaction,
    _unknown_group,
    _version_spec,
    default_home,
)

__all__ = ["APPROVAL_STATUSES", "DB_NAME", "VERSION_ALIASES", "ModelPackage", "RegistryError",
           "approve", "default_home", "describe", "digest_inputs", "list_groups", "list_packages",
           "load_model", "register", "reject", "update_approval_status"]


def _check_group(group: Any) -> None:
    """The register-model step's rule (`check_name`), so a group registered from Python is one
    a pipeline step (and SageMaker) can name too."""
    from .errors import NameRuleError
    from .parameters import check_name

    try:
        check_name(group, "Model package group")
    except NameRuleError as exc:
        empty = isinstance(group, str) and not group.strip()
        raise RegistryError(("A model package group must be a non-empty name. " if empty else "")
                            + str(exc)) from None


# -- the API --------------------------------------------------------------------------------

def register(group: str, model: Any, *, approval_status: str = "PendingManualApproval",
             metrics: Any = None, execution_id: str | None = None, step_name: str | None = None,
             home: Path | None = None, input_digests: Mapping[str, str] | None = None,
             ) -> ModelPackage:
    """Add a new version of ``model`` to ``group`` (created if new); returns its `ModelPackage`.

    ``metrics`` is any JSON value (numpy arrays and scalars become lists and numbers);
    ``execution_id``, ``step_name`` and ``input_digests`` (input name -> digest, see
    `digest_inputs`) record where the model came from.
    """
    from .store.serialize import SerializationError, encode_model

    _check_group(group)
    if approval_status not in APPROVAL_STATUSES:
        raise RegistryError(
            f"Approval status {approval_status!r} is not one of {list(APPROVAL_STATUSES)}."
        )
    digests = _check_digests(group, input_digests)
    try:
        fmt, blob = encode_model(model)  # skops: a registry reader checks no digest
    except SerializationError as exc:
        raise RegistryError(f"The model registered in group `{group}` {exc}.") from None
    try:
        metrics_json = json.dumps(metrics, default=_jsonable) if metrics is not None else None
    except (TypeError, ValueError) as exc:
        raise RegistryError(
            f"The metrics registered in group `{group}` cannot be stored as JSON: {exc}. Use "
            "numbers, strings, lists and dicts with string keys."
        ) from None
    digests_json = json.dumps(digests, sort_keys=True)
    created, model_type = _now(), _type_name(model)
    with _open(home, create=True) as conn, _transaction(conn):
        (version,) = conn.execute(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM model_packages "
            "WHERE model_package_group = ?", (group,)).fetchone()
        conn.execute(
            "INSERT INTO model_packages (model_package_group, version, approval_status, metrics, "
            "model, model_type, execution_id, step_name, created, model_format, input_digests, "
            "modified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (group, version, approval_status, metrics_json, blob, model_type, execution_id,
             step_name, created, fmt, digests_json, created))
    return _package((group, version, approval_status, metrics_json, execution_id, step_name,
                     created, model_type, fmt, digests_json, created))


def list_groups(*, home: Path | None = None) -> list[str]:
    """The model package groups in the registry, sorted."""
    with _open(home, create=False) as conn:
        return _groups(conn)


def list_packages(group: str | None = None, *, home: Path | None = None,
                  missing_ok: bool = True) -> list[ModelPackage]:
    """Every version (of ``group``, or of all groups), by group then version. An unknown
    ``group`` gives ``[]``, or a `RegistryError` with close matches if not ``missing_ok``."""
    sql, args = f"SELECT {_FIELDS} FROM model_packages", ()
    if group is not None:
        sql, args = sql + " WHERE model_package_group = ?", (group,)
    with _open(home, create=False) as conn:
        rows = conn.execute(sql + " ORDER BY model_package_group, version", args).fetchall() \
            if conn is not None else []
        if group is not None and not rows and not missing_ok:
            raise _unknown_group(conn, group, home)
    return [_package(row) for row in rows]


def describe(group: str, version: int | str = "latest", *, home: Path | None = None) -> ModelPackage:
    """The `ModelPackage` of ``group`` version ``version`` (a number, "latest" or
    "latest-approved")."""
    spec = _version_spec(version)
    with _open(home, create=False) as conn:
        return _package(_select(conn, group, spec, home))


def update_approval_status(group: str, version: int | str, status: str, *,
                           home: Path | None = None) -> ModelPackage:
    """Set the approval status of one version; returns the updated `ModelPackage`."""
    if status not in APPROVAL_STATUSES:
        raise RegistryError(f"Approval status {status!r} is not one of {list(APPROVAL_STATUSES)}.")
    spec = _version_spec(version)
    with _open(home, create=False) as conn:
        if conn is None:
            raise _unknown_group(None, group, home)
        with _transaction(conn):
            (number,) = _select(conn, group, spec, home, "version")
            conn.execute("UPDATE model_packages SET approval_status = ?, modified = ? "
                         "WHERE model_package_group = ? AND version = ?",
                         (status, _now(), group, number))
            row = _select(conn, group, number, home)
    return _package(row)


def approve(group: str, version: int | str, *, home: Path | None = None) -> ModelPackage:
    """Mark ``group`` version ``version`` Approved; returns the updated `ModelPackage`."""
    return update_approval_status(group, version, "Approved", home=home)


def reject(group: str, version: int | str, *, home: Path | None = None) -> ModelPackage:
    """Mark ``group`` version ``version`` Rejected; returns the updated `ModelPackage`."""
    return update_approval_status(group, version, "Rejected", home=home)


def load_model(group: str, version: int | str = "latest", *, home: Path | None = None,
               trusted: bool = False) -> Any:
    """Load a registered model: ``version`` is a number, ``"latest"`` or ``"latest-approved"``.

    scikit-learn models (stored with skops) are rebuilt from scikit-learn, numpy and scipy types
    only, never by unpickling. A model stored as a pickle (any other Python object) is refused
    unless ``trusted=True``: unpickling runs whatever code the pickle names, so only do it for
    a registry whose writers you trust. ``trusted=True`` also accepts other types in a skops file.
    """
    from .store.serialize import SerializationError, decode

    spec = _version_spec(version)
    with _open(home, create=False) as conn:
        number, fmt, type_name, blob = _select(conn, group, spec, home,
                                               "version, model_format, model_type, model")
    what = f"Model package `{group}` version {number} ({type_name})"
    if fmt == "pickle" and not trusted:
        raise RegistryError(
            f"{what} is stored as a pickle, and is not loaded by default: unpickling runs "
            "whatever code the pickle names, so anyone able to write to the registry at "
            f"{_db_path(home)} could run code in this process. If you trust it, load it with "
            f"load_model({group!r}, {number}, trusted=True). (scikit-learn models are stored "
            "with skops and load safely without this.)"
        )
    try:
        if fmt == "skops" and trusted:
            import skops.io as sio

            return sio.loads(blob, trusted=sio.get_untrusted_types(data=blob))
        return decode(fmt, blob)
    except SerializationError as exc:
        raise RegistryError(
            f"{what} cannot be loaded safely. {exc} Or, if you trust the registry, pass "
            "trusted=True to load_model."
        ) from None
    except Exception as exc:  # a pickle naming a module that is not installed, say
        raise RegistryError(
            f"{what} cannot be loaded: {type(exc).__name__}: {exc}. Install the packages it was "
            "made with, in compatible versions."
        ) from None


def digest_inputs(values: Mapping[str, Any]) -> dict[str, str]:
    """``{name: sha256}`` of each value as the artifact store would save it (its format and
    bytes), for `register`'s ``input_digests``. Values that cannot be serialised are left out.

    A register-model step gets the digests the store already computed (``__digests__``); this
    is the fallback (``persist=False``, or a call from Python), and costs one pickle of a model,
    not a skops encoding."""
    from .store.serialize import SerializationError, encode

    digests = {}
    for name, value in values.items():
        try:
            fmt, data = encode(value)
        except SerializationError:
            continue
        digests[str(name)] = hashlib.sha256(fmt.encode() + b"\0" + data).hexdigest()
    return digests


def _check_digests(group: str, digests: Mapping[str, str] | None) -> dict[str, str]:
    if digests is None:
        return {}
    if not isinstance(digests, Mapping):
        raise RegistryError(
            f"input_digests for group `{group}` must map input names to digests; got a "
            f"{type(digests).__name__}."
        )
    return {str(k): str(v) for k, v in digests.items()}


def _type_name(model: Any) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars alike
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
