"""``opendms rules``: rule sets loaded, shown, assigned and tried."""

from __future__ import annotations

from opendms.rulebook import rules
from tests.cli_support import result_is_one_line_error
from tests.unit.cli.site import DBA_ONLY, Site, row_of

BAD_RISK = """\
templates: {LOW: DBA, MIDDLE: DBA, HIGH: DBA, HIGHEST: DBA}
rules:
  - name: too risky
    when: {env: [product]}
    risk: HUGE
"""


NO_DROPS = """\
templates: {LOW: DBA, MIDDLE: Owner, HIGH: Owner->DBA, HIGHEST: Owner->DBA->Admin}
rules:
  - name: no drops
    when: {statement_kinds: [DROP, TRUNCATE]}
    forbid: drop a table through a schema ticket
"""


def test_rules_list_shows_every_review_rule_and_its_level_in_a_rule_set(site: Site) -> None:
    listed = site.run("rules", "list").stdout
    assert row_of(listed, "DML_WITHOUT_WHERE").split()[:3] == ["│", "DML_WITHOUT_WHERE", "│"]
    assert "ERROR" in row_of(listed, "DML_WITHOUT_WHERE")
    relaxed = DBA_ONLY + "review:\n  DML_WITHOUT_WHERE: WARNING\n"
    site.run("rules", "load", str(site.write("relaxed.yaml", relaxed)), "--name", "relaxed")
    row = row_of(site.run("rules", "list", "relaxed").stdout, "DML_WITHOUT_WHERE")
    assert row.index("ERROR") < row.index("WARNING")  # default, then the rule set's level


def test_rules_show_list_load_and_a_bad_file_changes_nothing(site: Site) -> None:
    assert site.run("rules", "show").stdout == rules.default_source()
    listed = site.run("rules", "sets").stdout
    default = row_of(listed, "default")
    assert "built-in" in default and f"{site.instance_id} demo" in default
    assert result_is_one_line_error(
        site.run("rules", "show", "nosuch", ok=False), "SecurityRuleSetNotFound"
    )

    site.dba_only()
    assert site.run("rules", "show", "dba-only").stdout == DBA_ONLY
    bad = site.run(
        "rules", "load", str(site.write("bad.yaml", BAD_RISK)), "--name", "dba-only", ok=False
    )
    assert result_is_one_line_error(bad, "InvalidSecurityRuleSet")
    assert "line 5: rules.0.risk" in bad.stderr
    unknown = site.run(
        "rules",
        "load",
        str(site.write("nobody.yaml", DBA_ONLY.replace("LOW: DBA", "LOW: Nobody"))),
        "--name",
        "dba-only",
        ok=False,
    )
    assert result_is_one_line_error(unknown, "no template named 'Nobody'")
    missing = site.run("rules", "load", str(site.data_dir / "nope.yaml"), "--name", "x", ok=False)
    assert result_is_one_line_error(missing, "cannot read")
    assert site.run("rules", "show", "dba-only").stdout == DBA_ONLY  # still version 1

    again = site.run(
        "rules",
        "load",
        str(site.write("dba2.yaml", DBA_ONLY + "self_approval: true\n")),
        "--name",
        "dba-only",
    ).stdout
    assert "'dba-only' version 2 is in force" in again
    listed = site.run("rules", "sets").stdout
    mine = row_of(listed, "dba-only")
    assert " 2 " in mine and f"{site.instance_id} demo" in mine
    assert "built-in" in row_of(listed, "default")
    assert result_is_one_line_error(
        site.run("rules", "assign", str(site.instance_id), "nosuch", ok=False),
        "SecurityRuleSetNotFound",
    )


def test_rules_test_with_factors_a_file_and_an_order(site: Site) -> None:
    def decide(*args: str) -> str:
        return site.run("rules", "test", *args).stdout

    # unknown affected rows are taken as the worst case: over any limit
    unknown = decide("default")
    assert "risk HIGHEST -> template Owner->DBA->Admin" in unknown
    assert "affected rows unknown" in unknown
    assert "risk HIGH -> template Owner->DBA\n" in decide("default", "--rows", "1")
    low = decide("default", "--env", "test", "--kinds", "delete")
    assert "risk LOW -> template DBA" in low
    assert "Rule 'test and development' of rule set 'default' sets risk LOW." in low
    big = decide("default", "--rows", "20000")
    assert "risk HIGHEST -> template Owner->DBA->Admin" in big
    assert "Rule 'large production change'" in big
    assert "risk MIDDLE -> template Owner->DBA\n" in decide("default", "--env", "uat")
    export = decide(
        "default", "--type", "DATA_EXPORT", "--kinds", "SELECT", "--rows", "1", "--export-rows", "1"
    )
    assert "risk HIGH -> template Owner->DBA\n" in export and "export rows 1" in export

    rule_file = site.write("no-drops.yaml", NO_DROPS)
    dropped = decide(str(rule_file), "--kinds", "DROP", "--tables", "shop.orders")
    assert "FORBIDDEN: no drops: drop a table through a schema ticket" in dropped
    assert "FORBIDDEN" not in decide(str(rule_file), "--kinds", "UPDATE")

    order_id = site.file()
    from_order = decide("default", "--order", str(order_id))
    assert "risk HIGH -> template Owner->DBA" in from_order
    # the rows its precheck counted, not the table's 5,000
    assert "type DC_COMMON; environment product; statements UPDATE; affected rows 1." in from_order
    site.dba_only()
    assert "risk HIGH -> template DBA" in decide("dba-only", "--order", str(order_id))
    assert result_is_one_line_error(
        site.run("rules", "test", "nosuch", ok=False), "SecurityRuleSetNotFound"
    )
