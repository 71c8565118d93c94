"""Uploaded files and the fetches that bring them in."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opendms.store.columns import State
from opendms.store.models.base import Base, BigId, utcnow
from opendms.store.states import UploadStatus


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
