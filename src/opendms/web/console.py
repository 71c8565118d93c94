"""The console, assembled: every page module's routes under one Site."""

from __future__ import annotations

from opendms.gateway.pipeline import Gateway
from opendms.store.db import Store
from opendms.web.pages import account, orders
from opendms.web.site import Site

PAGES = (account, orders)


def build(gateway: Gateway, store: Store) -> Site:
    return Site(gateway, store, [route for module in PAGES for route in module.ROUTES])
