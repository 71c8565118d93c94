"""The states the metadata store keeps, one enum per column family, with exactly the values
stored (and, where the wire shows a column as it is, returned): ``"Approved"`` is spelt as
DMS spells it, the rest of the ticket statuses in lower case. Code sets and compares these
members, never the bare strings; the moves between ticket statuses are
``tickets.lifecycle``'s.
"""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    """``orders.status_code``: where a ticket stands (DMS's ``StatusCode``)."""

    NEW = "new"  # filed, perhaps prechecked; not submitted (or withdrawn from approval)
    TOAUDIT = "toaudit"  # waiting for approval
    APPROVED = "Approved"
    REJECT = "reject"
    PROCESSING = "processing"  # executing, exporting, or on its cleanup schedule
    SUCCESS = "success"
    CLOSED = "closed"


# No move leads out of these (tickets.lifecycle.MOVES).
TERMINAL = frozenset({OrderStatus.SUCCESS, OrderStatus.CLOSED, OrderStatus.REJECT})


class JobState(StrEnum):
    """``jobs.state``: a unit of background work as the job runners see it."""

    QUEUED = "queued"  # waiting, perhaps until run_after
    RUNNING = "running"  # leased to a runner
    PAUSED = "paused"  # left alone until someone queues it again
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Work not over yet: a ticket that ends calls it off.
JOB_OPEN = frozenset({JobState.QUEUED, JobState.RUNNING, JobState.PAUSED})


class SqlJobStatus(StrEnum):
    """``sql_jobs.status`` and ``sql_job_details.status`` (DMS's ``Status`` of a SQL job and
    of one of its statements; a statement is never PAUSE or DELETE)."""

    INIT = "INIT"
    RUNNING = "RUNNING"
    PAUSE = "PAUSE"
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"
    DELETE = "DELETE"  # the ticket was closed before it ran


# A SQL job with nothing left to run.
SQL_JOB_OVER = frozenset({SqlJobStatus.SUCCESS, SqlJobStatus.DELETE})


class PrecheckStepStatus(StrEnum):
    """``precheck_steps.status`` (DMS's ``CheckStatus``)."""

    WAITING = "WAITING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"


class ReviewStatus(StrEnum):
    """``precheck_statements.review_status``: what review said of one statement."""

    WAITING = "WAITING"
    PASS = "PASS"  # noqa: S105 (a verdict, not a password)
    BLOCK = "BLOCK"


class WorkflowStatus(StrEnum):
    """``workflow_instances.status``: one approval run of a ticket (``WorkflowInsCode``)."""

    AUDITING = "AUDITING"
    APPROVED = "APPROVED"
    REJECT = "REJECT"
    CANCEL = "CANCEL"


class StepStatus(StrEnum):
    """``workflow_steps.status``: one node of an approval run."""

    WAITING = "WAITING"  # not reached
    AUDITING = "AUDITING"  # the current node
    APPROVED = "APPROVED"
    REJECT = "REJECT"
    CANCEL = "CANCEL"


class ApprovalAction(StrEnum):
    """``approval_events.action``: what one line of the approval trail records. The first
    five are also the wire's ``ApprovalType``."""

    AGREE = "AGREE"
    REJECT = "REJECT"
    CANCEL = "CANCEL"
    TRANSFER = "TRANSFER"
    ADD_APPROVAL_NODE = "ADD_APPROVAL_NODE"
    SUBMIT = "SUBMIT"
    REPEAT = "REPEAT"  # an act that arrived again, answered without applying it twice
    SUPERSEDED = "SUPERSEDED"  # an AGREE for a node somebody else approved meanwhile
    CLOSE = "CLOSE"


class UploadStatus(StrEnum):
    """``upload_jobs.status`` (DMS's ``JobStatus`` of ``CreateUploadFileJob``)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"


UPLOAD_IN_FLIGHT = frozenset({UploadStatus.PENDING, UploadStatus.RUNNING})


class DeliveryState(StrEnum):
    """``webhook_deliveries.state``."""

    PENDING = "pending"  # due at next_attempt_at
    SENDING = "sending"  # leased to a delivery loop
    DELIVERED = "delivered"
    FAILED = "failed"  # out of attempts, or the webhook went away


class ExecState(StrEnum):
    """``sql_audit.exec_state``: how a statement run for someone ended."""

    SUCCESS = "SUCCESS"
    FAIL = "FAIL"


# Identity and catalog vocabulary, as DMS spells it on the wire (upper case; an access key's
# status capitalised). Separate families: a user's DELETE is not a SQL job's.


class UserState(StrEnum):
    """``users.state`` (DMS's ``State`` of a user; ListUsers' ``UserState`` filter)."""

    NORMAL = "NORMAL"
    DISABLE = "DISABLE"  # kept out until enabled again; their keys stop working at once
    DELETE = "DELETE"  # removed from the tenant; registering the Uid again brings it back


class KeyStatus(StrEnum):
    """``access_keys.status``."""

    ACTIVE = "Active"
    INACTIVE = "Inactive"


class InstanceState(StrEnum):
    """``instances.state`` (DMS's ``State`` of an instance; ListInstances' ``InstanceState``
    filter). Nothing here disables an instance: DISABLE is DMS's word, which the filter
    accepts and which then matches nothing."""

    NORMAL = "NORMAL"
    DISABLE = "DISABLE"


class DatabaseState(StrEnum):
    """``databases.state``: whether the last sync still found the schema."""

    NORMAL = "NORMAL"
    NOT_EXIST = "NOT_EXIST"  # gone from the instance; the row stays, tickets may point at it


class SignInOutcome(StrEnum):
    """``sign_in_attempts.outcome``: how a console sign-in attempt ended."""

    SIGNED_IN = "signed_in"
    WRONG = "wrong"  # no such user, no password set, or the wrong password: one answer for all
    DISABLED = "disabled"  # the right password of a user who may not sign in
    THROTTLED = "throttled"  # too many failures lately; the password was not tried


class PlanState(StrEnum):
    """``schema_plans.state``: what comparing a database's tables with what they should be
    found (structure sync's analysis, a schema design's stage)."""

    COMPARING = "COMPARING"  # being read and compared
    COMPARED = "COMPARED"  # it differs: its statements make it match
    EQUAL = "EQUAL"  # it matches already: nothing to run
    FAILED = "FAILED"  # it could not be compared (``message`` says why)
