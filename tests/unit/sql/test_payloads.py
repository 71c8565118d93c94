"""The attack corpus of issue 16 (tests/fixtures/security/payloads.yaml) against the SQL
layer: every payload is refused, or shown reaching the table it reaches, before anything
runs; what is allowed runs as the text generated from its parse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from opendms.sql.export import ExportRefused, export_query
from opendms.sql.review import review
from opendms.sql.statements import describe, parse_script, render

CORPUS = yaml.safe_load(
    (Path(__file__).parents[2] / "fixtures" / "security" / "payloads.yaml").read_text()
)
OTHER = "other_db"
DML = ("INSERT", "REPLACE", "UPDATE", "DELETE")
ENGINES = {"mysql": ("mysql", "mariadb"), "postgresql": ("postgresql",)}


def cases(group: str, path: str, engines: tuple[str, ...] = ("mysql", "postgresql")) -> Any:
    out = []
    for entry in CORPUS[group][path]:
        sql, only = (entry["sql"], entry["engine"]) if isinstance(entry, dict) else (entry, None)
        for family in engines:
            if only in (None, family):
                out.extend(
                    pytest.param(sql.format(other=OTHER), e, id=f"{e}:{sql[:50]}")
                    for e in ENGINES[family]
                )
    return out


def codes(sql: str, engine: str, kinds: tuple[str, ...] = DML) -> set[str]:
    return {f.code for f in review(sql, engine, kinds) if f.level == "ERROR"}


@pytest.mark.parametrize(("sql", "engine"), cases("hidden_code", "dml", ("mysql",)))
def test_code_hidden_in_a_mysql_comment_fails_the_parse(sql: str, engine: str) -> None:
    assert "SQL_PARSE" in codes(sql, engine)


@pytest.mark.parametrize(("sql", "engine"), cases("hidden_code", "export", ("mysql",)))
def test_code_hidden_in_a_mysql_comment_is_no_export(sql: str, engine: str) -> None:
    with pytest.raises(ExportRefused):
        export_query(sql, engine)


@pytest.mark.parametrize(("sql", "engine"), cases("hidden_code", "dml", ("postgresql",)))
def test_in_postgresql_the_same_comments_are_comments_and_do_not_run(sql: str, engine: str) -> None:
    for parsed in parse_script(sql, engine):
        for node in parsed.nodes:
            assert "/*" not in render(node, engine)


@pytest.mark.parametrize(("sql", "engine"), cases("functions", "dml"))
def test_functions_off_the_allowlist_fail_the_review(sql: str, engine: str) -> None:
    assert "FUNCTION_NOT_ALLOWED" in codes(sql, engine)


@pytest.mark.parametrize(("sql", "engine"), cases("functions", "export"))
def test_functions_off_the_allowlist_are_no_export(sql: str, engine: str) -> None:
    with pytest.raises(ExportRefused, match=r"calls .*\(\), which"):
        export_query(sql, engine)


@pytest.mark.parametrize(("sql", "engine"), cases("placements", "dml", ("mysql",)))
def test_a_change_shows_every_table_it_reaches(sql: str, engine: str) -> None:
    (parsed,) = parse_script(sql, engine)
    (node,) = parsed.nodes
    assert f"{OTHER}.keys_tbl" in describe(node).tables


@pytest.mark.parametrize(("sql", "engine"), cases("placements", "export"))
def test_an_export_shows_every_table_it_reads(sql: str, engine: str) -> None:
    assert f"{OTHER}.keys_tbl" in export_query(sql, engine).tables


@pytest.mark.parametrize(("sql", "engine"), cases("allowed", "dml"))
def test_what_is_allowed_passes_and_runs_as_parsed(sql: str, engine: str) -> None:
    assert not codes(sql, engine) & {"SQL_PARSE", "FUNCTION_NOT_ALLOWED"}
    (parsed,) = parse_script(sql, engine)
    (node,) = parsed.nodes
    text = render(node, engine)
    # the generated text reads back as itself: a fixed point, nothing left to reinterpret
    (again,) = parse_script(text, engine)
    assert render(again.nodes[0], engine) == text
    assert "--" not in text and "#" not in text.replace("'#'", "")


@pytest.mark.parametrize(("sql", "engine"), cases("allowed", "export"))
def test_allowed_exports_pass(sql: str, engine: str) -> None:
    query = export_query(sql, engine)
    assert export_query(query.text, engine).text == query.text
