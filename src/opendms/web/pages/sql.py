"""The SQL console page: pick a database, run a script through ``ExecuteScript`` (so the
permission, row cap, masking and audit are the API's), see each statement's result as a
table, a page of rows at a time.

Paging works on the rows the run already fetched: running the script again for another page
would run its changes again, write another audit line per page and could show rows that
moved in between. The fetched rows are not kept on the server either (with several server
processes the next page's request may reach another one): the run's answer travels with the
page, sealed (``_seal``: compressed, encrypted and authenticated under a key of its own,
bound to the session and expiring with it), and a page request sends it back; the server
renders the 50 rows asked for, so the browser never holds thousands of rows in the page.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.orm import Session
from starlette.responses import Response

from opendms.catalog import queries
from opendms.errors import DmsError, ErrorCode
from opendms.gateway.errors import GatewayError
from opendms.identity import sessions
from opendms.identity.caller import Caller
from opendms.rulebook import rule_sets
from opendms.sql.console import ConsoleRefused, read_script
from opendms.web.page import Page
from opendms.web.routing import get, post

PAGE_ROWS = 50  # rows of a result shown at once: a page never freezes the browser
PICKER_SIZE = 200  # databases the picker lists; a filter narrows the rest
# What a run keeps for paging: the service's row cap may reach 100,000 rows; past this many
# characters of values the pages stop and say so (an export takes the rest).
MAX_HELD_CHARS = 2_000_000
RESULTS_KEY = "opendms console sql results v1"
_SHOW = re.compile(r"(\d{1,6}):(\d{1,9})")


@dataclass
class Statement:
    """One statement's answer, as ``ExecuteScript``'s ``Results[]`` gave it."""

    number: int
    sql: str  # the statement's text where the script could be read into statements, else ""
    success: bool
    message: str
    columns: list[str]
    rows: list[list[Any]]  # the rows kept for paging: all, unless MAX_HELD_CHARS ran out
    row_count: int  # RowCount: rows fetched, or rows a change affected

    @property
    def is_query(self) -> bool:
        return bool(self.columns)

    @property
    def notes(self) -> list[str]:
        """A successful statement's message is the service's notes ("truncated: …",
        "masked: …", "committed: …"), joined with "; "; a failure's is one reason."""
        if not self.success:
            return []
        return [n for n in self.message.split("; ") if n]

    @property
    def masked(self) -> set[str]:
        """Result columns the service masked: it names them in its "masked: a, b" note."""
        for note in self.notes:
            if note.startswith("masked: "):
                return {c.strip() for c in note.removeprefix("masked: ").split(",")}
        return set()


@dataclass
class Run:
    """A script's run: what the page shows of it, and what it pages through."""

    db_id: int
    db_name: str
    engine: str
    script: str
    elapsed_ms: float
    statements: list[Statement] = field(default_factory=list)
    user_id: int = 0
    session: str = ""  # a digest of the session's CSRF token: another session cannot page it

    @property
    def pageable(self) -> bool:
        return any(len(st.rows) > PAGE_ROWS for st in self.statements)

    @property
    def took(self) -> str:
        ms = self.elapsed_ms
        return f"{ms:,.0f} ms" if ms < 1000 else f"{ms / 1000:,.2f} s"

    @property
    def summary(self) -> str:
        """One line a screen reader announces when the results come in."""
        failed = sum(not st.success for st in self.statements)
        n = len(self.statements)
        said = f"{n} statement{'s' if n != 1 else ''}"
        if failed:
            said += f", {failed} not done"
        return f"Ran on {self.db_name} in {self.took}: {said}."


@dataclass(frozen=True)
class Shown:
    """One statement on the page: a page of its rows."""

    st: Statement
    page: int
    pages: int

    @property
    def first(self) -> int:  # the first row's number on this page, from 1
        return (self.page - 1) * PAGE_ROWS + 1

    @property
    def rows(self) -> list[list[Any]]:
        return self.st.rows[self.first - 1 : self.first - 1 + PAGE_ROWS]

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1

    @property
    def held_short(self) -> bool:
        """Fewer rows kept for paging than fetched (MAX_HELD_CHARS ran out)."""
        return self.st.is_query and len(self.st.rows) < self.st.row_count


def _pages(st: Statement) -> int:
    return max(1, -(-len(st.rows) // PAGE_ROWS))


def shown(st: Statement, page: int = 1) -> Shown:
    pages = _pages(st)
    return Shown(st, min(max(page, 1), pages), pages)


# ------------------------------------------------------------------ sealing a run


def _session_digest(page: Page) -> str:
    assert page.live is not None
    return hashlib.sha256(page.live.csrf_token.encode()).hexdigest()[:32]


def _fernet(page: Page) -> Fernet:
    # a key of its own: a sealed run is no secret the store keeps, nor a masking key
    key = page.gateway.means.secrets.key_for(RESULTS_KEY)
    return Fernet(base64.urlsafe_b64encode(key))


def seal(page: Page, run: Run) -> str:
    """The run as text the page carries and sends back to ask for another page."""
    packed = json.dumps(asdict(run), ensure_ascii=False, separators=(",", ":")).encode()
    return _fernet(page).encrypt(zlib.compress(packed, 6)).decode()


def unseal(page: Page, token: str) -> Run | None:
    """The run a page sent back, if this session sealed it and it is not too old."""
    try:
        packed = _fernet(page).decrypt(token.encode(), ttl=int(sessions.IDLE.total_seconds()))
        # authenticated: only this server could have packed it, so it unpacks to what it made
        data = json.loads(zlib.decompress(packed))
    except (InvalidToken, zlib.error, ValueError, UnicodeError):
        return None
    statements = [Statement(**st) for st in data.pop("statements")]
    run = Run(**data, statements=statements)
    if run.user_id != page.caller.user_id or run.session != _session_digest(page):
        return None
    return run


# ------------------------------------------------------------------ a run


def _cell(value: Any) -> Any:
    """A value as the page shows it: None stays None (the template marks NULL)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _labels(script: str, picked: Picked, count: int) -> list[str]:
    """Each statement's text, for the headings: the service reads the script into
    statements with the same function, which remembers its reads by text, engine and row
    cap, so this costs nothing more. Numbers only when they do not line up."""
    try:
        found = read_script(script, picked.engine, picked.max_rows)
    except ConsoleRefused:
        return [""] * count
    if len(found) != count:
        return [""] * count
    return [st.written.strip() for st in found]


def _statements(results: list[dict[str, Any]], labels: list[str]) -> list[Statement]:
    out = []
    budget = MAX_HELD_CHARS
    for number, (r, label) in enumerate(zip(results, labels, strict=True), start=1):
        columns = list(r.get("ColumnNames") or [])
        rows: list[list[Any]] = []
        for row in r.get("Rows") or []:
            values = [_cell(row.get(c)) for c in columns]
            budget -= sum(len(str(v)) + 3 for v in values)
            if budget < 0:
                break
            rows.append(values)
        out.append(
            Statement(
                number,
                label,
                bool(r.get("Success")),
                str(r.get("Message") or ""),
                columns,
                rows,
                int(r.get("RowCount") or 0),
            )
        )
    return out


@dataclass(frozen=True)
class Picked:
    db_id: int
    name: str
    engine: str
    max_rows: int = 1  # the console's row cap on it, where asked for


def _picked(s: Session, caller: Caller, db_id: int, cap: bool = False) -> Picked:
    """The chosen database's name and engine, found as SearchDatabase finds it: in the
    caller's tenant; with ``cap``, its rule set's row cap too, so that reading the script
    for its statements' headings finds the service's own reading remembered."""
    db, inst = queries.get_database_on(s, caller.tid, db_id)
    label = _db_label(db.schema_name, inst.alias, inst.env_type)
    rows = rule_sets.for_instance(s, inst)[0].rule_set.console.max_rows if cap else 1
    return Picked(db.db_id, label, inst.instance_type, rows)


def _db_label(schema: str, alias: str, env: str) -> str:
    return f"{schema} · {alias} ({env})" if alias else f"{schema} ({env})"


async def _databases(page: Page, search: str) -> tuple[list[dict[str, Any]], int]:
    found = await page.call("SearchDatabase", SearchKey=search or None, PageSize=PICKER_SIZE)
    listed = [
        {
            "id": int(d["DatabaseId"]),
            "label": _db_label(d["SchemaName"], d.get("Alias", ""), d["EnvType"]),
        }
        for d in found["SearchDatabaseList"]["SearchDatabase"]
    ]
    return listed, int(found["TotalCount"])


def _db_id(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and 0 < len(text) <= 18 else None


async def _render(
    page: Page,
    *,
    db_id: int | None,
    script: str,
    run: Run | None = None,
    pages: dict[int, int] | None = None,
    errors: dict[str, str] | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    search = page.field("q")[:256]
    databases, total = await _databases(page, search)
    listed = len(databases)
    if db_id is not None and all(d["id"] != db_id for d in databases):
        try:  # chosen earlier, but past the picker's page or the filter: keep it chosen
            picked = await page.read("SearchDatabase", _picked, db_id)
            databases.insert(0, {"id": picked.db_id, "label": picked.name})
        except DmsError:
            db_id = None
    return page.render(
        "sql.html",
        status=status,
        databases=databases,
        listed=listed,
        total=total,
        search=search,
        db_id=db_id,
        script=script,
        errors=errors or {},
        **_results_context(page, run, pages or {}, error),
    )


def _results_context(
    page: Page, run: Run | None, pages: dict[int, int], error: str
) -> dict[str, Any]:
    return {
        "run": run,
        "shown": [shown(st, pages.get(st.number, 1)) for st in run.statements] if run else [],
        "sealed": seal(page, run) if run is not None and run.pageable else "",
        "run_error": error,
    }


def _is_htmx(page: Page) -> bool:
    return page.request.headers.get("hx-request") == "true"


# ------------------------------------------------------------------ handlers


async def console(page: Page) -> Response:
    db_text = page.field("db")
    return await _render(page, db_id=_db_id(db_text) if db_text else None, script=page.field("sql"))


def _results(page: Page, run: Run | None, error: str = "") -> Response:
    """The results region alone, for htmx, with a fresh one-time token for the next run and
    the line a screen reader announces. Always 200: htmx swaps in no error answer."""
    return page.render("_sql_results.html", oob=True, **_results_context(page, run, {}, error))


async def run_script(page: Page) -> Response:
    script, db_text = page.field("sql"), page.field("db")
    db_id = _db_id(db_text)
    errors = {}
    if db_id is None:
        errors["db"] = "Choose a database." if not db_text else "Choose a database from the list."
    if not script.strip():
        errors["sql"] = "Write the SQL to run."
    htmx = _is_htmx(page)
    if errors:
        if htmx:
            return _results(page, None, " ".join(errors.values()))
        return await _render(page, db_id=db_id, script=script, errors=errors, status=400)
    assert db_id is not None
    if not await page.once():
        # a double click's second request: the first one ran the script, and has its answer
        message = "This run was sent twice; it ran once. Run it again to see its results."
        if htmx:
            return _results(page, None, message)
        return await _render(page, db_id=db_id, script=script, error=message)
    try:
        picked = await page.read("SearchDatabase", _picked, db_id, cap=True)
        started = time.perf_counter()
        answer = await page.call("ExecuteScript", DbId=db_id, Logic=False, Script=script)
        elapsed = (time.perf_counter() - started) * 1000
    except (DmsError, GatewayError) as exc:
        problem = f"{exc.code}: {exc.message}"
        field_name = {"DbId": "db", "Script": "sql"}.get(getattr(exc, "field", ""), "")
        if htmx:
            return _results(page, None, problem)
        return await _render(
            page,
            db_id=db_id,
            script=script,
            errors={field_name: problem} if field_name else {},
            error="" if field_name else problem,
            status=exc.status if isinstance(exc, GatewayError) else 400,
        )
    results = answer.get("Results") or []
    run = Run(
        picked.db_id,
        picked.name,
        picked.engine,
        script,
        elapsed,
        _statements(results, _labels(script, picked, len(results))),
        page.caller.user_id,
        _session_digest(page),
    )
    if htmx:
        return _results(page, run)
    return await _render(page, db_id=db_id, script=script, run=run)


async def turn_page(page: Page) -> Response:
    """Another page of one statement's rows, from the run the page sent back."""
    run = unseal(page, page.field("run"))
    wanted = _SHOW.fullmatch(page.field("show"))
    number, to = (int(wanted.group(1)), int(wanted.group(2))) if wanted else (0, 0)
    htmx = _is_htmx(page)
    if run is None or not 1 <= number <= len(run.statements):
        message = (
            "These results can no longer be paged (a run pages for 2 hours, in the session "
            "that ran it): run the script again."
            if run is None
            else "No such statement in this run."
        )
        if htmx:
            return page.render("_sql_statement.html", lost=message, number=number)
        raise DmsError(ErrorCode.INVALID_PARAMETER, message)
    if htmx:
        return page.render(
            "_sql_statement.html",
            lost="",
            s=shown(run.statements[number - 1], to),
            dialect=run.engine,
        )
    # without JavaScript the whole page comes back: every statement at the page it was on
    pages = {}
    for st in run.statements:
        kept = _SHOW.fullmatch(f"{st.number}:{page.field(f'p{st.number}')}")
        pages[st.number] = int(kept.group(2)) if kept else 1
    pages[number] = to
    return await _render(page, db_id=run.db_id, script=run.script, run=run, pages=pages)


ROUTES = [
    get("/sql", console),
    post("/sql", run_script),
    post("/sql/page", turn_page),
]
