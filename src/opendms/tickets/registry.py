"""The one registry of ticket kinds: a line per kind, its module's path.

Each module listed makes its ``TicketKind`` as ``KIND``. The modules are imported by name on
first use, not at import time: the kinds sit above the services in the layers (a kind
imports the approvals, precheck, execution, exports and imports services it drives), and
those services find a ticket's kind here, in the domain layer below them. Naming the
modules as strings keeps that one-way (dependency inversion: the services depend on
``TicketKind``, the kinds implement it, and no service imports a kind), and adding a kind is
its module plus its line here.
"""

from __future__ import annotations

import importlib
import json
from functools import cache
from typing import TypeVar, overload

from opendms.errors import DmsError, ErrorCode
from opendms.store.models import Order
from opendms.tickets.kind import TicketKind
from opendms.tickets.params import Params

KINDS = (
    "opendms.kinds.data_correct",
    "opendms.kinds.chunked",
    "opendms.kinds.cron_clear",
    "opendms.kinds.data_import",
    "opendms.kinds.data_export",
    "opendms.kinds.schema_design",
    "opendms.kinds.struct_sync",
)
# ListOrders' PluginType for every kind DMS groups as DATA_CORRECT (dms-api.md B.1).
DATA_CORRECT = "DATA_CORRECT"

P = TypeVar("P", bound=Params)


@cache
def _loaded() -> dict[str, TicketKind]:
    found: dict[str, TicketKind] = {}
    for path in KINDS:
        kind = getattr(importlib.import_module(path), "KIND", None)
        if not isinstance(kind, TicketKind):
            raise TypeError(f"{path}.KIND is not a TicketKind")
        if kind.plugin_type in found:
            raise TypeError(f"{path}: a second kind for {kind.plugin_type}")
        found[kind.plugin_type] = kind
    return found


def all_kinds() -> tuple[TicketKind, ...]:
    """Every kind, in the registry's order."""
    return tuple(_loaded().values())


def find(plugin_type: str) -> TicketKind | None:
    return _loaded().get(plugin_type)


def kind_of(plugin_type: str) -> TicketKind:
    """The kind of ``plugin_type``; a business error naming the kinds there are."""
    found = find(plugin_type)
    if found is None:
        hint = f" ({DATA_CORRECT} only filters ListOrders)" if plugin_type == DATA_CORRECT else ""
        raise DmsError(
            ErrorCode.UNSUPPORTED_PLUGIN_TYPE,
            f"PluginType {plugin_type[:64]!r} cannot be created here{hint}; use one of "
            f"{', '.join(_loaded())}.",
        )
    return found


def data_correct_types() -> tuple[str, ...]:
    """The PluginTypes ListOrders' DATA_CORRECT filter stands for."""
    return tuple(k.plugin_type for k in all_kinds() if k.order_type == DATA_CORRECT)


@overload
def params_of(order: Order) -> Params: ...
@overload
def params_of(order: Order, model: type[P]) -> P: ...
def params_of(order: Order, model: type[Params] = Params) -> Params:
    """The ticket's parameters as its kind's model; ``model``: the class the caller needs
    them to be (a ticket of another kind is a mistake of the caller's: TypeError)."""
    params = kind_of(order.plugin_type).params.model_validate(json.loads(order.params))
    if not isinstance(params, model):
        raise TypeError(
            f"ticket {order.order_id} is {order.plugin_type}, its parameters no {model.__name__}"
        )
    return params
