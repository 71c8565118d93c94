"""NDDL: a schema design on one base database, carried from stage to stage (``structure``):
its design is given and reviewed (UpdateSchemaDesign), tried and compared with every stage,
run on the base on its committer's word, submitted and approved, then run on each later
stage (ExecuteSchemaDesign), each statement on the live table without stopping its writers
(``execution.online``). The ticket succeeds once every stage has the design."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator
from sqlalchemy.orm import Session

from opendms.store.models import Job, Order
from opendms.structure import design
from opendms.tickets.kind import Execution, TicketKind
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
    plugin_type = design.PLUGIN_TYPE
    summary = "Schema design"
    params = SchemaDesign
    order_type = "NDDL"
    statement_kinds = design.DESIGN_KINDS
    execution = Execution("SCHEMA_DESIGN", walk="ddl", staged=True)

    def submit_refusal(self, s: Session, order: Order) -> str | None:
        return design.submit_refusal(s, order)

    def run_finished(self, s: Session, order: Order, job: Job) -> None:
        design.stage_finished(s, order, job)

    def approved(self, s: Session, order: Order) -> None:
        design.finish_if_every_stage_has_it(s, order)


KIND = SchemaDesignKind()
