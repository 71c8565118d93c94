"""Log lines that say which request and which ticket they belong to.

The gateway binds a request's RequestId (and the OrderId it names) for as long as the request
is handled; a job's step binds its ticket. ``RequestContext`` puts both on every record that
passes a handler, so any line logged meanwhile, at any depth, carries them: ``log_config``
gives the process its handlers, in today's text format or as one JSON object a line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS, LogData
from pythonjsonlogger.json import JsonFormatter

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

_request_id: ContextVar[str | None] = ContextVar("opendms_request_id", default=None)
_order_id: ContextVar[int | None] = ContextVar("opendms_order_id", default=None)


@contextmanager
def context(request_id: str | None = None, order_id: int | None = None) -> Iterator[None]:
    """Bind the RequestId and OrderId for the block; one not given keeps the outer value. Both
    are set again on the way in, so a ``bind`` inside the block ends with it."""
    tokens = (
        _request_id.set(request_id if request_id is not None else _request_id.get()),
        _order_id.set(order_id if order_id is not None else _order_id.get()),
    )
    try:
        yield
    finally:
        _order_id.reset(tokens[1])
        _request_id.reset(tokens[0])


def bind(order_id: int | None) -> None:
    """Name the ticket for the rest of the enclosing ``context`` block: what a request turns
    out to be about is known only once its parameters are read. None changes nothing."""
    if order_id is not None:
        _order_id.set(order_id)


def current() -> tuple[str | None, int | None]:
    """The RequestId and OrderId bound here (None where none is)."""
    return _request_id.get(), _order_id.get()


class RequestContext(logging.Filter):
    """Puts ``request_id`` and ``order_id`` (None when unbound) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id, record.order_id = current()
        return True


class JsonLines(JsonFormatter):
    """One JSON object a line: time (ISO 8601, UTC), level, logger, message, the request_id
    and order_id when bound, an exception's traceback, and whatever a line adds as ``extra``."""

    def __init__(self) -> None:
        super().__init__(
            ["asctime", "levelname", "name", "message"],
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            # uvicorn's colored copy of its message is for terminals
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
            json_ensure_ascii=False,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")

    def process_log_record(self, log_data: LogData) -> LogData:
        for unbound in [k for k in ("request_id", "order_id") if log_data.get(k) is None]:
            del log_data[unbound]
        return log_data


def log_config(format: str) -> dict[str, Any]:
    """The process's logging (``logging.config.dictConfig``): uvicorn's loggers and
    ``opendms.*`` (one line per API request among them), and other libraries' warnings, all
    to stderr, as ``text`` or ``json`` (``OPENDMS_LOG_FORMAT``). uvicorn applies it in every
    worker process too."""
    if format not in FORMATS:
        raise ValueError(f"log format {format!r} is none of {', '.join(FORMATS)}")
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = json.loads(json.dumps(LOGGING_CONFIG))
    config["filters"] = {"context": {"()": f"{__name__}.RequestContext"}}
    config["formatters"]["opendms"] = (
        {"()": f"{__name__}.JsonLines"} if format == "json" else {"format": TEXT_FORMAT}
    )
    config["handlers"]["opendms"] = {
        "class": "logging.StreamHandler",
        "formatter": "opendms",
        "stream": "ext://sys.stderr",
    }
    for handler in config["handlers"].values():
        handler["filters"] = ["context"]
        if format == "json":  # uvicorn's lines too: a log shipper reads one format
            handler["formatter"] = "opendms"
    config["loggers"]["opendms"] = {"handlers": ["opendms"], "level": "INFO", "propagate": False}
    # a worker's Celery lines (connected, ready, a task received and done) in the same format
    config["loggers"]["celery"] = {"handlers": ["opendms"], "level": "INFO", "propagate": False}
    config["root"] = {"handlers": ["opendms"], "level": "WARNING"}
    return config
