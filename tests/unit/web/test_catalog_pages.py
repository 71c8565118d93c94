"""The catalog pages: instances → databases → tables → columns and indexes, as the actions
show them (owners, DBAs, sensitive columns), searched and paged; reading metadata again
offered to administrators and DBAs and decided by the action."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from opendms.catalog import instances, ownership
from opendms.catalog.sensitive import set_mask
from opendms.identity import service as identity
from opendms.store.models import Database, Instance
from opendms.web.pages.catalog import like_literal, select_from, table_href
from tests.conftest import Api
from tests.unit.web.signed_in import Demo, browser, cheap_passwords, demo, once, text

ODD = "odd name/with%_chars"  # a table name the URL and the search pattern must carry as is


@pytest.fixture
def d(api: Api, monkeypatch: pytest.MonkeyPatch) -> Demo:
    cheap_passwords(monkeypatch)
    return demo(api)


def target(d: Demo) -> Path:
    with d.api.store.session() as s:
        return Path(s.get_one(Instance, d.instance_id).host)


def register(d: Demo, alias: str, tid: int | None = None, env: str = "test") -> int:
    """Another SQLite target with one table, registered (its metadata read)."""
    path = d.api.sqlite_targets / f"{alias}.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY)")
    with d.api.store.session() as s:
        inst = instances.ensure_registered(
            s,
            d.api.app.means.secrets,
            d.api.app.means.targets,
            tid or d.api.tid,
            instances.InstanceSpec(
                alias=alias,
                instance_type="sqlite",
                host=str(path),
                env_type=env,
                dba_user_id=d.users["dba"] if tid is None else None,
                safe_rule="default",
            ),
            actor=None,
        )
        return inst.instance_id


def rows_of(html: str, section: str) -> list[list[str]]:
    """The rows of the table in the section with this id, as a reader sees them."""
    found = re.search(rf'<section[^>]*id="{section}".*?</section>', html, re.S)
    assert found is not None, f"no section {section}"
    body = re.search(r"<tbody>(.*?)</tbody>", found.group(0), re.S)
    return [
        [text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body.group(1) if body else "", re.S)
    ]


def sync_form(html: str) -> bool:
    return bool(re.search(r'<form method="post" action="/console/catalog/[a-z]+/\d+/sync"', html))


# ------------------------------------------------------------------ instances


def test_instances_show_engine_address_environment_dba_and_state(d: Demo) -> None:
    page = browser(d, "user").get("/catalog")
    assert page.status_code == 200
    ((alias, engine, where, env, dba, state),) = rows_of(page.text, "instances")
    assert (alias, engine, env, dba, state) == ("demo", "sqlite", "dev", "dba", "NORMAL")
    assert where == str(target(d))  # SQLite: the file, no port
    assert f'href="/console/catalog/instances/{d.instance_id}"' in page.text


def test_instances_are_searched_and_paged(d: Demo) -> None:
    for i in range(21):
        register(d, f"extra-{i:02d}")
    b = browser(d, "user")
    first = b.get("/catalog")
    assert len(rows_of(first.text, "instances")) == 20
    assert "22 in all · page 1 of 2" in text(first.text)
    second = b.get("/catalog", page="2")
    assert [r[0] for r in rows_of(second.text, "instances")] == ["extra-19", "extra-20"]
    found = b.get("/catalog", q="extra-0")
    assert [r[0] for r in rows_of(found.text, "instances")] == [f"extra-0{i}" for i in range(10)]
    assert 'value="extra-0"' in found.text
    none = b.get("/catalog", q="no such thing")
    assert "No instance matches “no such thing”" in text(none.text)


@pytest.mark.parametrize("bad", ["0", "-1", "x", "1.5", "9" * 12])
def test_a_page_number_is_a_whole_number_from_one(d: Demo, bad: str) -> None:
    page = browser(d, "user").get("/catalog", page=bad)
    assert page.status_code == 400 and "page must be a whole number from 1" in text(page.text)


def test_an_instance_shows_its_facts_owners_and_databases(d: Demo) -> None:
    with d.api.store.session() as s:
        ownership.set_owners(s, d.api.tid, "INSTANCE", d.instance_id, [d.users["user"]])
        ownership.set_owners(s, d.api.tid, "DATABASE", d.db_id, [d.users["admin"]])
    page = browser(d, "user").get(f"/catalog/instances/{d.instance_id}")
    words = text(page.text)
    assert page.status_code == 200
    for fact in ("Engine sqlite", "Environment dev", "DBA dba", "Owners user", "State NORMAL"):
        assert fact in words
    ((name, encoding, owners, state, query),) = rows_of(page.text, "databases")
    assert (name, encoding, owners, state, query) == ("main", "UTF-8", "admin", "NORMAL", "Query")
    assert f'href="/console/catalog/databases/{d.db_id}"' in page.text
    assert f'href="/console/sql?db={d.db_id}"' in page.text


def test_an_instance_sharing_an_address_is_still_the_one_asked_for(d: Demo) -> None:
    """GetInstance by address answers the first instance there; the page checks the id."""
    with d.api.store.session() as s:
        first = s.get_one(Instance, d.instance_id)
        twin = Instance(
            tid=d.api.tid,
            alias="twin",
            instance_type="sqlite",
            host=first.host,
            port=0,
            sid="twin",
            env_type="test",
        )
        s.add(twin)
        s.flush()
        twin_id = twin.instance_id
        first.sid, twin.sid = "zz", ""  # now GetInstance(Host, Port) without a Sid finds "twin"
    page = browser(d, "user").get(f"/catalog/instances/{twin_id}")
    assert page.status_code == 200 and "<h1>twin" in page.text
    page = browser(d, "user").get(f"/catalog/instances/{d.instance_id}")
    assert page.status_code == 200 and "<h1>demo" in page.text


# ------------------------------------------------------------------ reading metadata again


def test_sync_is_offered_to_administrators_and_dbas_and_decided_by_the_action(d: Demo) -> None:
    for who, offered in (("admin", True), ("dba", True), ("user", False)):
        assert sync_form(browser(d, who).get(f"/catalog/instances/{d.instance_id}").text) == offered
        assert sync_form(browser(d, who).get(f"/catalog/databases/{d.db_id}").text) == offered
    # a user who posts it anyway is refused by the action's RAM policy, on the page
    user = browser(d, "user")
    refused = user.post(f"/catalog/databases/{d.db_id}/sync", {"once": once()})
    assert refused.status_code == 403
    assert "dms:SyncDatabaseMeta" in text(refused.text) and 'role="alert"' in refused.text
    assert "Tables 2" in text(refused.text)  # the page is still there around the message
    refused = user.post(f"/catalog/instances/{d.instance_id}/sync", {"once": once()})
    assert refused.status_code == 403 and "dms:SyncInstanceMeta" in text(refused.text)


def test_sync_reads_a_new_table_once_per_form(d: Demo) -> None:
    with sqlite3.connect(target(d)) as db:
        db.execute("CREATE TABLE audit_trail (id INTEGER PRIMARY KEY, what TEXT)")
    dba = browser(d, "dba")
    assert "audit_trail" not in dba.get(f"/catalog/databases/{d.db_id}").text
    token = once()
    done = dba.post(f"/catalog/databases/{d.db_id}/sync", {"once": token})
    assert done.status_code == 303
    assert done.headers["location"] == (
        f"/console/catalog/databases/{d.db_id}?notice=Read+the+database%27s+tables+again."
    )
    assert "audit_trail" in dba.get(f"/catalog/databases/{d.db_id}").text
    again = dba.post(f"/catalog/databases/{d.db_id}/sync", {"once": token})
    assert again.status_code == 303 and "Already+sent" in again.headers["location"]
    with sqlite3.connect(target(d)) as db:
        db.execute("CREATE TABLE later (id INTEGER)")
    instance = dba.post(f"/catalog/instances/{d.instance_id}/sync", {"once": once()})
    assert (
        instance.status_code == 303 and "notice=Read+the+instance" in instance.headers["location"]
    )
    assert "later" in dba.get(f"/catalog/databases/{d.db_id}").text


# ------------------------------------------------------------------ databases and tables


def test_a_database_shows_its_tables_owners_and_sensitive_columns(d: Demo) -> None:
    with d.api.store.session() as s:
        set_mask(s, d.api.tid, d.db_id, "customers", "email", "HASH", None)
        ownership.set_owners(s, d.api.tid, "DATABASE", d.db_id, [d.users["user"]])
    page = browser(d, "user").get(f"/catalog/databases/{d.db_id}")
    words = text(page.text)
    assert "Engine sqlite" in words and "Owners user" in words and "DBA dba" in words
    assert [r[:3] for r in rows_of(page.text, "tables")] == [
        ["customers", "BASE TABLE", "200"],
        ["orders", "BASE TABLE", "5,000"],
    ]
    assert "Sensitive columns 1" in words
    assert re.search(
        r'<td><a href="/console/catalog/databases/\d+/tables/customers">customers</a>'
        r"\.email</td><td>HASH</td>",
        page.text,
    )
    assert f'href="/console/sql?db={d.db_id}"' in page.text


def test_tables_are_searched_and_paged(d: Demo) -> None:
    with sqlite3.connect(target(d)) as db:
        for i in range(55):
            db.execute(f"CREATE TABLE extra_{i:02d} (id INTEGER)")
    admin = browser(d, "admin")
    admin.post(f"/catalog/databases/{d.db_id}/sync", {"once": once()})
    first = admin.get(f"/catalog/databases/{d.db_id}")
    assert len(rows_of(first.text, "tables")) == 50 and "57 in all · page 1 of 2" in text(
        first.text
    )
    second = admin.get(f"/catalog/databases/{d.db_id}", page="2")
    assert [r[0] for r in rows_of(second.text, "tables")] == [
        *(f"extra_{i}" for i in range(49, 55)),
        "orders",
    ]
    found = admin.get(f"/catalog/databases/{d.db_id}", q="ord")
    assert [r[0] for r in rows_of(found.text, "tables")] == ["orders"]


def test_a_table_shows_columns_with_types_keys_sensitivity_and_its_indexes(d: Demo) -> None:
    with d.api.store.session() as s:
        set_mask(s, d.api.tid, d.db_id, "customers", "email", "FULL", None)
    page = browser(d, "user").get(f"/catalog/databases/{d.db_id}/tables/customers")
    assert page.status_code == 200
    columns = re.search(r'aria-labelledby="columns-h".*?</section>', page.text, re.S)
    indexes = re.search(r'aria-labelledby="indexes-h".*?</section>', page.text, re.S)
    assert columns and indexes
    rows = rows_of('<section id="c">' + columns.group(0), "c")
    assert [r[:5] for r in rows] == [
        ["1", "id", "INTEGER", "NOT NULL", "—"],
        ["2", "name", "TEXT", "NOT NULL", "—"],
        ["3", "email", "TEXT", "NOT NULL", "—"],
        ["4", "created_at", "TEXT", "NOT NULL", "—"],
    ]
    assert rows[0][5].startswith("Primary key") and rows[2][6] == "Sensitive"
    assert [r[6] for r in rows] == ["—", "—", "Sensitive", "—"]
    assert rows_of('<section id="i">' + indexes.group(0), "i") == [
        ["PRIMARY", "Primary", "id", "Unique"],
        ["sqlite_autoindex_customers_1", "Unique", "email", "Unique"],
    ]
    assert "GUID IDB_" in text(page.text)
    assert f"/console/sql?db={d.db_id}&amp;sql=SELECT+%2A+FROM+customers" in page.text


def test_a_table_with_an_odd_name_has_its_own_page(d: Demo) -> None:
    with sqlite3.connect(target(d)) as db:
        db.execute(f"CREATE TABLE \"{ODD}\" (k TEXT DEFAULT 'x' NOT NULL, v INTEGER)")
        db.execute('CREATE TABLE "odd name/withXYchars" (other INTEGER)')  # matches as a pattern
        db.execute('CREATE UNIQUE INDEX odd_v ON "odd name/with%_chars" (v, k)')
    admin = browser(d, "admin")
    admin.post(f"/catalog/databases/{d.db_id}/sync", {"once": once()})
    listing = admin.get(f"/catalog/databases/{d.db_id}").text
    href = table_href(d.db_id, ODD)
    assert f'href="/console{href}"' in listing
    page = admin.get(href)
    assert page.status_code == 200 and f"<h1>{ODD}</h1>" in page.text
    words = text(page.text)
    assert "k TEXT NOT NULL 'x'" in words and "v INTEGER NULL" in words
    assert "odd_v Unique v, k Unique" in words and "other" not in words
    # the name's case may differ where the engine ignores case
    assert admin.get(table_href(d.db_id, "CUSTOMERS")).status_code == 200


def test_what_is_not_there_is_not_found_never_an_error(d: Demo) -> None:
    b = browser(d, "user")
    for path, code in (
        ("/catalog/instances/424242", "InstanceNotFound"),
        ("/catalog/instances/abc", "InstanceNotFound"),
        ("/catalog/databases/424242", "DatabaseNotFound"),
        ("/catalog/databases/0", "DatabaseNotFound"),
        (f"/catalog/databases/{d.db_id}/tables/nowhere", "TableNotFound"),
        ("/catalog/databases/424242/tables/customers", "DatabaseNotFound"),
    ):
        page = b.get(path)
        assert page.status_code == 404, path
        assert code in text(page.text)


def test_another_tenants_catalog_is_not_found(d: Demo) -> None:
    with d.api.store.session() as s:
        other = identity.create_tenant(s, "other").tid
    theirs = register(d, "theirs", tid=other)
    with d.api.store.session() as s:
        their_db = s.query(Database).filter_by(instance_id=theirs).one().db_id
    admin = browser(d, "admin")
    assert admin.get(f"/catalog/instances/{theirs}").status_code == 404
    assert admin.get(f"/catalog/databases/{their_db}").status_code == 404
    assert admin.get(f"/catalog/databases/{their_db}/tables/t").status_code == 404
    refused = admin.post(f"/catalog/databases/{their_db}/sync", {"once": once()})
    assert refused.status_code == 404
    assert "theirs" not in admin.get("/catalog").text


def test_names_are_carried_literally() -> None:
    assert like_literal("a_b%c\\d") == "a\\_b\\%c\\\\d"
    assert select_from("orders", "mysql") == "SELECT * FROM orders"
    assert select_from("my table", "mariadb") == "SELECT * FROM `my table`"
    assert select_from("we`ird", "mysql") == "SELECT * FROM `we``ird`"
    assert select_from("Orders", "postgresql") == 'SELECT * FROM "Orders"'
    assert select_from("orders", "postgresql") == "SELECT * FROM orders"
    assert select_from('a"b', "sqlite") == 'SELECT * FROM "a""b"'
    assert table_href(3, "a/b c") == "/catalog/databases/3/tables/a%2Fb%20c"
