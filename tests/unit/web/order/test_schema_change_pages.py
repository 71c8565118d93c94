"""The ticket page of schema changes, in process: a schema design is given, compared, run on
its base and, once approved, on a later stage, each through its form; a refused design says
why beside the script, naming the statement, and keeps it; the stages are polled while a
comparison or a run goes and not after; only whom an act is open to sees its button. A
structure sync shows each table compared and the DDL it runs, and its execution each DDL
statement's online progress."""

from __future__ import annotations

import re
import sqlite3
from datetime import timedelta
from html import unescape
from pathlib import Path

from sqlalchemy import select

from opendms.catalog import instances, queries
from opendms.execution.online import OnlineProgress, OnlineStatus, Strategy
from opendms.rulebook import rule_sets
from opendms.store.models import Job, SchemaDesign, SqlJob, SqlJobDetail, utcnow
from opendms.store.states import SqlJobStatus
from opendms.tickets import service as tickets
from tests.approval_world import World
from tests.ticket_stages import approve_all, schema_design
from tests.unit.web.order.conftest import Console, Person
from tests.unit.web.signed_in import text

SCRIPT = (
    "ALTER TABLE customers ADD COLUMN phone VARCHAR(32);\r\n"
    "CREATE INDEX idx_customers_phone ON customers (phone)"
)
FREE_SYNC = (
    "templates: {LOW: DBA, MIDDLE: DBA, HIGH: DBA, HIGHEST: DBA}\n"
    "rules:\n  - name: syncs need no approval\n"
    "    when: {ticket_types: [TABLE_SYNC]}\n    risk: NONE\n"
)
ACT = re.compile(r'action="/console/orders/\d+/(\w+)"')


def _forms(html: str) -> list[str]:
    return ACT.findall(html)


def _stage_row(html: str, db_id: int) -> str:
    found = re.search(rf'<tr id="stage-{db_id}">(.*?)</tr>', html, re.S)
    assert found, f"no stage {db_id}"
    return text(found.group(1))


def _columns(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _target(world: World) -> Path:
    assert world.means.targets.sqlite_dir is not None
    return world.means.targets.sqlite_dir / "demo-target.db"


def _polled(person: Person, order_id: int) -> int:
    answer = person.get(f"/orders/{order_id}/stages", **{"HX-Request": "true"})
    assert answer.status_code in (200, 286), answer.text
    if answer.status_code == 286:
        assert answer.headers["hx-refresh"] == "true"
    return answer.status_code


def test_a_design_is_given_compared_and_run_on_its_base(console: Console) -> None:
    world = console.world
    order_id = schema_design(world)
    alice = console.as_("alice")
    page = alice.get(f"/orders/{order_id}")
    assert page.status_code == 200
    said = text(page.text)
    assert "No design yet." in said
    assert "It cannot be submitted yet: it has no design yet (UpdateSchemaDesign)." in said
    assert "design" in _forms(page.text) and "submit" not in _forms(page.text)
    assert '<label for="design-script">Design (DDL)</label>' in page.text

    given = alice.act(order_id, "design", script=SCRIPT)
    assert given.status_code == 303, given.text
    assert "Design+version+1+saved" in given.headers["location"]
    page = alice.get(f"/orders/{order_id}")
    with world.store.session() as s:
        saved = s.get_one(SchemaDesign, order_id)
        assert saved.script == SCRIPT.replace("\r\n", "\n")  # the lines as typed
    assert f'hx-get="/console/orders/{order_id}/stages" hx-trigger="every 1s"' in page.text
    assert "Comparing" in _stage_row(page.text, world.db_id)
    assert "stage" not in _forms(page.text)
    assert "phone" in page.text  # the script, highlighted
    assert _polled(alice, order_id) == 200

    world.run_jobs()  # the comparison
    assert _polled(alice, order_id) == 286  # polling stops: the page reloads
    page = alice.get(f"/orders/{order_id}")
    assert "hx-trigger" not in page.text.split('id="design-stages"', 1)[1].split("</table>")[0]
    row = _stage_row(page.text, world.db_id)
    assert "Pending" in row and "ADD COLUMN phone" in row and "Run on this stage" in row
    assert "run the design on its base database main first" in text(page.text)

    ran = alice.act(order_id, "stage", db=str(world.db_id))
    assert ran.status_code == 303, ran.text
    page = alice.get(f"/orders/{order_id}")
    assert "Running" in _stage_row(page.text, world.db_id)
    assert _polled(alice, order_id) == 200
    assert "Latest stage run" in page.text and "Statements on live tables" in page.text

    world.run_jobs()  # the run, then the comparison it asks for
    assert _polled(alice, order_id) == 286
    page = alice.get(f"/orders/{order_id}")
    row = _stage_row(page.text, world.db_id)
    assert "Equal" in row and "Nothing: it has the design." in row
    assert "submit" in _forms(page.text) and "stage" not in _forms(page.text)
    assert "phone" in _columns(_target(world), "customers")
    progress = text(page.text.split('id="progress"', 1)[1])
    assert "run as written" in progress and progress.count("Done") >= 2


def test_a_refused_design_says_why_beside_the_script_and_keeps_it(console: Console) -> None:
    world = console.world
    order_id = schema_design(world)
    alice = console.as_("alice")
    typed = "ALTER TABLE customers ADD COLUMN phone VARCHAR(32);\nDELETE FROM customers"
    refused = alice.act(order_id, "design", script=typed)
    assert refused.status_code == 400
    beside = re.search(
        r'<p class="field-error" id="design-script-error"[^>]*>(.*?)</p>', refused.text
    )
    assert beside, refused.text
    assert "statement 2 (line 2) is DELETE" in unescape(beside.group(1))
    assert 'aria-describedby="design-script-hint design-script-error"' in refused.text
    assert f">{typed}</textarea>" in refused.text  # what was typed is kept
    assert 'id="design-refused"' not in refused.text  # told once, beside the field
    with world.store.session() as s:
        assert s.get(SchemaDesign, order_id) is None  # nothing saved

    stranger = console.as_("dba").post(
        f"/orders/{order_id}/design", {"once": "a-token", "script": "CREATE INDEX i ON t (a)"}
    )
    assert stranger.status_code == 400
    assert "Only the committer changes the design." in text(stranger.text)


def test_the_design_acts_show_only_to_whom_they_are_open(console: Console) -> None:
    world = console.world
    order_id = schema_design(world, SCRIPT.replace("\r\n", "\n"))
    world.run_jobs()
    seen = {}
    for who in ("alice", "admin", "dba", "owen", "carol"):
        page = console.as_(who).get(f"/orders/{order_id}")
        seen[who] = page.status_code, sorted(set(_forms(page.text)))
    assert seen["alice"] == (200, ["close", "compare", "design", "stage"])
    assert seen["admin"] == (200, ["close", "compare"])  # compares again; runs nothing
    assert seen["dba"] == (200, ["close", "compare"])
    assert seen["owen"][0] == seen["carol"][0] == 404  # owning the database is no ground
    assert console.as_("carol").get(f"/orders/{order_id}/stages").status_code == 404
    compared = console.as_("dba").act(order_id, "compare")
    assert (
        compared.status_code == 303
        and "compared+with+each+stage+again" in (compared.headers["location"])
    )
    assert _polled(console.as_("dba"), order_id) == 200  # comparing again
    world.run_jobs()
    not_a_stage = console.as_("alice").act(order_id, "stage", db="999999")
    assert not_a_stage.status_code == 400
    assert "DbId 999999 is not a stage of ticket" in text(
        not_a_stage.text.split('id="design"', 1)[1]
    )


def _product_stage(world: World) -> tuple[int, Path]:
    """A product instance beside the world's dev one, its database a copy of the world's
    (the same name, main): the design's later stage. Its DbId and file."""
    assert world.means.targets.sqlite_dir is not None
    path = world.means.targets.sqlite_dir / "product" / "product.db"
    path.parent.mkdir()
    path.write_bytes(_target(world).read_bytes())
    with world.store.session() as s:
        spec = instances.InstanceSpec(
            instance_type="sqlite",
            host=str(path),
            env_type="product",
            alias="product",
            dba_user_id=world.id("dba"),
        )
        inst = instances.register_instance(
            s, world.means.secrets, world.means.targets, world.tid, spec, actor=None
        )
        (db,) = queries.list_databases(s, world.tid, inst.instance_id).items
        return db.db_id, path


def test_a_later_stage_runs_once_the_ticket_is_approved(console: Console) -> None:
    world = console.world
    world.set_env("dev")
    product, product_file = _product_stage(world)
    order_id = schema_design(world, SCRIPT.replace("\r\n", "\n"))
    world.run_jobs()
    alice = console.as_("alice")
    page = alice.get(f"/orders/{order_id}")
    assert "Pending" in _stage_row(page.text, product)
    assert f'value="{product}"' not in page.text  # not before approval
    assert alice.act(order_id, "stage", db=str(world.db_id)).status_code == 303
    world.run_jobs()
    assert alice.act(order_id, "submit").status_code == 303
    approve_all(world, order_id)
    page = alice.get(f"/orders/{order_id}")
    assert "Waiting for alice (the committer) to run it on its next stage." in text(page.text)
    row = re.search(rf'<tr id="stage-{product}">.*?</tr>', page.text, re.S)
    assert row and "Run on this stage" in row.group(0)
    assert 'data-confirm="Run the design on main@' in row.group(0)
    assert "stage" not in _forms(console.as_("dba").get(f"/orders/{order_id}").text)
    assert alice.act(order_id, "stage", db=str(product)).status_code == 303
    world.run_jobs()
    page = alice.get(f"/orders/{order_id}")
    assert "Equal" in _stage_row(page.text, product)
    assert "phone" in _columns(product_file, "customers")
    assert world.status(order_id) == "success"


# ------------------------------------------------------------------ structure sync


def _sync(world: World) -> int:
    """A structure sync from the world's database to a copy of it without ``orders`` and with
    a column ``customers`` lacks in the source: prechecked (compared)."""
    assert world.means.targets.sqlite_dir is not None
    path = world.means.targets.sqlite_dir / "copy" / "copy.db"
    path.parent.mkdir()
    path.write_bytes(_target(world).read_bytes())
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE orders")
        conn.execute("ALTER TABLE customers ADD COLUMN nickname TEXT")
    with world.store.session() as s:
        spec = instances.InstanceSpec(instance_type="sqlite", host=str(path), alias="copy")
        inst = instances.register_instance(
            s, world.means.secrets, world.means.targets, world.tid, spec, actor=None
        )
        (db,) = queries.list_databases(s, world.tid, inst.instance_id).items
        # (the rules on the copy let a sync through without approval)
        rule_sets.load(s, world.tid, "sync", FREE_SYNC)
        rule_sets.assign(s, world.tid, inst.instance_id, "sync")
        param = {"Source": {"DbId": world.db_id}, "Target": {"DbId": db.db_id}}
        order_id = tickets.create_order(
            s, world.as_("admin"), "TABLE_SYNC", param, comment="a copy"
        ).order_id
    world.run_jobs()
    return order_id


def test_a_structure_sync_shows_each_table_and_the_ddl_it_runs(console: Console) -> None:
    world = console.world
    order_id = _sync(world)
    admin = console.as_("admin")
    page = admin.get(f"/orders/{order_id}")
    assert page.status_code == 200, page.text
    section = page.text.split('id="sync"', 1)[1].split("</section>", 1)[0]
    said = text(section)
    assert "Every table of the source" in said and "Compared" in said
    rows = {
        text(r.split("</td>", 1)[0]): text(r)
        for r in re.findall(r"<tr>\s*<td>(.*?)</tr>", section, re.S)
    }
    assert "To create" in rows["orders"] and "CREATE TABLE" in rows["orders"]
    assert "The target has no such table." in rows["orders"]
    assert "To change" in rows["customers"] and "nickname" in rows["customers"]
    assert "DDL it runs" in said
    assert "submit" in _forms(page.text)  # the generic Submit works for it

    assert admin.act(order_id, "submit").status_code == 303  # approved: the rules need none
    page = admin.get(f"/orders/{order_id}")
    assert "execute" in _forms(page.text)
    assert admin.act(order_id, "execute").status_code == 303
    world.run_jobs()
    page = admin.get(f"/orders/{order_id}")
    assert world.status(order_id) == "success"
    assert "Ran" in text(page.text.split('id="sync"', 1)[1].split("</section>", 1)[0])
    progress = text(page.text.split('id="progress"', 1)[1])
    assert "Statements on live tables" in progress and "run as written" in progress


def test_a_copy_under_way_shows_its_rows_and_time_left(console: Console) -> None:
    world = console.world
    order_id = _sync(world)
    world.submit(order_id, "admin")
    admin = console.as_("admin")
    assert admin.act(order_id, "execute").status_code == 303
    with world.store.session() as s:  # its first statement half way through a shadow copy
        job = s.scalars(select(Job).where(Job.order_id == order_id, Job.kind == "execute")).one()
        detail = s.scalars(
            select(SqlJobDetail)
            .join(SqlJob, SqlJob.sql_job_id == SqlJobDetail.sql_job_id)
            .where(SqlJob.group_id == job.job_id)
            .order_by(SqlJobDetail.number)
        ).first()
        assert detail is not None
        s.get_one(SqlJob, detail.sql_job_id).status = SqlJobStatus.RUNNING
        detail.status = SqlJobStatus.RUNNING
        detail.started_at = utcnow() - timedelta(seconds=30)
        copy = OnlineProgress(OnlineStatus.RUNNING, Strategy.SHADOW, 5000, 4000, 500)
        copy.message = "copying in key order"
        detail.progress = copy.dumps()
        detail_id = detail.detail_id
    polled = admin.get(f"/orders/{order_id}/progress", **{"HX-Request": "true"})
    assert polled.status_code == 200 and 'hx-trigger="every 1s"' in polled.text
    row = re.search(rf'<tr id="ddl-{detail_id}">(.*?)</tr>', polled.text, re.S)
    assert row, polled.text
    said = text(row.group(1))
    assert "copied into a shadow table and swapped in" in said and "SHADOW" in said
    assert "Running" in said and "copying in key order" in said
    assert "4,000 of 5,000 (80.0%)" in said
    assert re.search(r"about [78] s", said), said  # 1,000 rows at 4,000 in 30 s
