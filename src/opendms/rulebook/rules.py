"""Security rule sets: which approval template a ticket needs, from what the ticket does.

A rule set is a YAML or JSON document (``docs/security-rules.md`` describes it). Each rule has
conditions on the ticket's risk factors and either a risk level or a refusal. Every rule whose
conditions all hold applies: any refusal refuses the ticket; otherwise the highest risk level
wins (``NONE``, approval waived, only when nothing higher matched), and the level names the
template. What cannot be known before the precheck (rows of an attachment, SQL too large to
analyse here) is assumed to be the worst: it matches "over" limits, statement kinds and tables.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from opendms.sql import review
from opendms.sql.statements import KINDS
from opendms.tickets.registry import all_kinds, find

LEVELS = ("NONE", "LOW", "MIDDLE", "HIGH", "HIGHEST")
Level = Literal["LOW", "MIDDLE", "HIGH", "HIGHEST"]
RuleLevel = Literal["NONE", "LOW", "MIDDLE", "HIGH", "HIGHEST"]
ENV_TYPES = ("product", "dev", "pre", "test", "sit", "uat", "pet", "stag")
DEFAULT_NAME = "default"
MAX_DOCUMENT_BYTES = 256 * 1024
NO_APPROVAL_NAMES = ("-1", "none")

Text = Annotated[str, Field(min_length=1, max_length=512)]


def _template_ref(value: object) -> object:
    """``-1`` written as a number means no approval, like the string."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


TemplateRef = Annotated[str, BeforeValidator(_template_ref), Field(min_length=1, max_length=128)]


def _plugin_types() -> tuple[str, ...]:
    return tuple(k.plugin_type for k in all_kinds())


def _exports(plugin_type: str) -> bool:
    """Whether tickets of ``plugin_type`` export rows (which ``export_rows`` weighs)."""
    kind = find(plugin_type)
    return kind is not None and kind.verb == "export"


class RuleSetError(ValueError):
    """A document that is not a valid rule set; the message names the line and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class Rows(_Strict):
    over: Annotated[int, Field(ge=0)] | None = None
    at_most: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _bounded(self) -> Rows:
        if self.over is None and self.at_most is None:
            raise ValueError("give 'over', 'at_most' or both")
        return self

    def holds(self, rows: int | None) -> bool:
        """Unknown rows (None) are taken as more than any limit."""
        if rows is None:
            return self.at_most is None
        return (self.over is None or rows > self.over) and (
            self.at_most is None or rows <= self.at_most
        )

    def describe(self) -> str:
        parts = []
        if self.over is not None:
            parts.append(f"over {self.over:,}")
        if self.at_most is not None:
            parts.append(f"at most {self.at_most:,}")
        return " and ".join(parts)


def _choices(values: list[str], allowed: tuple[str, ...], what: str) -> list[str]:
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValueError(f"unknown {what} {', '.join(map(repr, bad))}; one of {', '.join(allowed)}")
    return values


class When(_Strict):
    ticket_types: Annotated[list[str], Field(min_length=1)] | None = None
    env: Annotated[list[str], Field(min_length=1)] | None = None
    statement_kinds: Annotated[list[str], Field(min_length=1)] | None = None
    tables: Annotated[list[Text], Field(min_length=1)] | None = None
    affected_rows: Rows | None = None
    export_rows: Rows | None = None

    @field_validator("ticket_types", "env", "statement_kinds")
    @classmethod
    def _known_values(cls, values: list[str] | None, info: ValidationInfo) -> list[str] | None:
        allowed, what = {
            "ticket_types": (_plugin_types(), "ticket type"),
            "env": (ENV_TYPES, "environment"),
            "statement_kinds": (KINDS, "statement kind"),
        }[str(info.field_name)]
        return _choices(values, allowed, what) if values else values


class Rule(_Strict):
    name: Text
    when: When = When()
    risk: RuleLevel | None = None
    forbid: Text | None = None

    @model_validator(mode="after")
    def _one_outcome(self) -> Rule:
        if (self.risk is None) == (self.forbid is None):
            raise ValueError("a rule gives either 'risk' or 'forbid'")
        return self


class Templates(_Strict):
    LOW: TemplateRef
    MIDDLE: TemplateRef
    HIGH: TemplateRef
    HIGHEST: TemplateRef


class PartialTemplates(_Strict):
    LOW: TemplateRef | None = None
    MIDDLE: TemplateRef | None = None
    HIGH: TemplateRef | None = None
    HIGHEST: TemplateRef | None = None


def _review_code(value: str) -> str:
    code = _choices([value], tuple(r.code for r in review.RULES), "review rule")[0]
    if any(r.fixed and r.code == code for r in review.RULES):
        raise ValueError(f"{code} is a security rule: a rule set cannot change its level")
    return code


ReviewCode = Annotated[str, AfterValidator(_review_code)]
# YAML 1.1 reads a bare OFF as false
ReviewLevel = Annotated[
    Literal["ERROR", "WARNING", "OFF"], BeforeValidator(lambda v: "OFF" if v is False else v)
]


def _ticket_type(value: str) -> str:
    return _choices([value], _plugin_types(), "ticket type")[0]


TicketTypeName = Annotated[str, AfterValidator(_ticket_type)]


class Console(_Strict):
    """The SQL console (``ExecuteScript``, ``opendms sql run``) on the rule set's instances."""

    max_rows: Annotated[int, Field(ge=1, le=100_000)] = 1000  # rows a result shows
    # environments where it may change data and tables; elsewhere changes go through tickets
    changes: list[str] = ["dev", "test"]

    @field_validator("changes")
    @classmethod
    def _known_envs(cls, values: list[str]) -> list[str]:
        return _choices(values, ENV_TYPES, "environment")


class SchemaDesign(_Strict):
    """How a schema design (NDDL) travels: its base database's environment, then the same-named
    database on the instances of each environment after it, in this order."""

    stages: Annotated[list[str], Field(min_length=1, max_length=len(ENV_TYPES))] = [
        "dev",
        "test",
        "product",
    ]

    @field_validator("stages")
    @classmethod
    def _known_envs(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("an environment is named twice")
        return _choices(values, ENV_TYPES, "environment")

    def after(self, env: str) -> list[str]:
        """The environments a design based in ``env`` goes on to, in order (none when ``env``
        is not a stage)."""
        return self.stages[self.stages.index(env) + 1 :] if env in self.stages else []


class RuleSet(_Strict):
    description: Annotated[str, Field(max_length=4096)] = ""
    self_approval: bool = False
    one_node_per_approver: bool = True
    default_risk: Level = "HIGH"
    templates: Templates
    by_ticket_type: dict[TicketTypeName, PartialTemplates] = {}
    # SQL review levels that differ from each rule's default (opendms review-rules lists them)
    review: dict[ReviewCode, ReviewLevel] = {}
    rules: Annotated[list[Rule], Field(max_length=1000)] = []
    console: Console = Console()
    schema_design: SchemaDesign = SchemaDesign()

    def template_for(self, plugin_type: str, risk: str) -> str | None:
        """The template name for a risk level; None means no approval."""
        if risk == "NONE":
            return None
        override = self.by_ticket_type.get(plugin_type)
        name = getattr(override, risk, None) if override else None
        name = name or getattr(self.templates, risk)
        return None if str(name).strip().lower() in NO_APPROVAL_NAMES else str(name)

    def template_names(self) -> set[str]:
        names = {getattr(self.templates, level) for level in LEVELS[1:]}
        for override in self.by_ticket_type.values():
            names |= {v for level in LEVELS[1:] if (v := getattr(override, level))}
        return {n for n in names if n.strip().lower() not in NO_APPROVAL_NAMES}


# ------------------------------------------------------------------ parsing


def _line_of(root: yaml.Node | None, loc: tuple[int | str, ...]) -> int:
    """The 1-based line of the node at ``loc`` (or of its deepest existing ancestor)."""
    if root is None:
        return 1
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    # the field at fault is reported where its key is written
                    node = key if part == loc[-1] else value
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
        else:
            break
    return node.start_mark.line + 1


def _duplicate_keys(node: yaml.Node, path: tuple[str, ...] = ()) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            where = (*path, str(key.value))
            if key.value in seen:
                raise RuleSetError(
                    f"line {key.start_mark.line + 1}: {'.'.join(where)}: appears twice"
                )
            seen.add(key.value)
            _duplicate_keys(value, where)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _duplicate_keys(item, (*path, str(i)))


def _yaml_error(exc: yaml.YAMLError, what: str) -> RuleSetError:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}: " if mark is not None else ""
    return RuleSetError(f"{where}not valid {what}: {getattr(exc, 'problem', None) or exc}")


def _load(text: str) -> tuple[Any, yaml.Node | None]:
    """The document's data, and its YAML node tree for line numbers. JSON is read by the json
    module (YAML parsers refuse the tabs JSON allows); its node tree comes from the same text
    with tabs expanded, which keeps every line where it was."""
    if text.lstrip().startswith(("{", "[")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RuleSetError(f"line {exc.lineno}: not valid JSON: {exc.msg}") from None
        try:
            return data, yaml.compose(text.expandtabs(), Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            return data, None
    try:
        return yaml.safe_load(text), yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, "YAML or JSON") from None


def parse(text: str) -> RuleSet:
    """A rule set from YAML or JSON text, or :class:`RuleSetError` naming line and field."""
    if len(text.encode()) > MAX_DOCUMENT_BYTES:
        raise RuleSetError(f"a rule set is at most {MAX_DOCUMENT_BYTES // 1024} KiB")
    data, root = _load(text)
    if not isinstance(data, dict):
        raise RuleSetError("line 1: a rule set is a mapping (keys such as 'templates', 'rules')")
    if root is not None:
        _duplicate_keys(root)
    try:
        return RuleSet.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False)[:5]:
            loc = tuple(p for p in err["loc"] if p != "[key]")  # a bad dict key: the key
            field = ".".join(str(p) for p in loc) or "(document)"
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "is not a known field"
            problems.append(f"line {_line_of(root, loc)}: {field}: {message}")
        raise RuleSetError("; ".join(problems)) from None


@cache  # a file of the installed package: read once per process
def default_source() -> str:
    return resources.files("opendms.rulebook").joinpath("default_rules.yaml").read_text("utf-8")


# ------------------------------------------------------------------ evaluation


@dataclass(frozen=True)
class Facts:
    """The risk factors of one ticket."""

    plugin_type: str
    env_types: frozenset[str]
    statement_kinds: frozenset[str]
    tables: frozenset[str]  # "db.table", lower-cased
    affected_rows: int | None  # None: not known before the precheck
    export_rows: int | None  # an export's only (``_exports``); None: not known
    complete: bool  # False: some of the ticket's SQL was not analysed

    def describe(self) -> str:
        def rows(n: int | None) -> str:
            return "unknown" if n is None else f"{n:,}"

        parts = [
            f"type {self.plugin_type}",
            f"environment {', '.join(sorted(self.env_types)) or 'unknown'}",
            f"statements {', '.join(sorted(self.statement_kinds)) or 'none known'}",
            f"affected rows {rows(self.affected_rows)}",
        ]
        if _exports(self.plugin_type):
            parts.append(f"export rows {rows(self.export_rows)}")
        if not self.complete:
            parts.append("not fully analysed before the precheck")
        return "; ".join(parts)


def _table_matches(pattern: str, table: str) -> bool:
    """``schema.table`` patterns match qualified names; a bare pattern matches the table name
    in any schema (and only the table name: ``tmp_*`` is not ``tmp_backup.customers``)."""
    pattern = pattern.lower()
    name = table if "." in pattern else table.rsplit(".", 1)[-1]
    return fnmatch.fnmatchcase(name, pattern)


def matches(when: When, facts: Facts) -> bool:
    if when.ticket_types and facts.plugin_type not in when.ticket_types:
        return False
    if when.env and not facts.env_types & set(when.env):
        return False
    if when.statement_kinds and not (
        facts.statement_kinds & set(when.statement_kinds) or not facts.complete
    ):
        return False
    if when.tables and not (
        not facts.complete or any(_table_matches(p, t) for p in when.tables for t in facts.tables)
    ):
        return False
    if when.affected_rows and not when.affected_rows.holds(facts.affected_rows):
        return False
    return not when.export_rows or (
        _exports(facts.plugin_type) and when.export_rows.holds(facts.export_rows)
    )


@dataclass(frozen=True)
class Decision:
    rule_set: str
    risk: str  # NONE, LOW, MIDDLE, HIGH, HIGHEST
    template: str | None  # None: no approval needed
    forbidden: tuple[str, ...]
    reasons: tuple[str, ...]
    self_approval: bool
    one_node_per_approver: bool


def evaluate(rule_set: RuleSet, name: str, facts: Facts) -> Decision:
    matched = [r for r in rule_set.rules if matches(r.when, facts)]
    forbidden = tuple(f"{r.name}: {r.forbid}" for r in matched if r.forbid)
    risks = [r for r in matched if r.risk]
    if risks:
        top = max(risks, key=lambda r: LEVELS.index(r.risk or "NONE"))
        risk = top.risk or "NONE"
        reasons = [f"Rule '{r.name}' of rule set '{name}' sets risk {r.risk}." for r in risks]
    else:
        risk = rule_set.default_risk
        reasons = [f"No rule of rule set '{name}' matched: default risk {risk}."]
    template = rule_set.template_for(facts.plugin_type, risk)
    reasons.append(
        f"Risk {risk} needs template '{template}'."
        if template
        else f"Risk {risk}: no approval needed."
    )
    reasons.append(f"Ticket: {facts.describe()}.")
    return Decision(
        name,
        risk,
        template,
        forbidden,
        tuple(reasons),
        rule_set.self_approval,
        rule_set.one_node_per_approver,
    )
