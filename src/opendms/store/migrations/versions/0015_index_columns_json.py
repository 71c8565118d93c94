"""db_indexes.columns: an index's columns as a JSON list, not joined by commas

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

A quoted column name may hold a comma, which the joined text split in two; a list keeps each
name whole, in key order (GetMetaTableDetailInfo's IndexColumns, the key a chunked change
walks). The column stays TEXT: only what it holds changes. Every catalog sync rewrites these
rows, so a name already split before the upgrade is whole again after the next sync.
"""

import json
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = sa.table(
    "db_indexes", sa.column("index_id", sa.BigInteger()), sa.column("columns", sa.Text())
)


def _rewrite(change: Callable[[str], str]) -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(_INDEXES.c.index_id, _INDEXES.c.columns)).all()
    for index_id, columns in rows:
        conn.execute(
            sa.update(_INDEXES)
            .where(_INDEXES.c.index_id == index_id)
            .values(columns=change(columns or ""))
        )


def _to_list(joined: str) -> str:
    names = [c.strip() for c in joined.split(",") if c.strip()]
    return json.dumps(names, ensure_ascii=False, separators=(",", ":"))


def _to_joined(listed: str) -> str:
    return ",".join(json.loads(listed)) if listed else ""


def upgrade() -> None:
    _rewrite(_to_list)


def downgrade() -> None:
    _rewrite(_to_joined)
