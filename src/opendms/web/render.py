"""The console's templates and the filters they share."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import MySqlLexer, PostgresLexer, SqlLexer

from opendms.gateway.wire import WIRE_TIME

PREFIX = "/console"
_LEXERS = {"mysql": MySqlLexer, "mariadb": MySqlLexer, "postgresql": PostgresLexer}
_FORMATTER = HtmlFormatter(nowrap=True)


def sql(text: str | None, dialect: str = "") -> Markup:
    """SQL as highlighted HTML (Pygments escapes the text it is given)."""
    if not text:
        return Markup("")
    lexer = _LEXERS.get(dialect.lower(), SqlLexer)()
    return Markup(highlight(text, lexer, _FORMATTER))  # noqa: S704 - Pygments' own escaped output


def when(value: datetime | str | None) -> str:
    """A time as the console writes it: UTC, to the second."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            return f"{datetime.strptime(value, WIRE_TIME):%Y-%m-%d %H:%M:%S}"
        except ValueError:
            return value
    return f"{value:%Y-%m-%d %H:%M:%S}"


def number(value: int | float | None) -> str:
    if value is None:
        return ""
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def url(path: str, **query: object) -> str:
    """A console URL: ``path`` below /console, with the query parameters that have a value.
    A template global, so that imported macros have it too."""
    q = {k: _text(v) for k, v in query.items() if v not in (None, "")}
    return f"{PREFIX}{path}" + (f"?{urlencode(q)}" if q else "")


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("opendms.web", "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(sql=sql, when=when, number=number)
    env.globals["url"] = url
    return env


def render(template: str, context: dict[str, Any]) -> str:
    return str(environment().get_template(template).render(context))


def pygments_css() -> str:
    return str(_FORMATTER.get_style_defs(".sql"))  # type: ignore[no-untyped-call]
