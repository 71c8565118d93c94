"""The precheck of a data-change ticket, run as a job (dms-api.md A.3.2, E.6).

Four steps, in order, each shown as it runs (``precheck_steps``):

- ``SQL_PARSE``: the script splits and every statement parses, in each database's dialect;
- ``SQL_TYPE_CHECK``: SQL review (statement kinds of the ticket type, the catalog, the levels
  of the instance's rule set); an ERROR finding fails it, warnings are listed;
- ``PERMISSION_CHECK``: the committer holds the ticket type's permission (CORRECT; EXPORT for
  an export) on every table touched, or is the instance's DBA (named by someone else:
  ``catalog.dba``), or an administrator;
- ``ROW_CHECK``: the rows each statement changes (or an export reads), counted on the live
  database with its own WHERE under a time limit (the planner's estimate when the count runs
  out of time, and the step says so), against the ticket's ``EstimateAffectRows`` (an
  export's ``AffectRows`` is the most it may read).

A step that fails stops the run: later steps would act on SQL that is wrong or tables the
committer may not touch (a row count is itself something to be allowed to see). The run
reads and never writes the targets, so a run cut short is simply run again. A newer run
(retry, changed SQL) takes the rows over; an older one still going writes nothing more.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from opendms.catalog import dba, permissions, sensitive
from opendms.catalog.shapes import CatalogShapes
from opendms.errors import DmsError
from opendms.execution import backups
from opendms.execution.cleanup import script as cleanup_script
from opendms.exports import masks
from opendms.identity.roles import Role, parse_roles
from opendms.jobs.runner import Checkpoint, Step, Work
from opendms.means import Means
from opendms.precheck.review import review_for_parsed
from opendms.sql.chunks import ChunkRefused, chunking
from opendms.sql.cleanup import CleanupRefused
from opendms.sql.export import ExportRefused, export_query
from opendms.sql.review import Finding
from opendms.sql.rows import count_query
from opendms.sql.script import ScriptError, split
from opendms.sql.statements import Parsed, describe, opaque, parse_piece, render
from opendms.store.db import Store
from opendms.store.models import (
    Attachment,
    Database,
    DbTable,
    Instance,
    Job,
    Order,
    PrecheckStatement,
    PrecheckStep,
    User,
    utcnow,
)
from opendms.store.states import JobState, OrderStatus, PrecheckStepStatus, ReviewStatus
from opendms.targets.base import Connector, InsertKeys, TargetError
from opendms.tickets import service as tickets
from opendms.tickets.params import Params
from opendms.tickets.types import DML

log = logging.getLogger("opendms.precheck")

STEPS = ("SQL_PARSE", "SQL_TYPE_CHECK", "PERMISSION_CHECK", "ROW_CHECK")
MAX_TIPS = 5


class StepFailed(Exception):
    """A step's verdict: it failed, for the reason given (shown as its UserTip)."""

    def __init__(self, message: str, *, waivable: bool = False) -> None:
        super().__init__(message)
        self.waivable = waivable


@dataclass
class Found:
    """A statement of the script as the precheck sees it in one database."""

    number: int
    line: int
    text: str
    kind: str
    tables: tuple[str, ...]
    literal_rows: int | None = None  # INSERT … VALUES: its tuples
    blocked: bool = False
    findings: list[dict[str, str]] = field(default_factory=list)
    rows: int | None = None
    rows_source: str = "UNKNOWN"


@dataclass
class Target:
    db: Database
    inst: Instance
    statements: list[Found] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.db.schema_name}@{self.inst.alias}"


def _listing(problems: Sequence[str]) -> str:
    shown = "; ".join(problems[:MAX_TIPS])
    more = len(problems) - MAX_TIPS
    return shown + (f"; and {more} more" if more > 0 else "")


def reset(s: Session, order_id: int, job_id: int) -> None:
    """Hand the ticket's step rows to run ``job_id``, all WAITING; drop the old statements."""
    s.execute(delete(PrecheckStep).where(PrecheckStep.order_id == order_id))
    s.execute(delete(PrecheckStatement).where(PrecheckStatement.order_id == order_id))
    s.add_all(
        PrecheckStep(
            order_id=order_id,
            step=step,
            position=i,
            job_id=job_id,
            status=PrecheckStepStatus.WAITING,
        )
        for i, step in enumerate(STEPS, start=1)
    )
    s.flush()


@dataclass
class Precheck:
    """The executor of ``precheck`` jobs."""

    means: Means

    def __call__(self, work: Work, checkpoint: Checkpoint) -> Step:
        with work.store.session() as s:
            order = s.get(Order, work.order_id, with_for_update=True)
            newest = s.scalar(
                select(func.max(Job.job_id)).where(
                    Job.order_id == work.order_id, Job.kind == "precheck"
                )
            )
            job = s.get(Job, work.job_id)
            current = job is not None and job.state == JobState.RUNNING and newest == work.job_id
            if order is None or order.status_code != OrderStatus.NEW or not current:
                return Step(checkpoint, done=True)  # moved on, or a newer run took over
            reset(s, order.order_id, work.job_id)
            run = _Run(self.means, work, order.order_id)
        run.go()
        return Step(checkpoint, done=True)


class _Run:
    def __init__(self, means: Means, work: Work, order_id: int) -> None:
        self.means, self.work, self.order_id = means, work, order_id

    @contextmanager
    def _mine(self) -> Iterator[Session | None]:
        """A transaction in which this run still owns the ticket's precheck rows (None when a
        newer run took them over, or the ticket moved on)."""
        with self.work.store.session() as s:
            order = s.get(Order, self.order_id, with_for_update=True)
            owner = s.scalar(
                select(func.max(PrecheckStep.job_id)).where(PrecheckStep.order_id == self.order_id)
            )
            yield s if order is not None and owner == self.work.job_id else None

    def _set(
        self, step: str, status: PrecheckStepStatus, tip: str = "", *, waivable: bool = False
    ) -> bool:
        with self._mine() as s:
            if s is None:
                return False
            s.execute(
                update(PrecheckStep)
                .where(PrecheckStep.order_id == self.order_id, PrecheckStep.step == step)
                .values(status=status, user_tip=tip[:4000], waivable=waivable)
            )
            return True

    def _fail(self, step: str, tip: str, *, waivable: bool = False) -> None:
        """``step`` failed; the steps after it do not run."""
        self._set(step, PrecheckStepStatus.FAIL, tip, waivable=waivable)
        for later in STEPS[STEPS.index(step) + 1 :]:
            self._set(later, PrecheckStepStatus.WAITING, f"Not run: {step} failed.")

    def go(self) -> None:
        # Each step reads the store in a transaction of its own and none is open while a
        # target is asked anything: on SQLite a transaction holds the write lock.
        with self.work.store.session() as s:
            order = s.get(Order, self.order_id)
            assert order is not None
            targets = _targets(s, order)
            try:
                checks = self._checks(s, order, targets)
                problem = ""
            except StepFailed as exc:
                checks, problem = None, str(exc)
        if checks is None:
            self._fail("SQL_PARSE", problem)
            return
        for step in STEPS:
            if not self._set(step, PrecheckStepStatus.RUNNING):
                return
            try:
                tip = checks.run(step)
            except StepFailed as exc:
                self._fail(step, str(exc), waivable=exc.waivable)
                return
            except (TargetError, DmsError) as exc:
                self._fail(step, exc.message)
                return
            finally:
                if step in ("SQL_TYPE_CHECK", "ROW_CHECK"):
                    self._store(targets)
            if not self._set(step, PrecheckStepStatus.SUCCESS, tip):
                return

    def _checks(self, s: Session, order: Order, targets: list[Target]) -> _Checks:
        """The steps for this ticket: over its file for an import, over its SQL otherwise."""
        if tickets.ticket_type(order.plugin_type).imports:
            from opendms.precheck.imports import ImportChecks  # it builds on this module

            checks: _Checks = ImportChecks(self.work.store, self.means, order, targets, {})
            checks.prepare(s)
            return checks
        engines = {t.inst.instance_type for t in targets}
        scripts = _scripts(s, self.means, order, engines)
        return _Checks(self.work.store, self.means, order, targets, scripts)

    def _store(self, targets: Sequence[Target]) -> None:
        """The statements as found so far: written whole, so a reader sees one run's view."""
        with self._mine() as s:
            if s is None:
                return
            s.execute(delete(PrecheckStatement).where(PrecheckStatement.order_id == self.order_id))
            rows = [
                {
                    "order_id": self.order_id,
                    "db_id": t.db.db_id,
                    "number": f.number,
                    "line": f.line,
                    "sql_text": f.text,
                    "sql_type": f.kind,
                    "table_names": ",".join(f.tables),
                    "affect_rows": f.rows,
                    "rows_source": f.rows_source,
                    "review_status": ReviewStatus.BLOCK if f.blocked else ReviewStatus.PASS,
                    "findings": f.findings,
                }
                for t in targets
                for f in t.statements
            ]
            if rows:
                s.execute(insert(PrecheckStatement), rows)


def _chunk_findings(t: Target, shapes: CatalogShapes) -> list[Finding]:
    """Each statement of a chunked change must cut into key ranges (sql.chunks)."""
    out = []
    for found in t.statements:
        try:
            chunking(found.text, t.inst.instance_type, shapes.walk_key)
        except ChunkRefused as exc:
            message = f"It cannot run in chunks: {exc}."
            out.append(Finding("NOT_CHUNKABLE", "ERROR", found.number, found.line, 1, message))
    return out


def _backup_findings(t: Target, shapes: CatalogShapes, connector: Connector) -> list[Finding]:
    """Each statement that could not run with a backup, and why (``execution.backups``'s
    own verdict): ExecuteDataCorrect with backupData refuses such a ticket before anything
    runs, so the approvers read it here, before they approve."""
    engine = t.inst.instance_type
    offered: list[InsertKeys] = []

    def keys() -> InsertKeys:  # the server is asked once, and only for an INSERT
        if not offered:
            offered.append(connector.insert_keys())
        return offered[0]

    out = []
    for found in t.statements:
        if found.kind not in DML:
            continue
        why = backups.refusal(found.text, engine, shapes, keys)
        if why is not None:
            message = f"It cannot be backed up: {why} (ExecuteDataCorrect with backupData)."
            out.append(Finding(backups.NO_BACKUP, "WARNING", found.number, found.line, 1, message))
    return out


def _export_findings(s: Session, t: Target, script: str) -> tuple[list[Finding], str]:
    """An export's SQL must be the one read-only query it runs (sql.export); and what of
    its result the export will mask, for the approvers to read."""
    try:
        query = export_query(script, t.inst.instance_type)
    except ExportRefused as exc:
        return [Finding("EXPORT_REFUSED", "ERROR", 1, 1, 1, f"It cannot be exported: {exc}.")], ""
    schema = sensitive.columns_of(s, t.db.db_id, query.tables)
    found, traced = masks.plan(
        query.node, t.inst.instance_type, schema, sensitive.masks_of(s, t.db.db_id)
    )
    if not traced:
        return [], " The export masks every column: they cannot be traced to their tables."
    shown = [f"{m.column} ({m.mask}, from {', '.join(m.sources)})" for m in found]
    return [], f" The export masks {', '.join(shown)}." if shown else ""


def _targets(s: Session, order: Order) -> list[Target]:
    return [Target(db, inst) for db, inst in tickets.databases_of(s, order.order_id)]


def _scripts(s: Session, means: Means, order: Order, engines: set[str]) -> dict[str, str]:
    """The ticket's SQL for each engine among its databases': a cleanup's DELETEs are
    written for each (as they would run now), any other ticket's SQL is the same for all."""
    if order.plugin_type == "DC_CRON_CLEAR":
        try:
            return {e: cleanup_script(s, order, e, utcnow()) for e in engines}
        except CleanupRefused as exc:
            raise StepFailed(str(exc)) from None
    script = _script(s, means, order)
    return dict.fromkeys(engines, script)


def _params(order: Order) -> Params:
    return tickets.ticket_type(order.plugin_type).params.model_validate(json.loads(order.params))


def _script(s: Session, means: Means, order: Order) -> str:
    """The ticket's SQL: as its parameters carry it, or the text of its attachment."""
    params = _params(order)
    given = params.intent().sql
    if given:
        return "\n".join(given)
    attachment = s.get(Attachment, str(getattr(params, "attachment_name", "")))
    if attachment is None:
        raise StepFailed("The SQL attachment is gone.")
    path = means.files.path_for(attachment.sha256)
    try:
        return path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise StepFailed(f"The SQL attachment {attachment.file_name} is missing.") from None
    except UnicodeDecodeError as exc:
        raise StepFailed(
            f"The SQL attachment {attachment.file_name} is not UTF-8 text "
            f"(byte {exc.start} is not valid)."
        ) from None


class _Checks:
    def __init__(
        self,
        store: Store,
        means: Means,
        order: Order,
        targets: list[Target],
        scripts: dict[str, str],
    ) -> None:
        self.store, self.means, self.order = store, means, order
        self.kind = tickets.ticket_type(order.plugin_type)
        self.targets, self.scripts = targets, scripts
        self.parsed: dict[int, list[Parsed]] = {}

    def prepare(self, s: Session) -> None:
        """What the steps need from the store before they run (an import's file)."""

    def _where(self, t: Target) -> str:
        return f" in {t.label}" if len(self.targets) > 1 else ""

    def run(self, step: str) -> str:
        return {
            "SQL_PARSE": self.sql_parse,
            "SQL_TYPE_CHECK": self.sql_type_check,
            "PERMISSION_CHECK": self.permission_check,
            "ROW_CHECK": self.row_check,
        }[step]()

    def _parse(self, engine: str) -> list[Parsed]:
        """The script for ``engine``, within the ticket limits, split and parsed."""
        script, means = self.scripts[engine], self.means
        size = len(script.encode())
        if size > means.ticket_max_sql_bytes:
            raise StepFailed(
                f"The SQL is {size:,} bytes; a ticket's SQL is at most "
                f"{means.ticket_max_sql_bytes:,} (OPENDMS_TICKET_MAX_SQL_BYTES). Load data "
                "with an import ticket, or change many rows with one lock-free statement."
            )
        try:
            pieces = split(script, engine)
        except ScriptError as exc:
            raise StepFailed(str(exc)) from None
        if len(pieces) > means.ticket_max_statements:
            raise StepFailed(
                f"The SQL has {len(pieces):,} statements; a ticket runs at most "
                f"{means.ticket_max_statements:,} (OPENDMS_TICKET_MAX_STATEMENTS). Load data "
                "with an import ticket, or change many rows with one lock-free statement."
            )
        return [parse_piece(piece, engine) for piece in pieces]

    def sql_parse(self) -> str:
        by_engine: dict[str, list[Parsed]] = {}
        problems: list[str] = []
        for t in self.targets:
            engine = t.inst.instance_type
            if engine not in by_engine:
                by_engine[engine] = self._parse(engine)
            parsed = self.parsed[t.db.db_id] = by_engine[engine]
            for one in parsed:
                if one.error is not None:
                    problems.append(one.error + self._where(t))
                    continue
                for node in one.nodes:
                    st = describe(node)
                    if opaque(node) and st.kind in self.kind.statement_kinds:
                        problems.append(
                            f"statement {one.piece.number} (line {one.piece.line})"
                            f"{self._where(t)}: OpenDMS cannot parse this form of {st.kind}, "
                            "so it cannot check what it does; write it in its plain form"
                        )
                        continue
                    t.statements.append(
                        Found(
                            one.piece.number,
                            one.piece.line,
                            render(node, engine),
                            st.kind,
                            st.tables,
                            st.literal_rows,
                        )
                    )
        if problems:
            raise StepFailed(_listing(problems))
        count = len(self.targets[0].statements) if self.targets else 0
        if not count:
            raise StepFailed("The ticket has no SQL statement.")
        return f"{count} statement{'s' if count != 1 else ''} parsed."

    def sql_type_check(self) -> str:
        kind = self.kind
        errors: list[str] = []
        warnings = 0
        note = ""
        for t in self.targets:
            with self.store.session() as s:
                findings = review_for_parsed(
                    s, t.inst, t.db, self.parsed[t.db.db_id], kind.statement_kinds
                )
                if kind.chunked:
                    # WHERE 1=1 is how a chunked change says "every row", chunk by chunk.
                    findings = [f for f in findings if f.code != "DML_WHERE_ALWAYS_TRUE"]
                    findings += _chunk_findings(t, CatalogShapes(s, [t.db]))
                if self.order.plugin_type in backups.BACKED_UP:
                    connector = self.means.connector(t.inst)
                    findings += _backup_findings(t, CatalogShapes(s, [t.db]), connector)
                if kind.exports:
                    refused, note = _export_findings(s, t, self.scripts[t.inst.instance_type])
                    findings += refused
            by_number = {f.number: f for f in t.statements}
            for finding in findings:
                found = by_number.get(finding.statement)
                if found is not None:
                    found.findings.append(
                        {"code": finding.code, "level": finding.level, "message": finding.message}
                    )
                    found.blocked = found.blocked or finding.level == "ERROR"
                if finding.level == "ERROR":
                    errors.append(
                        f"statement {finding.statement} (line {finding.line}){self._where(t)}: "
                        f"{finding.code}: {finding.message}"
                    )
                else:
                    warnings += 1
        if errors:
            raise StepFailed(_listing(errors))
        verdict = (
            f"{warnings} warning{'s' if warnings != 1 else ''}." if warnings else "No findings."
        )
        return verdict + note

    def permission_check(self) -> str:
        with self.store.session() as s:
            return self._permissions(s)

    def _permissions(self, s: Session) -> str:
        committer = s.get(User, self.order.committer_id)
        if committer is None or committer.state != "NORMAL":
            raise StepFailed("The committer is no longer an active user of this tenant.")
        if Role.ADMIN in parse_roles(committer.roles):
            return "The committer is an administrator."
        missing: list[str] = []
        for t in self.targets:
            if dba.is_instance_dba(t.inst, committer.user_id):
                continue
            checked: set[str] = set()
            for name, number in self.tables(t):
                if name in checked:
                    continue
                checked.add(name)
                if not self._holds(s, committer, t, name):
                    what = name or f"the database {t.db.schema_name}"
                    missing.append(f"{what}{self._where(t)} (statement {number})")
        if missing:
            raise StepFailed(
                f"{committer.nick_name or committer.uid} lacks the {self.kind.permission} "
                "permission on " + _listing(missing)
            )
        verb = "export" if self.kind.exports else "change"
        return f"The committer may {verb} every table the SQL touches."

    def tables(self, t: Target) -> Iterator[tuple[str, int]]:
        """Every table the SQL touches in ``t``, with a statement that touches it; "" (the
        database itself) for a statement that names no table, which still needs the
        permission on the database."""
        for found in t.statements:
            for name in found.tables or ("",):
                yield name, found.number

    def _holds(self, s: Session, user: User, t: Target, name: str) -> bool:
        if not name:
            return permissions.holds(
                s, self.order.tid, user.user_id, t.db.db_id, self.kind.permission
            )
        schema, _, short = name.rpartition(".")
        db_id = t.db.db_id
        if schema and schema != t.db.schema_name.lower():
            other = s.scalar(
                select(Database.db_id).where(
                    Database.instance_id == t.inst.instance_id,
                    func.lower(Database.schema_name) == schema,
                    Database.state == "NORMAL",
                )
            )
            if other is None:
                return False
            db_id = other
        real = s.scalar(
            select(DbTable.name).where(DbTable.db_id == db_id, func.lower(DbTable.name) == short)
        )
        return permissions.holds(
            s, self.order.tid, user.user_id, db_id, self.kind.permission, real or short
        )

    def row_check(self) -> str:
        counted = estimated = 0
        unknown: list[str] = []
        for t in self.targets:
            engine = t.inst.instance_type
            connector = self.means.connector(t.inst)
            where = (t.db.catalog_name, t.db.schema_name)
            for found in t.statements:
                if found.kind not in self.kind.statement_kinds:
                    continue
                if found.literal_rows is not None:  # known from the parse: no second one
                    found.rows, found.rows_source = found.literal_rows, "LITERAL"
                    counted += found.rows
                    continue
                how = count_query(found.text, engine)
                if how is None:
                    unknown.append(f"statement {found.number}{self._where(t)}")
                    continue
                if how.query is None:
                    found.rows, found.rows_source = how.literal, "LITERAL"
                else:
                    rows = connector.count(where, how.query, self.means.row_check_seconds)
                    if rows is not None:
                        found.rows = rows
                        found.rows_source = "ESTIMATE" if how.upper_bound else "COUNT"
                    else:
                        found.rows = connector.estimate(where, found.text)
                        found.rows_source = "ESTIMATE" if found.rows is not None else "UNKNOWN"
                if found.rows is None:
                    unknown.append(f"statement {found.number}{self._where(t)}")
                elif found.rows_source == "ESTIMATE":
                    estimated += found.rows
                else:
                    counted += found.rows
        return self._verdict(counted, estimated, unknown)

    def _verdict(self, counted: int, estimated: int, unknown: list[str]) -> str:
        params = _params(self.order)
        given = params.expected_rows()
        waiver = self.order.row_check_waiver or params.rows_waiver()
        if given is None:  # a lock-free change states no estimate: the count is for show
            about = f"about {counted + estimated}" if estimated else str(counted)
            return f"{about} row{'' if counted + estimated == 1 else 's'} to change" + (
                f"; no count for {_listing(unknown)}" if unknown else "."
            )
        if self.kind.exports:
            if unknown:
                rows_text = f"No count for {_listing(unknown)}"
                if waiver:
                    return f"{rows_text}; waived: {waiver}"
                raise StepFailed(f"{rows_text}: the rows to export are not known.", waivable=True)
            return self._export_verdict(counted + estimated, given, bool(estimated), waiver)
        if not unknown and not estimated and counted == given:
            return f"{counted} row{'' if counted == 1 else 's'}, as estimated."
        if unknown or estimated:
            found = (
                f"{counted} rows counted exactly, about {estimated} more by the planner's "
                f"estimate (counting took longer than {self.means.row_check_seconds:g} s or "
                "joins may count a row twice)"
                if estimated
                else f"{counted} rows counted"
            )
            if unknown:
                found += f"; no count for {_listing(unknown)}"
        else:
            found = f"{counted} rows counted"
        what = f"{found}, where the ticket estimates {given}"
        if waiver:
            return f"{what}; waived: {waiver}"
        raise StepFailed(
            f"{what}. Correct the estimate in a new ticket, or waive the difference with "
            "SkipDataCorrectRowCheck and a reason.",
            waivable=True,
        )

    def _export_verdict(self, rows: int, given: int, estimated: bool, waiver: str | None) -> str:
        """An export's AffectRows is what the approvers consent to: at most that many rows.
        A query the database could not count is held to the planner's estimate."""
        found = f"{'about ' if estimated else ''}{rows} row{'' if rows == 1 else 's'} to export"
        if rows <= given:
            return f"{found}, within the {given} the ticket states."
        if waiver:
            return f"{found}, more than the {given} the ticket states; waived: {waiver}"
        raise StepFailed(
            f"{found}, more than the {given} the ticket states. Raise AffectRows in a new "
            "ticket, or set IgnoreAffectRows with a reason.",
            waivable=True,
        )
