"""``jupyter-pipelines``: run and show notebook pipelines from a shell.

Exit codes (`EXIT_CODES`, printed by ``--help``): 0 the execution Succeeded (or the command
did what it was asked); 1 the execution Failed or was Stopped; 2 a usage or definition error
(a bad argument, notebook, definition, parameter or graph); 3 the state folder or the store
cannot be used (a corrupt or read-only database, a missing or corrupt artifact).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from . import definition_cli, doctor_cli, history_cli, registry_cli
from .errors import PipelineError, StateError
from .execution import Execution

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_USAGE, EXIT_STATE = 0, 1, 2, 3
EXIT_CODES = """exit codes:
  0  the execution Succeeded (or the command did what it was asked)
  1  the execution Failed or was Stopped
  2  a usage or definition error: a bad argument, notebook, definition, parameter or graph
  3  the state folder or the store cannot be used: a corrupt or read-only database, a state
     path that is a file, a missing or corrupt artifact (`jupyter-pipelines doctor` checks it)"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jupyter-pipelines", epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run and inspect pipelines written as %%step cells in Jupyter notebooks.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a notebook's (or a definition JSON's) pipeline headless")
    run.add_argument("notebook", metavar="FILE", help="the .ipynb notebook or .json definition")
    add_run_options(run)
    show = sub.add_parser("show", help="print a notebook's (or a definition JSON's) DAG")
    show.add_argument("notebook", metavar="FILE", help="the .ipynb notebook or .json definition")
    show.add_argument("--dot", action="store_true", help="print Graphviz DOT text instead")
    show.add_argument("--svg", metavar="FILE",
                      help="also write the DAG as SVG (the widget's drawing, with its data-* attributes)")
    definition_cli.add_commands(sub)
    history_cli.add_commands(sub)
    registry_cli.add_commands(sub)
    doctor_cli.add_commands(sub)
    args = parser.parse_args(argv)
    commands = {"run": _run, "show": _show, "registry": registry_cli.run, **history_cli.COMMANDS,
                **definition_cli.COMMANDS, **doctor_cli.COMMANDS}
    try:
        return commands[args.command](args)
    except StateError as exc:
        return _error(exc, EXIT_STATE)
    except PipelineError as exc:
        return _error(exc, EXIT_USAGE)
    except BrokenPipeError:  # `... | head` closed the pipe: the reader has what it wanted
        _quiet_stdout()
        return EXIT_SUCCEEDED


def _error(exc: Exception, code: int) -> int:
    try:
        print(f"error: {exc}", file=sys.stderr)
    except BrokenPipeError:  # pragma: no cover - stderr closed too
        pass
    return code


def _quiet_stdout() -> None:
    """After a broken pipe, point stdout at devnull so the interpreter's final flush is silent."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def add_run_options(run) -> None:
    run.add_argument("--param", "-p", action="append", metavar="NAME=VALUE",
                     help="override a parameter (repeatable)")
    run.add_argument("--json", action="store_true",
                     help="print the execution as JSON (SageMaker's field names) instead of a table")
    run.add_argument("--verbose", "-v", action="store_true", help="show every step's output")
    run.add_argument("--from", dest="from_step", metavar="STEP", help="run this step and all downstream")
    run.add_argument("--to", dest="to_step", metavar="STEP", help="run this step and all upstream")
    run.add_argument("--only", nargs="+", metavar="STEP", help="run just these steps")
    run.add_argument("--executor", metavar="SPEC",
                     help="in-kernel (default), threads[:N] or processes[:N]: run independent "
                          "steps in parallel on N threads or worker processes; dask: on a Dask "
                          "LocalCluster; tcp://host:8786 (or dask://...): on that Dask cluster")
    run.add_argument("--max-parallel", type=int, metavar="N",
                     help="run at most N steps at once (SageMaker's ParallelismConfiguration)")
    run.add_argument("--no-cache", dest="cache", action="store_false",
                     help="run every step afresh, reusing no stored result")


def run_pipeline(pipeline, argv: list[str] | None = None, *, folder: str | Path = ".") -> int:
    """Run ``pipeline`` as ``jupyter-pipelines run`` would (what an exported script's
    ``__main__`` calls): the same options, progress display, report and exit codes; its state
    folder is beside ``folder`` unless the pipeline has a home."""
    from .registry_db import default_home

    parser = argparse.ArgumentParser(prog=f"python {Path(sys.argv[0]).name}",
                                     description=f"Run the {pipeline.name} pipeline.")
    add_run_options(parser)
    args = parser.parse_args(argv)
    if pipeline.home is None:
        pipeline.home = default_home(beside=Path(folder).resolve())
    try:
        return _start(pipeline, args, Path(folder))
    except StateError as exc:
        return _error(exc, EXIT_STATE)
    except PipelineError as exc:
        return _error(exc, EXIT_USAGE)


def _show(args) -> int:
    from .notebook import load_pipeline
    from .view import static_svg, to_text
    from .view.dot import to_dot

    pipeline = load_pipeline(args.notebook)
    graph = pipeline.graph()
    if args.svg:
        Path(args.svg).write_text(static_svg(pipeline.name, pipeline.parameters, graph))
        print(f"wrote {args.svg}", file=sys.stderr)
    # A structure-only drawing: nothing ran, so no statuses, durations or condition operands.
    if args.dot:
        shown = to_dot(pipeline.name, pipeline.parameters, graph, status_lines=False)
    else:
        shown = to_text(pipeline.name, pipeline.parameters, graph)
    print(shown)
    return 0


def _run(args) -> int:
    from .notebook import load_pipeline

    return _start(load_pipeline(args.notebook), args, Path(args.notebook).parent)


def _start(pipeline, args, folder: Path) -> int:
    from .parameters import parse_assignments, resolve

    overrides = parse_assignments(args.param)
    resolve(pipeline.parameters, overrides)  # bad parameters fail before the progress display
    select = {"from_step": args.from_step, "to_step": args.to_step, "only": args.only,
              "cache": args.cache, "executor": args.executor, "max_parallel": args.max_parallel}
    return execute(lambda listener: pipeline.start(overrides, listeners=[listener], **select),
                   len(pipeline.steps), folder, args)


def execute(start, total: int, folder: Path, args) -> int:
    """Run ``start(listener)`` in ``folder`` with a progress display; report; the exit code."""
    from rich.console import Console

    err = Console(stderr=True)
    with _progress(err, total) as listener, _working_dir(folder):
        try:
            execution = start(listener)
        except KeyboardInterrupt:  # pragma: no cover - interrupted before the run loop
            err.print("Interrupted.")
            return 1
    if args.json:
        doc = {"PipelineExecutionArn": execution.id,
               "PipelineExecutionStatus": execution.status,
               "FailureReason": execution.failure_reason,
               "Parameters": execution.parameters,
               "Steps": execution.list_steps()}
        print(json.dumps(doc, indent=2, default=repr))
    else:
        _print_summary(execution, Console(), getattr(args, "verbose", False))
    return EXIT_SUCCEEDED if execution.status == "Succeeded" else EXIT_FAILED


@contextmanager
def _working_dir(folder: Path):
    """Steps run beside their notebook, as they do in a kernel started from it."""
    before = Path.cwd()
    os.chdir(folder.resolve())
    try:
        yield
    finally:
        os.chdir(before)


@contextmanager
def _progress(console, total: int):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=True)
    task = progress.add_task("starting", total=total)

    def listener(event, *, execution, step=None, record=None, **future):
        if event == "step_started":
            progress.update(task, description=f"running {step}")
        elif event == "step_finished" and record is not None:
            progress.advance(task)
            mark = {"Succeeded": "[green]✓", "Failed": "[red]✗", "Skipped": "[dim]–",
                    "Stopped": "[yellow]■", "Cached": "[cyan]↺"}.get(record.status, " ")
            took = f" {record.duration:.2f}s" if record.duration is not None else ""
            progress.console.print(f"{mark} {step}[/] {record.status}{took}", highlight=False)

    with progress:
        yield listener


def _print_summary(execution: Execution, console, verbose: bool) -> None:
    from rich.table import Table

    table = Table(title=f"{execution.pipeline_name} · {execution.id}")
    for col in ("step", "kind", "status", "duration"):
        table.add_column(col, no_wrap=True)
    table.add_column("outcome", overflow="fold")
    colours = {"Succeeded": "green", "Failed": "red", "Stopped": "yellow", "Skipped": "dim",
               "Cached": "cyan", "NotRun": "dim"}
    for name, kind, status, duration, outcome in execution.summary_rows():
        style = colours.get(status, "")
        table.add_row(name, kind, f"[{style}]{status}[/]" if style else status, duration, outcome)
    console.print(table)
    for record in execution.steps.values():
        if (verbose or record.status == "Failed") and (record.stdout or record.stderr or record.traceback):
            console.rule(f"{record.name} output")
            console.print(record.stdout + record.stderr + (record.traceback or ""),
                          markup=False, highlight=False, end="")
    colour = "green" if execution.status == "Succeeded" else "red"
    line = f"[{colour}]Execution {execution.status}[/]"
    if execution.failure_reason:
        line += f": {execution.failure_reason}"
    console.print(line, highlight=False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
