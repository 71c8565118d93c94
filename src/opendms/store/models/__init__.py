"""ORM models of the metadata store, one module per domain; every model is imported here, so
``Base.metadata`` (what alembic compares against) holds every table. Times are naive UTC
datetimes."""

from opendms.store.models.approvals import (
    ApprovalEvent,
    WorkflowApprover,
    WorkflowInstance,
    WorkflowStep,
)
from opendms.store.models.base import Base, BigId, utcnow
from opendms.store.models.catalog import (
    Database,
    DbColumn,
    DbIndex,
    DbTable,
    Instance,
    Owner,
    Permission,
    SensitiveColumn,
)
from opendms.store.models.execution import CronRun, SqlAudit, SqlJob, SqlJobDetail
from opendms.store.models.exports import ExportFile
from opendms.store.models.files import Attachment, UploadJob
from opendms.store.models.identity import (
    AccessKey,
    Account,
    ConsoleSession,
    RequestNonce,
    SignInAttempt,
    Tenant,
    User,
    UserPolicy,
)
from opendms.store.models.jobs import Job, Process, RateWindow
from opendms.store.models.notify import Webhook, WebhookDelivery
from opendms.store.models.precheck import PrecheckStatement, PrecheckStep
from opendms.store.models.rulebook import (
    SecurityRuleSet,
    WorkflowNode,
    WorkflowNodeUser,
    WorkflowTemplate,
    WorkflowTemplateNode,
)
from opendms.store.models.schema import SchemaDesign, SchemaPlan
from opendms.store.models.tickets import Order, OrderDatabase

__all__ = [
    "AccessKey",
    "Account",
    "ApprovalEvent",
    "Attachment",
    "Base",
    "BigId",
    "ConsoleSession",
    "CronRun",
    "Database",
    "DbColumn",
    "DbIndex",
    "DbTable",
    "ExportFile",
    "Instance",
    "Job",
    "Order",
    "OrderDatabase",
    "Owner",
    "Permission",
    "PrecheckStatement",
    "PrecheckStep",
    "Process",
    "RateWindow",
    "RequestNonce",
    "SchemaDesign",
    "SchemaPlan",
    "SecurityRuleSet",
    "SensitiveColumn",
    "SignInAttempt",
    "SqlAudit",
    "SqlJob",
    "SqlJobDetail",
    "Tenant",
    "UploadJob",
    "User",
    "UserPolicy",
    "Webhook",
    "WebhookDelivery",
    "WorkflowApprover",
    "WorkflowInstance",
    "WorkflowNode",
    "WorkflowNodeUser",
    "WorkflowStep",
    "WorkflowTemplate",
    "WorkflowTemplateNode",
    "utcnow",
]
