"""The model registry: model package groups with numbered versions, in SQLite.

Lives in the state folder (``.jupyter_pipelines/`` in the working directory, or
``$JUPYTER_PIPELINES_HOME``). Versions are 1, 2, 3... per group, assigned inside an immediate
transaction so concurrent registrations never share a number. Each version keeps its approval
status, metrics, the model itself and which execution and step produced it.
"""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import PipelineError

APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")

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
    PRIMARY KEY (model_package_group, version)
)
"""


class RegistryError(PipelineError):
    pass


def default_home() -> Path:
    return Path(os.environ.get("JUPYTER_PIPELINES_HOME") or Path.cwd() / ".jupyter_pipelines")


@dataclass(frozen=True)
class ModelPackage:
    group: str
    version: int
    approval_status: str
    metrics: Any
    execution_id: str | None
    step_name: str | None
    created: str
    model_type: str

    def describe(self) -> dict:
        return {
            "ModelPackageGroupName": self.group, "ModelPackageVersion": self.version,
            "ModelApprovalStatus": self.approval_status, "ModelMetrics": self.metrics,
            "PipelineExecutionArn": self.execution_id, "StepName": self.step_name,
            "CreationTime": self.created, "ModelType": self.model_type,
        }

    def __repr__(self) -> str:
        return (f"ModelPackage(group={self.group!r}, version={self.version}, "
                f"approval_status={self.approval_status!r})")


def _connect(home: Path | None) -> sqlite3.Connection:
    home = Path(home) if home else default_home()
    home.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(home / "registry.db", timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(_SCHEMA)
    return conn


def register(group: str, model: Any, *, approval_status: str = "PendingManualApproval",
             metrics: Any = None, execution_id: str | None = None, step_name: str | None = None,
             home: Path | None = None) -> ModelPackage:
    """Add a new version of ``model`` to ``group``; returns the `ModelPackage`."""
    if approval_status not in APPROVAL_STATUSES:
        raise RegistryError(
            f"Approval status {approval_status!r} is not one of {list(APPROVAL_STATUSES)}."
        )
    try:
        blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        metrics_json = json.dumps(metrics, default=_jsonable) if metrics is not None else None
    except (pickle.PicklingError, TypeError, AttributeError, ValueError) as exc:
        raise RegistryError(
            f"The model or metrics registered in group `{group}` cannot be stored: {exc}."
        ) from None
    created = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    with closing(_connect(home)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            (version,) = conn.execute(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM model_packages "
                "WHERE model_package_group = ?", (group,)).fetchone()
            conn.execute(
                "INSERT INTO model_packages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (group, version, approval_status, metrics_json, blob, _type_name(model),
                 execution_id, step_name, created))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return ModelPackage(group, version, approval_status, metrics, execution_id, step_name,
                        created, _type_name(model))


def list_packages(group: str | None = None, *, home: Path | None = None) -> list[ModelPackage]:
    sql = ("SELECT model_package_group, version, approval_status, metrics, execution_id, "
           "step_name, created, model_type FROM model_packages")
    args: tuple = ()
    if group is not None:
        sql += " WHERE model_package_group = ?"
        args = (group,)
    with closing(_connect(home)) as conn:
        rows = conn.execute(sql + " ORDER BY model_package_group, version", args).fetchall()
    return [ModelPackage(g, v, s, json.loads(m) if m else None, e, st, c, t)
            for g, v, s, m, e, st, c, t in rows]


def load_model(group: str, version: int | str = "latest", *, home: Path | None = None) -> Any:
    """Load a registered model: ``version`` is a number, ``"latest"`` or ``"latest-approved"``."""
    where, args = "model_package_group = ?", [group]
    if version == "latest-approved":
        where += " AND approval_status = 'Approved'"
    elif version != "latest":
        where += " AND version = ?"
        args.append(int(version))
    with closing(_connect(home)) as conn:
        row = conn.execute(
            f"SELECT model FROM model_packages WHERE {where} ORDER BY version DESC LIMIT 1", args
        ).fetchone()
    if row is None:
        known = sorted({p.group for p in list_packages(home=home)})
        raise RegistryError(
            f"No model version {version!r} in model package group `{group}`. Groups in the "
            f"registry: {known or 'none'}."
        )
    return pickle.loads(row[0])


def _type_name(model: Any) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars alike
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
