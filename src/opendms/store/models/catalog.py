"""Registered instances, their metadata, owners, privileges and sensitive columns."""

from __future__ import annotations

from datetime import datetime
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
from sqlalchemy.orm import Mapped, mapped_column

from opendms.store.columns import Json, State
from opendms.store.models.base import Base, BigId, utcnow
from opendms.store.states import DatabaseState, InstanceState


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
    state: Mapped[InstanceState] = mapped_column(State(InstanceState), default=InstanceState.NORMAL)
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
    state: Mapped[DatabaseState] = mapped_column(State(DatabaseState), default=DatabaseState.NORMAL)
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
    # Column names in key order (a JSON list since migration 0015).
    columns: Mapped[list[str]] = mapped_column(Json)
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
