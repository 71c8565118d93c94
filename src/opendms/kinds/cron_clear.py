"""DC_CRON_CLEAR: delete rows older than RemainDays, on a schedule (dms-api.md A.1.4). Once
approved it runs on its schedule, not on request; the schedule, its runs and their history
are ``execution.cleanup``."""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from sqlalchemy.orm import Session

from opendms.execution import cleanup
from opendms.identity.caller import Caller
from opendms.precheck.checks import StepFailed
from opendms.sql.cleanup import CleanupRefused
from opendms.store.models import Job, Order, utcnow
from opendms.tickets import cron
from opendms.tickets.kind import Execution, TicketKind
from opendms.tickets.params import Classify, DbItem, Intent, Name, Params


class CronClearItem(Params):
    table_name: Name
    column_name: Name
    remain_days: Annotated[int, Field(ge=0, le=36500)]
    time_unit: Literal["MILLISECONDS", "SECONDS"] | None = None
    filter_sql: Annotated[str, Field(max_length=65536)] | None = Field(
        default=None, alias="FilterSQL"
    )


class CronClear(Params):
    """DC_CRON_CLEAR's parameters (the ``execution.cleanup.CleanupOptions`` it reads)."""

    db_item_list: Annotated[list[DbItem], Field(min_length=1, max_length=100)]
    cron_clear_item_list: Annotated[list[CronClearItem], Field(min_length=1, max_length=100)]
    cron_format: Annotated[str, Field(min_length=1, max_length=256)]
    specify_duration: bool = Field(alias="specifyDuration")
    duration_hour: Annotated[int, Field(ge=1, le=24 * 366)] | None = None
    classify: Classify | None = None
    # Reclaim space (OPTIMIZE TABLE, VACUUM) after every N runs; 0 or absent: never. Not in
    # CreateDataCronClearOrder's Param: CreateOrder's PluginParam and the CLI set it.
    optimize_table_after_every_clear_times: Annotated[int, Field(ge=0, le=10_000)] | None = None

    @field_validator("cron_format")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:
            return cron.validate(value)
        except cron.CronError as exc:
            raise ValueError(f"not a valid DMS cron expression: {exc}") from None

    @model_validator(mode="after")
    def _duration(self) -> CronClear:
        if self.specify_duration and self.duration_hour is None:
            raise ValueError("DurationHour is required when specifyDuration is true")
        return self

    def intent(self) -> Intent:
        return Intent(
            kinds=frozenset({"DELETE"}),
            tables=tuple(i.table_name for i in self.cron_clear_item_list),
        )


def _options(params: CronClear) -> cleanup.CleanupOptions:
    return params  # mypy holds the model to the shape the cleanup reads


def config_fields(found: cleanup.Config) -> dict[str, Any]:
    """The schedule as GetDataCronClearConfig and GetDataCorrectOrderDetail show it, its
    times as datetimes (``gateway.wire.wire_times`` writes them as the API does)."""
    return {
        "CronFormat": found.cron_format,
        "CronStatus": found.status,
        "CronLastCallStartTime": found.last_call,
        "CronNextCallTime": found.next_call,
    }


class CronClearKind(TicketKind):
    plugin_type = "DC_CRON_CLEAR"
    summary = "Scheduled historical-data cleanup"
    params = CronClear
    has_precheck = True
    statement_kinds = frozenset({"DELETE"})
    detail_type = "CRON_CLEAR_DATA"
    execution = Execution("CRON_CLEAR_DATA", walk="chunks", scheduled=True)

    def approved(self, s: Session, order: Order) -> None:
        cleanup.arm(s, order)  # it runs on its schedule, not on request

    def run_finished(self, s: Session, order: Order, job: Job) -> None:
        cleanup.run_finished(s, order, job)

    def precheck_scripts(
        self, s: Session, order: Order, engines: Collection[str]
    ) -> dict[str, str] | None:
        """The DELETEs as they would run now, written for each engine."""
        try:
            return {e: cleanup.script(s, order, e, utcnow()) for e in engines}
        except CleanupRefused as exc:
            raise StepFailed(str(exc)) from None

    def with_reclaim_cadence(self, param: dict[str, Any], every: int) -> dict[str, Any] | None:
        return {**param, "OptimizeTableAfterEveryClearTimes": every}

    def detail_config(self, s: Session, caller: Caller, order: Order) -> dict[str, Any]:
        schedule = cleanup.config(s, caller, order.order_id)
        return {
            **{k: v for k, v in config_fields(schedule).items() if v is not None},
            "Cron": True,
            "CronCallTimes": schedule.call_times,
            "Duration": schedule.duration_hours,
            "CronExtConfig": {
                "OptimizeTableAfterEveryClearTimes": schedule.optimize_every,
                "CurrentClearTaskCount": schedule.reclaims,
            },
        }


KIND = CronClearKind()
