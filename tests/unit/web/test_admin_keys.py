"""My access keys in the console: a key's secret is shown in the answer that created it and
never again; disabling one stops it at once; the identity service's rules decide whose keys
one may touch, under the RAM action that reads one's own user."""

from __future__ import annotations

import json
import re

import pytest

from opendms.identity import service as identity
from opendms.store.models import AccessKey
from opendms.store.states import KeyStatus
from tests.approval_world import World
from tests.conftest import Api
from tests.signer import Signer
from tests.unit.web.admin_helpers import Console, field_error, signed_in, world_in


@pytest.fixture
def world(api: Api) -> World:
    return world_in(api)


@pytest.fixture
def carol(api: Api, world: World) -> Console:
    return signed_in(api, world, "carol")


def _created(page: str) -> tuple[str, str]:
    key = re.search(r'id="new-key-id">([^<]+)<', page)
    secret = re.search(r'id="new-key-secret">([^<]+)<', page)
    assert key and secret, page
    return key.group(1), secret.group(1)


def _status(api: Api, key_id: str) -> str:
    with api.store.session() as s:
        return s.get_one(AccessKey, key_id).status


def test_a_user_creates_a_key_sees_its_secret_once_and_it_signs(
    api: Api, world: World, carol: Console
) -> None:
    made = carol.post("/admin/keys", {"Description": "laptop"}, once="k-1")
    assert made.status_code == 200
    key_id, secret = _created(made.text)
    answer = api.call("GetUser", Signer(key_id, secret))
    assert json.loads(answer.text)["User"]["NickName"] == "carol"
    listed = carol.get("/admin/keys")
    assert key_id in listed.text and "laptop" in listed.text
    assert secret not in listed.text and 'id="new-key-secret"' not in listed.text
    # the form sent again (a reload of the answer, a double click): no new key, no secret
    again = carol.post("/admin/keys", {"Description": "laptop"}, once="k-1")
    assert again.status_code == 303 and "shown+once" in again.headers["location"]
    with api.store.session() as s:
        assert [k.access_key_id for k in identity.list_access_keys(s, carol_uid(world))] == [key_id]


def carol_uid(world: World) -> str:
    return world.users["carol"].uid


def test_disabling_a_key_stops_it_and_enabling_brings_it_back(
    api: Api, world: World, carol: Console
) -> None:
    key_id, secret = _created(carol.post("/admin/keys", {"Description": ""}).text)
    off = carol.post(f"/admin/keys/{key_id}/status", {"Status": "Inactive"})
    assert off.status_code == 303 and _status(api, key_id) == KeyStatus.INACTIVE
    assert api.call("GetUser", Signer(key_id, secret)).status_code == 400
    on = carol.post(f"/admin/keys/{key_id}/status", {"Status": "Active"})
    assert on.status_code == 303 and _status(api, key_id) == KeyStatus.ACTIVE
    assert carol.post(f"/admin/keys/{key_id}/status", {"Status": "Gone"}).status_code == 400


def test_a_description_too_long_shows_beside_its_field(api: Api, carol: Console) -> None:
    page = carol.post("/admin/keys", {"Description": "x" * 300})
    assert page.status_code == 400 and "at most 256" in field_error(page, "Description")
    assert 'id="new-key-secret"' not in page.text


def test_a_user_may_not_touch_another_users_key(api: Api, world: World, carol: Console) -> None:
    with api.store.session() as s:
        key, _ = identity.create_access_key(s, api.box, world.users["alice"].uid, actor=None)
    refused = carol.post(f"/admin/keys/{key.access_key_id}/status", {"Status": "Inactive"})
    assert refused.status_code == 403 and "PermissionDenied" not in refused.text
    assert "Only an ADMIN or a SECURITY_ADMIN" in field_error(refused, "_form")
    assert _status(api, key.access_key_id) == KeyStatus.ACTIVE
    assert key.access_key_id not in carol.get("/admin/keys").text  # only one's own are listed


def test_a_policy_that_denies_reading_oneself_refuses_the_page(
    api: Api, world: World, carol: Console
) -> None:
    deny = '{"Version":"1","Statement":[{"Effect":"Deny","Action":"dms:GetUser"}]}'
    with api.store.session() as s:
        identity.attach_policy(s, world.tid, carol_uid(world), "no-self", deny, actor=None)
    page = carol.get("/admin/keys")
    assert page.status_code == 403 and "Not allowed" in page.text and "dms:GetUser" in page.text
    made = carol.post("/admin/keys", {"Description": "sneaky"})
    assert made.status_code == 403 and 'id="new-key-secret"' not in made.text
    with api.store.session() as s:
        assert identity.list_access_keys(s, carol_uid(world)) == []
