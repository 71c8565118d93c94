"""A tenant for approval tests: users admin, dba, alice (the committer, who may change and
export the demo database), owen and olga (the database's owners) and carol; a registered SQLite demo
target whose DBA is dba; and helpers that file, submit and act on tickets through the
services, each in its own transaction. Background jobs (prechecks, executions) run when a
helper says so, in the calling thread."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from opendms.approvals import acts, flow, views
from opendms.catalog import instances, ownership, permissions, queries, sync
from opendms.execution import service as execution
from opendms.files import service as files
from opendms.files.storage import FileStore
from opendms.identity import service as identity
from opendms.identity.caller import Caller
from opendms.identity.roles import parse_roles
from opendms.identity.secrets import SecretBox
from opendms.jobs.runner import Runner
from opendms.means import Means
from opendms.notify import webhooks
from opendms.rulebook import rule_sets
from opendms.runtime import executors
from opendms.store.db import Store
from opendms.store.models import (
    Instance,
    Order,
    SqlJob,
    SqlJobDetail,
    User,
    WebhookDelivery,
    utcnow,
)
from opendms.targets.base import TargetPolicy
from opendms.targets.demo import ensure_demo_target
from opendms.tickets import service as tickets
from tests.conftest import mysql_database, pg_database

SERVERS = TargetPolicy("127.0.0.1")  # the test MariaDB and PostgreSQL
PEOPLE = (
    ("admin", "1", "ADMIN"),
    ("dba", "2", "DBA"),
    ("alice", "3", "USER"),
    ("owen", "4", "USER"),
    ("olga", "5", "USER"),
    ("carol", "6", "USER"),
)


def caller(user: User) -> Caller:
    return Caller(
        "AK", user.uid, user.user_id, user.tid, "t", parse_roles(user.roles), user.nick_name
    )


class World:
    def __init__(
        self,
        store: Store,
        tid: int,
        users: dict[str, User],
        db_id: int,
        inst: int,
        means: Means,
    ):
        self.store, self.tid, self.users = store, tid, users
        self.db_id, self.instance_id = db_id, inst
        self.means = means
        self.runner = Runner(store, executors(means), threads=0)

    def rebuild_runner(self) -> None:
        """A runner for ``self.means`` as changed since (a test's pace, say)."""
        self.runner = Runner(self.store, executors(self.means), threads=0)

    def tune(self, **changes: Any) -> None:
        """A runner whose executors work under ``means.tuning`` with ``changes`` (shorter
        steps, smaller import batches)."""
        self.means = replace(self.means, tuning=replace(self.means.tuning, **changes))
        self.rebuild_runner()

    @classmethod
    def build(cls, store: Store, box: SecretBox, target_dir: Path) -> World:
        """The world on a copy of the SQLite demo database."""
        path = ensure_demo_target(target_dir)
        spec = instances.InstanceSpec(instance_type="sqlite", host=str(path))
        return cls.on(store, box, spec, TargetPolicy("", path.parent), target_dir.parent)

    @classmethod
    def on(
        cls,
        store: Store,
        box: SecretBox,
        spec: instances.InstanceSpec,
        policy: TargetPolicy,
        workdir: Path,
        where: tuple[str, str] | None = None,
    ) -> World:
        """The world on the instance ``spec`` registers; its database is ``where`` (catalog,
        schema; by default the instance's only one). Files live under ``workdir``."""
        means = Means(box, policy, FileStore(workdir / "files"))
        with store.session() as s:
            tid = identity.create_tenant(s, "t").tid
            users = {
                name: identity.register_user(s, None, tid, uid, nick_name=name, roles=roles)
                for name, uid, roles in PEOPLE
            }
            spec = replace(spec, dba_user_id=users["dba"].user_id)
            inst = instances.register_instance(s, box, policy, tid, spec, actor=None)
            found = queries.list_databases(s, tid, inst.instance_id, page=1, size=1000).items
            (db,) = [d for d in found if where is None or (d.catalog_name, d.schema_name) == where]
            s.expunge_all()
        world = cls(store, tid, users, db.db_id, inst.instance_id, means)
        world.own("owen", "olga")
        world.may("CORRECT", "alice")
        world.may("EXPORT", "alice")
        return world

    @classmethod
    @contextmanager
    def on_server(
        cls,
        engine: str,
        store: Store,
        box: SecretBox,
        workdir: Path,
        prepare: Callable[[Any], None] | None = None,
        instance_type: str | None = None,
    ) -> Iterator[tuple[World, str, Any]]:
        """A fresh database on the test MariaDB or PostgreSQL, ``prepare(connection)`` run
        on it first, and a world on it: (the world, the database's name, an autocommit
        connection to it). The database is dropped afterwards. ``instance_type``: what the
        MariaDB server is registered as (mariadb; or mysql, as DMS users often do)."""
        if engine == "mariadb":
            with mysql_database() as (name, conn):
                if prepare is not None:
                    prepare(conn)
                spec = instances.InstanceSpec(
                    instance_type=instance_type or "mariadb",
                    host="127.0.0.1",
                    port=3306,
                    database_user="root",
                )
                yield cls.on(store, box, spec, SERVERS, workdir, ("def", name)), name, conn
        else:
            with pg_database() as (name, conn):
                if prepare is not None:
                    prepare(conn)
                spec = instances.InstanceSpec(
                    instance_type="postgresql",
                    host="127.0.0.1",
                    port=5432,
                    sid=name,
                    database_user="postgres",
                )
                yield cls.on(store, box, spec, SERVERS, workdir, (name, "public")), name, conn

    def sync(self) -> None:
        """The catalog reads the world's database again (tables a test made since)."""
        with self.store.session() as s:
            sync.sync_database(s, self.means.secrets, self.means.targets, self.tid, self.db_id)

    def free_of_approval(self, *ticket_types: str) -> World:
        """A rule set on the world's instance under which tickets of ``ticket_types`` need
        no approval: submitted, they are Approved."""
        rules = (
            "templates: {LOW: DBA, MIDDLE: DBA, HIGH: DBA, HIGHEST: DBA}\n"
            "rules:\n  - name: tests need no approval\n"
            f"    when: {{ticket_types: [{', '.join(ticket_types)}]}}\n    risk: NONE\n"
        )
        with self.store.session() as s:
            rule_sets.load(s, self.tid, "free", rules)
            rule_sets.assign(s, self.tid, self.instance_id, "free")
        return self

    def with_webhook(self, secret: str, url: str = "https://example.com/hook") -> World:
        """The tenant's webhook set (nothing listens at the default address: what the flow
        emits stays queued)."""
        with self.store.session() as s:
            webhooks.configure(s, self.means.secrets, self.tid, url, secret)
        return self

    def may_change(self, *names: str) -> None:
        """Grant CORRECT on the world's database (what a committer's precheck asks for)."""
        self.may("CORRECT", *names)

    def may(self, permission: str, *names: str) -> None:
        """Grant ``permission`` on the world's database to ``names``."""
        with self.store.session() as s:
            for name in names:
                permissions.grant(
                    s,
                    self.tid,
                    self.users[name].user_id,
                    permissions.GrantTarget("DATABASE", self.instance_id, self.db_id),
                    permission,
                    utcnow() + timedelta(days=30),
                )

    def id(self, name: str) -> int:
        return self.users[name].user_id

    def as_(self, name: str) -> Caller:
        return caller(self.users[name])

    def file(
        self,
        sql: str = "DELETE FROM orders WHERE id = 1",
        who: str = "alice",
        kind: str = "DC_COMMON",
        **extra: Any,
    ) -> int:
        """A data-change ticket (DC_COMMON, or DC_CHUNK: which states no row estimate)."""
        with self.store.session() as s:
            params = {
                "DbItemList": [{"DbId": self.db_id}],
                "SqlType": "TEXT",
                "ExecSQL": sql,
                **({"EstimateAffectRows": 1} if kind == "DC_COMMON" else {}),
                **extra,
            }
            order_id = tickets.create_order(s, self.as_(who), kind, params, comment="fix").order_id
        self.run_jobs()  # the precheck, as a server's runner would right away
        return order_id

    def export(self, sql: str, who: str = "alice", rows: int = 1000, **extra: Any) -> int:
        """An export ticket (DATA_EXPORT) of ``sql`` stating ``rows``, prechecked."""
        with self.store.session() as s:
            params = {
                "DbId": self.db_id,
                "ExeSQL": sql,
                "Classify": "report",
                "AffectRows": rows,
                "IgnoreAffectRows": False,
                **extra,
            }
            kind = "DATA_EXPORT"
            order_id = tickets.create_order(s, self.as_(who), kind, params, comment="export")
        self.run_jobs()
        return order_id.order_id

    def import_file(self, name: str, content: bytes, who: str = "alice", **param: Any) -> int:
        """An import ticket (DC_BIG_FILE) of ``content`` uploaded as ``name``, prechecked;
        by default a CSV with a header, into ``customers``."""
        with self.store.session() as s:
            limits = files.UploadLimits(max_bytes=1 << 30, timeout_seconds=5)
            key = files.save_attachment(
                s, self.means.files, self.as_(who), name, "big-file", [content], limits
            ).attachment_key
            params = {
                "DbItemList": [{"DbId": self.db_id}],
                "AttachmentName": key,
                "FileType": "CSV",
                "TableName": "customers",
                "CsvFirstRowIsColumnDef": True,
                **param,
            }
            order = tickets.create_order(s, self.as_(who), "DC_BIG_FILE", params, comment="load")
            order_id = order.order_id
        self.run_jobs()
        return order_id

    def execute(self, order_id: int, who: str = "alice") -> None:
        """Submit a prechecked ticket, start it (ExecuteDataCorrect) and run it to its end."""
        self.submit(order_id, who)
        with self.store.session() as s:
            execution.execute(s, self.as_(who), order_id, execution.ExecutionPlan())
        self.run_jobs()

    def only_detail(self, order_id: int) -> SqlJobDetail:
        """The one statement of a ticket's execution (an import's file), as it stands."""
        with self.store.session() as s:
            detail = s.scalars(
                select(SqlJobDetail)
                .join(SqlJob, SqlJob.sql_job_id == SqlJobDetail.sql_job_id)
                .where(SqlJob.order_id == order_id)
            ).one()
            s.expunge(detail)
            return detail

    def run_jobs(self) -> int:
        ran = 0
        while self.runner.run_once():
            ran += 1
        return ran

    def submit(self, order_id: int, who: str = "alice") -> int:
        with self.store.session() as s:
            return flow.submit(s, self.as_(who), order_id).workflow_instance_id

    def act(self, wf: int, who: str, kind: str, **kw: Any) -> None:
        with self.store.session() as s:
            acts.act(s, self.as_(who), wf, acts.Act(kind, **kw))

    def detail(self, wf: int, who: str = "admin") -> views.Detail:
        with self.store.session() as s:
            return views.detail(s, self.as_(who), wf)

    def status(self, order_id: int) -> str:
        with self.store.session() as s:
            order = s.get(Order, order_id)
            assert order is not None
            return order.status_code

    def set_env(self, env: str) -> None:
        with self.store.session() as s:
            inst = s.get(Instance, self.instance_id)
            assert inst is not None
            inst.env_type = env

    def dba_named_by(self, name: str | None) -> None:
        """Record who named the instance's DBA: ``"dba"`` itself (a self-assignment), or None
        (nobody knows: an instance registered before migration 0012)."""
        with self.store.session() as s:
            inst = s.get_one(Instance, self.instance_id)
            inst.dba_assigned_by = self.users[name].user_id if name else None

    def own(self, *names: str) -> None:
        with self.store.session() as s:
            ownership.set_owners(
                s, self.tid, "DATABASE", self.db_id, [self.users[n].user_id for n in names]
            )

    def events(self) -> list[dict[str, Any]]:
        """Queued webhook payloads, oldest first."""
        with self.store.session() as s:
            return [
                json.loads(d.payload)
                for d in s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.delivery_id))
            ]


def steps(detail: views.Detail) -> list[tuple[str, str, list[int]]]:
    return [(v.step.node_name, v.step.status, v.approvers) for v in detail.steps]
