"""Webhooks end to end on SQLite: configuration, the outbox, signed delivery to a real local
HTTP receiver, retries on an injected clock, leases, and the events the approval flow queues."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from opendms.errors import DmsError, ErrorCode
from opendms.identity.secrets import SecretBox
from opendms.notify import webhooks
from opendms.rulebook import rule_sets, templates
from opendms.store.db import Store
from opendms.store.models import WebhookDelivery
from tests import approval_world
from tests.clock import HandClock

SECRET = "s3cret-s3cret-s3cret"  # 20 characters

# ------------------------------------------------------------------ a local receiver


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1: answers POSTs with scripted status codes (200 once the
    script is used up) and records every request it gets."""

    server: ThreadingHTTPServer
    script: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def answer(self, request: Received) -> int:
        with self.lock:
            self.requests.append(request)
            return self.script.pop(0) if self.script else 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status = box[0].answer(
                Received(self.command, self.path, dict(self.headers.items()), body)
            )
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "/moved")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = _handle
        do_GET = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec = Receiver(server)
    box.append(rec)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ helpers


@pytest.fixture
def clock() -> HandClock:
    """The deliverer's clock, a minute ahead: rows queued "now" are already due."""
    return HandClock(timedelta(minutes=1))


def hook(store: Store, box: SecretBox, tid: int, url: str, secret: str = SECRET) -> str:
    with store.session() as s:
        return webhooks.configure(s, box, tid, url, secret)[1]


def emit(store: Store, tid: int, event: str = "order.submitted", **data: Any) -> int | None:
    with store.session() as s:
        made = webhooks.emit(s, tid, event, data or {"order": {"order_id": 7}})
        return made.delivery_id if made else None


def row(store: Store, delivery_id: int | None) -> WebhookDelivery:
    with store.session() as s:
        found = s.get(WebhookDelivery, delivery_id)
        assert found is not None
        return found


def count(store: Store) -> int:
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(WebhookDelivery)) or 0)


def deliver(deliverer: webhooks.Deliverer) -> int:
    return asyncio.run(deliverer.run_once())


def verify(secret: str, request: Received) -> None:
    """What a receiver does, written from the documentation, not from opendms.sign."""
    stamp = request.headers["X-OpenDMS-Timestamp"]
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + request.body, hashlib.sha256)
    assert hmac.compare_digest(request.headers["X-OpenDMS-Signature"], "sha256=" + mac.hexdigest())
    assert abs(int(stamp) - time.time()) < 60


# ------------------------------------------------------------------ configuration


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "example.com/hook",
        "http://",
        "",
        "https://example.com/" + "x" * 2100,
    ],
)
def test_configure_accepts_only_http_urls(store: Store, box: SecretBox, tid: int, url: str):
    with pytest.raises(DmsError) as err, store.session() as s:
        webhooks.configure(s, box, tid, url, SECRET)
    assert err.value.code == ErrorCode.INVALID_PARAMETER
    with store.session() as s:
        assert webhooks.get(s, tid) is None


def test_configure_rejects_a_short_secret_and_keeps_the_old_one(
    store: Store, box: SecretBox, tid: int
):
    hook(store, box, tid, "https://example.com/a")
    with pytest.raises(DmsError) as err, store.session() as s:
        webhooks.configure(s, box, tid, "https://example.com/b", "x" * 15)
    assert err.value.code == ErrorCode.INVALID_PARAMETER and "16" in err.value.message
    with store.session() as s:
        kept = webhooks.get(s, tid)
        assert kept is not None and kept.url == "https://example.com/a"
        assert box.decrypt(kept.secret_enc) == SECRET
    # exactly 16 is enough
    assert hook(store, box, tid, "https://example.com/c", "y" * 16) == "y" * 16


def test_the_secret_is_generated_when_omitted_and_stored_encrypted(
    store: Store, box: SecretBox, tid: int
):
    with store.session() as s:
        made, secret = webhooks.configure(s, box, tid, "  https://example.com/hook  ")
        assert made.url == "https://example.com/hook"
    assert len(secret) >= 32
    with store.session() as s:
        (raw,) = s.execute(text("SELECT secret_enc FROM webhooks WHERE tid = :t"), {"t": tid}).one()
    assert raw != secret and secret not in raw
    assert box.decrypt(raw) == secret
    # a second configuration makes a new secret, replaces the URL and enables the hook again
    with store.session() as s:
        webhooks.set_enabled(s, tid, False)
    with store.session() as s:
        again, other = webhooks.configure(s, box, tid, "http://127.0.0.1:9/x")
        assert (again.url, again.enabled) == ("http://127.0.0.1:9/x", True)
    assert other != secret


def test_set_enabled_needs_a_webhook(store: Store, tid: int):
    with pytest.raises(DmsError) as err, store.session() as s:
        webhooks.set_enabled(s, tid, False)
    assert err.value.code == ErrorCode.INVALID_PARAMETER


# ------------------------------------------------------------------ the outbox


def test_emit_without_a_webhook_or_with_a_disabled_one_writes_nothing(
    store: Store, box: SecretBox, tid: int
):
    assert emit(store, tid) is None
    hook(store, box, tid, "https://example.com/hook")
    with store.session() as s:
        webhooks.set_enabled(s, tid, False)
    assert emit(store, tid) is None
    assert count(store) == 0
    with store.session() as s:
        webhooks.set_enabled(s, tid, True)
    assert emit(store, tid) is not None
    assert count(store) == 1


def test_an_event_exists_only_if_its_transaction_commits(store: Store, box: SecretBox, tid: int):
    hook(store, box, tid, "https://example.com/hook")
    with pytest.raises(RuntimeError), store.session() as s:
        assert webhooks.emit(s, tid, "order.approved", {}) is not None
        raise RuntimeError("the act failed after queueing its event")
    assert count(store) == 0
    delivery_id = emit(store, tid, "order.approved", order={"order_id": 1})
    queued = row(store, delivery_id)
    assert (queued.state, queued.attempts, queued.event) == ("pending", 0, "order.approved")
    payload = json.loads(queued.payload)
    assert payload["event"] == "order.approved"
    assert (payload["delivery_id"], payload["tenant_id"]) == (delivery_id, tid)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", payload["occurred_at"])
    assert payload["order"] == {"order_id": 1}


# ------------------------------------------------------------------ delivery


def test_a_delivery_is_signed_and_the_receiver_can_verify_it(
    store: Store, box: SecretBox, tid: int, receiver: Receiver, clock: HandClock
):
    secret = hook(store, box, tid, receiver.url)
    delivery_id = emit(store, tid, "order.submitted", order={"order_id": 7, "comment": "修正"})
    deliverer = webhooks.Deliverer(store, box, webhooks.Policy(), clock=clock)
    assert deliver(deliverer) == 1
    (got,) = receiver.requests
    assert (got.method, got.path) == ("POST", "/hook")
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-OpenDMS-Event"] == "order.submitted"
    assert got.headers["X-OpenDMS-Delivery"] == str(delivery_id)
    verify(secret, got)
    # the wrong secret does not verify
    with pytest.raises(AssertionError):
        verify("another-secret-of-20c", got)
    body = json.loads(got.body)
    assert body == json.loads(row(store, delivery_id).payload)
    assert body["order"]["comment"] == "修正"
    done = row(store, delivery_id)
    assert (done.state, done.attempts, done.last_status, done.last_error) == (
        "delivered",
        1,
        200,
        "",
    )
    assert done.delivered_at == clock.now and done.lease_until is None
    assert deliver(deliverer) == 0 and len(receiver.requests) == 1


def test_any_2xx_is_a_delivery(
    store: Store, box: SecretBox, tid: int, receiver: Receiver, clock: HandClock
):
    hook(store, box, tid, receiver.url)
    receiver.script[:] = [204]
    delivery_id = emit(store, tid)
    assert deliver(webhooks.Deliverer(store, box, clock=clock)) == 1
    assert (row(store, delivery_id).state, row(store, delivery_id).last_status) == (
        "delivered",
        204,
    )


def test_a_500_is_retried_when_its_time_comes(
    store: Store, box: SecretBox, tid: int, receiver: Receiver, clock: HandClock
):
    secret = hook(store, box, tid, receiver.url)
    receiver.script[:] = [500, 200]
    delivery_id = emit(store, tid)
    deliverer = webhooks.Deliverer(store, box, webhooks.Policy(backoff_seconds=10), clock=clock)
    assert deliver(deliverer) == 1
    first = row(store, delivery_id)
    assert (first.state, first.attempts, first.last_status, first.last_error) == (
        "pending",
        1,
        500,
        "HTTP 500",
    )
    assert first.next_attempt_at == clock.now + timedelta(seconds=10)
    assert first.lease_until is None and first.delivered_at is None
    # not due yet: nothing is sent however often the loop runs
    assert deliver(deliverer) == 0
    clock.advance(9)
    assert deliver(deliverer) == 0
    assert len(receiver.requests) == 1
    clock.advance(1)
    assert deliver(deliverer) == 1
    done = row(store, delivery_id)
    assert (done.state, done.attempts, done.last_status, done.last_error) == (
        "delivered",
        2,
        200,
        "",
    )
    # the retry is the same delivery, for the receiver to deduplicate
    assert [r.headers["X-OpenDMS-Delivery"] for r in receiver.requests] == [str(delivery_id)] * 2
    assert receiver.requests[0].body == receiver.requests[1].body
    for r in receiver.requests:
        verify(secret, r)


def test_an_unreachable_receiver_is_retried_then_given_up(
    store: Store, box: SecretBox, tid: int, clock: HandClock
):
    hook(store, box, tid, f"http://127.0.0.1:{free_port()}/hook")
    delivery_id = emit(store, tid)
    policy = webhooks.Policy(max_attempts=3, backoff_seconds=10, timeout_seconds=2)
    deliverer = webhooks.Deliverer(store, box, policy, clock=clock)
    assert deliver(deliverer) == 1
    first = row(store, delivery_id)
    assert (first.state, first.attempts, first.last_status) == ("pending", 1, None)
    assert "ConnectError" in first.last_error
    assert first.next_attempt_at == clock.now + timedelta(seconds=10)
    clock.advance(10)
    assert deliver(deliverer) == 1
    second = row(store, delivery_id)
    assert (second.state, second.attempts) == ("pending", 2)
    assert second.next_attempt_at == clock.now + timedelta(seconds=20)
    clock.advance(20)
    assert deliver(deliverer) == 1
    last = row(store, delivery_id)
    assert (last.state, last.attempts, last.delivered_at) == ("failed", 3, None)
    assert "ConnectError" in last.last_error
    clock.advance(24 * 3600)
    assert deliver(deliverer) == 0


def test_backoff_doubles_and_stops_at_an_hour():
    policy = webhooks.Policy(backoff_seconds=10)
    assert [policy.retry_after(n).total_seconds() for n in range(1, 11)] == [
        10,
        20,
        40,
        80,
        160,
        320,
        640,
        1280,
        2560,
        3600,
    ]
    assert policy.retry_after(100) == timedelta(hours=1)
    assert webhooks.Policy(backoff_seconds=5000).retry_after(1) == timedelta(hours=1)


def test_a_redirect_is_not_followed(
    store: Store, box: SecretBox, tid: int, receiver: Receiver, clock: HandClock
):
    hook(store, box, tid, receiver.url)
    receiver.script[:] = [302]
    delivery_id = emit(store, tid)
    assert deliver(webhooks.Deliverer(store, box, clock=clock)) == 1
    assert [(r.method, r.path) for r in receiver.requests] == [("POST", "/hook")]
    got = row(store, delivery_id)
    assert (got.state, got.last_status, got.last_error) == ("pending", 302, "HTTP 302")


def test_a_lease_that_ran_out_makes_the_delivery_due_again(
    store: Store, box: SecretBox, tid: int, receiver: Receiver, clock: HandClock
):
    hook(store, box, tid, receiver.url)
    delivery_id = emit(store, tid)
    policy = webhooks.Policy(lease_seconds=60)
    with store.session() as s:  # a process claims it ... and dies before recording anything
        (claimed,) = webhooks.claim_due(s, box, policy, clock())
    assert (claimed.delivery_id, claimed.attempts, claimed.secret) == (delivery_id, 1, SECRET)
    leased = row(store, delivery_id)
    assert (leased.state, leased.lease_until) == ("sending", clock.now + timedelta(seconds=60))
    deliverer = webhooks.Deliverer(store, box, policy, clock=clock)
    assert deliver(deliverer) == 0  # the lease still holds
    clock.advance(60)
    assert deliver(deliverer) == 0  # ... up to its last instant
    clock.advance(1)
    assert deliver(deliverer) == 1
    done = row(store, delivery_id)
    assert (done.state, done.attempts) == ("delivered", 2)
    assert len(receiver.requests) == 1


def test_a_claimed_delivery_is_claimed_once(
    store: Store, box: SecretBox, tid: int, clock: HandClock
):
    hook(store, box, tid, "https://example.com/hook")
    emit(store, tid)
    policy = webhooks.Policy()
    with store.session() as s:
        assert len(webhooks.claim_due(s, box, policy, clock())) == 1
    with store.session() as s:
        assert webhooks.claim_due(s, box, policy, clock()) == []


def test_a_pass_takes_at_most_a_batch(
    store: Store, box: SecretBox, tid: int, receiver: Receiver, clock: HandClock
):
    hook(store, box, tid, receiver.url)
    ids = [emit(store, tid) for _ in range(3)]
    deliverer = webhooks.Deliverer(store, box, webhooks.Policy(batch=2), clock=clock)
    assert deliver(deliverer) == 2
    assert deliver(deliverer) == 1
    assert sorted(int(r.headers["X-OpenDMS-Delivery"]) for r in receiver.requests) == ids
    assert {row(store, i).state for i in ids} == {"delivered"}


def test_disabling_the_webhook_fails_what_is_queued(
    store: Store, box: SecretBox, tid: int, receiver: Receiver, clock: HandClock
):
    hook(store, box, tid, receiver.url)
    delivery_id = emit(store, tid)
    with store.session() as s:
        webhooks.set_enabled(s, tid, False)
    deliverer = webhooks.Deliverer(store, box, clock=clock)
    assert deliver(deliverer) == 0
    assert receiver.requests == []
    dropped = row(store, delivery_id)
    assert dropped.state == "failed"
    assert dropped.last_error == "the tenant's webhook was removed or disabled"
    # enabling it again does not resurrect what was dropped
    with store.session() as s:
        webhooks.set_enabled(s, tid, True)
    clock.advance(3600)
    assert deliver(deliverer) == 0 and receiver.requests == []


def test_a_stale_lease_holder_cannot_overwrite_a_later_delivery(
    store: Store, box: SecretBox, tid: int, receiver: Receiver, clock: HandClock
):
    """Process A claims a delivery and hangs past its lease; process B reclaims it and
    delivers it. When A finally records its failure, ``record`` must not undo B's outcome:
    the row is delivered and must stay so (not go back to pending and be sent again)."""
    hook(store, box, tid, receiver.url)
    delivery_id = emit(store, tid)
    policy = webhooks.Policy(lease_seconds=60)
    with store.session() as s:
        (stale,) = webhooks.claim_due(s, box, policy, clock())
    clock.advance(61)
    assert deliver(webhooks.Deliverer(store, box, policy, clock=clock)) == 1
    assert row(store, delivery_id).state == "delivered"
    with store.session() as s:  # A wakes up
        webhooks.record(s, stale, policy, clock(), status=500, error="HTTP 500")
    after = row(store, delivery_id)
    assert (after.state, after.last_status, after.attempts) == ("delivered", 200, 2)


# ------------------------------------------------------------------ the approval flow's events


class World(approval_world.World):
    def names(self) -> list[str]:
        return [e["event"] for e in self.events()]


@pytest.fixture
def world(store: Store, box: SecretBox, tmp_path: Path) -> World:
    """The approval world (tests/approval_world.py) with the tenant's webhook set."""
    return World.build(store, box, tmp_path / "targets").with_webhook(SECRET)


ENVELOPE = {
    "event",
    "delivery_id",
    "tenant_id",
    "occurred_at",
    "order",
    "workflow",
    "actor",
    "comment",
}


def test_submit_and_approve_queue_their_events_with_the_documented_payload(world: World):
    order_id = world.file()
    wf = world.submit(order_id)
    assert world.names() == ["order.submitted"]
    world.act(wf, "olga", "AGREE", comment="fine by me")
    assert world.names() == ["order.submitted"]  # an intermediate node is no event
    world.act(wf, "dba", "AGREE")
    submitted, approved = world.events()
    for e in (submitted, approved):
        assert set(e) == ENVELOPE
        assert e["tenant_id"] == world.tid
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", e["occurred_at"])
    assert approved["delivery_id"] == submitted["delivery_id"] + 1
    assert submitted["event"] == "order.submitted"
    assert submitted["order"] == {
        "order_id": order_id,
        "plugin_type": "DC_COMMON",
        "status_code": "toaudit",
        "committer_id": world.id("alice"),
        "comment": "fix",
    }
    assert submitted["workflow"] == {
        "workflow_instance_id": wf,
        "status": "AUDITING",
        "template": "Owner->DBA",
        "risk": "HIGH",
        "current_node": "Owner",
        "current_approvers": [world.id("owen"), world.id("olga")],
    }
    assert submitted["actor"] == {"user_id": world.id("alice"), "nick_name": "alice"}
    assert submitted["comment"] == ""
    assert approved["event"] == "order.approved"
    assert approved["order"]["status_code"] == "Approved"
    assert approved["workflow"] == {
        "workflow_instance_id": wf,
        "status": "APPROVED",
        "template": "Owner->DBA",
        "risk": "HIGH",
        "current_node": None,
        "current_approvers": [],
    }
    assert approved["actor"] == {"user_id": world.id("dba"), "nick_name": "dba"}


def test_reject_queues_order_rejected(world: World):
    order_id = world.file()
    wf = world.submit(order_id)
    world.act(wf, "owen", "REJECT", comment="wrong table")
    _, rejected = world.events()
    assert rejected["event"] == "order.rejected"
    assert rejected["order"]["status_code"] == "reject"
    assert rejected["workflow"]["status"] == "REJECT"
    assert rejected["workflow"]["current_node"] == "Owner"  # the node that rejected
    assert rejected["actor"] == {"user_id": world.id("owen"), "nick_name": "owen"}
    assert rejected["comment"] == "wrong table"
    world.act(wf, "owen", "REJECT")  # the retried click is answered, and is no new event
    assert world.names() == ["order.submitted", "order.rejected"]


def test_transfer_queues_order_transferred_with_the_new_approvers(world: World):
    wf = world.submit(world.file())
    world.act(wf, "owen", "TRANSFER", new_approvers=(world.id("carol"),), comment="on leave")
    _, moved = world.events()
    assert moved["event"] == "order.transferred"
    assert moved["workflow"]["current_node"] == "Owner"
    assert moved["workflow"]["current_approvers"] == [world.id("olga"), world.id("carol")]
    assert moved["actor"]["user_id"] == world.id("owen")
    assert moved["comment"] == "on leave"


def test_withdraw_queues_order_cancelled(world: World):
    order_id = world.file()
    wf = world.submit(order_id)
    world.act(wf, "alice", "CANCEL", comment="needs a WHERE")
    _, cancelled = world.events()
    assert cancelled["event"] == "order.cancelled"
    assert cancelled["order"]["status_code"] == "new"
    assert cancelled["workflow"]["status"] == "CANCEL"
    assert cancelled["workflow"]["current_node"] == "Owner"  # the node it was waiting on
    assert cancelled["actor"]["user_id"] == world.id("alice")
    assert cancelled["comment"] == "needs a WHERE"


def test_add_node_queues_order_node_added(world: World):
    with world.store.session() as s:
        node = templates.create_node(s, world.tid, "Security", [world.id("carol")]).node_id
    wf = world.submit(world.file())
    world.act(wf, "owen", "ADD_APPROVAL_NODE", node_id=node, node_position="PRE_ADD_APPROVAL_NODE")
    _, added = world.events()
    assert added["event"] == "order.node_added"
    assert added["workflow"]["current_node"] == "Security"
    assert added["workflow"]["current_approvers"] == [world.id("carol")]
    assert added["actor"]["user_id"] == world.id("owen")


def test_a_refused_act_queues_nothing_and_no_webhook_means_no_events(world: World):
    wf = world.submit(world.file())
    with pytest.raises(DmsError):
        world.act(wf, "alice", "AGREE")  # the committer: refused, its transaction rolled back
    assert world.names() == ["order.submitted"]
    with world.store.session() as s:
        webhooks.set_enabled(s, world.tid, False)
    world.act(wf, "olga", "AGREE")
    world.act(wf, "dba", "AGREE")
    assert world.names() == ["order.submitted"]


def test_a_waived_approval_queues_submitted_then_approved_by_nobody(world: World):
    with world.store.session() as s:
        rule_sets.load(
            s,
            world.tid,
            "free",
            "templates: {LOW: DBA, MIDDLE: DBA, HIGH: DBA, HIGHEST: DBA}\n"
            "rules:\n  - name: order fixes\n    when: {tables: ['ord*']}\n    risk: NONE\n",
        )
        rule_sets.assign(s, world.tid, world.instance_id, "free")
    world.submit(world.file("DELETE FROM orders WHERE id = 7"))
    submitted, approved = world.events()
    assert (submitted["event"], approved["event"]) == ("order.submitted", "order.approved")
    assert approved["actor"] is None
    assert approved["workflow"]["status"] == "APPROVED"
    assert approved["workflow"]["template"] == "No approval"


def test_approved_event_carries_the_last_approvers_comment(world: World):
    """Every act's event carries the act's comment; order.approved the final AGREE's."""
    wf = world.submit(world.file())
    world.act(wf, "olga", "AGREE")
    world.act(wf, "dba", "AGREE", comment="ship it")
    approved = world.events()[-1]
    assert approved["event"] == "order.approved"
    assert approved["comment"] == "ship it"
