"""catalog

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "instances",
        sa.Column(
            "instance_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tid", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("alias", sa.String(length=256), nullable=False),
        sa.Column("instance_type", sa.String(length=32), nullable=False),
        sa.Column("instance_source", sa.String(length=32), nullable=False),
        sa.Column("network_type", sa.String(length=16), nullable=False),
        sa.Column("env_type", sa.String(length=32), nullable=False),
        sa.Column("host", sa.String(length=1024), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("sid", sa.String(length=256), nullable=False),
        sa.Column("database_user", sa.String(length=256), nullable=False),
        sa.Column("password_enc", sa.Text(), nullable=False),
        sa.Column(
            "dba_user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("safe_rule", sa.String(length=256), nullable=False),
        sa.Column("control_mode", sa.String(length=32), nullable=False),
        sa.Column("query_timeout", sa.Integer(), nullable=False),
        sa.Column("export_timeout", sa.Integer(), nullable=False),
        sa.Column("ddl_online", sa.Integer(), nullable=False),
        sa.Column("use_dsql", sa.Integer(), nullable=False),
        sa.Column("sell_sitd", sa.Boolean(), nullable=False),
        sa.Column("data_link_name", sa.String(length=256), nullable=False),
        sa.Column("ecs_instance_id", sa.String(length=256), nullable=False),
        sa.Column("ecs_region", sa.String(length=64), nullable=False),
        sa.Column("vpc_id", sa.String(length=256), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("server_version", sa.String(length=256), nullable=False),
        sa.Column("synced_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["dba_user_id"], ["users.user_id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["tid"], ["tenants.tid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("instance_id"),
        sa.UniqueConstraint("tid", "host", "port", "sid", name="uq_instances_address"),
    )
    op.create_table(
        "owners",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tid", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("resource_type", sa.String(length=16), nullable=False),
        sa.Column("resource_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(["tid"], ["tenants.tid"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("resource_type", "resource_id", "user_id", name="uq_owners"),
    )
    op.create_table(
        "databases",
        sa.Column(
            "db_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "instance_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("tid", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("catalog_name", sa.String(length=256), nullable=False),
        sa.Column("schema_name", sa.String(length=256), nullable=False),
        sa.Column("encoding", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("synced_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["instance_id"], ["instances.instance_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tid"], ["tenants.tid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("db_id"),
        sa.UniqueConstraint("instance_id", "catalog_name", "schema_name", name="uq_databases_name"),
    )
    op.create_table(
        "db_tables",
        sa.Column(
            "table_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("db_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("table_type", sa.String(length=32), nullable=False),
        sa.Column("engine", sa.String(length=64), nullable=False),
        sa.Column("encoding", sa.String(length=64), nullable=False),
        sa.Column("num_rows", sa.BigInteger(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["db_id"], ["databases.db_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("table_id"),
        sa.UniqueConstraint("db_id", "name", name="uq_db_tables_name"),
    )
    op.create_table(
        "db_columns",
        sa.Column(
            "column_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("table_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("column_type", sa.String(length=256), nullable=False),
        sa.Column("data_length", sa.BigInteger(), nullable=True),
        sa.Column("data_precision", sa.Integer(), nullable=True),
        sa.Column("data_scale", sa.Integer(), nullable=True),
        sa.Column("nullable", sa.Boolean(), nullable=False),
        sa.Column("auto_increment", sa.Boolean(), nullable=False),
        sa.Column("default_value", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["table_id"], ["db_tables.table_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("column_id"),
        sa.UniqueConstraint("table_id", "name", name="uq_db_columns_name"),
    )
    op.create_table(
        "db_indexes",
        sa.Column(
            "index_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("table_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("index_type", sa.String(length=16), nullable=False),
        sa.Column("columns", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["table_id"], ["db_tables.table_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("index_id"),
        sa.UniqueConstraint("table_id", "name", name="uq_db_indexes_name"),
    )


def downgrade() -> None:

    op.drop_table("db_indexes")
    op.drop_table("db_columns")
    op.drop_table("db_tables")
    op.drop_table("databases")
    op.drop_table("owners")
    op.drop_table("instances")
