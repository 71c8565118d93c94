"""Attachments: uploaded directly, or fetched from an http(s) URL by an upload job; and
signed, expiring links to read them back (``GetOrderAttachmentFile``).

``CreateUploadFileJob`` only queues the fetch: an ``upload`` job (``files.run``) runs it on
the upload runner's threads, and ``GetUserUploadFileJob`` reads how it is going."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opendms.errors import DmsError, ErrorCode
from opendms.files.addresses import UploadHosts, parse_address
from opendms.files.fetch import FetchFailed, not_allowed, parse_url
from opendms.files.storage import FileStore, TooLarge
from opendms.identity.caller import Caller
from opendms.store.models import Attachment, Job, UploadJob
from opendms.store.states import UPLOAD_IN_FLIGHT, UploadStatus

FILE_SOURCES = ("datacorrect", "order_info_attachment", "big-file", "sqlreview")
UPLOAD = "upload"  # the job kind
# Upload jobs one user may have waiting or running at once: the upload runner's threads are
# shared, and a user queueing hundreds of slow fetches would hold everyone else's back.
MAX_IN_FLIGHT = 4


@dataclass(frozen=True)
class UploadLimits:
    """How big an upload may be, how long fetching one may take in all, and from where."""

    max_bytes: int = 1024**3
    timeout_seconds: float = 120.0
    hosts: UploadHosts = field(default_factory=UploadHosts)


def _new_key(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def attach(
    s: Session, tid: int, user_id: int, file_name: str, source: str, sha256: str, size: int
) -> Attachment:
    """The attachment row of a stored file, under a new key."""
    attachment = Attachment(
        attachment_key=_new_key("att-"),
        tid=tid,
        user_id=user_id,
        file_name=file_name,
        file_source=source,
        size_bytes=size,
        sha256=sha256,
    )
    s.add(attachment)
    s.flush()
    return attachment


def save_attachment(
    s: Session,
    store: FileStore,
    caller: Caller,
    file_name: str,
    source: str,
    chunks: Iterable[bytes],
    limits: UploadLimits,
) -> Attachment:
    try:
        sha, size = store.put(chunks, limits.max_bytes)
    except TooLarge as exc:
        raise DmsError(ErrorCode.INVALID_PARAMETER, f"{file_name}: {exc}.") from exc
    return attach(s, caller.tid, caller.user_id, file_name, source, sha, size)


def create_upload_job(
    s: Session,
    caller: Caller,
    *,
    url: str,
    file_name: str,
    source: str,
    limits: UploadLimits,
) -> UploadJob:
    """Queue the fetch of ``url`` into an attachment. What can be judged without the network
    is refused now (not http(s), an address ``OPENDMS_UPLOAD_HOSTS`` does not allow); the
    rest, names included, is judged by the job as it connects."""
    if source not in FILE_SOURCES:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER, f"FileSource must be one of {', '.join(FILE_SOURCES)}."
        )
    try:
        host = parse_url(url).host
    except FetchFailed as exc:
        raise DmsError(ErrorCode.INVALID_PARAMETER, exc.message) from exc
    address = parse_address(host)
    if address is not None and limits.hosts.refusal(host, [address]) is not None:
        raise DmsError(ErrorCode.TARGET_NOT_ALLOWED, not_allowed(host))
    busy = s.scalar(
        select(func.count())
        .select_from(UploadJob)
        .where(UploadJob.user_id == caller.user_id, UploadJob.status.in_(UPLOAD_IN_FLIGHT))
    )
    if (busy or 0) >= MAX_IN_FLIGHT:
        raise DmsError(
            ErrorCode.UPLOAD_JOBS_IN_FLIGHT,
            f"{busy} of your upload jobs are still waiting or running; at most "
            f"{MAX_IN_FLIGHT} may be. Try again when one has ended.",
        )
    job = UploadJob(
        job_key=_new_key("job-"),
        tid=caller.tid,
        user_id=caller.user_id,
        file_name=file_name,
        file_source=source,
        upload_url=url,
        status=UploadStatus.PENDING,
        status_desc="waiting for the upload runner",
    )
    s.add(job)
    s.add(Job(order_id=None, kind=UPLOAD, spec={"job_key": job.job_key}))
    s.flush()
    return job


def get_upload_job(s: Session, caller: Caller, job_key: str) -> UploadJob:
    job = s.get(UploadJob, job_key)
    if job is None or job.tid != caller.tid or job.user_id != caller.user_id:
        raise DmsError(ErrorCode.UPLOAD_JOB_NOT_FOUND, f"No upload job {job_key[:64]!r}.")
    return job


class LinkSigner:
    """Expiring download links signed with a key derived from the master key."""

    def __init__(self, master_key: bytes, ttl_seconds: int = 3600) -> None:
        self._key = hashlib.sha256(b"opendms download links\0" + master_key).digest()
        self.ttl = ttl_seconds

    def _mac(self, key: str, expires: int) -> str:
        mac = hmac.new(self._key, f"{key}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def query(self, attachment_key: str, now: float | None = None, ttl: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + (self.ttl if ttl is None else ttl))
        return f"expires={expires}&signature={self._mac(attachment_key, expires)}"

    def valid(self, attachment_key: str, expires: str, signature: str) -> bool:
        if not (expires.isascii() and expires.isdigit()) or int(expires) < time.time():
            return False
        return hmac.compare_digest(self._mac(attachment_key, int(expires)), signature)
