"""Fault injection for definition files: every broken file, through every door that reads one
(``jupyter-pipelines validate`` and ``run FILE.json``, `Pipeline.from_definition`,
``%pipeline load``), is one `DefinitionError` (exit 2) naming the file and what to do, never a
traceback from json, jsonschema or the Rust ``referencing`` stack; ``%pipeline load`` of a bad
file leaves the notebook's pipeline as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupyter_pipelines import Pipeline, current
from jupyter_pipelines.cli import main
from jupyter_pipelines.errors import DefinitionError

from .conftest import run_cell

FIXTURES = Path(__file__).parent / "fixtures" / "sagemaker"


def nested_conditions(depth: int, kind: str = "Or") -> dict:
    """A definition whose one condition is nested ``depth`` times (Or and Not nest)."""
    cond: dict = {"Type": "Equals", "LeftValue": 1, "RightValue": 1}
    for _ in range(depth):
        cond = {"Type": "Or", "Conditions": [cond]} if kind == "Or" else {"Type": "Not", "Condition": cond}
    return {"Version": "2020-12-01", "Parameters": [], "Steps": [
        {"Name": "Check", "Type": "Condition",
         "Arguments": {"Conditions": [cond], "IfSteps": [], "ElseSteps": []}}]}


def _write(path: Path, data: bytes | str | None) -> Path:
    if data is None:  # a folder where the file should be
        path.mkdir()
    elif isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


# name -> (file content, or None for a folder, or "missing"; words the message must hold)
BROKEN = {
    "50 nested conditions": (json.dumps(nested_conditions(50)), ["nested more than", "line 1"]),
    "40 nested conditions": (json.dumps(nested_conditions(40)), ["nested more than", "condition"]),
    "100 nested Not": (json.dumps(nested_conditions(100, "Not")), ["nested more than"]),
    "100,000 nested [": ("[" * 100_000, ["nested more than", "line 1, column 49"]),
    "not UTF-8": (b'{"Version": "2020-12-01", "Steps": [], "x": "\xff\xfe"}', ["UTF-8", "byte"]),
    "empty file": ("", ["empty", "Version"]),
    "only whitespace": ("  \n\t\n", ["empty"]),
    "a folder": (None, ["is a folder"]),
    "missing": ("missing", ["does not exist"]),
}


def broken_file(tmp_path: Path, label: str) -> tuple[Path, list[str]]:
    content, words = BROKEN[label]
    path = tmp_path / "pipeline.json"
    if content != "missing":
        _write(path, content)
    return path, words


@pytest.mark.parametrize("label", list(BROKEN))
def test_validate_exits_2_naming_the_file(tmp_path, capsys, label):
    path, words = broken_file(tmp_path, label)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(path) in err, err
    assert all(w in err for w in words), err
    assert "Traceback" not in err


@pytest.mark.parametrize("label", list(BROKEN))
def test_run_of_a_broken_definition_exits_2(tmp_path, capsys, label):
    path, words = broken_file(tmp_path, label)
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and all(w in err for w in words), err


@pytest.mark.parametrize("label", list(BROKEN))
def test_from_definition_raises_a_definition_error(tmp_path, label):
    path, words = broken_file(tmp_path, label)
    with pytest.raises(DefinitionError) as info:
        Pipeline.from_definition(path)
    assert str(path) in str(info.value) and all(w in str(info.value) for w in words)


@pytest.mark.parametrize("label", ["50 nested conditions", "100,000 nested [", "not UTF-8",
                                   "empty file", "a folder", "missing"])
def test_pipeline_load_refuses_and_keeps_the_notebooks_pipeline(ip, tmp_path, label):
    run_cell(ip, "%%step Keep\nkept = 1")
    path, words = broken_file(tmp_path, label)
    with pytest.raises(DefinitionError) as info:
        run_cell(ip, f"%pipeline load {path}")
    assert str(path) in str(info.value) and all(w in str(info.value) for w in words)
    assert list(current().steps) == ["Keep"]  # nothing replaced by the failed load
    assert run_cell(ip, "1 + 1") == 2


def test_a_deep_document_given_as_a_dict_is_refused_with_its_path():
    with pytest.raises(DefinitionError) as info:
        Pipeline.from_definition(nested_conditions(60))
    assert "nested more than" in str(info.value)
    assert "$.Steps[0].Arguments.Conditions[0]" in str(info.value)


def test_definition_text_that_is_empty_is_not_taken_for_a_path():
    with pytest.raises(DefinitionError, match="empty"):
        Pipeline.from_definition("")


def test_real_definitions_stay_well_inside_the_depth_limit():
    for path in sorted(FIXTURES.glob("*.json")):
        Pipeline.from_definition(path, persist=False)  # each SageMaker fixture still loads
    moderate = Pipeline.from_definition(json.dumps(nested_conditions(15)), persist=False)
    assert list(moderate.steps) == ["Check"]


def test_a_panic_in_the_schema_validator_becomes_a_definition_error(tmp_path, monkeypatch, capsys):
    """pyo3's PanicException derives from BaseException; it must not escape as a traceback."""
    from jupyter_pipelines.definition import validation

    panic = type("PanicException", (BaseException,), {})

    def explode(document):
        raise panic("called `Result::unwrap()` on an `Err` value")

    monkeypatch.setattr(validation, "problems", explode)
    path = _write(tmp_path / "minimal.json", (FIXTURES / "minimal.json").read_text())
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "validator failed" in err


def test_an_interrupt_during_validation_is_not_swallowed(monkeypatch):
    from jupyter_pipelines.definition import validation

    def interrupted(document):
        raise KeyboardInterrupt

    monkeypatch.setattr(validation, "problems", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Pipeline.from_definition(FIXTURES / "minimal.json", persist=False)

