"""Attachments: uploaded directly, or fetched from an http(s) URL by an upload job; and
signed, expiring links to read them back (``GetOrderAttachmentFile``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from sqlalchemy.orm import Session

from opendms.errors import DmsError, ErrorCode
from opendms.files.storage import FileStore, TooLarge
from opendms.identity.caller import Caller
from opendms.store.models import Attachment, UploadJob
from opendms.targets.base import TargetPolicy

FILE_SOURCES = ("datacorrect", "order_info_attachment", "big-file", "sqlreview")


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    timeout_seconds: float


def _new_key(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


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
    attachment = Attachment(
        attachment_key=_new_key("att-"),
        tid=caller.tid,
        user_id=caller.user_id,
        file_name=file_name,
        file_source=source,
        size_bytes=size,
        sha256=sha,
    )
    s.add(attachment)
    s.flush()
    return attachment


def _download(url: str, limits: UploadLimits) -> Iterator[bytes]:
    with (
        httpx.Client(
            timeout=limits.timeout_seconds, follow_redirects=False, trust_env=False
        ) as client,
        client.stream("GET", url) as resp,
    ):
        if resp.status_code != 200:
            raise httpx.HTTPStatusError(
                f"the server answered HTTP {resp.status_code}",
                request=resp.request,
                response=resp,
            )
        declared = resp.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limits.max_bytes:
            raise TooLarge(f"the file is larger than {limits.max_bytes} bytes")
        deadline = time.monotonic() + limits.timeout_seconds
        for chunk in resp.iter_bytes(1 << 20):
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("the download took too long", request=resp.request)
            yield chunk


def check_upload_url(url: str, targets: TargetPolicy) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DmsError(ErrorCode.INVALID_PARAMETER, "UploadURL must be an http(s) URL.")
    if not targets.allows(parts.hostname):
        raise DmsError(
            ErrorCode.TARGET_NOT_ALLOWED,
            f"This server may not fetch from {parts.hostname} (OPENDMS_TARGET_HOSTS).",
        )


def create_upload_job(
    s: Session,
    store: FileStore,
    caller: Caller,
    *,
    url: str,
    file_name: str,
    source: str,
    limits: UploadLimits,
    targets: TargetPolicy,
) -> UploadJob:
    """Fetch ``url`` into an attachment. The fetch runs now, within the call's time limit; the
    job records how it went, so a failure is read back like any DMS upload job."""
    if source not in FILE_SOURCES:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER, f"FileSource must be one of {', '.join(FILE_SOURCES)}."
        )
    check_upload_url(url, targets)
    job = UploadJob(
        job_key=_new_key("job-"),
        tid=caller.tid,
        user_id=caller.user_id,
        file_name=file_name,
        file_source=source,
        upload_url=url,
    )
    s.add(job)
    try:
        attachment = save_attachment(
            s, store, caller, file_name, source, _download(url, limits), limits
        )
    except (httpx.HTTPError, TooLarge, DmsError) as exc:
        job.status = "FAIL"
        job.status_desc = (getattr(exc, "message", None) or str(exc) or type(exc).__name__)[:1000]
    else:
        job.status = "SUCCESS"
        job.status_desc = "uploaded"
        job.attachment_key = attachment.attachment_key
        job.file_size = job.uploaded_size = attachment.size_bytes
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
