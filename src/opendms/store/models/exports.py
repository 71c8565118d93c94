"""What export jobs wrote."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opendms.store.columns import Json
from opendms.store.models.base import Base, BigId, utcnow


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
