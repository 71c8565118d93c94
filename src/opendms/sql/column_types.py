"""Facts about column types that the schema-change rules weigh: which family a type is in,
how many bytes it takes in a MySQL/MariaDB row or index key, and whether changing one type
into another makes the server rewrite the table.

Types are read with sqlglot in the script's dialect, whether they come from a statement or
from the catalog (``varchar(64)``, ``character varying(64)``, ``int(11) unsigned``), so that
both compare alike. Note that sqlglot reads MySQL's TIMESTAMP as TIMESTAMPTZ: that is what
MySQL's TIMESTAMP is (stored in UTC, shown in the session's time zone).
"""

from __future__ import annotations

from functools import cache

from sqlglot import exp
from sqlglot.errors import SqlglotError

from opendms.sql.statements import DIALECTS

T = exp.DataType.Type

INTEGERS = frozenset(
    {
        T.TINYINT,
        T.UTINYINT,
        T.SMALLINT,
        T.USMALLINT,
        T.MEDIUMINT,
        T.UMEDIUMINT,
        T.INT,
        T.UINT,
        T.BIGINT,
        T.UBIGINT,
        T.SMALLSERIAL,
        T.SERIAL,
        T.BIGSERIAL,
    }
)
UNSIGNED = frozenset({T.UTINYINT, T.USMALLINT, T.UMEDIUMINT, T.UINT, T.UBIGINT})
FLOATS = frozenset({T.FLOAT, T.DOUBLE})
DECIMALS = frozenset({T.DECIMAL, T.UDECIMAL, T.MONEY})
NUMBERS = INTEGERS | FLOATS | DECIMALS | frozenset({T.BIT, T.BOOLEAN, T.YEAR})
CHARS = frozenset({T.CHAR, T.NCHAR, T.VARCHAR, T.NVARCHAR, T.BPCHAR})
TEXTS = frozenset({T.TINYTEXT, T.TEXT, T.MEDIUMTEXT, T.LONGTEXT})
BLOBS = frozenset({T.TINYBLOB, T.BLOB, T.MEDIUMBLOB, T.LONGBLOB})
BINARIES = frozenset({T.BINARY, T.VARBINARY})
# Stored off the row in MySQL/MariaDB; no literal DEFAULT on MySQL; an index needs a prefix.
LOBS = TEXTS | BLOBS | frozenset({T.JSON, T.GEOMETRY})
DATES = frozenset({T.DATE, T.DATETIME, T.DATETIME64, T.TIMESTAMP, T.TIMESTAMPTZ, T.TIME})

# Bytes a character may take, by MySQL/MariaDB character set (the server's maxlen).
CHARSET_BYTES = {
    "utf8mb4": 4,
    "utf8mb3": 3,
    "utf8": 3,
    "utf16": 4,
    "utf16le": 4,
    "utf32": 4,
    "ucs2": 2,
    "gb18030": 4,
    "gbk": 2,
    "gb2312": 2,
    "big5": 2,
    "sjis": 2,
    "cp932": 2,
    "euckr": 2,
    "ujis": 3,
    "eucjpms": 3,
}
# utf8mb4 where a table or column names none: the house rule (CHARSET_NOT_UTF8MB4) and the
# default of MySQL 8 and MariaDB 11.6.
DEFAULT_CHARSET = "utf8mb4"
MAX_KEY_BYTES = 3072  # InnoDB, DYNAMIC or COMPRESSED rows (the default since MySQL 5.7)
MAX_ROW_BYTES = 65535  # MySQL/MariaDB, every column but TEXT/BLOB counted whole


@cache
def datatype(text: str, engine: str) -> exp.DataType | None:
    """A column type as sqlglot reads it in ``engine``'s dialect; None if it cannot."""
    if not text:
        return None
    try:
        return exp.DataType.build(text, dialect=DIALECTS.get(engine, "mysql"), udt=True)
    except (SqlglotError, ValueError):
        return None


def params(dtype: exp.DataType) -> list[int]:
    """The numbers in a type's parentheses: varchar(64) -> [64], decimal(10,2) -> [10, 2]."""
    out = []
    for p in dtype.expressions:
        value = p.this if isinstance(p, exp.DataTypeParam) else p
        if isinstance(value, exp.Literal) and value.is_int:
            out.append(int(value.name))
    return out


def length(dtype: exp.DataType) -> int | None:
    found = params(dtype)
    return found[0] if found else None


def charset_bytes(charset: str) -> int:
    name = (charset or DEFAULT_CHARSET).lower()
    return CHARSET_BYTES.get(name, 1 if name not in ("", DEFAULT_CHARSET) else 4)


def _fixed_bytes(dtype: exp.DataType) -> int | None:
    """Bytes of a fixed-width MySQL/MariaDB type."""
    t = dtype.this
    sizes = {
        T.TINYINT: 1,
        T.UTINYINT: 1,
        T.BOOLEAN: 1,
        T.YEAR: 1,
        T.SMALLINT: 2,
        T.USMALLINT: 2,
        T.MEDIUMINT: 3,
        T.UMEDIUMINT: 3,
        T.INT: 4,
        T.UINT: 4,
        T.BIGINT: 8,
        T.UBIGINT: 8,
        T.FLOAT: 4,
        T.DOUBLE: 8,
        T.DATE: 3,
    }
    if t in sizes:
        return sizes[t]
    fsp = ((length(dtype) or 0) + 1) // 2
    if t in (T.DATETIME, T.DATETIME64):
        return 5 + fsp
    if t in (T.TIMESTAMP, T.TIMESTAMPTZ):
        return 4 + fsp
    if t == T.TIME:
        return 3 + fsp
    if t in (T.DECIMAL, T.UDECIMAL):
        precision, scale = ([*params(dtype), 10, 0])[:2]
        return _decimal_bytes(precision - scale) + _decimal_bytes(scale)
    if t == T.BIT:
        return ((length(dtype) or 1) + 7) // 8
    if t in (T.ENUM, T.SET):
        return 2 if t == T.ENUM else 8
    return None


def _decimal_bytes(digits: int) -> int:
    leftover = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)
    return digits // 9 * 4 + leftover[digits % 9]


def key_bytes(dtype: exp.DataType, charset: str, prefix: int | None = None) -> int | None:
    """Bytes one key part takes in an InnoDB index: characters times the charset's bytes,
    a prefix where one is given. None when the type cannot be indexed whole (TEXT, BLOB)
    and no prefix is given, or its width is not known."""
    t = dtype.this
    if t in CHARS or t in TEXTS:
        chars = prefix or (length(dtype) if t in CHARS else None)
        return chars * charset_bytes(charset) if chars is not None else None
    if t in BINARIES or t in BLOBS:
        width = prefix or (length(dtype) if t in BINARIES else None)
        return width
    return _fixed_bytes(dtype)


def row_bytes(dtype: exp.DataType, charset: str) -> int:
    """Bytes a column counts toward MySQL/MariaDB's 65,535-byte row limit: TEXT and BLOB
    count only their pointer, VARCHAR its longest value and 1 or 2 length bytes."""
    t = dtype.this
    if t in LOBS:
        return 12
    if t in (T.VARCHAR, T.NVARCHAR, T.VARBINARY):
        width = (length(dtype) or 0) * (charset_bytes(charset) if t != T.VARBINARY else 1)
        return width + (1 if width <= 255 else 2)
    if t in CHARS:
        return (length(dtype) or 1) * charset_bytes(charset)
    if t == T.BINARY:
        return length(dtype) or 1
    return _fixed_bytes(dtype) or 8


def varchar_bytes(dtype: exp.DataType, charset: str) -> int | None:
    if dtype.this not in (T.VARCHAR, T.NVARCHAR, T.VARBINARY):
        return None
    chars = length(dtype)
    if chars is None:
        return None
    return chars * (charset_bytes(charset) if dtype.this != T.VARBINARY else 1)


def same_type(a: exp.DataType, b: exp.DataType) -> bool:
    """The same type: an integer's display width (MariaDB's int(11)) does not count."""
    if a.this != b.this:
        return False
    return a.this in INTEGERS or (params(a) == params(b) and _members(a) == _members(b))


def _members(dtype: exp.DataType) -> list[str]:
    return [e.name for e in dtype.expressions if isinstance(e, exp.Literal) and e.is_string]


def _integer_rank(t: object) -> int:
    order = [
        (T.TINYINT, T.UTINYINT),
        (T.SMALLINT, T.USMALLINT, T.SMALLSERIAL),
        (T.MEDIUMINT, T.UMEDIUMINT),
        (T.INT, T.UINT, T.SERIAL),
        (T.BIGINT, T.UBIGINT, T.BIGSERIAL),
    ]
    return next(i for i, group in enumerate(order) if t in group)


def narrows(old: exp.DataType, new: exp.DataType) -> bool:
    """The new type holds fewer values than the old: shorter strings, smaller integers,
    fewer digits. Values that no longer fit make the change fail (or, outside strict mode,
    be cut)."""
    if old.this in CHARS | BINARIES and new.this in CHARS | BINARIES:
        a, b = length(old), length(new)
        return a is not None and b is not None and b < a
    if old.this in TEXTS | CHARS and new.this in CHARS:
        return old.this in TEXTS and length(new) is not None
    if old.this in INTEGERS and new.this in INTEGERS:
        return _integer_rank(new.this) < _integer_rank(old.this) or (old.this in UNSIGNED) != (
            new.this in UNSIGNED
        )
    if old.this in DECIMALS and new.this in DECIMALS:
        (p1, s1), (p2, s2) = ([*params(old), 10, 0])[:2], ([*params(new), 10, 0])[:2]
        return p2 - s2 < p1 - s1 or s2 < s1
    return False


def rewrites(old: exp.DataType, new: exp.DataType, engine: str, charset: str) -> bool:
    """Whether changing a column from ``old`` to ``new`` makes the server copy the table.

    MySQL/MariaDB change a column's type in place only for VARCHAR growing within one
    length-prefix size (up to 255 bytes, or from 256 up), and ENUM/SET members added at the
    end; every other type change copies the table. PostgreSQL rewrites unless the new type
    is binary-coercible from the old: VARCHAR growing or losing its limit, VARCHAR to TEXT,
    NUMERIC gaining precision at the same scale, and the same type again.
    """
    if same_type(old, new):
        return False
    if engine == "postgresql":
        if old.this in (T.VARCHAR, T.TEXT) and new.this in (T.VARCHAR, T.TEXT):
            grown = length(new) is None or (length(old) or 0) <= (length(new) or 0)
            return not (grown and (old.this == T.VARCHAR or length(new) is None))
        if old.this == T.DECIMAL and new.this == T.DECIMAL:
            (p1, s1), (p2, s2) = ([*params(old), 0, 0])[:2], ([*params(new), 0, 0])[:2]
            return not (params(new) == [] or (s1 == s2 and p2 >= p1))
        if old.this in (T.CHAR, T.BPCHAR) and new.this in (T.VARCHAR, T.TEXT):
            return True  # char's padding is stripped: every value changes
        return True
    if old.this in (T.VARCHAR, T.VARBINARY) and new.this == old.this:
        before, after = varchar_bytes(old, charset), varchar_bytes(new, charset)
        if before is not None and after is not None and after >= before:
            return (before <= 255) != (after <= 255)
        return True
    if old.this == new.this and old.this in (T.ENUM, T.SET):
        was, now = _members(old), _members(new)
        return now[: len(was)] != was
    return True
