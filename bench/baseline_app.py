"""Bare ASGI endpoints the gateway benchmark compares against, served by the same uvicorn
settings: one answers constant JSON, one inserts one row per request into the metadata store
(the least work a replay-proof request must do: remember its nonce)."""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from typing import Any

from starlette.concurrency import run_in_threadpool

BODY = b'{"RequestId":"00000000-0000-0000-0000-000000000000","Success":true}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
TABLE = "bench_baseline_nonce"


async def _reply(send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


async def _drain(receive: Any) -> None:
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)


def const_app() -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await _drain(receive)
        await _reply(send)

    return app


def insert_app() -> Any:
    url = os.environ["BENCH_DB_URL"]
    if url.startswith("sqlite"):
        return _sqlite_insert_app(url.split("///", 1)[1])
    return _pg_insert_app(url.replace("postgresql+psycopg://", "postgresql://"))


def _pg_insert_app(dsn: str) -> Any:
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(
        dsn, min_size=4, max_size=16, kwargs={"autocommit": True}, open=False
    )

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await pool.open()
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await pool.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await _drain(receive)
        async with pool.connection() as conn:
            await conn.execute(
                f"INSERT INTO {TABLE} (nonce, expires_at) VALUES (%s, now())",
                (uuid.uuid4().hex,),
            )
        await _reply(send)

    return app


def _sqlite_insert_app(path: str) -> Any:
    local = threading.local()

    def insert() -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(path, isolation_level=None, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            local.conn = conn
        conn.execute(
            f"INSERT INTO {TABLE} (nonce, expires_at) VALUES (?, datetime('now'))",
            (uuid.uuid4().hex,),
        )

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await _drain(receive)
        await run_in_threadpool(insert)
        await _reply(send)

    return app


def thread_app() -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await _drain(receive)
        await run_in_threadpool(lambda: None)
        await _reply(send)

    return app
