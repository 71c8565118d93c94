"""Instances, databases, tables, columns, indexes and owners (dms-api.md A.9, B.11)."""

from opendms.actions.catalog import databases, instances, meta
from opendms.gateway.table import Action

ACTIONS: tuple[Action, ...] = (*instances.ACTIONS, *databases.ACTIONS, *meta.ACTIONS)
