"""The executor of ``upload`` jobs: fetch an upload job's URL into an attachment.

The whole fetch is one step: a file half fetched is worth nothing, so a crash or a lost lease
starts it over (the file store keeps a file only once it is complete). No metadata
transaction is open while the URL is read.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from opendms.files import service as files
from opendms.files.fetch import FetchFailed, fetch
from opendms.files.service import UploadLimits
from opendms.files.storage import FileStore, TooLarge
from opendms.jobs.runner import Checkpoint, Step, Work
from opendms.store.models import Job, UploadJob
from opendms.store.states import UPLOAD_IN_FLIGHT, UploadStatus

log = logging.getLogger("opendms.files")

MAX_ATTEMPTS = 3  # runs cut short (a crash, a lost lease) before the job is given up


def _upload_of(work: Work, s: Session) -> UploadJob | None:
    job = s.get(Job, work.job_id)
    key = (job.spec or {}).get("job_key") if job is not None else None
    return s.get(UploadJob, key, with_for_update=True) if key else None


@dataclass
class Upload:
    files: FileStore
    limits: UploadLimits

    def __call__(self, work: Work, checkpoint: Checkpoint) -> Step:
        with work.store.session() as s:
            upload = _upload_of(work, s)
            if upload is None or upload.status not in UPLOAD_IN_FLIGHT:
                return Step(checkpoint, done=True)
            key, url = upload.job_key, upload.upload_url
            if work.attempt > MAX_ATTEMPTS:
                reason = f"the fetch was cut short {MAX_ATTEMPTS} times; giving up"
                upload.status, upload.status_desc = UploadStatus.FAIL, reason
                return Step(checkpoint, failure=reason)
            upload.status, upload.status_desc = UploadStatus.RUNNING, "fetching"
        limits = self.limits
        try:
            body = fetch(
                url,
                limits.hosts,
                max_bytes=limits.max_bytes,
                timeout_seconds=limits.timeout_seconds,
            )
            with contextlib.closing(body):
                sha, size = self.files.put(body, limits.max_bytes)
        except FetchFailed as exc:
            log.info("upload job %s: fetching %s failed: %s", key, url, exc.detail)
            return self._fail(work, key, exc.message)
        except TooLarge as exc:
            return self._fail(work, key, str(exc))
        except Exception:
            log.exception("upload job %s: fetching %s failed", key, url)
            return self._fail(work, key, "the upload failed on the server")
        with work.store.session() as s:
            upload = _upload_of(work, s)
            if upload is None or upload.status not in UPLOAD_IN_FLIGHT:
                return Step(checkpoint, done=True)
            attachment = files.attach(
                s, upload.tid, upload.user_id, upload.file_name, upload.file_source, sha, size
            )
            upload.status, upload.status_desc = UploadStatus.SUCCESS, "uploaded"
            upload.attachment_key = attachment.attachment_key
            upload.file_size = upload.uploaded_size = size
        return Step({"attachment_key": attachment.attachment_key}, done=True)

    @staticmethod
    def _fail(work: Work, key: str, reason: str) -> Step:
        with work.store.session() as s:
            upload = s.get(UploadJob, key, with_for_update=True)
            if upload is not None:
                upload.status, upload.status_desc = UploadStatus.FAIL, reason[:1000]
        return Step({}, failure=reason)
