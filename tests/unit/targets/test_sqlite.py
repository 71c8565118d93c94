from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from opendms.targets.base import Endpoint, TargetError, TargetPolicy
from opendms.targets.demo import ensure_demo_target
from opendms.targets.registry import connector_for


def test_demo_target_is_described(tmp_path: Path) -> None:
    path = ensure_demo_target(tmp_path)
    assert ensure_demo_target(tmp_path) == path  # created once
    conn = connector_for(Endpoint("sqlite", str(path)))
    assert conn.ping().startswith("SQLite ")
    (schema,) = conn.schemas()
    assert (schema.catalog, schema.schema) == ("main", "main")
    tables = {t.name: t for t in schema.tables}
    assert set(tables) == {"customers", "orders"}
    orders = tables["orders"]
    assert orders.rows == 5000
    assert [c.name for c in orders.columns][:3] == ["id", "customer_id", "status"]
    assert orders.columns[0].auto_increment and not orders.columns[0].nullable
    kinds = {i.name: (i.kind, i.columns) for i in orders.indexes}
    assert kinds["PRIMARY"] == ("PRIMARY", ["id"])
    assert kinds["ix_orders_created_at"] == ("NORMAL", ["created_at"])
    assert ("UNIQUE", ["email"]) in [(i.kind, i.columns) for i in tables["customers"].indexes]


def test_composite_keys_and_odd_names(tmp_path: Path) -> None:
    path = tmp_path / "odd.db"
    with sqlite3.connect(path) as db:
        db.execute('CREATE TABLE "we""ird" (a INT, b TEXT NOT NULL, PRIMARY KEY (b, a))')
    (schema,) = connector_for(Endpoint("sqlite", str(path))).schemas()
    (table,) = schema.tables
    assert table.name == 'we"ird'
    assert table.indexes[0].columns == ["b", "a"]
    assert not any(c.auto_increment for c in table.columns)


def test_missing_or_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="does not exist"):
        connector_for(Endpoint("sqlite", str(tmp_path / "none.db"))).ping()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    with pytest.raises(TargetError, match="not a readable SQLite database"):
        connector_for(Endpoint("sqlite", str(junk))).ping()


def test_unknown_engine() -> None:
    with pytest.raises(TargetError, match="unsupported engine"):
        connector_for(Endpoint("oracle", "h"))


def test_host_policy() -> None:
    loopback = TargetPolicy("127.0.0.0/8, ::1, localhost")
    assert loopback.allows("127.0.0.1") and loopback.allows("::1")
    assert loopback.allows("[::1]") and loopback.allows("LOCALHOST")
    assert not loopback.allows("10.0.0.1") and not loopback.allows("db.example.com")
    assert TargetPolicy("*").allows("10.0.0.1")
    assert not TargetPolicy("").allows("127.0.0.1")
    assert TargetPolicy("").refusal(Endpoint("mysql", "127.0.0.1", 3306))


def test_sqlite_targets_must_live_in_their_directory(tmp_path: Path) -> None:
    policy = TargetPolicy("*", tmp_path / "targets")
    assert policy.refusal(Endpoint("sqlite", str(tmp_path / "targets" / "a.db"))) is None
    for outside in (tmp_path / "meta.db", tmp_path / "targets" / ".." / "meta.db"):
        assert "must be files under" in (policy.refusal(Endpoint("sqlite", str(outside))) or "")
    assert TargetPolicy("*").refusal(Endpoint("sqlite", str(tmp_path / "x.db")))


def test_sqlite_counts_read_only_and_in_time(tmp_path: Path) -> None:
    path = ensure_demo_target(tmp_path)
    target = connector_for(Endpoint("sqlite", str(path), 0, "", ""))
    where = ("main", "main")
    assert target.count(where, "SELECT COUNT(*) FROM customers WHERE id <= 10", 5.0) == 10
    endless = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
        "SELECT COUNT(*) FROM n WHERE i < 0"
    )
    assert target.count(where, endless, 0.05) is None
    assert target.estimate(where, "UPDATE customers SET name = 'x'") is None
    with pytest.raises(TargetError, match=r"counting rows failed: .*readonly"):
        target.count(where, "DELETE FROM customers", 5.0)
