"""What a caller may do with a ticket now, and what the ticket waits for, in words.

The web console shows a button only for an act the API would let the caller take. Each
answer here is the act's own refusal check, asked without acting: ``flow.submit_refusal``,
``acts.open_acts``, ``execution.service.execute_refusal`` and ``steerable``, the same two of
``exports.service``, ``lifecycle.close_refusal``, ``precheck.service.own_new_refusal``, and
a schema design's ``update_refusal``, ``compare_refusal`` and ``execute_stage_refusal``
(``structure.design``).
Nothing here decides on its own, so a rule changed in its service changes the buttons too.
The act itself still checks again when it comes (the ticket may have moved meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from opendms.approvals import acts, flow, views
from opendms.execution import service as execution
from opendms.exports import service as exports
from opendms.identity import service as identity
from opendms.identity.caller import Caller
from opendms.precheck import service as precheck
from opendms.store.models import Order, WorkflowInstance, utcnow
from opendms.store.states import JobState, OrderStatus, SqlJobStatus, WorkflowStatus
from opendms.structure import design
from opendms.tickets import lifecycle
from opendms.tickets import service as tickets
from opendms.tickets.registry import kind_of


@dataclass(frozen=True)
class Abilities:
    """The acts open to one caller on one ticket now."""

    submit: bool = False  # SubmitOrderApproval
    withdraw: bool = False  # ApproveOrder CANCEL
    decide: bool = False  # ApproveOrder AGREE and REJECT
    transfer: bool = False  # ApproveOrder TRANSFER
    transfer_for: tuple[int, ...] = ()  # approvers whose place the caller may hand on
    execute: bool = False  # ExecuteDataCorrect or ExecuteDataExport
    pause: bool = False  # PauseDataCorrectSQLJob (ALL) or PauseDataExportJob
    resume: bool = False  # RestartDataCorrectSQLJob (ALL) or RestartDataExportJob
    close: bool = False  # CloseOrder
    recheck: bool = False  # RetryDataCorrectPreCheck
    waive_row_check: bool = False  # SkipDataCorrectRowCheck
    # A schema design's own acts, shown in its design section rather than among the others.
    design: bool = False  # UpdateSchemaDesign
    compare: bool = False  # CompareSchemaDesign
    run_stages: tuple[int, ...] = ()  # ExecuteSchemaDesign: the stages' DbIds it would run

    @property
    def any(self) -> bool:
        """Whether any act of the ticket's acts section is open (a design's are apart)."""
        return any(
            v
            for k, v in vars(self).items()
            if isinstance(v, bool) and k not in ("design", "compare")
        )


def of(s: Session, caller: Caller, order: Order) -> Abilities:
    """What ``caller`` may do with ``order`` now (they may see it: ``tickets.get_order``)."""
    kind = kind_of(order.plugin_type)
    node = acts.open_acts(s, caller, order)
    execute = pause = resume = False
    if kind.verb == "export":
        execute = exports.execute_refusal(s, caller, order) is None
        pause, resume = exports.steerable(s, caller, order)
    elif kind.execution is not None:
        # ExecuteDataCorrect also continues a paused execution; that is offered as Resume
        # (RestartDataCorrectSQLJob), so Execute is for an approved ticket only.
        execute = (
            order.status_code == OrderStatus.APPROVED
            and execution.execute_refusal(s, caller, order) is None
        )
        pause, resume = execution.steerable(s, caller, order)
    recheck = kind.has_precheck and precheck.own_new_refusal(caller, order, "") is None
    designed = order.plugin_type == design.PLUGIN_TYPE
    return Abilities(
        submit=flow.submit_refusal(s, caller, order) is None,
        withdraw=node.withdraw,
        decide=node.decide,
        transfer=node.transfer,
        transfer_for=node.transfer_for,
        execute=execute,
        pause=pause,
        resume=resume,
        close=lifecycle.close_refusal(s, caller, order) is None,
        recheck=recheck,
        waive_row_check=recheck and precheck.row_check_waivable(s, order.order_id),
        design=designed and design.update_refusal(s, caller, order) is None,
        compare=designed and design.compare_refusal(s, caller, order) is None,
        run_stages=design.runnable_stages(s, caller, order) if designed else (),
    )


def _names(s: Session, user_ids: list[int]) -> str:
    people = identity.users_by_id(s, user_ids)
    shown = [people[u].nick_name or people[u].uid if u in people else f"user {u}" for u in user_ids]
    if len(shown) > 1:
        return f"{', '.join(shown[:-1])} or {shown[-1]}"
    return shown[0] if shown else "nobody"


def waiting(s: Session, order: Order) -> str:
    """What the ticket waits for and on whom, in a sentence; empty when it waits for
    nothing (it ended, or its work is under way and its progress tells the rest)."""
    kind = kind_of(order.plugin_type)
    committer = _names(s, [order.committer_id])
    status = order.status_code
    if status == OrderStatus.NEW:
        checked = precheck.status(s, order) if kind.has_precheck else "precheck_success"
        if checked == "precheck":
            return "Its precheck is running."
        if checked != "precheck_success":
            short = precheck.shortfall(s, order)
            return f"It cannot be submitted yet: {short.rstrip('.')}." if short else ""
        not_yet = kind.submit_refusal(s, order)
        if not_yet is not None:
            return f"It cannot be submitted yet: {not_yet.rstrip('.')}."
        return f"Waiting for {committer} to submit it for approval."
    if status == OrderStatus.TOAUDIT:
        wf = s.get(WorkflowInstance, order.workflow_instance_id or 0)
        current = views.detail_of(s, wf, order).current if wf is not None else None
        if wf is None or wf.status != WorkflowStatus.AUDITING or current is None:
            return "Waiting for approval."
        if current.approvers:
            return (
                f"Waiting for {_names(s, current.approvers)} to approve node "
                f"'{current.step.node_name}'."
            )
        note = current.step.note or f"Node '{current.step.node_name}' has no approver."
        return f"{note} An administrator may transfer the node to someone who can approve it."
    if status == OrderStatus.APPROVED:
        if kind.execution is None and kind.verb != "export":
            return f"Approved. OpenDMS does not run {kind.summary.lower()} tickets yet."
        who = execution.starter(s, order)
        if who is None:
            return "Approved; it starts by itself (ExecMode AUTO)."
        verb = "export it" if kind.verb == "export" else "execute it"
        if kind.execution is not None and kind.execution.staged:
            verb = "run it on its next stage"
        return f"Waiting for {_names(s, [who[0]])} ({who[1]}) to {verb}."
    if status == OrderStatus.PROCESSING:
        return _processing(s, order)
    if status == OrderStatus.CLOSED:
        return f"Closed: {order.close_reason}" if order.close_reason else "Closed."
    return ""


def _processing(s: Session, order: Order) -> str:
    kind = kind_of(order.plugin_type)
    if kind.execution is not None and kind.execution.scheduled:
        return "It runs on its schedule until it is closed."
    job = tickets.latest_job(s, order.order_id, "execute")
    if kind.verb == "export":
        job = tickets.latest_job(s, order.order_id, exports.EXPORT)
        if job is not None and job.state in (JobState.FAILED, JobState.CANCELLED):
            return f"The export did not finish: {exports.failure(job)}"
    held = (
        job is not None
        and job.kind == "execute"
        and (
            job.state == JobState.PAUSED
            # paused before a runner took it up: its SQL jobs say so first
            or execution.group_status(s, job.job_id) == SqlJobStatus.PAUSE
        )
    )
    if held:
        return "Its execution is paused; it goes on when someone who steers it resumes it."
    if job is not None and job.state == JobState.FAILED:
        return f"{tickets.status_desc(s, order)}. Resume tries the failed statements again."
    if job is not None and job.state == JobState.QUEUED and job.attempts == 0:
        if job.run_after > utcnow():
            return f"Scheduled: it starts at {job.run_after:%Y-%m-%d %H:%M:%S} (UTC)."
        return "Queued: it starts as soon as a job runner is free."
    return ""
