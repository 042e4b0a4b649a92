"""nbgrader's check of the cells' nbgrader metadata, with its JSON schema checked once per process.

nbgrader's ``CheckCellMetadata`` calls ``jsonschema.validate`` for every cell,
which checks the (constant) schema against its meta-schema each time before
it checks the cell: about a quarter of an ``nbgrader autograde`` process's own
time on the kit's notebooks. :class:`CheckCellMetadata` here runs the same
checks with the same errors, the schema checked once.
"""

from __future__ import annotations

from functools import cache

import jsonschema
from nbgrader.nbgraderformat import MetadataValidator, ValidationError
from nbgrader.nbgraderformat.common import BaseMetadataValidator
from nbgrader.preprocessors import CheckCellMetadata as NbgraderCheckCellMetadata

FAILED = "Notebook failed to validate; the nbgrader metadata may be corrupted."  # nbgrader's words


@cache
def _schema_validator() -> jsonschema.protocols.Validator:
    """A validator of nbgrader's metadata schema (the schema itself checked here, once)."""
    schema = MetadataValidator().schema
    kind = jsonschema.validators.validator_for(schema)
    kind.check_schema(schema)
    return kind(schema)


class _SchemaCheckedOnce(BaseMetadataValidator):
    def validate_cell(self, cell) -> None:
        meta = cell.metadata.get("nbgrader")
        if meta is None or meta.get("schema_version", 0) != self.schema_version:
            return super().validate_cell(cell)  # nbgrader's own answer: nothing to check, or a version error
        error = jsonschema.exceptions.best_match(_schema_validator().iter_errors(meta))
        if error is not None:
            raise error


class _MetadataValidator(MetadataValidator, _SchemaCheckedOnce):
    """nbgrader's validator: its version's checks after the schema's, the schema checked once."""


class CheckCellMetadata(NbgraderCheckCellMetadata):
    """nbgrader's ``CheckCellMetadata`` (the same checks and errors), the schema checked once per process."""

    def preprocess(self, nb, resources):
        try:
            _MetadataValidator().validate_nb(nb)
        except ValidationError as err:
            self.log.error("%s: %s", type(err).__name__, str(err).splitlines()[0] if str(err) else "")
            self.log.error(FAILED)
            raise ValidationError(FAILED) from None
        return nb, resources
