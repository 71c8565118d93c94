"""identity, access keys, policies, nonces

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "request_nonces",
        sa.Column("access_key_id", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("access_key_id", "nonce"),
    )
    with op.batch_alter_table("request_nonces", schema=None) as batch_op:
        batch_op.create_index("ix_request_nonces_expires_at", ["expires_at"], unique=False)

    op.create_table(
        "tenants",
        sa.Column(
            "tid",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tid"),
    )
    op.create_table(
        "accounts",
        sa.Column("uid", sa.String(length=64), nullable=False),
        sa.Column(
            "active_tid", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["active_tid"], ["tenants.tid"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("uid"),
    )
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(length=64), nullable=False),
        sa.Column("uid", sa.String(length=64), nullable=False),
        sa.Column("secret_enc", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["uid"], ["accounts.uid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("access_key_id"),
    )
    op.create_table(
        "users",
        sa.Column(
            "user_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tid", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("uid", sa.String(length=64), nullable=False),
        sa.Column("parent_uid", sa.String(length=64), nullable=True),
        sa.Column("nick_name", sa.String(length=256), nullable=False),
        sa.Column("mobile", sa.String(length=64), nullable=True),
        sa.Column("email", sa.String(length=256), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("roles", sa.String(length=128), nullable=False),
        sa.Column("max_execute_count", sa.BigInteger(), nullable=True),
        sa.Column("max_result_count", sa.BigInteger(), nullable=True),
        sa.Column("notification_mode", sa.String(length=16), nullable=True),
        sa.Column("last_login_at", sa.DateTime(), nullable=True),
        sa.Column("auth_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["tid"], ["tenants.tid"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["uid"], ["accounts.uid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
        sa.UniqueConstraint("tid", "uid", name="uq_users_tid_uid"),
    )
    op.create_table(
        "user_policies",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "name", name="uq_user_policies_user_name"),
    )


def downgrade() -> None:

    op.drop_table("user_policies")
    op.drop_table("users")
    op.drop_table("access_keys")
    op.drop_table("accounts")
    op.drop_table("tenants")
    with op.batch_alter_table("request_nonces", schema=None) as batch_op:
        batch_op.drop_index("ix_request_nonces_expires_at")

    op.drop_table("request_nonces")
