"""Running an approved export ticket and reading how it went (dms-api.md A.4, B.5).

An export is one ``export`` job (the wire's ``JobId``). It reads the prechecked query in a
read-only, repeatable-read transaction and writes one zip under the files directory
(``exports.run``); ``export_files`` records it. Downloads go through links signed for the
person who asked for them (``GetDataExportDownloadURL``), checked again when followed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from opendms.errors import DmsError, ErrorCode
from opendms.execution.service import WIRE_TIME, check_starter
from opendms.exports.formats import ENCODINGS, FILE_TYPES
from opendms.identity.caller import Caller
from opendms.identity.roles import parse_roles
from opendms.precheck import service as precheck
from opendms.store.models import ExportFile, Job, Order, SqlAudit, User, utcnow
from opendms.tickets import service as tickets
from opendms.tickets.registry import kind_of

EXPORT = "export"  # the job kind
MODES = ("FAST", "NORMAL")
_KEYS = {"mode", "encoding", "fileType", "startTime", "transaction"}


@dataclass(frozen=True)
class ExportPlan:
    """ExecuteDataExport's ``ActionDetail``. Every export reads one consistent snapshot, so
    ``transaction`` changes nothing; a NORMAL export and a FAST one can both be stopped."""

    file_type: str = "CSV"
    encoding: str = "UTF8"
    mode: str = "FAST"
    start: str | None = None  # UTC, YYYY-MM-DD HH:mm:ss; None: now
    by: int | None = None

    @property
    def start_at(self) -> datetime | None:
        return datetime.strptime(self.start, WIRE_TIME) if self.start else None


def _choice(detail: dict[str, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = detail.get(key)
    if value in (None, ""):
        return default
    text = str(value).upper().replace("-", "_")
    if text not in allowed:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"ActionDetail.{key}: {str(value)[:32]!r} is not one of {', '.join(allowed)}.",
        )
    return text


def plan_from(detail: dict[str, Any] | None) -> ExportPlan:
    detail = detail or {}
    unknown = sorted(set(detail) - _KEYS)
    if unknown:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"ActionDetail: unknown key {', '.join(k[:32] for k in unknown[:3])}; it takes "
            f"{', '.join(sorted(_KEYS))}.",
        )
    if not isinstance(detail.get("transaction", False), bool | str):
        raise DmsError(ErrorCode.INVALID_PARAMETER, "ActionDetail.transaction must be a boolean.")
    start = detail.get("startTime") or None
    if start is not None:
        try:
            datetime.strptime(str(start), WIRE_TIME)
        except ValueError:
            raise DmsError(
                ErrorCode.INVALID_PARAMETER,
                f"ActionDetail.startTime: {str(start)[:64]!r} is not a time like "
                "2026-01-31 23:00:00.",
            ) from None
    return ExportPlan(
        file_type=_choice(detail, "fileType", FILE_TYPES, "CSV"),
        encoding=_choice(detail, "encoding", tuple(ENCODINGS), "UTF8"),
        mode=_choice(detail, "mode", MODES, "FAST"),
        start=str(start) if start else None,
    )


def export_ticket(s: Session, caller: Caller, order_id: int, *, lock: bool = True) -> Order:
    order = tickets.get_order(s, caller, order_id, lock=lock)
    if kind_of(order.plugin_type).verb != "export":
        raise DmsError(
            ErrorCode.UNSUPPORTED_PLUGIN_TYPE,
            f"Ticket {order_id} is {order.plugin_type}; only export tickets (DATA_EXPORT) export.",
        )
    return order


def execute(s: Session, caller: Caller, order_id: int, plan: ExportPlan) -> Job:
    """ExecuteDataExport: the approved ticket's export, started by its committer."""
    order = export_ticket(s, caller, order_id)
    check_starter(s, caller, order)
    if order.status_code != "Approved":
        raise DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Ticket {order_id} is {order.status_code}; only an approved export runs "
            "(RestartDataExportJob runs a failed one again).",
        )
    return _queue(s, order, replace(plan, by=caller.user_id))


def _queue(s: Session, order: Order, plan: ExportPlan) -> Job:
    job = Job(
        order_id=order.order_id,
        kind=EXPORT,
        spec=json.dumps(asdict(plan)),
        run_after=plan.start_at or utcnow(),
    )
    s.add(job)
    order.status_code = "processing"
    order.updated_at = utcnow()
    s.flush()
    return job


def _job_of(s: Session, order: Order, job_id: int) -> Job:
    job = s.get(Job, job_id)
    if job is None or job.order_id != order.order_id or job.kind != EXPORT:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER, f"Ticket {order.order_id} has no export job {job_id}."
        )
    return job


def stop(s: Session, caller: Caller, order_id: int, job_id: int) -> Job:
    """Pause/SuspendDataExportJob: the export stops at its next batch and writes no file.
    A file half written is worth nothing, so RestartDataExportJob starts it over."""
    order = export_ticket(s, caller, order_id)
    check_starter(s, caller, order)
    job = _job_of(s, order, job_id)
    if job.state not in ("queued", "running"):
        raise DmsError(
            ErrorCode.ORDER_STATUS_INVALID, f"Export job {job_id} is {job.state}; nothing to stop."
        )
    job.state = "cancelled"
    job.checkpoint = json.dumps({"failure": f"stopped by {caller.nick_name or caller.uid}"})
    job.updated_at = utcnow()
    s.flush()
    return job


def restart(s: Session, caller: Caller, order_id: int, job_id: int) -> Job:
    """RestartDataExportJob: a failed or stopped export, run again as it was asked."""
    order = export_ticket(s, caller, order_id)
    check_starter(s, caller, order)
    job = _job_of(s, order, job_id)
    if order.status_code != "processing" or job.state not in ("failed", "cancelled"):
        raise DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Export job {job_id} is {job.state}; only a failed or stopped export restarts.",
        )
    if job.job_id != tickets.latest_job(s, order_id, EXPORT).job_id:  # type: ignore[union-attr]
        raise DmsError(ErrorCode.ORDER_STATUS_INVALID, f"Export job {job_id} is not the latest.")
    plan = ExportPlan(**json.loads(job.spec))
    return _queue(s, order, replace(plan, start=None, by=caller.user_id))


def remove(s: Session, caller: Caller, order_id: int, job_id: int) -> ExportFile | None:
    """RemoveDataExportJob: the export's file is deleted; the ticket keeps its history."""
    order = export_ticket(s, caller, order_id)
    check_starter(s, caller, order)
    job = _job_of(s, order, job_id)
    if job.state in ("queued", "running"):
        raise DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Export job {job_id} is {job.state}; stop it before removing it.",
        )
    found = s.get(ExportFile, job.job_id)
    if found is not None:
        s.delete(found)
        s.flush()
    return found


def latest(s: Session, order: Order) -> tuple[Job | None, ExportFile | None]:
    job = tickets.latest_job(s, order.order_id, EXPORT)
    return job, (s.get(ExportFile, job.job_id) if job is not None else None)


def job_status(s: Session, order: Order) -> str:
    """KeyInfo.JobStatus (dms-api.md A.4.2): where the ticket is, in export terms."""
    job, _ = latest(s, order)
    if job is not None:
        return {
            "queued": "WAITING_EXPORT",
            "running": "DOING_EXPORT",
            "paused": "WAITING_EXPORT",
            "succeeded": "EXPORT_SUCCESS",
        }.get(job.state, "EXPORT_FAIL")
    if order.status_code == "new":
        return {
            "new": "PRE_CHECKING",
            "precheck": "PRE_CHECKING",
            "precheck_success": "PRE_CHECK_SUCCESS",
        }.get(precheck.status(s, order), "PRE_CHECK_FAIL")
    if order.status_code == "toaudit":
        return "WAITING_APPLY_AUDIT"
    if order.status_code == "Approved":
        return "ENABLE_EXPORT"
    return "APPLY_AUDIT_SUCCESS" if order.status_code == "processing" else "EXPORT_FAIL"


def failure(job: Job | None) -> str:
    if job is None or job.state not in ("failed", "cancelled"):
        return ""
    return str(json.loads(job.checkpoint or "{}").get("failure") or "The export was stopped.")


def masking(found: ExportFile | None) -> dict[str, Any]:
    return json.loads(found.masking) if found is not None else {}


def audit(
    s: Session,
    order: Order,
    user_id: int,
    text: str,
    kind: str,
    rows: int | None,
    ms: int,
    state: str,
    remark: str,
) -> None:
    """One line of ListSQLExecAuditLog about this export: its query run, or a download."""
    (db, inst), *_ = tickets.databases_of(s, order.order_id)
    s.add(
        SqlAudit(
            tid=order.tid,
            user_id=user_id,
            order_id=order.order_id,
            instance_id=inst.instance_id,
            db_id=db.db_id,
            schema_name=db.schema_name,
            sql_text=text,
            sql_type=kind,
            affect_rows=rows,
            elapsed_ms=ms,
            exec_state=state,
            remark=remark[:4000],
        )
    )


def link_key(job_id: int, user_id: int) -> str:
    """What a download link signs: this export's file, for this person only."""
    return f"export:{job_id}:{user_id}"


def download_url(s: Session, caller: Caller, order_id: int) -> tuple[ExportFile | None, str]:
    """GetDataExportDownloadURL: the ticket's file when there is one, else why not."""
    order = export_ticket(s, caller, order_id)
    job, found = latest(s, order)
    if found is not None:
        return found, ""
    if job is None:
        return None, f"Ticket {order_id} has not been exported yet ({job_status(s, order)})."
    if job.state in ("queued", "running", "paused"):
        return None, "The export is still running."
    if job.state == "succeeded":
        return None, "The export's file was removed."
    return None, f"The export failed: {failure(job)}"


def open_download(
    s: Session, root: Path, user_id: int, job_id: int, client: str
) -> tuple[Path, ExportFile] | None:
    """The file a signed link names (under ``root``), when its holder may still see the
    ticket (a user disabled or a ticket no longer visible ends the link early); the download
    is audited."""
    user = s.get(User, user_id)
    found = s.get(ExportFile, job_id)
    if user is None or user.state != "NORMAL" or found is None:
        return None
    path = root / found.path
    if not path.is_file():
        return None
    caller = Caller(
        "link", user.uid, user.user_id, user.tid, "", parse_roles(user.roles), user.nick_name
    )
    try:
        order = tickets.get_order(s, caller, found.order_id)
    except DmsError:
        return None
    audit(
        s,
        order,
        user.user_id,
        f"download {found.file_name} (export job {job_id}, {found.rows} rows)",
        "EXPORT_DOWNLOAD",
        found.rows,
        0,
        "SUCCESS",
        f"downloaded by {user.nick_name or user.uid} from {client}",
    )
    return path, found
