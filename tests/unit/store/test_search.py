"""A DMS search text as a LIKE condition (store.search), on the store's own SQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select

from opendms.store.search import matches, pattern

NAMES = ["orders", "Order_Items", "order%s", "audit_log", "back\\slash", "t"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ord", "%ord%"),
        ("%", "%%%"),
        ("a_b", "%a_b%"),
        ("\\%", "%\\%%"),  # an escaped wildcard stays escaped
        ("\\_", "%\\_%"),
        ("\\\\", "%\\\\%"),  # an escaped backslash stays one
        ("a\\b", "%a\\\\b%"),  # a backslash before anything else is itself
        ("end\\", "%end\\\\%"),  # never a dangling escape (PostgreSQL refuses one)
    ],
)
def test_pattern(text: str, expected: str) -> None:
    assert pattern(text) == expected


@pytest.fixture
def names():
    engine = create_engine("sqlite://")
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("name", String))
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"name": n} for n in NAMES])

    def found(text: str) -> list[str]:
        with engine.connect() as conn:
            query = select(table.c.name).where(matches(text, table.c.name)).order_by(table.c.id)
            return list(conn.scalars(query))

    yield found
    engine.dispose()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("%", NAMES),  # what the DMS MCP server sends for "all tables"
        ("ORDER", ["orders", "Order_Items", "order%s"]),  # a plain word: any case, anywhere
        ("item", ["Order_Items"]),
        ("r_i", ["Order_Items"]),  # _ is one character
        ("o%s", ["orders", "Order_Items", "order%s"]),
        ("\\%", ["order%s"]),  # escaped: the character itself
        ("r\\_", ["Order_Items"]),
        ("\\", ["back\\slash"]),
        ("nothing", []),
    ],
)
def test_matches(names, text: str, expected: list[str]) -> None:
    assert names(text) == expected


def test_any_of_several_columns() -> None:
    engine = create_engine("sqlite://")
    table = Table("u", MetaData(), Column("a", String), Column("b", String))
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"a": "x", "b": "needle"}, {"a": "y", "b": "hay"}])
        query = select(table.c.a).where(matches("NEED", table.c.a, table.c.b))
        assert list(conn.scalars(query)) == ["x"]
    engine.dispose()
