"""Log lines that name their request and ticket: the context, the filter, the JSON lines
and the process's logging configuration."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextvars import copy_context

import pytest

from opendms.telemetry import logs
from tests.json_log import json_log


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What a logger of this test writes, as the JSON format writes it."""
    with json_log("opendms.test_logs") as out:
        yield out


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_context_binds_for_its_block_and_nesting_keeps_the_outer_values() -> None:
    assert logs.current() == (None, None)
    with logs.context(request_id="R1"):
        assert logs.current() == ("R1", None)
        with logs.context(order_id=7):
            assert logs.current() == ("R1", 7)
            with logs.context(request_id="R2"):
                assert logs.current() == ("R2", 7)
            assert logs.current() == ("R1", 7)
        assert logs.current() == ("R1", None)
    assert logs.current() == (None, None)


def test_a_bind_inside_a_context_ends_with_it() -> None:
    with logs.context(request_id="R1"):
        logs.bind(order_id=None)  # names nothing
        assert logs.current() == ("R1", None)
        logs.bind(order_id=9)
        assert logs.current() == ("R1", 9)
    assert logs.current() == (None, None)


def test_a_json_line_names_the_request_and_ticket_bound(json_lines: io.StringIO) -> None:
    logger = logging.getLogger("opendms.test_logs")
    logger.info("outside")
    with logs.context(request_id="R1", order_id=42):
        logger.warning("inside %s", "it", extra={"rows": 3})
    outside, inside = lines(json_lines)
    assert set(outside) == {"time", "level", "logger", "message"}  # nothing bound: no keys
    assert inside == {
        "time": inside["time"],
        "level": "WARNING",
        "logger": "opendms.test_logs",
        "message": "inside it",
        "rows": 3,
        "request_id": "R1",
        "order_id": 42,
    }
    assert str(inside["time"]).endswith("+00:00")  # ISO 8601, UTC


def test_an_executor_line_in_its_ticket_context_carries_the_order_id(
    json_lines: io.StringIO,
) -> None:
    """A runner thread binds the ticket of the job it steps; whatever the executor logs
    meanwhile, on that thread, names it."""
    logger = logging.getLogger("opendms.test_logs")

    def step() -> None:
        with logs.context(order_id=1234):
            logger.info("statement 3 of 10 done")

    thread = threading.Thread(target=copy_context().run, args=(step,))
    thread.start()
    thread.join()
    (line,) = lines(json_lines)
    assert (line["order_id"], line["message"]) == (1234, "statement 3 of 10 done")
    assert "request_id" not in line


def test_an_exception_is_part_of_its_json_line(json_lines: io.StringIO) -> None:
    logger = logging.getLogger("opendms.test_logs")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("it failed")
    (line,) = lines(json_lines)
    assert line["level"] == "ERROR"
    assert "RuntimeError: boom" in str(line["exc_info"])


def test_the_text_config_is_todays_format_and_the_json_config_formats_every_handler() -> None:
    text = logs.log_config("text")
    assert text["formatters"]["opendms"] == {"format": logs.TEXT_FORMAT}
    assert text["loggers"]["opendms"] == {
        "handlers": ["opendms"],
        "level": "INFO",
        "propagate": False,
    }
    assert text["handlers"]["default"]["formatter"] == "default"  # uvicorn's own, unchanged
    as_json = logs.log_config("json")
    assert {h["formatter"] for h in as_json["handlers"].values()} == {"opendms"}
    for config in (text, as_json):
        assert all(h["filters"] == ["context"] for h in config["handlers"].values())
    with pytest.raises(ValueError, match="xml"):
        logs.log_config("xml")


# In a process of its own: dictConfig sets the process's loggers for good.
APPLY = """
import logging, logging.config, sys
from opendms.telemetry import logs
from tests.json_log import json_log
logging.config.dictConfig(logs.log_config(sys.argv[1]))
with logs.context(request_id="R9"):
    logging.getLogger("opendms.gateway").info("hello")
    logging.getLogger("uvicorn.error").info("uvicorn says")
    logging.getLogger("somelib").warning("a library warns")
"""


@pytest.mark.parametrize("format", logs.FORMATS)
def test_each_config_applies_and_writes_its_format(format: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", APPLY, format], capture_output=True, text=True, check=True
    )
    ours, uvicorn, library = done.stderr.splitlines()
    if format == "text":
        assert ours.endswith(" INFO opendms.gateway hello")
        assert uvicorn.endswith("uvicorn says") and uvicorn.startswith("INFO:")
        assert library.endswith(" WARNING somelib a library warns")
        return
    found = [json.loads(line) for line in (ours, uvicorn, library)]
    assert [(f["logger"], f["message"], f["request_id"]) for f in found] == [
        ("opendms.gateway", "hello", "R9"),
        ("uvicorn.error", "uvicorn says", "R9"),
        ("somelib", "a library warns", "R9"),
    ]
