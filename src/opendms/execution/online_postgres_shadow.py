"""A statement that would rewrite a live PostgreSQL table, run as a shadow copy: the empty new
shape made beside the table and kept current by triggers, the rows copied in key order in
paced chunks, then the copy renamed into the table's place in one short transaction.

Each stage is recorded on the target with its work, so that whatever the stored progress
says, a resumed run asks the target where it is: ``<key>:shadow`` (the shadow, its
triggers and what the copy needs, made in one transaction), ``<key>:copy`` (the copy's
position, moved with each chunk: ``execution.walk``'s pattern), ``<key>:swap`` (the swap,
committed with it), then a marker for each foreign key validated and for the old table
dropped.

What a rename would leave pointing at the old table (other tables' foreign keys, views,
rules, policies, triggers, publications, inheritance, its row type used elsewhere) is a
refusal, said before anything is made and checked again under the swap's locks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from opendms.execution.online import Alteration, OnlineProgress, OnlineStatus, Outcome
from opendms.execution.online_postgres_steps import (
    QUIET_LOCK_SECONDS,
    failed,
    in_transaction,
    lost_fight,
    read_marker,
    run_step,
)
from opendms.execution.walk import Position, advance_by, begin_walk
from opendms.sql.chunks import Key
from opendms.sql.online_postgres import ShadowSpec, Step
from opendms.sql.online_postgres_shadow import (
    CopyPlan,
    ShadowNames,
    alter_shadow,
    copied,
    copy_plan,
    create_shadow,
    disarmed_function,
    drop_sync,
    grant,
    literal,
    quote,
    rename,
    shadow_names,
    sync_function,
    sync_triggers,
)
from opendms.targets.base import OWN_SCHEMA, Connector, StatementError
from opendms.targets.pace import Gauge, Limits, Pace, Sizer
from opendms.targets.postgres import PostgresChange
from opendms.targets.postgres_catalog import (
    Relation,
    blockers,
    columns,
    constraints_of,
    current_user,
    estimated_rows,
    foreign_keys,
    grants,
    indexes,
    primary_key,
    relation,
    relations_named,
    relations_of,
    replica_index,
    sequences,
)

COPY_LOCK_RETRIES = 20  # chunks in a row that may lose a lock fight before the copy fails
WINDOW_WAIT_SECONDS = 300.0  # the longest rest before looking at the cut-over window again


class Refused(Exception):
    """The table cannot be swapped by a rename; the message says why."""


@dataclass(frozen=True)
class Made:
    """What making the shadow recorded on the target, for every later stage."""

    schema: str
    table: str
    key: tuple[str, ...]
    columns: tuple[str, ...]  # the shadow's columns a row of the table fills
    pairs: tuple[tuple[str, str], ...]  # (the table's index, the shadow's copy of it)
    total: int  # the rows to copy, as the server estimated them

    def dumps(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def loads(cls, text: str) -> Made:
        found = json.loads(text)
        return cls(
            found["schema"],
            found["table"],
            tuple(found["key"]),
            tuple(found["columns"]),
            tuple((a, b) for a, b in found["pairs"]),
            int(found["total"]),
        )


@dataclass(frozen=True)
class Swapped:
    old: str  # where the table's old shape is now (its schema's)
    validate: tuple[str, ...]  # foreign keys put back NOT VALID, to validate

    def dumps(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def loads(cls, text: str) -> Swapped:
        found = json.loads(text)
        return cls(found["old"], tuple(found.get("validate", [])))


def seconds_to_window(now: datetime, start: str, end: str) -> float:
    """0 inside the daily window [start, end] (HH:MM:SS; one that ends before it starts
    spans midnight), else the seconds until it opens."""
    clock = now.time().replace(microsecond=0)
    opens = datetime.strptime(start, "%H:%M:%S").time()
    closes = datetime.strptime(end, "%H:%M:%S").time()
    inside = opens <= clock <= closes if opens <= closes else clock >= opens or clock <= closes
    if inside:
        return 0.0
    at = datetime.combine(now.date(), opens, now.tzinfo)
    if at <= now:
        at += timedelta(days=1)
    return (at - now).total_seconds()


def copy_chunk(
    change: PostgresChange, plan: CopyPlan, key: str, size: int, lock_seconds: int
) -> Position:
    """The next chunk of at most ``size`` keys: its rows of the table locked, then copied,
    and the position moved, in one transaction."""

    def work(after: Key | None, upto: Key | None) -> int:
        change.lock_timeout(lock_seconds)
        locked = int(change.query(plan.lock(after, upto))[0][0])
        change.execute(plan.copy(after, upto))
        return locked

    return advance_by(change, plan.boundary, key, size, work)[0]


def _refusal(change: PostgresChange, found: Relation, names: ShadowNames) -> str | None:
    what = f"table {found.schema}.{found.name}"
    if found.kind != "r":
        return (
            f"{what} is not a plain table (relkind {found.kind}); a shadow copy swaps plain tables"
        )
    if found.partition:
        return f"{what} is a partition; a shadow copy would not be attached in its place"
    if found.persistence == "t":
        return f"{what} is temporary"
    if found.row_security:
        return f"{what} has row-level security, which a shadow copy would not carry"
    if not primary_key(change, found.oid):
        return (
            f"{what} has no primary key: a shadow copy walks the table and keeps the copy "
            "current by it"
        )
    held = blockers(change, found.oid, [names.trigger, names.truncate_trigger])
    if held:
        return (
            f"{what} is swapped for its copy by a rename, which {'; '.join(held)} would not "
            "follow (it would keep using the old table); change the table with DdlOnline 0 "
            "in a quiet hour, or remove them first"
        )
    return None


def _pairs(change: PostgresChange, table: int, shadow: int) -> tuple[tuple[str, str], ...]:
    """The table's indexes and their copies on the shadow, which ``LIKE … INCLUDING INDEXES``
    makes in the order of the table's."""
    mine, theirs = indexes(change, table), indexes(change, shadow)
    shapes = [(i.primary, i.unique, i.columns) for i in mine]
    if shapes != [(i.primary, i.unique, i.columns) for i in theirs]:
        raise StatementError("the shadow table's indexes do not match the table's")
    return tuple((a.name, b.name) for a, b in zip(mine, theirs, strict=True))


class ShadowCopy:
    def __init__(
        self,
        pace: Pace,
        limits: Limits,
        replica: Connector | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.pace, self.limits, self.replica, self.clock = pace, limits, replica, clock

    # -- the stages ------------------------------------------------------------------

    def step(
        self,
        change: PostgresChange,
        alteration: Alteration,
        spec: ShadowSpec,
        progress: OnlineProgress,
        until: float,
    ) -> Outcome:
        key = alteration.key
        swapped = read_marker(change, f"{key}:swap")
        if swapped is not None:
            return self._after(change, alteration, progress, Swapped.loads(swapped))
        made_text = read_marker(change, f"{key}:shadow")
        if made_text is None:
            refused = self._prepare(change, alteration, spec, progress)
            if refused is not None:
                return refused
            made_text = read_marker(change, f"{key}:shadow")
            if made_text is None:
                return failed(progress, "the shadow table's marker is missing after its making")
        made = Made.loads(made_text)
        progress.copy_total = made.total
        names = shadow_names(made.schema, made.table, key, OWN_SCHEMA)
        waiting = self._copy(change, alteration, spec, names, made, progress, until)
        if waiting is not None:
            return waiting
        return self._cut_over(change, alteration, names, made, progress)

    def _prepare(
        self,
        change: PostgresChange,
        alteration: Alteration,
        spec: ShadowSpec,
        progress: OnlineProgress,
    ) -> Outcome | None:
        """The shadow, its grants, owner and comment, its triggers and function, and the
        marker saying so: one transaction, whose lock on the table (for CREATE TRIGGER,
        which writers wait for) is taken last and held for no longer than the commit."""
        progress.status, progress.message = OnlineStatus.RUNNING, "making the shadow table"
        using = dict(spec.using)
        change.begin()
        try:
            change.lock_timeout(alteration.cut_over.lock_seconds)
            found = relation(change, spec.table)
            if found is None:
                change.rollback()
                self.remove(change, alteration)
                return failed(progress, f"table {spec.table} does not exist")
            names = shadow_names(found.schema, found.name, alteration.key, OWN_SCHEMA)
            why = _refusal(change, found, names)
            if why is not None:
                change.rollback()
                self.remove(change, alteration)  # its plan too: a restart plans again
                return failed(progress, why, OnlineStatus.UNSUPPORTED)
            key = primary_key(change, found.oid)
            if change.marker(f"{alteration.key}:leftover") is not None:
                for statement in drop_sync(names):  # a failed run's disarmed triggers
                    change.execute(statement)
                change.forget(f"{alteration.key}:leftover")
            change.execute(create_shadow(names, found.persistence, found.options, found.tablespace))
            shadow = relation(change, names.qualified_shadow)
            if shadow is None:
                raise StatementError("the shadow table was not made")
            pairs = _pairs(change, found.oid, shadow.oid)
            change.execute(alter_shadow(spec.alter, names, dict(pairs)))
            if primary_key(change, shadow.oid) != key:
                change.rollback()
                self.remove(change, alteration)
                return failed(
                    progress,
                    "the statement changes the table's primary key, by which a shadow copy "
                    "keeps the copy current; change the key on its own",
                    OnlineStatus.UNSUPPORTED,
                )
            self._dress(change, found, names)
            filled = copied(
                [c.name for c in columns(change, shadow.oid) if not c.generated],
                [c.name for c in columns(change, found.oid)],
                spec.added,
                using,
            )
            made = Made(
                found.schema,
                found.name,
                key,
                tuple(filled),
                pairs,
                estimated_rows(change, found.oid, names.qualified_table),
            )
            change.execute(sync_function(names, filled, key, using))
            for statement in sync_triggers(names):
                change.execute(statement)
            change.mark(f"{alteration.key}:shadow", made.dumps())
            change.commit()
        except StatementError as exc:
            change.rollback()
            if exc.lost_lock:
                wait = lost_fight(
                    progress, exc.message, alteration.cut_over.retries, "add the triggers"
                )
                if wait is not None:
                    return wait
            with suppress(StatementError):
                self.remove(change, alteration)
            return failed(progress, f"making the shadow table failed: {exc.message}")
        except BaseException:
            change.rollback()
            raise
        progress.state.pop("lost", None)
        return None

    @staticmethod
    def _dress(change: PostgresChange, found: Relation, names: ShadowNames) -> None:
        """What ``LIKE`` does not copy and the swapped-in table must have: the owner, the
        grants (the writers', and the trigger's writes into the copy run as its owner), the
        table's comment."""
        shadow = names.qualified_shadow
        if found.owner != current_user(change):
            change.execute(f"ALTER TABLE {shadow} OWNER TO {quote(found.owner)}")
        for given in grants(change, found.oid):
            change.execute(
                grant(shadow, given.privilege, given.grantee, given.grantable, given.column)
            )
        if found.comment is not None:
            change.execute(f"COMMENT ON TABLE {shadow} IS {literal(found.comment)}")

    def _copy(
        self,
        change: PostgresChange,
        alteration: Alteration,
        spec: ShadowSpec,
        names: ShadowNames,
        made: Made,
        progress: OnlineProgress,
        until: float,
    ) -> Outcome | None:
        """Chunks until the copy is done (None) or the step's time is up, the target is
        busy, or a chunk lost a lock fight (the outcome to hand back)."""
        plan = copy_plan(names, made.columns, made.key, dict(spec.using))
        walk = f"{alteration.key}:copy"
        position = begin_walk(change, walk)
        sizer = Sizer(self.pace, progress.chunk_size or self.pace.first_chunk_rows)
        gauge = Gauge(change, self.limits, self.replica)
        progress.status = OnlineStatus.RUNNING
        while not position.done:
            why = gauge.hold()
            if why is not None:
                progress.message = f"holding back: {why}"
                return Outcome(progress, wait_seconds=self.pace.hold_seconds)
            began = time.perf_counter()
            try:
                position = copy_chunk(change, plan, walk, sizer.size, self.pace.lock_wait_seconds)
            except StatementError as exc:
                if not exc.lost_lock:
                    return self._abandon(
                        change, alteration, progress, f"copying failed: {exc.message}"
                    )
                sizer.size = max(1, sizer.size // 2)
                progress.chunk_size = sizer.size
                wait = lost_fight(progress, exc.message, COPY_LOCK_RETRIES, "copy a chunk")
                if wait is None:
                    return self._abandon(
                        change,
                        alteration,
                        progress,
                        f"{COPY_LOCK_RETRIES} chunks in a row lost a lock fight: {exc.message}",
                    )
                return wait
            took = time.perf_counter() - began
            sizer.took(took)
            progress.state.pop("lost", None)
            progress.copy_count, progress.chunk_size = position.rows, sizer.size
            progress.message = f"copying: {position.rows:,} rows in {position.chunks:,} chunks"
            if position.done:
                break
            if time.monotonic() >= until:
                return Outcome(progress)
            rest = self.pace.rest(took)
            if rest > 0:
                time.sleep(rest)
        progress.copy_count = position.rows
        return None

    def _cut_over(
        self,
        change: PostgresChange,
        alteration: Alteration,
        names: ShadowNames,
        made: Made,
        progress: OnlineProgress,
    ) -> Outcome:
        cut = alteration.cut_over
        closed = seconds_to_window(self.clock(), cut.window_start, cut.window_end)
        if closed > 0:
            progress.status = OnlineStatus.WAITING_CUTOVER
            progress.message = (
                f"copied; the swap waits for its window {cut.window_start}-{cut.window_end}"
            )
            return Outcome(progress, wait_seconds=min(closed, WINDOW_WAIT_SECONDS))
        try:
            if not progress.state.get("analyzed"):
                # the planner's statistics for the table it will read from now on
                in_transaction(change, QUIET_LOCK_SECONDS, [f"ANALYZE {names.qualified_shadow}"])
                progress.state["analyzed"] = True
            swapped = self._swap(change, alteration, names, made)
        except Refused as exc:
            return self._abandon(change, alteration, progress, str(exc), OnlineStatus.UNSUPPORTED)
        except StatementError as exc:
            if not exc.lost_lock:
                return self._abandon(
                    change, alteration, progress, f"the swap failed: {exc.message}"
                )
            progress.cut_over_tries += 1
            if progress.cut_over_tries >= cut.retries:
                return self._abandon(
                    change,
                    alteration,
                    progress,
                    f"the swap lost {progress.cut_over_tries} lock fights "
                    f"(each waiting {cut.lock_seconds} s): {exc.message}",
                )
            progress.status = OnlineStatus.WAITING_CUTOVER
            progress.message = (
                f"the swap lost a lock fight (try {progress.cut_over_tries} of {cut.retries}): "
                f"{exc.message}"
            )
            return Outcome(progress, wait_seconds=min(30.0, 0.5 * 2**progress.cut_over_tries))
        return self._after(change, alteration, progress, swapped)

    def _swap(
        self, change: PostgresChange, alteration: Alteration, names: ShadowNames, made: Made
    ) -> Swapped:
        """The table and its copy trade names in one transaction that waits for each lock at
        most ``CutOver.lock_seconds``: writers wait for it no longer than that and the
        renames, and find the new table when they go on."""
        key = f"{alteration.key}:swap"
        change.begin()
        try:
            change.lock_timeout(alteration.cut_over.lock_seconds)
            found = change.marker(key)
            if found is not None:
                change.rollback()
                return Swapped.loads(found)
            table, shadow = names.qualified_table, names.qualified_shadow
            change.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            change.execute(f"LOCK TABLE {shadow} IN ACCESS EXCLUSIVE MODE")
            old = relation(change, table)
            new = relation(change, shadow)
            if old is None or new is None:
                raise StatementError(f"{table} or its shadow {shadow} is gone")
            why = _refusal(change, old, names)
            if why is not None:
                raise Refused(why)
            swapped = self._renames(change, names, made, old, new)
            change.mark(key, swapped.dumps())
            change.commit()
        except BaseException:
            change.rollback()
            raise
        return swapped

    @staticmethod
    def _renames(
        change: PostgresChange, names: ShadowNames, made: Made, old: Relation, new: Relation
    ) -> Swapped:
        schema, table = names.schema, names.qualified_table
        fks = foreign_keys(change, old.oid)
        had, has = sequences(change, old.oid), sequences(change, new.oid)
        kept = {c.name for c in columns(change, new.oid)}
        replica = replica_index(change, old.oid)
        run = change.execute
        for seq in has:  # the copy's identity goes on from where the table's was
            before = next((s for s in had if s.identity and s.column == seq.column), None)
            if seq.identity and before is not None:
                change.query(
                    f"SELECT setval({literal(seq.name)}::regclass, last_value, is_called) "  # noqa: S608
                    f"FROM {before.name}"
                )
        for statement in drop_sync(names):
            run(statement)
        for fk in fks:  # the old table's would hold its referenced rows; the new gets them
            run(f"ALTER TABLE {table} DROP CONSTRAINT {quote(fk.name)}")
        run(f"ALTER TABLE {table} RENAME TO {quote(names.old)}")
        present = relations_named(change, schema, [p for pair in made.pairs for p in pair])
        for mine, copy in made.pairs:
            if mine in present:
                run(rename("INDEX", schema, mine, names.aside(mine)))
            if copy in present:
                run(rename("INDEX", schema, copy, mine))
        run(f"ALTER TABLE {names.qualified_shadow} RENAME TO {quote(names.table)}")
        # what the server named after the shadow (its identity sequences; an index or check
        # the statement added unnamed) is named after the table, as the ALTER would have
        prefix = names.shadow + "_"
        olds = {n for n, _kind in relations_of(change, old.oid)}
        for name, kind in relations_of(change, new.oid):
            if not name.startswith(prefix):
                continue
            wanted = (names.table + name[len(names.shadow) :]).encode()[:63].decode(errors="ignore")
            word = "SEQUENCE" if kind == "S" else "INDEX"
            if wanted in relations_named(change, schema, [wanted]):
                if wanted not in olds:
                    continue  # someone else's: the name stays the shadow's
                run(rename(word, schema, wanted, names.aside(wanted)))
            run(rename(word, schema, name, wanted))
        for name, kind in constraints_of(change, new.oid):
            if kind in ("c", "f") and name.startswith(prefix):
                wanted = (
                    (names.table + name[len(names.shadow) :]).encode()[:63].decode(errors="ignore")
                )
                run(f"ALTER TABLE {table} RENAME CONSTRAINT {quote(name)} TO {quote(wanted)}")
        for seq in had:  # a serial's sequence belongs to its column in the new table
            if not seq.identity and seq.column in kept:
                run(f"ALTER SEQUENCE {seq.name} OWNED BY {table}.{quote(seq.column)}")
        validate = []
        for fk in fks:
            if not all(c in kept for c in fk.columns):
                continue  # the statement dropped its column
            if fk.definition.rstrip().upper().endswith("NOT VALID"):
                run(f"ALTER TABLE {table} ADD CONSTRAINT {quote(fk.name)} {fk.definition}")
                continue
            run(f"ALTER TABLE {table} ADD CONSTRAINT {quote(fk.name)} {fk.definition} NOT VALID")
            validate.append(fk.name)
        identity = {"f": "FULL", "n": "NOTHING"}.get(old.replica_identity)
        if identity is not None:
            run(f"ALTER TABLE {table} REPLICA IDENTITY {identity}")
        elif old.replica_identity == "i" and replica is not None:
            run(f"ALTER TABLE {table} REPLICA IDENTITY USING INDEX {quote(replica)}")
        return Swapped(names.old, tuple(validate))

    def _after(
        self,
        change: PostgresChange,
        alteration: Alteration,
        progress: OnlineProgress,
        swapped: Swapped,
    ) -> Outcome:
        """The foreign keys put back NOT VALID validated (writers go on meanwhile), the old
        table dropped unless it is to be kept."""
        made_text = read_marker(change, f"{alteration.key}:shadow")
        if made_text is None:
            return failed(progress, "the shadow table's marker is missing after the swap")
        made = Made.loads(made_text)
        table = quote(made.schema, made.table)
        steps = [
            Step(
                "run",
                f"validate foreign key {name}",
                (f"ALTER TABLE {table} VALIDATE CONSTRAINT {quote(name)}",),
                writers_wait=False,
            )
            for name in swapped.validate
        ]
        if not alteration.cut_over.keep_old:
            steps.append(
                Step(
                    "run", "drop the old table", (f"DROP TABLE {quote(made.schema, swapped.old)}",)
                )
            )
        progress.status = OnlineStatus.RUNNING
        for number, step in enumerate(steps):
            try:
                run_step(
                    change,
                    f"{alteration.key}:after:{number}",
                    step,
                    alteration.cut_over.lock_seconds,
                )
            except StatementError as exc:
                if exc.lost_lock:
                    wait = lost_fight(progress, exc.message, alteration.cut_over.retries, step.what)
                    if wait is not None:
                        return wait
                return failed(
                    progress,
                    f"the new table is in place, but {step.what} failed: {exc.message}",
                )
        progress.state.pop("lost", None)
        progress.old_table = f"{made.schema}.{swapped.old}" if alteration.cut_over.keep_old else ""
        progress.status, progress.message = OnlineStatus.SUCCESS, ""
        return Outcome(progress, done=True)

    # -- giving up -------------------------------------------------------------------

    def _abandon(
        self,
        change: PostgresChange,
        alteration: Alteration,
        progress: OnlineProgress,
        why: str,
        status: OnlineStatus = OnlineStatus.FAIL,
    ) -> Outcome:
        try:
            self.remove(change, alteration)
        except StatementError as exc:
            kept = (
                f"{why}; the shadow table and its triggers are still there (removing them "
                "failed: {}): cancel the statement to remove them"
            )
            if not exc.lost_lock:
                return failed(progress, kept.format(exc.message), status)
            try:
                self.disarm(change, alteration)
            except StatementError as again:
                return failed(progress, kept.format(again.message), status)
            return failed(
                progress,
                f"{why}; the shadow table was removed; its triggers, which now do nothing, "
                "stay on the table until the statement is cancelled or run again (dropping "
                f"them waits for the same locks: {exc.message})",
                status,
            )
        return failed(
            progress, f"{why}; the shadow copy was removed, the table is as it was", status
        )

    @staticmethod
    def _names(change: PostgresChange, key: str) -> ShadowNames | None:
        """The statement's shadow names, from its shadow or its leftover marker."""
        made_text = change.marker(f"{key}:shadow") or change.marker(f"{key}:leftover")
        if made_text is None:
            return None
        made = json.loads(made_text)
        return shadow_names(made["schema"], made["table"], key, OWN_SCHEMA)

    @classmethod
    def remove(cls, change: PostgresChange, alteration: Alteration) -> bool:
        """Drop the triggers, their function and the shadow, and forget the statement's
        markers, in one transaction; False when the swap already happened (nothing is
        undone then). Raises StatementError (a lost lock fight: try again, or disarm)."""
        key = alteration.key
        change.begin()
        try:
            change.lock_timeout(alteration.cut_over.lock_seconds)
            if change.marker(f"{key}:swap") is not None:
                change.rollback()
                return False
            names = cls._names(change, key)
            if names is not None:
                # the triggers first: the writers that wrote into the copy are done then
                for statement in drop_sync(names):
                    change.execute(statement)
                change.execute(f"DROP TABLE IF EXISTS {names.qualified_shadow}")
            change.forget(key)
            change.commit()
        except BaseException:
            change.rollback()
            raise
        return True

    @classmethod
    def disarm(cls, change: PostgresChange, alteration: Alteration) -> None:
        """When the triggers cannot be dropped (DROP TRIGGER waits for every reader of the
        table): their function made to do nothing, which takes no lock on the table, and
        the shadow dropped; a ``leftover`` marker keeps their names for whoever drops them
        (a cancel, or the statement run again)."""
        key = alteration.key
        change.begin()
        try:
            change.lock_timeout(alteration.cut_over.lock_seconds)
            names = cls._names(change, key)
            if names is not None:
                change.execute(disarmed_function(names))
                change.execute(f"DROP TABLE IF EXISTS {names.qualified_shadow}")
            change.forget(key)
            if names is not None:
                leftover = json.dumps({"schema": names.schema, "table": names.table})
                change.mark(f"{key}:leftover", leftover)
            change.commit()
        except BaseException:
            change.rollback()
            raise
