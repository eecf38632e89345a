"""``jupyter-pipelines executions | describe | retry``: the execution history from a shell.

Each command reads the state folder `locate` finds: ``--notebook NB`` (the folder beside it,
only its pipeline), ``--home DIR``, ``$JUPYTER_PIPELINES_HOME``, ``./.jupyter_pipelines``, or the
one below the working directory; an execution ID alone is looked up in each of those.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import PipelineError
from .locate import add_location_options, execution_folder, notebook_pipeline, state_folder


def add_commands(sub) -> None:
    for name, help_text in (("executions", "list recorded executions, newest first"),
                            ("describe", "describe one execution and its steps"),
                            ("retry", "resume a Failed or Stopped execution")):
        cmd = sub.add_parser(name, help=help_text, description=help_text + ".")
        if name != "executions":
            cmd.add_argument("execution", nargs="?" if name == "retry" else None,
                             help="an execution id (or a unique part of it), found in whichever "
                                  "state folder holds it"
                             + ("; default: the latest Failed or Stopped" if name == "retry" else ""))
        add_location_options(cmd)
        cmd.add_argument("--json", action="store_true", help="print JSON (SageMaker's field names)")
        if name == "retry":
            cmd.add_argument("--executor", metavar="SPEC",
                             help="in-kernel (default), threads[:N], processes[:N], dask, or a Dask "
                                  "scheduler's address (tcp://host:8786)")
            cmd.add_argument("--max-parallel", type=int, metavar="N", help="at most N steps at once")


def _workspace(args, execution_id: str | None = None):
    from .store.workspace import Workspace

    folder = execution_folder(args, execution_id) if execution_id else state_folder(args)
    return Workspace.open(str(Path(folder).resolve()))


def _executions(args) -> int:
    from rich.console import Console

    from .execution import execution_summary
    from .locate import no_executions_text
    from .tables import Column, print_table

    workspace = _workspace(args)
    pipeline = notebook_pipeline(args)
    rows = [execution_summary(doc) for doc in workspace.history.executions(pipeline)]
    if args.json:
        print(json.dumps({"PipelineExecutionSummaries": rows}, indent=2))
        return 0
    if not rows:
        print(no_executions_text(pipeline, workspace.home, args.notebook and Path(args.notebook)))
        return 0
    columns = [Column("execution", head=True, whole=True), Column("status", head=True),
               Column("started", head=True), Column("parameters", fold=True),
               Column("failure reason", fold=True)]
    table = [[row["PipelineExecutionArn"], row["PipelineExecutionStatus"],
              (row["StartTime"] or "")[:19].replace("T", " "),
              ", ".join(f"{p['Name']}={p['Value']}" for p in row["PipelineParameters"]),
              row.get("FailureReason", "")] for row in rows]
    console = Console()
    console.print(f"State folder: {workspace.home}", soft_wrap=True, markup=False, highlight=False)
    print_table(console, "Executions, newest first", columns, table)
    return 0


def _describe(args) -> int:
    from rich.console import Console

    from .cli import _print_summary

    workspace = _workspace(args, args.execution)
    execution = workspace.load(workspace.find(args.execution, notebook_pipeline(args)))
    if args.json:
        print(json.dumps({**execution.describe(), "Steps": execution.list_steps()}, indent=2, default=repr))
        return 0
    print(f"Execution {execution.id}")  # whole on its own line, however narrow the table
    _print_summary(execution, Console(), verbose=False)
    for record in execution.steps.values():
        if record.why or record.reused_from:
            reason = f"reused {record.reused_from}" if record.status == "Cached" else f"ran: {record.why}"
            print(f"  {record.name}: {reason}")
    return 0


def _retry(args) -> int:
    from .cli import execute
    from .snapshot import from_document

    workspace = _workspace(args, args.execution)
    doc = workspace.find(args.execution, notebook_pipeline(args), statuses=("Failed", "Stopped"))
    if args.execution and doc["status"] not in ("Failed", "Stopped"):
        raise PipelineError(f"Execution {doc['id']} {doc['status']}; only a Failed or Stopped "
                            "execution can be retried. Run the pipeline again instead "
                            "(`jupyter-pipelines run NOTEBOOK`).")
    version = workspace.version(doc["version_id"])
    if version is None:
        raise PipelineError(f"Execution {doc['id']} has no recorded pipeline definition to retry.")
    pipeline = from_document(version, home=workspace.home)
    folder = Path(doc.get("workdir") or Path.cwd())
    if not folder.is_dir():
        raise PipelineError(f"Execution {doc['id']} ran in {folder}, which no longer exists; its "
                            "steps read their files relative to it. Restore that folder, or run "
                            "the notebook again (`jupyter-pipelines run NOTEBOOK`).")
    return execute(lambda listener: pipeline.retry(
        doc["id"], listeners=[listener], display=False, executor=args.executor,
        max_parallel=args.max_parallel), len(pipeline.steps), folder, args)


COMMANDS = {"executions": _executions, "describe": _describe, "retry": _retry}
