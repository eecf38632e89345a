"""``jupyter-pipelines registry list|describe|approve|reject``: the model registry from a shell.

`add_commands` adds the ``registry`` command to the main parser's subparsers; `run` carries it
out and returns the exit code (0). The registry is the one in the state folder `locate` finds
(``--notebook NB``, ``--home DIR``, ``$JUPYTER_PIPELINES_HOME``, ``./.jupyter_pipelines``, or
the one below the working directory that holds a registry). Registry mistakes (an unknown group
or version) raise `RegistryError`, which ``jupyter-pipelines`` prints and turns into exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .locate import REGISTRY, add_location_options, state_folder

ACTIONS = ("list", "describe", "approve", "reject")


def add_commands(subparsers) -> argparse.ArgumentParser:
    """Add ``registry`` (with its own subcommands) to ``subparsers``; returns its parser."""
    registry = subparsers.add_parser(
        "registry", help="list, describe, approve or reject registered models",
        description="The model registry: model package groups and their numbered versions.")
    actions = registry.add_subparsers(dest="registry_command", required=True, metavar="ACTION")

    def action(name: str, help: str, *, version: bool) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help, description=help)
        if version:
            parser.add_argument("group", metavar="GROUP", help="the model package group")
            parser.add_argument("version", metavar="VERSION",
                                help="a version number, 'latest' or 'latest-approved'")
        else:
            parser.add_argument("group", metavar="GROUP", nargs="?",
                                help="only this model package group (default: every group)")
        parser.add_argument("--json", action="store_true",
                            help="print JSON with SageMaker's field names instead of text")
        add_location_options(parser)
        return parser

    action("list", "list the model package versions, of one group or all", version=False)
    action("describe", "show one model package version: status, metrics, lineage", version=True)
    action("approve", "set a model package version's status to Approved", version=True)
    action("reject", "set a model package version's status to Rejected", version=True)
    return registry


def run(args: argparse.Namespace) -> int:
    """Carry out a parsed ``registry`` command; 0 on success (errors raise PipelineError)."""
    from . import registry

    home = state_folder(args, REGISTRY)
    command = args.registry_command
    if command == "list":
        packages = registry.list_packages(args.group, home=home, missing_ok=False)
        if args.json:
            _print_json({"ModelPackageSummaryList": [p.summary() for p in packages]})
        else:
            _print_table(packages, home)
        return 0
    if command == "describe":
        package = registry.describe(args.group, args.version, home=home)
        if args.json:
            _print_json(package.describe())
        else:
            print(package.to_text())
        return 0
    before = registry.describe(args.group, args.version, home=home)
    change = registry.approve if command == "approve" else registry.reject
    package = change(args.group, before.version, home=home)
    if args.json:
        _print_json(package.describe())
    else:
        print(f"{package.group} v{package.version}: {before.approval_status} -> "
              f"{package.approval_status}")
    return 0


def _print_json(doc: dict) -> None:
    print(json.dumps(doc, indent=2, default=str))


def _print_table(packages, home) -> None:
    from rich.console import Console
    from rich.text import Text

    from .tables import Column, print_table

    console = Console(file=sys.stdout)
    if not packages:
        console.print(f"No models registered in {Path(home) / 'registry.db'}.", markup=False,
                      highlight=False)
        return
    columns = [Column("group", head=True), Column("version", head=True, justify="right"),
               Column("status", head=True), Column("created", head=True),
               Column("execution", whole=True), Column("step"), Column("metrics", fold=True)]
    colours = {"Approved": "green", "Rejected": "red", "PendingManualApproval": "yellow"}
    rows = [[p.group, f"v{p.version}", Text(p.approval_status, style=colours.get(p.approval_status, "")),
             p.created[:19].replace("T", " "), p.execution_id or "", p.step_name or "",
             "" if p.metrics is None else json.dumps(p.metrics, default=str)] for p in packages]
    console.print(f"Registry: {Path(home) / 'registry.db'}", soft_wrap=True, markup=False,
                  highlight=False)
    print_table(console, "Model package versions", columns, rows)
