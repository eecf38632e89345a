"""SQLite plumbing of the model registry: schema and migration, locked transactions, rows
as `ModelPackage` values, and the errors that name what exists. The API is in `registry`."""

from __future__ import annotations

import json
import numbers
import os
import sqlite3
from collections.abc import Iterator
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


def default_home(beside: str | os.PathLike | None = None) -> Path:
    """The state folder: ``$JUPYTER_PIPELINES_HOME``, else ``.jupyter_pipelines/`` in
    ``beside`` (a notebook's folder) or the working directory. The one place this rule lives."""
    home = os.environ.get("JUPYTER_PIPELINES_HOME", "").strip()
    return Path(home).expanduser() if home else Path(beside or Path.cwd()) / ".jupyter_pipelines"


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
    with the schema created and older databases migrated; read-only where the folder is (then
    only reading works). SQLite faults become a `StateError` naming the file."""
    from .store.state import connect, ensure_folder, guarded

    path = _db_path(home)
    if not create and not path.exists():
        yield None
        return
    ensure_folder(path.parent)
    conn, read_only = connect(path, "registry")
    with closing(conn), guarded(path, "registry"):
        if not read_only:
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
