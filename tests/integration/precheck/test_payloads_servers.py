"""The attack corpus of issue 16 (tests/fixtures/security/payloads.yaml) filed as tickets on
real MariaDB and PostgreSQL by a user who may change and export `orders` and nothing else:
every refused payload fails its precheck before anyone could approve it, cannot be
submitted, and changes and reveals nothing; what is allowed runs as generated from its parse.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest
import yaml

from opendms.errors import DmsError
from opendms.identity.secrets import SecretBox
from opendms.precheck import service as precheck
from opendms.store.db import Store
from opendms.store.models import SqlAudit
from tests.approval_world import World

pytestmark = pytest.mark.integration

CORPUS = yaml.safe_load(
    (Path(__file__).parents[2] / "fixtures" / "security" / "payloads.yaml").read_text()
)
FAMILY = {"mariadb": "mysql", "postgresql": "postgresql"}


@dataclass
class Site:
    engine: str
    other: str  # the database (MariaDB) or schema (PostgreSQL) the user may not touch
    conn: Any
    world: World

    def payloads(self, group: str, path: str) -> list[str]:
        out = []
        for entry in CORPUS[group][path]:
            sql, only = (
                (entry["sql"], entry["engine"]) if isinstance(entry, dict) else (entry, None)
            )
            if only in (None, FAMILY[self.engine]) and (
                group != "hidden_code" or self.engine == "mariadb"
            ):
                out.append(sql.format(other=self.other))
        return out

    def state(self) -> list[Any]:
        with self.conn.cursor() as cur:
            cur.execute("SELECT id, status, note FROM orders ORDER BY id")
            orders = [tuple(r) for r in cur.fetchall()]
            cur.execute(f"SELECT id, secret FROM {self.other}.keys_tbl ORDER BY id")
            return [orders, [tuple(r) for r in cur.fetchall()]]

    def steps(self, order_id: int) -> dict[str, tuple[str, str]]:
        with self.world.store.session() as s:
            return {v.step: (v.status, v.tip) for v in precheck.steps(s, order_id)}


def _tables(cur: Any, other: str) -> None:
    cur.execute("CREATE TABLE orders (id INT PRIMARY KEY, status VARCHAR(20), note TEXT)")
    cur.execute("INSERT INTO orders VALUES (1, 'new', NULL), (2, 'new', 'b'), (3, 'paid', NULL)")
    cur.execute(f"CREATE TABLE {other}.keys_tbl (id INT PRIMARY KEY, secret VARCHAR(40))")
    cur.execute(f"INSERT INTO {other}.keys_tbl VALUES (1, 'TOP-SECRET')")


@pytest.fixture(params=["mariadb", "postgresql"])
def site(
    request: pytest.FixtureRequest, store: Store, box: SecretBox, tmp_path: Path
) -> Iterator[Site]:
    engine = request.param
    other = "other_s"

    def prepare(conn: Any) -> None:
        nonlocal other
        with conn.cursor() as cur:
            if engine == "mariadb":
                cur.execute("SELECT DATABASE()")
                other = f"{cur.fetchone()[0]}_other"
                cur.execute(f"CREATE DATABASE `{other}`")
            else:
                cur.execute(f"CREATE SCHEMA {other}")
            _tables(cur, other)

    try:
        with World.on_server(engine, store, box, tmp_path, prepare) as (world, _, conn):
            world.free_of_approval("DC_COMMON", "DATA_EXPORT")
            yield Site(engine, other, conn, world)
    finally:
        if engine == "mariadb" and other != "other_s":
            with (
                pymysql.connect(host="127.0.0.1", user="root", password="") as c,
                c.cursor() as cur,
            ):
                cur.execute(f"DROP DATABASE IF EXISTS `{other}`")


def _refused(site: Site, order_id: int, payload: str) -> str | None:
    """Why the payload's ticket is not refused as it must be; None when it is."""
    steps = site.steps(order_id)
    failed = [name for name, (status, _) in steps.items() if status == "FAIL"]
    if not failed:
        return f"precheck passed: {payload}\n  {steps}"
    try:
        site.world.submit(order_id)
    except DmsError:
        return None
    return f"submitted after a failed precheck: {payload}"


@pytest.mark.parametrize("group", ["hidden_code", "functions", "placements"])
def test_every_refused_change_fails_its_precheck_and_changes_nothing(
    site: Site, group: str
) -> None:
    before = site.state()
    problems = []
    for payload in site.payloads(group, "dml"):
        order_id = site.world.file(payload)
        problem = _refused(site, order_id, payload)
        if problem is not None:
            problems.append(problem)
    assert problems == []
    assert site.state() == before
    with site.world.store.session() as s:
        assert s.query(SqlAudit).count() == 0  # nothing ran


@pytest.mark.parametrize("group", ["hidden_code", "functions", "placements"])
def test_every_refused_export_fails_its_precheck_before_counting(site: Site, group: str) -> None:
    problems = []
    for payload in site.payloads(group, "export"):
        order_id = site.world.export(payload, rows=1000)
        problem = _refused(site, order_id, payload)
        if problem is not None:
            problems.append(problem)
        # the count is how the precheck became an oracle: it must not have run
        status, tip = site.steps(order_id)["ROW_CHECK"]
        if status != "WAITING":
            problems.append(f"rows were counted ({status}: {tip}): {payload}")
    assert problems == []


def test_what_is_allowed_runs_as_generated_from_its_parse(site: Site) -> None:
    for payload in site.payloads("allowed", "dml"):
        order_id = site.world.file(payload)
        steps = site.steps(order_id)
        assert all(status == "SUCCESS" for status, _ in steps.values()), (payload, steps)
        site.world.execute(order_id)
        with site.world.store.session() as s:
            (audit,) = s.query(SqlAudit).filter(SqlAudit.order_id == order_id).all()
            assert audit.exec_state == "SUCCESS", audit
            assert "--" not in audit.sql_text and "/* a plain" not in audit.sql_text
    (row,) = [r for r in site.state()[0] if r[0] == 1]
    assert row[1] == "paid"  # LOWER('PAID'), from the third statement


def test_a_statement_reading_no_table_needs_the_permission_on_the_database(site: Site) -> None:
    order_id = site.world.export("SELECT 1 + 1 AS two", who="carol")
    status, tip = site.steps(order_id)["PERMISSION_CHECK"]
    assert status == "FAIL" and "the database" in tip, tip
    site.world.may("EXPORT", "carol")
    order_id = site.world.export("SELECT 1 + 1 AS two", who="carol")
    assert site.steps(order_id)["PERMISSION_CHECK"][0] == "SUCCESS"
