"""web console sign-in: account passwords, sessions, sign-in attempts

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("password_hash", sa.String(255), nullable=True))
    op.add_column("accounts", sa.Column("password_changed_at", sa.DateTime(), nullable=True))
    op.create_table(
        "console_sessions",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column(
            "user_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("users.user_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("client", sa.String(128), nullable=False),
        sa.Column("user_agent", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("ended_why", sa.String(32), nullable=True),
    )
    op.create_index("ix_console_sessions_user_id", "console_sessions", ["user_id"])
    op.create_table(
        "sign_in_attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("uid", sa.String(64), nullable=True),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("client_host", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
    )
    op.create_index("ix_sign_in_attempts_name_at", "sign_in_attempts", ["user_name", "at"])
    op.create_index("ix_sign_in_attempts_client_at", "sign_in_attempts", ["client_host", "at"])
    op.create_index("ix_sign_in_attempts_uid_at", "sign_in_attempts", ["uid", "at"])


def downgrade() -> None:
    op.drop_table("sign_in_attempts")
    op.drop_table("console_sessions")
    op.drop_column("accounts", "password_changed_at")
    op.drop_column("accounts", "password_hash")
