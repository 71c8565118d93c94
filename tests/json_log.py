"""Log lines of a logger captured as OPENDMS_LOG_FORMAT=json writes them, for tests."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from opendms.telemetry import logs


@contextmanager
def json_log(name: str) -> Iterator[io.StringIO]:
    """What logger ``name`` (and those under it) writes during the block, one JSON object a
    line, with the bound RequestId and OrderId."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(logs.RequestContext())
    handler.setFormatter(logs.JsonLines())
    logger = logging.getLogger(name)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
