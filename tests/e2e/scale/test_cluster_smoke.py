"""Two API processes and two workers on one store: a ticket filed through one API is read
through the other and executed by a worker."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Dms, file_change, prechecked, register_target, target_database
from tests.e2e.scale.cluster import Broker, cluster, wait_for

pytestmark = [pytest.mark.e2e]


@pytest.mark.parametrize("broker", ["redis", "amqp"])
def test_a_ticket_filed_on_one_api_is_read_on_the_other_and_run_by_a_worker(
    broker: Broker,
) -> None:
    with (
        target_database(
            "mariadb", "CREATE TABLE t (id INT PRIMARY KEY, n INT)", "INSERT INTO t VALUES (1, 0)"
        ) as (name, query, where),
        cluster(broker) as c,
    ):
        one, other = (Dms(api, c.admin, "v3") for api in c.apis)
        db_id = register_target(c.apis[0], one, name, where, "scale", "DC_COMMON")
        order_id = file_change(one, db_id, "UPDATE t SET n = n + 1 WHERE id = 1")
        assert prechecked(other, order_id).status == "precheck_success", other.last_raw
        assert other.call("SubmitOrderApproval", order_id=order_id).success is True
        assert one.call("ExecuteDataCorrect", order_id=order_id, action_detail={}).success
        wait_for(
            "the ticket's success",
            lambda: (
                other.call("GetOrderBaseInfo", order_id=order_id).order_base_info.status_code
                == "success"
            ),
            timeout=60,
        )
        assert query("SELECT n FROM t") == ((1,),)
        ran = c.store_query("SELECT DISTINCT lease_owner IS NULL FROM jobs")
        assert ran == [(True,)], c.logs()
