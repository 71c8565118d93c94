"""Attachments (dms-api.md A.7): upload jobs and a ticket's attachment link."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from opendms.errors import DmsError, ErrorCode
from opendms.files import service as files
from opendms.gateway.table import Access, Action, Context, Payload
from opendms.gateway.wire import Long, TenantScoped
from opendms.store.models import Attachment
from opendms.tickets import service as tickets

FileName = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^/\\\x00]+$")]


class CreateUploadFileJobRequest(TenantScoped):
    file_name: FileName
    file_source: Annotated[str, Field(min_length=1, max_length=32)]
    upload_url: Annotated[str, Field(min_length=1, max_length=4096)] = Field(alias="UploadURL")


def create_upload_file_job(ctx: Context, req: CreateUploadFileJobRequest) -> Payload:
    job = files.create_upload_job(
        ctx.session,
        ctx.caller,
        url=req.upload_url,
        file_name=req.file_name,
        source=req.file_source,
        limits=ctx.means.uploads,
    )
    return {"JobKey": job.job_key}


class GetUserUploadFileJobRequest(TenantScoped):
    job_key: Annotated[str, Field(min_length=1, max_length=64)]


def get_user_upload_file_job(ctx: Context, req: GetUserUploadFileJobRequest) -> Payload:
    job = files.get_upload_job(ctx.session, ctx.caller, req.job_key)
    detail: Payload = {
        "JobKey": job.job_key,
        "JobStatus": job.status,
        "JobStatusDesc": job.status_desc,
        "FileName": job.file_name,
        "FileSource": job.file_source,
        "FileSize": job.file_size,
        "UploadedSize": job.uploaded_size,
        "UploadType": "URL",
        "UploadURL": job.upload_url,
        "AttachmentKey": job.attachment_key,
    }
    return {"UploadFileJobDetail": {k: v for k, v in detail.items() if v is not None}}


class GetOrderAttachmentFileRequest(TenantScoped):
    order_id: Annotated[Long, Field(ge=1)]


def get_order_attachment_file(ctx: Context, req: GetOrderAttachmentFileRequest) -> Payload:
    order = tickets.get_order(ctx.session, ctx.caller, req.order_id)
    attachment = ctx.session.get(Attachment, order.attachment_key) if order.attachment_key else None
    if attachment is None:
        return {"FileUrl": ""}
    link = ctx.means.links.query(attachment.attachment_key)
    return {"FileUrl": f"{ctx.base_url}/files/{attachment.attachment_key}?{link}"}


class UploadFileRequest(TenantScoped):
    file_name: FileName
    file_source: Annotated[str, Field(min_length=1, max_length=32)] = "datacorrect"


def upload_file(ctx: Context, req: UploadFileRequest) -> Payload:
    """The request body is the file (any content type but form-urlencoded)."""
    if req.file_source not in files.FILE_SOURCES:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"FileSource must be one of {', '.join(files.FILE_SOURCES)}.",
        )
    attachment = files.save_attachment(
        ctx.session,
        ctx.means.files,
        ctx.caller,
        req.file_name,
        req.file_source,
        [ctx.body],
        ctx.means.uploads,
    )
    return {
        "AttachmentKey": attachment.attachment_key,
        "FileSize": attachment.size_bytes,
        "Sha256": attachment.sha256,
    }


ACTIONS = (
    Action(
        "CreateUploadFileJob",
        CreateUploadFileJobRequest,
        create_upload_file_job,
        Access.CREATE,
        "Queue the fetch of an http(s) URL into an attachment; returns the job's key at once.",
    ),
    Action(
        "GetUserUploadFileJob",
        GetUserUploadFileJobRequest,
        get_user_upload_file_job,
        Access.GET,
        "How an upload job went, and its AttachmentKey.",
    ),
    Action(
        "GetOrderAttachmentFile",
        GetOrderAttachmentFileRequest,
        get_order_attachment_file,
        Access.GET,
        "A signed, expiring link to a ticket's attachment.",
    ),
    Action(
        "UploadFile",
        UploadFileRequest,
        upload_file,
        Access.CREATE,
        "OpenDMS: upload a file in the (V3-signed) request body; returns its AttachmentKey.",
        methods=frozenset({"POST", "PUT"}),
        extension=True,
        takes_body=True,
    ),
)
