"""A statement run with its backup first, in the change's own transaction: the rows it is
about to overwrite copied on the target, or the keys it creates recorded (``sql.backup``)."""

from __future__ import annotations

import re
import uuid
from contextlib import suppress
from dataclasses import dataclass, field, replace
from typing import Any

from sqlglot import exp

from opendms.sql.backup import BackupPlan, BackupRefused, fill_keys, plan_backup
from opendms.sql.statements import DIALECTS
from opendms.targets.base import Change, StatementError, TargetError


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


def attempt_table(base: str) -> str:
    """The backup table of one attempt at a statement whose tables are named ``base``: a
    table per attempt (``execution.run.Execute._prepare_backup`` says why)."""
    return f"{base}_{uuid.uuid4().hex[:8]}"


def _is_attempt_of(base: str, name: str) -> bool:
    return re.fullmatch(re.escape(base) + r"_[0-9a-f]{8}", name) is not None


@dataclass(frozen=True)
class Swept:
    """What :func:`sweep` did: tables dropped, and tables left with the reason."""

    dropped: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    why: str | None = None  # why some were left, or why none could be looked for


def sweep(change: Change, base: str, kept: str, engine: str) -> Swept:
    """Drop the backup tables that earlier attempts at one statement left on the target
    (cut short by a crash before they could drop their own), once the statement's marker
    is known. ``kept``: the table the marker names (as the target's dialect writes it),
    never dropped. Every attempt but the one that wrote the marker can no longer commit, so
    its table holds nothing a rollback script will read. Never raises: the statement has
    committed whatever happens here."""
    dialect = DIALECTS.get(engine, "mysql")
    try:
        found = [n for n in change.own_tables(f"{base}_") if _is_attempt_of(base, n)]
    except (StatementError, TargetError) as exc:
        with suppress(StatementError, TargetError):
            change.rollback()
        return Swept(why=f"listing the tables {base}_* of OpenDMS's space failed: {exc.message}")
    dropped, left, why = [], [], None
    for name in found:
        table = change.own_table(name).sql(dialect=dialect)
        if table == kept:
            continue
        try:
            change.drop_own_table(table)
        except (StatementError, TargetError) as exc:
            left.append(table)
            why = why or exc.message
        else:
            dropped.append(table)
    return Swept(dropped, left, why)
