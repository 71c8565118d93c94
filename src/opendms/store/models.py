"""ORM models of the metadata store. Times are naive UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from opendms.store.columns import Json, State
from opendms.store.states import (
    ApprovalAction,
    DeliveryState,
    ExecState,
    JobState,
    OrderStatus,
    PrecheckStepStatus,
    ReviewStatus,
    SqlJobStatus,
    StepStatus,
    UploadStatus,
    WorkflowStatus,
)

# SQLite only auto-increments INTEGER PRIMARY KEY; BIGINT elsewhere.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"

    tid: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Account(Base):
    """A person or robot known by a cloud-style ``Uid``; member of one or more tenants."""

    __tablename__ = "accounts"

    uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    active_tid: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("tenants.tid", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class User(Base):
    """An account's membership of one tenant: the DMS user with its own ``UserId``."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tid", "uid", name="uq_users_tid_uid"),)

    user_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.tid", ondelete="CASCADE"))
    uid: Mapped[str] = mapped_column(String(64), ForeignKey("accounts.uid", ondelete="CASCADE"))
    parent_uid: Mapped[str | None] = mapped_column(String(64))
    nick_name: Mapped[str] = mapped_column(String(256), default="")
    mobile: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(256))
    state: Mapped[str] = mapped_column(String(16), default="NORMAL")
    # Comma-separated role names, in canonical order (see identity.roles).
    roles: Mapped[str] = mapped_column(String(128), default="USER")
    max_execute_count: Mapped[int | None] = mapped_column(BigInteger)
    max_result_count: Mapped[int | None] = mapped_column(BigInteger)
    notification_mode: Mapped[str | None] = mapped_column(String(16))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Bumped on every change that can alter what the user may do; lets each server process
    # cache the user's policies and still see a change on the very next request.
    auth_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class AccessKey(Base):
    __tablename__ = "access_keys"

    access_key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    uid: Mapped[str] = mapped_column(String(64), ForeignKey("accounts.uid", ondelete="CASCADE"))
    # Fernet token under the master key; the clear secret is shown once, at creation.
    secret_enc: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="Active")
    description: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class UserPolicy(Base):
    """A RAM-style policy document attached to one user (one tenant membership)."""

    __tablename__ = "user_policies"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_user_policies_user_name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.user_id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    document: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class RequestNonce(Base):
    """Signature nonces seen inside the replay window; shared by every server process."""

    __tablename__ = "request_nonces"
    __table_args__ = (Index("ix_request_nonces_expires_at", "expires_at"),)

    access_key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


# ---------------------------------------------------------------- catalog


class Instance(Base):
    """A registered database server (DMS ``InstanceId``)."""

    __tablename__ = "instances"
    __table_args__ = (UniqueConstraint("tid", "host", "port", "sid", name="uq_instances_address"),)

    instance_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.tid", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(256))
    instance_type: Mapped[str] = mapped_column(String(32))  # mysql, mariadb, postgresql, sqlite
    instance_source: Mapped[str] = mapped_column(String(32), default="PUBLIC_OWN")
    network_type: Mapped[str] = mapped_column(String(16), default="VPC")
    env_type: Mapped[str] = mapped_column(String(32), default="product")
    host: Mapped[str] = mapped_column(String(1024))  # a file path for SQLite
    port: Mapped[int] = mapped_column(Integer, default=0)
    sid: Mapped[str] = mapped_column(String(256), default="")  # PostgreSQL: database to connect to
    database_user: Mapped[str] = mapped_column(String(256), default="")
    password_enc: Mapped[str] = mapped_column(Text, default="")  # Fernet token
    dba_user_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.user_id", ondelete="SET NULL")
    )
    # Who named the DBA (catalog.dba): a UserId, 0 for the local operator, NULL if unknown
    # (set before migration 0012). A DBA's rights come only from someone else's word.
    dba_assigned_by: Mapped[int | None] = mapped_column(BigInteger)
    safe_rule: Mapped[str] = mapped_column(String(256), default="")
    control_mode: Mapped[str] = mapped_column(String(32), default="COMMON")
    query_timeout: Mapped[int] = mapped_column(Integer, default=60)
    export_timeout: Mapped[int] = mapped_column(Integer, default=600)
    ddl_online: Mapped[int] = mapped_column(Integer, default=0)
    # How chunked changes hold back on this instance (targets.pace.Limits):
    # max_running, max_lag_seconds, replica_instance_id; {} takes the server's defaults.
    throttle: Mapped[dict[str, Any]] = mapped_column(Json, default=dict, server_default="{}")
    use_dsql: Mapped[int] = mapped_column(Integer, default=0)
    sell_sitd: Mapped[bool] = mapped_column(default=False)
    data_link_name: Mapped[str] = mapped_column(String(256), default="")
    ecs_instance_id: Mapped[str] = mapped_column(String(256), default="")
    ecs_region: Mapped[str] = mapped_column(String(64), default="")
    vpc_id: Mapped[str] = mapped_column(String(256), default="")
    state: Mapped[str] = mapped_column(String(16), default="NORMAL")
    server_version: Mapped[str] = mapped_column(String(256), default="")
    synced_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Database(Base):
    """One schema of an instance (DMS ``DbId`` / ``DatabaseId``)."""

    __tablename__ = "databases"
    __table_args__ = (
        UniqueConstraint("instance_id", "catalog_name", "schema_name", name="uq_databases_name"),
    )

    db_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    instance_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("instances.instance_id", ondelete="CASCADE")
    )
    tid: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.tid", ondelete="CASCADE"))
    catalog_name: Mapped[str] = mapped_column(String(256))
    schema_name: Mapped[str] = mapped_column(String(256))
    encoding: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(16), default="NORMAL")
    synced_at: Mapped[datetime | None] = mapped_column(DateTime)


class DbTable(Base):
    __tablename__ = "db_tables"
    __table_args__ = (UniqueConstraint("db_id", "name", name="uq_db_tables_name"),)

    table_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    db_id: Mapped[int] = mapped_column(BigId, ForeignKey("databases.db_id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    table_type: Mapped[str] = mapped_column(String(32), default="BASE TABLE")
    engine: Mapped[str] = mapped_column(String(64), default="")
    encoding: Mapped[str] = mapped_column(String(64), default="")
    num_rows: Mapped[int] = mapped_column(BigInteger, default=0)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    description: Mapped[str] = mapped_column(Text, default="")


class DbColumn(Base):
    __tablename__ = "db_columns"
    __table_args__ = (UniqueConstraint("table_id", "name", name="uq_db_columns_name"),)

    column_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    table_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("db_tables.table_id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(256))
    column_type: Mapped[str] = mapped_column(String(256))
    data_length: Mapped[int | None] = mapped_column(BigInteger)
    data_precision: Mapped[int | None] = mapped_column(Integer)
    data_scale: Mapped[int | None] = mapped_column(Integer)
    nullable: Mapped[bool] = mapped_column(default=True)
    auto_increment: Mapped[bool] = mapped_column(default=False)
    default_value: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")


class DbIndex(Base):
    __tablename__ = "db_indexes"
    __table_args__ = (UniqueConstraint("table_id", "name", name="uq_db_indexes_name"),)

    index_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    table_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("db_tables.table_id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(256))
    index_type: Mapped[str] = mapped_column(String(16))  # PRIMARY, UNIQUE, NORMAL
    # Comma-separated column names in key order.
    columns: Mapped[str] = mapped_column(Text)
    comment: Mapped[str] = mapped_column(Text, default="")


class Owner(Base):
    """A user who owns an instance, a database or a table (approval targets later)."""

    __tablename__ = "owners"
    __table_args__ = (
        UniqueConstraint("resource_type", "resource_id", "user_id", name="uq_owners"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.tid", ondelete="CASCADE"))
    resource_type: Mapped[str] = mapped_column(String(16))  # INSTANCE, DATABASE, TABLE
    resource_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.user_id", ondelete="CASCADE"))


class Permission(Base):
    """One privilege of one user on an instance, database or table (DMS ``UserAccessId``)."""

    __tablename__ = "permissions"
    __table_args__ = (Index("ix_permissions_user", "tid", "user_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.tid", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.user_id", ondelete="CASCADE"))
    ds_type: Mapped[str] = mapped_column(String(16))  # INSTANCE, DATABASE, TABLE
    instance_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("instances.instance_id", ondelete="CASCADE")
    )
    db_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("databases.db_id", ondelete="CASCADE")
    )
    table_name: Mapped[str] = mapped_column(String(256), default="")
    perm_type: Mapped[str] = mapped_column(String(16))  # QUERY, EXPORT, CORRECT, LOGIN, PERF
    expire_at: Mapped[datetime] = mapped_column(DateTime)
    origin_from: Mapped[str] = mapped_column(String(64), default="GRANT")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


# ---------------------------------------------------------------- tickets


class Attachment(Base):
    """An uploaded file, stored content-addressed under the data directory."""

    __tablename__ = "attachments"

    attachment_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    tid: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.tid", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.user_id", ondelete="CASCADE"))
    file_name: Mapped[str] = mapped_column(String(256))
    file_source: Mapped[str] = mapped_column(String(32), default="datacorrect")
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class UploadJob(Base):
    """A fetch of an http(s) URL into an attachment (``CreateUploadFileJob``)."""

    __tablename__ = "upload_jobs"

    job_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    tid: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.tid", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.user_id", ondelete="CASCADE"))
    file_name: Mapped[str] = mapped_column(String(256))
    file_source: Mapped[str] = mapped_column(String(32))
    upload_url: Mapped[str] = mapped_column(Text)
    status: Mapped[UploadStatus] = mapped_column(State(UploadStatus), default=UploadStatus.RUNNING)
    status_desc: Mapped[str] = mapped_column(Text, default="")
    file_size: Mapped[int] = mapped_column(BigInteger, default=0)
    uploaded_size: Mapped[int] = mapped_column(BigInteger, default=0)
    attachment_key: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("attachments.attachment_key")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Order(Base):
    """A ticket (DMS "order")."""

    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_tid_created", "tid", "created_at"),)

    order_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.tid", ondelete="CASCADE"))
    plugin_type: Mapped[str] = mapped_column(String(32))
    status_code: Mapped[OrderStatus] = mapped_column(State(OrderStatus), default=OrderStatus.NEW)
    committer_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.user_id"))
    comment: Mapped[str] = mapped_column(Text, default="")
    # ",5,7," so that one LIKE finds a member; empty as ",".
    related_user_ids: Mapped[str] = mapped_column(Text, default=",")
    # The type's parameters, validated and normalised (PascalCase keys), as JSON.
    params: Mapped[str] = mapped_column(Text)
    # What ListOrders' SearchContent looks through: the comment and every text parameter
    # (SQL, table names…) as plain text, not JSON-escaped.
    search_text: Mapped[str] = mapped_column(Text, default="")
    attachment_key: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("attachments.attachment_key")
    )
    parent_id: Mapped[int | None] = mapped_column(BigInteger)
    workflow_instance_id: Mapped[int | None] = mapped_column(BigInteger)
    close_reason: Mapped[str | None] = mapped_column(Text)
    # SkipDataCorrectRowCheck: who waived a row-count mismatch, and why (cleared with the SQL).
    row_check_waived_by: Mapped[int | None] = mapped_column(BigInteger)
    row_check_waiver: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class OrderDatabase(Base):
    """The databases a ticket targets (visibility and search go through here)."""

    __tablename__ = "order_databases"

    order_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("orders.order_id", ondelete="CASCADE"), primary_key=True
    )
    db_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    instance_id: Mapped[int] = mapped_column(BigInteger, index=True)


class Job(Base):
    """A unit of background work (a ticket's precheck, execution…; an upload's fetch), run by
    the job runners."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_run_after", "state", "run_after"),)

    job_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # None for work that is no ticket's (an upload job's fetch)
    order_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("orders.order_id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(32))
    # What the job was asked to do beyond its ticket (ExecuteDataCorrect's ActionDetail…).
    spec: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # queued (waiting, perhaps until run_after), running (leased), paused (until queued
    # again: PauseDataCorrectSQLJob, an execution window's end), succeeded, failed, cancelled
    state: Mapped[JobState] = mapped_column(State(JobState), default=JobState.QUEUED)
    checkpoint: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


# ---------------------------------------------------------------- precheck and execution


class PrecheckStep(Base):
    """One of the four precheck steps of a ticket's latest precheck run (dms-api.md B.2)."""

    __tablename__ = "precheck_steps"

    order_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("orders.order_id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[str] = mapped_column(String(32), primary_key=True)  # SQL_PARSE … ROW_CHECK
    position: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[int] = mapped_column(BigInteger)  # the precheck run that wrote it
    status: Mapped[PrecheckStepStatus] = mapped_column(
        State(PrecheckStepStatus), default=PrecheckStepStatus.WAITING
    )
    user_tip: Mapped[str] = mapped_column(Text, default="")
    # A failure SkipDataCorrectRowCheck may waive: a row count that differs from the estimate
    # (not a database that could not be asked).
    waivable: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class PrecheckStatement(Base):
    """A statement of a ticket's SQL as its latest precheck found it in one database: what
    it is, what it touches, how many rows it changes there, and what review said. Execution
    runs exactly these statements."""

    __tablename__ = "precheck_statements"
    __table_args__ = (
        UniqueConstraint("order_id", "db_id", "number", name="uq_precheck_statements"),
    )

    sql_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.order_id", ondelete="CASCADE"))
    db_id: Mapped[int] = mapped_column(BigInteger)
    number: Mapped[int] = mapped_column(Integer)  # 1-based, in script order
    line: Mapped[int] = mapped_column(Integer, default=1)
    sql_text: Mapped[str] = mapped_column(Text)
    sql_type: Mapped[str] = mapped_column(String(32))  # INSERT, UPDATE, …
    table_names: Mapped[str] = mapped_column(Text, default="")  # comma-separated
    affect_rows: Mapped[int | None] = mapped_column(BigInteger)
    # How affect_rows was found: COUNT, ESTIMATE (the count ran out of time), LITERAL
    # (INSERT … VALUES), or UNKNOWN.
    rows_source: Mapped[str] = mapped_column(String(16), default="UNKNOWN")
    review_status: Mapped[ReviewStatus] = mapped_column(
        State(ReviewStatus), default=ReviewStatus.WAITING
    )
    # each: code, level, message
    findings: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)


class SqlJob(Base):
    """The execution of a ticket's statements in one database (DMS ``JobId``), part of the
    ticket's execute job (``DBTaskGroupId``)."""

    __tablename__ = "sql_jobs"
    __table_args__ = (Index("ix_sql_jobs_group", "group_id", "position"),)

    sql_job_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("orders.order_id", ondelete="CASCADE"), index=True
    )
    group_id: Mapped[int] = mapped_column(BigInteger)  # jobs.job_id of the execute job
    db_id: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(Integer)
    # Names this job's progress markers on the target: unique across installations sharing it.
    token: Mapped[str] = mapped_column(String(32))
    job_type: Mapped[str] = mapped_column(String(32), default="DATA_CORRECT")
    status: Mapped[SqlJobStatus] = mapped_column(State(SqlJobStatus), default=SqlJobStatus.INIT)
    transactional: Mapped[bool] = mapped_column(default=False)
    backup: Mapped[bool] = mapped_column(default=False)
    affect_rows: Mapped[int] = mapped_column(BigInteger, default=0)
    log: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_exec_at: Mapped[datetime | None] = mapped_column(DateTime)


class SqlJobDetail(Base):
    """One statement of a SQL job and what running it did (DMS ``JobDetailId``)."""

    __tablename__ = "sql_job_details"
    __table_args__ = (UniqueConstraint("sql_job_id", "number", name="uq_sql_job_details"),)

    detail_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sql_job_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("sql_jobs.sql_job_id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column(Integer)
    sql_id: Mapped[int] = mapped_column(BigInteger)  # precheck_statements.sql_id
    sql_text: Mapped[str] = mapped_column(Text)
    sql_type: Mapped[str] = mapped_column(String(32))
    # INIT, RUNNING, SUCCESS, FAIL
    status: Mapped[SqlJobStatus] = mapped_column(State(SqlJobStatus), default=SqlJobStatus.INIT)
    affect_rows: Mapped[int | None] = mapped_column(BigInteger)
    execute_count: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    time_ms: Mapped[int | None] = mapped_column(BigInteger)
    log: Mapped[str] = mapped_column(Text, default="")
    # With backupData, where the rows it changed were saved on the target, JSON: table (the
    # backup table there), of (the changed table), kind, key (its primary key), rows.
    backup: Mapped[dict[str, Any] | None] = mapped_column(Json)
    # A chunked statement's progress, JSON (execution.chunked.Progress): rows done and
    # estimated, chunks, the current key and chunk size, rate, throttle state and why.
    progress: Mapped[dict[str, Any]] = mapped_column(Json, default=dict, server_default="{}")


class SensitiveColumn(Base):
    """A column whose values exports mask (exports.masks), named as in the catalog and
    matched case-insensitively. Kept apart from ``db_columns``, which every catalog sync
    rewrites: the flag outlives a sync and a table dropped and created again."""

    __tablename__ = "sensitive_columns"
    __table_args__ = (
        UniqueConstraint("db_id", "table_name", "column_name", name="uq_sensitive_columns"),
    )

    sensitive_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    db_id: Mapped[int] = mapped_column(BigId, ForeignKey("databases.db_id", ondelete="CASCADE"))
    table_name: Mapped[str] = mapped_column(String(256))  # lower-cased
    column_name: Mapped[str] = mapped_column(String(256))  # lower-cased
    mask: Mapped[str] = mapped_column(String(16))  # FULL, HASH, LAST4
    set_by: Mapped[int | None] = mapped_column(BigInteger)
    set_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ExportFile(Base):
    """The file an export job wrote (DATA_EXPORT): a zip under the files directory."""

    __tablename__ = "export_files"

    job_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("jobs.job_id", ondelete="CASCADE"), primary_key=True
    )
    order_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("orders.order_id", ondelete="CASCADE"), index=True
    )
    path: Mapped[str] = mapped_column(Text)  # relative to the files directory
    file_name: Mapped[str] = mapped_column(String(256))
    file_type: Mapped[str] = mapped_column(String(8))
    encoding: Mapped[str] = mapped_column(String(16))
    rows: Mapped[int] = mapped_column(BigInteger)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    # columns: a list of position, column, mask, sources (exports.masks.Masked); traced:
    # whether the lineage traced them (False: every column was masked)
    masking: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CronRun(Base):
    """One fire time of a cleanup ticket's schedule (DC_CRON_CLEAR): keyed by (ticket, fire
    time), so two schedulers or a restart cannot run it twice."""

    __tablename__ = "cron_runs"
    __table_args__ = (UniqueConstraint("order_id", "fire_at", name="uq_cron_runs_fire"),)

    run_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("orders.order_id", ondelete="CASCADE"), index=True
    )
    fire_at: Mapped[datetime] = mapped_column(DateTime)  # UTC
    job_id: Mapped[int | None] = mapped_column(BigInteger)  # its execute job; None: skipped
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SqlAudit(Base):
    """Every statement OpenDMS ran on a target for someone (``ListSQLExecAuditLog``); written
    once, and database triggers refuse UPDATE and DELETE (migration 0008)."""

    __tablename__ = "sql_audit"
    __table_args__ = (Index("ix_sql_audit_tid_time", "tid", "op_time"),)

    audit_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[int | None] = mapped_column(BigInteger)
    instance_id: Mapped[int] = mapped_column(BigInteger)
    db_id: Mapped[int] = mapped_column(BigInteger)
    schema_name: Mapped[str] = mapped_column(String(256))
    sql_text: Mapped[str] = mapped_column(Text)
    sql_type: Mapped[str] = mapped_column(String(32))
    affect_rows: Mapped[int | None] = mapped_column(BigInteger)
    elapsed_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    exec_state: Mapped[ExecState] = mapped_column(State(ExecState))
    remark: Mapped[str] = mapped_column(Text, default="")
    op_time: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


# ---------------------------------------------------------------- approval workflows


class WorkflowNode(Base):
    """An approval step: a system node resolved when a ticket reaches it (Admin, DBA,
    DBA Roles, Owner), or a USER_LIST node with its own approvers."""

    __tablename__ = "workflow_nodes"
    __table_args__ = (UniqueConstraint("tid", "name", name="uq_workflow_nodes_name"),)

    node_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.tid", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    node_type: Mapped[str] = mapped_column(String(16))  # SYS, USER_LIST
    system_kind: Mapped[str | None] = mapped_column(String(16))  # ADMIN, DBA, DBA_ROLES, OWNER
    comment: Mapped[str] = mapped_column(Text, default="")
    create_user_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class WorkflowNodeUser(Base):
    __tablename__ = "workflow_node_users"

    node_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workflow_nodes.node_id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True
    )


class WorkflowTemplate(Base):
    __tablename__ = "workflow_templates"
    __table_args__ = (UniqueConstraint("tid", "name", name="uq_workflow_templates_name"),)

    template_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.tid", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    is_system: Mapped[bool] = mapped_column(default=False)
    enabled: Mapped[bool] = mapped_column(default=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    create_user_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class WorkflowTemplateNode(Base):
    """The nodes of a template, in order (position 1 first)."""

    __tablename__ = "workflow_template_nodes"

    template_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workflow_templates.template_id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workflow_nodes.node_id", ondelete="CASCADE")
    )


class SecurityRuleSet(Base):
    """A tenant's security rule set (an instance's ``SafeRule`` names one), kept as the YAML or
    JSON document it was loaded from; ``version`` counts loads under the same name."""

    __tablename__ = "security_rule_sets"
    __table_args__ = (UniqueConstraint("tid", "name", name="uq_security_rule_sets_name"),)

    rule_set_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.tid", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    source: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class WorkflowInstance(Base):
    """One approval run of a ticket (DMS ``WorkflowInstanceId``), with the decision that
    chose its template. Approval acts lock this row, so they apply one at a time."""

    __tablename__ = "workflow_instances"

    workflow_instance_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.tid", ondelete="CASCADE"))
    order_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("orders.order_id", ondelete="CASCADE"), index=True
    )
    template_id: Mapped[int] = mapped_column(BigInteger)  # -1: no approval needed
    template_name: Mapped[str] = mapped_column(String(128))
    status: Mapped[WorkflowStatus] = mapped_column(
        State(WorkflowStatus), default=WorkflowStatus.AUDITING
    )
    current_position: Mapped[int | None] = mapped_column(Integer)
    risk: Mapped[str] = mapped_column(String(16))  # NONE, LOW, MIDDLE, HIGH, HIGHEST
    rule_set: Mapped[str] = mapped_column(String(256))
    reasons: Mapped[list[str]] = mapped_column(Json, default=list)  # sentences
    # The tables the ticket touches ("schema.table", JSON): an Owner node reached later
    # resolves to their owners without analysing the SQL again.
    tables: Mapped[list[str]] = mapped_column(Json, default=list)
    self_approval: Mapped[bool] = mapped_column(default=False)
    one_node_per_approver: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class WorkflowStep(Base):
    """A node of a workflow instance, copied from the template at submission (or inserted by
    ADD_APPROVAL_NODE). Its approvers are resolved when the flow reaches it."""

    __tablename__ = "workflow_steps"
    __table_args__ = (Index("ix_workflow_steps_instance", "workflow_instance_id", "position"),)

    step_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workflow_instance_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workflow_instances.workflow_instance_id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    node_id: Mapped[int] = mapped_column(BigInteger)
    node_name: Mapped[str] = mapped_column(String(128))
    node_type: Mapped[str] = mapped_column(String(16))
    system_kind: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[StepStatus] = mapped_column(State(StepStatus), default=StepStatus.WAITING)
    # Why the node resolved to nobody (or to fewer people than it names), for the ticket to say.
    note: Mapped[str] = mapped_column(Text, default="")
    operator_id: Mapped[int | None] = mapped_column(BigInteger)
    operate_comment: Mapped[str | None] = mapped_column(Text)
    operated_at: Mapped[datetime | None] = mapped_column(DateTime)


class WorkflowApprover(Base):
    """Who may act on a step. A transfer deactivates the old approver instead of deleting it,
    so whoever was ever asked keeps sight of the ticket."""

    __tablename__ = "workflow_approvers"
    __table_args__ = (Index("ix_workflow_approvers_user", "user_id", "active"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    step_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workflow_steps.step_id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.user_id", ondelete="CASCADE"))
    active: Mapped[bool] = mapped_column(default=True)


class ApprovalEvent(Base):
    """The audit trail of approvals: one row per act, written once. Nothing in OpenDMS
    updates or deletes these rows, and database triggers refuse it (migration 0007)."""

    __tablename__ = "approval_events"
    __table_args__ = (Index("ix_approval_events_instance", "workflow_instance_id", "event_id"),)

    event_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[int] = mapped_column(BigInteger, index=True)
    workflow_instance_id: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[ApprovalAction] = mapped_column(State(ApprovalAction, 32))
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    on_behalf_of: Mapped[int | None] = mapped_column(BigInteger)
    position: Mapped[int | None] = mapped_column(Integer)
    node_name: Mapped[str] = mapped_column(String(128), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


# ---------------------------------------------------------------- notifications


class Webhook(Base):
    """A tenant's webhook: where ticket events are POSTed, and the key that signs them."""

    __tablename__ = "webhooks"

    tid: Mapped[int] = mapped_column(
        BigId, ForeignKey("tenants.tid", ondelete="CASCADE"), primary_key=True
    )
    url: Mapped[str] = mapped_column(Text)
    secret_enc: Mapped[str] = mapped_column(Text)  # Fernet token
    enabled: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class WebhookDelivery(Base):
    """One event to deliver, written in the transaction of the act it reports (an outbox);
    the delivery loop claims it, POSTs it and records each attempt here."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),)

    delivery_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.tid", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    state: Mapped[DeliveryState] = mapped_column(
        State(DeliveryState), default=DeliveryState.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
