"""The registry of ticket kinds: one line per kind module, found by name on first use."""

from __future__ import annotations

import json
import pkgutil

import pytest

import opendms.kinds
from opendms.errors import DmsError, ErrorCode
from opendms.kinds.data_correct import DataCorrect
from opendms.kinds.data_export import DataExport
from opendms.store.models import Order
from opendms.tickets import registry
from opendms.tickets.kind import TicketKind
from opendms.tickets.params import Params


def test_an_unknown_type_is_a_business_error_naming_the_kinds() -> None:
    with pytest.raises(DmsError) as err:
        registry.kind_of("DC_PROC")
    assert err.value.code == ErrorCode.UNSUPPORTED_PLUGIN_TYPE
    assert err.value.message == (
        "PluginType 'DC_PROC' cannot be created here; use one of DC_COMMON, DC_CHUNK, "
        "DC_CRON_CLEAR, DC_BIG_FILE, DATA_EXPORT, NDDL, TABLE_SYNC."
    )
    assert registry.find("DC_PROC") is None


def test_the_list_orders_umbrella_is_named_as_such() -> None:
    with pytest.raises(DmsError) as err:
        registry.kind_of("DATA_CORRECT")
    assert "(DATA_CORRECT only filters ListOrders)" in err.value.message
    assert registry.data_correct_types() == (
        "DC_COMMON",
        "DC_CHUNK",
        "DC_CRON_CLEAR",
        "DC_BIG_FILE",
    )


def test_every_registered_kind_has_a_params_model_and_a_type_of_its_own() -> None:
    kinds = registry.all_kinds()
    assert len({k.plugin_type for k in kinds}) == len(kinds) == len(registry.KINDS)
    for kind in kinds:
        assert isinstance(kind, TicketKind)
        assert issubclass(kind.params, Params) and kind.params is not Params
        assert kind.summary
        assert registry.kind_of(kind.plugin_type) is kind


def test_the_registry_lines_are_the_modules_of_the_kinds_package() -> None:
    modules = {
        f"opendms.kinds.{m.name}"
        for m in pkgutil.iter_modules(opendms.kinds.__path__)
        if not m.name.startswith("_")
    }
    assert set(registry.KINDS) == modules
    assert len(registry.KINDS) == len(modules)  # no line twice


def order(plugin_type: str, params: Params) -> Order:
    return Order(order_id=7, plugin_type=plugin_type, params=json.dumps(params.wire()))


def test_params_of_reads_a_ticket_through_its_kinds_model() -> None:
    given = DataCorrect.model_validate(
        {
            "DbItemList": [{"DbId": 1}],
            "EstimateAffectRows": 3,
            "SqlType": "TEXT",
            "ExecSQL": "DELETE FROM t WHERE id = 1",
        }
    )
    ticket = order("DC_COMMON", given)
    assert registry.params_of(ticket) == given
    assert registry.params_of(ticket, DataCorrect).estimate_affect_rows == 3
    with pytest.raises(TypeError, match="DC_COMMON"):
        registry.params_of(ticket, DataExport)
