"""What the server lends its request handlers and its job executors: the keys to its targets
and its files, the signer of its download links, and the limits it works under. Built once
per process by ``opendms.runtime.Runtime``; handlers reach it as ``ctx.means``, executors are
given it when they are made."""

from __future__ import annotations

import secrets as random
from dataclasses import dataclass, field

from opendms.catalog import connect
from opendms.config import Settings
from opendms.files.addresses import UploadHosts
from opendms.files.service import LinkSigner, UploadLimits
from opendms.files.storage import FileStore
from opendms.identity.secrets import SecretBox
from opendms.store.models import Instance
from opendms.targets.base import Connector, TargetPolicy
from opendms.targets.changes import ChangePools
from opendms.targets.console import ConsolePools
from opendms.targets.pace import Limits, Pace


def target_policy(settings: Settings) -> TargetPolicy:
    return TargetPolicy(
        settings.target_hosts,
        settings.sqlite_targets,
        test_connect_seconds=settings.target_test_connect_seconds,
        test_read_seconds=settings.target_test_read_seconds,
    )


def _throwaway_links() -> LinkSigner:
    # Only for a Means made by hand (tests, tools): a server signs with its master key.
    return LinkSigner(random.token_bytes(32))


@dataclass(frozen=True)
class Tuning:
    """How much a job executor does in one runner step; between steps the runner stores the
    checkpoint, renews the lease and notices a paused or closed ticket. No setting changes
    them but ``import_streams`` (``OPENDMS_IMPORT_STREAMS``); tests shorten them."""

    step_seconds: float = 1.0  # an execution's statements or chunks, per step
    import_step_seconds: float = 5.0  # a data import's batches, per step
    import_batch_rows: int = 100_000  # records (XLSX; CSV read by Python) per transaction
    # A CSV the database's own loader reads: each transaction aims at this many seconds,
    # its first block of the first size, the next ones sized by the time the last took.
    import_batch_seconds: float = 0.5
    import_batch_bytes: tuple[int, int] = (1 << 20, 32 << 20)
    import_batch_statements: int = 500  # statements (SQL file) an import runs per transaction
    import_streams: int = 2  # sessions writing a CSV's blocks at once (imports.run.Importer)


@dataclass(frozen=True)
class LlmEndpoint:
    """The language model the assistant actions may ask (``opendms.assistant.llm``): an
    OpenAI-compatible chat-completions endpoint. ``models``: what a request's ``Model`` may
    pick besides ``model``."""

    base_url: str
    model: str
    api_key: str = field(default="", repr=False)  # a secret: never logged, never echoed
    models: tuple[str, ...] = ()
    timeout_seconds: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> LlmEndpoint | None:
        if not settings.llm_base_url:
            return None
        return cls(
            settings.llm_base_url,
            settings.llm_model.strip(),
            settings.llm_api_key or "",
            tuple(m.strip() for m in settings.llm_models.split(",") if m.strip()),
            settings.llm_timeout_seconds,
        )


@dataclass(frozen=True)
class Means:
    secrets: SecretBox
    targets: TargetPolicy
    files: FileStore
    uploads: UploadLimits = field(default_factory=UploadLimits)
    links: LinkSigner = field(default_factory=_throwaway_links)
    public_url: str | None = None  # where clients reach us, for the links we hand out
    export_link_seconds: float = 24 * 3600  # how long an export's download link lasts
    row_check_seconds: float = 10.0
    lock_wait_seconds: int = 30
    pace: Pace = field(default_factory=Pace)
    tuning: Tuning = field(default_factory=Tuning)
    export_max_rows: int = 10_000_000
    ticket_max_statements: int = 10_000
    ticket_max_sql_bytes: int = 15 * 1024 * 1024
    console: ConsolePools = field(default_factory=ConsolePools)  # the SQL console's connections
    changes: ChangePools = field(default_factory=ChangePools)  # job steps' write sessions
    llm: LlmEndpoint | None = None  # the assistant's language model; None: not configured

    @classmethod
    def from_settings(cls, settings: Settings, master_key: bytes) -> Means:
        return cls(
            secrets=SecretBox(master_key),
            targets=target_policy(settings),
            files=FileStore(settings.files),
            uploads=UploadLimits(
                settings.upload_max_bytes,
                settings.upload_timeout_seconds,
                UploadHosts(settings.upload_hosts),
            ),
            links=LinkSigner(master_key),
            public_url=settings.public_url,
            export_link_seconds=settings.export_link_hours * 3600,
            row_check_seconds=settings.row_check_seconds,
            lock_wait_seconds=settings.lock_wait_seconds,
            tuning=Tuning(import_streams=settings.import_streams),
            export_max_rows=settings.export_max_rows,
            ticket_max_statements=settings.ticket_max_statements,
            ticket_max_sql_bytes=settings.ticket_max_sql_bytes,
            llm=LlmEndpoint.from_settings(settings),
            pace=Pace(
                chunk_seconds=settings.chunk_ms / 1000,
                copy_seconds=settings.ddl_chunk_ms / 1000,
                max_chunk_rows=settings.chunk_max_rows,
                sleep_ratio=settings.chunk_sleep_ratio,
                lock_wait_seconds=settings.chunk_lock_wait_seconds,
                limits=Limits(settings.throttle_max_running, settings.throttle_max_lag_seconds),
            ),
        )

    def connector(self, inst: Instance) -> Connector:
        """The instance's connector; a DmsError when this server may not open it."""
        return connect.connector_of(connect.endpoint_of(inst, self.secrets), self.targets)
