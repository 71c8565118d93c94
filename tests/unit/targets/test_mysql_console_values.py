"""The SQL console reads MySQL's DECIMAL and DATETIME text straight into the text an export
writes of the value PyMySQL would have made (so masks hash alike), without the objects."""

from __future__ import annotations

import pytest
from pymysql import converters

from opendms.exports.values import plain
from opendms.targets.mysql import _datetime_text, _decimal_text


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-01 01:00:00",
        "2026-01-01 01:00:00.000000",
        "2026-01-01 01:00:00.120",
        "2026-01-01 01:00:00.000001",
        "0000-00-00 00:00:00",
    ],
)
def test_a_datetime_reads_as_the_text_of_the_value_it_stands_for(text: str) -> None:
    assert _datetime_text(text) == plain(converters.convert_datetime(text))


@pytest.mark.parametrize("text", ["12.30", "-0.5", "0.0000001", "123456789012345678.99", "0"])
def test_a_decimal_reads_as_the_text_of_the_value_it_stands_for(text: str) -> None:
    assert _decimal_text(text) == plain(converters.conversions[246](text))
