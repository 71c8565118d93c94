"""ASGI assembly: the RPC gateway at ``/``, JSON errors everywhere else, nonce housekeeping."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from opendms import actions
from opendms.config import Settings
from opendms.gateway import errors
from opendms.gateway.errors import GatewayError
from opendms.gateway.pipeline import Gateway, Reply, new_request_id
from opendms.gateway.rpc import RawRequest
from opendms.gateway.table import build_table
from opendms.identity.credentials import purge_nonces
from opendms.identity.secrets import SecretBox, load_master_key
from opendms.store.db import Store

log = logging.getLogger("opendms")
NONCE_PURGE_SECONDS = 60
GATEWAY_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


def _json(reply: Reply) -> Response:
    body = json.dumps(reply.body, ensure_ascii=False, separators=(",", ":"))
    return Response(
        body, status_code=reply.status, media_type="application/json", headers=dict(reply.headers)
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise errors.too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _error_reply(request: Request, exc: GatewayError) -> Response:
    return _json(
        Reply(
            exc.status,
            {
                "RequestId": new_request_id(),
                "HostId": request.headers.get("host", "opendms")[:255],
                "Code": exc.code,
                "Message": exc.message,
            },
            exc.headers,
        )
    )


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    store = Store(settings.metadata_url, pool_size=settings.db_pool_size)
    box = SecretBox(load_master_key(settings.secret_key, settings.data_dir))
    gateway = Gateway(settings, store, box, build_table(actions.ALL))

    async def rpc(request: Request) -> Response:
        try:
            body = await _read_body(request, settings.max_request_bytes)
        except GatewayError as exc:
            return _error_reply(request, exc)
        client = request.client
        raw = RawRequest(
            method=request.method,
            path=request.url.path,
            query_string=request.scope.get("query_string", b""),
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers.raw},
            body=body,
            client=f"{client.host}:{client.port}" if client else "",
        )
        return _json(await run_in_threadpool(gateway.handle, raw))

    async def not_found(request: Request, _exc: Exception) -> Response:
        return _error_reply(
            request, errors.action_not_found(f"{request.method} {request.url.path}"[:128])
        )

    async def purge_forever() -> None:
        while True:
            await asyncio.sleep(NONCE_PURGE_SECONDS)
            try:
                await run_in_threadpool(_purge, store)
            except Exception:
                log.warning("nonce purge failed; will retry", exc_info=True)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(purge_forever())
        try:
            yield
        finally:
            task.cancel()
            store.dispose()

    app = Starlette(
        routes=[Route("/", rpc, methods=GATEWAY_METHODS)],
        exception_handlers={404: not_found, 405: not_found},
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    app.state.store = store
    return app


def _purge(store: Store) -> None:
    with store.engine.begin() as conn:
        purge_nonces(conn, datetime.now(UTC).replace(tzinfo=None))
