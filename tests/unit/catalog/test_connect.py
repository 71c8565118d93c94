"""The connection test before a metadata read: it gives up within seconds, and says what it
found at the port."""

from __future__ import annotations

import threading

import pytest

from opendms.catalog import instances
from opendms.catalog.instances import InstanceSpec
from opendms.errors import DmsError, ErrorCode
from opendms.identity import service as identity
from opendms.identity.secrets import SecretBox
from opendms.store.db import Store
from opendms.targets.base import TargetPolicy
from tests import local_servers


def _register(store: Store, box: SecretBox, engine: str, port: int) -> DmsError:
    """Registering ``engine`` at ``port`` fails; how. A connection test there gives up after
    2 s to connect and 1 s waiting for an answer."""
    probed = TargetPolicy("127.0.0.0/8", test_connect_seconds=2, test_read_seconds=1)
    with store.session() as s:
        tid = identity.create_tenant(s, f"probe-{engine}-{port}").tid
    spec = InstanceSpec(
        alias="x", instance_type=engine, host="127.0.0.1", port=port, database_user="root"
    )
    with store.session() as s, pytest.raises(DmsError) as info:
        instances.register_instance(s, box, probed, tid, spec, actor=None)
    return info.value


@pytest.mark.parametrize("engine", ["mysql", "postgresql"])
def test_a_port_that_says_nothing_fails_the_test_within_seconds(
    store: Store, box: SecretBox, engine: str
) -> None:
    """Issue 16, finding 5: a "mysql" instance at a Redis port (which waits for the client
    to speak first) held a thread for 300 s."""
    stop = threading.Event()
    try:
        with local_servers.raw(local_servers.silent(stop)) as port:
            error = _register(store, box, engine, port)
    finally:
        stop.set()
    assert error.code == ErrorCode.TARGET_CONNECT_FAILED
    assert f"cannot connect to {engine} at 127.0.0.1:{port}" in error.message
    if engine == "mysql":
        assert "no answer within 1 s; is a mysql server listening there?" in error.message
    else:
        assert "timeout" in error.message


@pytest.mark.parametrize("engine", ["mysql", "postgresql"])
def test_a_port_that_speaks_something_else_fails_clearly(
    store: Store, box: SecretBox, engine: str
) -> None:
    with local_servers.raw(local_servers.garbage) as port:
        error = _register(store, box, engine, port)
    assert error.code == ErrorCode.TARGET_CONNECT_FAILED
    assert f"cannot connect to {engine} at 127.0.0.1:{port}" in error.message
    if engine == "mysql":
        assert "does not speak the MySQL protocol" in error.message
