"""Administration: users and roles, my access keys, data permissions, the security rule sets,
the tenant's webhook, and the audit trail (statements run on targets, approval acts, console
sign-ins).

What the API has an action for goes through that action (``page.call``): its RAM policy,
validation and rules decide, and a refusal shows within the page. What it has none for is
read or done through the service function the CLI calls, under the RAM action closest to it
(``page.read``); the service holds the rule (who sees the webhook or the sign-ins, who sets a
console password, whose keys one manages). Links and forms a user may not use are hidden by
asking the same RAM policy (``_may``) or the caller's roles: a display hint only, since the
action or the service decides again when it runs.

The forms name their fields as the action's parameters (``Uid``, ``RoleNames``, ``DbId``), so
an error about a parameter shows beside the field of that name.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session
from starlette.responses import Response

from opendms.approvals import views as approvals
from opendms.catalog.permissions import OVERSEERS
from opendms.errors import DmsError, ErrorCode
from opendms.gateway.errors import GatewayError
from opendms.gateway.table import Payload
from opendms.gateway.wire import WIRE_TIME
from opendms.identity import service as identity
from opendms.identity import sessions
from opendms.identity.caller import Caller
from opendms.identity.roles import Role
from opendms.identity.secrets import SecretBox
from opendms.notify import webhooks
from opendms.rulebook import rule_sets
from opendms.sql import review
from opendms.store.models.base import utcnow
from opendms.store.states import ApprovalAction, KeyStatus, SignInOutcome, UserState
from opendms.web.page import Page
from opendms.web.routing import Handler, get, post

PAGE_SIZE = 20
PICKER_SIZE = 100  # users or databases a <select> offers (ListUsers allows at most 100)
FORM = "_form"  # a message that names no field shows at the top of its form
ALREADY_SENT = "Already sent: that form was sent once, and what it asked for was done once."
ROLES = tuple(r.value for r in Role)
USER_STATES = tuple(s.value for s in UserState)
GRANTABLE = ("QUERY", "EXPORT", "CORRECT")
GRANT_LEVELS = ("DATABASE", "TABLE")
LEVELS = ("DATABASE", "TABLE", "INSTANCE")
EXEC_STATES = ("SUCCESS", "FAIL", "NOEXE", "RUNNING", "CANCEL")
APPROVAL_ACTIONS = tuple(a.value for a in ApprovalAction)
OUTCOMES = tuple(o.value for o in SignInOutcome)
# The RAM action of managing people: the users pages are for whoever may call it (ADMIN,
# SECURITY_ADMIN, or a policy that allows it), though anybody may list the tenant's users.
MANAGE_USERS = "UpdateUser"
# The RAM actions standing in where the API has no action of its own (DESIGN-NOTES, issue 20):
OWN_RECORD = "GetUser"  # my access keys: every role reads its own user record
TENANT_SETTINGS = "GetUserActiveTenant"  # the tenant's webhook
RULES_READ = "ListInstances"  # which rule set each instance follows
AUDIT_READ = "ListSQLExecAuditLog"  # console sign-ins, beside the SQL audit


@dataclass(frozen=True)
class Section:
    path: str
    title: str
    summary: str
    # who the section is for, as a display hint: "" everybody, an action's name whoever
    # may call it, "ADMIN" the tenant's administrators
    needs: str = ""


SECTIONS = (
    Section(
        "/admin/users",
        "Users and roles",
        "Register people, change their roles, disable or enable them, set a console password.",
        MANAGE_USERS,
    ),
    Section(
        "/admin/keys",
        "My access keys",
        "Keys for the API and the SDKs: create one and see its secret once, disable one.",
    ),
    Section(
        "/admin/permissions",
        "Permissions",
        "Who may query, export or change which database or table, and until when.",
    ),
    Section(
        "/admin/rules",
        "Rule sets",
        "The security rule sets that decide the approval a ticket needs, and who follows each.",
    ),
    Section(
        "/admin/webhooks",
        "Webhook",
        "Where ticket events are sent, and how each delivery went.",
        "ADMIN",
    ),
    Section(
        "/admin/audit",
        "Audit trail",
        "Statements run on targets, approval acts, console sign-ins.",
    ),
)


# ------------------------------------------------------------------ shared


async def _sections(page: Page) -> list[Section]:
    shown = []
    for section in SECTIONS:
        if section.needs == "ADMIN":
            allowed = page.caller.is_admin
        else:
            allowed = not section.needs or await page.may(section.needs)
        if allowed:
            shown.append(section)
    return shown


async def _render(page: Page, template: str, *, status: int = 200, **context: Any) -> Response:
    return page.render(template, status=status, sections=await _sections(page), **context)


async def _refused(page: Page, title: str, message: str) -> Response:
    return await _render(page, "admin/refused.html", status=403, title=title, message=message)


def _refusal(exc: Exception) -> str | None:
    """The words of a refusal (a RAM policy's or a service's rule), shown within the page."""
    if isinstance(exc, GatewayError) and exc.status == 403:
        return exc.message
    if isinstance(exc, DmsError) and exc.code == ErrorCode.PERMISSION_DENIED:
        return exc.message
    return None


def _section(title: str) -> Callable[[Handler], Handler]:
    """A page of the section ``title``: a refusal that reaches here shows as "Not allowed"
    within the administration pages (403) rather than on the bare error page."""

    def wrap(handler: Handler) -> Handler:
        async def run(page: Page) -> Response:
            try:
                return await handler(page)
            except (GatewayError, DmsError) as exc:
                why = _refusal(exc)
                if why is None:
                    raise
                return await _refused(page, title, why)

        return run

    return wrap


def _problems(
    exc: GatewayError | DmsError,
    fields: Sequence[str],
    by_code: Mapping[str, str] | None = None,
    default: str = FORM,
) -> dict[str, str]:
    """Each message beside the field it is about: a gateway error names its parameter, a
    business error its fields, or its code says (``by_code``), or its words name the
    parameter (the one named first); else ``default`` (the top of the form)."""
    if isinstance(exc, GatewayError):
        name = exc.field.split(".")[0]
        return {name if name in fields else default: exc.message}
    if exc.fields:
        out: dict[str, str] = {}
        for where, why in exc.fields.items():
            name = where.split(".")[0]
            out.setdefault(name if name in fields else default, why)
        return out
    if by_code and exc.code in by_code:
        return {by_code[exc.code]: exc.message}
    named = [(m.start(), f) for f in fields if (m := re.search(rf"\b{f}\b", exc.message))]
    return {min(named)[1] if named else default: exc.message}


def _page_number(page: Page) -> int:
    raw = page.field("page").strip() or "1"
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 1_000_000:
        raise DmsError(ErrorCode.INVALID_PARAMETER, "page is a whole number from 1.")
    return int(raw)


def _values(page: Page, name: str) -> list[str]:
    """Every value of a repeated form field (checkboxes), trimmed, empty ones left out."""
    if page.form is None:
        return [v.strip() for v in page.request.query_params.getlist(name) if v.strip()]
    return [v.strip() for v in page.form.getlist(name) if isinstance(v, str) and v.strip()]


def _paged(items: Sequence[Any], number: int) -> list[Any]:
    return list(items[(number - 1) * PAGE_SIZE : number * PAGE_SIZE])


_FORM_TIMES = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", WIRE_TIME, "%Y-%m-%d %H:%M")


def _form_time(text: str) -> datetime:
    """A time typed in a form (a datetime-local field, or as the API writes times), UTC."""
    for shape in _FORM_TIMES:
        try:
            return datetime.strptime(text.strip(), shape)
        except ValueError:
            continue
    raise ValueError(text)


def _field_time(value: datetime) -> str:
    """A time as a datetime-local field holds it."""
    return f"{value:%Y-%m-%dT%H:%M}"


# ------------------------------------------------------------------ index


async def index(page: Page) -> Response:
    return await _render(page, "admin/index.html")


# ------------------------------------------------------------------ users and roles

USER_FILTERS = ("SearchKey", "UserState", "Role")
REGISTER_FIELDS = ("Uid", "UserNick", "Mobile", "RoleNames")
UPDATE_FIELDS = ("UserNick", "Mobile", "RoleNames")
PASSWORD_FIELDS = ("Password", "Password2")
NOT_A_MANAGER = (
    "These pages are for those who manage users (the RAM action dms:UpdateUser): "
    "administrators and security administrators."
)


@_section("Users and roles")
async def users(page: Page) -> Response:
    return await _users_view(page)


async def _users_view(
    page: Page,
    *,
    form: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    if not await page.may(MANAGE_USERS):
        return await _refused(page, "Users and roles", NOT_A_MANAGER)
    query = {name: page.field(name).strip() for name in USER_FILTERS}
    number = _page_number(page)
    problems = dict(errors or {})
    try:
        found = await page.call(
            "ListUsers",
            PageNumber=number,
            PageSize=PAGE_SIZE,
            **{k: v or None for k, v in query.items()},
        )
    except GatewayError as exc:
        if exc.status == 403:
            raise
        problems |= _problems(exc, USER_FILTERS)
        found = {"TotalCount": 0, "UserList": {"User": []}}
    return await _render(
        page,
        "admin/users.html",
        status=status,
        users=found["UserList"]["User"],
        total=found["TotalCount"],
        number=number,
        size=PAGE_SIZE,
        query=query,
        form=form or {"Uid": "", "UserNick": "", "Mobile": "", "RoleNames": ["USER"]},
        errors=problems,
        roles=ROLES,
        states=USER_STATES,
    )


@_section("Users and roles")
async def register(page: Page) -> Response:
    form: dict[str, Any] = {name: page.field(name).strip() for name in REGISTER_FIELDS[:3]}
    form["RoleNames"] = _values(page, "RoleNames")
    if not await page.once():
        return page.redirect("/admin/users", notice=ALREADY_SENT)
    # No Uid typed: a new account, with an id of the shape the CLI gives one
    uid = form["Uid"] or identity.new_uid()
    try:
        await page.call(
            "RegisterUser",
            Uid=uid,
            UserNick=form["UserNick"] or None,
            Mobile=form["Mobile"] or None,
            RoleNames=",".join(form["RoleNames"]) or "USER",
        )
    except (GatewayError, DmsError) as exc:
        errors = _problems(
            exc,
            REGISTER_FIELDS,
            {
                ErrorCode.USER_ALREADY_EXISTS: "Uid",
                ErrorCode.INVALID_PARAMETER: "RoleNames",
                ErrorCode.PERMISSION_DENIED: "RoleNames",
            },
        )
        return await _users_view(page, form=form, errors=errors, status=_status(exc))
    return page.redirect(
        f"/admin/users/{uid}", notice=f"Registered Uid {uid} as a user of this tenant."
    )


def _status(exc: GatewayError | DmsError) -> int:
    if isinstance(exc, GatewayError):
        return exc.status
    if exc.code == ErrorCode.PERMISSION_DENIED:
        return 403
    return 404 if exc.code.endswith("NotFound") else 400


def _uid(page: Page) -> str:
    return str(page.request.path_params["uid"])


@_section("Users and roles")
async def user(page: Page) -> Response:
    return await _user_view(page, _uid(page))


async def _user_view(
    page: Page,
    uid: str,
    *,
    form: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    status: int = 200,
    password: str = "",
) -> Response:
    if not await page.may(MANAGE_USERS):
        return await _refused(page, "Users and roles", NOT_A_MANAGER)
    shown = (await page.call("GetUser", Uid=uid))["User"]
    held = shown["RoleNameList"]["RoleNames"]
    return await _render(
        page,
        "admin/user.html",
        status=status,
        user=shown,
        form=form
        or {
            "UserNick": shown.get("NickName", ""),
            "Mobile": shown.get("Mobile", ""),
            "RoleNames": held,
        },
        errors=errors or {},
        roles=ROLES,
        password=password,
    )


@_section("Users and roles")
async def update_user(page: Page) -> Response:
    uid = _uid(page)
    form: dict[str, Any] = {name: page.field(name).strip() for name in UPDATE_FIELDS[:2]}
    form["RoleNames"] = _values(page, "RoleNames")
    if not await page.once():
        return page.redirect(f"/admin/users/{uid}", notice=ALREADY_SENT)
    try:
        await page.call(
            "UpdateUser",
            UidString=uid,
            UserNick=form["UserNick"],
            Mobile=form["Mobile"],
            RoleNames=",".join(form["RoleNames"]) or "USER",
        )
    except (GatewayError, DmsError) as exc:
        errors = _problems(
            exc,
            UPDATE_FIELDS,
            {ErrorCode.INVALID_PARAMETER: "RoleNames", ErrorCode.LAST_ADMINISTRATOR: "RoleNames"},
        )
        return await _user_view(page, uid, form=form, errors=errors, status=_status(exc))
    return page.redirect(f"/admin/users/{uid}", notice="Saved.")


@_section("Users and roles")
async def set_user_state(page: Page) -> Response:
    uid = _uid(page)
    wanted = page.field("State").strip()
    if wanted not in (UserState.NORMAL, UserState.DISABLE):
        return await _user_view(
            page, uid, errors={"State": "Choose NORMAL or DISABLE."}, status=400
        )
    if not await page.once():
        return page.redirect(f"/admin/users/{uid}", notice=ALREADY_SENT)
    try:
        await page.call("DisableUser" if wanted == UserState.DISABLE else "EnableUser", Uid=uid)
    except (GatewayError, DmsError) as exc:
        return await _user_view(
            page, uid, errors=_problems(exc, ("State",), default="State"), status=_status(exc)
        )
    done = "disabled: their keys and sessions stopped" if wanted == "DISABLE" else "enabled"
    return page.redirect(f"/admin/users/{uid}", notice=f"User {uid} is {done}.")


@_section("Users and roles")
async def set_password(page: Page) -> Response:
    """An administrator's act: through the rule ``opendms user password`` follows too
    (``identity.set_console_password``: ADMINs only, accounts of this tenant alone)."""
    uid = _uid(page)
    generate = page.field("Generate") == "yes"
    typed, again = page.field("Password"), page.field("Password2")
    if generate:
        chosen = secrets.token_urlsafe(15)
    elif not typed:
        return await _user_view(
            page, uid, errors={"Password": "Type a password, or let one be made up."}, status=400
        )
    elif typed != again:
        return await _user_view(
            page, uid, errors={"Password2": "The two passwords differ."}, status=400
        )
    else:
        chosen = typed
    if not await page.once():
        return page.redirect(f"/admin/users/{uid}", notice=ALREADY_SENT)
    try:
        await page.read(MANAGE_USERS, identity.set_console_password, page.caller.tid, uid, chosen)
    except (GatewayError, DmsError) as exc:
        errors = _problems(exc, PASSWORD_FIELDS, {ErrorCode.INVALID_PARAMETER: "Password"})
        return await _user_view(page, uid, errors=errors, status=_status(exc))
    if generate:  # shown on this answer only: it is kept nowhere but as a hash
        return await _user_view(page, uid, password=chosen)
    return page.redirect(
        f"/admin/users/{uid}", notice="Password set; their console sessions ended."
    )


# ------------------------------------------------------------------ my access keys


@dataclass(frozen=True)
class KeyRow:
    access_key_id: str
    status: str
    description: str
    created_at: datetime


def _my_keys(s: Session, caller: Caller) -> list[KeyRow]:
    keys = identity.list_access_keys(s, caller.uid)
    return [KeyRow(k.access_key_id, k.status, k.description, k.created_at) for k in reversed(keys)]


def _create_key(s: Session, caller: Caller, box: SecretBox, description: str) -> tuple[str, str]:
    key, secret = identity.create_access_key(s, box, caller.uid, description, actor=caller)
    return key.access_key_id, secret


def _set_key(s: Session, caller: Caller, access_key_id: str, active: bool) -> str:
    return identity.set_access_key_status(s, access_key_id, active, actor=caller).status


@_section("My access keys")
async def keys(page: Page) -> Response:
    return await _keys_view(page)


async def _keys_view(
    page: Page,
    *,
    created: tuple[str, str] | None = None,
    description: str = "",
    errors: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    number = _page_number(page)
    rows = await page.read(OWN_RECORD, _my_keys)
    return await _render(
        page,
        "admin/keys.html",
        status=status,
        keys=_paged(rows, number),
        total=len(rows),
        number=number,
        size=PAGE_SIZE,
        created=created,
        description=description,
        errors=errors or {},
    )


@_section("My access keys")
async def create_key(page: Page) -> Response:
    description = page.field("Description").strip()
    if not await page.once():
        # The first answer showed the secret; it is not kept, so it is not shown again.
        return page.redirect(
            "/admin/keys",
            notice=ALREADY_SENT + " A key's secret is shown once, when it is created.",
        )
    try:
        created = await page.read(OWN_RECORD, _create_key, page.gateway.means.secrets, description)
    except (GatewayError, DmsError) as exc:
        errors = _problems(exc, ("Description",), {ErrorCode.INVALID_PARAMETER: "Description"})
        return await _keys_view(page, description=description, errors=errors, status=_status(exc))
    # The secret is in this answer and nowhere else (the store keeps it encrypted, for
    # checking signatures): reloading sends the form again, which its used token refuses.
    return await _keys_view(page, created=created)


@_section("My access keys")
async def set_key_status(page: Page) -> Response:
    key_id = str(page.request.path_params["key_id"])
    wanted = page.field("Status").strip()
    if wanted not in (KeyStatus.ACTIVE, KeyStatus.INACTIVE):
        return await _keys_view(page, errors={FORM: "Choose Active or Inactive."}, status=400)
    if not await page.once():
        return page.redirect("/admin/keys", notice=ALREADY_SENT)
    try:
        now = await page.read(OWN_RECORD, _set_key, key_id, wanted == KeyStatus.ACTIVE)
    except (GatewayError, DmsError) as exc:
        return await _keys_view(page, errors={FORM: exc.message}, status=_status(exc))
    return page.redirect("/admin/keys", notice=f"Access key {key_id} is now {now}.")


# ------------------------------------------------------------------ permissions

PERMISSION_FILTERS = ("UserId", "PermType", "SearchKey")
GRANT_FIELDS = ("UserId", "DsType", "DbId", "TableName", "PermTypes", "ExpireDate")
GRANT_DAYS = 90  # the expiry a grant form starts with


def _grant_defaults() -> dict[str, Any]:
    end = (utcnow() + timedelta(days=GRANT_DAYS)).replace(hour=23, minute=59)
    return {
        "DsType": "DATABASE",
        "DbId": "",
        "TableName": "",
        "PermTypes": ["QUERY"],
        "ExpireDate": _field_time(end),
    }


async def _optional(page: Page, action: str, **params: object) -> Payload | None:
    """An action's answer for a helper list (a picker), or None when the user may not call
    it: the page still serves what it is for."""
    try:
        return await page.call(action, **params)
    except GatewayError as exc:
        if exc.status == 403:
            return None
        raise


@_section("Permissions")
async def permissions(page: Page) -> Response:
    return await _permissions_view(page)


async def _permissions_view(
    page: Page,
    *,
    query: Mapping[str, str] | None = None,
    form: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    if query is None:
        query = {name: page.field(name).strip() for name in PERMISSION_FILTERS}
    query = {
        "UserId": query.get("UserId") or str(page.caller.user_id),
        "PermType": query.get("PermType") or "DATABASE",
        "SearchKey": query.get("SearchKey", ""),
    }
    number = _page_number(page)
    problems = dict(errors or {})
    empty: Payload = {"TotalCount": 0, "UserPermissions": {"UserPermission": []}}
    try:
        found = await page.call(
            "ListUserPermissions",
            UserId=query["UserId"],
            PermType=query["PermType"],
            SearchKey=query["SearchKey"] or None,
            PageNumber=number,
            PageSize=PAGE_SIZE,
        )
    except GatewayError as exc:
        if exc.status == 403:
            raise
        problems |= _problems(exc, PERMISSION_FILTERS)
        found = empty
    except DmsError as exc:
        if exc.code != ErrorCode.USER_NOT_FOUND:
            raise
        problems["UserId"] = exc.message
        found = empty
    # Other people's grants are for overseers (catalog.permissions): the picker is a hint
    # of that; ListUserPermissions decides whichever user is asked for.
    people = None
    if OVERSEERS & set(page.caller.roles):
        people = await _optional(page, "ListUsers", PageSize=PICKER_SIZE)
    may_grant = await page.may("GrantUserPermission")
    db_search = page.field("DbSearch").strip()
    databases = None
    if may_grant:
        databases = await _optional(
            page, "SearchDatabase", SearchKey=db_search or None, PageSize=PICKER_SIZE
        )
    return await _render(
        page,
        "admin/permissions.html",
        status=status,
        query=query,
        rows=found["UserPermissions"]["UserPermission"],
        total=found["TotalCount"],
        number=number,
        size=PAGE_SIZE,
        people=people["UserList"]["User"] if people else [],
        people_total=people["TotalCount"] if people else 0,
        may_grant=may_grant,
        may_revoke=await page.may("RevokeUserPermission"),
        databases=databases["SearchDatabaseList"]["SearchDatabase"] if databases else [],
        databases_total=databases["TotalCount"] if databases else 0,
        db_search=db_search,
        form=form or {"UserId": query["UserId"], **_grant_defaults()},
        errors=problems,
        levels=LEVELS,
        grant_levels=GRANT_LEVELS,
        grantable=GRANTABLE,
    )


@_section("Permissions")
async def grant(page: Page) -> Response:
    form: dict[str, Any] = {
        name: page.field(name).strip() for name in ("UserId", "DsType", "DbId", "TableName")
    }
    form["PermTypes"] = _values(page, "PermTypes")
    form["ExpireDate"] = page.field("ExpireDate").strip()
    query = {"UserId": form["UserId"], "PermType": form["DsType"] or "DATABASE"}
    errors: dict[str, str] = {}
    try:
        expire = _form_time(form["ExpireDate"])
        if expire <= utcnow():
            errors["ExpireDate"] = "That time has passed: a grant ends in the future."
    except ValueError:
        errors["ExpireDate"] = "A date and time (UTC), such as 2027-01-31 18:00."
    if errors:
        return await _permissions_view(page, query=query, form=form, errors=errors, status=400)
    if not await page.once():
        return page.redirect("/admin/permissions", notice=ALREADY_SENT, **query)
    try:
        await page.call(
            "GrantUserPermission",
            UserId=form["UserId"],
            DsType=form["DsType"],
            DbId=form["DbId"] or None,
            TableName=form["TableName"] if form["DsType"] == "TABLE" else None,
            PermTypes=",".join(form["PermTypes"]),
            ExpireDate=f"{expire:{WIRE_TIME}}",
        )
    except (GatewayError, DmsError) as exc:
        errors = _problems(
            exc,
            GRANT_FIELDS,
            {
                ErrorCode.DATABASE_NOT_FOUND: "DbId",
                ErrorCode.TABLE_NOT_FOUND: "TableName",
                ErrorCode.USER_NOT_FOUND: "UserId",
            },
        )
        return await _permissions_view(
            page, query=query, form=form, errors=errors, status=_status(exc)
        )
    what = ", ".join(form["PermTypes"])
    return page.redirect("/admin/permissions", notice=f"Granted {what}.", **query)


@_section("Permissions")
async def revoke(page: Page) -> Response:
    form = {
        name: page.field(name).strip() for name in ("UserId", "DsType", "UserAccessId", "PermTypes")
    }
    query = {"UserId": form["UserId"], "PermType": form["DsType"] or "DATABASE"}
    if not await page.once():
        return page.redirect("/admin/permissions", notice=ALREADY_SENT, **query)
    try:
        await page.call("RevokeUserPermission", **form)
    except (GatewayError, DmsError) as exc:
        return await _permissions_view(
            page, query=query, errors={"revoke": exc.message}, status=_status(exc)
        )
    return page.redirect("/admin/permissions", notice=f"Revoked {form['PermTypes']}.", **query)


# ------------------------------------------------------------------ rule sets


@dataclass(frozen=True)
class RuleSetRow:
    name: str
    version: int
    updated_at: datetime | None
    instances: list[tuple[int, str, str]]  # id, alias, environment


def _rule_sets(s: Session, caller: Caller) -> list[RuleSetRow]:
    return [
        RuleSetRow(
            used.name,
            used.version,
            used.updated_at,
            [(i.instance_id, i.alias, i.env_type) for i in used.instances],
        )
        for used in rule_sets.in_use(s, caller.tid)
    ]


@dataclass(frozen=True)
class RuleSetView:
    name: str
    version: int
    source: str
    review: list[tuple[str, str, str, str]]  # code, default level, level here, summary


def _rule_set(s: Session, caller: Caller, name: str) -> RuleSetView:
    loaded = rule_sets.get(s, caller.tid, name)
    levels = loaded.rule_set.review
    return RuleSetView(
        loaded.name,
        loaded.version,
        loaded.source,
        [(r.code, r.level, levels.get(r.code, r.level), r.summary) for r in review.RULES],
    )


@_section("Rule sets")
async def rules(page: Page) -> Response:
    number = _page_number(page)
    rows = await page.read(RULES_READ, _rule_sets)
    return await _render(
        page,
        "admin/rules.html",
        rows=_paged(rows, number),
        total=len(rows),
        number=number,
        size=PAGE_SIZE,
    )


@_section("Rule sets")
async def rule_set(page: Page) -> Response:
    name = page.field("name").strip() or "default"
    shown = await page.read(RULES_READ, _rule_set, name)
    return await _render(page, "admin/rule_set.html", rule_set=shown)


# ------------------------------------------------------------------ webhook


@_section("Webhook")
async def webhook(page: Page) -> Response:
    number = _page_number(page)
    found = await page.read(TENANT_SETTINGS, webhooks.overview, page=number, size=PAGE_SIZE)
    return await _render(
        page,
        "admin/webhooks.html",
        hook=found.hook,
        deliveries=found.deliveries,
        total=found.total,
        number=number,
        size=PAGE_SIZE,
    )


# ------------------------------------------------------------------ audit trail

AUDIT_FILTERS = ("StartTime", "EndTime", "ExecState", "SqlType", "OpUserName", "SearchName")
AUDIT_DAY = timedelta(days=1)


@_section("Audit trail")
async def audit(page: Page) -> Response:
    query = {name: page.field(name).strip() for name in AUDIT_FILTERS}
    number = _page_number(page)
    errors: dict[str, str] = {}
    times: dict[str, datetime] = {}
    for name in ("StartTime", "EndTime"):
        if query[name]:
            try:
                times[name] = _form_time(query[name])
            except ValueError:
                errors[name] = "A date and time (UTC), such as 2027-01-31 18:00."
    # Left empty: up to now, from a day before the end
    end = times.get("EndTime") or utcnow().replace(microsecond=0)
    start = times.get("StartTime") or end - AUDIT_DAY
    found: Payload = {"TotalCount": 0, "SQLExecAuditLogList": {"SQLExecAuditLog": []}}
    if not errors:
        try:
            found = await page.call(
                "ListSQLExecAuditLog",
                StartTime=f"{start:{WIRE_TIME}}",
                EndTime=f"{end:{WIRE_TIME}}",
                ExecState=query["ExecState"] or None,
                SqlType=query["SqlType"] or None,
                OpUserName=query["OpUserName"] or None,
                SearchName=query["SearchName"] or None,
                PageNumber=number,
                PageSize=PAGE_SIZE,
            )
        except (GatewayError, DmsError) as exc:
            if _refusal(exc):
                raise
            errors = _problems(exc, AUDIT_FILTERS)
    return await _render(
        page,
        "admin/audit_sql.html",
        status=400 if errors else 200,
        rows=found["SQLExecAuditLogList"]["SQLExecAuditLog"],
        total=found["TotalCount"],
        number=number,
        size=PAGE_SIZE,
        query=query,
        start=_field_time(start),
        errors=errors,
        exec_states=EXEC_STATES,
    )


@dataclass(frozen=True)
class EventRow:
    event_id: int
    at: datetime
    order_id: int
    order_comment: str
    action: str
    actor: str
    node_name: str
    detail: str
    comment: str


def _events(
    s: Session, caller: Caller, action: ApprovalAction | None, order_id: int | None, number: int
) -> tuple[int, list[EventRow]]:
    found = approvals.tenant_events(
        s, caller, action=action, order_id=order_id, page=number, size=PAGE_SIZE
    )
    rows = [
        EventRow(
            e.event_id,
            e.created_at,
            o.order_id,
            o.comment,
            e.action,
            (u.nick_name or u.uid) if u is not None else "system",
            e.node_name,
            e.detail,
            e.comment,
        )
        for e, o, u in found.items
    ]
    return found.total, rows


@_section("Audit trail")
async def audit_approvals(page: Page) -> Response:
    query = {name: page.field(name).strip() for name in ("Action", "OrderId")}
    number = _page_number(page)
    errors: dict[str, str] = {}
    if query["Action"] and query["Action"] not in APPROVAL_ACTIONS:
        errors["Action"] = f"One of {', '.join(APPROVAL_ACTIONS)}."
    order_id = query["OrderId"]
    if order_id and not (order_id.isascii() and order_id.isdigit() and len(order_id) < 19):
        errors["OrderId"] = "A ticket number, such as 42."
    total, rows = 0, list[EventRow]()
    if not errors:
        total, rows = await page.read(
            "ListApprovalEvents",
            _events,
            ApprovalAction(query["Action"]) if query["Action"] else None,
            int(order_id) if order_id else None,
            number,
        )
    return await _render(
        page,
        "admin/audit_approvals.html",
        status=400 if errors else 200,
        rows=rows,
        total=total,
        number=number,
        size=PAGE_SIZE,
        query=query,
        errors=errors,
        actions=APPROVAL_ACTIONS,
    )


@_section("Audit trail")
async def audit_sign_ins(page: Page) -> Response:
    query = {name: page.field(name).strip() for name in ("Outcome", "UserName")}
    number = _page_number(page)
    errors: dict[str, str] = {}
    if query["Outcome"] and query["Outcome"] not in OUTCOMES:
        errors["Outcome"] = f"One of {', '.join(OUTCOMES)}."
    if len(query["UserName"]) > 64:
        errors["UserName"] = "A name typed at sign-in is at most 64 characters."
    total, rows = 0, []
    if not errors:
        found = await page.read(
            AUDIT_READ,
            sessions.attempts,
            outcome=SignInOutcome(query["Outcome"]) if query["Outcome"] else None,
            name=query["UserName"] or None,
            page=number,
            size=PAGE_SIZE,
        )
        total, rows = found.total, list(found.items)
    return await _render(
        page,
        "admin/audit_sign_ins.html",
        status=400 if errors else 200,
        rows=rows,
        total=total,
        number=number,
        size=PAGE_SIZE,
        query=query,
        errors=errors,
        outcomes=OUTCOMES,
    )


ROUTES = [
    get("/admin", index),
    get("/admin/users", users),
    post("/admin/users", register),
    get("/admin/users/{uid}", user),
    post("/admin/users/{uid}", update_user),
    post("/admin/users/{uid}/state", set_user_state),
    post("/admin/users/{uid}/password", set_password),
    get("/admin/keys", keys),
    post("/admin/keys", create_key),
    post("/admin/keys/{key_id}/status", set_key_status),
    get("/admin/permissions", permissions),
    post("/admin/permissions", grant),
    post("/admin/permissions/revoke", revoke),
    get("/admin/rules", rules),
    get("/admin/rules/view", rule_set),
    get("/admin/webhooks", webhook),
    get("/admin/audit", audit),
    get("/admin/audit/approvals", audit_approvals),
    get("/admin/audit/sign-ins", audit_sign_ins),
]
