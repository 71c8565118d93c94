"""approvals

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "approval_events",
        sa.Column(
            "event_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tid", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("workflow_instance_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("on_behalf_of", sa.BigInteger(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("node_name", sa.String(length=128), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    with op.batch_alter_table("approval_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_approval_events_instance", ["workflow_instance_id", "event_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_approval_events_order_id"), ["order_id"], unique=False)

    op.create_table(
        "security_rule_sets",
        sa.Column(
            "rule_set_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tid", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["tid"], ["tenants.tid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rule_set_id"),
        sa.UniqueConstraint("tid", "name", name="uq_security_rule_sets_name"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column(
            "delivery_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tid", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["tid"], ["tenants.tid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("delivery_id"),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_deliveries_due", ["state", "next_attempt_at"], unique=False
        )

    op.create_table(
        "webhooks",
        sa.Column("tid", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret_enc", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["tid"], ["tenants.tid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tid"),
    )
    op.create_table(
        "workflow_instances",
        sa.Column(
            "workflow_instance_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tid", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("template_id", sa.BigInteger(), nullable=False),
        sa.Column("template_name", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("current_position", sa.Integer(), nullable=True),
        sa.Column("risk", sa.String(length=16), nullable=False),
        sa.Column("rule_set", sa.String(length=256), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("tables", sa.Text(), nullable=False),
        sa.Column("self_approval", sa.Boolean(), nullable=False),
        sa.Column("one_node_per_approver", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.order_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tid"], ["tenants.tid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workflow_instance_id"),
    )
    with op.batch_alter_table("workflow_instances", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_workflow_instances_order_id"), ["order_id"], unique=False
        )

    op.create_table(
        "workflow_steps",
        sa.Column(
            "step_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "workflow_instance_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.BigInteger(), nullable=False),
        sa.Column("node_name", sa.String(length=128), nullable=False),
        sa.Column("node_type", sa.String(length=16), nullable=False),
        sa.Column("system_kind", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("operator_id", sa.BigInteger(), nullable=True),
        sa.Column("operate_comment", sa.Text(), nullable=True),
        sa.Column("operated_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workflow_instance_id"],
            ["workflow_instances.workflow_instance_id"],
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("step_id"),
    )
    with op.batch_alter_table("workflow_steps", schema=None) as batch_op:
        batch_op.create_index(
            "ix_workflow_steps_instance", ["workflow_instance_id", "position"], unique=False
        )

    op.create_table(
        "workflow_approvers",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("step_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["step_id"], ["workflow_steps.step_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("workflow_approvers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_workflow_approvers_step_id"), ["step_id"], unique=False
        )
        batch_op.create_index("ix_workflow_approvers_user", ["user_id", "active"], unique=False)
    _append_only("approval_events")


def _append_only(table: str) -> None:
    """The audit trail is written once: the database itself refuses UPDATE and DELETE."""
    message = f"{table} is append-only"
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION opendms_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION opendms_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION opendms_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER approval_events_append_only ON approval_events")
        op.execute("DROP TRIGGER approval_events_no_truncate ON approval_events")
        op.execute("DROP FUNCTION opendms_append_only()")
    with op.batch_alter_table("workflow_approvers", schema=None) as batch_op:
        batch_op.drop_index("ix_workflow_approvers_user")
        batch_op.drop_index(batch_op.f("ix_workflow_approvers_step_id"))

    op.drop_table("workflow_approvers")
    with op.batch_alter_table("workflow_steps", schema=None) as batch_op:
        batch_op.drop_index("ix_workflow_steps_instance")

    op.drop_table("workflow_steps")
    with op.batch_alter_table("workflow_instances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workflow_instances_order_id"))

    op.drop_table("workflow_instances")
    op.drop_table("webhooks")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_due")

    op.drop_table("webhook_deliveries")
    op.drop_table("security_rule_sets")
    with op.batch_alter_table("approval_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approval_events_order_id"))
        batch_op.drop_index("ix_approval_events_instance")

    op.drop_table("approval_events")
