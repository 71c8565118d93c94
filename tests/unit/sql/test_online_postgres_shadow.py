"""The SQL of a PostgreSQL shadow copy: names that fit and differ per statement, chunks that
lock before they copy, a trigger that follows every kind of write."""

from __future__ import annotations

from opendms.sql.online_postgres_shadow import (
    alter_shadow,
    copied,
    copy_plan,
    create_shadow,
    grant,
    shadow_names,
    sync_function,
)

NAMES = shadow_names("public", "Orders", "ticket-1:3", "_opendms")


def test_names_fit_a_postgresql_name_and_differ_per_statement() -> None:
    long = shadow_names("s", "x" * 80, "k", "_opendms")
    assert max(len(long.shadow.encode()), len(long.old.encode())) == 63
    assert long.shadow.endswith(f"_{long.tag}_new") and long.old.endswith(f"_{long.tag}_old")
    assert shadow_names("s", "t", "k1", "o").tag != shadow_names("s", "t", "k2", "o").tag
    assert len(shadow_names("s", "é" * 40, "k", "o").shadow.encode()) <= 63
    assert NAMES.qualified_shadow == f'"public"."_Orders_{NAMES.tag}_new"'


def test_the_shadow_is_made_like_the_table() -> None:
    assert create_shadow(NAMES, "u", ("fillfactor=70",), "fast") == (
        f'CREATE UNLOGGED TABLE "public"."_Orders_{NAMES.tag}_new" '
        '(LIKE "public"."Orders" INCLUDING ALL) WITH (fillfactor=70) TABLESPACE "fast"'
    )


def test_a_chunk_locks_its_rows_in_key_order_then_copies_them() -> None:
    plan = copy_plan(NAMES, ["id", "n", "label"], ["id"], {"n": "n * 2"})
    lock = plan.lock((10,), (20,))
    assert lock.startswith('SELECT count(*) FROM (SELECT 1 FROM "public"."Orders" AS "opendms_src"')
    assert '"opendms_src"."id" > 10' in lock and '"opendms_src"."id" <= 20' in lock
    assert lock.endswith('ORDER BY "opendms_src"."id" FOR SHARE) AS opendms_locked')
    copy = plan.copy((10,), (20,))
    assert copy.startswith(
        f'INSERT INTO "public"."_Orders_{NAMES.tag}_new" ("id", "n", "label") '
        'OVERRIDING SYSTEM VALUE SELECT "opendms_src"."id", "opendms_src".n * 2, '
        '"opendms_src"."label" FROM "public"."Orders" AS "opendms_src"'
    )
    # locked again as read (a row committed since the lock); only the key's conflicts are
    # the trigger's newer rows
    assert copy.endswith('FOR SHARE ON CONFLICT ("id") DO NOTHING')
    assert plan.boundary(None, 500).endswith("LIMIT 1 OFFSET 499")


def test_the_trigger_follows_inserts_updates_deletes_key_moves_and_truncates() -> None:
    text = sync_function(NAMES, ["a", "b", "v"], ["a", "b"], {"v": "v::bigint"})
    assert "SECURITY DEFINER SET search_path = pg_catalog" in text
    assert "#variable_conflict use_column" in text
    assert "IF TG_OP = 'TRUNCATE'" in text
    assert 'ROW(OLD."a", OLD."b") IS DISTINCT FROM ROW(NEW."a", NEW."b")' in text
    assert 'WHERE "a" = OLD."a" AND "b" = OLD."b"' in text
    assert 'VALUES (NEW."a", NEW."b", CAST(NEW.v AS BIGINT))' in text
    assert 'ON CONFLICT ("a", "b") DO UPDATE SET "v" = EXCLUDED."v"' in text
    only_key = sync_function(NAMES, ["a"], ["a"], {})
    assert 'ON CONFLICT ("a") DO NOTHING' in only_key
    assert "search_path = pg_catalog, pg_temp" in only_key


def test_the_copy_leaves_out_what_the_statement_adds() -> None:
    # DROP COLUMN c, ADD COLUMN c: the new c is not the old one
    assert copied(["id", "c", "d", "gone"], ["id", "c", "gone"], ["c", "d"], {}) == ["id", "gone"]
    assert copied(["id", "n"], ["id", "n"], [], {"n": "n * 2"}) == ["id", "n"]


def test_a_key_the_statement_names_is_the_shadows_copy_of_it() -> None:
    text = alter_shadow(
        "ALTER TABLE opendms_shadow_placeholder DROP CONSTRAINT t_pkey, ALTER COLUMN n TYPE BIGINT",
        NAMES,
        {"t_pkey": "_t_x_new_pkey"},
    )
    assert text == (
        f'ALTER TABLE "public"."_Orders_{NAMES.tag}_new" DROP CONSTRAINT "_t_x_new_pkey", '
        "ALTER COLUMN n SET DATA TYPE BIGINT"
    )


def test_grants_are_given_again_as_they_were() -> None:
    assert grant("t", "SELECT", "", False) == "GRANT SELECT ON t TO PUBLIC"
    assert (
        grant("t", "UPDATE", "app", True, "v")
        == 'GRANT UPDATE ("v") ON t TO "app" WITH GRANT OPTION'
    )
