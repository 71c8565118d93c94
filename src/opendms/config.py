"""Settings: flags and OPENDMS_* environment variables, one object for the whole process."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PORT = 8080
API_VERSION = "2018-11-01"


class Settings(BaseSettings):
    """Every knob of a running OpenDMS; the CLI writes flags into the same environment names
    so that uvicorn's worker processes read exactly what the parent was given."""

    model_config = SettingsConfigDict(env_prefix="OPENDMS_", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: Path.home() / ".opendms")
    database_url: str | None = None
    # A Celery broker (redis://… or amqp://…): jobs then run on `opendms worker` processes,
    # told "job N has work" through it; without one, each server process runs its own.
    broker_url: str | None = None
    # The prefix of this installation's queues on the broker (<prefix>.jobs, <prefix>.uploads).
    broker_queue: str = Field(default="opendms", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    # Redis for what every API process must share per request (rate limits); default: the
    # broker when it is Redis. Without either, the store counts them (PostgreSQL) or the
    # one process does (SQLite). While it does not answer, each process counts its own.
    redis_url: str | None = None
    secret_key: str | None = None

    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    # HTTPS on the same port: the certificate (chain) and its private key, PEM files, both or
    # neither (``opendms serve`` checks them before it listens).
    tls_cert: Path | None = None
    tls_key: Path | None = None

    # Requests per second allowed for one access key on one action, across every API process
    # (gateway/limiters.py: where they are counted). Shared counts admit this many, rounded
    # down and at least one, in each clock second.
    rate_limit: float = Field(default=100.0, gt=0)
    # Allowed distance between the client's signed timestamp and our clock.
    clock_skew_seconds: int = Field(default=900, ge=1)
    # Large SQL rides in the URL (dms-api.md A.0): the query string and the body together may
    # be this big.
    max_request_bytes: int = Field(default=64 * 1024 * 1024, ge=16 * 1024 * 1024)
    # Connections per server process for the per-request identity path (PostgreSQL).
    db_pool_size: int = Field(default=16, ge=1)
    # Target database servers the server may connect to: CIDRs or host names, "*" for any.
    target_hosts: str = "*"
    # Testing a target's connection (register, update, sync) gives up after this long to
    # connect and this long waiting for any answer: a port that speaks something else fails
    # within seconds, not minutes.
    target_test_connect_seconds: int = Field(default=5, ge=1, le=300)
    target_test_read_seconds: int = Field(default=10, ge=1, le=3600)
    # SQLite target files must live under this directory (default: <data_dir>/targets).
    sqlite_target_dir: Path | None = None
    # Uploaded files (default: <data_dir>/files), their size limit and fetch timeout.
    files_dir: Path | None = None
    upload_max_bytes: int = Field(default=1024**3, ge=1024)
    upload_timeout_seconds: float = Field(default=120.0, gt=0)
    # Where upload jobs may fetch from besides public addresses: CIDRs or host names (a
    # private artifact server), "*" for anywhere. Empty: public addresses only.
    upload_hosts: str = ""
    # Threads per server process that run upload jobs, apart from the ticket jobs' threads
    # (default 2; 0 with a broker: workers run them).
    upload_threads: int | None = Field(default=None, ge=0, le=64)
    # The URL clients reach this server at, for links it hands out (default: the Host header).
    public_url: str | None = None
    # Threads per server process for blocking work (metadata store, handlers).
    worker_threads: int = Field(default=8, ge=1, le=256)
    # Webhook delivery: attempts before giving up, first retry delay (doubling), HTTP timeout.
    webhook_max_attempts: int = Field(default=8, ge=1, le=100)
    webhook_backoff_seconds: float = Field(default=10.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # Background jobs (prechecks, executions) in this server process: threads (default 2; 0
    # with a broker: workers run them), and how long a claim lasts without a heartbeat before
    # another runner takes the job over.
    job_threads: int | None = Field(default=None, ge=0, le=64)
    job_lease_seconds: float = Field(default=30.0, ge=2)
    # `opendms worker`: jobs one worker process runs at once (threads), and how long a due
    # job's message may go unanswered before the sweeper sends it again.
    worker_concurrency: int = Field(default=2, ge=1, le=256)
    # A worker's own Prometheus metrics (job steps, rows changed) on this port at OPENDMS_HOST;
    # none by default.
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    job_resend_seconds: float = Field(default=30.0, ge=1)
    # How often a server or worker process says it is alive (the processes table, /metrics).
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    # Log lines: "text", or "json" (one object a line, with RequestId and OrderId).
    log_format: str = Field(default="text", pattern="^(text|json)$")
    # Fair shares: jobs one committer may have running at once (across every runner), and
    # how long a job runs before it yields its thread to a waiting one, between two steps.
    jobs_per_user: int = Field(default=1, ge=1, le=64)
    job_slice_seconds: float = Field(default=5.0, gt=0)
    # The precheck's row count on the live database gives up after this and falls back to
    # the planner's estimate.
    row_check_seconds: float = Field(default=10.0, gt=0)
    # A statement of a change waits at most this long for a row lock before it fails.
    lock_wait_seconds: int = Field(default=30, ge=1, le=3600)
    # A CSV import the database's loader reads is written through this many sessions at once
    # (two blocks, each committing after the one before it; 1: a block at a time).
    import_streams: int = Field(default=2, ge=1, le=2)
    # Chunked changes (DC_CHUNK, cleanup): each chunk aims at this time and at most this many
    # keys, rests this fraction of its time after it, and waits at most this long for a lock.
    chunk_ms: int = Field(default=100, ge=5, le=60_000)
    chunk_max_rows: int = Field(default=50_000, ge=1, le=10_000_000)
    chunk_sleep_ratio: float = Field(default=0.0, ge=0, le=100)
    chunk_lock_wait_seconds: int = Field(default=2, ge=1, le=3600)
    # A shadow copy's chunks (lock-free DDL) aim at this time (``Pace.for_copy``).
    ddl_chunk_ms: int = Field(default=200, ge=5, le=60_000)
    # They hold back while more statements than this run on the target, or a replica lags
    # more (an instance's own throttle settings win: ``opendms instance throttle``).
    throttle_max_running: int = Field(default=25, ge=1)
    throttle_max_lag_seconds: float = Field(default=1.0, gt=0)
    # Exports (DATA_EXPORT): a result with more rows than this fails rather than being cut
    # short; a download link lasts this long.
    export_max_rows: int = Field(default=10_000_000, ge=1)
    # A ticket's SQL (its text or SQL attachment; not an import's file) is prechecked only
    # up to this many statements and bytes: bigger work is an import or a lock-free change.
    # 15 MB is DMS's own limit for ExecSQL.
    ticket_max_statements: int = Field(default=10_000, ge=1)
    ticket_max_sql_bytes: int = Field(default=15 * 1024 * 1024, ge=1024)
    export_link_hours: float = Field(default=24.0, gt=0, le=24 * 366)
    # The assistant actions' language model (GenerateSqlFromNL, AnswerSqlSyntaxByMetaAgent;
    # Fix and Optimize add its opinion): an OpenAI-compatible chat-completions endpoint (the
    # base URL, e.g. https://host/v1), its key (a secret: never logged), the model asked, the
    # other models a request's Model may pick (comma-separated), and the wait for an answer.
    llm_base_url: str | None = None
    llm_api_key: str | None = Field(default=None, repr=False)
    llm_model: str = ""
    llm_models: str = ""
    llm_timeout_seconds: float = Field(default=60.0, gt=0, le=600)

    @field_validator("llm_base_url")
    @classmethod
    def _llm_url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        if not re.fullmatch(r"https?://[^\s/?#@]+(?:/[^\s?#@]*)?", v.strip()):
            raise ValueError("must be an http(s):// URL without credentials, query or fragment")
        return v.strip().rstrip("/")

    @field_validator("data_dir", "tls_cert", "tls_key")
    @classmethod
    def _expand(cls, v: Path | None) -> Path | None:
        return v.expanduser() if v is not None else None

    @property
    def metadata_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'opendms.db'}"

    @property
    def runner_threads(self) -> int:
        """Job threads of a server process: what was set, else 2, or 0 beside a broker."""
        if self.job_threads is not None:
            return self.job_threads
        return 0 if self.broker_url else 2

    @property
    def upload_runner_threads(self) -> int:
        if self.upload_threads is not None:
            return self.upload_threads
        return 0 if self.broker_url else 2

    @property
    def shared_redis_url(self) -> str | None:
        """Where rate limits are shared: the Redis set, else a Redis broker."""
        if self.redis_url:
            return self.redis_url
        if self.broker_url and self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return None

    @property
    def files(self) -> Path:
        return self.files_dir or self.data_dir / "files"

    @property
    def sqlite_targets(self) -> Path:
        return self.sqlite_target_dir or self.data_dir / "targets"

    @property
    def endpoint(self) -> str:
        """What to put in the SDK's ``Config.endpoint`` (host[:port], no scheme)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        return f"{host}:{self.port}"

    def environ(self) -> dict[str, str]:
        """These settings as OPENDMS_* variables, for child processes."""
        out: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is not None:
                out[f"OPENDMS_{name.upper()}"] = str(value)
        return out
