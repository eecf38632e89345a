"""``jupyter-pipelines definition | export | validate``: the definition JSON from a shell."""

from __future__ import annotations

import sys
from pathlib import Path


def add_commands(sub) -> None:
    definition = sub.add_parser(
        "definition", help="print a pipeline's SageMaker-format definition JSON")
    definition.add_argument("source", help="a notebook (.ipynb) or a definition (.json)")
    definition.add_argument("-o", "--out", metavar="FILE", help="write it to FILE instead")
    export = sub.add_parser("export", help="write a pipeline as a definition JSON or a Python script")
    export.add_argument("source", help="a notebook (.ipynb) or a definition (.json)")
    export.add_argument("--format", "-f", choices=("json", "script"), default="json",
                        help="json: SageMaker's definition format; script: a Python module that "
                             "defines and runs the pipeline (default: json)")
    export.add_argument("-o", "--out", metavar="FILE", help="write it to FILE (default: stdout)")
    validate = sub.add_parser("validate", help="check a pipeline definition JSON")
    validate.add_argument("file", help="the .json file")


def _definition(args) -> int:
    args.format = "json"
    return _export(args)


def _export(args) -> int:
    from .notebook import load_pipeline

    pipeline = load_pipeline(args.source)
    if args.format == "json":
        text = pipeline.definition() + "\n"
    else:
        from .definition.script import to_script

        module = Path(args.out).stem if args.out else "pipeline"
        text = to_script(pipeline, origin=Path(args.source).name, module=module)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out} ({len(pipeline.steps)} steps, {len(pipeline.parameters)} "
              "parameters)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _validate(args) -> int:
    from .definition import from_definition

    path = Path(args.file)
    pipeline = from_definition(path, persist=False)  # schema, references, then each step
    external = sum(s.kind == "aws" for s in pipeline.steps.values())
    local = len(pipeline.steps) - external
    print(f"{path}: a valid pipeline definition: {len(pipeline.steps)} steps ({local} run here, "
          f"{external} only on AWS), {len(pipeline.parameters)} parameters.")
    return 0


COMMANDS = {"definition": _definition, "export": _export, "validate": _validate}
