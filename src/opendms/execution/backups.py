"""A statement run with its backup first, in the change's own transaction: the rows it is
about to overwrite copied on the target, or the keys it creates recorded (``sql.backup``)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlglot import exp

from opendms.sql.backup import BackupPlan, BackupRefused, fill_keys, plan_backup
from opendms.sql.statements import DIALECTS
from opendms.targets.base import Change, StatementError


@dataclass(frozen=True)
class Backup:
    """A statement's backup plan and the table on the target it fills."""

    plan: BackupPlan
    into: exp.Table
    name: str  # as the target's dialect writes it
    detail_id: int

    def record(self, rows: int) -> dict[str, Any]:
        """Where the backup is, as ``SqlJobDetail.backup`` keeps it."""
        plan = self.plan
        return {
            "table": self.name,
            "of": plan.table,
            "kind": plan.kind,
            "key": list(plan.key),
            "rows": rows,
        }


class BackupFailed(Exception):
    """The backup asked for cannot be made; the statement must not run."""


def apply(
    change: Change, statement: str, backup: Backup | None, engine: str
) -> tuple[int, int | None]:
    """Run ``statement``, with its backup first when asked: (rows it changed, rows saved)."""
    if backup is None:
        return change.execute(statement), None
    plan = backup.plan
    try:
        if plan.copy is not None:
            saved = change.execute(plan.copy)
            return change.execute(statement), saved
        if plan.returning is not None:
            created = change.query(plan.returning)
            if created:
                change.execute(fill_keys(backup.into, plan.key, created, engine))
            return len(created), len(created)
    except StatementError as exc:
        raise StatementError(f"backup failed: {exc.message}", lost_lock=exc.lost_lock) from exc
    keys = plan.keys or ()
    rows = change.execute(statement)
    if rows != len(keys):  # INSERT IGNORE skipped some: which ones is unknowable
        raise StatementError(
            f"backup failed: the INSERT wrote {rows} of its {len(keys)} rows, so the rows "
            "it created cannot be told apart"
        )
    if keys:
        change.execute(fill_keys(backup.into, plan.key, keys, engine))
    return rows, len(keys)


@dataclass(frozen=True)
class ChunkBackup:
    """The backup of a chunked statement: one table for all its chunks, each chunk copying
    its own rows there in its own transaction. Called with a chunk's statement, runs it."""

    change: Change
    engine: str
    base: Backup  # the whole statement's plan: where the table is, what it holds

    def __call__(self, statement: str) -> int:
        base = self.base
        try:
            plan = plan_backup(statement, self.engine, base.into, base.plan.key, transactional=True)
        except BackupRefused as exc:
            raise BackupFailed(str(exc)) from exc
        return apply(self.change, statement, replace(base, plan=plan), self.engine)[0]

    def saved(self) -> int:
        """The rows the table holds: every chunk's that committed."""
        count = exp.select(exp.Count(this=exp.Star())).from_(self.base.into.copy())
        found = self.change.query(count.sql(dialect=DIALECTS.get(self.engine, "mysql")))
        return int(found[0][0]) if found else 0

    def record(self, rows: int) -> dict[str, Any]:
        return self.base.record(rows)
