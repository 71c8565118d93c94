"""The ticket page in process: it renders for tickets of every kind at every stage for
everyone who may see them, with the buttons ``opendms.abilities`` allows and no other; a
form sent twice acts once; a refused act says why beside its field; the progress fragment
polls while the work goes and stops when it ends; a ticket one may not see is not found."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from opendms import abilities
from opendms.errors import DmsError
from opendms.execution import service as execution
from opendms.store.models import ApprovalEvent
from opendms.tickets import service as tickets
from tests.approval_world import World
from tests.ticket_stages import LATER, approve_all, build_stages
from tests.unit.web.order.conftest import ONCE, Console

PEOPLE = ("admin", "dba", "alice", "owen", "olga", "carol")
# the form each ability shows (``_order_acts.html``)
FORMS = {
    "submit": ("submit",),
    "decide": ("approve", "reject"),
    "withdraw": ("withdraw",),
    "transfer": ("transfer",),
    "execute": ("execute",),
    "pause": ("pause",),
    "resume": ("resume",),
    "close": ("close",),
    "recheck": ("recheck",),
    "waive_row_check": ("waive",),
    "design": ("design",),
    "compare": ("compare",),
    "run_stages": ("stage",),
}
ACT_FORM = re.compile(r'action="/console/orders/\d+/(\w+)"')


def _forms(html: str) -> set[str]:
    return set(ACT_FORM.findall(html))


def _events(world: World, order_id: int) -> list[tuple[str, int, str]]:
    with world.store.session() as s:
        return [
            (e.action, e.actor_id, e.comment)
            for e in s.scalars(
                select(ApprovalEvent)
                .where(ApprovalEvent.order_id == order_id)
                .order_by(ApprovalEvent.event_id)
            )
        ]


def test_every_stage_renders_for_everyone_who_may_see_it_with_their_buttons(
    console: Console,
) -> None:
    world = console.world
    stages = build_stages(world)
    seen = 0
    for who in PEOPLE:
        person = console.as_(who)
        caller = world.as_(who)
        for stage, order_id in stages.items():
            page = person.get(f"/orders/{order_id}")
            with world.store.session() as s:
                try:
                    order = tickets.get_order(s, caller, order_id)
                except DmsError:
                    assert page.status_code == 404, (stage, who)
                    assert "Not found" in page.text
                    continue
                may = abilities.of(s, caller, order)
            assert page.status_code == 200, (stage, who, page.text[-2000:])
            seen += 1
            expected = {f for name, forms in FORMS.items() if getattr(may, name) for f in forms}
            assert _forms(page.text) == expected, (stage, who)
            parts = ("progress", "precheck", *(("stages",) if "design" in stage else ()))
            for part in parts:
                fragment = person.get(f"/orders/{order_id}/{part}")
                assert fragment.status_code == 200, (stage, who, part)
                assert "Traceback" not in fragment.text
    assert seen > len(stages) * 2  # most tickets are seen by several people


def test_a_form_sent_twice_acts_once(console: Console) -> None:
    world = console.world
    order_id = world.file("UPDATE orders SET status = 'paid' WHERE id = 7")
    world.submit(order_id)
    owen = console.as_("owen")
    page = owen.get(f"/orders/{order_id}")
    form = re.search(rf'action="/console/orders/{order_id}/approve".*?</form>', page.text, re.S)
    assert form
    once = ONCE.search(form.group(0))
    assert once
    first = owen.post(f"/orders/{order_id}/approve", {"once": once.group(1)})
    second = owen.post(f"/orders/{order_id}/approve", {"once": once.group(1)})
    assert first.status_code == second.status_code == 303
    assert "notice=Approved" in first.headers["location"]
    assert "notice=Already+sent" in second.headers["location"]
    acts = [a for a, _, _ in _events(world, order_id)]
    assert acts == ["SUBMIT", "AGREE"]  # no second AGREE, and no REPEAT either
    shown = owen.get(second.headers["location"].removeprefix("/console"))
    assert "Already sent: it was done once, not twice." in shown.text


def test_reject_with_a_comment_shows_it_in_the_timeline(console: Console) -> None:
    world = console.world
    order_id = world.file("UPDATE orders SET status = 'paid' WHERE id = 7")
    world.submit(order_id)
    olga = console.as_("olga")
    done = olga.act(order_id, "reject", comment="Wrong customer: ask finance first.")
    assert done.status_code == 303
    assert world.status(order_id) == "reject"
    assert _events(world, order_id)[-1] == (
        "REJECT",
        world.id("olga"),
        "Wrong customer: ask finance first.",
    )
    page = console.as_("alice").get(f"/orders/{order_id}")
    assert page.text.count("Wrong customer: ask finance first.") == 2  # the node and the trail
    assert "olga" in page.text and "Rejected" in page.text
    assert _forms(page.text) == set()  # a rejected ticket: nothing left to do


def test_a_refused_act_says_why_beside_its_field_and_keeps_what_was_typed(
    console: Console,
) -> None:
    world = console.world
    order_id = world.file("UPDATE orders SET status = 'paid' WHERE id = 7")
    world.submit(order_id)
    long = "x" * 5000
    refused = console.as_("owen").act(order_id, "reject", comment=long)
    assert refused.status_code == 400
    assert 'id="reject-comment-error"' in refused.text
    assert 'aria-describedby="reject-comment-error"' in refused.text
    assert f">{long}</textarea>" in refused.text
    assert '<details class="act" open>' in refused.text
    assert world.status(order_id) == "toaudit"

    approve_all(world, order_id)
    alice = console.as_("alice")
    refused = alice.act(order_id, "execute", start="next tuesday")
    assert refused.status_code == 400
    assert 'id="execute-start-error"' in refused.text and "ActionDetail.startTime" in refused.text
    assert 'value="next tuesday"' in refused.text
    assert world.status(order_id) == "Approved"


def test_progress_polls_while_the_work_goes_and_stops_when_it_ends(console: Console) -> None:
    world = console.world
    order_id = world.file(
        "UPDATE orders SET status = 'paid' WHERE customer_id = 1", EstimateAffectRows=25
    )
    world.submit(order_id)
    approve_all(world, order_id)
    alice = console.as_("alice")
    started = alice.act(order_id, "execute", backup="on")
    assert started.status_code == 303 and "Execution+started" in started.headers["location"]
    polled = alice.get(f"/orders/{order_id}/progress", **{"HX-Request": "true"})
    assert polled.status_code == 200
    assert 'hx-trigger="every 1s"' in polled.text and "Queued" in polled.text
    assert "0 of 25" in polled.text  # rows against the precheck's count

    world.run_jobs()
    ended = alice.get(f"/orders/{order_id}/progress", **{"HX-Request": "true"})
    assert ended.status_code == 286 and ended.headers["hx-refresh"] == "true"
    page = alice.get(f"/orders/{order_id}")
    assert "hx-trigger" not in page.text.split('id="progress"', 1)[1].split("</section>", 1)[0]
    assert "Done" in page.text and "25 of 25" in page.text and "100%" in page.text
    assert "succeeded: 25 rows" in page.text  # the SQL job's log
    assert "Rollback script 1" in page.text  # the backup it saved, as a download


def test_a_scheduled_execution_is_polled_slowly_and_says_when_it_starts(
    console: Console,
) -> None:
    world = console.world
    order_id = world.file("UPDATE orders SET status = 'paid' WHERE id = 7")
    world.submit(order_id)
    approve_all(world, order_id)
    with world.store.session() as s:
        execution.execute(s, world.as_("alice"), order_id, execution.checked_plan(start=LATER))
    page = console.as_("alice").get(f"/orders/{order_id}")
    assert 'hx-trigger="every 5s"' in page.text
    assert "It starts at <time>2099-01-01 00:00:00</time> UTC." in page.text
    assert "Scheduled: it starts at 2099-01-01 00:00:00 (UTC)." in page.text


def test_someone_who_may_not_see_the_ticket_finds_nothing_there(console: Console) -> None:
    world = console.world
    order_id = world.file("UPDATE orders SET status = 'paid' WHERE id = 7")
    carol = console.as_("carol")
    for path in ("", "/progress", "/precheck"):
        assert carol.get(f"/orders/{order_id}{path}").status_code == 404
    alice_page = console.as_("alice").get(f"/orders/{order_id}")
    once = ONCE.search(alice_page.text)
    assert once
    closing = carol.post(f"/orders/{order_id}/close", {"once": once.group(1), "reason": "mine"})
    assert closing.status_code == 404 and "Not found" in closing.text
    assert world.status(order_id) == "new"
    assert carol.get("/orders/999999").status_code == 404


def test_a_large_ticket_is_shown_in_parts(console: Console) -> None:
    world = console.world
    statements = [f"UPDATE orders SET status = 'paid' WHERE id = {i}" for i in range(1, 26)]
    padding = "-- " + "x" * 110_000 + "\n"
    order_id = world.file(padding + ";\n".join(statements), EstimateAffectRows=25)
    alice = console.as_("alice")
    first = alice.get(f"/orders/{order_id}")
    assert first.status_code == 200
    assert re.search(r"The first 100,000 of [\d,]+ characters\.", first.text)
    assert "Download the whole SQL" in first.text
    assert "page 1 of 2" in first.text

    def listed(html: str) -> str:
        return html.split("Statements", 1)[1].split("</table>", 1)[0]

    ids = re.compile(r'<span class="mi">(\d+)</span>')
    assert [int(i) for i in ids.findall(listed(first.text))] == list(range(1, 21))
    second = alice.get(f"/orders/{order_id}?page=2")
    assert [int(i) for i in ids.findall(listed(second.text))] == list(range(21, 26))


@pytest.mark.parametrize("page_param", ["0", "-1", "x", "9" * 30])
def test_a_bad_page_number_shows_the_first_page(console: Console, page_param: str) -> None:
    world = console.world
    order_id = world.file("UPDATE orders SET status = 'paid' WHERE id = 7")
    shown = console.as_("alice").get(f"/orders/{order_id}?page={page_param}")
    assert shown.status_code == 200


def test_the_precheck_fragment_reloads_the_page_once_the_precheck_ends(
    console: Console,
) -> None:
    world = console.world
    with world.store.session() as s:
        order_id = tickets.create_order(
            s,
            world.as_("alice"),
            "DC_COMMON",
            {
                "DbItemList": [{"DbId": world.db_id}],
                "SqlType": "TEXT",
                "ExecSQL": "UPDATE orders SET status = 'paid' WHERE id = 7",
                "EstimateAffectRows": 1,
            },
            comment="fix",
        ).order_id
    alice = console.as_("alice")
    page = alice.get(f"/orders/{order_id}")
    assert f'hx-get="/console/orders/{order_id}/precheck"' in page.text
    assert "Its precheck is running." in page.text and "submit" not in _forms(page.text)
    running = alice.get(f"/orders/{order_id}/precheck", **{"HX-Request": "true"})
    assert running.status_code == 200 and "The precheck is running" in running.text
    world.run_jobs()
    done = alice.get(f"/orders/{order_id}/precheck", **{"HX-Request": "true"})
    assert done.status_code == 286 and done.headers["hx-refresh"] == "true"
    assert "submit" in _forms(alice.get(f"/orders/{order_id}").text)


def test_transfer_pause_resume_and_close_through_their_forms(console: Console) -> None:
    world = console.world
    order_id = world.file("UPDATE orders SET status = 'paid' WHERE id = 7")
    world.submit(order_id)
    owen = console.as_("owen")
    page = owen.get(f"/orders/{order_id}")
    assert f'<option value="{world.id("carol")}">carol' in page.text  # who it may go to
    moved = owen.act(order_id, "transfer", new_approver=str(world.id("carol")), comment="on leave")
    assert moved.status_code == 303 and "notice=Transferred" in moved.headers["location"]
    carol = console.as_("carol")
    assert {"approve", "reject", "transfer"} <= _forms(carol.get(f"/orders/{order_id}").text)
    assert "approve" not in _forms(owen.get(f"/orders/{order_id}").text)
    assert carol.act(order_id, "approve").status_code == 303
    approve_all(world, order_id)

    alice = console.as_("alice")
    assert alice.act(order_id, "execute", start="2099-01-01T00:00").status_code == 303
    assert "It starts at <time>2099-01-01 00:00:00</time>" in alice.get(f"/orders/{order_id}").text
    paused = alice.act(order_id, "pause")
    assert paused.status_code == 303 and "notice=Paused" in paused.headers["location"]
    page = alice.get(f"/orders/{order_id}")
    assert "resume" in _forms(page.text) and "pause" not in _forms(page.text)
    assert "Its execution is paused" in page.text
    assert alice.act(order_id, "resume").status_code == 303
    assert "pause" in _forms(alice.get(f"/orders/{order_id}").text)
    closed = alice.act(order_id, "close", reason="the customer paid in cash")
    assert closed.status_code == 303
    page = alice.get(f"/orders/{order_id}")
    assert "Closed: the customer paid in cash" in page.text and _forms(page.text) == set()
    assert world.status(order_id) == "closed"


def test_an_export_runs_from_its_page_and_its_file_is_offered(console: Console) -> None:
    world = console.world
    order_id = world.export("SELECT id, status FROM orders WHERE customer_id = 1", rows=25)
    world.submit(order_id)
    approve_all(world, order_id)
    alice = console.as_("alice")
    page = alice.get(f"/orders/{order_id}")
    assert "Waiting for alice (the committer) to export it." in page.text
    assert "<option>JSON</option>" in page.text
    started = alice.act(order_id, "execute", file_type="JSON", encoding="UTF8")
    assert started.status_code == 303 and "notice=Export+started" in started.headers["location"]
    polled = alice.get(f"/orders/{order_id}/progress", **{"HX-Request": "true"})
    assert polled.status_code == 200 and 'hx-trigger="every 1s"' in polled.text
    world.run_jobs()
    assert alice.get(f"/orders/{order_id}/progress", **{"HX-Request": "true"}).status_code == 286
    page = alice.get(f"/orders/{order_id}")
    link = re.search(r'<a class="button primary" href="([^"]+)">Download the export</a>', page.text)
    assert link, page.text
    download = console.client.get(html.unescape(link.group(1)).removeprefix("http://testserver"))
    assert download.status_code == 200 and download.content[:2] == b"PK"  # the zip
