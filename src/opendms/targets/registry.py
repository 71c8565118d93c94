"""Engine name -> connector. DMS spells engines in lower case (dms-api.md B.11)."""

from __future__ import annotations

from opendms.targets.base import Connector, Endpoint, TargetError
from opendms.targets.mysql import MysqlConnector
from opendms.targets.postgres import PostgresConnector
from opendms.targets.sqlite import SqliteConnector

CONNECTORS: dict[str, type[Connector]] = {
    "mysql": MysqlConnector,
    "mariadb": MysqlConnector,
    "postgresql": PostgresConnector,
    "sqlite": SqliteConnector,
}
DEFAULT_PORTS = {"mysql": 3306, "mariadb": 3306, "postgresql": 5432, "sqlite": 0}


def connector_for(endpoint: Endpoint) -> Connector:
    try:
        return CONNECTORS[endpoint.engine](endpoint)
    except KeyError:
        raise TargetError(f"unsupported engine {endpoint.engine!r}") from None
