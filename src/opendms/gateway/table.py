"""The action table: one declaration per DMS Action, from which dispatch, validation,
authorization and the ``opendms actions`` listing are all derived."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from opendms.gateway.wire import WireModel
from opendms.identity.caller import Caller
from opendms.identity.secrets import SecretBox
from opendms.means import Means
from opendms.targets.base import TargetPolicy


class Access(StrEnum):
    """RAM access levels, as Alibaba Cloud documents them per action."""

    GET = "get"
    LIST = "list"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True)
class Context:
    """What a handler may use: who calls, the server's means, one transaction, and where
    the caller reached us (for links it can follow)."""

    caller: Caller
    means: Means
    transaction: Session | None = None
    origin: str = ""
    body: bytes = b""

    @property
    def secrets(self) -> SecretBox:
        return self.means.secrets

    @property
    def targets(self) -> TargetPolicy:
        return self.means.targets

    @property
    def base_url(self) -> str:
        return self.means.public_url or self.origin

    @property
    def session(self) -> Session:
        if self.transaction is None:
            raise RuntimeError("an action declared blocking=False used the metadata store")
        return self.transaction


Payload = dict[str, Any]


@dataclass(frozen=True)
class Action:
    name: str
    request: type[WireModel]
    handler: Callable[[Context, Any], Payload]
    access: Access
    summary: str
    methods: frozenset[str] = field(default=frozenset({"GET", "POST"}))
    # Handlers run on a worker thread inside one metadata transaction. A handler that needs
    # neither (it answers from the caller alone) says blocking=False and runs on the event loop.
    blocking: bool = True
    # OpenDMS's own actions, beyond the DMS API (no SDK sends them). Such an action that takes
    # the request body as its payload must be V3-signed: only V3 signs the body.
    extension: bool = False
    takes_body: bool = False

    @property
    def ram_action(self) -> str:
        return f"dms:{self.name}"


def build_table(actions: Iterable[Action]) -> Mapping[str, Action]:
    table: dict[str, Action] = {}
    for action in actions:
        if action.name in table:
            raise ValueError(f"action {action.name} is declared twice")
        table[action.name] = action
    return table
