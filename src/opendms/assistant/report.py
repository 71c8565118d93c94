"""The assistant's reports as the text DMS answers in ``Data.Content`` (Markdown, since
the agents that read it render it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opendms.assistant.fix import FixReport
from opendms.assistant.optimize import OptimizeReport, Plan
from opendms.sql.review import Finding

MAX_PLAN_ROWS = 50
MAX_CELL = 200


def _sql(text: str) -> list[str]:
    return ["```sql", text, "```"]


def _findings(findings: Sequence[Finding]) -> list[str]:
    if not findings:
        return ["", "## SQL review", "", "No finding."]
    out = ["", "## SQL review", ""]
    for f in findings:
        out.append(f"- {f.level} {f.code} (statement {f.statement}, line {f.line}): {f.message}")
    return out


def _unsplit(error: str) -> str:
    return "\n".join(["## Parse", "", f"The script cannot be split into statements: {error}"])


def fix_text(report: FixReport) -> str:
    if report.script_error is not None:
        return _unsplit(report.script_error)
    out: list[str] = []
    for st in report.statements:
        out += ["", f"## Statement {st.number} (line {st.line})", ""]
        if st.parse_error is not None:
            out.append(f"Does not parse: {st.parse_error}.")
        else:
            out.append("Parses.")
        for u in st.unknown:
            what = f"Column {u.name}" + (f" of {u.table}" if u.table else "")
            if u.what == "table":
                what = f"Table {u.name}"
            hint = f"; closest: {', '.join(u.closest)}" if u.closest else "; nothing close"
            out.append(f"- {what} is not in the catalog you may read{hint}.")
        for r in st.repairs:
            out += ["", f"Corrected ({r.why}):", "", *_sql(r.sql)]
        if st.parse_error is not None and not st.repairs:
            out.append("OpenDMS cannot correct it by itself.")
    out += _findings(report.findings)
    return "\n".join(out).strip()


def _cell(value: Any) -> str:
    text = "NULL" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _plan(plan: Plan) -> list[str]:
    if not plan.ran:
        return [f"The plan was not read: {plan.message}"]
    out = ["| " + " | ".join(plan.columns) + " |", "|" + "---|" * len(plan.columns)]
    for row in plan.rows[:MAX_PLAN_ROWS]:
        out.append("| " + " | ".join(_cell(row.get(c)) for c in plan.columns) + " |")
    if len(plan.rows) > MAX_PLAN_ROWS:
        out.append(f"({len(plan.rows) - MAX_PLAN_ROWS} more rows)")
    for table in plan.scans:
        out.append(f"- The plan reads all of {table}.")
    return out


def optimize_text(report: OptimizeReport) -> str:
    if report.script_error is not None:
        return _unsplit(report.script_error)
    out: list[str] = []
    for st in report.statements:
        out += ["", f"## Statement {st.number} ({st.kind})", ""]
        if st.parse_error is not None:
            out.append(f"Does not parse: {st.parse_error}. FixSqlByMetaAgent may correct it.")
            continue
        if st.plan is None:
            out.append("Not explained: OpenDMS explains queries and data changes.")
        else:
            out += ["### Plan", "", *_plan(st.plan)]
        if st.indexes:
            out += ["", "### Indexes"]
            for ix in st.indexes:
                out += ["", f"{ix.why}:", "", *_sql(ix.ddl)]
        elif st.plan is not None:
            out += ["", "### Indexes", "", "No index to suggest from the catalog."]
        for note in st.notes:
            out.append(f"- {note}")
    if report.left_out:
        out += ["", f"({report.left_out} more statements were not looked at.)"]
    out += _findings(report.findings)
    return "\n".join(out).strip()
