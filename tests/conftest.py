"""Shared fixtures: a migrated metadata store (SQLite, or a throw-away PostgreSQL database),
the in-process app with a signed client, and service checks that fail loudly in CI."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pymysql
import pytest
from starlette.testclient import TestClient

from opendms.app import OpenDMS, create_app
from opendms.config import Settings
from opendms.identity import service
from opendms.identity.secrets import SecretBox
from opendms.store.db import Store
from tests.signer import Prepared, Signer

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
MASTER_KEY = "test-master-key"
LOOPBACK = "127.0.0.0/8,::1,localhost"
BASE_URL = "http://testserver"
T = TypeVar("T")


def require_service(name: str, reason: str) -> None:
    """Skip locally, fail in CI: a missing service must never pass silently there."""
    if IN_CI:
        pytest.fail(f"{name} is required in CI: {reason}")
    pytest.skip(f"{name} unavailable: {reason}")


@contextmanager
def _new_pg_database(template: str | None = None) -> Iterator[str]:
    """A uniquely named PostgreSQL database (a copy of ``template``), dropped afterwards."""
    name = f"opendms_test_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{copy}')
    except psycopg.OperationalError as exc:
        require_service("PostgreSQL", str(exc).splitlines()[0])
    try:
        yield name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def pg_database() -> Iterator[tuple[str, psycopg.Connection[Any]]]:
    """A fresh PostgreSQL database and an autocommit connection to it; dropped afterwards."""
    with (
        _new_pg_database() as name,
        psycopg.connect(
            f"host=127.0.0.1 port=5432 user=postgres dbname={name}", autocommit=True
        ) as conn,
    ):
        yield name, conn


@contextmanager
def mysql_database() -> Iterator[tuple[str, Any]]:
    """A fresh MariaDB database and an autocommit connection; dropped afterwards."""
    name = f"opendms_t_{uuid.uuid4().hex[:12]}"
    try:
        conn = pymysql.connect(
            host="127.0.0.1",
            port=3306,
            user="root",
            password="",
            autocommit=True,
            connect_timeout=5,
        )
    except pymysql.err.OperationalError as exc:
        require_service("MariaDB", str(exc))
    with conn:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
        try:
            conn.select_db(name)
            yield name, conn
        finally:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def _pg_store_url(name: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    with _new_pg_database() as name:
        yield _pg_store_url(name)


@pytest.fixture(scope="session")
def _pg_migrated() -> Iterator[str]:
    """A PostgreSQL database at the newest revision, made once per test process to be
    copied (CREATE DATABASE … TEMPLATE): migrating costs a second or more, a copy little."""
    with _new_pg_database() as name:
        store = Store(_pg_store_url(name))
        store.migrate()
        store.dispose()  # a template may have no connections
        yield name


@pytest.fixture
def pg_store_url(_pg_migrated: str) -> Iterator[str]:
    """A fresh PostgreSQL metadata store at the newest revision, dropped afterwards."""
    with _new_pg_database(_pg_migrated) as name:
        yield _pg_store_url(name)


@pytest.fixture(scope="session")
def _sqlite_migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store at the newest revision, made once per test process to be copied."""
    path = tmp_path_factory.mktemp("migrated") / "meta.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    store.dispose()
    return path


def migrated_sqlite(template: Path, path: Path) -> Store:
    """A store at ``path`` at the newest revision: a copy of ``template`` where nothing is
    there yet (migrating costs a third of a second, a copy a millisecond)."""
    store = Store(f"sqlite:///{path}")
    if path.exists():  # made earlier in the test: brought up to date, as the app would
        store.migrate()
    else:
        shutil.copyfile(template, path)
    return store


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each metadata store the product supports: tests using it run once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(tmp_path: Path, _sqlite_migrated: Path) -> Iterator[Store]:
    s = migrated_sqlite(_sqlite_migrated, tmp_path / "meta.db")
    yield s
    s.dispose()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(MASTER_KEY.encode())


@dataclass
class Api:
    """The in-process app, its store, and a signer for the bootstrap administrator."""

    client: TestClient
    store: Store
    box: SecretBox
    admin: Signer
    tid: int
    admin_uid: str
    data_dir: Path
    app: OpenDMS

    def run_jobs(self) -> int:
        """Run every due background job to its end, here and now (the app's own runner has
        no threads in tests, so what a test sees does not depend on timing)."""
        ran = 0
        while self.app.runner.run_once() or self.app.uploads.run_once():
            ran += 1
        return ran

    @property
    def sqlite_targets(self) -> Path:
        """Where SQLite targets may live for this app."""
        return self.data_dir / "targets"

    def send(self, prepared: Prepared) -> Any:
        return self.client.request(
            prepared.method, prepared.url, headers=prepared.headers, content=prepared.body
        )

    def send_all(
        self, prepared: Sequence[Prepared], after: Callable[[], T]
    ) -> list[tuple[httpx.Response, T]]:
        """Each request in turn, with what ``after`` returns right after its answer, sent on
        the app's own event loop in one hand-over from this thread: the TestClient hands over
        about seven times a request, a third of a small request's time."""

        async def each() -> list[tuple[httpx.Response, T]]:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
                out = []
                for p in prepared:
                    resp = await client.request(p.method, p.url, headers=p.headers, content=p.body)
                    out.append((resp, after()))
                return out

        portal = self.client.portal
        assert portal is not None, "the TestClient is not running"
        return portal.call(each)

    def call(self, action: str, signer: Signer | None = None, **params: Any) -> Any:
        """A V3-signed call with query parameters; returns the httpx response."""
        query = {k: str(v) for k, v in params.items()}
        return self.send((signer or self.admin).v3(action, query))

    def new_user(self, roles: str = "USER", tid: int | None = None) -> tuple[str, Signer]:
        with self.store.session() as s:
            user = service.register_user(s, None, tid or self.tid, service.new_uid(), roles=roles)
            key, secret = service.create_access_key(s, self.box, user.uid, actor=None)
        return user.uid, Signer(key.access_key_id, secret)


@pytest.fixture
def make_api(
    tmp_path: Path, box: SecretBox, _sqlite_migrated: Path
) -> Iterator[Callable[..., Api]]:
    clients: list[TestClient] = []

    def build(database_url: str | None = None, **settings: Any) -> Api:
        url = database_url or f"sqlite:///{tmp_path / 'api.db'}"
        # Tests never let the server open anything beyond this machine.
        settings.setdefault("target_hosts", LOOPBACK)
        settings.setdefault("job_threads", 0)
        settings.setdefault("upload_threads", 0)
        cfg = Settings(data_dir=tmp_path, database_url=url, secret_key=MASTER_KEY, **settings)
        if database_url is None:
            st = migrated_sqlite(_sqlite_migrated, tmp_path / "api.db")
        else:
            st = Store(url)
            st.migrate()
        with st.session() as s:
            boot = service.bootstrap_admin(s, box)
        app = create_app(cfg)
        client = TestClient(app, base_url=BASE_URL)
        client.__enter__()
        clients.append(client)
        return Api(
            client,
            st,
            box,
            Signer(boot.access_key_id, boot.access_key_secret),
            boot.tenant.tid,
            boot.admin.uid,
            tmp_path,
            app,
        )

    yield build
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()


def route_new_sdk_to(
    api: Api, monkeypatch: pytest.MonkeyPatch, record: list[Any] | None = None
) -> None:
    """Send the new SDK's HTTP requests to the in-process app; everything else is the SDK's.
    ``record`` collects each response body."""
    from darabonba.core import DaraCore
    from darabonba.request import DaraRequest
    from darabonba.response import DaraResponse

    def do_action(request: DaraRequest, runtime_option: Any = None) -> DaraResponse:
        body = request.body.encode() if isinstance(request.body, str) else request.body
        resp = api.client.request(
            request.method, DaraCore.compose_url(request), headers=request.headers, content=body
        )
        if record is not None:
            record.append(resp.json())
        out = DaraResponse()
        out.status_code = resp.status_code
        out.status_message = resp.reason_phrase
        out.headers = {k.lower(): v for k, v in resp.headers.items()}
        out.body = resp.content
        return out

    monkeypatch.setattr(DaraCore, "do_action", staticmethod(do_action))
