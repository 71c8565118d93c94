"""Trying DDL in a scratch space beside a database, leaving nothing behind
(``Connector.try_script``): where a schema design's script is run to learn the shape it
gives its tables, by the server that will run it.

PostgreSQL and SQLite need no cleaning up: PostgreSQL's DDL is transactional, so the scratch
schema lives in one transaction that is rolled back; SQLite's is a database in memory.
MySQL and MariaDB commit DDL by themselves, so theirs is a database of its own, dropped
after; its name carries when it was made, and one left by a crash (an hour old) is dropped
by the next try.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
import psycopg.sql
import pymysql

from opendms.schema.model import Table
from opendms.targets.base import TargetError, TryFailed

PREFIX = "_opendms_try_"
STALE_SECONDS = 3600
STATEMENT_SECONDS = 60  # a statement on an empty scratch table that takes longer is stuck

Reader = Callable[[Any, str, Sequence[str] | None], dict[str, Table]]


def _run(
    execute: Callable[[str], object],
    setup: Sequence[str],
    script: Sequence[str],
    error: type[Exception],
    text: Callable[[Any], str],
) -> None:
    for number, statements in ((0, setup), *enumerate(((s,) for s in script), start=1)):
        for statement in statements:
            try:
                execute(statement)
            except error as exc:
                raise TryFailed(text(exc), number) from exc


def try_postgres(
    conn: psycopg.Connection[Any],
    setup: Sequence[str],
    script: Sequence[str],
    names: Sequence[str],
    read: Reader,
    text: Callable[[Any], str],
) -> dict[str, Table]:
    """In a schema made and dropped within one transaction that is rolled back."""
    scratch = f"{PREFIX}{uuid.uuid4().hex[:12]}"
    ident = psycopg.sql.Identifier(scratch)
    found: dict[str, Table] = {}
    try:
        with conn.transaction():
            conn.execute(psycopg.sql.SQL("CREATE SCHEMA {}").format(ident))
            conn.execute(psycopg.sql.SQL("SET LOCAL search_path TO {}").format(ident))
            conn.execute(f"SET LOCAL statement_timeout = '{STATEMENT_SECONDS}s'")
            _run(conn.execute, setup, script, psycopg.Error, text)
            found = read(conn, scratch, names)
            raise psycopg.Rollback()
    except psycopg.Error as exc:
        raise TargetError(f"trying the script failed: {text(exc)}") from exc
    return found


def try_mysql(
    conn: pymysql.connections.Connection[Any],
    charset: tuple[str, str],
    setup: Sequence[str],
    script: Sequence[str],
    names: Sequence[str],
    read: Reader,
    text: Callable[[Any], str],
) -> dict[str, Table]:
    """In a database of its own, with the default character set and collation of the
    database the script is for, dropped after."""
    now = int(time.time())
    scratch = f"{PREFIX}{now}_{uuid.uuid4().hex[:8]}"
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE %s",
                (PREFIX.replace("_", "\\_") + "%",),
            )
            for (name,) in cur.fetchall():
                made = name[len(PREFIX) :].split("_", 1)[0]
                if made.isdigit() and now - int(made) > STALE_SECONDS:
                    cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(
                f"CREATE DATABASE `{scratch}` CHARACTER SET {charset[0]} COLLATE {charset[1]}"
            )
    except pymysql.err.MySQLError as exc:
        raise TargetError(
            f"trying the script needs a scratch database, and making one failed: {text(exc)}; "
            "grant the instance's user CREATE and DROP on databases named "
            f"{PREFIX}*"
        ) from exc
    try:
        with conn.cursor() as cur:
            cur.execute(f"USE `{scratch}`")
            cur.execute("SET SESSION lock_wait_timeout = %s", (STATEMENT_SECONDS,))
            _run(cur.execute, setup, script, pymysql.err.MySQLError, text)
            return read(conn, scratch, names)
    except pymysql.err.MySQLError as exc:
        raise TargetError(f"trying the script failed: {text(exc)}") from exc
    finally:
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{scratch}`")
        except pymysql.err.MySQLError:
            pass  # the next try drops it once it is stale


def try_sqlite(
    setup: Sequence[str],
    script: Sequence[str],
    names: Sequence[str],
    read: Callable[[sqlite3.Connection, str], Table],
) -> dict[str, Table]:
    """In a database in memory."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        _run(conn.execute, setup, script, sqlite3.Error, str)
        present = {
            str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        return {n: read(conn, n) for n in names if n in present}
    finally:
        conn.close()
