"""A regular data change (DC_COMMON) end to end through the official SDK on MariaDB and
PostgreSQL: a bad script is refused by the precheck with the rule, statement and line; the
SQL is modified and prechecked again; the ticket is approved, executed with backup in one
transaction, shows its SQL jobs, statements and audit rows; and the rollback script its
backup link serves puts the table back exactly."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from opendms.sql.script import split
from tests.e2e.conftest import (
    Creds,
    Dms,
    Server,
    cli_batch,
    database_id,
    file_change,
    grant_correct,
    prechecked,
    target_database,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("server_still_healthy")]

SETUP = {
    "mariadb": [
        "CREATE TABLE acct (id INT PRIMARY KEY, note VARCHAR(100), amount DECIMAL(12,2), "
        "n INT NOT NULL) ENGINE=InnoDB",
        "INSERT INTO acct VALUES (1, 'it''s', 1.50, 1), (2, 'back\\\\slash', NULL, 2), "
        "(3, NULL, 3.25, 3), (4, 'naïve 🙂', 4.00, 4), (5, '', 5.55, 5)",
    ],
    "postgresql": [
        "CREATE TABLE acct (id INT PRIMARY KEY, note TEXT, amount NUMERIC(12,2), n INT NOT NULL)",
        "INSERT INTO acct VALUES (1, 'it''s', 1.50, 1), (2, 'back\\slash', NULL, 2), "
        "(3, NULL, 3.25, 3), (4, 'naïve 🙂', 4.00, 4), (5, '', 5.55, 5)",
    ],
}
GOOD = (
    "UPDATE acct SET note = 'changed', n = n * 10 WHERE id IN (1, 2);\n"
    "DELETE FROM acct WHERE id = 5;\n"
    "INSERT INTO acct (id, note, amount, n) VALUES (6, 'new', 6.00, 6)"
)
ROLLBACK = "UPDATE acct SET note = 'by hand' WHERE id = 6"


@dataclass
class People:
    committer: Creds
    dba: Creds


@pytest.fixture(scope="module")
def people(server: Server) -> People:
    made = cli_batch(
        server,
        [
            ["user", "create", "--roles", "USER", "--with-key", "--nick", "Dee Committer"],
            ["user", "create", "--roles", "DBA", "--with-key", "--nick", "Dan DBA"],
        ],
    )
    committer, dba = (Creds.from_cli(out) for out in made)
    return People(committer, dba)


def snapshot(query: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in query("SELECT id, note, amount, n FROM acct ORDER BY id")]


def file(dms: Dms, db_id: int, sql: str, rows: int) -> int:
    return file_change(
        dms,
        db_id,
        sql,
        rows,
        "fix the accounts",
        RollbackSqlType="TEXT",
        RollbackSQL=ROLLBACK,
        ExecMode="COMMITOR",
        Classify="fix",
    )


def fetch(url: str) -> str:
    resp = httpx.get(url, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.text


@pytest.mark.parametrize("engine", ["mariadb", "postgresql"])
def test_a_data_change_from_bad_sql_to_rollback(
    engine: str, server: Server, people: People
) -> None:
    admin = Dms(server, server.admin, "v3")
    committer = Dms(server, people.committer, "v3")
    with target_database(engine, *SETUP[engine]) as (name, query, where):
        added = admin.call(
            "AddInstance",
            instance_alias=f"accounts-{engine}",
            instance_source="VPC_IDC",
            network_type="VPC",
            env_type="dev",  # the default rules: the DBA approves
            safe_rule="default",
            query_timeout=60,
            export_timeout=600,
            dba_id=people.dba.user_id,
            host="127.0.0.1",
            database_password="",
            **where,
        )
        assert added.success is True, admin.last_raw
        db_id = database_id(admin, name, where["port"])
        grant_correct(admin, people.committer.user_id, db_id)
        before = snapshot(query)

        # a statement without WHERE: the precheck names the rule, the statement and the line
        order_id = file(
            committer, db_id, "DELETE FROM acct WHERE id = 5;\nUPDATE acct SET n = 0", 6
        )
        detail = prechecked(committer, order_id)
        assert detail.status == "precheck_fail", committer.last_raw
        steps = {s.check_step: s for s in detail.pre_check_detail.task_check_do}
        assert [s.check_status for s in steps.values()] == ["SUCCESS", "FAIL", "WAITING", "WAITING"]
        assert "statement 2 (line 2): DML_WITHOUT_WHERE" in steps["SQL_TYPE_CHECK"].user_tip
        listed = committer.call("ListDataCorrectPreCheckSQL", order_id=order_id, db_id=db_id)
        assert [(s.sql_type, s.sql_review_status) for s in listed.pre_check_sqllist] == [
            ("DELETE", "PASS"),
            ("UPDATE", "BLOCK"),
        ], committer.last_raw
        refused = committer.call("SubmitOrderApproval", order_id=order_id)
        assert refused.success is False and refused.error_code == "InvalidOrderStatus"

        # the SQL replaced: prechecked again, every step passes, rows counted on the database
        modified = committer.call("ModifyDataCorrectExecSQL", order_id=order_id, exec_sql=GOOD)
        assert modified.success is True, committer.last_raw
        detail = prechecked(committer, order_id)  # modifying queued it: "precheck" until done
        assert detail.status == "precheck_fail", committer.last_raw
        steps = {s.check_step: s for s in detail.pre_check_detail.task_check_do}
        # 2 updated + 1 deleted + 1 inserted = 4, but the ticket still says 6
        assert "4 rows counted, where the ticket estimates 6" in steps["ROW_CHECK"].user_tip
        skipped = committer.call(
            "SkipDataCorrectRowCheck", order_id=order_id, reason="the estimate was for the old SQL"
        )
        assert skipped.success is True, committer.last_raw
        detail = prechecked(committer, order_id)
        assert detail.status == "precheck_success", committer.last_raw
        assert detail.order_detail.actual_affect_rows == 4
        assert detail.order_detail.ignore_affect_rows is True
        assert "the estimate was for the old SQL" in detail.order_detail.ignore_affect_rows_reason
        assert detail.order_detail.exe_sql == GOOD
        dbs = committer.call("ListDataCorrectPreCheckDB", order_id=order_id)
        assert [(d.db_id, d.sql_num) for d in dbs.pre_check_dblist] == [(db_id, 3)]

        # approved by the DBA, executed with backup, all in one transaction
        assert committer.call("SubmitOrderApproval", order_id=order_id).success is True
        wf = committer.call("GetOrderBaseInfo", order_id=order_id).order_base_info
        agreed = Dms(server, people.dba, "v3").call(
            "ApproveOrder", workflow_instance_id=wf.workflow_instance_id, approval_type="AGREE"
        )
        assert agreed.success is True, admin.last_raw
        started = committer.call(
            "ExecuteDataCorrect",
            order_id=order_id,
            action_detail={"transaction": True, "backupData": True},
        )
        assert started.success is True, committer.last_raw
        task = wait_for(
            "the execution",
            lambda: (
                (
                    t := committer.call("GetDataCorrectTaskDetail", order_id=order_id)
                ).data_correct_task_detail.job_status
                in ("SUCCESS", "FAIL")
                and t.data_correct_task_detail
            ),
        )
        assert (task.job_status, task.actual_affect_rows) == ("SUCCESS", 4), committer.last_raw
        assert snapshot(query) != before
        info = committer.call("GetOrderBaseInfo", order_id=order_id).order_base_info
        assert info.status_code == "success"

        jobs = committer.call("ListDBTaskSQLJob", dbtask_group_id=task.dbtask_group_id)
        (job,) = jobs.dbtask_sqljob_list
        assert (job.db_id, job.status, job.transactional) == (db_id, "SUCCESS", True)
        details = committer.call("ListDBTaskSQLJobDetail", job_id=job.job_id)
        assert [
            (d.sql_type, d.affect_rows, d.status) for d in details.dbtask_sqljob_detail_list
        ] == [
            ("UPDATE", 2, "SUCCESS"),
            ("DELETE", 1, "SUCCESS"),
            ("INSERT", 1, "SUCCESS"),
        ]
        log = committer.call("GetDBTaskSQLJobLog", job_id=job.job_id).log
        assert "succeeded: 4 rows" in log
        audit = committer.call(
            "ListSQLExecAuditLog",
            start_time=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - 3600)),
            end_time=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 3600)),
            search_name=name if engine == "mariadb" else "public",
            page_size=100,
        )
        mine = [
            a
            for a in audit.sqlexec_audit_log_list.sqlexec_audit_log
            if a.sql in GOOD and a.exec_state == "SUCCESS"
        ]
        assert len(mine) == 3, committer.last_raw

        # the submitter's scripts and the backup's rollback script, by signed links
        assert fetch(committer.call("GetDataCorrectSQLFile", order_id=order_id).file_url) == GOOD
        rollback_url = committer.call("GetDataCorrectRollbackFile", order_id=order_id).file_url
        assert fetch(rollback_url) == ROLLBACK
        files = committer.call("GetDataCorrectBackupFiles", order_id=order_id)
        (url,) = files.data_correct_backup_files.file_url
        script = fetch(url)
        assert httpx.get(url.replace("signature=", "signature=x"), timeout=30).status_code == 404
        for piece in split(script, engine):
            query(piece.text)
        assert snapshot(query) == before
