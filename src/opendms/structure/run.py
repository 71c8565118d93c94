"""The ``design_compare`` job: a schema design tried and compared with every stage.

The design's base database is read for the tables the script touches (the first time a table
is seen, its definition is kept as where the design starts: ``SchemaDesign.before``). Those
definitions are made in a scratch space on the base's server, the script is run there, and
what it leaves is the shape the design wants (``desired``): the server itself is the
interpreter of its DDL, so what a stage is compared with is what the script really does.
A statement the server refuses fails the design, naming it, before anyone approves it.

Then each stage's database is read and compared: as the design found the base, it runs the
script as written; as the design wants, nothing; anything else is drift, shown table by
table, and it runs the DDL it still lacks. No metadata transaction is open while a server is
asked anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from sqlalchemy import select

from opendms.catalog.shapes import CatalogShapes
from opendms.errors import DmsError
from opendms.jobs.runner import Checkpoint, Step, Work
from opendms.means import Means
from opendms.schema import diff, render
from opendms.schema.model import Table
from opendms.sql.ddl_tables import ddl_table
from opendms.sql.review import Finding
from opendms.sql.statements import parse_script
from opendms.sql.statements import render as render_sql
from opendms.sql.tables import LiveCatalog
from opendms.store.models import Order, SchemaDesign, SchemaPlan, utcnow
from opendms.store.states import PlanState
from opendms.structure.design import (
    DESIGN_COMPARE_JOB,
    Stage,
    review_design,
    review_refusal,
    stages_of,
    stored,
)
from opendms.targets.base import TargetError, TryFailed


def same(a: Table | None, b: Table | None, engine: str) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return not diff.compare(a, b, engine)


def setup_statements(tables: Sequence[Table], engine: str) -> list[str]:
    """DDL that makes ``tables`` in an empty schema: every table, then their foreign keys
    (so the order of tables does not matter). A key to a table not among them is left out:
    the scratch space has only these."""
    names = {t.name for t in tables}
    plans = [
        render.sync_plan(
            replace(t, foreign_keys=tuple(f for f in t.foreign_keys if f.ref_table in names)),
            None,
            engine,
        )
        for t in tables
    ]
    return [st for p in plans for st in p.main] + [st for p in plans for st in p.after]


@dataclass(frozen=True)
class StageResult:
    state: PlanState
    tables: list[dict[str, object]]
    statements: list[str]
    message: str = ""
    live: Mapping[str, Table] | None = None  # the stage's tables as compared


def compare_stage(
    names: Sequence[str],
    before: Mapping[str, Table | None],
    desired: Mapping[str, Table],
    live: Mapping[str, Table],
    engine: str,
    script: Sequence[str],
    touches: Mapping[str, Sequence[int]] | None = None,
) -> StageResult:
    """What one stage lacks of the design (see the module). A table the design changes but
    does not make, which this stage does not have, fails the stage: creating it here whole
    is not what the design says (``touches``: the statements that name each table)."""
    lacking = [
        n for n in names if before.get(n) is not None and live.get(n) is None and n in desired
    ]
    if lacking:
        named = "; ".join(
            f"statement {', '.join(map(str, (touches or {}).get(n, ())))} changes table {n}"
            if (touches or {}).get(n)
            else f"the design changes table {n}"
            for n in lacking
        )
        return StageResult(
            PlanState.FAILED,
            [],
            [],
            f"{named}, which this database does not have: the design changes it, it does not "
            "make it here",
        )
    if all(same(desired.get(n), live.get(n), engine) for n in names):
        return StageResult(
            PlanState.EQUAL,
            [{"source": n, "target": n, "compare_type": "EQUAL_TABLE"} for n in names],
            [],
        )
    if all(same(before.get(n), live.get(n), engine) for n in names):
        tables: list[dict[str, object]] = []
        for n in names:
            kind = "CREATE_TABLE" if before.get(n) is None else "ALTER_TABLE"
            if same(before.get(n), desired.get(n), engine):
                kind = "EQUAL_TABLE"
            tables.append({"source": n, "target": n, "compare_type": kind})
        return StageResult(PlanState.COMPARED, tables, list(script))
    tables, statements, drifted = [], [], []
    for n in names:
        wanted, now = desired.get(n), live.get(n)
        if same(wanted, now, engine):
            tables.append({"source": n, "target": n, "compare_type": "EQUAL_TABLE"})
            continue
        found = [d.text for d in diff.compare(wanted, now, engine)] if wanted and now else []
        was = before.get(n)
        if not same(was, now, engine):
            drifted.append(n)
        made = render.sync_statements(wanted, now, engine, name=n)
        kind = "CREATE_TABLE" if now is None else "ALTER_TABLE"
        tables.append(
            {
                "source": n,
                "target": n,
                "compare_type": kind,
                "differences": found,
                "statements": made,
                "drift": not same(was, now, engine),
            }
        )
        statements += made
    message = (
        "drifted from where the design started: "
        + ", ".join(drifted)
        + "; it runs only the DDL it still lacks"
        if drifted
        else ""
    )
    return StageResult(PlanState.COMPARED, tables, statements, message)


DESIGN_COMPARE = DESIGN_COMPARE_JOB


@dataclass
class DesignCompare:
    """The ``design_compare`` job executor (``runtime.executors``)."""

    means: Means

    def __call__(self, work: Work, checkpoint: Checkpoint) -> Step:
        with work.store.session() as s:
            design = s.get(SchemaDesign, work.order_id)
            order = s.get(Order, work.order_id)
            if design is None or order is None or design.job_id != work.job_id:
                return Step(checkpoint, done=True)  # a newer comparison took over
            stages = stages_of(s, order)
            names = list(design.tables)
            script = design.script
            # a table the design found missing is kept as None: it is the design's to make
            before: dict[str, Table | None] = {
                n: Table.from_json(t) if t else None for n, t in design.before.items()
            }
        base = stages[0]
        engine = base.inst.instance_type
        try:
            live = self._read(base, names)
            for n in names:
                if n not in before:
                    before[n] = live.get(n)  # where the design starts, kept from the first look
            referenced = _referenced(before, names)
            others = self._read(base, referenced) if referenced else {}
            nodes = [
                (one.piece.number, node)
                for one in parse_script(script, engine)
                for node in one.nodes
            ]
            statements = [render_sql(node, engine) for _, node in nodes]
            touches: dict[str, list[int]] = {}
            for number, node in nodes:
                table = ddl_table(node)
                if table is not None:
                    touches.setdefault(table, []).append(number)
            made = [t for t in before.values() if t is not None]
            setup = setup_statements([*made, *others.values()], engine)
            where = (base.db.catalog_name, base.db.schema_name)
            desired = self.means.connector(base.inst).try_script(where, setup, statements, names)
        except TryFailed as exc:
            where_ = f"statement {exc.number}" if exc.number else "copying the tables to try it"
            return self._fail(
                work, f"the design fails on {base.inst.alias}: {where_}: {exc.message}"
            )
        except (TargetError, DmsError) as exc:
            return self._fail(
                work, f"reading {base.db.schema_name}@{base.inst.alias} failed: {exc.message}"
            )
        with work.store.session() as s:  # the verdict of the rules that read the live base
            order = s.get_one(Order, work.order_id)
            catalog = LiveCatalog(
                {n: t for n, t in {**others, **before}.items() if t is not None},
                set(names) | set(others),
                CatalogShapes(s, [base.db]),
            )
            findings = review_design(s, order, script, base.db, base.inst, catalog)
        refusal = review_refusal(findings)
        if refusal is not None:
            return self._fail(work, refusal)
        results: dict[int, StageResult] = {}
        for stage in stages:
            try:
                found = live if stage.position == 0 else self._read(stage, names)
                result = compare_stage(
                    names, before, desired, found, stage.inst.instance_type, statements, touches
                )
                results[stage.db.db_id] = replace(result, live=found)
            except (TargetError, DmsError, ValueError) as exc:
                message = exc.message if isinstance(exc, TargetError | DmsError) else str(exc)
                results[stage.db.db_id] = StageResult(PlanState.FAILED, [], [], message)
        self._store(work, stages, before, desired, results, findings)
        return Step(checkpoint, done=True)

    def _read(self, stage: Stage, names: Sequence[str]) -> dict[str, Table]:
        where = (stage.db.catalog_name, stage.db.schema_name)
        return self.means.connector(stage.inst).definitions(where, list(names))

    def _fail(self, work: Work, message: str) -> Step:
        with work.store.session() as s:
            design = s.get(SchemaDesign, work.order_id, with_for_update=True)
            if design is not None and design.job_id == work.job_id:
                design.state, design.message = PlanState.FAILED, message[:4000]
        return Step({}, done=True)

    def _store(
        self,
        work: Work,
        stages: Sequence[Stage],
        before: Mapping[str, Table | None],
        desired: Mapping[str, Table],
        results: Mapping[int, StageResult],
        findings: list[Finding],
    ) -> None:
        with work.store.session() as s:
            design = s.get(SchemaDesign, work.order_id, with_for_update=True)
            if design is None or design.job_id != work.job_id:
                return
            design.before = {n: t.to_json() if t else None for n, t in before.items()}
            design.desired = {n: t.to_json() for n, t in desired.items()}
            design.state, design.message = PlanState.COMPARED, ""
            design.findings = stored(findings)
            plans = {
                p.db_id: p
                for p in s.scalars(select(SchemaPlan).where(SchemaPlan.order_id == work.order_id))
            }
            for stage in stages:
                result = results[stage.db.db_id]
                plan = plans.get(stage.db.db_id)
                if plan is None:
                    plan = SchemaPlan(order_id=work.order_id, db_id=stage.db.db_id)
                    s.add(plan)
                plan.position = stage.position
                plan.state, plan.message = result.state, result.message[:4000]
                plan.tables, plan.statements = result.tables, result.statements
                # what the ddl walk holds the stage to before it runs, and what it should be
                seen = result.live or {}
                plan.before = {n: seen[n].to_json() for n in design.tables if n in seen}
                plan.desired = {n: desired[n].to_json() for n in design.tables if n in desired}
                plan.job_id, plan.analyzed_at = work.job_id, utcnow()


def _referenced(before: Mapping[str, Table | None], names: Sequence[str]) -> list[str]:
    """Tables the design's tables reference by foreign key, which the scratch space needs."""
    return sorted(
        {
            f.ref_table
            for t in before.values()
            if t is not None
            for f in t.foreign_keys
            if f.ref_table not in names
        }
    )
