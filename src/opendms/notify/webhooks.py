"""Ticket events POSTed to a tenant's webhook (docs/webhooks.md describes the payload).

An event is written to ``webhook_deliveries`` in the transaction of the act it reports (an
outbox): it exists exactly when the act committed, and sending it never holds up or fails the
act. A delivery loop in each server process claims due rows with a lease, POSTs them, and
records every attempt; a failure is retried with exponential backoff, and a lease that ran
out (the process died mid-send) makes the row due again. Delivery is at least once: receivers
deduplicate on ``X-OpenDMS-Delivery``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from opendms.errors import DmsError, ErrorCode
from opendms.identity.caller import Caller
from opendms.identity.secrets import SecretBox
from opendms.store.db import Store
from opendms.store.models import Order, Webhook, WebhookDelivery, utcnow
from opendms.store.paging import paged
from opendms.store.states import DeliveryState

log = logging.getLogger("opendms.webhooks")

EVENTS = (
    "order.submitted",
    "order.approved",
    "order.rejected",
    "order.cancelled",
    "order.closed",
    "order.transferred",
    "order.node_added",
    "order.executed",
    "webhook.ping",
)
SIGNATURE_HEADER = "X-OpenDMS-Signature"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``<timestamp>.<body>``: the timestamp is signed
    too, so a receiver that checks its age refuses replays."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _check_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2048:
        raise DmsError(ErrorCode.INVALID_PARAMETER, "A webhook URL is an http(s) URL.")
    return url


def configure(
    s: Session, box: SecretBox, tid: int, url: str, secret: str | None = None
) -> tuple[Webhook, str]:
    """Set the tenant's webhook; returns it with its signing secret (generated if not given)."""
    secret = secret or secrets.token_urlsafe(32)
    if len(secret) < 16:
        raise DmsError(ErrorCode.INVALID_PARAMETER, "A webhook secret is at least 16 characters.")
    hook = s.get(Webhook, tid)
    if hook is None:
        hook = Webhook(tid=tid, url=_check_url(url), secret_enc=box.encrypt(secret))
        s.add(hook)
    else:
        hook.url = _check_url(url)
        hook.secret_enc = box.encrypt(secret)
        hook.enabled = True
    s.flush()
    return hook, secret


def set_enabled(s: Session, tid: int, enabled: bool) -> Webhook:
    hook = s.get(Webhook, tid)
    if hook is None:
        raise DmsError(ErrorCode.INVALID_PARAMETER, f"Tenant {tid} has no webhook.")
    hook.enabled = enabled
    s.flush()
    return hook


def get(s: Session, tid: int) -> Webhook | None:
    return s.get(Webhook, tid)


def emit(s: Session, tid: int, event: str, data: dict[str, Any]) -> WebhookDelivery | None:
    """Queue ``event`` for the tenant's webhook, in the caller's transaction."""
    hook = s.get(Webhook, tid)
    if hook is None or not hook.enabled:
        return None
    delivery = WebhookDelivery(tid=tid, event=event, payload="{}")
    s.add(delivery)
    s.flush()
    envelope = {
        "event": event,
        "delivery_id": delivery.delivery_id,
        "tenant_id": tid,
        "occurred_at": f"{utcnow():%Y-%m-%dT%H:%M:%S}Z",
        **data,
    }
    delivery.payload = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    s.flush()
    return delivery


def ticket_event(order: Order, actor: Caller | None, comment: str) -> dict[str, Any]:
    """The parts of a ticket event every event shares (docs/webhooks.md)."""
    return {
        "order": {
            "order_id": order.order_id,
            "plugin_type": order.plugin_type,
            "status_code": order.status_code,
            "committer_id": order.committer_id,
            "comment": order.comment,
        },
        "actor": {"user_id": actor.user_id, "nick_name": actor.nick_name} if actor else None,
        "comment": comment,
    }


def deliveries(s: Session, tid: int, limit: int = 50) -> Sequence[WebhookDelivery]:
    return s.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.tid == tid)
        .order_by(WebhookDelivery.delivery_id.desc())
        .limit(limit)
    ).all()


@dataclass(frozen=True)
class Overview:
    """The tenant's webhook (None: none set) and one page of its deliveries, newest first."""

    hook: Webhook | None
    total: int
    deliveries: Sequence[WebhookDelivery]


def overview(s: Session, caller: Caller, *, page: int = 1, size: int = 20) -> Overview:
    """What the console shows of the tenant's webhook: for its ADMINs only. The URL may carry
    the receiver's token, and the payloads carry tickets (their comments) that not everybody
    may see. The signing secret is never shown: ``opendms webhook set`` prints it once."""
    if not caller.is_admin:
        raise DmsError(ErrorCode.PERMISSION_DENIED, "Only an ADMIN sees the tenant's webhook.")
    found = paged(
        s,
        select(WebhookDelivery)
        .where(WebhookDelivery.tid == caller.tid)
        .order_by(WebhookDelivery.delivery_id.desc()),
        page,
        size,
    )
    return Overview(s.get(Webhook, caller.tid), found.total, found.items)


# ------------------------------------------------------------------ delivery


@dataclass(frozen=True)
class Policy:
    max_attempts: int = 8
    backoff_seconds: float = 10.0  # doubled after each failure, up to an hour
    timeout_seconds: float = 10.0
    lease_seconds: float = 60.0
    batch: int = 20

    def retry_after(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.backoff_seconds * 2 ** (attempts - 1), 3600.0))


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    event: str
    url: str
    secret: str
    payload: str
    attempts: int


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(
        (WebhookDelivery.state == DeliveryState.PENDING) & (WebhookDelivery.next_attempt_at <= now),
        (WebhookDelivery.state == DeliveryState.SENDING) & (WebhookDelivery.lease_until < now),
    )


def claim_due(s: Session, box: SecretBox, policy: Policy, now: datetime) -> list[Claimed]:
    """Due deliveries, each leased to this caller by a conditional update (safe when several
    processes deliver)."""
    due = s.execute(
        select(WebhookDelivery.delivery_id, WebhookDelivery.attempts)
        .where(_due(now))
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(policy.batch)
    ).all()
    claimed = []
    for delivery_id, attempts in due:
        taken = s.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.delivery_id == delivery_id,
                WebhookDelivery.attempts == attempts,
                WebhookDelivery.state.in_((DeliveryState.PENDING, DeliveryState.SENDING)),
            )
            .values(
                state=DeliveryState.SENDING,
                attempts=attempts + 1,
                lease_until=now + timedelta(seconds=policy.lease_seconds),
            )
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            continue
        row = s.get(WebhookDelivery, delivery_id)
        hook = s.get(Webhook, row.tid) if row is not None else None
        if row is None:
            continue
        if hook is None or not hook.enabled:
            row.state = DeliveryState.FAILED
            row.last_error = "the tenant's webhook was removed or disabled"
            continue
        claimed.append(
            Claimed(
                delivery_id,
                row.event,
                hook.url,
                box.decrypt(hook.secret_enc),
                row.payload,
                attempts + 1,
            )
        )
    s.flush()
    return claimed


def record(
    s: Session,
    claimed: Claimed,
    policy: Policy,
    now: datetime,
    *,
    status: int | None,
    error: str,
) -> None:
    row = s.get(WebhookDelivery, claimed.delivery_id, with_for_update=True)
    if row is None or row.state != DeliveryState.SENDING or row.attempts != claimed.attempts:
        return  # our lease ran out and another process took the delivery over
    row.last_status = status
    row.lease_until = None
    if status is not None and 200 <= status < 300:
        row.state, row.delivered_at, row.last_error = DeliveryState.DELIVERED, now, ""
        return
    row.last_error = error[:2000]
    if claimed.attempts >= policy.max_attempts:
        row.state = DeliveryState.FAILED
    else:
        row.state = DeliveryState.PENDING
        row.next_attempt_at = now + policy.retry_after(claimed.attempts)


async def post(client: httpx.AsyncClient, claimed: Claimed) -> tuple[int | None, str]:
    body = claimed.payload.encode()
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "OpenDMS-Webhook/1",
        "X-OpenDMS-Event": claimed.event,
        "X-OpenDMS-Delivery": str(claimed.delivery_id),
        "X-OpenDMS-Timestamp": stamp,
        SIGNATURE_HEADER: sign(claimed.secret, stamp, body),
    }
    try:
        response = await client.post(claimed.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    return response.status_code, "" if response.is_success else f"HTTP {response.status_code}"


class Deliverer:
    """Sends due deliveries; ``run_once`` is one pass, ``run_forever`` the server's loop."""

    def __init__(
        self,
        store: Store,
        box: SecretBox,
        policy: Policy | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store, self.box, self.policy, self.clock = store, box, policy or Policy(), clock

    def _claim(self) -> list[Claimed]:
        now = self.clock()
        # An idle poll reads outside a transaction: on SQLite a transaction takes the write
        # lock, which request handlers would then wait for every second.
        with self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            if c.scalar(select(WebhookDelivery.delivery_id).where(_due(now)).limit(1)) is None:
                return []
        with self.store.session() as s:
            return claim_due(s, self.box, self.policy, now)

    def _record(self, results: list[tuple[Claimed, int | None, str]]) -> None:
        with self.store.session() as s:
            for claimed, status, error in results:
                record(s, claimed, self.policy, self.clock(), status=status, error=error)

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many were attempted."""
        claimed = await asyncio.to_thread(self._claim)
        if not claimed:
            return 0
        async with httpx.AsyncClient(
            timeout=self.policy.timeout_seconds, follow_redirects=False
        ) as client:
            outcomes = await asyncio.gather(*(post(client, c) for c in claimed))
        await asyncio.to_thread(
            self._record, [(c, st, err) for c, (st, err) in zip(claimed, outcomes, strict=True)]
        )
        return len(claimed)

    async def run_forever(self, interval: float = 1.0) -> None:
        while True:
            try:
                if await self.run_once():
                    continue
            except Exception:
                log.warning("webhook delivery pass failed; will retry", exc_info=True)
            await asyncio.sleep(interval)
