"""The approval flow on a real PostgreSQL metadata store: the row locks that serialise acts on
one ticket (concurrent double clicks, AGREE against REJECT against CANCEL), the append-only
trigger of the audit trail, concurrent webhook claimers, and the visibility SQL.

Races run on real threads, each with its own session and pooled connection, released together
by a barrier once every racer holds its connection; each race is repeated on fresh tickets.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from opendms.approvals import acts, flow, views
from opendms.errors import DmsError, ErrorCode
from opendms.identity.secrets import SecretBox
from opendms.notify import webhooks
from opendms.rulebook import rule_sets, templates
from opendms.store.db import Store
from opendms.store.models import (
    ApprovalEvent,
    Instance,
    Job,
    Order,
    WebhookDelivery,
    WorkflowInstance,
    utcnow,
)
from opendms.store.states import ApprovalAction
from opendms.tickets import lifecycle
from opendms.tickets import service as tickets
from tests.approval_world import World, steps

pytestmark = pytest.mark.integration

TIMEOUT = 30.0  # seconds any racer may take before the test calls it hung
ROUNDS = 4  # each race runs again on a fresh ticket
CLICKS = 8  # concurrent AGREEs of one approver


# ------------------------------------------------------------------ fixtures and helpers


@pytest.fixture
def pg_store(pg_store_url: str) -> Iterator[Store]:
    store = Store(pg_store_url)
    yield store
    store.dispose()


@pytest.fixture
def world(pg_store: Store, box: SecretBox, tmp_path: Path) -> World:
    return World.build(pg_store, box, tmp_path / "targets")


@dataclass
class Outcome:
    name: str
    value: Any = None
    error: BaseException | None = None

    @property
    def code(self) -> ErrorCode | None:
        return self.error.code if isinstance(self.error, DmsError) else None


Racer = Callable[[Callable[[], None]], Any]  # called with ``start``: wait for the others


def in_threads(*racers: tuple[str, Racer]) -> list[Outcome]:
    """Run each racer on its own thread; each calls ``start()`` when ready, and all are
    released together from there. Returns what each returned or raised."""
    barrier = threading.Barrier(len(racers))
    outcomes = [Outcome(name) for name, _ in racers]

    def start() -> None:
        barrier.wait(TIMEOUT)

    def run(out: Outcome, racer: Racer) -> None:
        try:
            out.value = racer(start)
        except BaseException as exc:  # reported to the test, whatever it is
            out.error = exc
            barrier.abort()  # nobody waits for a racer that failed before the start

    threads = [
        threading.Thread(target=run, args=(out, racer), name=name, daemon=True)
        for out, (name, racer) in zip(outcomes, racers, strict=True)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + TIMEOUT
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not [t.name for t in threads if t.is_alive()], "racers hung"
    return outcomes


def acting(world: World, wf: int, who: str, kind: str, **kw: Any) -> tuple[str, Racer]:
    """A racer making one act in a session of its own; it holds its pooled connection (and
    an open transaction) before the start, so only the act itself races."""

    def racer(start: Callable[[], None]) -> str:
        with world.store.session() as s:
            s.connection()
            start()
            return acts.act(s, world.as_(who), wf, acts.Act(kind, **kw)).status

    return f"{who}-{kind}", racer


def route_everything_to(world: World, template: str, nodes: dict[str, Sequence[str]]) -> None:
    """USER_LIST nodes naming the given people, a template running them in order, and a rule
    set sending every ticket of the instance to it."""
    with world.store.session() as s:
        for name, people in nodes.items():
            templates.create_node(s, world.tid, name, [world.users[p].user_id for p in people])
        templates.create_template(s, world.tid, template, list(nodes))
        levels = ", ".join(f"{level}: {template}" for level in ("LOW", "MIDDLE", "HIGH", "HIGHEST"))
        rule_sets.load(s, world.tid, "race", f"templates: {{{levels}}}\n")
        rule_sets.assign(s, world.tid, world.instance_id, "race")


def ids(world: World) -> dict[str, int]:
    return {name: user.user_id for name, user in world.users.items()}


def trail(world: World, wf: int) -> list[tuple[str, int | None, int | None, str]]:
    """The audit trail: (action, actor, node position, detail)."""
    with world.store.session() as s:
        return [
            (e.action, e.actor_id, e.position, e.detail)
            for e in views.events(s, world.as_("admin"), wf)
        ]


def queue(world: World, who: str, scope: str = "AS_HANDLER") -> list[int]:
    with world.store.session() as s:
        page = tickets.list_orders(s, world.as_(who), tickets.OrderFilter(scope=scope), 1, 50)
        return [o.order_id for o in page.items]


def webhook_events(world: World, order_id: int) -> list[str]:
    with world.store.session() as s:
        rows = s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.delivery_id)).all()
        return [
            r.event
            for r in rows
            if json.loads(r.payload).get("order", {}).get("order_id") == order_id
        ]


# ------------------------------------------------------------------ a. double clicks


def test_concurrent_agrees_of_one_approver_move_the_flow_exactly_one_node(world: World) -> None:
    """owen and olga are named on all three nodes: without the lock and the one-node rule, a
    burst of owen's AGREEs would approve several nodes."""
    u = ids(world)
    route_everything_to(world, "Thrice", {f"Step {i}": ("owen", "olga") for i in (1, 2, 3)})
    for _ in range(ROUNDS):
        order_id = world.file()
        wf = world.submit(order_id)
        outcomes = in_threads(*(acting(world, wf, "owen", "AGREE") for _ in range(CLICKS)))
        assert [(o.error, o.value) for o in outcomes] == [(None, "AUDITING")] * CLICKS
        d = world.detail(wf)
        assert steps(d) == [
            ("Step 1", "APPROVED", [u["owen"], u["olga"]]),
            ("Step 2", "AUDITING", [u["olga"]]),  # owen approved a node already
            ("Step 3", "WAITING", []),
        ]
        assert (d.flow.status, d.flow.current_position) == ("AUDITING", 2)
        assert d.steps[0].step.operator_id == u["owen"]
        assert d.steps[1].step.operator_id is None
        assert world.status(order_id) == "toaudit"
        assert trail(world, wf) == [
            ("SUBMIT", u["alice"], None, "template Thrice"),
            ("AGREE", u["owen"], 1, ""),
            *[("REPEAT", u["owen"], 2, "AGREE")] * (CLICKS - 1),
        ]
        # the flow goes on normally afterwards
        world.act(wf, "olga", "AGREE")
        d = world.detail(wf)
        assert [v.step.status for v in d.steps] == ["APPROVED", "APPROVED", "AUDITING"]
        assert d.current is not None and d.current.approvers == []
        assert "already approved a node" in d.current.step.note


def test_concurrent_agrees_of_two_approvers_of_one_node_approve_only_that_node(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """owen and olga may approve node 1, and both may approve node 2 too. Whoever is second
    waited behind the first: their AGREE was for node 1, which is approved, so it is answered
    as superseded and node 2 stays open. (Reaching a node is slowed down so that the second
    request is surely sent before the first commits.)"""
    u = ids(world)
    route_everything_to(
        world, "PairTwice", {"Pair": ("owen", "olga"), "Again": ("owen", "olga", "carol")}
    )
    reach = acts.reach

    def slow_reach(*args: Any) -> None:
        time.sleep(0.3)
        reach(*args)

    monkeypatch.setattr(acts, "reach", slow_reach)
    for _ in range(ROUNDS):
        order_id = world.file()
        wf = world.submit(order_id)
        outcomes = in_threads(
            acting(world, wf, "owen", "AGREE"), acting(world, wf, "olga", "AGREE")
        )
        assert [(o.error, o.value) for o in outcomes] == [(None, "AUDITING")] * 2
        d = world.detail(wf)
        winner = next(n for n in ("owen", "olga") if d.steps[0].step.operator_id == u[n])
        loser = "olga" if winner == "owen" else "owen"
        assert [v.step.status for v in d.steps] == ["APPROVED", "AUDITING"]
        assert d.steps[1].step.operator_id is None  # node 2 approved by nobody
        assert (d.flow.status, d.flow.current_position) == ("AUDITING", 2)
        assert trail(world, wf) == [
            ("SUBMIT", u["alice"], None, "template PairTwice"),
            ("AGREE", u[winner], 1, ""),
            ("SUPERSEDED", u[loser], 2, "AGREE"),
        ]
        assert world.status(order_id) == "toaudit"


def submitting(world: World, order_id: int) -> Racer:
    def racer(start: Callable[[], None]) -> int:
        with world.store.session() as s:
            s.connection()
            start()
            return flow.submit(s, world.as_("alice"), order_id).workflow_instance_id

    return racer


def test_concurrent_submissions_start_one_flow_and_a_withdrawn_one_stays_over(
    world: World,
) -> None:
    """Four submissions of one ticket at once start one flow. After a CANCEL, a resubmission
    racing an approver's AGREE on the withdrawn flow starts a new flow; the AGREE finds the
    old one over, whichever goes first."""
    for _ in range(ROUNDS):
        order_id = world.file()
        outcomes = in_threads(*((f"submit-{i}", submitting(world, order_id)) for i in range(4)))
        (won,) = [o for o in outcomes if o.error is None]
        assert [o.code for o in outcomes if o.error is not None] == [
            ErrorCode.ORDER_STATUS_INVALID
        ] * 3
        old = won.value
        with world.store.session() as s:
            flows = s.scalars(
                select(WorkflowInstance.workflow_instance_id).where(
                    WorkflowInstance.order_id == order_id
                )
            ).all()
            assert flows == [old]
            assert s.get_one(Order, order_id).workflow_instance_id == old
        assert [a for a, *_ in trail(world, old)] == ["SUBMIT"]

        world.act(old, "alice", "CANCEL")
        submitted, agreed = in_threads(
            ("submit", submitting(world, order_id)), acting(world, old, "owen", "AGREE")
        )
        assert submitted.error is None and submitted.value != old
        assert agreed.code == ErrorCode.ORDER_STATUS_INVALID, agreed.error
        assert [a for a, *_ in trail(world, old)] == ["SUBMIT", "CANCEL"]
        d = world.detail(submitted.value)
        assert [v.step.status for v in d.steps] == ["AUDITING", "WAITING"]
        assert world.status(order_id) == "toaudit"


# ------------------------------------------------------------------ b. AGREE / REJECT / CANCEL


ENDINGS = {  # the act that won -> (flow status, ticket status, node status, webhook event)
    "AGREE": ("APPROVED", "Approved", "APPROVED", "order.approved"),
    "REJECT": ("REJECT", "reject", "REJECT", "order.rejected"),
    "CANCEL": ("CANCEL", "new", "CANCEL", "order.cancelled"),
}


def test_agree_reject_and_cancel_racing_on_one_node_end_one_way(
    world: World, box: SecretBox
) -> None:
    """A one-node flow: owen agrees, olga rejects and alice (the committer) withdraws, all at
    once. Exactly one act applies; the others find the approval over. The workflow, the node,
    the ticket, its jobs, the audit trail and the webhook outbox all tell the same story."""
    u = ids(world)
    route_everything_to(world, "Single", {"Single": ("owen", "olga")})
    with world.store.session() as s:
        webhooks.configure(s, box, world.tid, "http://127.0.0.1:9/hook")
    for _ in range(ROUNDS + 1):
        order_id = world.file()
        wf = world.submit(order_id)
        outcomes = in_threads(
            acting(world, wf, "owen", "AGREE"),
            acting(world, wf, "olga", "REJECT", comment="no"),
            acting(world, wf, "alice", "CANCEL", comment="wait"),
        )
        (won,) = [o for o in outcomes if o.error is None]
        lost = [o for o in outcomes if o.error is not None]
        assert [o.code for o in lost] == [ErrorCode.ORDER_STATUS_INVALID] * 2, [
            o.error for o in lost
        ]
        who, kind = won.name.split("-")
        flow_status, ticket_status, node_status, event = ENDINGS[kind]
        d = world.detail(wf)
        assert won.value == flow_status
        assert (d.flow.status, world.status(order_id)) == (flow_status, ticket_status)
        assert [(v.step.status, v.step.operator_id) for v in d.steps] == [(node_status, u[who])]
        assert [(a, actor) for a, actor, *_ in trail(world, wf)] == [
            ("SUBMIT", u["alice"]),
            (kind, u[who]),
        ]
        with world.store.session() as s:
            jobs = s.execute(select(Job.kind, Job.state).where(Job.order_id == order_id)).all()
            assert [tuple(j) for j in jobs] == [("precheck", "succeeded")]  # nothing to run
            line = views.status_line(s, s.get_one(Order, order_id))
            assert line == {"AGREE": "approved", "REJECT": "rejected", "CANCEL": "cancelled"}[kind]
        assert webhook_events(world, order_id) == ["order.submitted", event]


# ------------------------------------------------------------------ c. the audit trail


def test_the_audit_trail_refuses_update_and_delete_on_postgresql(world: World) -> None:
    order_id = world.file()
    wf = world.submit(order_id)
    world.act(wf, "owen", "AGREE")
    for statement in (
        "UPDATE approval_events SET comment = 'rewritten'",
        "UPDATE approval_events SET action = 'AGREE' WHERE action = 'SUBMIT'",
        "DELETE FROM approval_events",
        "DELETE FROM approval_events WHERE action = 'AGREE'",
        "TRUNCATE approval_events",
    ):
        with pytest.raises(DBAPIError) as err, world.store.session() as s:
            s.execute(text(statement))
        assert "approval_events is append-only" in str(err.value.orig), statement
    # a raw statement outside the ORM is refused too
    with world.store.session() as s, pytest.raises(DBAPIError):
        s.connection().exec_driver_sql("DELETE FROM approval_events")
    with world.store.session() as s:
        assert s.scalar(select(func.count()).select_from(ApprovalEvent)) == 2
        # while appending still works
        s.add(
            ApprovalEvent(
                tid=world.tid,
                order_id=order_id,
                workflow_instance_id=wf,
                action=ApprovalAction.REPEAT,
                node_name="",
                detail="AGREE",
                comment="",
            )
        )
    assert [a for a, *_ in trail(world, wf)] == ["SUBMIT", "AGREE", "REPEAT"]


# ------------------------------------------------------------------ d. webhook claimers


def _emit(world: World, box: SecretBox, count: int, url: str) -> list[int]:
    with world.store.session() as s:
        webhooks.configure(s, box, world.tid, url)
        made = [webhooks.emit(s, world.tid, "webhook.ping", {"n": i}) for i in range(count)]
        return [d.delivery_id for d in made if d is not None]


def _claiming(world: World, box: SecretBox, policy: webhooks.Policy, now: datetime) -> Racer:
    """A claimer that keeps claiming until nothing is due; returns the ids it claimed."""

    def racer(start: Callable[[], None]) -> list[tuple[int, int]]:
        got: list[tuple[int, int]] = []
        start()
        while True:
            with world.store.session() as s:
                batch = webhooks.claim_due(s, box, policy, now)
            got += [(c.delivery_id, c.attempts) for c in batch]
            if batch:
                continue
            with world.store.session() as s:
                due = s.scalar(
                    select(func.count())
                    .select_from(WebhookDelivery)
                    .where(
                        WebhookDelivery.state == "pending",
                        WebhookDelivery.next_attempt_at <= now,
                    )
                )
            if not due:
                return got

    return racer


def test_concurrent_claimers_claim_every_delivery_exactly_once(
    world: World, box: SecretBox
) -> None:
    made = _emit(world, box, 120, "http://127.0.0.1:9/hook")
    assert len(made) == 120
    policy = webhooks.Policy(batch=10)
    now = utcnow() + timedelta(seconds=1)
    for attempt in (1, 2):
        outcomes = in_threads(
            *((f"claimer-{i}", _claiming(world, box, policy, now)) for i in (1, 2))
        )
        assert [o.error for o in outcomes] == [None, None]
        claimed = [c for o in outcomes for c in o.value]
        assert sorted(claimed) == [(d, attempt) for d in made]  # each once, none missed
        with world.store.session() as s:
            rows = s.scalars(select(WebhookDelivery)).all()
            assert {(r.state, r.attempts) for r in rows} == {("sending", attempt)}
            # every attempt fails at the same instant: all retries fall due at the same time
            for r in rows:
                webhooks.record(
                    s,
                    webhooks.Claimed(r.delivery_id, r.event, "", "", r.payload, attempt),
                    policy,
                    now,
                    status=500,
                    error="HTTP 500",
                )
        with world.store.session() as s:
            assert len(set(s.scalars(select(WebhookDelivery.next_attempt_at)))) == 1
        now += policy.retry_after(attempt) + timedelta(seconds=1)


def test_a_result_recorded_after_the_lease_ran_out_leaves_the_new_claim_alone(
    world: World, box: SecretBox
) -> None:
    """A deliverer stalls past its lease; another claims the delivery again. The first one's
    late result must not end (or reschedule) the attempt the second one is making."""
    (made,) = _emit(world, box, 1, "http://127.0.0.1:9/hook")
    policy = webhooks.Policy(lease_seconds=60)
    t0 = utcnow() + timedelta(seconds=1)
    with world.store.session() as s:
        (stalled,) = webhooks.claim_due(s, box, policy, t0)
    later = t0 + timedelta(seconds=61)
    with world.store.session() as s:
        (taken,) = webhooks.claim_due(s, box, policy, later)
    assert (stalled.delivery_id, stalled.attempts, taken.attempts) == (made, 1, 2)
    for status in (200, 500):
        with world.store.session() as s:
            webhooks.record(s, stalled, policy, later, status=status, error="late")
        with world.store.session() as s:
            row = s.get_one(WebhookDelivery, made)
            assert (row.state, row.attempts, row.lease_until) == (
                "sending",
                2,
                later + timedelta(seconds=60),
            )
    with world.store.session() as s:
        webhooks.record(s, taken, policy, later, status=200, error="")
    with world.store.session() as s:
        row = s.get_one(WebhookDelivery, made)
        assert (row.state, row.attempts, row.last_status) == ("delivered", 2, 200)


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog of 5 drops concurrent connects for a second
    daemon_threads = True


class _Receiver(BaseHTTPRequestHandler):
    """Answers 500 to the first POST of each odd delivery id, 200 otherwise."""

    seen: Counter[int]
    lock: threading.Lock

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        delivery = int(self.headers["X-OpenDMS-Delivery"])
        with self.lock:
            self.seen[delivery] += 1
            fail = delivery % 2 == 1 and self.seen[delivery] == 1
        self.send_response(500 if fail else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_two_deliverers_post_each_event_once_and_retry_failures_once(
    world: World, box: SecretBox
) -> None:
    seen: Counter[int] = Counter()
    handler = type("Receiver", (_Receiver,), {"seen": seen, "lock": threading.Lock()})
    server = _Server(("127.0.0.1", 0), handler)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        made = _emit(world, box, 40, f"http://127.0.0.1:{server.server_address[1]}/hook")
        clock = [utcnow() + timedelta(seconds=1)]
        policy = webhooks.Policy(batch=10, timeout_seconds=5)

        def delivering(start: Callable[[], None]) -> int:
            deliverer = webhooks.Deliverer(world.store, box, policy, clock=lambda: clock[0])

            async def drain() -> int:
                sent = 0
                while n := await deliverer.run_once():
                    sent += n
                return sent

            start()
            return asyncio.run(drain())

        first = in_threads(("deliverer-1", delivering), ("deliverer-2", delivering))
        assert [o.error for o in first] == [None, None]
        assert sum(o.value for o in first) == len(made)
        assert seen == Counter({d: 1 for d in made})
        clock[0] += timedelta(minutes=1)  # the failed half is due again
        again = in_threads(("deliverer-1", delivering), ("deliverer-2", delivering))
        assert [o.error for o in again] == [None, None]
        odd = [d for d in made if d % 2]
        assert sum(o.value for o in again) == len(odd)
        assert seen == Counter({d: 2 if d % 2 else 1 for d in made})
        with world.store.session() as s:
            rows = s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.delivery_id))
            assert [(r.delivery_id, r.state, r.attempts, r.last_status) for r in rows] == [
                (d, "delivered", 2 if d % 2 else 1, 200) for d in made
            ]
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------ e. plain path, who sees what


def test_submit_agree_agree_and_the_handler_queues_on_postgresql(world: World) -> None:
    u = ids(world)
    everyone = list(world.users)
    order_id = world.file()
    wf = world.submit(order_id)
    d = world.detail(wf)
    assert (d.flow.template_name, d.flow.risk) == ("Owner->DBA", "HIGH")
    assert steps(d) == [("Owner", "AUDITING", [u["owen"], u["olga"]]), ("DBA", "WAITING", [])]
    waiting = {who: queue(world, who) for who in everyone}
    assert waiting == {
        "admin": [],  # the node has approvers: nothing for an administrator to unblock
        "dba": [],  # the DBA node is not reached yet
        "alice": [],
        "owen": [order_id],
        "olga": [order_id],
        "carol": [],
    }
    world.act(wf, "olga", "AGREE", comment="fine")
    assert steps(world.detail(wf))[1] == ("DBA", "AUDITING", [u["dba"]])
    waiting = {who: queue(world, who) for who in everyone}
    assert waiting == {w: [order_id] if w == "dba" else [] for w in everyone}
    world.act(wf, "dba", "AGREE")
    d = world.detail(wf)
    assert (d.flow.status, world.status(order_id)) == ("APPROVED", "Approved")
    # approved: now waiting on the DBA of its instance, who runs it
    waiting = {who: queue(world, who) for who in everyone}
    assert waiting == {w: [order_id] if w == "dba" else [] for w in everyone}
    assert [(a, actor) for a, actor, *_ in trail(world, wf)] == [
        ("SUBMIT", u["alice"]),
        ("AGREE", u["olga"]),
        ("AGREE", u["dba"]),
    ]
    with world.store.session() as s:
        assert views.status_line(s, s.get_one(Order, order_id)) == "approved"


def test_visibility_scopes_on_postgresql(world: World) -> None:
    u = ids(world)
    mine = world.file()
    with world.store.session() as s:  # carol is a related user of this one only
        related = tickets.create_order(
            s,
            world.as_("alice"),
            "DC_COMMON",
            {
                "DbItemList": [{"DbId": world.db_id}],
                "EstimateAffectRows": 1,
                "SqlType": "TEXT",
                "ExecSQL": "DELETE FROM orders WHERE id = 2",
            },
            comment="related",
            related_user_ids=[u["carol"]],
        ).order_id
    world.may_change("owen")
    by_owen = world.file(who="owen")
    assert queue(world, "alice", "AS_COMMITTER") == [related, mine]
    assert queue(world, "owen", "AS_COMMITTER") == [by_owen]
    assert queue(world, "carol", "AS_Related") == [related]
    # an owner of the database is not among who may see a ticket until asked to approve it
    assert queue(world, "olga", "AS_OWNER") == []
    assert queue(world, "dba", "AS_OWNER") == [by_owen, related, mine]  # runs the instance
    assert queue(world, "admin", "AS_ADMIN") == [by_owen, related, mine]
    assert queue(world, "carol", "AS_OWNER") == []
    with pytest.raises(DmsError) as err:
        queue(world, "carol", "AS_ADMIN")
    assert err.value.code == ErrorCode.PERMISSION_DENIED

    wf = world.submit(mine)
    world.act(wf, "owen", "TRANSFER", new_approvers=(u["carol"],))
    assert queue(world, "carol") == [mine]  # asked now: sees it, and it waits on her
    assert queue(world, "olga", "AS_OWNER") == [mine]  # asked too, as an owner
    world.act(wf, "carol", "AGREE")
    assert queue(world, "carol") == []
    assert world.detail(wf, "carol").flow.current_position == 2
    with world.store.session() as s:  # owen was asked once: he still sees the ticket
        tickets.get_order(s, world.as_("owen"), mine)
    with pytest.raises(DmsError) as err:
        world.detail(world.submit(by_owen, "owen"), "carol")
    assert err.value.code == ErrorCode.WORKFLOW_NOT_FOUND


def test_a_stalled_node_waits_on_the_administrators_on_postgresql(world: World) -> None:
    with world.store.session() as s:
        s.get_one(Instance, world.instance_id).dba_user_id = None
    order_id = world.file()
    wf = world.submit(order_id)
    assert queue(world, "admin") == []
    world.act(wf, "owen", "AGREE")
    assert queue(world, "admin") == [order_id]  # the DBA node resolved to nobody
    assert queue(world, "dba") == [] and queue(world, "owen") == []
    world.act(wf, "admin", "TRANSFER", new_approvers=(world.users["dba"].user_id,))
    assert queue(world, "admin") == [] and queue(world, "dba") == [order_id]
    world.act(wf, "dba", "AGREE")
    assert world.status(order_id) == "Approved"


# ------------------------------------------------------------------ lock order


def test_close_order_and_an_approval_act_do_not_deadlock(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CloseOrder locks the ticket's row, then its flow's; an act must take them in the same
    order. Forced interleaving: the AGREE reaches its ticket lock, CloseOrder takes the ticket
    first, then the AGREE goes on. Locking the flow first in ``acts.act`` (as 87e0d5a did)
    deadlocks here: PostgreSQL aborts one of the two with DeadlockDetected, which the API
    answers as ServiceUnavailable, instead of one applying and the other finding the ticket
    changed."""
    order_id = world.file()
    wf = world.submit(order_id)
    agree_at_ticket, close_has_ticket = threading.Event(), threading.Event()
    real = tickets.get_order

    def get_order(s: Any, caller: Any, oid: int, *, lock: bool = False) -> Order:
        me = threading.current_thread().name
        if lock and me == "agree":  # the act is about to lock the ticket
            agree_at_ticket.set()
            close_has_ticket.wait(5)
        if lock and me == "close":
            agree_at_ticket.wait(5)
        found = real(s, caller, oid, lock=lock)
        if lock and me == "close":
            close_has_ticket.set()
        return found

    monkeypatch.setattr(tickets, "get_order", get_order)

    def closing(start: Callable[[], None]) -> str:
        with world.store.session() as s:
            s.connection()
            start()
            return lifecycle.close(s, world.as_("alice"), order_id, "not needed").status_code

    _, agreeing = acting(world, wf, "owen", "AGREE")
    outcomes = in_threads(("agree", agreeing), ("close", closing))
    errors = {o.name: o.error for o in outcomes if not isinstance(o.error, DmsError | None)}
    assert not errors, f"database errors instead of an answer: {errors}"
    agree, close = outcomes
    assert close.value == "closed"
    assert agree.code == ErrorCode.ORDER_STATUS_INVALID  # it found the approval cancelled
    assert world.status(order_id) == "closed" and world.detail(wf).flow.status == "CANCEL"
    assert [a for a, *_ in trail(world, wf)] == ["SUBMIT", "CLOSE"]
