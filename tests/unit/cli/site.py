"""The site most command-line tests run against: an initialised data directory with a
committer, a DBA, another user and the demo target (``conftest.site``), and what reads the
commands' output."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from opendms.catalog import permissions, queries
from opendms.store.db import Store
from opendms.store.models import utcnow
from opendms.targets.demo import ensure_demo_target
from tests.cli_support import opendms

UPDATE = "UPDATE orders SET status = 'paid' WHERE id = 7"


DBA_ONLY = """\
description: every ticket goes to the instance's DBA
templates: {LOW: DBA, MIDDLE: DBA, HIGH: DBA, HIGHEST: DBA}
"""


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)


@dataclass
class Site:
    """An initialised data directory: an administrator, a committer (carl), a DBA (dora),
    another user (olly) and the demo target in production with dora as its DBA."""

    data_dir: Path
    tid: int
    users: dict[str, int]  # name -> UserId
    uids: dict[str, str]  # name -> Uid
    instance_id: int
    db_id: int

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return opendms(*args, data_dir=self.data_dir, ok=ok)

    def as_(self, name: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(*args, "--uid", self.uids[name], ok=ok)

    def create(self, kind: str, sql: str, rows: int | None = 1, who: str = "carl") -> int:
        """``order create`` of a ``kind`` ticket on the demo database: its OrderId."""
        args = ["order", "create", "--type", kind, "--comment", "fix order 7"]
        args += ["--db", str(self.db_id), "--sql", sql]
        args += ["--rows", str(rows)] if rows is not None else []
        made = as_json(self.as_(who, *args))
        assert made["StatusCode"] == "new"
        return int(made["OrderId"])

    def file(self, sql: str = UPDATE, who: str = "carl") -> int:
        """A data change, prechecked."""
        order_id = self.create("DC_COMMON", sql, who=who)
        assert "1 job run" in self.run("jobs", "run").stdout  # the precheck
        return order_id

    def approved_export(self, sql: str, rows: int) -> str:
        """An export of ``sql`` by the administrator, prechecked, and approved by dora under
        a DBA-only rule set: its OrderId."""
        order_id = str(self.create("DATA_EXPORT", sql, rows=rows, who="admin"))
        self.run("jobs", "run")  # its precheck
        self.dba_only()
        self.run("order", "submit", order_id)
        self.as_("dora", "order", "approve", order_id)
        return order_id

    def write(self, name: str, content: str) -> Path:
        path = self.data_dir.parent / name
        path.write_text(content, encoding="utf-8")
        return path

    def store(self) -> Store:
        """The same metadata store the commands use, for what the CLI cannot do."""
        return Store(f"sqlite:///{self.data_dir / 'opendms.db'}")

    def dba_only(self) -> None:
        rule_file = str(self.write("dba.yaml", DBA_ONLY))
        loaded = self.run("rules", "load", rule_file, "--name", "dba-only").stdout
        assert "Rule set 'dba-only' version 1 is in force" in loaded
        assigned = self.run("rules", "assign", str(self.instance_id), "dba-only").stdout
        assert f"Instance {self.instance_id}" in assigned and "'dba-only'" in assigned


def make_site(tmp_path: Path) -> Site:
    data_dir = tmp_path / "data"
    admin = as_json(opendms("init", "--json", data_dir=data_dir))
    uids = {"admin": admin["Uid"]}
    users: dict[str, int] = {}
    for name, uid, roles in (
        ("carl", "1001", "USER"),
        ("dora", "1002", "DBA"),
        ("olly", "1003", "USER"),
    ):
        made = as_json(
            opendms(
                "user", "create", "--uid", uid, "--nick", name, "--roles", roles, data_dir=data_dir
            )
        )
        users[name], uids[name] = made["UserId"], made["Uid"]
    target = ensure_demo_target(data_dir / "targets")
    inst = as_json(
        opendms(
            "instance",
            "register",
            "--type",
            "sqlite",
            "--host",
            str(target),
            "--alias",
            "demo",
            "--dba",
            str(users["dora"]),
            data_dir=data_dir,
        )
    )
    assert inst["Databases"] == 1
    st = Store(f"sqlite:///{data_dir / 'opendms.db'}")
    try:
        with st.session() as s:
            (db,) = queries.list_databases(s, admin["Tid"], inst["InstanceId"]).items
            db_id = db.db_id
            permissions.grant(  # carl may change the demo database
                s,
                admin["Tid"],
                users["carl"],
                permissions.GrantTarget("DATABASE", inst["InstanceId"], db_id),
                "CORRECT",
                utcnow() + timedelta(days=1),
            )
    finally:
        st.dispose()
    return Site(data_dir, admin["Tid"], users, uids, inst["InstanceId"], db_id)


def cells(line: str) -> list[str]:
    """The cells of one printed table line."""
    return [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]


def row_of(output: str, first_cell: str) -> str:
    """The line of a printed table whose first cell is ``first_cell``."""
    for line in output.splitlines():
        found = cells(line)
        if found and found[0] == first_cell:
            return line
    raise AssertionError(f"no row {first_cell!r} in:\n{output}")
