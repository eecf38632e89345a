"""A pipeline as a standalone Python module that defines it with the Python API and runs it
(``python pipeline.py --param NAME=VALUE``), for keeping a pipeline in version control as
code. Unlike the definition JSON it keeps any Python condition."""

from __future__ import annotations

from ..durations import iso_duration
from ..errors import ExportError
from ..steps import KINDS, make_step

_HEADER = '''"""The `{name}` pipeline{origin}, written by `jupyter-pipelines export --format script`.

Run it:     python {module}.py [--param NAME=VALUE ...] [--json] [--no-cache]
Import it:  from {module} import pipeline; execution = pipeline.start()
"""

from pathlib import Path

from jupyter_pipelines import Pipeline
from jupyter_pipelines.source import Context

# The notebook's imports and definitions: every step runs with them.
CONTEXT = {context}

pipeline = Pipeline({name!r}, context=Context.from_cells([CONTEXT]))
'''

_FOOTER = '''
if __name__ == "__main__":
    import sys

    from jupyter_pipelines.cli import run_pipeline

    sys.exit(run_pipeline(pipeline, sys.argv[1:], folder=Path(__file__).resolve().parent))
'''


def to_script(pipeline, *, origin: str | None = None, module: str = "pipeline") -> str:
    """The module's text. ``origin`` names the notebook it came from."""
    external = [s.name for s in pipeline.steps.values() if s.kind == "aws"]
    if external:
        raise ExportError(
            f"Step `{external[0]}` comes from a SageMaker definition and only runs on AWS, so a "
            "Python script cannot define it. Export the definition JSON instead.")
    pipeline.graph()  # a broken pipeline fails here, not when the script runs
    parts = [_HEADER.format(name=pipeline.name, origin=f" (from {origin})" if origin else "",
                            module=module, context=literal(pipeline.context.source))]
    for p in pipeline.parameters.values():
        extra = "".join([f", enum_values={list(p.enum_values)!r}" if p.enum_values else "",
                         f", type_name={p.type_name!r}" if p.type_name else ""])
        parts.append(f"pipeline.add_parameter({p.name!r}, {p.default!r}{extra})\n")
    for step in pipeline.steps.values():
        parts.append("\n" + _step_call(step))
    parts.append(_FOOTER)
    return "".join(parts)


def _step_call(step) -> str:
    """``pipeline.add_step(...)`` with only the arguments that differ from the defaults."""
    plain = make_step(step.name, step.code, step.kind, **step.options)
    args = [repr(step.name), literal(step.code), f"kind={step.kind!r}"]
    if step.reads != plain.reads:
        args.append(f"inputs={list(step.reads)!r}")
    if step.outputs != plain.outputs:
        args.append(f"outputs={list(step.outputs)!r}")
    if step.depends_on:
        args.append(f"depends_on={list(step.depends_on)!r}")
    defaults = KINDS[step.kind].options
    for key, value in step.options.items():
        if value != defaults.get(key) and value != ():
            args.append(f"{key}={list(value) if isinstance(value, tuple) else value!r}")
    if not step.cache:
        args.append("cache=False")
    if step.cache_expire is not None:
        args.append(f"cache_expire={iso_duration(step.cache_expire)!r}")
    if step.retry:
        args.append(f"retry={step.retry!r}, retry_backoff={step.retry_backoff!r}")
    for key in ("display_name", "description"):
        if getattr(step, key):
            args.append(f"{key}={getattr(step, key)!r}")
    return "pipeline.add_step(\n" + "".join(f"    {a},\n" for a in args) + ")\n"


def literal(text: str) -> str:
    """``text`` as a readable string literal: a raw triple-quoted block when it can be one
    (steps and the context strip the blank lines around it), else ``repr``."""
    if text.endswith("\\") or "\r" in text:
        return repr(text)
    for quotes in ('"""', "'''"):
        if quotes not in text:
            return f"r{quotes}\n{text}\n{quotes}"
    return repr(text)
