"""Where a pipeline keeps its state: one rule for the kernel, nbclient/nbval and the command line.

The same notebook is the same pipeline everywhere: named after the notebook
(``pipeline_name(stem)``), with its state folder ``.jupyter_pipelines/`` beside it.

1. ``$JUPYTER_PIPELINES_HOME``, when set, is the state folder of everything.
2. A notebook's state folder is ``.jupyter_pipelines/`` in the notebook's folder:
   ``jupyter-pipelines run NB``, ``--notebook NB``, and a kernel that can tell its notebook
   (`kernel_notebook`: VS Code's ``__vsc_ipynb_file__``, the Jupyter server's
   ``JPY_SESSION_NAME``, IPython's ``__session__``). A kernel that cannot (plain IPython,
   nbclient without ``JPY_SESSION_NAME`` in the kernel's environment, nbval) names its pipeline
   ``pipeline`` and uses ``.jupyter_pipelines/`` in its working directory.
3. A command given neither ``--home`` nor ``--notebook`` uses ``./.jupyter_pipelines`` if it
   holds what the command reads, else the one state folder that does among those of notebooks
   up to two folders below the working directory (and says which on stderr); none or several
   is an error that lists what was looked at and how to choose.
4. An execution ID alone is looked up in every folder rule 3 would consider.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .errors import PipelineError, StateError, did_you_mean
from .parameters import pipeline_name
from .registry_db import default_home

STATE_DIR = ".jupyter_pipelines"
HISTORY, REGISTRY = "history.db", "registry.db"
_WHAT = {HISTORY: "an execution history (history.db)", REGISTRY: "a model registry (registry.db)",
         None: "state (history.db or registry.db)"}
_SKIP = {"node_modules", "__pycache__", "site-packages", "venv", "env", "build", "dist"}
_MAX_DIRS = 2000  # folders listed while searching below the working directory
HOW_TO_CHOOSE = ("Choose the folder with --notebook NOTEBOOK (the state folder beside it), "
                 "--home DIR, or the JUPYTER_PIPELINES_HOME environment variable.")


# -- the kernel ---------------------------------------------------------------------------------

def kernel_notebook(user_ns: dict | None = None, environ=None, cwd: Path | None = None) -> Path | None:
    """The path of the notebook this kernel runs, when the front end says it: VS Code's
    ``__vsc_ipynb_file__``, the Jupyter server's ``JPY_SESSION_NAME`` (absolute, or relative to
    the server's root) or IPython's ``__session__``; else None."""
    user_ns = user_ns or {}
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else Path(cwd)
    for text in (user_ns.get("__vsc_ipynb_file__"), environ.get("JPY_SESSION_NAME"),
                 user_ns.get("__session__")):
        if isinstance(text, str) and text.strip().lower().endswith(".ipynb"):
            return _resolve(text.strip(), cwd)
    return None


def _resolve(text: str, cwd: Path) -> Path:
    path = Path(text).expanduser()
    if path.is_absolute():
        return path
    for candidate in (cwd / path, cwd / path.name):
        if candidate.is_file():
            return candidate.resolve()
    return cwd.resolve() / path.name  # the kernel runs in its notebook's folder


def notebook_home(notebook: Path | None) -> Path | None:
    """A kernel pipeline's ``home``: None (the lazy default, so ``$JUPYTER_PIPELINES_HOME`` and
    the working directory still apply) unless the notebook is known and the variable unset."""
    if notebook is None or os.environ.get("JUPYTER_PIPELINES_HOME", "").strip():
        return None
    return default_home(beside=notebook.parent)


def no_executions_text(name: str | None, folder: Path, notebook: Path | None, *,
                       kernel: bool = False) -> str:
    """Why a history lists no executions (of pipeline ``name``), and where else to look."""
    if name is None:
        return f"No executions recorded in {folder} yet. {_after_run(HISTORY)}"
    text = f"No executions of pipeline `{name}` recorded in {folder} yet."
    if kernel and notebook is None:
        text += (" This kernel cannot tell which notebook it runs (no JPY_SESSION_NAME, "
                 "__session__ or __vsc_ipynb_file__), so its pipeline is named `pipeline` and keeps "
                 "its state in .jupyter_pipelines/ of the working directory, while "
                 "`jupyter-pipelines run NOTEBOOK` names it after the notebook. Under nbclient, "
                 "start the kernel with JPY_SESSION_NAME=<the notebook's path> in its environment.")
    others = _pipelines_in(folder) - {name}
    if others:
        text += (" That history holds executions of " + ", ".join(f"`{p}`" for p in sorted(others))
                 + f": `jupyter-pipelines executions --home {folder}` lists them all.")
        if "pipeline" in others and not kernel:
            text += (" (`pipeline` is the name of runs made in a kernel that could not tell "
                     "which notebook it runs.)")
    return text


def _pipelines_in(folder: Path) -> set[str]:
    _settled()
    if not (Path(folder) / HISTORY).is_file():
        return set()
    from .store.workspace import Workspace

    return {doc["pipeline"] for doc in
            Workspace.open(str(Path(folder).resolve())).history.executions(limit=500)}


# -- the command line ---------------------------------------------------------------------------

def add_location_options(parser) -> None:
    """``--notebook NB`` and ``--home DIR`` (one or the other) for a command reading state."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--notebook", metavar="NOTEBOOK",
                       help="use the state folder beside this notebook (and, for the history, "
                            "only its pipeline's executions)")
    where.add_argument("--home", metavar="DIR",
                       help="use this state folder (default: $JUPYTER_PIPELINES_HOME, else "
                            "./.jupyter_pipelines, else the one found below the working directory)")


def notebook_pipeline(args) -> str | None:
    """With ``--notebook``, the name of its pipeline (a definition .json's own name)."""
    notebook = getattr(args, "notebook", None)
    if not notebook:
        return None
    path = Path(notebook)
    if path.suffix.lower() == ".json":
        try:
            meta = (json.loads(path.read_text(encoding="utf-8")).get("Metadata") or {})
            name = (meta.get("JupyterPipelines") or {}).get("PipelineName")
        except (OSError, ValueError, AttributeError):
            name = None
        return name or pipeline_name(path.stem)
    return pipeline_name(path.stem)


def state_folder(args, need: str | None = HISTORY, *, announce: bool = True) -> Path:
    """The state folder a command reads (``args.notebook``, ``args.home``, else the rule above);
    ``need`` is the file it must hold (None: any state folder)."""
    folders, looked = candidates(args, need)
    if len(folders) == 1:
        if announce and looked.get("found below"):
            print(f"Using the state folder {_show(folders[0])}: the only one below {Path.cwd()} "
                  f"with {_WHAT[need]}. --notebook NOTEBOOK or --home DIR choose another.",
                  file=sys.stderr)
        return folders[0]
    if not folders:
        raise PipelineError(f"No state folder with {_WHAT[need]} found: looked in "
                            f"{'; '.join(looked['places'])}. A notebook's state folder "
                            f".jupyter_pipelines/ is made beside it when its pipeline first runs "
                            f"(`jupyter-pipelines run NOTEBOOK`)"
                            + (", its registry.db when a register-model step first runs"
                               if need == REGISTRY else "") + f". {HOW_TO_CHOOSE}")
    raise PipelineError(f"Several state folders below {Path.cwd()} hold {_WHAT[need]}: "
                        f"{'; '.join(_listing(f) for f in folders)}. Say which one: e.g. "
                        f"{_example(folders[0])}. {HOW_TO_CHOOSE}")


def candidates(args, need: str | None = HISTORY, *, everywhere: bool = False) -> tuple[list[Path], dict]:
    """The state folders that could be meant, and a description of where it looked. With
    ``--home``/``--notebook``/``$JUPYTER_PIPELINES_HOME`` exactly one (or an error); else
    ``./.jupyter_pipelines`` if it holds ``need``, else those below (``everywhere``: both)."""
    _settled()
    home, notebook = getattr(args, "home", None), getattr(args, "notebook", None)
    if home:
        return [_explicit(Path(home), "--home", need)], {}
    if notebook:
        return [_beside(Path(notebook), need)], {}
    env = os.environ.get("JUPYTER_PIPELINES_HOME", "").strip()
    if env:
        return [_explicit(Path(env).expanduser(), "JUPYTER_PIPELINES_HOME", need)], {}
    here = Path(STATE_DIR)
    places = [f"./{STATE_DIR} ({_state_of(here, need)})"]
    if _holds(here, need) and not everywhere:
        return [here.resolve()], {"places": places}
    below = [here.resolve()] if _holds(here, need) else []
    below += _below(Path.cwd(), need)
    places.append(f"the {STATE_DIR} folders up to two levels below {Path.cwd()} ("
                  + (f"{len(below)} with {_WHAT[need]}" if below else "none") + ")")
    return below, {"places": places, "found below": True}


def _explicit(folder: Path, flag: str, need: str | None) -> Path:
    """``--home`` or ``$JUPYTER_PIPELINES_HOME``: used as given. A registry that is not there
    yet is an empty registry; a missing history is an error saying so."""
    if folder.exists() and not folder.is_dir():
        raise StateError(f"{flag} {folder} is a file, not a state folder. A state folder is the "
                         f"directory holding history.db and registry.db (a notebook's is "
                         f".jupyter_pipelines/ beside it): point {flag} at that directory.")
    if flag == "--home" and not folder.is_dir():
        raise PipelineError(f"--home {folder}: there is no such folder. Give an existing state "
                            f"folder (a notebook's is .jupyter_pipelines/ beside it), or use "
                            f"--notebook NOTEBOOK.")
    if need == HISTORY and not (folder / need).is_file():
        contents = _contents(folder) if folder.is_dir() else "it does not exist"
        raise PipelineError(f"There is no execution history in {folder} ({flag}; {contents}). "
                            f"{_after_run(need)} {HOW_TO_CHOOSE}")
    return folder.resolve()


def _beside(notebook: Path, need: str | None) -> Path:
    if not notebook.is_file():
        near = [p.name for p in notebook.parent.glob("*.ipynb")] if notebook.parent.is_dir() else []
        hint = did_you_mean(notebook.name, near)
        if not hint and near:
            hint = " Notebooks there: " + ", ".join(sorted(near)[:8]) + "."
        raise PipelineError(f"--notebook {notebook}: there is no such file.{hint} Give the path "
                            "of the .ipynb notebook (or .json definition) whose state to read.")
    folder = default_home(beside=notebook.resolve().parent)
    if folder.exists() and not folder.is_dir():
        raise StateError(f"The state folder of {notebook}, {folder}, is a file, not a folder. "
                         "Move it away (the state folder is made again when the pipeline runs), "
                         "or use --home DIR.")
    if need == HISTORY and not (folder / need).is_file():
        what = f"{folder} ({_contents(folder)})" if folder.is_dir() else f"{folder} (absent)"
        raise PipelineError(f"Notebook {notebook} has no execution history yet: its state folder "
                            f"is {what}. {_after_run(need, notebook)}")
    return folder.resolve()


def _after_run(need: str | None, notebook: Path | None = None) -> str:
    run = f"`jupyter-pipelines run {notebook or 'NOTEBOOK'}`"
    if need == REGISTRY:
        return f"It is made when a register-model step first runs (e.g. {run})."
    return f"It is made when the pipeline first runs ({run} or %pipeline run in Jupyter)."


def _settled() -> None:
    """What this process ran is committed: a run in a new state folder makes its history.db
    with its first commit, which the history's thread may be making still (`store.writer`)."""
    from .store.history import settle_all

    settle_all()


def _holds(folder: Path, need: str | None) -> bool:
    return folder.is_dir() and (need is None or (folder / need).is_file())


def _state_of(folder: Path, need: str | None) -> str:
    if not folder.exists():
        return "absent"
    if not folder.is_dir():
        return "a file"
    return f"present, without {need}" if need and not (folder / need).is_file() else "found"


def _contents(folder: Path) -> str:
    names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    return "it holds " + ", ".join(names[:6]) if names else "it is empty"


def _below(root: Path, need: str | None) -> list[Path]:
    """State folders holding ``need`` one or two levels below ``root`` (hidden folders and
    package trees skipped; at most `_MAX_DIRS` folders listed)."""
    found, listed, level = [], 0, [root]
    for _depth in range(2):
        following = []
        for parent in level:
            try:
                children = sorted(p for p in parent.iterdir() if p.is_dir())
            except OSError:
                continue
            for child in children:
                if child.name.startswith(".") or child.name in _SKIP:
                    continue
                listed += 1
                if listed > _MAX_DIRS:
                    return found
                if _holds(child / STATE_DIR, need):
                    found.append((child / STATE_DIR).resolve())
                following.append(child)
        level = following
    return found


def _show(folder: Path) -> str:
    try:
        return str(folder.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(folder)


def _listing(folder: Path) -> str:
    notebooks = sorted(p.name for p in folder.parent.glob("*.ipynb"))
    return _show(folder) + (f" (beside {', '.join(notebooks[:5])})" if notebooks else "")


def _example(folder: Path) -> str:
    notebooks = sorted(folder.parent.glob("*.ipynb"))
    if notebooks:
        return f"--notebook {_show(notebooks[0])}"
    return f"--home {_show(folder)}"


# -- an execution ID alone ----------------------------------------------------------------------

def execution_folder(args, execution_id: str) -> Path:
    """The state folder whose history holds ``execution_id`` (or a unique part of it), among
    those `candidates` gives; an unknown or ambiguous ID is an error naming the folders."""
    from .store.workspace import Workspace

    folders, looked = candidates(args, HISTORY, everywhere=True)
    if len(folders) == 1 and not looked.get("found below"):
        return folders[0]
    if not folders:
        return state_folder(args, HISTORY)  # raises, listing where it looked
    holding, known = [], []
    for folder in folders:
        history = Workspace.open(str(folder)).history
        if history.execution(execution_id) is not None:
            holding.append(folder)
        known += [doc["id"] for doc in history.executions(limit=50)]
    if len(holding) == 1:
        if looked.get("found below"):
            print(f"Execution {execution_id} is in the state folder {_show(holding[0])}.",
                  file=sys.stderr)
        return holding[0]
    where = "; ".join(_show(f) for f in folders)
    if holding:
        raise PipelineError(f"Execution `{execution_id}` matches executions in several state "
                            f"folders: {'; '.join(_show(f) for f in holding)}. Give the whole ID "
                            f"or say which folder. {HOW_TO_CHOOSE}")
    raise PipelineError(f"No execution `{execution_id}` in the histories at {where}."
                        f"{did_you_mean(execution_id, known)} `jupyter-pipelines executions` "
                        f"(with --notebook NOTEBOOK or --home DIR) lists them.")
