"""Splitting scripts into statements as each engine's client would."""

from __future__ import annotations

import pytest

from opendms.sql.script import Piece, ScriptError, split, split_stream


def texts(script: str, engine: str = "mysql") -> list[str]:
    return [p.text for p in split(script, engine)]


@pytest.mark.parametrize("engine", ["mysql", "postgresql", "sqlite"])
def test_semicolons_in_strings_and_comments_do_not_split(engine: str) -> None:
    script = "UPDATE t SET a = 'x;y' WHERE id = 1; /* a;b */ DELETE FROM t -- c;d\nWHERE id = 2"
    assert texts(script, engine) == [
        "UPDATE t SET a = 'x;y' WHERE id = 1",
        "DELETE FROM t -- c;d\nWHERE id = 2",
    ]


def test_mysql_quoting() -> None:
    script = (
        'DELETE FROM `we;ird` WHERE b = "q\\";";'  # backslash escapes in MySQL strings
        "UPDATE t SET a = 'it''s;' WHERE c = 1;"  # a doubled quote
        "SELECT 1 # a comment; still one\n;"
        "SELECT 1--2;"  # not a comment in MySQL without a blank after --
    )
    assert texts(script) == [
        'DELETE FROM `we;ird` WHERE b = "q\\";"',
        "UPDATE t SET a = 'it''s;' WHERE c = 1",
        "SELECT 1 # a comment; still one",
        "SELECT 1--2",
    ]


def test_postgresql_quoting() -> None:
    script = (
        "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;"
        "SELECT $$;$$; /* outer /* nested; */ still; */ SELECT 'a\\'; SELECT 2"
    )
    assert texts(script, "postgresql") == [
        "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql",
        "SELECT $$;$$",
        "SELECT 'a\\'",  # no backslash escapes in standard strings
        "SELECT 2",
    ]


def test_mysql_delimiter_directive() -> None:
    script = (
        "DELIMITER //\n"
        "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END//\n"
        "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1//\n"
        "delimiter ;\n"
        "CALL p();"
    )
    assert texts(script) == [
        "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END",
        "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1",
        "CALL p()",
    ]
    # only a line of its own, between statements, is the directive
    assert texts("SELECT 'DELIMITER //';\nSELECT 2", "mysql") == [
        "SELECT 'DELIMITER //'",
        "SELECT 2",
    ]


def test_comment_only_pieces_vanish() -> None:
    script = "-- header\nSET NAMES utf8;\n/* just talk */ ;\n# more\n;"
    assert texts(script) == ["SET NAMES utf8"]
    assert texts("/* only */ ; -- nothing", "postgresql") == []


def test_positions_point_at_the_first_character_of_code() -> None:
    script = "-- header\r\nUPDATE t SET a = 1;\r\n\r\n    /* lead */ DELETE FROM t;SELECT 3"
    assert split(script, "mysql") == [
        Piece(1, "UPDATE t SET a = 1", 2, 1),
        Piece(2, "DELETE FROM t", 4, 16),
        Piece(3, "SELECT 3", 4, 30),
    ]


@pytest.mark.parametrize(
    ("script", "engine", "message"),
    [
        ("SELECT 1;\nSELECT 'abc;\nSELECT 2", "mysql", "line 2, column 8: the quoted string"),
        ("SELECT `a", "mysql", "line 1, column 8: the quoted identifier"),
        ('SELECT "a', "postgresql", "line 1, column 8: the quoted identifier"),
        ("SELECT 1;\n  /* open", "postgresql", "line 2, column 3: the comment"),
        ("SELECT /* a /* b */", "postgresql", "line 1, column 8: the comment"),
        ("SELECT $x$ never", "postgresql", "line 1, column 8: the dollar-quoted string"),
    ],
)
def test_unterminated_parts_name_where_they_start(script: str, engine: str, message: str) -> None:
    with pytest.raises(ScriptError) as err:
        split(script, engine)
    assert str(err.value).startswith(message)


def test_a_mysql_block_comment_does_not_nest() -> None:
    assert texts("SELECT /* a /* b */ 1; SELECT 2") == ["SELECT /* a /* b */ 1", "SELECT 2"]


def test_dollar_signs_inside_identifiers_are_not_quotes() -> None:
    assert texts("SELECT a$b$ FROM t; SELECT 2", "postgresql") == ["SELECT a$b$ FROM t", "SELECT 2"]


def test_a_stream_splits_as_the_whole_script_does() -> None:
    script = (
        "INSERT INTO t VALUES (1, 'a;b');\n-- note; still a comment\n"
        "INSERT INTO t VALUES (2, 'it''s\nthere');\nDELIMITER $$\n"
        "CREATE PROCEDURE p() BEGIN SELECT 1; END$$\nDELIMITER ;\nUPDATE t SET x = 1"
    )
    whole = split(script, "mariadb")
    for size in (1, 2, 3, 7, 16, 1000):
        blocks = [script[i : i + size] for i in range(0, len(script), size)]
        assert list(split_stream(blocks, "mariadb")) == whole, size


def test_a_stream_with_an_open_quote_at_its_end_fails_there() -> None:
    with pytest.raises(ScriptError) as failed:
        list(split_stream(["SELECT 1;\nSELECT 'open", " still"], "postgresql"))
    assert failed.value.line == 2
