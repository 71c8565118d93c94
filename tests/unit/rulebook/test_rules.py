"""Security rule-set documents: parsing (with line and field in every error) and evaluation."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from opendms.rulebook.rules import (
    MAX_DOCUMENT_BYTES,
    Facts,
    RuleSet,
    RuleSetError,
    When,
    default_source,
    evaluate,
    matches,
    parse,
)

TEMPLATES = "templates: {LOW: DBA, MIDDLE: Owner, HIGH: Owner->DBA, HIGHEST: Owner->DBA->Admin}\n"


def error_of(text: str) -> str:
    with pytest.raises(RuleSetError) as err:
        parse(text)
    return str(err.value)


def facts(**changes: object) -> Facts:
    base = Facts(
        plugin_type="DC_COMMON",
        env_types=frozenset({"product"}),
        statement_kinds=frozenset({"UPDATE"}),
        tables=frozenset({"sales.orders"}),
        affected_rows=10,
        export_rows=None,
        complete=True,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def when(**conditions: object) -> When:
    return When.model_validate(conditions)


# ------------------------------------------------------------------ parsing: good documents

YAML_DOC = """\
description: Strict.
self_approval: true
one_node_per_approver: false
default_risk: LOW
templates:
  LOW: DBA
  MIDDLE: Owner
  HIGH: Owner->DBA
  HIGHEST: Owner->DBA->Admin
by_ticket_type:
  DATA_EXPORT: {HIGH: Owner}
rules:
  - name: no drops
    when: {statement_kinds: [DROP, TRUNCATE]}
    forbid: use a schema ticket
  - name: big
    when:
      env: [product, pre]
      ticket_types: [DC_COMMON, DC_CHUNK]
      tables: ["sales.*", "tmp_*"]
      affected_rows: {over: 100, at_most: 1000}
      export_rows: {at_most: 5}
    risk: HIGHEST
"""


def test_yaml_document_parses_to_the_model() -> None:
    rs = parse(YAML_DOC)
    assert (rs.description, rs.self_approval, rs.one_node_per_approver, rs.default_risk) == (
        "Strict.",
        True,
        False,
        "LOW",
    )
    assert rs.templates.HIGHEST == "Owner->DBA->Admin"
    assert rs.by_ticket_type["DATA_EXPORT"].HIGH == "Owner"
    assert rs.by_ticket_type["DATA_EXPORT"].LOW is None
    drops, big = rs.rules
    assert (drops.name, drops.forbid, drops.risk) == ("no drops", "use a schema ticket", None)
    assert drops.when.statement_kinds == ["DROP", "TRUNCATE"]
    assert big.risk == "HIGHEST" and big.forbid is None
    assert big.when.env == ["product", "pre"]
    assert big.when.tables == ["sales.*", "tmp_*"]
    assert big.when.affected_rows is not None
    assert (big.when.affected_rows.over, big.when.affected_rows.at_most) == (100, 1000)
    assert big.when.export_rows is not None and big.when.export_rows.over is None


def test_json_document_parses_to_the_same_model() -> None:
    import yaml

    as_json = json.dumps(yaml.safe_load(YAML_DOC), indent=2)
    assert parse(as_json) == parse(YAML_DOC)
    assert parse(json.dumps(yaml.safe_load(YAML_DOC))) == parse(YAML_DOC)  # one line


def test_minimal_document_takes_the_defaults() -> None:
    rs = parse(TEMPLATES)
    assert (rs.description, rs.self_approval, rs.one_node_per_approver) == ("", False, True)
    assert (rs.default_risk, rs.by_ticket_type, rs.rules) == ("HIGH", {}, [])


def test_rule_without_when_has_no_conditions() -> None:
    (rule,) = parse(TEMPLATES + "rules: [{name: all, risk: LOW}]\n").rules
    assert rule.when == When()
    assert matches(rule.when, facts())


def test_document_at_the_size_limit_is_read() -> None:
    head = TEMPLATES + "# "
    text = head + "x" * (MAX_DOCUMENT_BYTES - len(head) - 1) + "\n"
    assert len(text.encode()) == MAX_DOCUMENT_BYTES
    assert parse(text).templates.LOW == "DBA"


# ------------------------------------------------------------------ parsing: bad documents

# A multi-line document; each case below changes one line of it.
BASE = [
    "# Strict rules",  # 1
    "description: test",  # 2
    "default_risk: LOW",  # 3
    "templates:",  # 4
    "  LOW: DBA",  # 5
    "  MIDDLE: Owner",  # 6
    "  HIGH: Owner->DBA",  # 7
    "  HIGHEST: Owner->DBA->Admin",  # 8
    "rules:",  # 9
    "  - name: first",  # 10
    "    when:",  # 11
    "      env: [product]",  # 12
    "    risk: HIGH",  # 13
    "  - name: second",  # 14
    "    when:",  # 15
    "      ticket_types: [DC_COMMON]",  # 16
    "      affected_rows:",  # 17
    "        over: 10",  # 18
    "    risk: HIGHEST",  # 19
]


def doc(**lines: str) -> str:
    """BASE with lines replaced: doc(l12="...") replaces line 12 (text may hold newlines)."""
    out = list(BASE)
    for key, text in lines.items():
        out[int(key[1:]) - 1] = text
    return "\n".join(out) + "\n"


def test_the_base_document_is_valid() -> None:
    assert [r.name for r in parse(doc()).rules] == ["first", "second"]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        # syntax
        ({"l6": "  MIDDLE: Owner: x"}, "line 6: not valid YAML or JSON: mapping values"),
        ({"l12": "      env: [product"}, "line 13: not valid YAML or JSON"),
        # unknown fields, top level and nested
        ({"l2": "descripton: test"}, "line 2: descripton: is not a known field"),
        ({"l16": "      ticket_type: [DC_COMMON]"}, "line 16: rules.1.when.ticket_type: is not a "),
        ({"l18": "        at_least: 10"}, "line 18: rules.1.when.affected_rows.at_least: is not"),
        ({"l6": "  MEDIUM: Owner"}, "line 6: templates.MEDIUM: is not a known field"),
        ({"l14": "  - nam: second"}, "line 14: rules.1.nam: is not a known field"),
        # wrong values
        ({"l19": "    risk: EXTREME"}, "line 19: rules.1.risk: Input should be 'NONE', 'LOW'"),
        ({"l3": "default_risk: NONE"}, "line 3: default_risk: Input should be 'LOW', "),
        ({"l13": "    risk: 3"}, "line 13: rules.0.risk: Input should be"),
        ({"l18": "        over: -1"}, "line 18: rules.1.when.affected_rows.over: Input should be"),
        ({"l18": "        over: many"}, "line 18: rules.1.when.affected_rows.over: Input should"),
        ({"l7": '  HIGH: ""'}, "line 7: templates.HIGH: "),
        ({"l5": "  LOW: [DBA]"}, "line 5: templates.LOW: Input should be a valid string"),
        ({"l12": "      env: []"}, "line 12: rules.0.when.env: List should have at least 1"),
        ({"l12": "      tables: ['']"}, "line 12: rules.0.when.tables.0: String should have"),
        ({"l10": "  - name: ''"}, "line 10: rules.0.name: String should have at least 1"),
        ({"l2": "description: [a]"}, "line 2: description: Input should be a valid string"),
        # rule outcome: both or neither
        ({"l13": "    risk: HIGH\n    forbid: never"}, "line 10: rules.0: a rule gives either"),
        ({"l19": "    # no outcome"}, "line 14: rules.1: a rule gives either 'risk' or 'forbid'"),
        # Rows without bounds
        ({"l18": "        {}"}, "line 17: rules.1.when.affected_rows: give 'over', 'at_most' or"),
        ({"l17": "      export_rows: {}", "l18": ""}, "line 17: rules.1.when.export_rows: give"),
        # duplicate keys
        ({"l6": "  LOW: Owner"}, "line 6: templates.LOW: appears twice"),
        ({"l13": "    risk: HIGH\n    risk: LOW"}, "line 14: rules.0.risk: appears twice"),
        ({"l1": "default_risk: HIGH"}, "line 3: default_risk: appears twice"),
        # a level missing from templates: reported at the templates mapping
        ({"l8": ""}, "templates.HIGHEST: Field required"),
        ({"l4": "template:"}, "line 4: template: is not a known field"),
    ],
)
def test_error_names_the_line_and_the_field(lines: dict[str, str], expected: str) -> None:
    assert expected in error_of(doc(**lines))


def test_missing_level_points_at_the_templates_mapping() -> None:
    message = error_of(doc(l8=""))
    assert re.match(r"line [45]: templates\.HIGHEST: Field required$", message), message


def test_missing_templates_is_reported_at_the_first_field() -> None:
    assert error_of("# rules\n\ndefault_risk: LOW\n") == "line 3: templates: Field required"


def test_missing_level_in_a_flow_mapping() -> None:
    text = "# c\ndefault_risk: LOW\ntemplates: {LOW: DBA, MIDDLE: Owner, HIGH: Owner}\n"
    assert error_of(text) == "line 3: templates.HIGHEST: Field required"


@pytest.mark.parametrize(
    ("lines", "field", "message"),
    [
        (
            {"l12": "      env: [prod]"},
            "rules.0.when",
            "unknown environment 'prod'; one of product",
        ),
        (
            {"l16": "      ticket_types: [DC_COMMON, DC_FOO]"},
            "rules.1.when",
            "unknown ticket type 'DC_FOO'; one of DC_COMMON",
        ),
        (
            {"l12": "      statement_kinds: [UPSERT, DELETE]"},
            "rules.0.when",
            "unknown statement kind 'UPSERT'; one of SELECT",
        ),
    ],
)
def test_unknown_values_in_when_are_refused_naming_the_value(
    lines: dict[str, str], field: str, message: str
) -> None:
    text = error_of(doc(**lines))
    assert f": {field}" in text and message in text
    assert re.match(r"line \d+: ", text)


def test_unknown_ticket_type_in_by_ticket_type_is_refused() -> None:
    assert "unknown ticket type 'DC_FOO'" in error_of(
        TEMPLATES + "by_ticket_type:\n  DC_FOO: {LOW: Admin}\n"
    )


def test_unknown_level_in_by_ticket_type() -> None:
    text = TEMPLATES + "by_ticket_type:\n  DC_COMMON:\n    LOWEST: Admin\n"
    assert error_of(text) == "line 4: by_ticket_type.DC_COMMON.LOWEST: is not a known field"


def test_several_problems_are_reported_together() -> None:
    text = error_of(doc(l3="default_risk: NONE", l19="    risk: EXTREME"))
    assert "line 3: default_risk:" in text and "; line 19: rules.1.risk:" in text


@pytest.mark.parametrize(
    "text",
    ["", "# only a comment\n", "- a\n- b\n", "just text", "42", "[]", "null", '"x"'],
)
def test_a_document_that_is_not_a_mapping(text: str) -> None:
    assert error_of(text) == "line 1: a rule set is a mapping (keys such as 'templates', 'rules')"


def test_more_than_one_yaml_document() -> None:
    assert "line 2: not valid YAML or JSON" in error_of(TEMPLATES + "---\n" + TEMPLATES)


def test_yaml_tabs_are_a_syntax_error_with_a_line() -> None:
    assert "line 2: not valid YAML or JSON" in error_of("templates:\n\tLOW: DBA\n")


def test_oversize_document_is_refused_before_parsing() -> None:
    text = TEMPLATES + "# " + "x" * MAX_DOCUMENT_BYTES
    assert error_of(text) == "a rule set is at most 256 KiB"
    # the limit is in UTF-8 bytes
    head = TEMPLATES + "# "
    wide = head + "é" * ((MAX_DOCUMENT_BYTES - len(head)) // 2 + 1)
    assert len(wide) < MAX_DOCUMENT_BYTES < len(wide.encode())
    assert error_of(wide) == "a rule set is at most 256 KiB"


def test_long_description_is_refused() -> None:
    assert "line 1: description: String should have at most 4096" in error_of(
        f"description: {'x' * 4097}\n{TEMPLATES}"
    )


def test_rules_must_be_a_list() -> None:
    assert (
        error_of(TEMPLATES + "rules: {name: a}\n") == "line 2: rules: Input should be a valid list"
    )


def test_unquoted_minus_one_is_no_approval_but_other_non_strings_are_refused() -> None:
    rs = parse("templates: {LOW: -1, MIDDLE: a, HIGH: a, HIGHEST: a}\n")
    assert rs.template_for("DC_COMMON", "LOW") is None
    assert error_of("templates: {LOW: true, MIDDLE: a, HIGH: a, HIGHEST: a}\n").startswith(
        "line 1: templates.LOW: "
    )


JSON_LINES = """{
  "default_risk": "LOW",
  "templates": {"LOW": "DBA", "MIDDLE": "Owner", "HIGH": "Owner", "HIGHEST": "Admin"},
  "rules": [
    {"name": "a", "risk": "LOW"},
    {
      "name": "b",
      "when": {"affected_rows": {"over": -3}},
      "risk": "HIGH"
    }
  ]
}
"""


def test_json_errors_name_the_line_and_field() -> None:
    assert parse(JSON_LINES.replace("-3", "3")).rules[1].name == "b"
    assert error_of(JSON_LINES).startswith("line 8: rules.1.when.affected_rows.over: ")
    bad_risk = JSON_LINES.replace('"risk": "LOW"', '"risk": "LOWER"').replace("-3", "3")
    assert error_of(bad_risk).startswith("line 5: rules.0.risk: Input should be")
    dup = JSON_LINES.replace('"default_risk": "LOW",', '"default_risk": "LOW", "rules": [],')
    assert error_of(dup) == "line 4: rules: appears twice"
    broken = JSON_LINES.replace('"name": "b",', '"name": "b"')
    assert error_of(broken).startswith("line 8: not valid JSON")
    extra = JSON_LINES.replace('"name": "b",', '"name": "b", "wehn": {},').replace("-3", "3")
    assert error_of(extra) == "line 7: rules.1.wehn: is not a known field"


# ------------------------------------------------------------------ evaluation


def rule_set(rules: str, extra: str = "") -> RuleSet:
    return parse(TEMPLATES + extra + "rules:\n" + rules)


LADDER = rule_set(
    """
  - {name: high, risk: HIGH}
  - {name: low, risk: LOW}
  - {name: highest, when: {env: [product]}, risk: HIGHEST}
  - {name: middle, risk: MIDDLE}
  - {name: none, risk: NONE}
"""
)


def test_highest_risk_of_all_matching_rules_wins() -> None:
    d = evaluate(LADDER, "ladder", facts())
    assert (d.rule_set, d.risk, d.template, d.forbidden) == (
        "ladder",
        "HIGHEST",
        "Owner->DBA->Admin",
        (),
    )
    assert [r for r in d.reasons if r.startswith("Rule")] == [
        f"Rule '{n}' of rule set 'ladder' sets risk {n.upper()}."
        for n in ("high", "low", "highest", "middle", "none")
    ]
    assert "Risk HIGHEST needs template 'Owner->DBA->Admin'." in d.reasons
    assert d.reasons[-1].startswith("Ticket: type DC_COMMON; environment product;")
    d = evaluate(LADDER, "ladder", facts(env_types=frozenset({"dev"})))
    assert (d.risk, d.template) == ("HIGH", "Owner->DBA")


def test_first_of_equal_risks_is_kept_and_order_does_not_matter() -> None:
    reverse = rule_set(
        """
  - {name: none, risk: NONE}
  - {name: middle, risk: MIDDLE}
  - {name: low, risk: LOW}
"""
    )
    assert evaluate(reverse, "r", facts()).risk == "MIDDLE"


def test_forbid_wins_over_everything() -> None:
    rs = rule_set(
        """
  - {name: free, risk: NONE}
  - {name: drops, when: {statement_kinds: [DROP]}, forbid: no drops here}
  - {name: top, risk: HIGHEST}
  - {name: prod, when: {env: [product]}, forbid: not in production}
"""
    )
    d = evaluate(rs, "r", facts(statement_kinds=frozenset({"DROP", "SELECT"})))
    assert d.forbidden == ("drops: no drops here", "prod: not in production")
    d = evaluate(rs, "r", facts(env_types=frozenset({"dev"})))
    assert (d.forbidden, d.risk) == ((), "HIGHEST")


def test_forbid_alone_leaves_the_default_risk() -> None:
    rs = rule_set("  - {name: never, forbid: nope}\n", extra="default_risk: LOW\n")
    d = evaluate(rs, "r", facts())
    assert (d.forbidden, d.risk, d.template) == (("never: nope",), "LOW", "DBA")


def test_none_means_no_approval_only_when_nothing_riskier_matched() -> None:
    rs = rule_set(
        """
  - {name: scratch, when: {tables: ["tmp_*"]}, risk: NONE}
  - {name: customers, when: {tables: [customers]}, risk: LOW}
"""
    )
    d = evaluate(rs, "r", facts(tables=frozenset({"main.tmp_x"})))
    assert (d.risk, d.template) == ("NONE", None)
    assert "Risk NONE: no approval needed." in d.reasons
    d = evaluate(rs, "r", facts(tables=frozenset({"main.tmp_x", "main.customers"})))
    assert (d.risk, d.template) == ("LOW", "DBA")


def test_default_risk_when_no_rule_matches() -> None:
    rs = rule_set("  - {name: dev, when: {env: [dev]}, risk: LOW}\n")
    d = evaluate(rs, "r", facts())
    assert (d.risk, d.template) == ("HIGH", "Owner->DBA")  # HIGH is the default default
    assert d.reasons[0] == "No rule of rule set 'r' matched: default risk HIGH."
    rs = rule_set("  - {name: dev, when: {env: [dev]}, risk: LOW}\n", "default_risk: MIDDLE\n")
    assert (evaluate(rs, "r", facts()).risk, evaluate(rs, "r", facts()).template) == (
        "MIDDLE",
        "Owner",
    )


def test_no_rules_at_all_uses_the_default_risk() -> None:
    assert evaluate(parse(TEMPLATES + "default_risk: LOW\n"), "r", facts()).template == "DBA"


def test_by_ticket_type_overrides_some_levels() -> None:
    rs = rule_set(
        "  - {name: all, risk: HIGH}\n",
        extra="by_ticket_type:\n  DATA_EXPORT: {HIGH: Owner}\n  DC_CHUNK: {LOW: Admin}\n",
    )
    assert evaluate(rs, "r", facts(plugin_type="DATA_EXPORT")).template == "Owner"
    assert evaluate(rs, "r", facts(plugin_type="DC_CHUNK")).template == "Owner->DBA"
    assert evaluate(rs, "r", facts()).template == "Owner->DBA"
    assert rs.template_for("DATA_EXPORT", "LOW") == "DBA"  # not overridden: the base level
    assert rs.template_for("DC_CHUNK", "LOW") == "Admin"
    assert rs.template_for("DC_CHUNK", "NONE") is None
    assert rs.template_names() == {"DBA", "Owner", "Owner->DBA", "Owner->DBA->Admin", "Admin"}


@pytest.mark.parametrize("name", ["'-1'", "-1", "none", "None", "NONE", "' none '"])
def test_minus_one_or_none_template_means_no_approval(name: str) -> None:
    rs = parse(
        f"templates: {{LOW: {name}, MIDDLE: Owner, HIGH: Owner, HIGHEST: Admin}}\n"
        f"by_ticket_type:\n  DC_CHUNK: {{HIGH: {name}, LOW: DBA}}\n"
        "rules: [{name: low, when: {env: [dev]}, risk: LOW}]\n"
    )
    d = evaluate(rs, "r", facts(env_types=frozenset({"dev"})))
    assert (d.risk, d.template) == ("LOW", None)
    assert "Risk LOW: no approval needed." in d.reasons
    assert rs.template_for("DC_CHUNK", "HIGH") is None  # an override to no approval
    assert rs.template_for("DC_CHUNK", "LOW") == "DBA"  # an override back to a template
    assert rs.template_names() == {"Owner", "Admin", "DBA"}


def test_decision_carries_the_approver_settings() -> None:
    rs = parse(TEMPLATES + "self_approval: true\none_node_per_approver: false\n")
    d = evaluate(rs, "r", facts())
    assert (d.self_approval, d.one_node_per_approver) == (True, False)
    d = evaluate(parse(TEMPLATES), "r", facts())
    assert (d.self_approval, d.one_node_per_approver) == (False, True)


# ------------------------------------------------------------------ conditions


@pytest.mark.parametrize(
    ("bounds", "rows", "holds"),
    [
        ({"over": 100}, 100, False),
        ({"over": 100}, 101, True),
        ({"over": 0}, 0, False),
        ({"at_most": 100}, 100, True),
        ({"at_most": 100}, 101, False),
        ({"at_most": 0}, 0, True),
        ({"over": 10, "at_most": 20}, 10, False),
        ({"over": 10, "at_most": 20}, 15, True),
        ({"over": 10, "at_most": 20}, 21, False),
        # unknown rows are more than any limit
        ({"over": 10**12}, None, True),
        ({"at_most": 10**12}, None, False),
        ({"over": 10, "at_most": 20}, None, False),
    ],
)
def test_affected_rows_bounds(bounds: dict[str, int], rows: int | None, holds: bool) -> None:
    assert matches(when(affected_rows=bounds), facts(affected_rows=rows)) is holds


def test_export_rows_apply_to_data_export_only() -> None:
    over = when(export_rows={"over": 100})
    at_most = when(export_rows={"at_most": 100})
    export = facts(plugin_type="DATA_EXPORT", statement_kinds=frozenset({"SELECT"}))
    assert matches(over, replace(export, export_rows=101))
    assert not matches(over, replace(export, export_rows=100))
    assert matches(over, replace(export, export_rows=None))  # unknown: large
    assert matches(at_most, replace(export, export_rows=100))
    assert not matches(at_most, replace(export, export_rows=None))
    for plugin_type in ("DC_COMMON", "DC_CHUNK", "DC_BIG_FILE"):
        for rows in (None, 101, 5):
            other = facts(plugin_type=plugin_type, export_rows=rows)
            assert not matches(over, other) and not matches(at_most, other)


@pytest.mark.parametrize(
    ("pattern", "table", "holds"),
    [
        ("orders", "sales.orders", True),  # a short pattern: the table in any database
        ("ORDERS", "sales.orders", True),  # case-insensitive
        ("sales.orders", "sales.orders", True),
        ("Sales.Orders", "sales.orders", True),
        ("sales.orders", "hr.orders", False),  # a qualified pattern: only there
        ("sales.orders", "orders", False),
        ("sales.*", "sales.customers", True),
        ("sales.*", "hr.customers", False),
        ("*.orders", "hr.orders", True),
        ("tmp_*", "main.tmp_import", True),
        ("*.tmp_*", "main.tmp_import", True),
        ("ord", "sales.orders", False),
        ("order?", "sales.orders", True),
        ("[oc]*", "sales.customers", True),
    ],
)
def test_table_patterns(pattern: str, table: str, holds: bool) -> None:
    assert matches(when(tables=[pattern]), facts(tables=frozenset({table}))) is holds


def test_tables_condition_holds_when_any_pattern_matches_any_table() -> None:
    cond = when(tables=["nope", "cust*"])
    assert matches(cond, facts(tables=frozenset({"a.x", "a.customers"})))
    assert not matches(cond, facts(tables=frozenset({"a.x", "a.orders"})))
    assert not matches(cond, facts(tables=frozenset()))


def test_ticket_type_env_and_kind_conditions() -> None:
    assert matches(when(ticket_types=["DC_COMMON", "DC_CHUNK"]), facts())
    assert not matches(when(ticket_types=["DATA_EXPORT"]), facts())
    assert matches(when(env=["dev", "product"]), facts())
    assert not matches(when(env=["dev"]), facts())
    assert matches(when(env=["dev"]), facts(env_types=frozenset({"product", "dev"})))
    assert not matches(when(env=["dev"]), facts(env_types=frozenset()))
    assert matches(when(statement_kinds=["DELETE", "UPDATE"]), facts())
    assert not matches(when(statement_kinds=["DELETE"]), facts())


def test_all_conditions_must_hold() -> None:
    cond = when(env=["product"], statement_kinds=["UPDATE"], affected_rows={"over": 5})
    assert matches(cond, facts())
    assert not matches(cond, facts(affected_rows=5))
    assert not matches(cond, facts(env_types=frozenset({"dev"})))
    assert not matches(cond, facts(statement_kinds=frozenset({"DELETE"})))


def test_incomplete_facts_match_statement_kinds_and_tables() -> None:
    unknown = facts(
        statement_kinds=frozenset(), tables=frozenset(), affected_rows=None, complete=False
    )
    assert matches(when(statement_kinds=["DROP"]), unknown)
    assert matches(when(tables=["secrets"]), unknown)
    assert matches(when(affected_rows={"over": 10**9}), unknown)
    # ... but not conditions on what is known
    assert not matches(when(env=["dev"]), unknown)
    assert not matches(when(ticket_types=["NDDL"]), unknown)
    assert not matches(when(affected_rows={"at_most": 10}), unknown)
    assert not matches(when(statement_kinds=["DROP"]), replace(unknown, complete=True))
    assert not matches(when(tables=["secrets"]), replace(unknown, complete=True))


def test_incomplete_facts_reach_a_forbid_rule() -> None:
    rs = rule_set("  - {name: drops, when: {statement_kinds: [DROP]}, forbid: not here}\n")
    d = evaluate(rs, "r", facts(statement_kinds=frozenset(), complete=False))
    assert d.forbidden == ("drops: not here",)
    assert "not fully analysed before the precheck" in d.reasons[-1]


def test_facts_describe() -> None:
    text = facts(
        plugin_type="DATA_EXPORT",
        statement_kinds=frozenset({"SELECT"}),
        affected_rows=0,
        export_rows=12345,
    ).describe()
    assert text == (
        "type DATA_EXPORT; environment product; statements SELECT; affected rows 0; "
        "export rows 12,345"
    )
    text = facts(env_types=frozenset(), statement_kinds=frozenset(), affected_rows=None).describe()
    assert "environment unknown; statements none known; affected rows unknown" in text


# ------------------------------------------------------------------ the shipped default


@pytest.fixture(scope="module")
def default() -> RuleSet:
    return parse(default_source())


def test_shipped_default_parses(default: RuleSet) -> None:
    assert default.default_risk == "MIDDLE"
    assert (default.self_approval, default.one_node_per_approver) == (False, True)
    assert default.template_names() == {"DBA", "Owner->DBA", "Owner->DBA->Admin"}


@pytest.mark.parametrize(
    ("changes", "risk", "template"),
    [
        ({}, "HIGH", "Owner->DBA"),
        ({"affected_rows": 10_000}, "HIGH", "Owner->DBA"),
        ({"affected_rows": 10_001}, "HIGHEST", "Owner->DBA->Admin"),
        ({"affected_rows": None}, "HIGHEST", "Owner->DBA->Admin"),  # unknown is large
        ({"env_types": frozenset({"test"})}, "LOW", "DBA"),
        ({"env_types": frozenset({"dev"}), "affected_rows": 10**6}, "LOW", "DBA"),
        ({"env_types": frozenset({"uat"})}, "MIDDLE", "Owner->DBA"),
        ({"env_types": frozenset({"pre"})}, "MIDDLE", "Owner->DBA"),
        ({"env_types": frozenset({"dev", "product"})}, "HIGH", "Owner->DBA"),
        (
            {"plugin_type": "DATA_EXPORT", "affected_rows": 0, "export_rows": 10_001},
            "HIGHEST",
            "Owner->DBA->Admin",
        ),
        (
            {"plugin_type": "DATA_EXPORT", "affected_rows": 0, "export_rows": 10_000},
            "HIGH",
            "Owner->DBA",
        ),
        ({"export_rows": 10**6}, "HIGH", "Owner->DBA"),  # not an export: ignored
    ],
)
def test_shipped_default_routes(
    default: RuleSet, changes: dict[str, object], risk: str, template: str
) -> None:
    d = evaluate(default, "default", facts(**changes))
    assert (d.risk, d.template, d.forbidden) == (risk, template, ())


def test_shipped_default_uat_uses_the_middle_template(default: RuleSet) -> None:
    d = evaluate(default, "default", facts(env_types=frozenset({"uat"})))
    assert d.template == default.templates.MIDDLE
    assert d.reasons[0] == "No rule of rule set 'default' matched: default risk MIDDLE."


# ------------------------------------------------------------------ bugs


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ({"l12": "      env: [prod]"}, "line 12: rules.0.when.env: unknown environment 'prod'"),
        (
            {"l16": "      ticket_types: [DC_FOO]"},
            "line 16: rules.1.when.ticket_types: unknown ticket type 'DC_FOO'",
        ),
        (
            {"l12": "      statement_kinds: [UPSERT]"},
            "line 12: rules.0.when.statement_kinds: unknown statement kind 'UPSERT'",
        ),
    ],
)
def test_unknown_value_in_when_names_the_field(lines: dict[str, str], expected: str) -> None:
    # docs/security-rules.md promises "line 14: rules.2.when.env: unknown environment …".
    assert error_of(doc(**lines)).startswith(expected)


def test_unknown_by_ticket_type_names_its_line_and_key() -> None:
    # a bad key is reported at the key, not at the document.
    text = "# rules\n" + TEMPLATES + "by_ticket_type:\n  DC_FOO: {LOW: Admin}\n"
    assert error_of(text).startswith("line 4: by_ticket_type.DC_FOO: unknown ticket type")


def test_nested_duplicate_key_names_its_field_path() -> None:
    assert error_of(doc(l13="    risk: HIGH\n    risk: LOW")).startswith(
        "line 14: rules.0.risk: appears twice"
    )


def test_unqualified_table_pattern_matches_table_names_only() -> None:
    # fnmatch's "*" crosses the dot: tried on the qualified name, "tmp_*" (the documented
    # "scratch tables" waiver) would waive approval for every table of schema tmp_backup.
    assert not matches(when(tables=["tmp_*"]), facts(tables=frozenset({"tmp_backup.customers"})))


def test_json_indented_with_tabs_is_accepted() -> None:
    # Tab indentation is valid JSON whitespace, but PyYAML refuses a tab that starts a token.
    text = json.dumps(json.loads(JSON_LINES.replace("-3", "3")), indent="\t")
    assert parse(text).rules[1].name == "b"


def test_review_levels_can_be_set_per_rule_set() -> None:
    text = TEMPLATES + "review:\n  DML_WITHOUT_WHERE: WARNING\n  ORDER_BY_RAND: OFF\n"
    assert parse(text).review == {"DML_WITHOUT_WHERE": "WARNING", "ORDER_BY_RAND": "OFF"}
    assert error_of(TEMPLATES + "review:\n  NO_SUCH: ERROR\n").startswith(
        "line 3: review.NO_SUCH: unknown review rule 'NO_SUCH'"
    )
    assert "review.ORDER_BY_RAND" in error_of(TEMPLATES + "review:\n  ORDER_BY_RAND: LOUD\n")
