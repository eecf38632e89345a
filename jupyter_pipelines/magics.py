"""``%%parameters``, ``%%step`` and ``%pipeline``: parse the line, hand off to the session.

Argument mistakes raise IPython's `UsageError` (one line, no traceback). Everything else is
done by `Session` and `Pipeline`, which are just as usable from a ``.py`` file or a test.
"""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .parameters import parse_assignments
from .session import Session

COMMANDS = ("run", "show", "edit", "steps", "remove", "reset", "executions", "describe", "why",
            "retry", "definition", "load", "doctor")
STEP_KINDS = ("processing", "training", "condition", "fail", "register-model", "create-model",
              "transform")
_OPTION_FLAGS = ("model", "if_steps", "else_steps", "group", "approval_status", "metrics",
                 "data", "batch_size", "instance_count")


@magics_class
class PipelineMagics(Magics):
    def __init__(self, shell):
        super().__init__(shell)
        self.session = Session(shell)

    @cell_magic
    def parameters(self, line: str, cell: str):
        """Declare the pipeline's parameters: one ``name = literal`` per line.

        The type (String, Integer, Float, Boolean) comes from the default; override values
        per run with ``%pipeline run --param name=value``.
        """
        if line.strip():
            raise UsageError("%%parameters takes no arguments; put `name = value` lines in the cell.")
        self.session.define_parameters(cell)

    @magic_arguments()
    @argument("name", help="The step's name: 1-64 letters, digits, '_' or '-'.")
    @argument("--kind", "-k", default="processing", choices=STEP_KINDS, help="The step's kind.")
    @argument("--inputs", nargs="+", metavar="NAME", help="Names the step reads (default: inferred).")
    @argument("--outputs", nargs="+", metavar="NAME", help="Names the step outputs (default: inferred).")
    @argument("--depends-on", nargs="+", metavar="STEP", help="Run after these steps (order only).")
    @argument("--model", help="training: the estimator output (default `model`); register-model/"
                              "create-model: the model input; transform: the create-model step.")
    @argument("--if", dest="if_steps", nargs="+", metavar="STEP", help="condition: steps run when True.")
    @argument("--else", dest="else_steps", nargs="+", metavar="STEP", help="condition: steps run when False.")
    @argument("--group", help="register-model: the model package group.")
    @argument("--approval-status", help="register-model: PendingManualApproval, Approved, Rejected, "
                                        "or a parameter's name.")
    @argument("--metrics", help="register-model: the input holding the model's metrics.")
    @argument("--data", help="transform: the input holding the rows to predict.")
    @argument("--batch-size", type=int, help="transform: rows per batch (default 1024).")
    @argument("--instance-count", type=int, metavar="N",
              help="transform: split the rows into N parts run in parallel on the executor.")
    @argument("--no-cache", dest="cache", action="store_false",
              help="Always run the step, never reuse a stored result.")
    @argument("--cache-expire", metavar="DURATION",
              help="How long a stored result stays valid, ISO-8601 (e.g. P30D, PT12H).")
    @argument("--retry", type=int, default=0, metavar="N",
              help="Retry the step up to N times when its code raises.")
    @argument("--retry-backoff", type=float, default=1.0, metavar="SECONDS",
              help="Seconds before the first retry, doubling after each (default 1).")
    @argument("--display-name", metavar="TEXT", help="A display name (SageMaker's DisplayName).")
    @argument("--description", metavar="TEXT", help="What the step does (SageMaker's Description).")
    @cell_magic
    def step(self, line: str, cell: str):
        """Define a pipeline step from this cell and run it (with the upstream it needs).

        Inputs are the names the code reads that are parameters or other steps' outputs;
        outputs are the names it assigns at top level (``_private`` names excepted).
        """
        spec = parse_step_line(line)
        name = spec.pop("name")
        code = self.shell.transform_cell(cell) if cell.strip() else ""
        self.session.define_step(name, code, source=f"%%step {line.strip()}",
                                 cell_text=f"%%step {line}\n{cell}", **spec)
        self.session.run_step(name)

    @magic_arguments()
    @argument("command", choices=COMMANDS,
              help="run: run the pipeline; show: draw the DAG; edit: the drag-and-drop editor; "
                   "steps: list the steps; "
                   "remove NAME: delete a step; reset: delete all steps and parameters; "
                   "executions: list recorded executions; describe [EXECUTION]: one execution; "
                   "why STEP: why a step ran; retry [EXECUTION]: resume a failed execution; "
                   "definition: the SageMaker-format definition JSON; load FILE: the pipeline "
                   "of a definition JSON; doctor: check the state folder (--repair marks what "
                   "is broken).")
    @argument("names", nargs="*", help="remove: step(s); why: a step; describe/retry: an "
                                       "execution; load: a .json file.")
    @argument("--param", "-p", action="append", metavar="NAME=VALUE",
              help="run: override a parameter (repeatable).")
    @argument("--from", dest="from_step", metavar="STEP", help="run: this step and all downstream.")
    @argument("--to", dest="to_step", metavar="STEP", help="run: this step and all upstream.")
    @argument("--only", nargs="+", metavar="STEP", help="run: just these steps.")
    @argument("--no-cache", dest="cache", action="store_false",
              help="run: run every step afresh, reusing no stored result.")
    @argument("--executor", metavar="SPEC",
              help="run/retry: in-kernel (default), threads[:N] or processes[:N] (a warm pool), "
                   "dask (a LocalCluster) or a Dask scheduler's address (tcp://host:8786).")
    @argument("--max-parallel", type=int, metavar="N", help="run/retry: at most N steps at once.")
    @argument("--out", "-o", metavar="FILE", help="definition: write the JSON to FILE.")
    @argument("--view-only", action="store_true",
              help="load: draw the definition without replacing the notebook's pipeline.")
    @argument("--repair", action="store_true",
              help="doctor: mark broken stored results so the next run recomputes them.")
    @line_magic
    def pipeline(self, line: str):
        """Run, show or change the notebook's pipeline. ``ex = %pipeline run`` keeps the
        execution."""
        args = parse_argstring(self.pipeline, line)
        pipe = self.session.pipeline
        allowed = {"remove": None, "why": 1, "describe": 1, "retry": 1, "load": 1}
        if args.names and (args.command not in allowed or
                           (allowed[args.command] and len(args.names) > allowed[args.command])):
            raise UsageError(f"%pipeline {args.command} does not take {' '.join(args.names)!r}.")
        run_flags = args.param or args.from_step or args.to_step or args.only or not args.cache
        if run_flags and args.command != "run":
            raise UsageError("--param, --from, --to, --only and --no-cache are for %pipeline run.")
        if (args.executor or args.max_parallel is not None) and args.command not in ("run", "retry"):
            raise UsageError("--executor and --max-parallel are for %pipeline run and retry.")
        if args.out and args.command != "definition":
            raise UsageError("--out is for %pipeline definition.")
        if args.view_only and args.command != "load":
            raise UsageError("--view-only is for %pipeline load.")
        if args.repair and args.command != "doctor":
            raise UsageError("--repair is for %pipeline doctor.")
        if args.command == "doctor":
            return pipe.doctor(repair=args.repair)
        if args.command == "definition":
            return self.session.definition(_text(args.out))
        if args.command == "load":
            if not args.names:
                raise UsageError("%pipeline load needs a definition file, e.g. %pipeline load "
                                 "abalone.json.")
            return self.session.load(_text(args.names[0]), view_only=args.view_only)
        if args.command == "run":
            return self.session.run(parse_assignments(args.param), from_step=args.from_step,
                                    to_step=args.to_step, only=args.only, cache=args.cache,
                                    executor=_text(args.executor), max_parallel=args.max_parallel)
        if args.command == "retry":
            return self.session.retry(args.names[0] if args.names else None,
                                      executor=_text(args.executor), max_parallel=args.max_parallel)
        if args.command == "executions":
            import pandas as pd

            rows = pipe.list_executions()
            if not rows:  # say where it looked and under which name (locate.py)
                from .locate import no_executions_text

                print(no_executions_text(pipe.name, pipe.state_dir, self.session.notebook,
                                         kernel=True))
            return pd.DataFrame(rows).set_index("PipelineExecutionArn") if rows else pd.DataFrame()
        if args.command == "describe":
            return pipe.load_execution(args.names[0] if args.names else None)
        if args.command == "why":
            if not args.names:
                raise UsageError("%pipeline why needs a step name, e.g. %pipeline why AbaloneTrain.")
            print(pipe.why(args.names[0]))
            return None
        if args.command == "edit":
            return self.session.edit()
        if args.command == "show":
            from .view import live_view

            self.session.refresh_context()
            latest = pipe.executions[-1] if pipe.executions else self.session.latest_recorded()
            return live_view(pipe, latest)
        if args.command == "steps":
            import pandas as pd

            self.session.refresh_context()
            return pd.DataFrame(pipe.list_steps()).set_index("Name") if pipe.steps else pd.DataFrame()
        if args.command == "remove":
            if not args.names:
                raise UsageError("%pipeline remove needs the name of the step to remove.")
            for name in args.names:
                pipe.remove_step(name)
            self.session.changed()
            return None
        self.session.reset()
        self.session.changed()
        return None


def parse_step_line(line: str) -> dict:
    """The ``%%step`` line as keyword arguments for `make_step` (also used by the CLI)."""
    args = parse_argstring(PipelineMagics.step, line)
    spec = {"name": args.name, "kind": args.kind, "inputs": args.inputs, "outputs": args.outputs,
            "depends_on": args.depends_on, "cache": args.cache, "cache_expire": args.cache_expire,
            "retry": args.retry, "retry_backoff": args.retry_backoff,
            "display_name": _text(args.display_name), "description": _text(args.description)}
    for flag in _OPTION_FLAGS:
        value = getattr(args, flag)
        if value is not None:
            spec[flag] = value
    return spec


def _text(value: str | None) -> str | None:
    """A flag's text without the quotes the shell-like parser keeps (``--description "a b"``)."""
    if value and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value
