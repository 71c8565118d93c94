"""One RPC call from raw HTTP to response: parse, find the action, authenticate, throttle,
authorize, validate, run the handler in one transaction, and shape the envelope."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any

from pydantic import Field
from starlette.concurrency import run_in_threadpool

from opendms.config import API_VERSION, Settings
from opendms.errors import DmsError
from opendms.gateway import errors
from opendms.gateway.auth import Authenticator
from opendms.gateway.errors import GatewayError
from opendms.gateway.limiters import limiter_for
from opendms.gateway.rpc import RawRequest, parse_call
from opendms.gateway.table import Action, Context, Payload
from opendms.gateway.wire import WireModel, parse_integer
from opendms.identity import acting, policy, service
from opendms.identity.caller import Caller
from opendms.identity.credentials import Credential, credential_store
from opendms.identity.roles import Role
from opendms.means import Means
from opendms.store.db import STORE_UNAVAILABLE, Store
from opendms.store.states import UserState
from opendms.telemetry import logs, metrics

log = logging.getLogger("opendms.gateway")


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    headers: Mapping[str, str]


def new_request_id() -> str:
    return str(uuid.uuid4()).upper()


def _tid(params: Mapping[str, str]) -> int | None:
    """The common ``Tid`` parameter; absent, zero or negative (docs use -1) means 'active'."""
    raw = params.get("Tid")
    if raw is None or raw.strip() == "":
        return None
    try:
        value = parse_integer(raw)
    except ValueError as exc:
        raise errors.invalid("Tid", str(exc)) from None
    return value if value > 0 else None


class ActingFor(WireModel):
    """``RealLoginUserUid``: the user of the tenant a call acts for (``identity.acting``).
    DMS's SDK sends it on most writes; read here, once, for every action."""

    real_login_user_uid: Annotated[str, Field(max_length=64)] = ""


def log_reply(
    reply: Reply, action: str, started: float, client: str, caller: Caller | None = None
) -> None:
    """The one log line per API request; its request_id is the response's RequestId. It
    names the user the call ran as, once known, and the access key's owner when that user
    was someone else (``by``)."""
    who = ""
    if caller is not None:
        who = f" user={caller.uid}" + (f" by={caller.by_uid}" if caller.by_user_id else "")
    code = reply.body.get("Code") or reply.body.get("ErrorCode") or "OK"
    _answered(str(reply.body.get("RequestId")), action, reply.status, code, started, client, who)


def _answered(
    request_id: str, action: str, status: int, code: str, started: float, client: str, who: str
) -> None:
    """Every API request, signed or the console's, ends here once: its log line, and its
    count and latency in /metrics by action and code."""
    seconds = time.perf_counter() - started
    metrics.request(action, code, seconds)
    with logs.context(request_id=request_id):
        log.info(
            "request_id=%s action=%s status=%d code=%s ms=%.1f client=%s%s",
            request_id,
            action,
            status,
            code,
            seconds * 1000,
            client,
            who,
            extra={
                "action": action,
                "status": status,
                "code": code,
                "ms": round(seconds * 1000, 1),
            },
        )


def _order_id(params: Mapping[str, str]) -> int | None:
    """The ticket a call names (``OrderId``), for its log lines; the action's own model
    judges the value, so one that is not a ticket number names none here."""
    given = params.get("OrderId")
    if not given:
        return None
    try:
        value = parse_integer(given)
    except ValueError:
        return None
    return value if value > 0 else None


def error_reply(
    headers: Mapping[str, str], exc: GatewayError, request_id: str | None = None
) -> Reply:
    """The gateway error envelope (dms-api.md C.2)."""
    body = {
        "RequestId": request_id or new_request_id(),
        "HostId": headers.get("host", "opendms")[:255],
        "Code": exc.code,
        "Message": exc.message,
    }
    return Reply(exc.status, body, exc.headers)


class PolicyCache:
    """A user's attached policies, and what they and the user's roles decide about an action,
    cached per process until the user's auth_version moves (attaching or detaching a policy,
    or changing the roles, moves it; both are read from the store with every request)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[tuple[int, int], list[policy.PolicyDocument]] = {}
        self._decisions: dict[tuple[int, int, tuple[Role, ...], str], bool] = {}

    async def attached(self, user_id: int, version: int) -> list[policy.PolicyDocument]:
        key = (user_id, version)
        found = self._cache.get(key)
        if found is None:
            found = await run_in_threadpool(self._load, user_id)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = found
        return found

    async def allows(
        self, user_id: int, version: int, roles: tuple[Role, ...], ram_action: str
    ) -> bool:
        """Whether ``roles`` and the user's attached policies allow ``ram_action``: decided
        by these alone, so the answer is kept under them."""
        key = (user_id, version, roles, ram_action)
        found = self._decisions.get(key)
        if found is None:
            attached = await self.attached(user_id, version)
            found = policy.decide(policy.policies_for(roles, attached), ram_action)
            if len(self._decisions) > 10_000:
                self._decisions.clear()
            self._decisions[key] = found
        return found

    def _load(self, user_id: int) -> list[policy.PolicyDocument]:
        with self.store.session() as s:
            return [doc for _, doc in service.attached_policies(s, user_id)]


@dataclass
class _Seen:
    """What a request turned out to be, as far as it got: for its log line."""

    action: str = "-"
    caller: Caller | None = None


class Gateway:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        means: Means,
        table: Mapping[str, Action],
    ) -> None:
        self.store = store
        self.means = means
        box = means.secrets
        self.table = table
        self.credentials = credential_store(store, box, settings.db_pool_size)
        self.authn = Authenticator(self.credentials, settings.clock_skew_seconds)
        self.limiter = limiter_for(settings, self.credentials)
        self.policies = PolicyCache(store)

    async def handle(self, raw: RawRequest) -> Reply:
        request_id = new_request_id()
        with logs.context(request_id=request_id):
            return await self._handle(raw, request_id)

    async def _handle(self, raw: RawRequest, request_id: str) -> Reply:
        started = time.perf_counter()
        seen = _Seen()
        try:
            reply = await self._run(raw, request_id, seen)
        except GatewayError as exc:
            reply = error_reply(raw.headers, exc, request_id)
        except DmsError as exc:
            reply = Reply(
                200,
                {
                    "RequestId": request_id,
                    "Success": False,
                    "ErrorCode": exc.code.value,
                    "ErrorMessage": exc.message,
                },
                {},
            )
        except STORE_UNAVAILABLE:
            log.exception("request_id=%s metadata store unavailable", request_id)
            reply = error_reply(raw.headers, errors.store_unavailable(), request_id)
        except Exception:
            log.exception("request_id=%s unexpected failure", request_id)
            reply = error_reply(raw.headers, errors.internal_error(), request_id)
        log_reply(reply, seen.action, started, raw.client, seen.caller)
        return reply

    async def _run(self, raw: RawRequest, request_id: str, seen: _Seen) -> Reply:
        call = parse_call(raw)
        logs.bind(order_id=_order_id(call.business))
        action = self.table.get(call.action)
        if action is None:
            raise errors.action_not_found(call.action[:128])
        seen.action = action.name
        if call.version != API_VERSION:
            raise errors.invalid_version(call.version[:32], API_VERSION)
        if raw.method not in action.methods:
            raise errors.unsupported_method(raw.method, action.name)
        if call.params.get("Format", "json").lower() != "json":
            raise errors.format_unsupported()
        tid = _tid(call.params)
        proof = await self.authn.verify(call)
        wait = await self.limiter.take(proof.access_key_id, action.name)
        if wait > 0:
            raise errors.throttled(int(wait * 1000) + 1)
        credential = await self.authn.admit(proof, tid)
        caller = seen.caller = self._caller(credential, tid)
        await self.authorize(caller, credential.auth_version, action)
        request = action.request.from_params(call.business)
        # What the key may call is decided above, by its owner's policies; what the call
        # may see and do from here on is the acted-for user's.
        acted_for = ActingFor.from_params(call.business).real_login_user_uid.strip()
        if acted_for and acted_for != caller.uid:
            caller = seen.caller = await run_in_threadpool(self._act_for, caller, acted_for)
        ctx = Context(caller, self.means, origin=raw.origin)
        if action.takes_body:
            if call.scheme != "v3":
                raise errors.incomplete_signature(
                    f"{action.name} carries its payload in the body; sign it with "
                    "ACS3-HMAC-SHA256, which covers the body."
                )
            ctx = replace(ctx, body=raw.body)
        payload = await self.execute(action, ctx, request)
        return Reply(200, {"RequestId": request_id, "Success": True, **payload}, {})

    async def authorize(self, caller: Caller, auth_version: int, action: Action) -> None:
        """May this user call this action: their roles' and attached RAM policies decide."""
        if not await self.policies.allows(
            caller.user_id, auth_version, caller.roles, action.ram_action
        ):
            raise errors.forbidden_ram(action.ram_action)

    async def execute(self, action: Action, ctx: Context, request: WireModel) -> Payload:
        """The handler, in one metadata transaction on a worker thread when it blocks."""
        if action.blocking:
            return await run_in_threadpool(self._in_transaction, action, ctx, request)
        return action.handler(ctx, request)

    async def call(
        self,
        caller: Caller,
        auth_version: int,
        name: str,
        params: Mapping[str, str],
        *,
        origin: str,
        body: bytes = b"",
        client: str = "",
    ) -> Payload:
        """One action for a caller the web console signed in: the same rate limit, RAM
        decision, wire validation and handler as a signed API request, without the
        signature (the console's session and CSRF token stand for it). It is logged as an
        API request is, marked ``via=console``: what a user did reads the same either way."""
        action = self.table[name]
        request_id = new_request_id()
        started = time.perf_counter()
        status, code = 500, "InternalError"  # unless it ends otherwise
        with logs.context(request_id=request_id, order_id=_order_id(params)):
            try:
                wait = await self.limiter.take(
                    f"{caller.access_key_id}:{caller.user_id}", action.name
                )
                if wait > 0:
                    raise errors.throttled(int(wait * 1000) + 1)
                await self.authorize(caller, auth_version, action)
                request = action.request.from_params(dict(params))
                payload = await self.execute(
                    action, Context(caller, self.means, origin=origin, body=body), request
                )
                status, code = 200, "OK"
                return payload
            except GatewayError as exc:
                status, code = exc.status, exc.code
                raise
            except DmsError as exc:
                status, code = 200, exc.code.value  # Success false, as the API answers it
                raise
            finally:
                who = f" user={caller.uid} via=console"
                _answered(request_id, action.name, status, code, started, client, who)

    def _in_transaction(self, action: Action, ctx: Context, request: WireModel) -> Payload:
        with self.store.session() as session:
            return action.handler(replace(ctx, transaction=session), request)

    def _act_for(self, caller: Caller, uid: str) -> Caller:
        with self.store.session() as session:
            return acting.act_for(session, caller, uid)

    @staticmethod
    def _caller(cred: Credential, tid: int | None) -> Caller:
        if cred.user_id is None or cred.tid is None or cred.user_state == UserState.DELETE:
            raise errors.forbidden_tenant(tid)
        if cred.user_state != UserState.NORMAL:
            raise errors.access_key_inactive(
                f"The user owning this access key is disabled in tenant {cred.tid}."
            )
        return Caller(
            access_key_id=cred.access_key_id,
            uid=cred.uid,
            user_id=cred.user_id,
            tid=cred.tid,
            tenant_name=cred.tenant_name or "",
            roles=cred.roles,
            nick_name=cred.nick_name,
        )
