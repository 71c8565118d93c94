"""Pages of query results, for every listing that answers ``TotalCount`` and one page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Page:
    total: int
    items: Sequence[Any]


def paged(s: Session, query: Any, page: int, size: int) -> Page:
    total = s.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    found = s.execute(query.offset((page - 1) * size).limit(size))
    # select(Entity) pages entities; select(Entity, Other, …) pages rows of them
    items = found.all() if len(query.column_descriptions) > 1 else found.scalars().all()
    return Page(total, items)
