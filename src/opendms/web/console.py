"""The console, assembled: every page module's routes under one Site."""

from __future__ import annotations

from opendms.gateway.pipeline import Gateway
from opendms.store.db import Store
from opendms.web.pages import account, admin, catalog, new_order, order, orders, sql
from opendms.web.site import Site

PAGES = (account, orders, new_order, order, sql, catalog, admin)


def build(gateway: Gateway, store: Store, *, max_body: int) -> Site:
    routes = [route for module in PAGES for route in module.ROUTES]
    return Site(gateway, store, routes, max_body=max_body)
