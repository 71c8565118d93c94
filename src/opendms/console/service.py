"""Running a script from the SQL console (``ExecuteScript``; ``docs/security-rules.md``
describes the rules).

Everything is decided before anything runs: each statement is read (``sql.console``), held
to the instance's rule set (which environments the console may change, the row cap), the
SQL review's errors (changes) and the caller's permissions. One refused statement and none
runs. The rest run in one transaction on a pooled connection, read-only unless the script
changes something, under the instance's ``QueryTimeout``; the first statement that fails
ends the script and rolls back what it changed. Query results are masked as exports are, and
every statement, run or not, is a line of ``ListSQLExecAuditLog``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from opendms.catalog import dba, permissions, queries
from opendms.catalog.sensitive import columns_of, masks_of
from opendms.errors import DmsError, ErrorCode
from opendms.exports import masks
from opendms.exports.masks import Masker
from opendms.exports.values import plain
from opendms.identity.caller import Caller
from opendms.means import Means
from opendms.precheck.review import review_for_parsed
from opendms.rulebook import rule_sets
from opendms.sql.console import (
    DATA_CHANGES,
    SCHEMA_CHANGES,
    ConsoleRefused,
    ConsoleStatement,
    read_script,
)
from opendms.sql.script import MYSQL_ENGINES
from opendms.store.models import Database, Instance, SqlAudit, utcnow
from opendms.store.states import DatabaseState, ExecState
from opendms.targets.base import StatementError, TargetError
from opendms.targets.console import ConsoleSession, Outcome

MAX_JSON_INTEGER = 2**53  # larger integers travel as text: JSON readers lose their digits
_AS_IS = frozenset({str, float, bool, type(None)})
# Mask plans by query and catalog shape, per process (``_Run.masked``).
MAX_PLANS = 512
_PLANS: OrderedDict[tuple[object, ...], list[masks.Masked]] = OrderedDict()
_PLANS_LOCK = threading.Lock()


@dataclass
class StatementResult:
    """One statement's answer (``ExecuteScript``'s ``Results[]``)."""

    number: int
    sql: str
    kind: str
    success: bool = False
    message: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    affected: int | None = None
    truncated: bool = False
    masked: list[str] = field(default_factory=list)
    elapsed_ms: int = 0

    @property
    def row_count(self) -> int:
        return len(self.rows) if self.columns else (self.affected or 0)

    def wire(self) -> dict[str, Any]:
        """As ``ExecuteScript``'s ``Results[]`` holds it (and ``opendms sql run --json``)."""
        return {
            "ColumnNames": self.columns,
            "Rows": self.rows,
            "RowCount": self.row_count,
            "Success": self.success,
            "Message": self.message,
        }


@dataclass(frozen=True)
class _Target:
    db: Database
    inst: Instance
    max_rows: int
    change_envs: tuple[str, ...]
    rule_set: str

    @property
    def where(self) -> tuple[str, str]:
        return (self.db.catalog_name, self.db.schema_name)


def _remembered_plan(key: tuple[object, ...]) -> list[masks.Masked] | None:
    with _PLANS_LOCK:
        found = _PLANS.get(key)
        if found is not None:
            _PLANS.move_to_end(key)
        return found


def _remember_plan(key: tuple[object, ...], plan: list[masks.Masked]) -> None:
    with _PLANS_LOCK:
        _PLANS[key] = plan
        while len(_PLANS) > MAX_PLANS:
            _PLANS.popitem(last=False)


def _target(s: Session, tid: int, db_id: int) -> _Target:
    db, inst = queries.get_database_on(s, tid, db_id)
    if db.state != DatabaseState.NORMAL:
        raise DmsError(ErrorCode.DATABASE_NOT_FOUND, f"Database {db_id} is {db.state}.")
    loaded = rule_sets.for_instance(s, inst)[0]
    console = loaded.rule_set.console
    return _Target(db, inst, console.max_rows, tuple(console.changes), loaded.name)


def _refusals(
    s: Session, caller: Caller, t: _Target, found: Sequence[ConsoleStatement]
) -> dict[int, str]:
    """Why each statement may not run (by number); empty when all may."""
    out = {st.number: st.refusal for st in found if st.refusal is not None}
    changes = [st for st in found if st.changes and st.number not in out]
    env = t.inst.env_type
    for st in changes:
        if env not in t.change_envs:
            instead = (
                "a data change ticket (DC_COMMON, CreateDataCorrectOrder)"
                if st.kind in DATA_CHANGES
                else "a schema change ticket (NDDL)"
            )
            out[st.number] = (
                f"the SQL console does not change {env or 'unclassified'} instances "
                f"(rule set '{t.rule_set}' allows console changes on "
                f"{', '.join(t.change_envs) or 'no environment'}); file {instead} instead"
            )
    reviewed = [st.parsed for st in changes if st.parsed is not None and st.number not in out]
    if reviewed:
        for f in review_for_parsed(s, t.inst, t.db, reviewed, DATA_CHANGES | SCHEMA_CHANGES):
            if f.level == "ERROR":
                out.setdefault(f.statement, f"{f.code}: {f.message}")
    if caller.is_admin or dba.is_instance_dba(t.inst, caller.user_id):
        return out
    held: dict[tuple[str, str], bool] = {}  # a script names the same tables again and again

    def holds(perm: str, name: str) -> bool:
        if (perm, name) not in held:
            held[perm, name] = permissions.holds_named(
                s, caller.tid, caller.user_id, t.db, perm, name
            )
        return held[perm, name]

    for st in found:
        if st.number in out:
            continue
        perm = "CORRECT" if st.changes else "QUERY"
        missing = [
            name or f"the database {t.db.schema_name}"
            for name in st.tables or ("",)
            if not holds(perm, name)
        ]
        if missing:
            out[st.number] = f"you lack the {perm} permission on {', '.join(missing)}"
    return out


def _value(value: Any) -> Any:
    if value is None or isinstance(value, bool | str | float):
        return value
    if isinstance(value, int) and abs(value) < MAX_JSON_INTEGER:
        return value
    return plain(value)


def _json_column(values: Sequence[Any]) -> Sequence[Any]:
    """One result column's values as JSON carries them: text, numbers and null as they are,
    everything else (decimals, times, bytes, integers past 2**53) as its text. A column of
    one JSON type is passed through whole: most are, and a 1,000-row result is 5,000 values."""
    kinds = {type(v) for v in values}
    if kinds <= _AS_IS:
        return values
    if kinds <= _AS_IS | {int} and all(
        -MAX_JSON_INTEGER < v < MAX_JSON_INTEGER for v in values if type(v) is int
    ):
        return values
    return [_value(v) for v in values]


def _names(columns: list[str]) -> list[str]:
    """Result column names made unique (``a.id, b.id``): each row is an object keyed by them."""
    seen: dict[str, int] = {}
    out = []
    for name in columns:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


class _Run:
    """One script's statements on one connection, with the masking of their results."""

    def __init__(self, s: Session, means: Means, t: _Target) -> None:
        self.s, self.t = s, t
        self.engine = t.inst.instance_type
        self.masker = Masker.of(means.secrets)

    @cached_property
    def sensitive(self) -> dict[tuple[str, str], str]:
        """The database's sensitive columns, read once a query's result needs them (a
        script of changes, SHOW or EXPLAIN never does)."""
        return masks_of(self.s, self.t.db.db_id)

    def masked(self, st: ConsoleStatement, columns: list[str]) -> list[masks.Masked]:
        """What to mask in ``st``'s result: nothing unless it reads a table with a sensitive
        column; then the export's plan, remembered for the same query, sensitive columns and
        (where the plan reads it) catalog: working it out costs more than running most
        console queries."""
        if st.query is None:
            return []
        read = {name.rpartition(".")[2] for name in st.tables}
        if not any(table in read for table, _ in self.sensitive):
            return []
        key: tuple[object, ...] = (
            st.run,
            self.engine,
            tuple(sorted(self.sensitive.items())),
            tuple(columns),
        )
        found = _remembered_plan(key)
        if found is None:
            found = masks.direct(st.query, self.sensitive, columns)
            if found is None:  # traced over the catalog's columns: they are part of the key
                schema = columns_of(self.s, self.t.db.db_id, st.tables)
                key += (tuple(sorted((t, tuple(c.items())) for t, c in schema.items())),)
                found = _remembered_plan(key)
                if found is None:
                    found, _ = masks.plan(st.query, self.engine, schema, self.sensitive, columns)
            _remember_plan(key, found)
        return found

    def result(self, st: ConsoleStatement, outcome: Outcome, ms: int) -> StatementResult:
        masked = self.masked(st, outcome.columns)
        # column by column: masking and JSON conversion decide once per column, not per value
        columns: list[Sequence[Any]] = list(zip(*outcome.rows, strict=True)) if outcome.rows else []
        for m in masked if columns else ():
            columns[m.position] = self.masker.column(m.mask, columns[m.position])
        values = [_json_column(c) for c in columns]
        names = _names(outcome.columns)
        notes = []
        if outcome.truncated:
            notes.append(f"truncated: the first {self.t.max_rows} rows are shown")
        if masked:
            notes.append("masked: " + ", ".join(m.column for m in masked))
        return StatementResult(
            st.number,
            st.written,
            st.kind,
            success=True,
            message="; ".join(notes),
            columns=names,
            rows=[dict(zip(names, r, strict=True)) for r in zip(*values, strict=True)],
            affected=outcome.affected,
            truncated=outcome.truncated,
            masked=[m.column for m in masked],
            elapsed_ms=ms,
        )

    def all(
        self, session: ConsoleSession, found: Sequence[ConsoleStatement]
    ) -> list[StatementResult]:
        out: list[StatementResult] = []
        for st in found:
            if out and not out[-1].success:
                out.append(
                    StatementResult(
                        st.number,
                        st.written,
                        st.kind,
                        message=(f"not run: statement {out[-1].number} failed"),
                    )
                )
                continue
            started = time.perf_counter()
            try:
                outcome = session.run(st.run, self.t.max_rows)
            except StatementError as exc:
                ms = int((time.perf_counter() - started) * 1000)
                message = (
                    f"stopped after the instance's QueryTimeout ({self.t.inst.query_timeout} s)"
                    if exc.timed_out
                    else exc.message
                )
                out.append(
                    StatementResult(st.number, st.written, st.kind, message=message, elapsed_ms=ms)
                )
                continue
            out.append(self.result(st, outcome, int((time.perf_counter() - started) * 1000)))
        return out


def _audit(
    s: Session, caller: Caller, t: _Target, results: Sequence[StatementResult], note: str
) -> None:
    """The statements' ``ListSQLExecAuditLog`` lines, in one INSERT."""
    s.execute(
        insert(SqlAudit),
        [
            {
                "tid": caller.tid,
                "user_id": caller.user_id,
                "by_user_id": caller.by_user_id,
                "order_id": None,
                "instance_id": t.inst.instance_id,
                "db_id": t.db.db_id,
                "schema_name": t.db.schema_name,
                "sql_text": r.sql,
                "sql_type": r.kind,
                "affect_rows": r.row_count if r.success else None,
                "elapsed_ms": r.elapsed_ms,
                "exec_state": ExecState.SUCCESS if r.success else ExecState.FAIL,
                "remark": (
                    f"SQL console{note}: {r.message}" if r.message else f"SQL console{note}"
                )[:4000],
                "op_time": utcnow(),
            }
            for r in results
        ],
    )


def _rolled_back(results: list[StatementResult], engine: str) -> None:
    """Say which changes the failed script's rollback undid. MySQL and MariaDB commit the
    open transaction at every DDL statement, so there what ran up to the last DDL stays."""
    failed = next(r.number for r in results if not r.success)
    kept = 0
    if engine in MYSQL_ENGINES:
        kept = max((r.number for r in results if r.success and r.kind in SCHEMA_CHANGES), default=0)
    for r in results:
        if not r.success or (r.kind not in DATA_CHANGES and r.kind not in SCHEMA_CHANGES):
            continue
        if r.number <= kept:
            r.message = f"committed: {engine} commits at DDL, before statement {failed} failed"
        else:
            r.success = False
            r.message = f"rolled back: statement {failed} failed"


def execute_script(
    s: Session, means: Means, caller: Caller, db_id: int, script: str
) -> list[StatementResult]:
    """``script`` on database ``db_id`` for ``caller``: one result per statement."""
    if not script.strip():
        raise DmsError(ErrorCode.INVALID_PARAMETER, "Script is empty.")
    if len(script.encode()) > means.ticket_max_sql_bytes:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"Script is over {means.ticket_max_sql_bytes:,} bytes (OPENDMS_TICKET_MAX_SQL_BYTES).",
        )
    t = _target(s, caller.tid, db_id)
    try:
        found = read_script(script, t.inst.instance_type, t.max_rows)
    except ConsoleRefused as exc:
        raise DmsError(ErrorCode.INVALID_PARAMETER, f"Script: {exc}") from None
    if not found:
        raise DmsError(ErrorCode.INVALID_PARAMETER, "Script holds only comments.")
    if len(found) > means.ticket_max_statements:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"Script has {len(found):,} statements; at most {means.ticket_max_statements:,} "
            "(OPENDMS_TICKET_MAX_STATEMENTS).",
        )
    refused = _refusals(s, caller, t, found)
    if refused:
        first = min(refused)
        results = [
            StatementResult(
                st.number,
                st.written,
                st.kind,
                message=refused.get(st.number)
                or f"not run: statement {first} was refused, so the script ran no statement",
            )
            for st in found
        ]
        _audit(s, caller, t, results, " (refused)")
        return results
    changes = any(st.changes for st in found)
    # MySQL/MariaDB will not plan a change inside a read-only transaction; such an EXPLAIN
    # (which the allowlist never lets run the change) gets a read-write one, rolled back
    writable = changes or (
        t.inst.instance_type in MYSQL_ENGINES and any(st.plans_change for st in found)
    )
    connector = means.connector(t.inst)
    timeout = max(1, t.inst.query_timeout or 60)
    run = _Run(s, means, t)
    try:
        with means.console.session(
            connector, t.where, read_only=not writable, timeout=timeout
        ) as session:
            results = run.all(session, found)
            session.end(commit=changes and all(r.success for r in results))
    except TargetError as exc:
        raise DmsError(ErrorCode.TARGET_CONNECT_FAILED, exc.message) from exc
    if changes and not all(r.success for r in results):
        _rolled_back(results, t.inst.instance_type)
    _audit(s, caller, t, results, "")
    return results
