"""Reading a PostgreSQL database's tables while others drop theirs: a table dropped between
the catalog's listing and its size (pg_total_relation_size answers NULL) is left out, not a
failure of the whole read (seen when a test on the same server dropped a table mid-sync)."""

from __future__ import annotations

from typing import Any

from opendms.targets.postgres import PostgresConnector


class _Rows:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows


class _Conn:
    """Answers the catalog queries in turn: schemas, tables, columns, indexes."""

    def __init__(self) -> None:
        self.answers = [
            [("public",)],
            [
                ("public", "kept", "BASE TABLE", 3, 8192, ""),
                ("public", "gone", "BASE TABLE", 0, None, ""),
            ],
            [
                ("public", "kept", "id", 1, "integer", False, None, None, None, False, None, ""),
                ("public", "gone", "id", 1, "integer", False, None, None, None, False, None, ""),
            ],
            [("public", "gone", "gone_pkey", True, True, ["id"], "")],
        ]

    def execute(self, query: str, params: Any = None) -> _Rows:
        return _Rows(self.answers.pop(0))


def test_a_table_dropped_while_read_is_left_out() -> None:
    (schema,) = PostgresConnector._describe(_Conn(), "db", "UTF8", None)  # type: ignore[arg-type]
    assert [(t.name, t.size_bytes, [c.name for c in t.columns]) for t in schema.tables] == [
        ("kept", 8192, ["id"])
    ]
