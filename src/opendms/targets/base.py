"""One interface for every target engine: reach it, and describe its schemas.

Connectors know nothing about tickets or tenants; they take an endpoint and answer plain
dataclasses. Failures are :class:`TargetError` with a message fit to show a user.
"""

from __future__ import annotations

import ipaddress
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path


class TargetError(Exception):
    """The target cannot be reached, refused the credentials, or failed a metadata query."""

    def __init__(self, message: str, *, auth: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.auth = auth


@dataclass(frozen=True)
class Endpoint:
    engine: str  # mysql, mariadb, postgresql, sqlite
    host: str  # a file path for SQLite
    port: int = 0
    user: str = ""
    password: str = ""
    database: str = ""  # PostgreSQL: the database to connect to first
    connect_timeout: int = 10


@dataclass
class ColumnInfo:
    name: str
    position: int
    column_type: str
    nullable: bool = True
    data_length: int | None = None
    data_precision: int | None = None
    data_scale: int | None = None
    auto_increment: bool = False
    default_value: str | None = None
    comment: str = ""


@dataclass
class IndexInfo:
    name: str
    kind: str  # PRIMARY, UNIQUE, NORMAL
    columns: list[str]
    comment: str = ""


@dataclass
class TableInfo:
    name: str
    table_type: str = "BASE TABLE"
    engine: str = ""
    encoding: str = ""
    rows: int = 0
    size_bytes: int = 0
    comment: str = ""
    columns: list[ColumnInfo] = field(default_factory=list)
    indexes: list[IndexInfo] = field(default_factory=list)


@dataclass
class SchemaInfo:
    catalog: str
    schema: str
    encoding: str = ""
    tables: list[TableInfo] = field(default_factory=list)


class Connector(ABC):
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    @abstractmethod
    def ping(self) -> str:
        """Connect and log in; returns the server's version string."""

    @abstractmethod
    def schemas(self, only: tuple[str, str] | None = None) -> list[SchemaInfo]:
        """Every user schema with its tables, columns and indexes; or just ``(catalog, schema)``."""

    @abstractmethod
    def count(self, where: tuple[str, str], query: str, timeout: float) -> int | None:
        """Run ``query`` (a ``SELECT COUNT(*)``) read-only in ``(catalog, schema)``; None when it
        did not finish within ``timeout`` seconds."""

    @abstractmethod
    def estimate(self, where: tuple[str, str], statement: str) -> int | None:
        """The planner's estimate of the rows ``statement`` touches (EXPLAIN; nothing runs);
        None when the engine gives none."""


class TargetPolicy:
    """Which targets the server may open: a guard against being used to probe a network
    (``OPENDMS_TARGET_HOSTS``: comma-separated CIDRs or host names, ``*`` for any) or to read
    local files (SQLite targets must live under ``sqlite_dir``)."""

    def __init__(self, spec: str, sqlite_dir: Path | None = None) -> None:
        self.sqlite_dir = sqlite_dir.resolve() if sqlite_dir is not None else None
        self.any = False
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self.names: set[str] = set()
        for raw in spec.split(","):
            item = raw.strip().lower()
            if not item:
                continue
            if item == "*":
                self.any = True
                continue
            try:
                self.networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self.names.add(item)

    def refusal(self, endpoint: Endpoint) -> str | None:
        """Why ``endpoint`` may not be opened, or None when it may."""
        if endpoint.engine == "sqlite":
            path = Path(endpoint.host).resolve()
            if self.sqlite_dir is None or not path.is_relative_to(self.sqlite_dir):
                return f"SQLite targets must be files under {self.sqlite_dir}."
            return None
        if not self.allows(endpoint.host):
            return f"This server may not connect to {endpoint.host} (OPENDMS_TARGET_HOSTS)."
        return None

    def allows(self, host: str) -> bool:
        if self.any:
            return True
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return host.lower() in self.names
        return any(address in net for net in self.networks)
