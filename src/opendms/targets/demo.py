"""The embedded demo target: a small SQLite database to open tickets against."""

from __future__ import annotations

import sqlite3
from pathlib import Path

DEMO_FILE = "demo-target.db"

_SCHEMA = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    status TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX ix_orders_created_at ON orders(created_at);
"""


def ensure_demo_target(target_dir: Path, customers: int = 200, orders_each: int = 25) -> Path:
    """Create the demo database once (a few thousand rows); later calls leave it alone."""
    target_dir.mkdir(parents=True, exist_ok=True)
    path = target_dir / DEMO_FILE
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with sqlite3.connect(tmp) as db:
        db.executescript(_SCHEMA)
        db.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, datetime('2026-01-01', ? || ' hours'))",
            [(i, f"customer {i}", f"c{i}@example.com", i) for i in range(1, customers + 1)],
        )
        db.executemany(
            "INSERT INTO orders (customer_id, status, amount_cents, created_at) "
            "VALUES (?, ?, ?, datetime('2026-01-01', ? || ' minutes'))",
            [
                (c, ("new", "paid", "shipped", "cancelled")[(c + o) % 4], 100 * (c + o), c * o)
                for c in range(1, customers + 1)
                for o in range(orders_each)
            ],
        )
    tmp.replace(path)
    return path
