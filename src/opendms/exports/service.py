"""Running an approved export ticket and reading how it went (dms-api.md A.4, B.5).

An export is one ``export`` job (the wire's ``JobId``). It reads the prechecked query in a
read-only, repeatable-read transaction and writes one zip under the files directory
(``exports.run``); ``export_files`` records it. Downloads go through links signed for the
person who asked for them (``GetDataExportDownloadURL``), checked again when followed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from opendms.errors import DmsError, ErrorCode
from opendms.execution.service import check_starter, checked_time, starter_refusal
from opendms.exports.formats import ENCODINGS, FILE_TYPES
from opendms.identity.caller import Caller
from opendms.identity.roles import parse_roles
from opendms.precheck import service as precheck
from opendms.store.models import ExportFile, Job, Order, SqlAudit, User, utcnow
from opendms.store.states import ExecState, JobState, OrderStatus, UserState
from opendms.store.times import LOG_TIME
from opendms.tickets import lifecycle
from opendms.tickets import service as tickets
from opendms.tickets.registry import all_kinds, kind_of

EXPORT = "export"  # the job kind
# KeyInfo.JobStatus (dms-api.md A.4.2): once the ticket has an export job, that job's state;
# before, the ticket's status (and while it is new, its precheck's: precheck.status)
JOB_STATUS = {
    JobState.QUEUED: "WAITING_EXPORT",
    JobState.RUNNING: "DOING_EXPORT",
    JobState.PAUSED: "WAITING_EXPORT",
    JobState.SUCCEEDED: "EXPORT_SUCCESS",
    JobState.FAILED: "EXPORT_FAIL",
    JobState.CANCELLED: "EXPORT_FAIL",
}
ORDER_JOB_STATUS = {
    OrderStatus.TOAUDIT: "WAITING_APPLY_AUDIT",
    OrderStatus.APPROVED: "ENABLE_EXPORT",
    OrderStatus.PROCESSING: "APPLY_AUDIT_SUCCESS",
}
PRECHECK_JOB_STATUS = {
    OrderStatus.NEW: "PRE_CHECKING",  # not prechecked yet
    "precheck": "PRE_CHECKING",
    "precheck_success": "PRE_CHECK_SUCCESS",
}
MODES = ("FAST", "NORMAL")


@dataclass(frozen=True)
class ExportPlan:
    """How an export runs (ExecuteDataExport's ``ActionDetail``, the command line's
    ``order export``); kept as the ``export`` job's spec. A NORMAL export and a FAST one can
    both be stopped."""

    file_type: str = "CSV"
    encoding: str = "UTF8"
    mode: str = "FAST"
    start: str | None = None  # UTC, YYYY-MM-DD HH:mm:ss (LOG_TIME); None: now
    by: int | None = None
    # whose access key started it for ``by`` (RealLoginUserUid); the audit names both
    by_user_id: int | None = None

    @property
    def start_at(self) -> datetime | None:
        return datetime.strptime(self.start, LOG_TIME) if self.start else None


def _choice(value: Any, key: str, allowed: tuple[str, ...], default: str) -> str:
    if value in (None, ""):
        return default
    text = str(value).upper().replace("-", "_")
    if text not in allowed:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"ActionDetail.{key}: {str(value)[:32]!r} is not one of {', '.join(allowed)}.",
        )
    return text


def checked_plan(
    *,
    file_type: str | None = None,
    encoding: str | None = None,
    mode: str | None = None,
    start: str | None = None,
) -> ExportPlan:
    """An ExportPlan from names as a person spells them (csv, iso-8859-1; empty: the
    default), checked: the start like 2026-01-31 23:00:00. The messages name the
    ActionDetail keys, where an API caller sets them (``actions.exports.ExportActionDetail``
    reads the wire's onto this); the command line's options are the same ones."""
    start = checked_time(start, "startTime")
    return ExportPlan(
        file_type=_choice(file_type, "fileType", FILE_TYPES, "CSV"),
        encoding=_choice(encoding, "encoding", tuple(ENCODINGS), "UTF8"),
        mode=_choice(mode, "mode", MODES, "FAST"),
        start=start,
    )


def export_ticket(s: Session, caller: Caller, order_id: int, *, lock: bool = True) -> Order:
    order = tickets.get_order(s, caller, order_id, lock=lock)
    if kind_of(order.plugin_type).verb != "export":
        exporting = ", ".join(k.plugin_type for k in all_kinds() if k.verb == "export")
        raise DmsError(
            ErrorCode.UNSUPPORTED_PLUGIN_TYPE,
            f"Ticket {order_id} is {order.plugin_type}; only export tickets ({exporting}) export.",
        )
    return order


def execute_refusal(s: Session, caller: Caller, order: Order) -> DmsError | None:
    """Why ExecuteDataExport would refuse the caller on this export ticket now; None: it
    would start it."""
    refusal = starter_refusal(s, caller, order)
    if refusal is None and order.status_code != OrderStatus.APPROVED:
        return DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Ticket {order.order_id} is {order.status_code}; only an approved export runs "
            "(RestartDataExportJob runs a failed one again).",
        )
    return refusal


def execute(s: Session, caller: Caller, order_id: int, plan: ExportPlan) -> Job:
    """ExecuteDataExport: the approved ticket's export, started by its committer."""
    order = export_ticket(s, caller, order_id)
    refusal = execute_refusal(s, caller, order)
    if refusal is not None:
        raise refusal
    return _queue(s, order, replace(plan, by=caller.user_id, by_user_id=caller.by_user_id))


def _queue(s: Session, order: Order, plan: ExportPlan) -> Job:
    job = Job(
        order_id=order.order_id,
        kind=EXPORT,
        spec=asdict(plan),
        run_after=plan.start_at or utcnow(),
    )
    s.add(job)
    lifecycle.transition(s, order, OrderStatus.PROCESSING)
    s.flush()
    return job


def _job_of(s: Session, order: Order, job_id: int) -> Job:
    job = s.get(Job, job_id)
    if job is None or job.order_id != order.order_id or job.kind != EXPORT:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER, f"Ticket {order.order_id} has no export job {job_id}."
        )
    return job


def _stop_refusal(job: Job) -> DmsError | None:
    if job.state not in (JobState.QUEUED, JobState.RUNNING):
        return DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Export job {job.job_id} is {job.state}; nothing to stop.",
        )
    return None


def stop(s: Session, caller: Caller, order_id: int, job_id: int) -> Job:
    """Pause/SuspendDataExportJob: the export stops at its next batch and writes no file.
    A file half written is worth nothing, so RestartDataExportJob starts it over."""
    order = export_ticket(s, caller, order_id)
    check_starter(s, caller, order)
    job = _job_of(s, order, job_id)
    refusal = _stop_refusal(job)
    if refusal is not None:
        raise refusal
    job.state = JobState.CANCELLED
    job.checkpoint = {"failure": f"stopped by {caller.nick_name or caller.uid}"}
    job.updated_at = utcnow()
    s.flush()
    return job


def _restart_refusal(s: Session, order: Order, job: Job) -> DmsError | None:
    stopped = (JobState.FAILED, JobState.CANCELLED)
    if order.status_code != OrderStatus.PROCESSING or job.state not in stopped:
        return DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Export job {job.job_id} is {job.state}; only a failed or stopped export restarts.",
        )
    latest = tickets.latest_job(s, order.order_id, EXPORT)
    if latest is None or job.job_id != latest.job_id:
        return DmsError(
            ErrorCode.ORDER_STATUS_INVALID, f"Export job {job.job_id} is not the latest."
        )
    return None


def steerable(s: Session, caller: Caller, order: Order) -> tuple[bool, bool]:
    """Whether the caller may now stop the export ticket's latest export, and whether they
    may run it again: the checks ``stop`` and ``restart`` make, without acting."""
    job = tickets.latest_job(s, order.order_id, EXPORT)
    if job is None or starter_refusal(s, caller, order) is not None:
        return False, False
    return _stop_refusal(job) is None, _restart_refusal(s, order, job) is None


def restart(s: Session, caller: Caller, order_id: int, job_id: int) -> Job:
    """RestartDataExportJob: a failed or stopped export, run again as it was asked."""
    order = export_ticket(s, caller, order_id)
    check_starter(s, caller, order)
    job = _job_of(s, order, job_id)
    refusal = _restart_refusal(s, order, job)
    if refusal is not None:
        raise refusal
    plan = ExportPlan(**job.spec)
    started = replace(plan, start=None, by=caller.user_id, by_user_id=caller.by_user_id)
    return _queue(s, order, started)


def remove(s: Session, caller: Caller, order_id: int, job_id: int) -> ExportFile | None:
    """RemoveDataExportJob: the export's file is deleted; the ticket keeps its history."""
    order = export_ticket(s, caller, order_id)
    check_starter(s, caller, order)
    job = _job_of(s, order, job_id)
    if job.state in (JobState.QUEUED, JobState.RUNNING):
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
        return JOB_STATUS[job.state]
    if order.status_code == OrderStatus.NEW:
        return PRECHECK_JOB_STATUS.get(precheck.status(s, order), "PRE_CHECK_FAIL")
    return ORDER_JOB_STATUS.get(order.status_code, "EXPORT_FAIL")


def failure(job: Job | None) -> str:
    if job is None or job.state not in (JobState.FAILED, JobState.CANCELLED):
        return ""
    return str((job.checkpoint or {}).get("failure") or "The export was stopped.")


def masking(found: ExportFile | None) -> dict[str, Any]:
    return found.masking if found is not None else {}


def audit(
    s: Session,
    order: Order,
    user_id: int,
    text: str,
    kind: str,
    rows: int | None,
    ms: int,
    state: ExecState,
    remark: str,
    by_user_id: int | None = None,
) -> None:
    """One line of ListSQLExecAuditLog about this export: its query run, or a download.
    ``by_user_id``: whose access key made the call that acted for ``user_id``."""
    (db, inst), *_ = tickets.databases_of(s, order.order_id)
    s.add(
        SqlAudit(
            tid=order.tid,
            user_id=user_id,
            by_user_id=by_user_id,
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
    if job.state in (JobState.QUEUED, JobState.RUNNING, JobState.PAUSED):
        return None, "The export is still running."
    if job.state == JobState.SUCCEEDED:
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
    if user is None or user.state != UserState.NORMAL or found is None:
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
        ExecState.SUCCESS,
        f"downloaded by {user.nick_name or user.uid} from {client}",
    )
    return path, found
