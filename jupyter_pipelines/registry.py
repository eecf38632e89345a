"""The model registry: model package groups with numbered versions, in SQLite.

Lives in the state folder (``.jupyter_pipelines/registry.db`` in the working directory, or in
``$JUPYTER_PIPELINES_HOME``). Versions are 1, 2, 3... per group, assigned inside an immediate
(write-locked) transaction, so concurrent registrations, from threads or processes, never share
a number and never overwrite one another. Each version keeps its approval status, its metrics,
the model itself and its lineage: the execution and step that registered it and the digests of
the step's inputs.

Models are stored with `jupyter_pipelines.store.serialize.encode`: scikit-learn estimators as
skops, which `load_model` rebuilds without unpickling (only scikit-learn, numpy and scipy types
are trusted); anything else falls back to cloudpickle, which `load_model` refuses unless called
with ``trusted=True``, since unpickling runs whatever code the pickle names.

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
import numbers
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import PipelineError, did_you_mean

APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")
VERSION_ALIASES = ("latest", "latest-approved")
DB_NAME = "registry.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS model_packages (
    model_package_group TEXT NOT NULL,
    version INTEGER NOT NULL,
    approval_status TEXT NOT NULL,
    metrics TEXT,
    model BLOB NOT NULL,
    model_type TEXT NOT NULL,
    execution_id TEXT,
    step_name TEXT,
    created TEXT NOT NULL,
    model_format TEXT NOT NULL DEFAULT 'pickle',
    input_digests TEXT,
    modified TEXT,
    PRIMARY KEY (model_package_group, version)
)
"""

# Columns added since the first schema, added to older databases when they are opened. Rows
# written before `model_format` existed were plain pickles.
_ADDED_COLUMNS = {
    "model_format": "TEXT NOT NULL DEFAULT 'pickle'",
    "input_digests": "TEXT",
    "modified": "TEXT",
}

_FIELDS = ("model_package_group, version, approval_status, metrics, execution_id, step_name, "
           "created, model_type, model_format, input_digests, modified")


class RegistryError(PipelineError):
    pass


def default_home() -> Path:
    return Path(os.environ.get("JUPYTER_PIPELINES_HOME") or Path.cwd() / ".jupyter_pipelines")


@dataclass(frozen=True)
class ModelPackage:
    """One version of a model package group (without the model: see `load_model`)."""

    group: str
    version: int
    approval_status: str
    metrics: Any
    execution_id: str | None
    step_name: str | None
    created: str
    model_type: str
    # added later: defaults keep packages pickled by older versions loadable
    model_format: str = "pickle"
    input_digests: dict | None = None
    modified: str | None = None

    def describe(self) -> dict:
        """SageMaker's DescribeModelPackage fields, plus the lineage."""
        return {
            "ModelPackageGroupName": self.group,
            "ModelPackageVersion": self.version,
            "ModelApprovalStatus": self.approval_status,
            "ModelMetrics": self.metrics,
            "CreationTime": self.created,
            "LastModifiedTime": self.modified or self.created,
            "PipelineExecutionArn": self.execution_id,
            "StepName": self.step_name,
            "InputDigests": dict(self.input_digests or {}),
            "ModelType": self.model_type,
            "ModelFormat": self.model_format,
        }

    def summary(self) -> dict:
        """SageMaker's ModelPackageSummary fields (as in ListModelPackages), plus the lineage."""
        doc = self.describe()
        return {k: doc[k] for k in ("ModelPackageGroupName", "ModelPackageVersion",
                                    "ModelApprovalStatus", "CreationTime", "PipelineExecutionArn",
                                    "StepName", "ModelType", "ModelFormat")}

    def to_text(self) -> str:
        """``Field: value`` lines, as `jupyter-pipelines registry describe` prints them."""
        lines = []
        for key, value in self.describe().items():
            if key == "InputDigests":
                lines.append(f"{key}:" + ("" if value else " -"))
                lines.extend(f"  {name}: {digest}" for name, digest in value.items())
            elif key == "ModelMetrics" and value is not None:
                lines.append(f"{key}: {json.dumps(value, default=str)}")
            else:
                lines.append(f"{key}: {'-' if value is None else value}")
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle) -> None:  # IPython shows every field
        p.text(self.to_text())

    def __repr__(self) -> str:
        return (f"ModelPackage(group={self.group!r}, version={self.version}, "
                f"approval_status={self.approval_status!r})")


# -- the database ---------------------------------------------------------------------------

def _db_path(home: str | os.PathLike | None) -> Path:
    return (Path(home) if home else default_home()) / DB_NAME


@contextmanager
def _open(home, *, create: bool) -> Iterator[sqlite3.Connection | None]:
    """A connection to the registry (``None`` if it does not exist and ``create`` is false),
    with the schema created and older databases migrated."""
    path = _db_path(home)
    if not create and not path.exists():
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=30, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(_SCHEMA)
        _migrate(conn)
        yield conn


def _migrate(conn: sqlite3.Connection) -> None:
    """Add the columns an older registry lacks; under the write lock, so two processes opening
    the same old database do not both add them."""
    if set(_ADDED_COLUMNS) <= _columns(conn):
        return
    with _transaction(conn):
        have = _columns(conn)
        for name, decl in _ADDED_COLUMNS.items():
            if name not in have:
                conn.execute(f"ALTER TABLE model_packages ADD COLUMN {name} {decl}")


def _columns(conn: sqlite3.Connection) -> set[str]:
    return {row[1] for row in conn.execute("PRAGMA table_info(model_packages)")}


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE takes the write lock before reading, so read-then-write is atomic."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _package(row: tuple) -> ModelPackage:
    g, v, s, m, e, st, c, t, fmt, digests, modified = row
    return ModelPackage(g, v, s, json.loads(m) if m is not None else None, e, st, c, t,
                        fmt or "pickle", json.loads(digests) if digests else {}, modified)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


# -- versions -------------------------------------------------------------------------------

def _version_spec(version: int | str) -> int | str:
    """A version number, ``"latest"`` or ``"latest-approved"``; anything else is an error."""
    if isinstance(version, numbers.Integral) and not isinstance(version, bool):
        number = int(version)
    elif isinstance(version, str) and version.strip() in VERSION_ALIASES:
        return version.strip()
    elif isinstance(version, str) and version.strip().isdigit():
        number = int(version.strip())
    else:
        raise RegistryError(
            f"Model version {version!r} is not a version: use a version number (1, 2, ...), "
            "'latest' or 'latest-approved'."
        )
    if number < 1:
        raise RegistryError(f"Model version {number} does not exist: versions start at 1.")
    return number


def _select(conn: sqlite3.Connection | None, group: str, spec: int | str, home,
            fields: str = _FIELDS) -> tuple:
    """The row of ``group`` version ``spec``, or a `RegistryError` naming what does exist."""
    where, args = "model_package_group = ?", [group]
    if spec == "latest-approved":
        where += " AND approval_status = 'Approved'"
    elif spec != "latest":
        where += " AND version = ?"
        args.append(spec)
    row = None
    if conn is not None:
        row = conn.execute(f"SELECT {fields} FROM model_packages WHERE {where} "
                           "ORDER BY version DESC LIMIT 1", args).fetchone()
    if row is None:
        raise _not_found(conn, group, spec, home)
    return row


def _not_found(conn: sqlite3.Connection | None, group: str, spec: int | str, home) -> RegistryError:
    versions = []
    if conn is not None:
        versions = conn.execute("SELECT version, approval_status FROM model_packages WHERE "
                                "model_package_group = ? ORDER BY version", (group,)).fetchall()
    if not versions:
        return _unknown_group(conn, group, home)
    if spec == "latest-approved":
        listed = ", ".join(f"{v} ({s})" for v, s in versions)
        return RegistryError(
            f"Model package group `{group}` has no Approved version, so there is no "
            f"'latest-approved' model: its versions are {listed}. Approve one with "
            f"`%registry approve {group} VERSION`, `jupyter-pipelines registry approve {group} "
            f"VERSION` or jupyter_pipelines.registry.approve({group!r}, VERSION)."
        )
    return RegistryError(
        f"Model package group `{group}` has no version {spec}; its versions are "
        f"{_ranges([v for v, _ in versions])}."
    )


def _unknown_group(conn: sqlite3.Connection | None, group: str, home) -> RegistryError:
    groups = _groups(conn)
    where = f"the registry at {_db_path(home)}"
    if not groups:
        return RegistryError(
            f"No model package group `{group}`: {where} is empty. Models are added by a "
            "register-model step or by jupyter_pipelines.registry.register()."
        )
    hint = did_you_mean(group, groups)
    same_but_case = [g for g in groups if g.lower() == group.lower()]
    if not hint and same_but_case:
        hint = " Did you mean " + " or ".join(f"`{g}`" for g in same_but_case) + "?"
    return RegistryError(
        f"No model package group `{group}` in {where}.{hint} Its groups "
        f"are {', '.join(f'`{g}`' for g in groups)}."
    )


def _groups(conn: sqlite3.Connection | None) -> list[str]:
    if conn is None:
        return []
    return [g for (g,) in conn.execute("SELECT DISTINCT model_package_group FROM model_packages "
                                       "ORDER BY model_package_group")]


def _ranges(numbers_: list[int]) -> str:
    """``1 to 3, 5`` for [1, 2, 3, 5]."""
    parts, start = [], None
    for i, n in enumerate(numbers_):
        if start is None:
            start = n
        if i + 1 == len(numbers_) or numbers_[i + 1] != n + 1:
            parts.append(str(n) if n == start else f"{start} to {n}")
            start = None
    return ", ".join(parts)


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
    from .store.serialize import SerializationError, encode

    if not isinstance(group, str) or not group.strip():
        raise RegistryError(f"A model package group must be a non-empty name; got {group!r}.")
    if approval_status not in APPROVAL_STATUSES:
        raise RegistryError(
            f"Approval status {approval_status!r} is not one of {list(APPROVAL_STATUSES)}."
        )
    digests = _check_digests(group, input_digests)
    try:
        fmt, blob = encode(model)
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
    bytes), for `register`'s ``input_digests``. Values that cannot be serialised are left out."""
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
