"""The pipeline definition JSON, in SageMaker's format (Version 2020-12-01).

    to_definition(pipeline) -> dict        export (`Pipeline.definition()` gives the text)
    from_definition(source) -> Pipeline    import: JSON text, a document or a path
    validate / validate_text               the schema and semantic checks (`validation`)
    to_script(pipeline) -> str             the pipeline as a Python module (`script`)
"""

from __future__ import annotations

from .export import to_definition
from .load import from_definition, read_document
from .validation import DefinitionValidationError, validate, validate_text

__all__ = ["DefinitionValidationError", "from_definition", "read_document", "to_definition",
           "validate", "validate_text"]
