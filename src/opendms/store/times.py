"""How OpenDMS writes a UTC time as text for people: the stamps of a job's log, and the
window an execution keeps as it was given (``execution.service.ExecutionPlan``), which the
log repeats.

The API writes its times in a format of its own, ``gateway.wire.WIRE_TIME``. The two look
the same today; they are named apart because they answer to different readers (the SDKs
parse the wire's), and only the wire's is a promise to a caller.
"""

from __future__ import annotations

from datetime import datetime

LOG_TIME = "%Y-%m-%d %H:%M:%S"


def log_time(value: datetime) -> str:
    """``value`` (naive UTC) as a log line's stamp."""
    return f"{value:{LOG_TIME}}"
