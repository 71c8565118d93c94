"""The files of a data-change ticket, behind signed download links: the SQL it was filed
with, the rollback SQL its committer gave, and the rollback scripts OpenDMS writes from the
backups its execution saved.

A backup is a table on the target filled in the change's own transaction (see
``execution.run_statements``); the rollback script is written from it when someone
downloads it, newest statement first: updated rows get their old values back, deleted rows
are inserted again, inserted rows are deleted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opendms.catalog import queries
from opendms.errors import DmsError, ErrorCode
from opendms.files.storage import FileStore
from opendms.identity.caller import Caller
from opendms.means import Means
from opendms.sql.backup import remove_inserted, restore_deleted, restore_updated
from opendms.store.db import Store
from opendms.store.models import Attachment, Database, Instance, Order, SqlJob, SqlJobDetail, utcnow
from opendms.store.times import log_time
from opendms.tickets import service as tickets
from opendms.tickets.registry import params_of

BATCH = 1000
KINDS = ("sql", "rollback", "backup")  # what a download link names


@dataclass(frozen=True)
class Download:
    """What a link serves: a name, and its bytes in one piece or in parts."""

    name: str
    path: Path | None = None
    text: str | None = None
    parts: Iterator[str] | None = None


def backup_jobs(s: Session, caller: Caller, order_id: int) -> list[SqlJob]:
    """The ticket's SQL jobs that saved backups."""
    tickets.get_order(s, caller, order_id)
    return list(
        s.scalars(
            select(SqlJob)
            .where(
                SqlJob.order_id == order_id,
                select(SqlJobDetail.detail_id)
                .where(
                    SqlJobDetail.sql_job_id == SqlJob.sql_job_id,
                    SqlJobDetail.backup.is_not(None),
                )
                .exists(),
            )
            .order_by(SqlJob.group_id, SqlJob.position)
        )
    )


def _ticket_text(s: Session, files: FileStore, order: Order, kind: str) -> Download | None:
    params = params_of(order)
    # the shared parameters (tickets.params) of the kinds that carry them
    prefix, text_key, attachment_key = (
        ("sql", "exec_sql", "attachment_name")
        if kind == "sql"
        else ("rollback", "rollback_sql", "rollback_attachment_name")
    )
    name = f"ticket-{order.order_id}-{prefix}.sql"
    text = getattr(params, text_key, None)
    if text:
        return Download(name, text=str(text))
    attachment = s.get(Attachment, str(getattr(params, attachment_key, None) or ""))
    if attachment is not None:
        return Download(attachment.file_name, path=files.path_for(attachment.sha256))
    return None


def has_file(s: Session, files: FileStore, caller: Caller, order_id: int, kind: str) -> bool:
    """Whether the ticket has its submitted SQL (``sql``) or rollback SQL (``rollback``)."""
    order = tickets.get_order(s, caller, order_id)
    return _ticket_text(s, files, order, kind) is not None


def download(store: Store, means: Means, kind: str, ident: int) -> Download | None:
    """What a valid link for (kind, ident) serves; None when it is gone."""
    with store.session() as s:
        if kind in ("sql", "rollback"):
            order = s.get(Order, ident)
            return _ticket_text(s, means.files, order, kind) if order is not None else None
        job = s.get(SqlJob, ident)
        if job is None:
            return None
    return Download(
        f"ticket-{job.order_id}-job-{job.sql_job_id}-rollback.sql",
        parts=rollback_script(store, means, job.sql_job_id),
    )


def _by_key(rows: Sequence[Mapping[str, Any]], key: Sequence[str]) -> tuple[list[str], bool]:
    """The key's columns as the rows spell them (the catalog lower-cases names)."""
    if not rows:
        return list(key), True
    spelled = {c.lower(): c for c in rows[0]}
    found = [spelled.get(k) for k in key]
    return [f for f in found if f is not None], all(f is not None for f in found)


def _restores(
    kind: str,
    table: str,
    rows: Sequence[Mapping[str, Any]],
    key: Sequence[str],
    engine: str,
    seen: set[tuple[Any, ...]],
) -> list[str]:
    columns, complete = _by_key(rows, key)
    if kind == "DELETE":
        if complete and columns:  # a join may have matched a deleted row twice
            fresh = []
            for row in rows:
                k = tuple(row[c] for c in columns)
                if k not in seen:
                    seen.add(k)
                    fresh.append(row)
            rows = fresh
        return restore_deleted(table, rows, engine)
    if not complete:
        raise DmsError(
            ErrorCode.UNKNOWN, f"The backup of {table} lacks its key columns {', '.join(key)}."
        )
    if kind == "UPDATE":
        return restore_updated(table, rows, columns, engine)
    return remove_inserted(table, rows, columns, engine)


def rollback_script(store: Store, means: Means, sql_job_id: int) -> Iterator[str]:
    """The rollback script of one SQL job, written from its backups on the target."""
    with store.session() as s:
        job = s.get(SqlJob, sql_job_id)
        assert job is not None
        db = s.get(Database, job.db_id)
        inst = s.get(Instance, db.instance_id) if db is not None else None
        details = s.scalars(
            select(SqlJobDetail)
            .where(SqlJobDetail.sql_job_id == sql_job_id, SqlJobDetail.backup.is_not(None))
            .order_by(SqlJobDetail.number.desc())
        ).all()
    if db is None or inst is None:
        yield "-- The database of this job is no longer registered.\n"
        return
    connector = means.connector(inst)
    where = (db.catalog_name, db.schema_name)
    yield (
        f"-- OpenDMS rollback of ticket {job.order_id}, SQL job {sql_job_id}, database "
        f"{queries.search_name(db, inst)}\n-- written {log_time(utcnow())} UTC from "
        "the backups saved in the change's own transactions; newest statement first.\n"
    )
    for detail in details:
        backup = detail.backup or {}
        kind, table, key = backup["kind"], backup["of"], backup["key"]
        yield f"\n-- statement {detail.number}: undo {kind} of {table} ({backup['rows']} rows)\n"
        rows = connector.read(where, f"SELECT * FROM {backup['table']}")  # noqa: S608
        seen: set[tuple[Any, ...]] = set()
        while batch := list(islice(rows, BATCH)):
            for statement in _restores(kind, table, batch, key, inst.instance_type, seen):
                yield statement + ";\n"
