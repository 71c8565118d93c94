"""What a DMS search text (``SearchName``, ``SearchKey``, ``SearchContent``) matches, for
every listing that takes one.

DMS treats it as a LIKE pattern looked for anywhere in the name: ``%`` matches any run of
characters and ``_`` any one character (the DMS MCP server sends ``%`` to mean "all"), a
plain word matches as a substring, and case does not matter. A backslash makes the
character after it literal (``\\%`` is a percent sign); any other backslash is itself.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_
from sqlalchemy.orm import InstrumentedAttribute

ESCAPE = "\\"
_WILDCARDS = frozenset("%_" + ESCAPE)


def pattern(text: str) -> str:
    """``text`` as the LIKE pattern it stands for (escape character: backslash): wrapped in
    ``%`` so it matches anywhere, and never ending in a dangling escape, which PostgreSQL
    refuses."""
    out = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == ESCAPE:
            following = text[i + 1 : i + 2]
            if following and following in _WILDCARDS:
                out.append(ESCAPE + following)
                i += 2
                continue
            out.append(ESCAPE + ESCAPE)
        else:
            out.append(char)
        i += 1
    return "%" + "".join(out) + "%"


def matches(
    text: str, *columns: InstrumentedAttribute[str] | InstrumentedAttribute[str | None]
) -> ColumnElement[bool]:
    """Rows where any of ``columns`` matches the search ``text``."""
    like = pattern(text)
    return or_(*(column.ilike(like, escape=ESCAPE) for column in columns))
