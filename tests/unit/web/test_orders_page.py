"""The ticket list page (/console/orders) through the app, signed in with real console
sessions as the approval world's people: what each may see, every filter, paging, htmx's
results-only answers, and a message beside a filter that makes no sense (never an error
page); the home page's way there."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import update

from opendms.identity import service as identity
from opendms.identity import sessions
from opendms.store.models import Order, utcnow
from tests.approval_world import World
from tests.conftest import Api

PASSWORD = "a long enough password"
RESULTS_ONLY = {"hx-request": "true", "hx-target": "orders-results"}


@dataclass
class Site:
    api: Api
    world: World
    cookies: dict[str, str]

    def get(self, who: str, path: str = "/console/orders", **headers: str) -> Any:
        resp = self.api.client.get(
            path,
            headers={"cookie": f"odms_session={self.cookies[who]}", **headers},
            follow_redirects=False,
        )
        assert "Traceback" not in resp.text
        return resp

    def listed(self, who: str, query: str = "", **headers: str) -> list[int]:
        resp = self.get(who, f"/console/orders{query}", **headers)
        assert resp.status_code == 200, resp.text
        return ticket_ids(resp.text)


def ticket_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<a href="/console/orders/(\d+)">#\1</a>', page)]


def note(page: str, name: str) -> str:
    """The message beside filter ``name`` (empty when there is none)."""
    found = re.search(rf'<div id="note-{name}" class="filter-note"[^>]*>(.*?)</div>', page, re.S)
    assert found is not None, f"no note for {name}"
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


@pytest.fixture
def site(make_api: Callable[..., Api]) -> Site:
    api = make_api()
    world = World.build(api.store, api.box, api.sqlite_targets)
    cookies = {}
    with api.store.session() as s:
        for name in ("admin", "dba", "alice", "carol", "owen"):
            uid = world.users[name].uid
            sessions.set_password(s, uid, PASSWORD)
            signed = sessions.sign_in(
                s, uid, PASSWORD, client_host="testclient", user_agent="pytest", now=utcnow()
            )
            cookies[name] = signed.token
    return Site(api, world, cookies)


def test_each_person_sees_what_they_may(site: Site) -> None:
    w = site.world
    alices = [w.file(), w.file()]
    carols = w.file(who="carol")
    assert site.listed("alice") == sorted(alices, reverse=True)  # "Mine" by default
    assert site.listed("carol") == [carols]
    # the scope picked in the form
    assert site.listed("carol", "?scope=AS_Related") == []
    with site.api.store.session() as s:
        s.execute(
            update(Order)
            .where(Order.order_id == alices[0])
            .values(related_user_ids=f",{w.id('carol')},")
        )
    assert site.listed("carol", "?scope=AS_Related") == [alices[0]]
    everyone = sorted([*alices, carols], reverse=True)
    assert site.listed("admin", "?scope=AS_ADMIN") == everyone
    assert site.listed("dba", "?scope=AS_OWNER") == everyone  # the instance's DBA
    # owning the database is no right to see tickets nobody asked the owner about
    assert site.listed("owen", "?scope=AS_OWNER") == []
    # only administrators are offered everyone's tickets
    assert 'value="AS_ADMIN"' in site.get("admin").text
    assert 'value="AS_ADMIN"' not in site.get("alice").text


def test_everyone_s_tickets_asked_by_a_user_is_a_message_beside_the_scope(site: Site) -> None:
    mine = site.world.file()
    site.world.file(who="carol")
    resp = site.get("alice", "/console/orders?scope=AS_ADMIN")
    assert resp.status_code == 200
    assert "AS_ADMIN is for administrators. Showing your own tickets." in note(resp.text, "scope")
    assert ticket_ids(resp.text) == [mine]
    assert note(resp.text, "type") == ""


def test_waiting_for_me_and_the_home_page_link_to_it(site: Site) -> None:
    w = site.world
    waiting = w.file()
    w.submit(waiting)  # now on the owners owen and olga
    w.file()  # new: waits on nobody
    assert site.listed("owen", "?scope=AS_HANDLER") == [waiting]
    assert site.listed("alice", "?scope=AS_HANDLER") == []
    home = site.get("owen", "/console/")
    assert home.status_code == 200
    assert 'href="/console/orders?scope=AS_HANDLER"' in home.text
    assert f'href="/console/orders/{waiting}"' in home.text  # the home page's own table


def test_type_status_text_and_time_filters(site: Site) -> None:
    w = site.world
    common = w.file("DELETE FROM orders WHERE id = 1")
    chunk = w.file("DELETE FROM orders WHERE customer_id = 7", kind="DC_CHUNK")
    submitted = w.file("UPDATE customers SET name = 'x' WHERE id = 3")
    w.submit(submitted)
    assert site.listed("alice", "?type=DC_CHUNK") == [chunk]
    assert site.listed("alice", "?type=DATA_CORRECT") == [submitted, chunk, common]
    assert site.listed("alice", "?type=DATA_EXPORT") == []
    assert site.listed("alice", "?status=toaudit") == [submitted]
    assert site.listed("alice", "?status=TOAUDIT") == [submitted]  # any case
    assert site.listed("alice", "?status=new") == [chunk, common]
    assert site.listed("alice", "?status=running") == [submitted, chunk, common]
    assert site.listed("alice", "?status=finished") == []
    assert site.listed("alice", "?q=customer_id") == [chunk]
    assert site.listed("alice", f"?q={common}") == [common]  # a ticket's number
    with site.api.store.session() as s:
        s.execute(
            update(Order)
            .where(Order.order_id == common)
            .values(created_at=utcnow().replace(year=2025, month=3, day=10, hour=23))
        )
    assert site.listed("alice", "?since=2025-03-10&until=2025-03-10") == [common]  # the day
    assert site.listed("alice", "?until=2025-03-10+22:59") == []
    assert site.listed("alice", "?since=2025-03-11") == [submitted, chunk]
    assert site.listed("alice", "?until=9999-12-31") == [submitted, chunk, common]
    both = site.get("alice", "/console/orders?type=DC_COMMON&status=new&q=orders")
    assert ticket_ids(both.text) == [common]
    # the form shows the filters it applied
    assert '<option value="DC_COMMON" selected>' in both.text
    assert '<option value="new" selected>' in both.text
    assert 'name="q" type="search" value="orders"' in both.text


def test_the_database_picker_and_filter(site: Site) -> None:
    w = site.world
    made = w.file()
    page = site.get("alice")
    assert f'<option value="{w.db_id}">' in page.text  # the picker lists the database
    assert site.listed("alice", f"?db={w.db_id}") == [made]
    gone = site.get("alice", f"/console/orders?db={w.db_id + 100}")
    assert gone.status_code == 200
    assert note(gone.text, "db") == f"No database {w.db_id + 100} here."
    assert ticket_ids(gone.text) == [made]  # the filter is left out, not the list
    other_tenant = site.get("admin", "/console/orders?db=abc")
    assert note(other_tenant.text, "db") == "A database is chosen by its id, a number."


def test_a_user_whose_policy_forbids_searching_databases_types_an_id(site: Site) -> None:
    w = site.world
    made = w.file()
    deny = '{"Version":"1","Statement":[{"Effect":"Deny","Action":"dms:SearchDatabase"}]}'
    with site.api.store.session() as s:
        identity.attach_policy(s, w.tid, w.users["alice"].uid, "no-search", deny, actor=None)
    page = site.get("alice")
    assert '<input id="f-db" name="db" inputmode="numeric"' in page.text
    assert site.listed("alice", f"?db={w.db_id}") == [made]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("?since=yesterday", "since", "Write a date as YYYY-MM-DD"),
        ("?until=2025-13-01", "until", "Write a date as YYYY-MM-DD"),
        ("?since=2025-03-02&until=2025-03-01", "until", "before the “from” date"),
        ("?status=lost", "status", "There is no status 'lost'."),
        ("?type=DC_NOPE", "type", "There is no ticket type 'DC_NOPE'."),
        ("?scope=AS_EVERYBODY", "scope", "There is no list 'AS_EVERYBODY'"),
        ("?size=7", "size", "Show 10, 20, 50, 100 tickets a page."),
        ("?q=" + "x" * 257, "q", "Search for at most 256 characters."),
    ],
)
def test_a_filter_that_makes_no_sense_is_named_beside_it_and_left_out(
    site: Site, query: str, field: str, message: str
) -> None:
    made = site.world.file()
    resp = site.get("alice", "/console/orders" + query)
    assert resp.status_code == 200
    assert message in note(resp.text, field)
    assert ticket_ids(resp.text) == [made]  # the rest of the list as if it were not given
    assert 'role="alert"' in resp.text


def test_paging_keeps_the_filters_and_a_bad_page_is_the_first(site: Site) -> None:
    w = site.world
    made = sorted((w.file() for _ in range(12)), reverse=True)
    first = site.get("alice", "/console/orders?size=10&type=DC_COMMON")
    assert ticket_ids(first.text) == made[:10]
    assert "12 in all · page 1 of 2" in first.text
    following = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert following is not None
    link = following.group(1).replace("&amp;", "&")
    assert "page=2" in link and "size=10" in link and "type=DC_COMMON" in link
    assert site.listed("alice", link.removeprefix("/console/orders")) == made[10:]
    assert site.listed("alice", "?size=10&page=2&scope=AS_COMMITTER") == made[10:]
    bad = site.get("alice", "/console/orders?page=-3")
    assert "There is no page '-3'; here is the first." in html.unescape(bad.text)
    assert ticket_ids(bad.text) == made
    past = site.get("alice", "/console/orders?size=10&page=9")
    assert "Page 9 is past the end of these 12 tickets." in past.text


def test_htmx_gets_the_results_alone_and_the_address_to_show(site: Site) -> None:
    w = site.world
    made = w.file()
    resp = site.get("alice", "/console/orders?status=new&type=&q=&since=bad", **RESULTS_ONLY)
    assert resp.status_code == 200
    assert "<html" not in resp.text and "<form" not in resp.text
    assert '<section id="orders-results"' in resp.text
    assert ticket_ids(resp.text) == [made]
    # each filter's note comes along, swapped beside its field out of band
    for name in ("scope", "type", "status", "db", "since", "until", "q", "size"):
        assert f'<div id="note-{name}" class="filter-note" hx-swap-oob="true">' in resp.text
    assert "Write a date as YYYY-MM-DD" in note(resp.text, "since")
    # the address bar: the filters applied, without the empty or refused ones
    assert resp.headers["hx-push-url"] == "/console/orders?status=new"
    # going back in history asks for the whole page
    restore = site.get(
        "alice",
        "/console/orders?status=new",
        **RESULTS_ONLY,
        **{"hx-history-restore-request": "true"},
    )
    assert "<form" in restore.text and "hx-swap-oob" not in restore.text


def test_signed_out_the_list_leads_to_the_sign_in_page(site: Site) -> None:
    resp = site.api.client.get("/console/orders?status=new", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/console/sign-in?next=")
