"""The editor's kernel side: edit commands applied to the pipeline (`edit.commands`), the cells
that define it (`edit.cells`), and the canvas widget's state, cells and replies
(`edit.widget`), through `Pipeline.edit()` and ``%pipeline edit``. The canvas in a browser is
tested in tests/browser/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from jupyter_pipelines import Pipeline
from jupyter_pipelines.edit import Edits, NeedsConfirmation
from jupyter_pipelines.edit.cells import TEMPLATES, flags_of, make, step_cell, step_line
from jupyter_pipelines.errors import CycleError, DefinitionError, PipelineError
from jupyter_pipelines.magics import parse_step_line
from jupyter_pipelines.notebook import load_notebook

from .conftest import run_cell

REPO = Path(__file__).resolve().parent.parent
ABALONE = REPO / "notebooks" / "abalone.ipynb"


@pytest.fixture
def abalone(tmp_path) -> Pipeline:
    p = load_notebook(ABALONE)
    p.home = tmp_path / "state"
    return p


def cell_of(p: Pipeline, step: str) -> str:
    return step_cell(p.steps[step])


# -- cells: flags and text, and back ---------------------------------------------------------

def test_every_abalone_step_round_trips_through_its_cell_text(abalone):
    for step in abalone.steps.values():
        line = step_line(step.name, flags_of(step))
        spec = parse_step_line(line[len("%%step "):])
        assert spec.pop("name") == step.name
        assert make(step.name, step.code, spec) == step, line
    assert step_line("Cond", flags_of(abalone.steps["AbaloneMSECond"])) == (
        "%%step Cond --kind condition --if AbaloneRegisterModel AbaloneCreateModel "
        "--else AbaloneMSEFail")


def test_declared_flags_and_quoted_text_are_written_back():
    step = make("Describe", "summary = frame.describe()",
                {"kind": "processing", "inputs": ["frame", "extra"], "cache": False,
                 "retry": 2, "description": 'says "hi"', "cache_expire": "P30D"})
    line = step_line("Describe", flags_of(step))
    assert "--inputs frame extra" in line and "--no-cache" in line and "--retry 2" in line
    spec = parse_step_line(line[len("%%step "):])
    spec.pop("name")
    assert make("Describe", step.code, spec) == step


# -- edit commands -------------------------------------------------------------------------

def test_every_palette_kind_makes_a_valid_step_with_a_unique_name(abalone):
    edits = Edits(abalone)
    made = [edits.apply({"op": "add_step", "kind": kind})["step"] for kind in TEMPLATES]
    assert made == ["Processing1", "Training1", "Condition1", "Fail1", "RegisterModel1",
                    "CreateModel1", "Transform1"]
    assert edits.apply({"op": "add_step", "kind": "processing"})["step"] == "Processing2"
    outputs = [o for s in abalone.steps.values() for o in s.outputs]
    assert len(outputs) == len(set(outputs))  # no two new steps output one name
    assert abalone.steps["Fail1"].code.startswith('f"')
    assert abalone.steps["Transform1"].options["model"] == "CreateModel1"
    with pytest.raises(DefinitionError, match="no step kind 'fancy'"):
        edits.apply({"op": "add_step", "kind": "fancy"})


def test_connect_declares_inputs_depends_on_and_branches(abalone):
    edits = Edits(abalone)
    edits.apply({"op": "add_step", "kind": "processing", "name": "Summary"})
    edits.apply({"op": "set_step", "step": "Summary", "code": "rows = 3"})
    edits.apply({"op": "connect", "source": "AbaloneProcess", "target": "Summary",
                 "handle": "out", "names": ["test"]})
    assert cell_of(abalone, "Summary") == "%%step Summary --inputs test\nrows = 3"
    edits.apply({"op": "connect", "source": "AbaloneTrain", "target": "Summary", "handle": "out"})
    assert "--depends-on AbaloneTrain" in cell_of(abalone, "Summary")
    edits.apply({"op": "connect", "source": "AbaloneMSECond", "target": "Summary",
                 "handle": "False"})
    assert list(abalone.steps["AbaloneMSECond"].options["else_steps"]) == ["AbaloneMSEFail", "Summary"]
    graph = abalone.graph()
    assert {(e.source, e.kind) for e in graph.edges if e.target == "Summary"} == {
        ("AbaloneProcess", "data"), ("AbaloneTrain", "order"), ("AbaloneMSECond", "branch")}
    with pytest.raises(DefinitionError, match="does not output `nope`"):
        edits.apply({"op": "connect", "source": "AbaloneProcess", "target": "Summary",
                     "handle": "out", "names": ["nope"]})
    with pytest.raises(DefinitionError, match="Only a condition step"):
        edits.apply({"op": "connect", "source": "AbaloneTrain", "target": "Summary",
                     "handle": "True"})


def test_an_edge_closing_a_cycle_is_refused_and_changes_nothing(abalone):
    edits = Edits(abalone)
    before = dict(abalone.steps)
    with pytest.raises(CycleError, match="AbaloneProcess -> AbaloneTrain -> AbaloneProcess"):
        edits.apply({"op": "connect", "source": "AbaloneTrain", "target": "AbaloneProcess",
                     "handle": "out"})
    assert abalone.steps == before and not edits.can_undo


def test_disconnect_removes_what_connect_declared_and_explains_code_edges(abalone):
    edits = Edits(abalone)
    edits.apply({"op": "connect", "source": "AbaloneProcess", "target": "AbaloneMSEFail",
                 "handle": "out"})
    edits.apply({"op": "disconnect", "source": "AbaloneProcess", "target": "AbaloneMSEFail"})
    assert abalone.steps["AbaloneMSEFail"].depends_on == ()
    edits.apply({"op": "disconnect", "source": "AbaloneMSECond", "target": "AbaloneCreateModel"})
    assert list(abalone.steps["AbaloneMSECond"].options["if_steps"]) == ["AbaloneRegisterModel"]
    with pytest.raises(DefinitionError, match="comes from `AbaloneTrain`'s code, which reads `train`"):
        edits.apply({"op": "disconnect", "source": "AbaloneProcess", "target": "AbaloneTrain"})


def test_rename_makes_every_reference_follow(abalone):
    edits = Edits(abalone)
    edits.apply({"op": "rename", "step": "AbaloneCreateModel", "to": "CreateModel"})
    assert list(abalone.steps).index("CreateModel") == 5  # its place in the order is kept
    assert abalone.steps["AbaloneTransform"].options["model"] == "CreateModel"
    assert list(abalone.steps["AbaloneMSECond"].options["if_steps"]) == ["AbaloneRegisterModel",
                                                                    "CreateModel"]
    edits.apply({"op": "connect", "source": "AbaloneEval", "target": "AbaloneMSEFail",
                 "handle": "out"})
    edits.apply({"op": "rename", "step": "AbaloneEval", "to": "Evaluate"})
    assert abalone.steps["AbaloneMSEFail"].depends_on == ("Evaluate",)
    abalone.graph()  # still a valid DAG
    with pytest.raises(DefinitionError, match="a step of that name exists"):
        edits.apply({"op": "rename", "step": "Evaluate", "to": "AbaloneTrain"})


def test_delete_asks_when_others_read_the_outputs_then_cleans_references(abalone):
    edits = Edits(abalone)
    with pytest.raises(NeedsConfirmation, match="`AbaloneTrain`.* read its outputs"):
        edits.apply({"op": "delete_step", "step": "AbaloneProcess"})
    assert "AbaloneProcess" in abalone.steps
    edits.apply({"op": "delete_step", "step": "AbaloneMSEFail"})  # nobody reads it: no question
    assert list(abalone.steps["AbaloneMSECond"].options["else_steps"]) == []
    edits.apply({"op": "delete_step", "step": "AbaloneProcess", "confirm": True})
    assert "AbaloneProcess" not in abalone.steps
    assert "reads `train`" in edits.unknown()["AbaloneTrain"]


def test_undo_and_redo_walk_the_edits(abalone):
    edits = Edits(abalone)
    original = dict(abalone.steps)
    edits.apply({"op": "add_step", "kind": "processing"})
    edits.apply({"op": "rename", "step": "Processing1", "to": "Extra"})
    edits.apply({"op": "undo"})
    assert "Processing1" in abalone.steps and "Extra" not in abalone.steps
    edits.apply({"op": "undo"})
    assert abalone.steps == original and not edits.can_undo
    edits.apply({"op": "redo"})
    edits.apply({"op": "redo"})
    assert "Extra" in abalone.steps and not edits.can_redo
    with pytest.raises(PipelineError, match="nothing to redo"):
        edits.apply({"op": "redo"})


def test_check_code_names_what_nothing_provides_without_changing_the_step(abalone):
    edits = Edits(abalone)
    reply = edits.apply({"op": "check_code", "step": "AbaloneEval", "code": "m = modle.x"})
    assert "reads `modle`" in reply["unknown"] and "Did you mean `model`?" in reply["unknown"]
    assert edits.apply({"op": "check_code", "step": "AbaloneEval", "code": "m = model"}) == \
        {"unknown": ""}
    assert "modle" not in abalone.steps["AbaloneEval"].code and not edits.can_undo


def test_parameters_are_added_renamed_typed_and_deleted(abalone):
    edits = Edits(abalone)
    assert edits.apply({"op": "add_parameter"}) == {"parameter": "param1"}
    edits.apply({"op": "set_parameter", "name": "param1", "to": "limit", "type": "Integer",
                 "default": "3"})
    assert list(abalone.parameters)[-1] == "limit"
    assert (abalone.parameters["limit"].type, abalone.parameters["limit"].default) == ("Integer", 3)
    with pytest.raises(DefinitionError, match="`limit` is Integer, and 'x' is not"):
        edits.apply({"op": "set_parameter", "name": "limit", "default": "x"})
    edits.apply({"op": "delete_parameter", "name": "limit"})
    assert "limit" not in abalone.parameters


def test_an_unknown_command_is_a_clear_error(abalone):
    with pytest.raises(PipelineError, match="unknown command 'explode'.*add_step"):
        Edits(abalone).apply({"op": "explode"})


# -- the canvas widget: state, replies, cells ---------------------------------------------------

def captured(made):
    """``made`` (an `Editor`) with the replies the canvas would receive kept in ``.replies``."""
    made.replies = []
    made.widget.send = made.replies.append
    return made


@pytest.fixture
def editor(abalone):
    return captured(abalone.edit())


def send(editor, **command) -> dict:
    """A command as the canvas sends it (a custom message), and the reply it gets."""
    editor.widget._handle_custom_msg({"id": len(editor.replies) + 1, **command}, [])
    reply = editor.replies[-1]
    assert reply["reply"] == len(editor.replies)
    return reply


def test_the_canvas_state_is_the_pipeline_laid_out_by_graphviz(editor):
    w = editor.widget
    nodes = {n["name"]: n for n in w.graph["nodes"]}
    assert list(nodes) == list(editor.pipeline.graph().steps)
    assert nodes["AbaloneProcess"]["y"] < nodes["AbaloneTrain"]["y"] < nodes["AbaloneMSECond"]["y"]
    assert all(n["w"] > 40 and n["h"] > 20 for n in nodes.values())
    assert nodes["AbaloneMSECond"]["shape"] == "hexagon"
    assert nodes["AbaloneTrain"]["flags"] == {"kind": "training"}
    edges = {(e["source"], e["target"]): e for e in w.graph["edges"]}
    assert edges["AbaloneProcess", "AbaloneTrain"]["names"] == ["train"]
    assert edges["AbaloneMSECond", "AbaloneMSEFail"]["kind"] == "False"
    assert [k["kind"] for k in w.kinds] == list(TEMPLATES)
    assert [p["name"] for p in w.parameters] == ["input_data", "mse_threshold",
                                                 "model_approval_status"]
    assert repr(w) == "PipelineEditor(abalone: 8 steps, 3 parameters; not run)"


def test_edits_reply_and_send_the_cells_the_notebook_should_hold(editor):
    assert send(editor, op="add_step", kind="processing") == {"reply": 1, "ok": True,
                                                               "step": "Processing1"}
    first = editor.widget.cells
    new = [c for c in first["cells"] if c["key"] == "step:Processing1"]
    assert new[0]["previous"] is None and new[0]["text"].startswith("%%step Processing1\n")
    old_text = new[0]["text"]
    send(editor, op="connect", source="AbaloneEval", target="Processing1", handle="out",
         names=["report"])
    cells = editor.widget.cells
    assert cells["revision"] == first["revision"] + 1
    changed = {c["key"]: c for c in cells["cells"]}["step:Processing1"]
    assert (changed["previous"], changed["text"].split("\n")[0]) == (
        old_text, "%%step Processing1 --inputs report")
    keys = [c["key"] for c in cells["cells"]]
    assert keys[0] == "parameters" and keys.index("step:AbaloneEval") < keys.index("step:Processing1")
    send(editor, op="delete_step", step="Processing1")
    assert editor.widget.cells["removed"] == [{"key": "step:Processing1",
                                               "previous": changed["text"]}]
    assert editor.widget.can_undo and not editor.widget.can_redo


def test_refused_and_questioned_edits_reply_with_the_message(editor):
    reply = send(editor, op="connect", source="AbaloneTransform", target="AbaloneProcess",
                 handle="out")
    assert reply["ok"] is False and "cycle" in reply["error"]
    reply = send(editor, op="delete_step", step="AbaloneTrain")
    assert reply["ok"] is False and reply["confirm"].startswith("Delete step `AbaloneTrain`?")
    assert send(editor, op="delete_step", step="AbaloneTrain", confirm=True)["ok"]
    node = {n["name"]: n for n in editor.widget.graph["nodes"]}["AbaloneEval"]
    assert "reads `model`" in node["unknown"]


def test_run_from_the_editor_shows_statuses_and_the_condition(editor, tmp_path):
    data = tmp_path / "abalone.csv"
    from jupyter_pipelines.datasets import write_abalone

    write_abalone(data, 400)
    reply = send(editor, op="run", parameters={"input_data": str(data), "mse_threshold": "0.0"})
    assert reply["ok"] and reply["status"] == "Failed"  # the else branch: the fail step
    steps = editor.widget.steps
    assert steps["AbaloneMSECond"]["outcome"] == "False" and steps["AbaloneMSEFail"]["status"] == "Failed"
    assert steps["AbaloneRegisterModel"]["status"] == "Skipped"
    assert editor.widget.header["status"] == "Failed"


def test_save_as_notebook_writes_cells_that_run_headless_to_the_same_pipeline(editor, tmp_path):
    send(editor, op="add_step", kind="processing", name="Summary")
    send(editor, op="set_step", step="Summary", code="rows = len(test)")
    target = tmp_path / "edited.ipynb"
    assert send(editor, op="save_notebook", path=str(target)) == {"reply": 3, "ok": True,
                                                                  "path": str(target)}
    again = load_notebook(target)
    assert list(again.steps) == list(editor.pipeline.steps)
    assert again.steps == editor.pipeline.steps and again.parameters == editor.pipeline.parameters
    assert send(editor, op="save_notebook", path=str(target))["error"].endswith(
        "(nothing was overwritten).")
    text = send(editor, op="copy_cells")["text"]
    assert text.startswith("%load_ext jupyter_pipelines") and "%%step Summary\nrows = len(test)" in text
    nb = nbformat.read(target, as_version=4)
    assert nb.cells[-1].source == "%pipeline run"


def test_a_definition_json_is_edited_and_saved_back_validated(tmp_path, ip):
    source = tmp_path / "abalone.json"
    source.write_text(load_notebook(ABALONE).definition(), encoding="utf-8")
    run_cell(ip, f"%pipeline load {source}")
    editor = captured(run_cell(ip, "%pipeline edit"))
    assert editor.widget.source == f"definition:{source}"
    send(editor, op="rename", step="AbaloneEval", to="Evaluate")
    assert send(editor, op="save_definition") == {"reply": 2, "ok": True, "path": str(source)}
    doc = json.loads(source.read_text())
    assert "Evaluate" in {s["Name"] for s in doc["Steps"]}
    result = subprocess.run([sys.executable, "-m", "jupyter_pipelines", "validate", str(source)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_magic_edits_the_notebooks_pipeline_and_cells_runs_redraw_it(ip):
    run_cell(ip, "%%parameters\nn = 3")
    run_cell(ip, "%%step Make\nxs = list(range(n))")
    editor = captured(run_cell(ip, "%pipeline edit"))
    assert [n["name"] for n in editor.widget.graph["nodes"]] == ["Make"]
    run_cell(ip, "%%step Total --kind processing\ntotal = sum(xs)")  # typed with a default flag
    assert [n["name"] for n in editor.widget.graph["nodes"]] == ["Make", "Total"]
    send(editor, op="set_step", step="Total", flags={"retry": 1})
    change = {c["key"]: c for c in editor.widget.cells["cells"]}["step:Total"]
    assert change["previous"] == "%%step Total --kind processing\ntotal = sum(xs)"  # as typed
    assert change["text"] == "%%step Total --retry 1\ntotal = sum(xs)"
    assert run_cell(ip, "%pipeline run").result("Total", "total") == 3


def test_a_parameters_allowed_values_live_in_its_cell_comment(abalone, ip):
    edits = Edits(abalone)
    edits.apply({"op": "set_parameter", "name": "model_approval_status",
                 "enum": ["PendingManualApproval", "Approved"]})
    from jupyter_pipelines.edit.cells import parameters_cell

    text = parameters_cell(abalone.parameters)
    assert 'model_approval_status = "PendingManualApproval"  # one of: "PendingManualApproval", ' \
        '"Approved"' in text.splitlines()
    run_cell(ip, text)  # the cell, run: the same parameters, allowed values included
    from jupyter_pipelines import current

    assert current().parameters == abalone.parameters
    with pytest.raises(Exception, match="not one of its allowed values"):
        run_cell(ip, '%%parameters\ns = "z"  # one of: "a", "b"')


def test_a_rename_rewrites_the_steps_own_cell(editor):
    before = {c["key"]: c["text"] for c in editor.widget.cells.get("cells", [])} or \
        editor._texts
    send(editor, op="rename", step="AbaloneEval", to="Evaluate")
    cells = {c["key"]: c for c in editor.widget.cells["cells"]}
    assert cells["step:Evaluate"]["previous"] == before["step:AbaloneEval"]
    assert cells["step:Evaluate"]["text"].startswith("%%step Evaluate\n")
    assert editor.widget.cells["removed"] == []
    send(editor, op="undo")
    cells = {c["key"]: c for c in editor.widget.cells["cells"]}
    assert cells["step:AbaloneEval"]["previous"].startswith("%%step Evaluate\n")


def test_an_aws_only_step_is_edited_as_its_json_and_saved_back(tmp_path):
    source = tmp_path / "checks.json"
    source.write_text((REPO / "tests/fixtures/sagemaker/checks_emr_tuning.json").read_text())
    from jupyter_pipelines.definition import from_definition

    editor = captured(from_definition(source).edit(definition=source))
    node = {n["name"]: n for n in editor.widget.graph["nodes"]}["EmrPrepare"]
    doc = json.loads(node["aws"])
    assert doc["Type"] == "EMR"
    reply = send(editor, op="set_step", step="EmrPrepare", code="{oops")
    assert reply["ok"] is False and "its JSON is not valid" in reply["error"]
    reply = send(editor, op="set_step", step="EmrPrepare", code=json.dumps({**doc, "Type": "Lambda"}))
    assert "must stay a EMR step" in reply["error"]
    assert send(editor, op="set_step", step="EmrPrepare",
                code=json.dumps({**doc, "Description": "edited"}))["ok"]
    assert send(editor, op="save_definition")["ok"]
    saved = {s["Name"]: s for s in json.loads(source.read_text())["Steps"]}
    assert saved["EmrPrepare"]["Description"] == "edited"


def test_cells_run_before_the_editor_are_known_as_typed(ip):
    run_cell(ip, "%%parameters\nn = 3")
    run_cell(ip, "%%step Make --kind processing\nxs = list(range(n))")
    editor = captured(run_cell(ip, "%pipeline edit"))
    send(editor, op="set_step", step="Make", flags={"retry": 2})
    cells = {c["key"]: c for c in editor.widget.cells["cells"]}
    assert cells["step:Make"]["previous"] == "%%step Make --kind processing\nxs = list(range(n))"
    assert cells["parameters"]["previous"] == cells["parameters"]["text"] == "%%parameters\nn = 3"


# -- the tutorial: notebooks/editor.ipynb holds what the editor writes -------------------------

def _abalone_code(step: str) -> str:
    nb = nbformat.read(ABALONE, as_version=4)
    for cell in nb.cells:
        first, _, body = cell.source.partition("\n")
        if first.split()[:2] == ["%%step", step]:
            return body
    raise KeyError(step)


def _tutorial_commands() -> list[dict]:
    """The canvas session the tutorial describes, as the commands the canvas sends."""
    params = [("input_data", "String", "abalone-synthetic.csv"), ("mse_threshold", "Float", "6.0"),
              ("model_approval_status", "String", "PendingManualApproval")]
    steps = [("processing", "Processing1", "AbaloneProcess", {}),
             ("training", "Training1", "AbaloneTrain", {"model": "model"}),
             ("processing", "Processing1", "AbaloneEval", {}),
             ("condition", "Condition1", "AbaloneMSECond", {}),
             ("register-model", "RegisterModel1", "AbaloneRegisterModel",
              {"group": "AbaloneModelPackageGroup", "approval_status": "model_approval_status",
               "metrics": "report", "outputs": None}),
             ("create-model", "CreateModel1", "AbaloneCreateModel", {"outputs": None}),
             ("transform", "Transform1", "AbaloneTransform",
              {"data": "batch", "batch_size": 256, "outputs": None}),
             ("fail", "Fail1", "AbaloneMSEFail", {})]
    commands = [{"op": "add_parameter", "name": n, "type": t, "default": d} for n, t, d in params]
    for kind, default, name, flags in steps:
        commands += [{"op": "add_step", "kind": kind},
                     {"op": "rename", "step": default, "to": name},
                     {"op": "set_step", "step": name, "code": _abalone_code(name), "flags": flags}]
    return commands + [
        {"op": "connect", "source": "AbaloneMSECond", "target": "AbaloneRegisterModel", "handle": "True"},
        {"op": "connect", "source": "AbaloneMSECond", "target": "AbaloneCreateModel", "handle": "True"},
        {"op": "connect", "source": "AbaloneMSECond", "target": "AbaloneMSEFail", "handle": "False"}]


def test_the_editor_tutorial_holds_the_cells_its_canvas_session_writes(tmp_path):
    tutorial = nbformat.read(REPO / "notebooks" / "editor.ipynb", as_version=4)
    sources = [c.source for c in tutorial.cells if c.cell_type == "code"]
    from jupyter_pipelines.source import Context

    p = Pipeline("editor", home=tmp_path / "state")
    p.context = Context.from_cells([s for s in sources if not s.startswith("%")])
    editor = p.edit()
    for command in _tutorial_commands():
        editor.handle(command)
    written = [c["text"] for c in editor.widget.cells["cells"]]
    assert written == [s for s in sources if s.startswith(("%%step", "%%parameters"))]
    assert load_notebook(REPO / "notebooks" / "editor.ipynb").steps == p.steps


def test_removing_a_step_with_the_magic_redraws_the_editor(ip):
    run_cell(ip, "%%step Make\nxs = [1, 2]")
    run_cell(ip, "%%step Other\nys = [3]")
    editor = run_cell(ip, "%pipeline edit")
    run_cell(ip, "%pipeline remove Other")
    assert [n["name"] for n in editor.widget.graph["nodes"]] == ["Make"]


def test_a_run_from_a_cell_shows_on_the_editor(ip):
    run_cell(ip, "%%parameters\nn = 3")
    run_cell(ip, "%%step Make\nxs = list(range(n))")
    editor = run_cell(ip, "%pipeline edit")
    run_cell(ip, "%pipeline run --param n=4")
    assert editor.widget.steps["Make"]["status"] in ("Succeeded", "Cached")
    assert editor.widget.header["status"] == "Succeeded"
    assert editor.widget.header["parameters"] == {"n": "4"}


def test_a_refused_edit_leaves_the_pipeline_as_it_was(abalone):
    edits = Edits(abalone)
    before = dict(abalone.steps)
    with pytest.raises(DefinitionError, match="transform step `AbaloneTransform` runs its model"):
        edits.apply({"op": "delete_step", "step": "AbaloneCreateModel"})
    assert abalone.steps == before and list(abalone.steps) == list(before) and not edits.can_undo
