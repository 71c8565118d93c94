"""A value read from a target as text, the way the database itself would print it."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from opendms.sql.backup import clock_text


def plain(value: Any) -> str:
    """The text of a non-NULL value: strings as they are, times in ISO form with a space,
    binary as hex, JSON documents as JSON, booleans as ``true`` / ``false``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.timedelta):
        return clock_text(value)
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes | bytearray):
        return "0x" + value.hex()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)  # Decimal, date, time, UUID, …
