"""A test database on the real MariaDB or PostgreSQL with a World on it, as the integration
tests of chunked changes and cleanups drive it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opendms.identity.secrets import SecretBox
from tests.approval_world import World


@dataclass
class ServerDb:
    engine: str  # mariadb or postgresql
    name: str  # the database
    conn: Any  # an autocommit connection to it
    world: World
    box: SecretBox

    def sql(self, *statements: str) -> None:
        with self.conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(query)
            return [tuple(r) for r in cur.fetchall()]

    def series(self, count: int) -> str:
        """A query of the integers 1..count, in a column named ``i``."""
        if self.engine == "mariadb":
            return f"SELECT seq AS i FROM seq_1_to_{count}"
        return f"SELECT g AS i FROM generate_series(1, {count}) g"

    def sync(self) -> None:
        """The catalog reads the tables a test made (their keys decide how chunks are cut)."""
        self.world.sync()
