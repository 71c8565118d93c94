"""The four steps of a precheck over a ticket's SQL, each a method of ``_Checks`` (see
``precheck.run`` for the steps and the run), with the verdict each step gives; an import's
steps over its file build on them (``precheck.imports``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from opendms.catalog import dba, permissions
from opendms.catalog.shapes import CatalogShapes
from opendms.execution import backups
from opendms.identity.roles import Role, parse_roles
from opendms.means import Means
from opendms.precheck.review import review_for_parsed
from opendms.sql.chunks import ChunkRefused, chunking
from opendms.sql.review import Finding
from opendms.sql.rows import count_query
from opendms.sql.script import ScriptError, split
from opendms.sql.statements import Parsed, describe, opaque, parse_piece, render
from opendms.store.db import Store
from opendms.store.models import Database, Instance, Order, User
from opendms.store.states import UserState
from opendms.targets.base import Connector, InsertKeys
from opendms.tickets.params import DML
from opendms.tickets.registry import kind_of, params_of

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
class CheckedDatabase:
    """One of the ticket's databases under precheck, and the statements found for it."""

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


def _chunk_findings(t: CheckedDatabase, shapes: CatalogShapes) -> list[Finding]:
    """Each statement of a chunked change must cut into key ranges (sql.chunks)."""
    out = []
    for found in t.statements:
        try:
            chunking(found.text, t.inst.instance_type, shapes.walk_key)
        except ChunkRefused as exc:
            message = f"It cannot run in chunks: {exc}."
            out.append(Finding("NOT_CHUNKABLE", "ERROR", found.number, found.line, 1, message))
    return out


def _backup_findings(
    t: CheckedDatabase, shapes: CatalogShapes, connector: Connector
) -> list[Finding]:
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


class _Checks:
    def __init__(
        self,
        store: Store,
        means: Means,
        order: Order,
        targets: list[CheckedDatabase],
        scripts: dict[str, str],
    ) -> None:
        self.store, self.means, self.order = store, means, order
        self.kind = kind_of(order.plugin_type)
        self.targets, self.scripts = targets, scripts
        self.parsed: dict[int, list[Parsed]] = {}

    def prepare(self, s: Session) -> None:
        """What the steps need from the store before they run (an import's file)."""

    def _where(self, t: CheckedDatabase) -> str:
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
        walk = kind.execution.walk if kind.execution is not None else None
        errors: list[str] = []
        warnings = 0
        note = ""
        for t in self.targets:
            with self.store.session() as s:
                # the ticket's comment is its stated reason (a destructive change on product
                # needs one)
                findings = review_for_parsed(
                    s,
                    t.inst,
                    t.db,
                    self.parsed[t.db.db_id],
                    kind.statement_kinds,
                    reason=self.order.comment,
                    catalog=kind.review_catalog(s, self.order, t.db),
                )
                if walk == "chunks":
                    # WHERE 1=1 is how a chunked change says "every row", chunk by chunk.
                    findings = [f for f in findings if f.code != "DML_WHERE_ALWAYS_TRUE"]
                    findings += _chunk_findings(t, CatalogShapes(s, [t.db]))
                if kind.execution is not None and kind.execution.backup:
                    connector = self.means.connector(t.inst)
                    findings += _backup_findings(t, CatalogShapes(s, [t.db]), connector)
                script = self.scripts[t.inst.instance_type]
                more, note = kind.precheck_review(s, t.db, t.inst, script)
                findings += more
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
        if committer is None or committer.state != UserState.NORMAL:
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
        return f"The committer may {self.kind.verb} every table the SQL touches."

    def tables(self, t: CheckedDatabase) -> Iterator[tuple[str, int]]:
        """Every table the SQL touches in ``t``, with a statement that touches it; "" (the
        database itself) for a statement that names no table, which still needs the
        permission on the database."""
        for found in t.statements:
            for name in found.tables or ("",):
                yield name, found.number

    def _holds(self, s: Session, user: User, t: CheckedDatabase, name: str) -> bool:
        return permissions.holds_named(
            s, self.order.tid, user.user_id, t.db, self.kind.permission, name
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
        params = params_of(self.order)
        given = params.expected_rows()
        waiver = self.order.row_check_waiver or params.rows_waiver()
        if given is None:  # a lock-free change states no estimate: the count is for show
            about = f"about {counted + estimated}" if estimated else str(counted)
            return f"{about} row{'' if counted + estimated == 1 else 's'} to change" + (
                f"; no count for {_listing(unknown)}" if unknown else "."
            )
        if self.kind.verb == "export":
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
