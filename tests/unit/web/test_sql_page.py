"""The SQL console page: ExecuteScript's rules as the API applies them (permission, row cap,
masking, audit), results a page at a time from the sealed run, and every field checked."""

from __future__ import annotations

import re
import sqlite3
from html import unescape
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import fernet
from sqlalchemy import func, select

from opendms.catalog.sensitive import set_mask
from opendms.rulebook import rule_sets
from opendms.store.models import Instance, SqlAudit
from opendms.web.pages import sql as sql_page
from tests.conftest import Api
from tests.unit.web.signed_in import Browser, Demo, browser, cheap_passwords, demo, once, text

ALL_CUSTOMERS = "SELECT * FROM customers ORDER BY id"


@pytest.fixture
def d(api: Api, monkeypatch: pytest.MonkeyPatch) -> Demo:
    cheap_passwords(monkeypatch)
    return demo(api)


def run(b: Browser, d: Demo, script: str, htmx: bool = False, token: str | None = None) -> str:
    r = b.post("/sql", {"db": d.db_id, "sql": script, "once": token or once()}, htmx=htmx)
    assert r.status_code == 200, r.text
    return r.text


def sealed(html: str) -> str:
    found = re.search(r'name="run" value="([^"]+)"', html)
    assert found is not None, "no sealed run on the page"
    return found.group(1)


def cells(html: str, statement: int = 1) -> list[list[str]]:
    """The rows of a statement's result table, as a reader sees them."""
    section = re.search(rf'<section[^>]*id="result-{statement}".*?</section>', html, re.S)
    assert section is not None
    body = re.search(r"<tbody>(.*?)</tbody>", section.group(0), re.S)
    if body is None:
        return []
    return [
        [text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    ]


def statement_sql(html: str) -> list[str]:
    """Each statement's text as its heading shows it (highlighted: tags dropped whole)."""
    return [
        unescape(re.sub(r"<[^>]+>", "", pre)).strip()
        for pre in re.findall(r'<pre class="sql statement-sql">(.*?)</pre>', html, re.S)
    ]


def audit_lines(d: Demo) -> int:
    with d.api.store.session() as s:
        return s.scalar(select(func.count()).select_from(SqlAudit)) or 0


def target(d: Demo) -> Path:
    with d.api.store.session() as s:
        return Path(s.get_one(Instance, d.instance_id).host)


# ------------------------------------------------------------------ the page


def test_the_picker_lists_the_databases_the_user_sees_and_keeps_the_choice(d: Demo) -> None:
    b = browser(d, "user")
    page = b.get("/sql").text
    # the only database the user sees is chosen already
    assert re.search(rf'<option value="{d.db_id}" selected>main · demo \(dev\)</option>', page)
    assert '<label for="sql-text">SQL</label>' in page and '<label for="sql-db">' in page
    chosen = b.get("/sql", db=str(d.db_id), sql="SELECT 1").text
    assert f'<option value="{d.db_id}" selected>' in chosen and ">SELECT 1</textarea>" in chosen
    # a filter that matches nothing still keeps the chosen database
    narrowed = b.get("/sql", db=str(d.db_id), q="nothing-like-it").text
    assert f'<option value="{d.db_id}" selected>' in narrowed
    assert "No database matches “nothing-like-it”" in text(narrowed)
    # an id nobody can see is simply not offered
    for asked in ("99999", "not-a-number"):
        answer = b.get("/sql", db=asked)
        assert answer.status_code == 200 and f'value="{asked}"' not in answer.text


def test_a_query_shows_fifty_rows_the_count_and_the_time(d: Demo) -> None:
    page = run(browser(d, "admin"), d, ALL_CUSTOMERS)
    words = text(page)
    assert re.search(r"Ran on main · demo \(dev\) in \d[\d,.]* (ms|s) · 1 statement", words)
    assert "200 rows · rows 1\N{EN DASH}50" in words and "Page 1 of 4" in words
    rows = cells(page)
    assert len(rows) == 50
    assert rows[0] == ["1", "1", "customer 1", "c1@example.com", "2026-01-01 01:00:00"]
    assert rows[-1][0] == "50"
    assert '<th scope="col">email</th>' in page
    assert statement_sql(page) == ["SELECT * FROM customers ORDER BY id"]


def test_pages_come_from_the_fetched_rows_without_running_again(d: Demo) -> None:
    b = browser(d, "admin")
    page = run(b, d, ALL_CUSTOMERS + ";\nSELECT id FROM orders ORDER BY id LIMIT 120")
    lines = audit_lines(d)
    run_ = sealed(page)
    # htmx: the statement's section alone, at the page asked for
    second = b.post("/sql/page", {"run": run_, "show": "1:2"}, htmx=True)
    assert second.status_code == 200 and "<html" not in second.text
    assert second.text.lstrip().startswith('<section class="card result" id="result-1"')
    assert [r[1] for r in cells(second.text)] == [str(i) for i in range(51, 101)]
    assert "rows 51\N{EN DASH}100" in text(second.text)
    # past the end: the last page
    last = b.post("/sql/page", {"run": run_, "show": "1:999"}, htmx=True)
    assert "rows 151\N{EN DASH}200" in text(last.text) and "Page 4 of 4" in text(last.text)
    # without JavaScript: the whole page, each statement at the page it was on
    full = b.post("/sql/page", {"run": run_, "show": "2:3", "p1": "2", "p2": "1"})
    assert full.status_code == 200
    assert [r[1] for r in cells(full.text, 1)][:1] == ["51"]
    assert [r[1] for r in cells(full.text, 2)] == [str(i) for i in range(101, 121)]
    assert f'<option value="{d.db_id}" selected>' in full.text
    assert "LIMIT 120</textarea>" in full.text
    assert audit_lines(d) == lines  # nothing ran again


def test_htmx_gets_the_results_with_a_new_form_token_and_a_status_line(d: Demo) -> None:
    page = run(browser(d, "admin"), d, "SELECT 1 AS one", htmx=True)
    assert "<html" not in page and "<textarea" not in page
    assert re.search(
        r'<input type="hidden" name="once" id="sql-once" value="[^"]+" hx-swap-oob', page
    )
    status = re.search(r'<p id="sql-status" role="status"[^>]*>(.*?)</p>', page)
    assert status is not None and re.fullmatch(
        r"Ran on main · demo \(dev\) in \d[\d,.]* (ms|s): 1 statement\.", status.group(1)
    )
    assert 'name="run"' not in page  # one row: nothing to page, nothing sealed


def test_null_is_marked_apart_from_the_text_null(d: Demo) -> None:
    page = run(browser(d, "admin"), d, "SELECT NULL AS a, 'NULL' AS b, '' AS c")
    (row,) = re.findall(r"<tbody>\s*<tr>(.*?)</tr>", page, re.S)
    tds = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    assert tds[1:] == ['<em class="null">NULL</em>', "NULL", ""]


def test_without_query_permission_the_refusal_shows_and_is_audited(d: Demo) -> None:
    b = browser(d, "user")
    page = run(b, d, ALL_CUSTOMERS)
    assert "you lack the QUERY permission on customers" in text(page)
    assert cells(page) == [] and "Not done" in text(page)
    assert audit_lines(d) == 1
    d.grant("user", "QUERY")
    assert len(cells(run(b, d, ALL_CUSTOMERS))) == 50
    assert audit_lines(d) == 2


def test_a_role_without_execute_script_is_refused_by_its_ram_policy(d: Demo) -> None:
    b = browser(d, "reader")
    page = b.post("/sql", {"db": d.db_id, "sql": "SELECT 1", "once": once()})
    assert page.status_code == 403
    assert "dms:ExecuteScript" in text(page.text) and "SELECT 1</textarea>" in page.text
    htmx = run(b, d, "SELECT 1", htmx=True)
    assert "dms:ExecuteScript" in text(htmx) and 'role="alert"' in htmx
    assert audit_lines(d) == 0


def test_sensitive_columns_are_masked_as_the_api_masks_them(d: Demo) -> None:
    with d.api.store.session() as s:
        set_mask(s, d.api.tid, d.db_id, "customers", "email", "HASH", None)
    page = run(browser(d, "admin"), d, "SELECT id, email FROM customers ORDER BY id LIMIT 3")
    assert "c1@example.com" not in page
    assert 'email <span class="masked-flag">masked</span>' in page
    assert "Masked: email" in text(page)
    api = d.api.call(
        "ExecuteScript",
        DbId=d.db_id,
        Script="SELECT id, email FROM customers ORDER BY id LIMIT 3",
        Logic="false",
    ).json()
    assert [r["email"] for r in api["Results"][0]["Rows"]] == [row[2] for row in cells(page)]


def test_the_row_cap_is_the_rule_sets_and_the_page_says_where_it_cut(d: Demo) -> None:
    with d.api.store.session() as s:
        rule_sets.load(
            s,
            d.api.tid,
            "small",
            "templates: {LOW: DBA, MIDDLE: DBA, HIGH: DBA, HIGHEST: DBA}\n"
            "console: {max_rows: 60}\n",
        )
        rule_sets.assign(s, d.api.tid, d.instance_id, "small")
    b = browser(d, "admin")
    page = run(b, d, ALL_CUSTOMERS)
    assert "60 rows · rows 1\N{EN DASH}50" in text(page)
    assert "Truncated: the first 60 rows are shown" in text(page)
    assert 'class="warn">Truncated' in page
    last = b.post("/sql/page", {"run": sealed(page), "show": "1:2"}, htmx=True)
    assert [r[1] for r in cells(last.text)] == [str(i) for i in range(51, 61)]


def test_rows_past_what_a_run_keeps_for_paging_are_said_to_be_left_out(
    d: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_page, "MAX_HELD_CHARS", 3_000)
    b = browser(d, "admin")
    page = run(b, d, ALL_CUSTOMERS)
    words = text(page)
    kept = int(re.search(r"Pages cover the first ([\d,]+) of these rows", words).group(1))  # type: ignore[union-attr]
    assert 50 < kept < 200 and "200 rows" in words
    last = b.post("/sql/page", {"run": sealed(page), "show": "1:99"}, htmx=True)
    assert cells(last.text)[-1][1] == str(kept)


def test_each_statement_has_its_text_result_or_reason(d: Demo) -> None:
    page = run(
        browser(d, "admin"),
        d,
        "SELECT count(*) AS n FROM orders;\n-- a comment alone is no statement\n"
        "UPDATE customers SET name = name WHERE id = 1;\nSELECT * FROM nowhere",
    )
    words = text(page)
    assert "3 statements" in words
    assert statement_sql(page) == [
        "SELECT count(*) AS n FROM orders",
        "UPDATE customers SET name = name WHERE id = 1",
        "SELECT * FROM nowhere",
    ]
    first, second, third = (
        text(part) for part in re.split(r'<section class="card result"', page)[1:]
    )
    assert "Done" in first and "5000" in first
    assert "Not done" in second and "rolled back: statement 3 failed" in second
    assert "Not done" in third and "no such table: nowhere" in third


def test_a_double_click_runs_a_change_once(d: Demo) -> None:
    b = browser(d, "admin")
    token = once()
    change = "INSERT INTO customers (name, email, created_at) VALUES ('x', 'x@x', 'now')"
    assert "1 row affected" in text(run(b, d, change, token=token))
    again = text(run(b, d, change, token=token))
    assert "This run was sent twice; it ran once." in again and "Statement 1" not in again
    with sqlite3.connect(target(d)) as db:
        assert db.execute("SELECT count(*) FROM customers WHERE email = 'x@x'").fetchone() == (1,)


@pytest.mark.parametrize(
    ("fields", "where", "said"),
    [
        ({"sql": "SELECT 1"}, "db", "Choose a database."),
        ({"db": "abc", "sql": "SELECT 1"}, "db", "Choose a database from the list."),
        ({"db": "-1", "sql": "SELECT 1"}, "db", "Choose a database from the list."),
        ({"db": "DB", "sql": "   "}, "sql", "Write the SQL to run."),
    ],
)
def test_fields_are_checked_before_anything_runs(
    d: Demo, fields: dict[str, str], where: str, said: str
) -> None:
    fields = {**fields, "db": str(d.db_id) if fields.get("db") == "DB" else fields.get("db", "")}
    b = browser(d, "admin")
    page = b.post("/sql", {**fields, "once": once()})
    assert page.status_code == 400
    assert f'<p class="field-error" id="{where}-error" role="alert">{said}</p>' in page.text
    htmx = b.post("/sql", {**fields, "once": once()}, htmx=True)
    assert htmx.status_code == 200 and said in text(htmx.text)
    assert audit_lines(d) == 0


def test_what_the_service_refuses_whole_is_shown_not_raised(d: Demo) -> None:
    b = browser(d, "admin")
    unsplit = b.post("/sql", {"db": d.db_id, "sql": "SELECT 'unterminated", "once": once()})
    assert unsplit.status_code == 400
    assert "InvalidParameter: Script:" in text(unsplit.text)
    gone = b.post("/sql", {"db": "424242", "sql": "SELECT 1", "once": once()})
    assert gone.status_code == 400 and "DatabaseNotFound" in text(gone.text)


def test_a_run_pages_only_for_the_session_that_ran_it(
    d: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = browser(d, "admin")
    run_ = sealed(run(admin, d, ALL_CUSTOMERS))
    lost = "These results can no longer be paged"
    # another user, and the same user in another session
    for other in (browser(d, "dba"), browser(d, "admin")):
        r = other.post("/sql/page", {"run": run_, "show": "1:2"}, htmx=True)
        assert r.status_code == 200 and lost in text(r.text) and cells(r.text) == []
    # tampered with
    tampered = run_[:-8] + ("A" * 8 if not run_.endswith("A" * 8) else "B" * 8)
    assert lost in text(admin.post("/sql/page", {"run": tampered, "show": "1:2"}, htmx=True).text)
    full = admin.post("/sql/page", {"run": "garbage", "show": "1:2"})
    assert full.status_code == 400 and lost in text(full.text)
    # older than a session may be idle
    real = fernet.time.time
    with monkeypatch.context() as later:  # Fernet's clock alone, three hours on
        later.setattr(fernet, "time", SimpleNamespace(time=lambda: real() + 3 * 3600))
        r = admin.post("/sql/page", {"run": run_, "show": "1:2"}, htmx=True)
        assert lost in text(r.text)
    assert len(cells(admin.post("/sql/page", {"run": run_, "show": "1:2"}, htmx=True).text)) == 50


@pytest.mark.parametrize("show", ["", "x", "1", "1:", ":2", "0:1", "9:1", "1:2:3", "1:-1"])
def test_a_page_request_names_a_statement_of_the_run(d: Demo, show: str) -> None:
    b = browser(d, "admin")
    run_ = sealed(run(b, d, ALL_CUSTOMERS))
    r = b.post("/sql/page", {"run": run_, "show": show}, htmx=True)
    assert r.status_code == 200 and "No such statement in this run." in text(r.text)
    full = b.post("/sql/page", {"run": run_, "show": show})
    assert full.status_code == 400


def test_the_console_needs_a_session_and_a_csrf_token(d: Demo) -> None:
    b = browser(d, "admin")
    anonymous = b.client.__class__(d.api.app, base_url="https://testserver", follow_redirects=False)
    assert anonymous.get("/console/sql").status_code == 303
    forged = b.client.post(
        "/console/sql", data={"db": d.db_id, "sql": "SELECT 1", "once": once(), "csrf_token": "x"}
    )
    assert forged.status_code == 403 and audit_lines(d) == 0
