"""Business errors: the stable codes a caller sees as ``ErrorCode`` with ``Success: false``.

Services raise :class:`DmsError`; the gateway turns it into the HTTP 200 business envelope and
the CLI into one line. Each code is documented here, once; ``opendms errors`` prints this table.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    UNKNOWN = "UnknownError"
    INVALID_PARAMETER = "InvalidParameter"
    PERMISSION_DENIED = "PermissionDenied"
    TENANT_NOT_FOUND = "TenantNotFound"
    USER_NOT_FOUND = "UserNotFound"
    USER_ALREADY_EXISTS = "UserAlreadyExists"
    CANNOT_CHANGE_SELF = "CannotChangeSelf"
    LAST_ADMINISTRATOR = "LastAdministrator"
    ACCESS_KEY_NOT_FOUND = "AccessKeyNotFound"
    POLICY_INVALID = "InvalidPolicyDocument"
    POLICY_NOT_FOUND = "PolicyNotFound"
    INSTANCE_NOT_FOUND = "InstanceNotFound"
    INSTANCE_ALREADY_EXISTS = "InstanceAlreadyExists"
    DATABASE_NOT_FOUND = "DatabaseNotFound"
    TABLE_NOT_FOUND = "TableNotFound"
    UNSUPPORTED_ENGINE = "UnsupportedDbType"
    TARGET_NOT_ALLOWED = "TargetHostNotAllowed"
    TARGET_CONNECT_FAILED = "TargetConnectFailed"
    TARGET_AUTH_FAILED = "TargetAuthFailed"
    PERMISSION_NOT_FOUND = "UserPermissionNotFound"
    ORDER_NOT_FOUND = "OrderNotFound"
    ORDER_STATUS_INVALID = "InvalidOrderStatus"
    UNSUPPORTED_PLUGIN_TYPE = "UnsupportedPluginType"
    ATTACHMENT_NOT_FOUND = "AttachmentNotFound"
    UPLOAD_JOB_NOT_FOUND = "UploadJobNotFound"
    UPLOAD_JOBS_IN_FLIGHT = "UploadJobsInFlight"
    RULE_SET_INVALID = "InvalidSecurityRuleSet"
    RULE_SET_NOT_FOUND = "SecurityRuleSetNotFound"
    ORDER_FORBIDDEN = "OrderForbiddenBySecurityRule"
    WORKFLOW_NOT_FOUND = "WorkflowInstanceNotFound"
    WORKFLOW_NODE_NOT_FOUND = "WorkflowNodeNotFound"
    NOT_CURRENT_APPROVER = "NotCurrentApprover"
    SELF_APPROVAL = "SelfApprovalForbidden"
    LLM_NOT_CONFIGURED = "LlmNotConfigured"
    LLM_FAILED = "LlmRequestFailed"
    GENERATED_SQL_REFUSED = "GeneratedSqlRefused"
    REVIEW_FAILED = "SqlReviewFailed"


DESCRIPTIONS: dict[ErrorCode, str] = {
    ErrorCode.UNKNOWN: "An unexpected failure inside a business operation; nothing was changed.",
    ErrorCode.INVALID_PARAMETER: "A value is well-formed on the wire but not acceptable here.",
    ErrorCode.PERMISSION_DENIED: "The caller's DMS role does not allow this operation.",
    ErrorCode.TENANT_NOT_FOUND: "No such tenant.",
    ErrorCode.USER_NOT_FOUND: "No such user in the caller's tenant.",
    ErrorCode.USER_ALREADY_EXISTS: "The account is already a user of this tenant.",
    ErrorCode.CANNOT_CHANGE_SELF: "Users cannot disable or delete themselves.",
    ErrorCode.LAST_ADMINISTRATOR: "The change would leave the tenant without an active ADMIN.",
    ErrorCode.ACCESS_KEY_NOT_FOUND: "No such access key.",
    ErrorCode.POLICY_INVALID: "A RAM policy document does not follow the policy grammar.",
    ErrorCode.POLICY_NOT_FOUND: "No policy of that name is attached to the user.",
    ErrorCode.INSTANCE_NOT_FOUND: "No such instance in the caller's tenant.",
    ErrorCode.INSTANCE_ALREADY_EXISTS: "An instance with that host, port and SID is registered.",
    ErrorCode.DATABASE_NOT_FOUND: "No such database in the caller's tenant.",
    ErrorCode.TABLE_NOT_FOUND: "No such table in the caller's tenant.",
    ErrorCode.UNSUPPORTED_ENGINE: "OpenDMS connects to mysql, mariadb, postgresql and sqlite.",
    ErrorCode.TARGET_NOT_ALLOWED: "The server is configured not to connect to that host.",
    ErrorCode.TARGET_CONNECT_FAILED: "The target database cannot be reached or read.",
    ErrorCode.TARGET_AUTH_FAILED: "The target database refused the user name or password.",
    ErrorCode.PERMISSION_NOT_FOUND: "No such grant (UserAccessId) for that user.",
    ErrorCode.ORDER_NOT_FOUND: "No ticket with that id that the caller may see.",
    ErrorCode.ORDER_STATUS_INVALID: "The ticket's status does not allow this operation.",
    ErrorCode.UNSUPPORTED_PLUGIN_TYPE: "That PluginType cannot be created here.",
    ErrorCode.ATTACHMENT_NOT_FOUND: "No uploaded attachment with that key in the tenant.",
    ErrorCode.UPLOAD_JOB_NOT_FOUND: "No upload job with that key for the caller.",
    ErrorCode.UPLOAD_JOBS_IN_FLIGHT: "The caller has as many upload jobs waiting or running as "
    "allowed; a new one is accepted once one has ended.",
    ErrorCode.RULE_SET_INVALID: "A security rule set document is not valid; the message says "
    "where. The rule set in force is unchanged.",
    ErrorCode.RULE_SET_NOT_FOUND: "No security rule set of that name in the tenant.",
    ErrorCode.ORDER_FORBIDDEN: "A security rule forbids this ticket; the message names the rule.",
    ErrorCode.WORKFLOW_NOT_FOUND: "No approval workflow with that id that the caller may see.",
    ErrorCode.WORKFLOW_NODE_NOT_FOUND: "No approval node with that id in the tenant.",
    ErrorCode.NOT_CURRENT_APPROVER: "Only an approver of the current node may do this.",
    ErrorCode.SELF_APPROVAL: "The committer of a ticket may not approve it (rule set setting).",
    ErrorCode.LLM_NOT_CONFIGURED: "No language model is configured for the assistant actions: "
    "set OPENDMS_LLM_BASE_URL (an OpenAI-compatible endpoint), OPENDMS_LLM_MODEL and, if it "
    "needs one, OPENDMS_LLM_API_KEY.",
    ErrorCode.LLM_FAILED: "The language model did not answer usably (timeout, an HTTP error, "
    "a malformed or oversized answer); nothing was changed.",
    ErrorCode.GENERATED_SQL_REFUSED: "The language model's SQL is not one read the SQL console "
    "would run on the database; the message says why.",
    ErrorCode.REVIEW_FAILED: "SQL review found an ERROR in the script: it is refused, each "
    "finding named with its statement and rule; nothing was saved.",
}


class DmsError(Exception):
    """A business rule said no. Nothing the failing operation started is kept."""

    def __init__(self, code: ErrorCode, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # What was wrong with which request field (``Param.ExecSQL``), when the rule knows:
        # the web console shows each beside its field.
        self.fields = fields or {}
