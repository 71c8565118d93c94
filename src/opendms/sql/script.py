"""Splitting a SQL script into statements, as the database's own client would.

Written by hand: sqlglot splits only on ``;`` after tokenizing, and neither it nor sqlparse
knows the MySQL client's ``DELIMITER`` directive, which scripts with routines and triggers
use. The scanner knows each engine's quoting (MySQL backslash escapes and backticks,
PostgreSQL dollar quotes and nested block comments, ``#`` comments in MySQL) so that a
delimiter inside a string or a comment never ends a statement, and it remembers where each
statement starts, so that errors can name the statement, the line and the column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MYSQL_ENGINES = frozenset({"mysql", "mariadb"})
_DELIMITER = re.compile(r"[ \t]*delimiter[ \t]+(\S+)[ \t]*(?:\r?\n|$)", re.IGNORECASE)
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
# After "/*": what makes a MySQL/MariaDB comment code (! and M!) or a hint (+).
_HIDDEN = re.compile(r"M?!|\+")
_HIDDEN_WHY = (
    "an executable comment (/*! … */, /*M! … */) or optimizer hint (/*+ … */) runs code "
    "that OpenDMS's checks cannot see; write its content as plain SQL, or leave it out"
)


class ScriptError(ValueError):
    """A script that cannot be split: an unterminated string, identifier or comment."""

    def __init__(self, message: str, line: int, column: int, statement: int = 0) -> None:
        where = f"line {line}, column {column}"
        super().__init__(
            f"statement {statement} ({where}): {message}" if statement else f"{where}: {message}"
        )
        self.line, self.column, self.reason, self.statement = line, column, message, statement

    def moved(self, lines: int, statements: int = 0) -> ScriptError:
        """The same error in a text that starts ``lines`` lines (and, where the statement is
        known, ``statements`` statements) further on."""
        number = self.statement + statements if self.statement else 0
        return type(self)(self.reason, self.line + lines, self.column, number)


class HiddenCode(ScriptError):
    """MySQL's executable comments (``/*! … */``, ``/*!50000 … */``, MariaDB's ``/*M! … */``)
    and optimizer hints (``/*+ … */``): the server runs or obeys what is inside, while every
    parser that reads the statement for OpenDMS's checks sees a comment. OpenDMS refuses
    them instead of parsing their content, so that one reading of the text is the only one."""


@dataclass(frozen=True)
class Piece:
    """One statement of a script, without its delimiter."""

    number: int  # 1-based, in script order
    text: str
    line: int  # 1-based line of its first character in the script
    column: int  # 1-based column of its first character


class _Scanner:
    def __init__(self, script: str, engine: str) -> None:
        self.text = script
        self.mysql = engine in MYSQL_ENGINES
        self.postgres = engine == "postgresql"
        self.line_starts = [0] + [m.end() for m in re.finditer(r"\n", script)]

    def where(self, offset: int) -> tuple[int, int]:
        lo, hi = 0, len(self.line_starts) - 1
        while lo < hi:  # the last line start at or before offset
            mid = (lo + hi + 1) // 2
            if self.line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, offset - self.line_starts[lo] + 1

    def fail(self, what: str, offset: int) -> ScriptError:
        line, column = self.where(offset)
        return ScriptError(f"{what} never ends", line, column)

    def skip_quoted(self, i: int) -> int:
        """From an opening quote at ``i`` to just past its closing quote."""
        text, quote = self.text, self.text[i]
        j = i + 1
        backslash = self.mysql and quote in "'\""
        while j < len(text):
            c = text[j]
            if backslash and c == "\\":
                j += 2
                continue
            if c == quote:
                if text.startswith(quote, j + 1):  # a doubled quote stands for itself
                    j += 2
                    continue
                return j + 1
            j += 1
        kind = "identifier" if quote in "`" or (quote == '"' and not self.mysql) else "string"
        raise self.fail(f"the quoted {kind}", i)

    def skip_block_comment(self, i: int) -> int:
        text, depth, j = self.text, 1, i + 2
        if self.mysql and _HIDDEN.match(text, j):
            line, column = self.where(i)
            raise HiddenCode(_HIDDEN_WHY, line, column)
        while j < len(text):
            if text.startswith("*/", j):
                depth -= 1
                j += 2
                if depth == 0:
                    return j
            elif self.postgres and text.startswith("/*", j):  # PostgreSQL nests them
                depth += 1
                j += 2
            else:
                j += 1
        raise self.fail("the comment", i)

    def skip_line_comment(self, i: int) -> int:
        end = self.text.find("\n", i)
        return len(self.text) if end < 0 else end + 1

    def skip_dollar_quoted(self, i: int, tag: str) -> int:
        end = self.text.find(tag, i + len(tag))
        if end < 0:
            raise self.fail("the dollar-quoted string", i)
        return end + len(tag)

    def skipped(self, i: int) -> int | None:
        """Past the string, identifier or comment starting at ``i``, or None if none does."""
        text, c = self.text, self.text[i]
        if c in "'\"" or (c == "`" and self.mysql):
            return self.skip_quoted(i)
        if text.startswith("/*", i):
            return self.skip_block_comment(i)
        if text.startswith("--", i) and (
            not self.mysql or i + 2 >= len(text) or text[i + 2] in " \t\r\n"
        ):
            return self.skip_line_comment(i)
        if c == "#" and self.mysql:
            return self.skip_line_comment(i)
        if c == "$" and self.postgres:
            tag = _DOLLAR_TAG.match(text, i)
            if tag and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
                return self.skip_dollar_quoted(i, tag.group(0))
        return None


def _code_start(scanner: _Scanner, start: int, end: int) -> int:
    """Where the statement's code begins, past blanks and comments; ``end`` if it has none."""
    text, i = scanner.text, start
    while i < end:
        if text[i].isspace():
            i += 1
            continue
        if text[i] in "'\"`$":
            return i
        past = scanner.skipped(i)
        if past is None:
            return i
        i = past
    return end


def split(script: str, engine: str) -> list[Piece]:
    """The statements of ``script`` for ``engine`` (an instance type), in order. Raises
    :class:`ScriptError` for an unterminated string, identifier or comment, and
    :class:`HiddenCode` for MySQL code inside a comment."""
    return _scan(script, engine, ";", final=True).pieces


@dataclass
class _Scan:
    pieces: list[Piece]
    delimiter: str  # in force at the end (MySQL's DELIMITER may change it)
    rest: int  # where the text not yet split into statements begins


def _scan(text: str, engine: str, delimiter: str, *, final: bool) -> _Scan:
    """Split ``text``; unless ``final``, the last statement may be cut off by the end of
    the text (more follows), so it is left unsplit, as is one whose quote is still open."""
    scanner = _Scanner(text, engine)
    pieces: list[Piece] = []
    start = i = 0

    def close(end: int) -> None:
        code = _code_start(scanner, start, end)
        if code < end:
            line, column = scanner.where(code)
            pieces.append(Piece(len(pieces) + 1, text[code:end].rstrip(), line, column))

    while i < len(text):
        if scanner.mysql and not text[start:i].strip() and (i == 0 or text[i - 1] == "\n"):
            directive = _DELIMITER.match(text, i)
            if directive and (final or directive.end() < len(text)):
                delimiter = directive.group(1)  # the client's own command: it runs nothing
                i = start = directive.end()
                continue
        if text.startswith(delimiter, i):
            close(i)
            i = start = i + len(delimiter)
            continue
        try:
            past = scanner.skipped(i)
        except HiddenCode as exc:
            raise HiddenCode(exc.reason, exc.line, exc.column, len(pieces) + 1) from None
        except ScriptError:
            if final:
                raise
            return _Scan(pieces, delimiter, start)  # the rest of the quote is still to come
        i = past if past is not None else i + 1
    if final:
        close(len(text))
    return _Scan(pieces, delimiter, start)


def split_stream(blocks: Iterable[str], engine: str) -> Iterator[Piece]:
    """The statements of a script that arrives in ``blocks`` (a file read a megabyte at a
    time), numbered and placed as :func:`split` would: memory holds one block and the
    statement it ends in."""
    delimiter, pending, lines, number = ";", "", 0, 0
    for block in blocks:
        pending += block
        try:
            found = _scan(pending, engine, delimiter, final=False)
        except ScriptError as exc:
            raise exc.moved(lines, number) from None
        for piece in found.pieces:
            number += 1
            yield Piece(number, piece.text, piece.line + lines, piece.column)
        lines += pending.count("\n", 0, found.rest)
        delimiter, pending = found.delimiter, pending[found.rest :]
    try:
        last = _scan(pending, engine, delimiter, final=True).pieces
    except ScriptError as exc:
        raise exc.moved(lines, number) from None
    for piece in last:
        number += 1
        yield Piece(number, piece.text, piece.line + lines, piece.column)
