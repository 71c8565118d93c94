"""Rule sets and the webhook in the console: shown as the services keep them (read-only, with
the commands that change them); the webhook and its deliveries are its tenant's ADMINs'."""

from __future__ import annotations

import pytest

from opendms.notify import webhooks
from opendms.rulebook import rule_sets
from tests.approval_world import World
from tests.conftest import Api
from tests.unit.web.admin_helpers import signed_in, world_in

STRICT = (
    "templates: {LOW: DBA, MIDDLE: DBA, HIGH: DBA, HIGHEST: DBA}\n"
    "review: {ORDER_BY_RAND: ERROR}\n"
    "rules:\n  - name: changes need the DBA\n    when: {ticket_types: [DC_COMMON]}\n"
    "    risk: HIGH\n"
)


@pytest.fixture
def world(api: Api) -> World:
    return world_in(api)


def test_rule_sets_show_who_follows_each_and_what_they_say(api: Api, world: World) -> None:
    carol = signed_in(api, world, "carol")
    listed = carol.get("/admin/rules")
    assert listed.status_code == 200
    assert "built-in" in listed.text and "opendms rules load" in listed.text
    assert listed.text.count('class="chip"') == 1  # the world's instance follows the default
    with api.store.session() as s:
        rule_sets.load(s, world.tid, "strict", STRICT)
        rule_sets.assign(s, world.tid, world.instance_id, "strict")
    listed = carol.get("/admin/rules")
    strict_row = listed.text.split(">strict</a>")[1].split("</tr>")[0]
    assert 'class="chip"' in strict_row and "<td>1</td>" in strict_row
    default_row = listed.text.split(">default</a>")[1].split("</tr>")[0]
    assert "none" in default_row
    shown = carol.get("/admin/rules/view", name="strict")
    assert shown.status_code == 200 and "changes need the DBA" in shown.text
    assert "<strong>ERROR</strong>" in shown.text  # ORDER_BY_RAND raised from its default
    assert carol.get("/admin/rules/view", name="missing").status_code == 404


def test_a_policy_that_denies_listing_instances_refuses_the_rule_sets(
    api: Api, world: World
) -> None:
    from opendms.identity import service as identity

    deny = '{"Version":"1","Statement":[{"Effect":"Deny","Action":"dms:ListInstances"}]}'
    with api.store.session() as s:
        identity.attach_policy(s, world.tid, world.users["carol"].uid, "x", deny, actor=None)
    page = signed_in(api, world, "carol").get("/admin/rules")
    assert page.status_code == 403 and "Not allowed" in page.text


def test_an_admin_sees_the_webhook_and_its_deliveries(api: Api, world: World) -> None:
    admin = signed_in(api, world, "admin")
    none = admin.get("/admin/webhooks")
    assert none.status_code == 200 and "has no webhook" in none.text
    secret = "s" * 32
    with api.store.session() as s:
        webhooks.configure(s, api.box, world.tid, "https://hooks.example.com/dms?token=t", secret)
        for _ in range(23):
            webhooks.emit(s, world.tid, "webhook.ping", {})
    page = admin.get("/admin/webhooks")
    assert "https://hooks.example.com/dms?token=t" in page.text and "Sending" in page.text
    assert secret not in page.text and "opendms webhook set" in page.text
    assert page.text.count("<td>webhook.ping</td>") == 20 and "23 in all" in page.text
    assert admin.get("/admin/webhooks", page=2).text.count("<td>webhook.ping</td>") == 3


def test_a_dba_is_refused_the_webhook(api: Api, world: World) -> None:
    with api.store.session() as s:
        webhooks.configure(s, api.box, world.tid, "https://hooks.example.com/x", "s" * 32)
    dba = signed_in(api, world, "dba")
    page = dba.get("/admin/webhooks")
    assert page.status_code == 403 and "Only an ADMIN" in page.text
    assert "hooks.example.com" not in page.text
    assert 'href="/console/admin/webhooks"' not in dba.get("/admin").text
