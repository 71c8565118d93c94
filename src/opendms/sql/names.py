"""Rules for the names a schema change gives tables, columns and indexes: how long a name
may be, how it is spelled, which words are reserved (``reserved_words.yaml``) and which
prefix an index name carries."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

import yaml

# Longest identifier: MySQL and MariaDB refuse a longer one; PostgreSQL cuts it to 63 bytes
# (NAMEDATALEN - 1) without an error, so the object would not have the name the design gives.
MAX_LENGTH = {"mysql": 64, "mariadb": 64, "postgresql": 63}
SNAKE_CASE = re.compile(r"[a-z][a-z0-9_]*")
# What an index name starts with: idx_ for an index, uk_ for a unique one (the Alibaba Java
# development manual's convention, which DMS users follow).
INDEX_PREFIX = "idx_"
UNIQUE_PREFIX = "uk_"


@cache
def reserved(engine: str) -> frozenset[str]:
    """The reserved words of an engine (an instance type), lower-cased; empty if not listed."""
    data = yaml.safe_load(
        resources.files("opendms.sql").joinpath("reserved_words.yaml").read_text()
    )
    return frozenset(data.get(engine) or ())


def too_long(name: str, engine: str) -> int | None:
    """The engine's limit when ``name`` is over it (PostgreSQL counts bytes), else None."""
    limit = MAX_LENGTH.get(engine)
    if limit is None:
        return None
    size = len(name.encode()) if engine == "postgresql" else len(name)
    return limit if size > limit else None


def snake_case(name: str) -> bool:
    return SNAKE_CASE.fullmatch(name) is not None
