"""The DMS API this server answers, described for people: each action's name, RAM action,
access level, methods, parameters and summary (the command line's ``opendms actions``).

It reads the same action table the server is built from (``build_table(actions.ALL)``), so
the listing cannot drift from what is served. It sits between the command line and the
wire packages: the command line describes the API through it and imports neither
``opendms.actions`` nor ``opendms.gateway`` itself."""

from __future__ import annotations

from dataclasses import dataclass

from opendms import actions
from opendms.gateway.table import build_table


@dataclass(frozen=True)
class ActionInfo:
    name: str
    ram_action: str
    access_level: str
    methods: tuple[str, ...]  # sorted
    parameters: tuple[str, ...]  # as a request spells them
    summary: str
    extension: bool  # OpenDMS's own, beyond the DMS API


def described() -> list[ActionInfo]:
    """Every action, in the order the table declares them."""
    return [
        ActionInfo(
            name=a.name,
            ram_action=a.ram_action,
            access_level=a.access.value,
            methods=tuple(sorted(a.methods)),
            parameters=tuple(f.alias or n for n, f in a.request.model_fields.items()),
            summary=a.summary,
            extension=a.extension,
        )
        for a in build_table(actions.ALL).values()
    ]
