"""Issue 16's reproductions, sent as the attacker sent them: an ordinary USER with CORRECT and
EXPORT on one database only, through the official SDK against a real server, on MariaDB and
PostgreSQL. Each ticket is refused by its precheck, naming the statement, so it can never be
submitted; the precheck runs nothing of it on the target (no count, no cancelled session);
and neither the user's table nor the forbidden one changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    Creds,
    Dms,
    Server,
    export_settled,
    file_change,
    file_export,
    free_port,
    grant_correct,
    prechecked,
    register_target,
    serving,
    target_database,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("server_still_healthy")]

SETUP = [
    "CREATE TABLE orders (id INT PRIMARY KEY, status VARCHAR(20))",
    "INSERT INTO orders VALUES (1, 'new'), (2, 'new'), (3, 'paid')",
]
# (SQL with {secret} for the forbidden table, what the refusal says)
CHANGES = {
    "mariadb": [
        ("UPDATE orders SET status = 'x' WHERE id = 1 /*!50000 OR 1=1 */", "executable comment"),
        (
            "UPDATE orders /*!50000 , {secret} */ SET status = 'x' "
            "/*!50000 , {secret}.secret = 'PWNED' */ WHERE id = 1",
            "executable comment",
        ),
        ("UPDATE orders SET status = `load_file`('/etc/passwd') WHERE id = 1", "load_file()"),
    ],
    "postgresql": [
        (
            "UPDATE orders SET status = 'x' WHERE id = 1 AND pg_cancel_backend(pg_backend_pid())",
            "pg_cancel_backend()",
        ),
        (
            "UPDATE orders SET status = \"pg_read_file\"('/etc/hostname') WHERE id = 1",
            "pg_read_file",
        ),
    ],
}
EXPORTS = {
    "mariadb": [
        ("SELECT 1 /*!50000 FROM {secret} WHERE secret LIKE 'TOP%' */", "executable comment"),
        ("SELECT id FROM orders /*!50000 UNION SELECT secret FROM {secret} */", "executable"),
        ("SELECT id /*!50000 , load_file('/etc/passwd') */ FROM orders", "executable comment"),
    ],
    "postgresql": [
        ("SELECT pg_read_file('/etc/hostname') LIKE 'vm%'", "pg_read_file()"),
        ("SELECT \"pg_read_file\"('/etc/hostname')", "pg_read_file()"),
        ("SELECT * FROM pg_ls_dir('/etc') AS f", "pg_ls_dir()"),
        ("SELECT query_to_xml('select secret from {secret}', true, true, '')", "query_to_xml()"),
    ],
}


@pytest.fixture(scope="module")
def mallory(server: Server) -> Creds:
    return server.create_user("USER", nick="mallory")


def _refusal(dms: Dms, order_id: int) -> str:
    """Why the ticket cannot be submitted (it must not be submittable)."""
    submit = dms.call("SubmitOrderApproval", order_id=order_id)
    assert submit.success is False and submit.error_code == "InvalidOrderStatus", dms.last_raw
    return str(submit.error_message)


@pytest.mark.parametrize("engine", ["mariadb", "postgresql"])
def test_the_reproductions_of_issue_16_do_no_harm(
    engine: str, server: Server, mallory: Creds
) -> None:
    admin = Dms(server, server.admin, "v3")
    attacker = Dms(server, mallory, "v3")
    with target_database(engine, *SETUP) as (name, query, where):
        secret_schema = f"{name}_sec" if engine == "mariadb" else "sec"
        query(
            f"CREATE DATABASE `{secret_schema}`"
            if engine == "mariadb"
            else f"CREATE SCHEMA {secret_schema}"
        )
        try:
            secret = f"{secret_schema}.keys_tbl"
            query(f"CREATE TABLE {secret} (id INT PRIMARY KEY, secret VARCHAR(40))")
            query(f"INSERT INTO {secret} VALUES (1, 'TOP-SECRET')")
            db_id = register_target(server, admin, name, where, f"attacked-{engine}", "DC_COMMON")
            grant_correct(admin, mallory.user_id, db_id, perms="CORRECT,EXPORT")
            before = _state(query, secret)

            for sql, said in CHANGES[engine]:
                order_id = file_change(attacker, db_id, sql.format(secret=secret), rows=1)
                detail = prechecked(attacker, order_id)
                assert detail.status == "precheck_fail", (sql, attacker.last_raw)
                why = _refusal(attacker, order_id)
                assert said in why and "statement 1" in why, (sql, why)
            for sql, said in EXPORTS[engine]:
                order_id = file_export(attacker, db_id, sql.format(secret=secret), rows=10)
                assert export_settled(attacker, order_id, "PRE_CHECKING") == "PRE_CHECK_FAIL", sql
                why = _refusal(attacker, order_id)
                assert said in why, (sql, why)
                precheck = attacker.call("GetDataExportPreCheckDetail", order_id=order_id)
                assert precheck.success is True, attacker.last_raw
                listed = precheck.pre_check_result.pre_check_detail_list.pre_check_detail_list
                assert all(d.affect_rows in (None, 0) for d in listed or []), sql  # never counted

            assert _state(query, secret) == before
        finally:
            query(
                f"DROP DATABASE IF EXISTS `{secret_schema}`"
                if engine == "mariadb"
                else f"DROP SCHEMA IF EXISTS {secret_schema} CASCADE"
            )


def _state(query: Any, secret: str) -> list[Any]:
    orders = [tuple(r) for r in query("SELECT id, status FROM orders ORDER BY id")]
    keys = [tuple(r) for r in query(f"SELECT id, secret FROM {secret} ORDER BY id")]
    return [orders, keys]


def test_an_upload_url_cannot_reach_the_servers_own_network(
    server: Server, mallory: Creds, tmp_path: Path
) -> None:
    """Finding 4: CreateUploadFileJob fetched loopback services for any user, and its errors
    told an open port from a closed one. A default server fetches public addresses only;
    a loopback URL is refused the same way whether something listens there or not, and
    a host name that resolves to loopback fails its job without saying more."""
    attacker = Dms(server, mallory, "v3")
    (tmp_path / "secret.txt").write_text("internal only")
    closed = free_port()
    with serving(tmp_path) as base:
        answers = []
        for url in (f"{base}/secret.txt", f"http://127.0.0.1:{closed}/secret.txt"):
            made = attacker.call(
                "CreateUploadFileJob", file_name="x.sql", file_source="datacorrect", upload_url=url
            )
            if made.success:  # refused later, by the job
                detail = wait_for(
                    "the upload job's end",
                    lambda key=made.job_key: _ended(attacker, key),
                    timeout=60,
                )
                assert detail.job_status == "FAIL" and detail.attachment_key is None, detail
                answers.append(str(detail.job_status_desc).replace(url, "URL"))
            else:
                answers.append(str(attacker.last_raw["ErrorMessage"]).replace(url, "URL"))
        assert answers[0] == answers[1], answers  # no port scan
        assert "internal only" not in " ".join(answers)
        port = base.rsplit(":", 1)[1]
        named = f"http://localhost:{port}/secret.txt"
        made = attacker.call(
            "CreateUploadFileJob", file_name="x.sql", file_source="datacorrect", upload_url=named
        )
        assert made.success is True, attacker.last_raw
        detail = wait_for("the upload job's end", lambda: _ended(attacker, made.job_key))
        assert detail.job_status == "FAIL" and detail.attachment_key is None


def _ended(dms: Dms, key: str) -> Any:
    got = dms.call("GetUserUploadFileJob", job_key=key)
    assert got.success is True, dms.last_raw
    detail = got.upload_file_job_detail
    return detail if detail.job_status in ("SUCCESS", "FAIL") else None
