"""Reading a pipeline out of a file: an ``.ipynb`` notebook (its ``%%parameters`` and
``%%step`` cells, and the imports and definitions of its other code cells, the context) or a
pipeline definition ``.json``. Its state folder is beside the file."""

from __future__ import annotations

from pathlib import Path

from .errors import DefinitionError, PipelineError
from .parameters import parse_parameters_cell, pipeline_name
from .pipeline import Pipeline
from .registry_db import default_home
from .source import Context


def load_pipeline(path: str | Path) -> Pipeline:
    """A notebook's pipeline, or a definition JSON's (by the file's suffix)."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        return load_notebook(path)
    from .definition import from_definition
    from .definition.load import read_file

    read_file(path)  # a missing file or a folder named before the state folder is looked up
    return from_definition(path, home=default_home(beside=path.resolve().parent))


def load_notebook(path: str | Path) -> Pipeline:
    path = Path(path)
    if not path.is_file():  # before the imports below, which take a second
        found = "is a folder" if path.is_dir() else "does not exist"
        raise DefinitionError(f"Notebook {str(path)!r} {found}. Give the path of an .ipynb file.")

    import nbformat
    from IPython.core.error import UsageError
    from IPython.core.inputtransformer2 import TransformerManager

    from .magics import parse_step_line
    from .steps import make_step

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:
        raise DefinitionError(f"{path} is not a readable notebook: {exc}.") from None
    transform = TransformerManager().transform_cell
    home = default_home(beside=path.resolve().parent)
    pipeline = Pipeline(pipeline_name(path.stem), home=home)
    context_cells, step_cells = [], []
    for number, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code":
            continue
        first, _, body = cell.source.lstrip().partition("\n")
        magic = first.split(maxsplit=1)
        where = f"{path.name}, cell {number} ({first.strip()[:60]})"
        try:
            if magic and magic[0] == "%%parameters":
                for p in parse_parameters_cell(body):
                    pipeline.add_parameter(p.name, p.default, enum_values=p.enum_values)
            elif magic and magic[0] == "%%step":
                spec = parse_step_line(magic[1] if len(magic) > 1 else "")
                _refuse_duplicate(spec["name"], step_cells)
                step_cells.append((where, spec, transform(body) if body.strip() else ""))
            else:
                context_cells.append(transform(cell.source))
        except UsageError as exc:
            raise DefinitionError(f"{where}: {exc}") from None
        except PipelineError as exc:
            exc.args = (f"{where}: {exc}",)
            raise
    pipeline.context = Context.from_cells(context_cells)
    for where, spec, code in step_cells:
        try:
            pipeline.add_step(make_step(spec.pop("name"), code, **spec))
        except PipelineError as exc:
            exc.args = (f"{where}: {exc}",)
            raise
    if not pipeline.steps:
        raise DefinitionError(f"{path} has no %%step cells, so there is no pipeline to run.")
    try:
        pipeline.graph()  # graph errors now, naming the notebook, before anything runs
    except PipelineError as exc:
        exc.args = (f"{path.name}: {exc}",)
        raise
    return pipeline


def _refuse_duplicate(name: str, step_cells: list) -> None:
    """In a kernel the later cell would replace the earlier one's step; headless that would
    silently drop a step the notebook shows, so it is an error naming both cells."""
    for where, spec, _ in step_cells:
        if spec["name"] == name:
            raise DefinitionError(
                f"step `{name}` is already defined by an earlier cell ({where}). Each step is "
                "defined by one %%step cell: rename one of them, or delete the one you no longer "
                "need.")
