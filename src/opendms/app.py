"""ASGI assembly: the RPC gateway at ``/`` on a lean path, Starlette for everything else
(the web console at ``/console/``, downloads, ``/healthz``, ``/readyz`` and ``/metrics``,
JSON errors), nonce housekeeping, webhook delivery and the embedded job runner."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from opendms import actions
from opendms.config import Settings
from opendms.errors import DmsError
from opendms.execution import files as ticket_files
from opendms.exports import service as export_service
from opendms.gateway import errors
from opendms.gateway.errors import GatewayError
from opendms.gateway.pipeline import Gateway, Reply, error_reply, log_reply
from opendms.gateway.ratelimit_store import purge_rate_windows
from opendms.gateway.rpc import RawRequest
from opendms.gateway.table import build_table
from opendms.identity.credentials import purge_nonces
from opendms.operations import Readiness, StoreGauges
from opendms.runtime import Runtime
from opendms.store.models import Attachment
from opendms.targets.base import TargetError
from opendms.telemetry import metrics
from opendms.web import console

log = logging.getLogger("opendms")
NONCE_PURGE_SECONDS = 60


async def _read_body(receive: Receive, declared: str, limit: int) -> bytes:
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise errors.too_large(limit)
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise errors.invalid_parameter("The client went away before the body arrived.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise errors.too_large(limit)
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _send_json(send: Send, reply: Reply) -> None:
    body = json.dumps(reply.body, ensure_ascii=False, separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()),
    ]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# Headers that make a request to ``/`` an API call, whatever it accepts: an ACS3 call carries
# its action in a header and may have no query at all (and some HTTP libraries, Java's
# among them, send an Accept that names text/html by default).
_CALL_HEADERS = frozenset({b"authorization", b"x-acs-action", b"x-acs-version"})


def _browser_at_root(scope: Scope) -> bool:
    """A person who opened the server's address: a GET of ``/`` with no call in it, asking
    for HTML. No DMS client sends that."""
    if scope["method"] != "GET" or scope.get("query_string"):
        return False
    headers = scope["headers"]
    if any(k in _CALL_HEADERS for k, _ in headers):
        return False
    accept = next((v for k, v in headers if k == b"accept"), b"")
    return b"text/html" in accept


async def _redirect(send: Send, location: str) -> None:
    headers = [(b"location", location.encode()), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else ""


class OpenDMS:
    """The ASGI application. ``/`` is the DMS RPC endpoint for every HTTP method (the gateway
    answers an unsupported one with a DMS error); other paths go to the Starlette app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime = Runtime.from_settings(settings)
        self.store = self.runtime.store
        self.means = self.runtime.means
        self.gateway = Gateway(settings, self.store, self.means, build_table(actions.ALL))
        self.deliverer = self.runtime.deliverer()
        self.runner = self.runtime.job_runner()
        self.uploads = self.runtime.upload_runner()
        self.beating = self.runtime.heartbeat([self.runner, self.uploads], "api")
        self.console = console.build(self.gateway, self.store, max_body=settings.max_request_bytes)
        self.readiness = Readiness(self.store, settings.broker_url)
        self.gauges = StoreGauges(self.store, {*self.runner.executors, *self.uploads.executors})
        self.web = Starlette(
            routes=[
                *self.console.routes(),
                # for balancers and Prometheus: unsigned, and no API request (not logged)
                Route("/healthz", self._healthz, methods=["GET"]),
                Route("/readyz", self._readyz, methods=["GET"]),
                Route("/metrics", self._metrics, methods=["GET"]),
                Route("/files/{key}", self._download, methods=["GET"]),
                Route("/downloads/{kind}/{ident:int}", self._ticket_file, methods=["GET"]),
                Route("/exports/{job_id:int}", self._export_file, methods=["GET"]),
            ],
            exception_handlers={404: self._not_found, 405: self._not_found},
            lifespan=self._lifespan,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/":
            if _browser_at_root(scope):
                await _redirect(send, "/console/")
                return
            await self._rpc(scope, receive, send)
        else:
            await self.web(scope, receive, send)

    async def _rpc(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        client = _client(scope)
        query = scope.get("query_string", b"")
        try:
            body = await _read_body(
                receive, headers.get("content-length", ""), self.settings.max_request_bytes
            )
            if len(query) + len(body) > self.settings.max_request_bytes:
                raise errors.too_large(self.settings.max_request_bytes)
        except GatewayError as exc:
            reply = error_reply(headers, exc)
            log_reply(reply, "-", time.perf_counter(), client)
            await _send_json(send, reply)
            return
        raw = RawRequest(
            method=scope["method"],
            path=scope["path"],
            query_string=query,
            headers=headers,
            body=body,
            client=client,
            url_scheme=scope.get("scheme", "http"),
        )
        await _send_json(send, await self.gateway.handle(raw))

    async def _healthz(self, _request: Request) -> Response:
        """The process is alive and its event loop answers; nothing else is asked."""
        return JSONResponse({"status": "ok"})

    async def _readyz(self, _request: Request) -> Response:
        """Whether a balancer may send this process requests: its store answers, and its
        broker when it has one; 503 naming the check that failed otherwise."""
        ready, checks = await self.readiness()
        body = {"status": "ok" if ready else "unavailable", "checks": checks}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def _metrics(self, _request: Request) -> Response:
        """Prometheus text: this process's counters and the store's gauges."""
        text = await run_in_threadpool(metrics.exposition, await self.gauges())
        return Response(text, media_type=metrics.CONTENT_TYPE)

    async def _download(self, request: Request) -> Response:
        """An attachment, for whoever holds a link that ``GetOrderAttachmentFile`` signed."""
        key = request.path_params["key"]
        links = self.means.links
        q = request.query_params
        if not links.valid(key, q.get("expires", ""), q.get("signature", "")):
            return await self._not_found(request, Exception())
        found = await run_in_threadpool(self._attachment_file, key)
        if found is None:
            return await self._not_found(request, Exception())
        path, name = found
        return FileResponse(path, filename=name, media_type="application/octet-stream")

    async def _ticket_file(self, request: Request) -> Response:
        """A data-change ticket's SQL, rollback SQL or backup rollback script, for whoever
        holds a link that GetDataCorrectSQLFile / RollbackFile / BackupFiles signed."""
        kind, ident = request.path_params["kind"], request.path_params["ident"]
        q = request.query_params
        valid = kind in ticket_files.KINDS and self.means.links.valid(
            f"{kind}:{ident}", q.get("expires", ""), q.get("signature", "")
        )
        if not valid:
            return await self._not_found(request, Exception())
        try:
            found, first = await run_in_threadpool(self._start_download, kind, ident)
        except (DmsError, TargetError) as exc:
            code = str(exc.code) if isinstance(exc, DmsError) else "TargetConnectFailed"
            return Response(
                json.dumps({"Code": code, "Message": exc.message}),
                status_code=502,
                media_type="application/json",
            )
        if found is None:
            return await self._not_found(request, Exception())
        headers = {"content-disposition": f'attachment; filename="{found.name}"'}
        if found.path is not None:
            return FileResponse(found.path, filename=found.name, media_type="text/plain")
        if found.parts is None:
            return Response(found.text or "", media_type="text/plain", headers=headers)
        rest = found.parts

        def body() -> Iterator[bytes]:
            yield from (part.encode() for part in first)
            yield from (part.encode() for part in rest)

        return StreamingResponse(body(), media_type="text/plain", headers=headers)

    async def _export_file(self, request: Request) -> Response:
        """An export's zip, for the person GetDataExportDownloadURL signed the link for,
        while that person may still see the ticket; every download is audited."""
        job_id = request.path_params["job_id"]
        q = request.query_params
        user = q.get("user", "")
        valid = (
            user.isascii()
            and user.isdigit()
            and self.means.links.valid(
                export_service.link_key(job_id, int(user)),
                q.get("expires", ""),
                q.get("signature", ""),
            )
        )
        if not valid:
            return await self._not_found(request, Exception())
        found = await run_in_threadpool(
            self._export_path, int(user), job_id, _client(request.scope)
        )
        if found is None:
            return await self._not_found(request, Exception())
        path, name = found
        return FileResponse(path, filename=name, media_type="application/zip")

    def _export_path(self, user_id: int, job_id: int, client: str) -> tuple[str, str] | None:
        with self.store.session() as s:
            found = export_service.open_download(s, self.means.files.root, user_id, job_id, client)
            return (str(found[0]), found[1].file_name) if found is not None else None

    def _start_download(
        self, kind: str, ident: int
    ) -> tuple[ticket_files.Download | None, list[str]]:
        """The download and its first parts, read before any byte is sent: a target that
        cannot be reached is an error response, not a truncated file."""
        found = ticket_files.download(self.store, self.means, kind, ident)
        first = list(islice(found.parts, 3)) if found is not None and found.parts else []
        return found, first

    def _attachment_file(self, key: str) -> tuple[str, str] | None:
        with self.store.session() as s:
            attachment = s.get(Attachment, key)
            if attachment is None:
                return None
            path = self.means.files.path_for(attachment.sha256)
            return (str(path), attachment.file_name) if path.exists() else None

    async def _not_found(self, request: Request, _exc: Exception) -> Response:
        exc = errors.action_not_found(f"{request.method} {request.url.path}"[:128])
        reply = error_reply(dict(request.headers), exc)
        log_reply(reply, "-", time.perf_counter(), _client(request.scope))
        return Response(
            json.dumps(reply.body), status_code=reply.status, media_type="application/json"
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Any) -> AsyncIterator[None]:
        # Blocking work (handlers, SQLite) runs on a few threads: more threads only fight
        # over the GIL (bench/gateway.py).
        anyio.to_thread.current_default_thread_limiter().total_tokens = self.settings.worker_threads
        await self.gateway.credentials.open()
        self.runner.start()
        self.uploads.start()
        self.beating.start()
        tasks = [
            asyncio.create_task(self._purge_forever()),
            asyncio.create_task(self.deliverer.run_forever()),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await run_in_threadpool(self.runner.stop)
            await run_in_threadpool(self.uploads.stop)
            await run_in_threadpool(self.beating.stop)
            await self.gateway.limiter.close()
            await self.gateway.credentials.close()
            await run_in_threadpool(self.runtime.close)

    async def _purge_forever(self) -> None:
        while True:
            await asyncio.sleep(NONCE_PURGE_SECONDS)
            try:
                await run_in_threadpool(self._purge)
            except Exception:
                log.warning("nonce and rate window purge failed; will retry", exc_info=True)

    def _purge(self) -> None:
        with self.store.engine.begin() as conn:
            purge_nonces(conn, datetime.now(UTC).replace(tzinfo=None))
            purge_rate_windows(conn, time.time())


def create_app(settings: Settings | None = None) -> OpenDMS:
    return OpenDMS(settings or Settings())
