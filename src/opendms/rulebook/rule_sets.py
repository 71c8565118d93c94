"""Rule sets as a tenant keeps them: loaded by name, assigned to instances (``SafeRule``).

An instance whose ``SafeRule`` names no loaded rule set follows the tenant's ``default``: the
one loaded under that name, else the built-in default (``default_rules.yaml``). A document is
validated completely, including that every template it names exists, before anything is
written, so a bad document leaves the one in force untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from opendms.catalog import queries
from opendms.errors import DmsError, ErrorCode
from opendms.rulebook import rules, templates
from opendms.store.models import Instance, SecurityRuleSet, WorkflowTemplate, utcnow


@dataclass(frozen=True)
class Loaded:
    name: str
    source: str
    version: int  # 0: the built-in default
    rule_set: rules.RuleSet


@lru_cache(maxsize=256)
def _parsed(source: str) -> rules.RuleSet:
    return rules.parse(source)


def _check_templates(s: Session, tid: int, rule_set: rules.RuleSet) -> None:
    templates.ensure_system(s, tid)
    known = {
        name: enabled
        for name, enabled in s.execute(
            select(WorkflowTemplate.name, WorkflowTemplate.enabled).where(
                WorkflowTemplate.tid == tid
            )
        )
    }
    missing = sorted(n for n in rule_set.template_names() if n not in known)
    if missing:
        raise rules.RuleSetError(
            f"templates: no template named {', '.join(map(repr, missing))} in this tenant"
        )
    disabled = sorted(n for n in rule_set.template_names() if not known[n])
    if disabled:
        raise rules.RuleSetError(f"templates: {', '.join(map(repr, disabled))} is disabled")


def validate(s: Session, tid: int, source: str) -> rules.RuleSet:
    try:
        rule_set = rules.parse(source)
        _check_templates(s, tid, rule_set)
    except rules.RuleSetError as exc:
        raise DmsError(ErrorCode.RULE_SET_INVALID, str(exc)) from None
    return rule_set


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 256:
        raise DmsError(ErrorCode.INVALID_PARAMETER, "A rule set name is 1 to 256 characters.")
    return name


def load(s: Session, tid: int, name: str, source: str) -> SecurityRuleSet:
    """Validate ``source`` and store it under ``name`` (a new version when it exists)."""
    name = _check_name(name)
    validate(s, tid, source)
    row = s.scalar(
        select(SecurityRuleSet).where(SecurityRuleSet.tid == tid, SecurityRuleSet.name == name)
    )
    if row is None:
        row = SecurityRuleSet(tid=tid, name=name, source=source, version=1)
        s.add(row)
    else:
        row.source = source
        row.version += 1
        row.updated_at = utcnow()
    s.flush()
    return row


def get(s: Session, tid: int, name: str) -> Loaded:
    """The rule set called ``name``; ``default`` is always there."""
    row = s.scalar(
        select(SecurityRuleSet).where(SecurityRuleSet.tid == tid, SecurityRuleSet.name == name)
    )
    if row is not None:
        return Loaded(row.name, row.source, row.version, _parsed(row.source))
    if name == rules.DEFAULT_NAME:
        source = rules.default_source()
        return Loaded(rules.DEFAULT_NAME, source, 0, _parsed(source))
    raise DmsError(ErrorCode.RULE_SET_NOT_FOUND, f"No rule set named {name[:256]!r}.")


def list_names(s: Session, tid: int) -> Sequence[SecurityRuleSet]:
    return s.scalars(
        select(SecurityRuleSet).where(SecurityRuleSet.tid == tid).order_by(SecurityRuleSet.name)
    ).all()


@dataclass
class InUse:
    """A rule set of the tenant and the instances that follow it (version 0: the built-in
    default, which no load replaced)."""

    name: str
    version: int
    updated_at: datetime | None
    instances: list[Instance] = field(default_factory=list)


def in_use(s: Session, tid: int) -> list[InUse]:
    """The tenant's rule sets, ``default`` first, each with the instances that follow it: an
    instance whose SafeRule names no loaded rule set follows the default (``for_instance``)."""
    loaded = {r.name: InUse(r.name, r.version, r.updated_at) for r in list_names(s, tid)}
    default = loaded.pop(rules.DEFAULT_NAME, None) or InUse(rules.DEFAULT_NAME, 0, None)
    for inst in s.scalars(
        select(Instance).where(Instance.tid == tid).order_by(Instance.instance_id)
    ):
        loaded.get(inst.safe_rule.strip(), default).instances.append(inst)
    return [default, *loaded.values()]


def for_instance(s: Session, inst: Instance) -> tuple[Loaded, str | None]:
    """The rule set an instance follows, and a note when its SafeRule named none."""
    name = inst.safe_rule.strip()
    if name and name != rules.DEFAULT_NAME:
        try:
            return get(s, inst.tid, name), None
        except DmsError:
            note = f"Instance {inst.alias}: no rule set named '{name}'; the default applies."
            return get(s, inst.tid, rules.DEFAULT_NAME), note
    return get(s, inst.tid, rules.DEFAULT_NAME), None


def assign(s: Session, tid: int, instance_id: int, name: str) -> Instance:
    inst = queries.get_instance(s, tid, instance_id)
    get(s, tid, _check_name(name))
    inst.safe_rule = name
    s.flush()
    return inst
