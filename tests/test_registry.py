"""The model registry through its three doors: the Python API (`jupyter_pipelines.registry`),
``jupyter-pipelines registry ...`` and ``%registry``; plus safe loading, lineage, concurrent
registration from two processes and migration of an older database."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pickle
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError
from sklearn.base import BaseEstimator
from sklearn.linear_model import LinearRegression

from jupyter_pipelines import registry, registry_cli
from jupyter_pipelines.errors import PipelineError
from jupyter_pipelines.registry import RegistryError
from jupyter_pipelines.registry_magics import RegistryMagics

from .conftest import run_cell

X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 10.0]})


def fitted(slope: float = 3.0, intercept: float = 1.0) -> LinearRegression:
    return LinearRegression().fit(X, slope * X["x"] + intercept)


class Doubler:
    """A model that is not a scikit-learn estimator: it can only be stored as a pickle."""

    def predict(self, rows):
        return [2 * r for r in rows]


class HandMade(BaseEstimator):
    """A scikit-learn estimator of a type skops does not trust by default."""

    def __init__(self, factor: float = 2.0):
        self.factor = factor

    def predict(self, rows):
        return np.asarray(rows) * self.factor


@pytest.fixture
def home(tmp_path) -> Path:
    return Path(os.environ["JUPYTER_PIPELINES_HOME"])


# -- the Python API -------------------------------------------------------------------------

def test_versions_count_per_group_and_approval_changes(home):
    packages = [registry.register("Models", fitted(), metrics={"mse": i / 10}) for i in range(3)]
    assert [p.version for p in packages] == [1, 2, 3]
    assert registry.register("Other", fitted()).version == 1
    assert registry.list_groups() == ["Models", "Other"]
    assert [p.version for p in registry.list_packages("Models")] == [1, 2, 3]
    assert [(p.group, p.version) for p in registry.list_packages()] == [
        ("Models", 1), ("Models", 2), ("Models", 3), ("Other", 1)]
    assert registry.list_packages("Nothing") == []

    approved = registry.approve("Models", 2)
    assert approved.approval_status == "Approved" and approved.version == 2
    rejected = registry.reject("Models", "3")  # a version given as text, as from the shell
    assert rejected.approval_status == "Rejected"
    statuses = [p.approval_status for p in registry.list_packages("Models")]
    assert statuses == ["PendingManualApproval", "Approved", "Rejected"]
    assert registry.describe("Models", "latest-approved").version == 2
    assert registry.describe("Models", "latest").version == 3
    assert registry.reject("Models", "latest-approved").version == 2  # roll back the approval
    assert registry.describe("Models", 2).approval_status == "Rejected"


def test_describe_uses_sagemaker_field_names_and_keeps_lineage(home):
    digests = {"train": "a" * 64, "validation": "b" * 64}
    registered = registry.register(
        "Models", fitted(), approval_status="Approved", metrics={"mse": np.float32(0.25)},
        execution_id="pipe-20240101-000000-abcdef", step_name="Register", input_digests=digests)
    package = registry.describe("Models", 1)
    assert package == registered
    doc = package.describe()
    assert doc["ModelPackageGroupName"] == "Models"
    assert doc["ModelPackageVersion"] == 1
    assert doc["ModelApprovalStatus"] == "Approved"
    assert doc["ModelMetrics"] == {"mse": 0.25}
    assert doc["PipelineExecutionArn"] == "pipe-20240101-000000-abcdef"
    assert doc["StepName"] == "Register"
    assert doc["InputDigests"] == digests
    assert doc["ModelFormat"] == "skops"
    assert doc["ModelType"].endswith("LinearRegression")
    assert doc["CreationTime"] == doc["LastModifiedTime"] == package.created
    json.dumps(doc)  # all JSON

    later = registry.approve("Models", 1)
    assert later.describe()["LastModifiedTime"] >= later.created
    text = later.to_text()
    assert "ModelPackageGroupName: Models" in text and "  train: " + "a" * 64 in text


def test_digest_inputs_match_the_artifact_store(tmp_path):
    from jupyter_pipelines.store import ArtifactStore

    frame = pd.DataFrame({"a": [1, 2]})
    digests = registry.digest_inputs({"frame": frame, "n": 3, "bad": threading.Lock()})
    assert set(digests) == {"frame", "n"}  # what cannot be serialised is left out
    assert digests["frame"] == ArtifactStore(tmp_path / "art").put(frame).digest


def test_load_model_latest_latest_approved_and_a_number(home):
    for slope in (1.0, 2.0, 3.0):
        registry.register("Models", fitted(slope))
    registry.approve("Models", 2)
    rows = pd.DataFrame({"x": [5.0]})
    assert registry.load_model("Models").predict(rows) == pytest.approx([16.0])
    assert registry.load_model("Models", "latest").predict(rows) == pytest.approx([16.0])
    assert registry.load_model("Models", "latest-approved").predict(rows) == pytest.approx([11.0])
    assert registry.load_model("Models", 1).predict(rows) == pytest.approx([6.0])
    assert registry.load_model("Models", np.int64(1)).predict(rows) == pytest.approx([6.0])


def test_skops_round_trip_predicts_the_same(home):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 3))
    labels = (features[:, 0] + features[:, 1] > 0).astype(int)
    model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=5, random_state=0))
    model.fit(features, labels)
    package = registry.register("Forest", model)
    assert package.model_format == "skops"
    loaded = registry.load_model("Forest", 1)
    assert loaded is not model
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    np.testing.assert_allclose(loaded.predict_proba(features), model.predict_proba(features))


def test_a_pickled_model_is_refused_unless_trusted(home):
    package = registry.register("Custom", Doubler())
    assert package.model_format == "pickle"
    with pytest.raises(RegistryError) as info:
        registry.load_model("Custom", 1)
    message = str(info.value)
    assert "pickle" in message and "runs" in message and "code" in message
    assert "trusted=True" in message and "Doubler" in message
    assert registry.load_model("Custom", 1, trusted=True).predict([1, 2]) == [2, 4]


def test_a_model_with_types_outside_the_scientific_stack_is_refused_unless_trusted(home):
    # skops could not load it without trusting a user class, so it is stored with cloudpickle,
    # and loading a pickle needs the caller's explicit trust.
    assert registry.register("Hand", HandMade(3.0)).model_format == "pickle"
    with pytest.raises(RegistryError, match="HandMade.*trusted=True"):
        registry.load_model("Hand")
    assert registry.load_model("Hand", trusted=True).predict([1, 2]).tolist() == [3.0, 6.0]


def test_unknown_group_and_version_errors_name_what_exists(home):
    with pytest.raises(RegistryError, match="is empty"):
        registry.describe("Models", 1)
    assert not (home / "registry.db").exists()  # reading does not create a registry
    registry.register("Models", fitted())
    registry.register("Models", fitted())
    registry.register("Other", fitted())
    with pytest.raises(RegistryError) as info:
        registry.load_model("Modles")
    assert "Did you mean `Models`?" in str(info.value) and "`Other`" in str(info.value)
    with pytest.raises(RegistryError, match="Did you mean `Models`"):
        registry.approve("models", 1)
    with pytest.raises(RegistryError, match="has no version 7; its versions are 1 to 2"):
        registry.describe("Models", 7)
    with pytest.raises(RegistryError, match="no Approved version.*'latest-approved'"):
        registry.load_model("Models", "latest-approved")
    with pytest.raises(RegistryError, match="not a version"):
        registry.describe("Models", "newest")
    with pytest.raises(RegistryError, match="start at 1"):
        registry.reject("Models", 0)
    with pytest.raises(RegistryError, match="Did you mean `Models`"):
        registry.list_packages("Modles", missing_ok=False)
    assert all(p.approval_status == "PendingManualApproval" for p in registry.list_packages())


def test_register_rejects_bad_arguments(home):
    with pytest.raises(RegistryError, match="'Maybe' is not one of"):
        registry.register("Models", fitted(), approval_status="Maybe")
    with pytest.raises(RegistryError, match="metrics .* cannot be stored as JSON"):
        registry.register("Models", fitted(), metrics={"when": object()})
    with pytest.raises(RegistryError, match="input_digests"):
        registry.register("Models", fitted(), input_digests=["train"])
    with pytest.raises(RegistryError, match="non-empty"):
        registry.register("", fitted())
    assert registry.list_packages() == []  # nothing half-registered


# -- the CLI --------------------------------------------------------------------------------

def cli(*argv: str) -> int:
    """``jupyter-pipelines registry ARGV`` through a parser built as cli.main builds it."""
    parser = argparse.ArgumentParser(prog="jupyter-pipelines")
    sub = parser.add_subparsers(dest="command", required=True)
    registry_cli.add_commands(sub)
    return registry_cli.run(parser.parse_args(["registry", *argv]))


def test_cli_list_and_describe_json(home, capsys):
    registry.register("Models", fitted(), metrics={"mse": 0.5}, execution_id="ex-1",
                      step_name="Register", input_digests={"train": "f" * 64})
    registry.register("Models", fitted())
    registry.register("Other", Doubler())
    assert cli("list", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    summaries = doc["ModelPackageSummaryList"]
    assert [(s["ModelPackageGroupName"], s["ModelPackageVersion"]) for s in summaries] == [
        ("Models", 1), ("Models", 2), ("Other", 1)]
    assert summaries[0]["ModelApprovalStatus"] == "PendingManualApproval"
    assert summaries[0]["PipelineExecutionArn"] == "ex-1"
    assert summaries[2]["ModelFormat"] == "pickle"

    assert cli("list", "Other", "--json") == 0
    assert len(json.loads(capsys.readouterr().out)["ModelPackageSummaryList"]) == 1

    assert cli("describe", "Models", "1", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ModelPackageGroupName"] == "Models" and doc["ModelPackageVersion"] == 1
    assert doc["ModelMetrics"] == {"mse": 0.5}
    assert doc["StepName"] == "Register" and doc["InputDigests"] == {"train": "f" * 64}
    assert doc["ModelFormat"] == "skops"


def test_cli_approve_reject_and_human_output(home, capsys):
    registry.register("Models", fitted())
    registry.register("Models", fitted())
    assert cli("approve", "Models", "1") == 0
    assert capsys.readouterr().out.strip() == "Models v1: PendingManualApproval -> Approved"
    assert cli("reject", "Models", "latest", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ModelPackageVersion"] == 2 and doc["ModelApprovalStatus"] == "Rejected"
    assert registry.describe("Models", 1).approval_status == "Approved"

    assert cli("describe", "Models", "latest-approved") == 0
    out = capsys.readouterr().out
    assert "ModelPackageVersion: 1" in out and "ModelApprovalStatus: Approved" in out
    assert "ModelFormat: skops" in out

    assert cli("list") == 0
    out = capsys.readouterr().out
    assert "Models" in out and "Approved" in out and "Rejected" in out


def test_cli_home_option_and_errors(tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    registry.register("Far", fitted(), home=elsewhere)
    assert cli("list", "--home", str(elsewhere), "--json") == 0
    (summary,) = json.loads(capsys.readouterr().out)["ModelPackageSummaryList"]
    assert summary["ModelPackageGroupName"] == "Far"

    assert cli("list") == 0  # the default home ($JUPYTER_PIPELINES_HOME) has nothing
    assert "No models registered" in capsys.readouterr().out
    with pytest.raises(PipelineError, match="Did you mean `Far`"):
        cli("describe", "Fra", "1", "--home", str(elsewhere))
    with pytest.raises(PipelineError, match="Did you mean `Far`"):
        cli("list", "Fra", "--home", str(elsewhere))
    with pytest.raises(SystemExit) as usage:  # argparse: a usage mistake
        cli("approve", "Far")
    assert usage.value.code == 2
    capsys.readouterr()


def test_cli_as_a_command(tmp_path):
    def jp(*argv):
        env = {**os.environ, "JUPYTER_PIPELINES_HOME": str(tmp_path / "state")}
        return subprocess.run([sys.executable, "-m", "jupyter_pipelines", *argv], env=env,
                              capture_output=True, text=True, timeout=120)

    if "registry" not in jp("--help").stdout:
        pytest.skip("`registry` is not yet a jupyter-pipelines command")
    registry.register("Models", fitted())
    listed = jp("registry", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (summary,) = json.loads(listed.stdout)["ModelPackageSummaryList"]
    assert summary["ModelPackageGroupName"] == "Models"
    approved = jp("registry", "approve", "Models", "1", "--json")
    assert approved.returncode == 0, approved.stderr
    assert json.loads(approved.stdout)["ModelApprovalStatus"] == "Approved"
    wrong = jp("registry", "describe", "Modles", "1")
    assert wrong.returncode == 2
    assert "Did you mean `Models`?" in wrong.stderr


# -- the magic ------------------------------------------------------------------------------

def test_registry_magic(ip, home):
    ip.register_magics(RegistryMagics)
    empty = run_cell(ip, "%registry list")
    assert isinstance(empty, pd.DataFrame) and empty.empty
    registry.register("Models", fitted(), metrics={"mse": 0.5})
    registry.register("Models", fitted())
    registry.register("Other", fitted())

    frame = run_cell(ip, "%registry list")
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["ModelPackageGroupName"]) == ["Models", "Models", "Other"]
    assert list(frame["ModelPackageVersion"]) == [1, 2, 1]
    assert frame["ModelMetrics"][0] == {"mse": 0.5}
    assert len(run_cell(ip, "%registry list Other")) == 1

    package = run_cell(ip, "%registry describe Models 1")
    assert isinstance(package, registry.ModelPackage)
    assert (package.group, package.version) == ("Models", 1)
    assert run_cell(ip, "%registry describe Models latest").version == 2

    approved = run_cell(ip, "%registry approve Models 2")
    assert approved.approval_status == "Approved" and approved.version == 2
    assert run_cell(ip, "%registry reject Models 1").approval_status == "Rejected"
    assert registry.describe("Models", "latest-approved").version == 2

    shown = ip.display_formatter.format(package)[0]["text/plain"]
    assert "ModelPackageGroupName: Models" in shown  # describe shows every field

    with pytest.raises(RegistryError, match="Did you mean `Models`"):
        run_cell(ip, "%registry describe Modles 1")


def test_registry_magic_usage_errors(ip, tmp_path):
    ip.register_magics(RegistryMagics)
    for line in ("%registry", "%registry remove Models 1", "%registry describe Models",
                 "%registry approve", "%registry list Models 1"):
        with pytest.raises(UsageError):
            run_cell(ip, line)
    registry.register("Far", fitted(), home=tmp_path / "far")
    assert len(run_cell(ip, f"%registry list --home {tmp_path / 'far'}")) == 1


# -- concurrency and migration --------------------------------------------------------------

def _register_many(home: str, worker: int, count: int, barrier) -> None:
    barrier.wait()
    for i in range(count):
        registry.register("Shared", LinearRegression(), home=home, step_name=f"w{worker}-{i}")


def test_two_processes_registering_at_once_get_distinct_versions(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    workers = [ctx.Process(target=_register_many, args=(str(tmp_path), w, 15, barrier))
               for w in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=180)
    assert [w.exitcode for w in workers] == [0, 0]
    packages = registry.list_packages("Shared", home=tmp_path)
    assert [p.version for p in packages] == list(range(1, 31))  # unique, none missing
    assert sorted(p.step_name for p in packages) == sorted(
        f"w{w}-{i}" for w in range(2) for i in range(15))  # none lost
    for w in range(2):  # each process's own registrations got increasing versions
        mine = [p.version for p in packages if p.step_name.startswith(f"w{w}-")]
        assert mine == sorted(mine)


OLD_SCHEMA = """
CREATE TABLE model_packages (
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


def test_an_old_registry_database_is_migrated(tmp_path):
    old = fitted(2.0, 0.0)
    with sqlite3.connect(tmp_path / "registry.db") as conn:
        conn.execute(OLD_SCHEMA)
        conn.execute("INSERT INTO model_packages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     ("Models", 1, "Approved", json.dumps({"mse": 1.0}), pickle.dumps(old),
                      "sklearn.linear_model._base.LinearRegression", "old-ex", "Register",
                      "2024-01-01T00:00:00.000+00:00"))
    conn.close()

    (package,) = registry.list_packages(home=tmp_path)
    assert (package.group, package.version, package.approval_status) == ("Models", 1, "Approved")
    assert package.model_format == "pickle"  # rows from before formats were recorded
    assert package.input_digests == {} and package.metrics == {"mse": 1.0}
    assert package.describe()["LastModifiedTime"] == "2024-01-01T00:00:00.000+00:00"
    with sqlite3.connect(tmp_path / "registry.db") as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(model_packages)")}
    conn.close()
    assert {"model_format", "input_digests", "modified"} <= columns

    with pytest.raises(RegistryError, match="pickle"):
        registry.load_model("Models", 1, home=tmp_path)
    rows = pd.DataFrame({"x": [4.0]})
    assert registry.load_model("Models", 1, home=tmp_path, trusted=True).predict(rows) == \
        pytest.approx([8.0])

    new = registry.register("Models", fitted(), home=tmp_path, input_digests={"d": "1"})
    assert new.version == 2 and new.model_format == "skops"
    assert registry.load_model("Models", home=tmp_path).predict(rows) == pytest.approx([13.0])
    assert registry.reject("Models", 1, home=tmp_path).approval_status == "Rejected"
    assert [p.version for p in registry.list_packages("Models", home=tmp_path)] == [1, 2]
