"""``%registry list|describe|approve|reject``: the model registry from a notebook.

    %registry list [GROUP]                  -> a DataFrame, one row per version
    %registry describe GROUP VERSION        -> the ModelPackage (shows every field)
    %registry approve GROUP VERSION         -> the updated ModelPackage
    %registry reject GROUP VERSION          -> the updated ModelPackage

VERSION is a number, ``latest`` or ``latest-approved``. The registry is the notebook
pipeline's (its state folder), unless ``--home DIR`` says otherwise. Argument mistakes raise
IPython's `UsageError`; registry mistakes (an unknown group or version) raise `RegistryError`.
"""

from __future__ import annotations

from pathlib import Path

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from . import registry

ACTIONS = ("list", "describe", "approve", "reject")


@magics_class
class RegistryMagics(Magics):
    @magic_arguments()
    @argument("action", choices=ACTIONS,
              help="list [GROUP]: the versions; describe GROUP VERSION: one version's fields; "
                   "approve/reject GROUP VERSION: set its approval status.")
    @argument("group", nargs="?", help="The model package group.")
    @argument("version", nargs="?", help="A version number, 'latest' or 'latest-approved'.")
    @argument("--home", help="The state folder holding registry.db (default: the notebook "
                             "pipeline's, $JUPYTER_PIPELINES_HOME or ./.jupyter_pipelines).")
    @line_magic
    def registry(self, line: str):
        """List, describe, approve or reject registered model versions.
        ``df = %registry list`` keeps the table; ``pkg = %registry describe G 3`` the package."""
        args = parse_argstring(self.registry, line)
        home = Path(args.home) if args.home else _notebook_home()
        if args.action == "list":
            if args.version is not None:
                raise UsageError(f"%registry list takes at most a GROUP (got {args.group} "
                                 f"{args.version}).")
            return _frame(registry.list_packages(args.group, home=home, missing_ok=False))
        if args.group is None or args.version is None:
            raise UsageError(f"%registry {args.action} needs a GROUP and a VERSION (a number, "
                             f"'latest' or 'latest-approved'), e.g. %registry {args.action} "
                             f"{args.group or 'MyModels'} 1.")
        if args.action == "describe":
            return registry.describe(args.group, args.version, home=home)
        change = registry.approve if args.action == "approve" else registry.reject
        return change(args.group, args.version, home=home)


def _notebook_home() -> Path:
    """The state folder of the notebook's pipeline (where its register-model steps register)."""
    from . import PipelineError, current

    try:
        return current().state_dir
    except PipelineError:  # the pipeline magics are not loaded
        return registry.default_home()


def _frame(packages):
    import pandas as pd

    columns = list(registry.ModelPackage("", 0, "", None, None, None, "", "").summary())
    rows = [{**p.summary(), "ModelMetrics": p.metrics} for p in packages]
    return pd.DataFrame(rows, columns=[*columns, "ModelMetrics"])
