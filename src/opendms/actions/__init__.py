"""Wire models and thin handlers, one module per API area; ``ALL`` is the action table."""

from opendms.actions import (
    approvals,
    assistant,
    catalog,
    cleanup,
    console,
    data_correct,
    exports,
    files,
    imports,
    orders,
    permissions,
    structure,
    users,
    workflows,
)
from opendms.gateway.table import Action

ALL: tuple[Action, ...] = (
    *users.ACTIONS,
    *catalog.ACTIONS,
    *permissions.ACTIONS,
    *orders.ACTIONS,
    *files.ACTIONS,
    *workflows.ACTIONS,
    *approvals.ACTIONS,
    *data_correct.ACTIONS,
    *cleanup.ACTIONS,
    *console.ACTIONS,
    *assistant.ACTIONS,
    *exports.ACTIONS,
    *imports.ACTIONS,
    *structure.ACTIONS,
)
