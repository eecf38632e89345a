"""``jupyter-pipelines executions | describe | retry``: the execution history from a shell."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import PipelineError


def add_commands(sub) -> None:
    for name, help_text in (("executions", "list recorded executions, newest first"),
                            ("describe", "describe one execution and its steps"),
                            ("retry", "resume a Failed or Stopped execution")):
        cmd = sub.add_parser(name, help=help_text)
        if name != "executions":
            cmd.add_argument("execution", nargs="?" if name == "retry" else None,
                             help="an execution id (or a unique part of it)"
                             + ("; default: the latest Failed or Stopped" if name == "retry" else ""))
        where = cmd.add_mutually_exclusive_group()
        where.add_argument("--home", metavar="DIR", help="the state folder (default: "
                           "$JUPYTER_PIPELINES_HOME or ./.jupyter_pipelines)")
        where.add_argument("--notebook", metavar="NOTEBOOK",
                           help="this notebook's executions (in the state folder beside it)")
        cmd.add_argument("--json", action="store_true", help="print JSON (SageMaker's field names)")


def _workspace(args):
    from .registry_db import default_home
    from .store.workspace import Workspace

    if args.home:
        home = Path(args.home)
    else:
        home = default_home(beside=Path(args.notebook).resolve().parent if args.notebook else None)
    if not (Path(home) / "history.db").is_file():
        raise PipelineError(f"There is no execution history in {home}. Run a pipeline first, or "
                            "point --home/--notebook at the folder that has it.")
    return Workspace.open(str(Path(home).resolve()))


def _pipeline_of(args) -> str | None:
    """With --notebook, only that notebook's pipeline (notebooks may share a folder)."""
    from .parameters import pipeline_name

    return pipeline_name(Path(args.notebook).stem) if args.notebook else None


def _executions(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from .pipeline import execution_summary

    rows = [execution_summary(doc) for doc in _workspace(args).history.executions(_pipeline_of(args))]
    if args.json:
        print(json.dumps({"PipelineExecutionSummaries": rows}, indent=2))
        return 0
    table = Table(title="Executions, newest first")
    for column in ("execution", "status", "started", "parameters", "failure reason"):
        table.add_column(column, overflow="fold")
    for row in rows:
        params = ", ".join(f"{p['Name']}={p['Value']}" for p in row["PipelineParameters"])
        table.add_row(row["PipelineExecutionArn"], row["PipelineExecutionStatus"],
                      (row["StartTime"] or "")[:19], params, row.get("FailureReason", ""))
    Console().print(table)
    return 0


def _describe(args) -> int:
    from rich.console import Console

    from .cli import _print_summary

    workspace = _workspace(args)
    execution = workspace.load(workspace.find(args.execution, _pipeline_of(args)))
    if args.json:
        print(json.dumps({**execution.describe(), "Steps": execution.list_steps()}, indent=2, default=repr))
        return 0
    _print_summary(execution, Console(), verbose=False)
    for record in execution.steps.values():
        if record.why or record.reused_from:
            reason = f"reused {record.reused_from}" if record.status == "Cached" else f"ran: {record.why}"
            print(f"  {record.name}: {reason}")
    return 0


def _retry(args) -> int:
    from .cli import execute
    from .snapshot import from_document

    workspace = _workspace(args)
    doc = workspace.find(args.execution, _pipeline_of(args), statuses=("Failed", "Stopped"))
    version = workspace.version(doc["version_id"])
    if version is None:
        raise PipelineError(f"Execution {doc['id']} has no recorded pipeline definition to retry.")
    pipeline = from_document(version, home=workspace.home)
    folder = Path(doc.get("workdir") or Path.cwd())
    return execute(lambda listener: pipeline.retry(doc["id"], listeners=[listener], display=False),
                   len(pipeline.steps), folder, args)


COMMANDS = {"executions": _executions, "describe": _describe, "retry": _retry}
