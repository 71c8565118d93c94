"""The risk factors of real tickets against the demo target (customers: 200 rows, orders:
5,000 rows, in schema main): statement kinds, qualified tables, row bounds, export rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opendms.approvals import facts as ticket_facts
from opendms.catalog import instances, queries
from opendms.identity import service as identity
from opendms.identity.caller import Caller
from opendms.identity.roles import parse_roles
from opendms.identity.secrets import SecretBox
from opendms.rulebook.rules import Facts
from opendms.store.db import Store
from opendms.store.models import Attachment, Instance, User
from opendms.targets.base import TargetPolicy
from opendms.targets.demo import ensure_demo_target
from opendms.tickets import service as tickets

CUSTOMERS, ORDERS = 200, 5000


def caller(user: User) -> Caller:
    return Caller("AK", user.uid, user.user_id, user.tid, "t", parse_roles(user.roles))


class World:
    def __init__(self, store: Store, tid: int, user: User, db_id: int, inst: int) -> None:
        self.store, self.tid, self.user, self.db_id, self.instance_id = (
            store,
            tid,
            user,
            db_id,
            inst,
        )

    def facts(self, plugin_type: str, params: dict[str, Any]) -> Facts:
        """File a ticket and read its risk factors as submission does."""
        with self.store.session() as s:
            order = tickets.create_order(s, caller(self.user), plugin_type, params, comment="c")
            return ticket_facts.ticket_facts(s, order, ticket_facts.targets_of(s, order))

    def change(self, sql: str, *db_ids: int, plugin_type: str = "DC_COMMON") -> Facts:
        items = [{"DbId": d} for d in db_ids or (self.db_id,)]
        params = {"DbItemList": items, "SqlType": "TEXT", "ExecSQL": sql}
        if plugin_type == "DC_COMMON":
            params["EstimateAffectRows"] = 1
        return self.facts(plugin_type, params)

    def export(self, sql: str) -> Facts:
        return self.facts(
            "DATA_EXPORT",
            {
                "DbId": self.db_id,
                "ExeSQL": sql,
                "Classify": "report",
                "AffectRows": 1,
                "IgnoreAffectRows": False,
            },
        )

    def attachment(self) -> str:
        key = uuid.uuid4().hex
        with self.store.session() as s:
            s.add(
                Attachment(
                    attachment_key=key,
                    tid=self.tid,
                    user_id=self.user.user_id,
                    file_name="changes.sql",
                    size_bytes=10,
                    sha256="0" * 64,
                )
            )
        return key

    def set_env(self, env: str, instance_id: int | None = None) -> None:
        with self.store.session() as s:
            s.get(Instance, instance_id or self.instance_id).env_type = env

    def second_instance(self, directory: Path, env: str) -> int:
        """Another demo target (a copy of the same tables); its database id."""
        path = ensure_demo_target(directory)
        with self.store.session() as s:
            inst = instances.register_instance(
                s,
                SecretBox(b"k"),
                TargetPolicy("", path.parent),
                self.tid,
                instances.InstanceSpec(instance_type="sqlite", host=str(path), env_type=env),
                actor=None,
            )
            (db,) = queries.list_databases(s, self.tid, inst.instance_id).items
            return db.db_id


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One migrated store and demo target for the module (tickets only add rows)."""
    tmp_path = tmp_path_factory.mktemp("facts")
    store = Store(f"sqlite:///{tmp_path / 'meta.db'}")
    store.migrate()
    path = ensure_demo_target(tmp_path / "targets")
    with store.session() as s:
        tid = identity.create_tenant(s, "t").tid
        user = identity.register_user(s, None, tid, "3", roles="USER")
        inst = instances.register_instance(
            s,
            SecretBox(b"k"),
            TargetPolicy("", path.parent),
            tid,
            instances.InstanceSpec(instance_type="sqlite", host=str(path)),
            actor=None,
        )
        (db,) = queries.list_databases(s, tid, inst.instance_id).items
        s.expunge_all()
    yield World(store, tid, user, db.db_id, inst.instance_id)
    store.dispose()


@pytest.fixture
def world(shared: World) -> Iterator[World]:
    yield shared
    shared.set_env("product")  # what a test changed


def summary(f: Facts) -> tuple[Any, ...]:
    return (sorted(f.statement_kinds), sorted(f.tables), f.affected_rows, f.complete)


# ------------------------------------------------------------------ DC_COMMON, SQL as text


def test_whole_table_update_is_bounded_by_the_table_rows(world: World) -> None:
    f = world.change("UPDATE customers SET name = 'x'")
    assert f == Facts(
        plugin_type="DC_COMMON",
        env_types=frozenset({"product"}),
        statement_kinds=frozenset({"UPDATE"}),
        tables=frozenset({"main.customers"}),
        affected_rows=CUSTOMERS,
        export_rows=None,
        complete=True,
    )
    assert world.change("UPDATE orders SET status = 'x'").affected_rows == ORDERS
    # a WHERE clause does not narrow the bound before the precheck
    assert world.change("DELETE FROM orders WHERE id = 1").affected_rows == ORDERS


def test_statements_of_a_batch_add_up(world: World) -> None:
    f = world.change(
        "UPDATE customers SET name = 'x' WHERE id = 1;\n"
        "DELETE FROM orders WHERE id = 2;\n"
        "INSERT INTO customers (id, name, email, created_at) VALUES (999, 'n', 'e', 'd');\n"
        "SELECT * FROM orders;"
    )
    assert summary(f) == (
        ["DELETE", "INSERT", "SELECT", "UPDATE"],
        ["main.customers", "main.orders"],
        CUSTOMERS + ORDERS + 1,
        True,
    )


def test_insert_values_counts_its_tuples(world: World) -> None:
    f = world.change("INSERT INTO orders (id) VALUES (10001), (10002), (10003)")
    assert summary(f) == (["INSERT"], ["main.orders"], 3, True)


def test_insert_select_rows_are_unknown(world: World) -> None:
    f = world.change("INSERT INTO orders SELECT * FROM orders WHERE id < 10")
    assert summary(f) == (["INSERT"], ["main.orders"], None, True)


@pytest.mark.parametrize(
    ("sql", "rows"),
    [
        ("SELECT * FROM orders", 0),
        ("CREATE TABLE tmp_x (a INT)", 0),
        ("DROP TABLE orders", ORDERS),
        ("TRUNCATE TABLE customers", CUSTOMERS),
        ("ALTER TABLE orders ADD COLUMN note TEXT", ORDERS),
        ("CALL refresh()", None),
        ("REPLACE INTO customers (id) VALUES (1)", None),
    ],
)
def test_row_bound_by_statement_kind(world: World, sql: str, rows: int | None) -> None:
    assert world.change(sql).affected_rows == rows


def test_a_table_the_catalog_does_not_know_has_unknown_rows(world: World) -> None:
    f = world.change("UPDATE ghosts SET a = 1")
    assert summary(f) == (["UPDATE"], ["main.ghosts"], None, True)
    # one unknown statement makes the ticket's total unknown
    assert world.change("UPDATE ghosts SET a = 1; DELETE FROM orders").affected_rows is None


def test_qualified_names(world: World) -> None:
    f = world.change("UPDATE main.orders SET status = 'x'")
    assert summary(f) == (["UPDATE"], ["main.orders"], ORDERS, True)
    assert world.change('DELETE FROM "MAIN"."Orders"').affected_rows == ORDERS
    f = world.change("DELETE FROM elsewhere.orders")
    assert summary(f) == (["DELETE"], ["elsewhere.orders"], None, True)


def test_table_names_are_case_insensitive(world: World) -> None:
    f = world.change("UPDATE CUSTOMERS SET name = 'x'")
    assert (f.tables, f.affected_rows) == (frozenset({"main.customers"}), CUSTOMERS)


def test_unparseable_sql_is_incomplete_and_unknown(world: World) -> None:
    f = world.change("UPDATE orders SET status = 'x'; SELEC 1")
    assert (f.complete, f.affected_rows) == (False, None)
    assert "OTHER" in f.statement_kinds


def test_lock_free_change_reads_its_sql_too(world: World) -> None:
    f = world.change("UPDATE orders SET status = 'x'", plugin_type="DC_CHUNK")
    assert f.plugin_type == "DC_CHUNK"
    assert summary(f) == (["UPDATE"], ["main.orders"], ORDERS, True)


def test_sql_in_an_attachment_is_not_known_before_the_precheck(world: World) -> None:
    key = world.attachment()
    f = world.facts(
        "DC_COMMON",
        {
            "DbItemList": [{"DbId": world.db_id}],
            "EstimateAffectRows": 1,
            "SqlType": "ATTACHMENT",
            "AttachmentName": key,
        },
    )
    assert summary(f) == ([], [], None, False)
    assert f.env_types == {"product"}


# ------------------------------------------------------------------ other ticket types


def cron(world: World, *tables: str) -> Facts:
    return world.facts(
        "DC_CRON_CLEAR",
        {
            "DbItemList": [{"DbId": world.db_id}],
            "CronClearItemList": [
                {"TableName": t, "ColumnName": "created_at", "RemainDays": 30} for t in tables
            ],
            "CronFormat": "0 0 2 ? * 1-5",
            "specifyDuration": False,
        },
    )


def test_cron_clear_deletes_from_its_tables(world: World) -> None:
    f = cron(world, "orders")
    assert summary(f) == (["DELETE"], ["main.orders"], ORDERS, True)
    f = cron(world, "orders", "Customers")
    assert summary(f) == (["DELETE"], ["main.customers", "main.orders"], ORDERS + CUSTOMERS, True)
    assert cron(world, "orders", "ghosts").affected_rows is None


def big_file(world: World, **params: Any) -> Facts:
    return world.facts(
        "DC_BIG_FILE",
        {"DbItemList": [{"DbId": world.db_id}], "AttachmentName": world.attachment(), **params},
    )


def test_big_file_import_is_incomplete_with_unknown_rows(world: World) -> None:
    f = big_file(world, FileType="CSV", TableName="orders")
    assert summary(f) == (["INSERT"], ["main.orders"], None, False)


def test_big_file_replace_into(world: World) -> None:
    f = big_file(world, FileType="CSV", TableName="orders", InsertType="REPLACE_INTO")
    assert summary(f) == (["REPLACE"], ["main.orders"], None, False)


def test_big_file_sql_names_nothing(world: World) -> None:
    assert summary(big_file(world, FileType="SQL")) == ([], [], None, False)


@pytest.mark.parametrize(
    ("sql", "rows"),
    [
        ("SELECT * FROM orders", ORDERS),
        ("SELECT * FROM orders WHERE status = 'paid'", ORDERS),
        ("SELECT * FROM orders LIMIT 10", 10),
        ("SELECT * FROM customers LIMIT 1000", CUSTOMERS),  # the table is smaller
        ("SELECT * FROM main.orders", ORDERS),
        ("SELECT * FROM main.orders LIMIT 7", 7),
        ("SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id", None),
        ("SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id LIMIT 50", 50),
        ("SELECT * FROM ghosts", None),
        ("SELECT * FROM ghosts LIMIT 3", 3),
        ("SELECT * FROM orders LIMIT 0", 0),
        ("WITH paid AS (SELECT * FROM orders WHERE status = 'paid') SELECT * FROM paid", ORDERS),
    ],
)
def test_export_rows(world: World, sql: str, rows: int | None) -> None:
    f = world.export(sql)
    assert (f.plugin_type, f.export_rows, f.affected_rows, f.complete) == (
        "DATA_EXPORT",
        rows,
        0,
        True,
    )
    assert f.statement_kinds == {"SELECT"}


def test_export_tables_are_qualified(world: World) -> None:
    f = world.export("SELECT * FROM orders o JOIN main.customers c ON c.id = o.customer_id")
    assert f.tables == {"main.orders", "main.customers"}


def test_unparseable_export_is_unknown(world: World) -> None:
    f = world.export("SELECT * FROM orders WHERE")
    assert (f.export_rows, f.affected_rows, f.complete) == (None, None, False)


def test_export_rows_only_for_data_export(world: World) -> None:
    assert world.change("SELECT * FROM orders LIMIT 5").export_rows is None


# ------------------------------------------------------------------ environments, several targets


def test_env_types_come_from_the_instance(world: World) -> None:
    world.set_env("dev")
    assert world.change("DELETE FROM orders").env_types == {"dev"}
    world.set_env("uat")
    assert world.export("SELECT * FROM orders").env_types == {"uat"}


def test_two_databases_double_the_bounds(world: World, tmp_path: Path) -> None:
    other = world.second_instance(tmp_path / "second", env="test")
    f = world.change("DELETE FROM orders", world.db_id, other)
    assert f.env_types == {"product", "test"}
    assert (f.tables, f.affected_rows) == (frozenset({"main.orders"}), 2 * ORDERS)
    f = world.change("INSERT INTO orders (id) VALUES (10001), (10002)", world.db_id, other)
    assert f.affected_rows == 4  # each database receives the tuples
    assert world.change("DELETE FROM orders", other).env_types == {"test"}


# ------------------------------------------------------------------ regressions


def test_a_trailing_comment_does_not_make_affected_rows_unknown(world: World) -> None:
    # the comment after the last ';' once counted as an OTHER statement of unknown rows,
    # making this 5,000-row bound "over any limit" (HIGHEST under the default rules).
    f = world.change("DELETE FROM orders WHERE id = 1; -- ticket 42")
    assert (f.statement_kinds, f.affected_rows) == ({"DELETE"}, ORDERS)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM orders a JOIN orders b ON a.customer_id = b.customer_id",
        "SELECT * FROM orders UNION ALL SELECT * FROM orders",
    ],
)
def test_reading_one_table_twice_is_not_bounded_by_one_copy(world: World, sql: str) -> None:
    # A SELECT reading one table once returns at most its rows; a self-join (here 125,000
    # rows) or a UNION ALL of a table with itself (10,000) must not be bounded by one copy,
    # or it slips under the default rule's "export over 10,000" limit.
    rows = world.export(sql).export_rows
    assert rows is None or rows >= 2 * ORDERS
