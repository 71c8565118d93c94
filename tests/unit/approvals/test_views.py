"""What an approval shows, and to whom (``approvals.views``)."""

from __future__ import annotations

import pytest

from opendms.errors import DmsError, ErrorCode
from opendms.tickets import service as tickets
from tests.approval_world import World


def test_workflows_are_private_to_who_may_see_the_ticket(world: World) -> None:
    wf = world.submit(world.file())
    for who in ("carol",):
        with pytest.raises(DmsError) as err:
            world.detail(wf, who)
        assert err.value.code == ErrorCode.WORKFLOW_NOT_FOUND
        with pytest.raises(DmsError) as err:
            world.act(wf, who, "AGREE")
        assert err.value.code == ErrorCode.WORKFLOW_NOT_FOUND
    with world.store.session() as s:
        queue = tickets.list_orders(
            s, world.as_("owen"), tickets.OrderFilter(scope="AS_HANDLER"), 1, 10
        )
        assert len(queue.items) == 1
        assert not tickets.list_orders(
            s, world.as_("carol"), tickets.OrderFilter(scope="AS_HANDLER"), 1, 10
        ).items
