"""NDDL: a schema design ticket on one base database. It is filed, approved and read; its
design and its changes are not run here yet."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from opendms.tickets.kind import TicketKind
from opendms.tickets.params import Id, Params


class SchemaDesign(Params):
    """NDDL's parameters."""

    title: Annotated[str, Field(min_length=1, max_length=256)]
    description: Annotated[str, Field(max_length=4096)] | None = None
    db_id: Id
    logic: bool = False
    related_ids: list[Id] | None = None

    @model_validator(mode="after")
    def _physical(self) -> SchemaDesign:
        if self.logic:
            raise ValueError("logical databases are not supported")
        return self


class SchemaDesignKind(TicketKind):
    plugin_type = "NDDL"
    summary = "Schema design"
    params = SchemaDesign
    order_type = "NDDL"


KIND = SchemaDesignKind()
