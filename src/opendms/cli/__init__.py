"""The ``opendms`` command line. It calls the services with typed plans; it never speaks the
wire protocol.

This module is the command tree, in the order ``--help`` shows it: each noun's commands are
functions in the noun's module (``orders``, ``approvals``, …); what they share (options,
the runtime, output, exit codes) is in ``common``. docs/DESIGN-NOTES.md says how to add one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import typer

from opendms.cli import (
    approvals,
    attachments,
    columns,
    designs,
    executions,
    exports,
    instances,
    jobs,
    keys,
    orders,
    policies,
    reference,
    rules,
    server,
    sql,
    tenants,
    users,
    webhooks,
    workflows,
)
from opendms.cli.common import (
    EXIT_CODES,
    EXIT_DONE,
    EXIT_FAILED,
    EXIT_NO_STORE,
    EXIT_USAGE,
    CliError,
    err,
    out,
    reported,
)

__all__ = [
    "EXIT_CODES",
    "EXIT_DONE",
    "EXIT_FAILED",
    "EXIT_NO_STORE",
    "EXIT_USAGE",
    "CliError",
    "app",
    "err",
    "main",
    "out",
]

app = typer.Typer(
    help="OpenDMS: database change tickets behind a DMS-Enterprise-compatible API.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _noun(name: str, summary: str, verbs: dict[str, Callable[..., Any]]) -> None:
    group = typer.Typer(help=summary, no_args_is_help=True)
    for verb, command in verbs.items():
        group.command(verb)(command)
    app.add_typer(group, name=name)


for _name, _command in {
    "init": server.init,
    "serve": server.serve,
    "worker": jobs.worker,
    "upload": attachments.upload,
    "actions": reference.actions,
    "errors": reference.errors,
}.items():
    app.command(_name)(_command)

_noun(
    "user",
    "Users of a tenant.",
    {
        "create": users.create,
        "list": users.list_,
        "disable": users.disable,
        "enable": users.enable,
        "password": users.password,
    },
)
_noun(
    "key",
    "Access keys (AccessKeyId / AccessKeySecret).",
    {"create": keys.create, "list": keys.list_, "revoke": keys.revoke},
)
_noun(
    "policy",
    "RAM-style policies attached to users.",
    {"attach": policies.attach, "detach": policies.detach, "show": policies.show},
)
_noun("tenant", "Tenants (Tid).", {"create": tenants.create, "list": tenants.list_})
_noun(
    "instance",
    "Registered database instances.",
    {
        "register": instances.register,
        "dba": instances.dba,
        "list": instances.list_,
        "sync": instances.sync,
        "throttle": instances.throttle,
    },
)
_noun(
    "order",
    "Tickets (orders).",
    {
        "create": orders.create,
        "list": orders.list_,
        "show": orders.show,
        "close": orders.close,
        "submit": approvals.submit,
        "precheck": executions.precheck_,
        "execute": executions.execute,
        "pause": executions.pause,
        "restart": executions.restart,
        "cleanup": executions.cleanup,
        "export": exports.export,
        "exported": exports.exported,
        "approve": approvals.approve,
        "reject": approvals.reject,
        "withdraw": approvals.withdraw,
        "transfer": approvals.transfer,
        "add-node": approvals.add_node,
        "approvals": approvals.approvals,
    },
)
_noun(
    "design",
    "Schema design tickets: the design, its review, and its stages.",
    {
        "update": designs.update,
        "show": designs.show,
        "compare": designs.compare,
        "run": designs.run,
    },
)
_noun(
    "workflow",
    "Approval nodes and templates.",
    {"list": workflows.list_, "node": workflows.node, "template": workflows.template},
)
_noun(
    "rules",
    "Security rule sets: which approval a ticket needs (docs/security-rules.md).",
    {
        "load": rules.load,
        "show": rules.show,
        "list": rules.list_,
        "sets": rules.sets,
        "assign": rules.assign,
        "test": rules.decide,
    },
)
_noun(
    "webhook",
    "The tenant's webhook for ticket events (docs/webhooks.md).",
    {
        "set": webhooks.set_,
        "disable": webhooks.disable,
        "ping": webhooks.ping,
        "log": webhooks.log,
    },
)
_noun(
    "sql",
    "SQL checks before a ticket is filed; the SQL console.",
    {"review": sql.review, "run": sql.run},
)
_noun(
    "jobs",
    "Background work (prechecks, executions), without the HTTP server.",
    {"run": jobs.run},
)
_noun(
    "column",
    "Sensitive columns: what exports mask, and how.",
    {"mask": columns.mask, "list": columns.list_},
)


def main() -> None:
    """The ``opendms`` console script: a failure is one line on stderr and an exit code."""
    try:
        app()
    except Exception as exc:
        found = reported(exc)
        if found is None:
            raise
        line, code = found
        err.print(f"error: {line}", markup=False, highlight=False)
        sys.exit(code)
