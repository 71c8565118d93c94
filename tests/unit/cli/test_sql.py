"""``opendms sql review``: a script reviewed as a ticket's precheck would, before filing."""

from __future__ import annotations

from tests.unit.cli.site import Site


def test_sql_review_lists_findings_and_fails_on_errors(site: Site) -> None:
    bad = site.write(
        "bad.sql", "UPDATE orders SET status = 'x';\nDELETE FROM ghosts WHERE id = 1;\n"
    )
    result = site.run("sql", "review", str(bad), "--db", str(site.db_id), ok=False)
    assert result.returncode == 1
    assert "DML_WITHOUT_WHERE" in result.stdout and "UNKNOWN_TABLE" in result.stdout
    assert "2 finding(s)" in result.stdout
    good = site.write("good.sql", "UPDATE orders SET status = 'paid' WHERE id = 7;\n")
    clean = site.run("sql", "review", str(good), "--db", str(site.db_id))
    assert "0 finding(s)" in clean.stdout
