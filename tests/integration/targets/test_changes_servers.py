"""Write sessions kept between job steps (``targets.changes``) on the real servers: a
PostgreSQL session is lent again as good as new; a MariaDB one is never kept."""

from __future__ import annotations

import time
from typing import Any

import pytest

from opendms.targets.base import Endpoint
from opendms.targets.changes import ChangePools
from opendms.targets.registry import connector_for
from tests.conftest import mysql_database, pg_database

pytestmark = pytest.mark.integration


def _others(admin: Any, name: str) -> int:
    """Sessions on database ``name`` besides ``admin``'s."""
    found = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    ).fetchone()
    return int(found[0])


def _backend(change: Any) -> int:
    return int(change.query("SELECT pg_backend_pid()")[0][0])


def test_a_kept_postgresql_session_keeps_nothing_a_ticket_left_in_it() -> None:
    with pg_database() as (name, admin):
        admin.execute("CREATE SCHEMA app")
        connector = connector_for(Endpoint("postgresql", "127.0.0.1", 5432, "postgres"))
        pools = ChangePools()
        where = (name, "app")
        with pools.lend(connector, where, 7) as change:
            first = _backend(change)
            # what a ticket's statements may leave in a session, through functions
            change.query("SELECT set_config('search_path', 'public', false)")
            change.query("SELECT set_config('lock_timeout', '1h', false)")
            change.query("SELECT pg_advisory_lock(4242)")
            change.execute("CREATE TEMPORARY TABLE left_behind (id int)")
            change.commit()
        with pools.lend(connector, where, 7) as change:
            assert _backend(change) == first  # the same session, lent again
            settings = change.query(
                "SELECT current_setting('search_path'), current_setting('lock_timeout')"
            )
            assert settings == [("app", "7s")]
            assert change.query("SELECT to_regclass('pg_temp.left_behind')") == [(None,)]
            change.rollback()
        (taken,) = admin.execute("SELECT pg_try_advisory_lock(4242)").fetchone() or (None,)
        assert taken is True  # the lock went with the reset, not with the session
        pools.close()


def test_a_postgresql_session_is_lent_again_and_again() -> None:
    """psycopg prepares statements it runs often, on the server, which the reset's DISCARD
    ALL drops behind its back: a change's session prepares none (from the sixth reset on,
    every reset failed and a new session was opened)."""
    with pg_database() as (name, _):
        connector = connector_for(Endpoint("postgresql", "127.0.0.1", 5432, "postgres"))
        pools = ChangePools()
        backends = set()
        for _ in range(12):
            with pools.lend(connector, (name, "public"), 5) as change:
                backends.add(_backend(change))
                change.query("SELECT count(*) FROM _opendms.progress")
                change.commit()  # as a step ends (a rollback would clear psycopg's cache)
        assert len(backends) == 1
        pools.close()


def test_a_kept_postgresql_session_the_server_ended_is_replaced() -> None:
    with pg_database() as (name, admin):
        connector = connector_for(Endpoint("postgresql", "127.0.0.1", 5432, "postgres"))
        pools = ChangePools()
        where = (name, "public")
        with pools.lend(connector, where, 5) as change:
            first = _backend(change)
            change.rollback()
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        with pools.lend(connector, where, 5) as change:
            assert _backend(change) != first
            assert change.query("SELECT 1") == [(1,)]
            change.rollback()
        pools.close()
        # closing the pools closed the kept session (its backend, like the terminated one,
        # leaves pg_stat_activity a moment after)
        deadline = time.monotonic() + 10
        while _others(admin, name) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _others(admin, name) == 0


def test_a_mariadb_session_is_closed_after_its_step() -> None:
    with mysql_database() as (name, admin):
        connector = connector_for(Endpoint("mariadb", "127.0.0.1", 3306, "root", ""))
        pools = ChangePools()
        ids = []
        for _ in range(2):
            with pools.lend(connector, ("def", name), 5) as change:
                ids.append(change.query("SELECT CONNECTION_ID()")[0][0])
                change.rollback()
        assert ids[0] != ids[1]

        def open_ones() -> int:
            with admin.cursor() as cur:
                cur.execute(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN (%s, %s)", ids
                )
                return int(cur.fetchone()[0])

        deadline = time.monotonic() + 10  # a closed session leaves the list a moment after
        while open_ones() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert open_ones() == 0
