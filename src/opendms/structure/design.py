"""A schema design ticket (NDDL), the request side: its design (UpdateSchemaDesign), its
stages, and running the design on a stage's database (ExecuteSchemaDesign).

The design is DDL on its base database: parsed and reviewed when it is given, refused with
every ERROR finding named, and then tried by a ``design_compare`` job (``structure.run``) on
a scratch copy of the tables it touches, which gives the shape they should have. Each stage's
database (the base, then the same-named database on the instances of each later environment
the rule set names) is compared with that shape: a stage whose tables are as the design found
the base's runs the script as written; one that already matches runs nothing; one that
drifted is shown how, and runs only the DDL it still lacks.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from opendms.catalog import dba, permissions
from opendms.catalog.permissions import OVERSEERS
from opendms.catalog.shapes import CatalogShapes
from opendms.errors import DmsError, ErrorCode
from opendms.execution import service as execution
from opendms.identity.caller import Caller
from opendms.rulebook import rule_sets
from opendms.sql import review
from opendms.sql.ddl_tables import ddl_table
from opendms.sql.script import ScriptError
from opendms.sql.statements import describe, parse_script
from opendms.sql.tables import Catalog
from opendms.store.models import (
    Database,
    Instance,
    Job,
    Order,
    SchemaDesign,
    SchemaPlan,
    SqlJob,
)
from opendms.store.states import (
    TERMINAL,
    DatabaseState,
    InstanceState,
    JobState,
    OrderStatus,
    PlanState,
)
from opendms.tickets import lifecycle
from opendms.tickets import service as tickets
from opendms.tickets.registry import params_of

PLUGIN_TYPE = "NDDL"
# What a design may hold: tables, their columns, indexes and comments.
DESIGN_KINDS = frozenset({"CREATE", "ALTER", "DROP", "RENAME", "COMMENT"})
MAX_SCRIPT_BYTES = 1024 * 1024
DESIGN_COMPARE_JOB = "design_compare"  # structure.run.DesignCompare runs it
FAMILIES = {"mysql": "mysql", "mariadb": "mysql", "postgresql": "postgresql", "sqlite": "sqlite"}


@dataclass(frozen=True)
class Stage:
    position: int  # 0: the base database
    db: Database
    inst: Instance


def base_of(s: Session, order: Order) -> tuple[Database, Instance]:
    found = tickets.databases_of(s, order.order_id)
    if not found:
        raise DmsError(ErrorCode.DATABASE_NOT_FOUND, f"Ticket {order.order_id} has no database.")
    return found[0]


def stages_of(s: Session, order: Order) -> list[Stage]:
    """The base database, then, environment by environment as the base instance's rule set
    orders them, the database of the same name on each instance of the same engine family
    (on PostgreSQL, the schema of that name in the instance's own catalog, its ``Sid``, else
    in the catalog of the base's name)."""
    db, inst = base_of(s, order)
    stages = [Stage(0, db, inst)]
    after = rule_sets.for_instance(s, inst)[0].rule_set.schema_design.after(inst.env_type)
    family = FAMILIES.get(inst.instance_type)
    for env in after:
        found = s.execute(
            select(Database, Instance)
            .join(Instance, Instance.instance_id == Database.instance_id)
            .where(
                Instance.tid == order.tid,
                Instance.env_type == env,
                Instance.state == InstanceState.NORMAL,
                Database.state == DatabaseState.NORMAL,
                func.lower(Database.schema_name) == db.schema_name.lower(),
            )
            .order_by(Instance.instance_id, Database.db_id)
        ).all()
        by_instance: dict[int, list[tuple[Database, Instance]]] = {}
        for other_db, other in found:
            if (
                FAMILIES.get(other.instance_type) == family
                and other.instance_id != inst.instance_id
            ):
                by_instance.setdefault(other.instance_id, []).append((other_db, other))
        for choices in by_instance.values():
            chosen = _same_named(choices, db)
            if chosen is not None:
                stages.append(Stage(len(stages), *chosen))
    return stages


def _same_named(
    choices: list[tuple[Database, Instance]], base: Database
) -> tuple[Database, Instance] | None:
    """Among one instance's databases named as the base is, the one that is its stage."""
    home = [(d, i) for d, i in choices if d.catalog_name == i.sid]
    named = [(d, i) for d, i in choices if d.catalog_name == base.catalog_name]
    found = home or named
    return found[0] if found else None


def _design_order(s: Session, caller: Caller, order_id: int, *, lock: bool = False) -> Order:
    order = tickets.get_order(s, caller, order_id, lock=lock)
    if order.plugin_type != PLUGIN_TYPE:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"Ticket {order_id} is {order.plugin_type}, not a schema design ({PLUGIN_TYPE}).",
        )
    return order


def _checked(script: str, engine: str) -> list[str]:
    """The script's statements, each DDL on one table named without its schema (a design runs
    on every stage's database); the tables they touch, in order. A refusal names the
    statement."""
    size = len(script.encode())
    if size > MAX_SCRIPT_BYTES:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"Script is {size:,} bytes; a design is at most {MAX_SCRIPT_BYTES:,}.",
            {"Script": "too long"},
        )
    try:
        parsed = parse_script(script, engine)
    except ScriptError as exc:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER, f"Script: {exc}", {"Script": str(exc)}
        ) from None
    if not parsed:
        raise DmsError(ErrorCode.INVALID_PARAMETER, "Script has no statement.", {"Script": "empty"})
    tables: list[str] = []
    for one in parsed:
        where = f"statement {one.piece.number} (line {one.piece.line})"
        if one.error is not None:
            raise DmsError(
                ErrorCode.INVALID_PARAMETER, f"Script: {one.error}", {"Script": one.error}
            )
        for node in one.nodes:
            st = describe(node)
            problem = None
            if st.kind not in DESIGN_KINDS:
                problem = (
                    f"{where} is {st.kind}: a schema design holds only DDL (CREATE, ALTER and "
                    "DROP of tables and indexes, RENAME, COMMENT); change data with a data "
                    "change ticket"
                )
            table = ddl_table(node)
            if problem is None and table is None:
                problem = f"{where} names no table OpenDMS can read; write it in its plain form"
            elif problem is None and table is not None and "." in table:
                problem = (
                    f"{where} names {table} with its schema: a design runs on each stage's own "
                    "database, so name tables without one"
                )
            if problem is not None or table is None:
                raise DmsError(
                    ErrorCode.INVALID_PARAMETER, f"Script: {problem}.", {"Script": str(problem)}
                )
            if table not in tables:
                tables.append(table)
    return tables


def _change_refusal(s: Session, caller: Caller, db: Database, inst: Instance) -> DmsError | None:
    """A design is the committer's change to its base database: they hold CORRECT on it, or
    are its instance's DBA, or an administrator."""
    if caller.is_admin or dba.is_instance_dba(inst, caller.user_id):
        return None
    if not permissions.holds(s, caller.tid, caller.user_id, db.db_id, "CORRECT"):
        return DmsError(
            ErrorCode.PERMISSION_DENIED,
            f"Changing the tables of {db.schema_name}@{inst.alias} needs the CORRECT "
            "permission on it (or being its DBA).",
        )
    return None


# Review rules whose verdict rests on which tables, columns and indexes exist: the metadata
# store's catalog may be stale, so the comparison job gives their verdict, from the live base.
CHECKED_LIVE = frozenset(
    {"TABLE_NOT_FOUND", "COLUMN_NOT_FOUND", "ALREADY_EXISTS", "INDEX_NOT_FOUND"}
)


def review_design(
    s: Session, order: Order, script: str, db: Database, inst: Instance, catalog: Catalog
) -> list[review.Finding]:
    """The design reviewed against ``catalog`` (its base's tables), once for each environment
    it goes to (what is fine on dev may not be on product). Its stated reason is the
    ticket's Description."""
    levels = rule_sets.for_instance(s, inst)[0].rule_set.review
    reason = str(getattr(params_of(order), "description", None) or "")
    findings: list[review.Finding] = []
    for env in dict.fromkeys(stage.inst.env_type for stage in stages_of(s, order)):
        for found in review.review(
            script,
            inst.instance_type,
            DESIGN_KINDS,
            catalog=catalog,
            levels=levels,
            env_type=env,
            reason=reason,
        ):
            if found not in findings:
                findings.append(found)
    return findings


def review_refusal(findings: list[review.Finding]) -> str | None:
    """Every ERROR finding, named with its statement; None when there is none."""
    errors = [f for f in findings if f.level == "ERROR"]
    if not errors:
        return None
    shown = "; ".join(
        f"statement {f.statement} (line {f.line}): {f.code}: {f.message}" for f in errors[:10]
    )
    more = f"; and {len(errors) - 10} more" if len(errors) > 10 else ""
    return f"The design fails review: {shown}{more}."


def stored(findings: list[review.Finding]) -> list[dict[str, object]]:
    return [
        {
            "code": f.code,
            "level": f.level,
            "statement": f.statement,
            "line": f.line,
            "message": f.message,
        }
        for f in findings
    ]


def update_design(s: Session, caller: Caller, order_id: int, script: str) -> SchemaDesign:
    """UpdateSchemaDesign: the committer's new design, parsed and reviewed now, then compared
    with every stage by a job. Only a new ticket's design changes (withdraw it to change it)."""
    order = _design_order(s, caller, order_id, lock=True)
    refusal = update_refusal(s, caller, order)
    if refusal is not None:
        raise refusal
    db, inst = base_of(s, order)
    tables = _checked(script, inst.instance_type)
    findings = [
        f
        for f in review_design(s, order, script, db, inst, CatalogShapes(s, [db]))
        if f.code not in CHECKED_LIVE
    ]
    failed = review_refusal(findings)
    if failed is not None:
        raise DmsError(ErrorCode.REVIEW_FAILED, failed, {"Script": failed})
    design = s.get(SchemaDesign, order_id, with_for_update=True)
    if design is None:
        design = SchemaDesign(order_id=order_id, version=0, before={})
        s.add(design)
    design.script = script
    design.version += 1
    design.findings = stored(findings)
    design.tables = tables
    queue_compare(s, order, design)
    return design


def update_refusal(s: Session, caller: Caller, order: Order) -> DmsError | None:
    """Why UpdateSchemaDesign would refuse the caller a new design for ``order`` now, whatever
    the script (its parse and review are the script's own); None: it would take one."""
    if order.committer_id != caller.user_id:
        return DmsError(ErrorCode.PERMISSION_DENIED, "Only the committer changes the design.")
    if order.status_code != OrderStatus.NEW:
        return DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Ticket {order.order_id} is {order.status_code}; only a new ticket's design "
            "changes (withdraw it from approval to change it).",
        )
    if running_stage(s, order.order_id) is not None:
        return DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Ticket {order.order_id} is running its design on a stage; change it when that ends.",
        )
    db, inst = base_of(s, order)
    return _change_refusal(s, caller, db, inst)


def queue_compare(s: Session, order: Order, design: SchemaDesign) -> Job:
    """A new comparison of the design with every stage; one still waiting or going is called
    off (it compares a design or databases as they were)."""
    s.execute(
        update(Job)
        .where(
            Job.order_id == order.order_id,
            Job.kind == DESIGN_COMPARE_JOB,
            Job.state.in_((JobState.QUEUED, JobState.RUNNING)),
        )
        .values(state=JobState.CANCELLED)
    )
    job = Job(order_id=order.order_id, kind=DESIGN_COMPARE_JOB)
    s.add(job)
    s.flush()
    design.state, design.message, design.job_id = PlanState.COMPARING, "", job.job_id
    return job


def running_stage(s: Session, order_id: int) -> int | None:
    """The database a stage run is working on now, if one is."""
    return s.scalar(
        select(SqlJob.db_id)
        .join(Job, Job.job_id == SqlJob.group_id)
        .where(
            Job.order_id == order_id,
            Job.kind == "execute",
            Job.state.in_((JobState.QUEUED, JobState.RUNNING, JobState.PAUSED)),
        )
        .limit(1)
    )


@dataclass(frozen=True)
class StageView:
    stage: Stage
    plan: SchemaPlan | None
    state: str  # NOT_COMPARED, COMPARING, PENDING, DRIFT, EQUAL, FAILED, RUNNING


@dataclass(frozen=True)
class DesignView:
    order: Order
    design: SchemaDesign | None
    stages: list[StageView]


def detail(s: Session, caller: Caller, order_id: int) -> DesignView:
    """GetSchemaDesignDetail: the design, its review, and each stage with what it lacks."""
    order = _design_order(s, caller, order_id)
    design = s.get(SchemaDesign, order_id)
    plans = {
        p.db_id: p for p in s.scalars(select(SchemaPlan).where(SchemaPlan.order_id == order_id))
    }
    running = running_stage(s, order_id)
    views = []
    for stage in stages_of(s, order):
        plan = plans.get(stage.db.db_id)
        views.append(StageView(stage, plan, _stage_state(design, plan, running == stage.db.db_id)))
    return DesignView(order, design, views)


def _stage_state(design: SchemaDesign | None, plan: SchemaPlan | None, running: bool) -> str:
    if running:
        return "RUNNING"
    if design is None:
        return "NOT_COMPARED"
    if design.state == PlanState.COMPARING or (
        plan is not None and plan.state == PlanState.COMPARING
    ):
        return "COMPARING"
    if design.state == PlanState.FAILED or (plan is not None and plan.state == PlanState.FAILED):
        return "FAILED"
    if plan is None:
        return "NOT_COMPARED"
    if plan.state == PlanState.EQUAL:
        return "EQUAL"
    return "DRIFT" if any(t.get("drift") for t in plan.tables) else "PENDING"


def submit_refusal(s: Session, order: Order) -> str | None:
    """Why the design cannot go for approval yet: it must be given, compared, and run on its
    base database first (an approver approves a design that ran)."""
    design = s.get(SchemaDesign, order.order_id)
    if design is None:
        return "it has no design yet (UpdateSchemaDesign)."
    if design.state == PlanState.COMPARING:
        return "its design is still being compared with its stages."
    if design.state == PlanState.FAILED:
        return f"its design could not be tried: {design.message}"
    db, _ = base_of(s, order)
    plan = s.scalar(
        select(SchemaPlan).where(
            SchemaPlan.order_id == order.order_id, SchemaPlan.db_id == db.db_id
        )
    )
    if plan is None or plan.state != PlanState.EQUAL:
        return (
            f"run the design on its base database {db.schema_name} first "
            "(ExecuteSchemaDesign with that DbId)."
        )
    return None


def execute_stage_refusal(
    s: Session,
    caller: Caller,
    order: Order,
    db_id: int,
    stages: list[Stage] | None = None,
) -> DmsError | None:
    """Why ExecuteSchemaDesign would refuse the caller a run of ``order``'s design on stage
    ``db_id`` now; None: it would start it. ``stages``: ``stages_of(order)``, when the caller
    asks for every stage in turn."""
    order_id = order.order_id
    found = stages if stages is not None else stages_of(s, order)
    stage = next((st for st in found if st.db.db_id == db_id), None)
    if stage is None:
        return DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"DbId {db_id} is not a stage of ticket {order_id}; GetSchemaDesignDetail lists them.",
            {"DbId": "not a stage"},
        )
    if stage.position == 0:
        if order.committer_id != caller.user_id:
            return DmsError(
                ErrorCode.PERMISSION_DENIED, "Only the committer runs the design on its base."
            )
        if order.status_code != OrderStatus.NEW:
            return DmsError(
                ErrorCode.ORDER_STATUS_INVALID,
                f"Ticket {order_id} is {order.status_code}; its base runs before it is submitted.",
            )
    else:
        if order.status_code not in (OrderStatus.APPROVED, OrderStatus.PROCESSING):
            return DmsError(
                ErrorCode.ORDER_STATUS_INVALID,
                f"Ticket {order_id} is {order.status_code}; a design reaches "
                f"{stage.inst.env_type} only once the ticket is approved.",
            )
        refusal = execution.starter_refusal(s, caller, order)
        if refusal is not None:
            return refusal
    if running_stage(s, order_id) is not None:
        return DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Ticket {order_id} is running its design on a stage already; wait for it to end.",
        )
    design = s.get(SchemaDesign, order_id)
    plan = s.scalar(
        select(SchemaPlan).where(SchemaPlan.order_id == order_id, SchemaPlan.db_id == db_id)
    )
    state = _stage_state(design, plan, running=False)
    if state in ("NOT_COMPARED", "COMPARING", "FAILED") or plan is None:
        why = plan.message if plan is not None and plan.message else "it is not compared yet"
        return DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"{stage.db.schema_name}@{stage.inst.alias} cannot run the design: {why}.",
        )
    if state == "EQUAL":
        return DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"{stage.db.schema_name}@{stage.inst.alias} already matches the design.",
        )
    return None


def runnable_stages(s: Session, caller: Caller, order: Order) -> tuple[int, ...]:
    """The stages (DbIds) whose run ExecuteSchemaDesign would start for the caller now."""
    found = stages_of(s, order)
    return tuple(
        st.db.db_id
        for st in found
        if execute_stage_refusal(s, caller, order, st.db.db_id, found) is None
    )


def execute_stage(s: Session, caller: Caller, order_id: int, db_id: int) -> Job:
    """ExecuteSchemaDesign: run what the stage's database lacks of the design. The base stage
    runs on its committer's word while the ticket is new; a later stage only once the ticket
    is approved, started by whom its ExecMode names, one stage at a time
    (``execute_stage_refusal``)."""
    order = _design_order(s, caller, order_id, lock=True)
    stages = stages_of(s, order)
    refusal = execute_stage_refusal(s, caller, order, db_id, stages)
    if refusal is not None:
        raise refusal
    stage = next(st for st in stages if st.db.db_id == db_id)
    plan = s.scalar(
        select(SchemaPlan).where(SchemaPlan.order_id == order_id, SchemaPlan.db_id == db_id)
    )
    assert plan is not None, "execute_stage_refusal refuses a stage not compared"
    statements = [
        execution.Statement(number, text, describe_kind(text, stage.inst.instance_type))
        for number, text in enumerate(plan.statements, start=1)
    ]
    job = execution.open_execution(
        s, order, execution.ExecutionPlan(by=caller.user_id), {db_id: statements}
    )
    if order.status_code == OrderStatus.APPROVED:
        lifecycle.transition(s, order, OrderStatus.PROCESSING)
    return job


def describe_kind(text: str, engine: str) -> str:
    """The statement kind of one DDL statement the plan holds (its SQL job detail's type)."""
    parsed = parse_script(text, engine)
    nodes = [node for one in parsed for node in one.nodes]
    return describe(nodes[0]).kind if nodes else "OTHER"


def stage_finished(s: Session, order: Order, job: Job) -> None:
    """A stage's run (``job``) ended well: its database matches the design now; the ticket
    succeeds once its approved design reached every stage, and otherwise every stage is
    compared again (what the others lack may have changed with it)."""
    ran = set(s.scalars(select(SqlJob.db_id).where(SqlJob.group_id == job.job_id)))
    for plan in s.scalars(select(SchemaPlan).where(SchemaPlan.order_id == order.order_id)):
        if plan.db_id in ran:
            plan.state = PlanState.EQUAL
            plan.message = f"ran by execution {job.job_id}"
    if finish_if_every_stage_has_it(s, order):
        return
    design = s.get(SchemaDesign, order.order_id)
    if design is not None:
        queue_compare(s, order, design)


def finish_if_every_stage_has_it(s: Session, order: Order) -> bool:
    """An approved (or processing) design that every stage has: the ticket succeeds (a design
    whose only stage is its base, which ran before approval, has nothing left to run)."""
    if order.status_code not in (OrderStatus.APPROVED, OrderStatus.PROCESSING):
        return False
    done = set(
        s.scalars(
            select(SchemaPlan.db_id).where(
                SchemaPlan.order_id == order.order_id, SchemaPlan.state == PlanState.EQUAL
            )
        )
    )
    if not {st.db.db_id for st in stages_of(s, order)} <= done:
        return False
    if order.status_code == OrderStatus.APPROVED:
        lifecycle.transition(s, order, OrderStatus.PROCESSING)
    lifecycle.transition(s, order, OrderStatus.SUCCESS)
    return True


def compare_again(s: Session, caller: Caller, order_id: int) -> Job:
    """CompareSchemaDesign: compare the design with its stages anew (after a stage failed,
    or one changed), by its committer, an administrator or a DBA, while no stage runs."""
    order = _design_order(s, caller, order_id, lock=True)
    refusal = compare_refusal(s, caller, order)
    if refusal is not None:
        raise refusal
    found = s.get(SchemaDesign, order_id, with_for_update=True)
    assert found is not None, "compare_refusal refuses a ticket without a design"
    return queue_compare(s, order, found)


def compare_refusal(s: Session, caller: Caller, order: Order) -> DmsError | None:
    """Why CompareSchemaDesign would refuse the caller on ``order`` now; None: it would
    queue a comparison."""
    order_id = order.order_id
    overseer = bool(OVERSEERS.intersection(caller.roles))
    if order.committer_id != caller.user_id and not overseer:
        return DmsError(
            ErrorCode.PERMISSION_DENIED,
            "Only the committer, an administrator or a DBA compares a design again.",
        )
    if order.status_code in TERMINAL:
        return DmsError(
            ErrorCode.ORDER_STATUS_INVALID, f"Ticket {order_id} is {order.status_code}."
        )
    if running_stage(s, order_id) is not None:
        return DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Ticket {order_id} is running its design on a stage; compare it when that ends.",
        )
    if s.get(SchemaDesign, order_id) is None:
        return DmsError(
            ErrorCode.ORDER_STATUS_INVALID,
            f"Ticket {order_id} has no design yet (UpdateSchemaDesign).",
        )
    return None
