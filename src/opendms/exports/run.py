"""The executor of ``export`` jobs: the ticket's query, read from one snapshot of the
database, written into a zip (dms-api.md A.4; the real service also hands out zips).

The whole export is one step: a file half written is worth nothing, so a crash or a lost
lease starts it over (it only reads; the file appears under its final name only once
complete). Between batches it notices a stopped or closed ticket, the instance's
``ExportTimeout`` and the server's row cap, and gives up with the reason. Without masked
columns, a CSV export from PostgreSQL is written by the database itself (COPY … TO STDOUT).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, cast

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlglot import exp

from opendms.catalog.sensitive import columns_of, masks_of
from opendms.errors import DmsError
from opendms.exports import masks
from opendms.exports import service as export_service
from opendms.exports.formats import ENCODINGS, SUFFIX, XlsxWriter, text_writer
from opendms.exports.masks import Masked, Masker
from opendms.exports.pipe import Pipe
from opendms.exports.service import ExportPlan
from opendms.exports.zipped import deflated_entry
from opendms.jobs.runner import Checkpoint, Step, Work
from opendms.means import Means
from opendms.sql.export import ExportRefused, export_query
from opendms.store.models import ExportFile, Job, Order, PrecheckStatement, utcnow
from opendms.store.states import ExecState, JobState, OrderStatus
from opendms.targets.base import Connector, Snapshot, TargetError
from opendms.tickets import lifecycle
from opendms.tickets import service as tickets

BATCH = 5000
CHECK_SECONDS = 1.0  # how often a running export looks whether it was stopped


class ExportFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Source:
    """What one export reads, gathered from the store before the target is asked."""

    order_id: int
    job_id: int
    query: str
    node: exp.Query  # the query as the precheck's parser read it (for masking)
    engine: str
    table: str  # what a SQL export inserts into
    timeout: float  # the instance's ExportTimeout
    masking: dict[tuple[str, str], str]
    schema: dict[str, dict[str, str]]
    connector: Connector
    where: tuple[str, str]  # (catalog, schema)
    plan: ExportPlan


@dataclass
class Written:
    rows: int
    masked: list[Masked]
    traced: bool


@dataclass
class Export:
    means: Means

    def __call__(self, work: Work, checkpoint: Checkpoint) -> Step:
        try:
            with work.store.session() as s:
                found = self._source(s, work)
        except DmsError as exc:  # this server may not open the instance (TargetPolicy)
            return Step(checkpoint, failure=exc.message)
        if isinstance(found, Step):
            return found
        plan = found.plan
        name = f"ticket-{found.order_id}.{SUFFIX[plan.file_type]}"
        final = self.means.files.root / "exports" / f"{found.job_id}.zip"
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, part = tempfile.mkstemp(dir=final.parent, prefix=f".{found.job_id}-", suffix=".part")
        os.close(fd)
        started = time.monotonic()
        try:
            written = self._write(work, found, Path(part), name)
            os.replace(part, final)
        except (TargetError, DmsError, ExportFailed) as exc:
            Path(part).unlink(missing_ok=True)
            self._audit(work, found, None, started, exc.message)
            return Step(checkpoint, failure=exc.message)
        except BaseException:
            Path(part).unlink(missing_ok=True)
            raise
        with work.store.session() as s:
            order = s.get(Order, work.order_id, with_for_update=True)
            job = s.get(Job, work.job_id)
            if order is None or job is None or job.state != JobState.RUNNING:
                final.unlink(missing_ok=True)  # stopped or closed while finishing
                return Step(checkpoint, done=True)
            s.merge(
                ExportFile(
                    job_id=work.job_id,
                    order_id=work.order_id,
                    path=str(final.relative_to(self.means.files.root)),
                    file_name=f"ticket-{found.order_id}-export.zip",
                    file_type=plan.file_type,
                    encoding=plan.encoding,
                    rows=written.rows,
                    size_bytes=final.stat().st_size,
                    masking={
                        "traced": written.traced,
                        "columns": [asdict(m) for m in written.masked],
                    },
                    created_at=utcnow(),
                )
            )
            lifecycle.transition(s, order, OrderStatus.SUCCESS)
            self._audit(work, found, written.rows, started, "", s)
        return Step({"rows": written.rows}, done=True)

    def _audit(
        self,
        work: Work,
        src: Source,
        rows: int | None,
        started: float,
        failure: str,
        session: Session | None = None,
    ) -> None:
        with contextlib.ExitStack() as stack:
            s = session or stack.enter_context(work.store.session())
            order = s.get(Order, work.order_id)
            if order is None:
                return
            remark = f"export to {src.plan.file_type}" + (f": {failure}" if failure else "")
            export_service.audit(
                s,
                order,
                src.plan.by or order.committer_id,
                src.query,
                "SELECT",
                rows,
                int((time.monotonic() - started) * 1000),
                ExecState.FAIL if failure else ExecState.SUCCESS,
                remark,
                by_user_id=src.plan.by_user_id,
            )

    def _source(self, s: Session, work: Work) -> Source | Step:
        order = s.get(Order, work.order_id)
        job = s.get(Job, work.job_id)
        if order is None or job is None or order.status_code != OrderStatus.PROCESSING:
            return Step({}, done=True)  # closed meanwhile
        (db, inst), *_ = tickets.databases_of(s, order.order_id)
        text = s.scalar(
            select(PrecheckStatement.sql_text)
            .where(PrecheckStatement.order_id == order.order_id)
            .order_by(PrecheckStatement.number)
            .limit(1)
        )
        try:
            query = export_query(text or "", inst.instance_type)
        except ExportRefused as exc:
            return Step({}, failure=f"The query cannot be exported: {exc}.")
        tables = [t.rpartition(".")[2] for t in query.tables]
        return Source(
            order_id=order.order_id,
            job_id=work.job_id,
            query=query.text,
            node=query.node,
            engine=inst.instance_type,
            table=tables[0] if len(set(tables)) == 1 else "export_result",
            timeout=float(inst.export_timeout or 600),
            masking=masks_of(s, db.db_id),
            schema=columns_of(s, db.db_id, query.tables),
            connector=self.means.connector(inst),
            where=(db.catalog_name, db.schema_name),
            plan=ExportPlan(**job.spec),
        )

    def _write(self, work: Work, src: Source, path: Path, name: str) -> Written:
        watch = _Watch(work, src.timeout, self.means.export_max_rows)
        plan = src.plan
        with src.connector.snapshot(src.where, src.query, src.timeout) as snap:
            masked, traced = masks.plan(src.node, src.engine, src.schema, src.masking, snap.columns)
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
                if plan.file_type == "XLSX":
                    rows = self._xlsx(zf, snap, masked, watch, path, name)
                else:
                    with deflated_entry(zf, name) as entry, Pipe(entry) as sink:
                        rows = self._text(cast(IO[bytes], sink), snap, plan, src, masked, watch)
        return Written(rows, masked, traced)

    def _text(
        self,
        entry: IO[bytes],
        snap: Snapshot,
        plan: ExportPlan,
        src: Source,
        masked: list[Masked],
        watch: _Watch,
    ) -> int:
        if plan.file_type == "CSV" and not masked:
            blocks = snap.csv(plan.encoding, watch.cap + 1)
            if blocks is not None:
                try:
                    for block in blocks:
                        entry.write(block)
                        watch.tick(0)
                except UnicodeEncodeError as exc:
                    raise _unwritable(exc, plan.encoding, "A value") from None
                watch.tick(snap.copied, force=True)
                return snap.copied
        writer = text_writer(
            plan.file_type, snap.columns, entry, ENCODINGS[plan.encoding], src.table, src.engine
        )
        rows = 0
        for batch in self._batches(snap, masked, watch):
            try:
                writer.write(batch)
            except UnicodeEncodeError as exc:
                where = f"A value in rows {rows + 1} to {rows + len(batch)}"
                raise _unwritable(exc, plan.encoding, where) from None
            rows += len(batch)
        writer.finish()
        return rows

    def _xlsx(
        self,
        zf: zipfile.ZipFile,
        snap: Snapshot,
        masked: list[Masked],
        watch: _Watch,
        path: Path,
        name: str,
    ) -> int:
        book = path.with_suffix(".xlsx")
        try:
            writer = XlsxWriter(snap.columns, book)
            rows = 0
            for batch in self._batches(snap, masked, watch):
                writer.write(batch)
                rows += len(batch)
            writer.finish()
            zf.write(book, name, compress_type=zipfile.ZIP_STORED)  # a zip already
        finally:
            book.unlink(missing_ok=True)
        return rows

    def _batches(
        self, snap: Snapshot, masked: list[Masked], watch: _Watch
    ) -> Iterator[list[tuple[object, ...]]]:
        masker = Masker.of(self.means.secrets)
        rows = 0
        for batch in snap.batches(BATCH):
            rows += len(batch)
            watch.tick(rows)
            yield masker.rows(masked, batch)
        watch.tick(rows, force=True)


def _unwritable(exc: UnicodeEncodeError, encoding: str, where: str) -> ExportFailed:
    return ExportFailed(
        f"{where} cannot be written in {encoding} ({exc.object[exc.start : exc.end]!r}); "
        "export as UTF8."
    )


class _Watch:
    """The limits of a running export: stopped, out of time, over the row cap."""

    def __init__(self, work: Work, timeout: float, cap: int) -> None:
        self.work, self.cap = work, cap
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.next_look = time.monotonic() + CHECK_SECONDS

    def tick(self, rows: int, *, force: bool = False) -> None:
        if rows > self.cap:
            raise ExportFailed(
                f"The result has more than {self.cap} rows, the most an export may hold "
                "(OPENDMS_EXPORT_MAX_ROWS); narrow the query."
            )
        now = time.monotonic()
        if now > self.deadline:
            raise ExportFailed(
                f"The export ran longer than the instance's ExportTimeout of {self.timeout:g} s."
            )
        if force or now >= self.next_look:
            self.next_look = now + CHECK_SECONDS
            with self.work.store.session() as s:
                job = s.get(Job, self.work.job_id)
                if job is None or job.state != JobState.RUNNING:
                    raise ExportFailed("The export was stopped.")
