"""execution

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sql_audit",
        sa.Column(
            "audit_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tid", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=True),
        sa.Column("instance_id", sa.BigInteger(), nullable=False),
        sa.Column("db_id", sa.BigInteger(), nullable=False),
        sa.Column("schema_name", sa.String(length=256), nullable=False),
        sa.Column("sql_text", sa.Text(), nullable=False),
        sa.Column("sql_type", sa.String(length=32), nullable=False),
        sa.Column("affect_rows", sa.BigInteger(), nullable=True),
        sa.Column("elapsed_ms", sa.BigInteger(), nullable=False),
        sa.Column("exec_state", sa.String(length=16), nullable=False),
        sa.Column("remark", sa.Text(), nullable=False),
        sa.Column("op_time", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("audit_id"),
    )
    with op.batch_alter_table("sql_audit", schema=None) as batch_op:
        batch_op.create_index("ix_sql_audit_tid_time", ["tid", "op_time"], unique=False)

    op.create_table(
        "precheck_statements",
        sa.Column(
            "sql_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("db_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("sql_text", sa.Text(), nullable=False),
        sa.Column("sql_type", sa.String(length=32), nullable=False),
        sa.Column("table_names", sa.Text(), nullable=False),
        sa.Column("affect_rows", sa.BigInteger(), nullable=True),
        sa.Column("rows_source", sa.String(length=16), nullable=False),
        sa.Column("review_status", sa.String(length=16), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.order_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("sql_id"),
        sa.UniqueConstraint("order_id", "db_id", "number", name="uq_precheck_statements"),
    )
    op.create_table(
        "precheck_steps",
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("user_tip", sa.Text(), nullable=False),
        sa.Column("waivable", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.order_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("order_id", "step"),
    )
    op.create_table(
        "sql_jobs",
        sa.Column(
            "sql_job_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("group_id", sa.BigInteger(), nullable=False),
        sa.Column("db_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("job_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("transactional", sa.Boolean(), nullable=False),
        sa.Column("backup", sa.Boolean(), nullable=False),
        sa.Column("affect_rows", sa.BigInteger(), nullable=False),
        sa.Column("log", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_exec_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.order_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("sql_job_id"),
    )
    with op.batch_alter_table("sql_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_sql_jobs_group", ["group_id", "position"], unique=False)
        batch_op.create_index(batch_op.f("ix_sql_jobs_order_id"), ["order_id"], unique=False)

    op.create_table(
        "sql_job_details",
        sa.Column(
            "detail_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "sql_job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("sql_id", sa.BigInteger(), nullable=False),
        sa.Column("sql_text", sa.Text(), nullable=False),
        sa.Column("sql_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("affect_rows", sa.BigInteger(), nullable=True),
        sa.Column("execute_count", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("time_ms", sa.BigInteger(), nullable=True),
        sa.Column("log", sa.Text(), nullable=False),
        sa.Column("backup", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["sql_job_id"], ["sql_jobs.sql_job_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("detail_id"),
        sa.UniqueConstraint("sql_job_id", "number", name="uq_sql_job_details"),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("spec", sa.Text(), nullable=False, server_default="{}"))

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("row_check_waived_by", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("row_check_waiver", sa.Text(), nullable=True))
    _append_only("sql_audit")


def _append_only(table: str) -> None:
    """The SQL audit log is written once (opendms_append_only() is migration 0007's)."""
    if op.get_bind().dialect.name == "postgresql":
        for name, when, each in (
            ("append_only", "UPDATE OR DELETE", "ROW"),
            ("no_truncate", "TRUNCATE", "STATEMENT"),
        ):
            op.execute(
                f"CREATE TRIGGER {table}_{name} BEFORE {when} ON {table} "
                f"FOR EACH {each} EXECUTE FUNCTION opendms_append_only()"
            )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER sql_audit_append_only ON sql_audit")
        op.execute("DROP TRIGGER sql_audit_no_truncate ON sql_audit")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("row_check_waiver")
        batch_op.drop_column("row_check_waived_by")

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("spec")

    op.drop_table("sql_job_details")
    with op.batch_alter_table("sql_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sql_jobs_order_id"))
        batch_op.drop_index("ix_sql_jobs_group")

    op.drop_table("sql_jobs")
    op.drop_table("precheck_steps")
    op.drop_table("precheck_statements")
    with op.batch_alter_table("sql_audit", schema=None) as batch_op:
        batch_op.drop_index("ix_sql_audit_tid_time")

    op.drop_table("sql_audit")
