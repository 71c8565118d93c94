"""Opening an instance: its endpoint with the stored password, the connector (only where this
server may connect), and the connection test that precedes every metadata read."""

from __future__ import annotations

from dataclasses import replace

from opendms.errors import DmsError, ErrorCode
from opendms.identity.secrets import SecretBox
from opendms.store.models import Instance
from opendms.targets.base import Connector, Endpoint, SchemaInfo, TargetError, TargetPolicy
from opendms.targets.detect import UnknownProtocol, detect
from opendms.targets.registry import connector_for


def endpoint_of(inst: Instance, box: SecretBox) -> Endpoint:
    return Endpoint(
        engine=inst.instance_type,
        host=inst.host,
        port=inst.port,
        user=inst.database_user,
        password=box.decrypt(inst.password_enc) if inst.password_enc else "",
        database=inst.sid,
    )


def check_allowed(endpoint: Endpoint, targets: TargetPolicy) -> None:
    """Refuse ``endpoint`` unless this server may open it: asked before any connection."""
    refusal = targets.refusal(endpoint)
    if refusal is not None:
        raise DmsError(ErrorCode.TARGET_NOT_ALLOWED, refusal)


def connector_of(endpoint: Endpoint, targets: TargetPolicy) -> Connector:
    """The connector for ``endpoint``, if this server may open it."""
    check_allowed(endpoint, targets)
    return connector_for(endpoint)


def engine_at(host: str, port: int, targets: TargetPolicy) -> str:
    """The engine that answers at ``host:port`` (``targets.detect``), if this server may
    connect there, within the deadlines of a connection test."""
    check_allowed(Endpoint("", host, port), targets)
    try:
        return detect(
            host,
            port,
            connect_seconds=targets.test_connect_seconds,
            read_seconds=targets.test_read_seconds,
        )
    except UnknownProtocol as exc:
        raise DmsError(ErrorCode.UNSUPPORTED_ENGINE, exc.message) from exc
    except TargetError as exc:
        raise DmsError(ErrorCode.TARGET_CONNECT_FAILED, exc.message) from exc


def read_metadata(
    endpoint: Endpoint, targets: TargetPolicy, only: tuple[str, str] | None = None
) -> tuple[str, list[SchemaInfo]]:
    """Test the connection, within seconds (a port that speaks something else must not hold
    a request for minutes), then read the metadata."""
    connector = connector_of(
        replace(endpoint, connect_timeout=targets.test_connect_seconds), targets
    )
    try:
        return connector.ping(targets.test_read_seconds), connector.schemas(only)
    except TargetError as exc:
        code = ErrorCode.TARGET_AUTH_FAILED if exc.auth else ErrorCode.TARGET_CONNECT_FAILED
        raise DmsError(code, exc.message) from exc
