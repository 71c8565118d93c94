"""Exports from the command line: `column mask` / `column list`, `order export` and
`order exported`."""

from __future__ import annotations

import csv
import io
import zipfile

from tests.cli_support import result_is_one_line_error
from tests.unit.cli.site import Site, as_json


def test_a_masked_export_is_run_and_saved(site: Site) -> None:
    masked = site.run("column", "mask", str(site.db_id), "customers", "email", "last4").stdout
    assert "customers.email: masked LAST4 in exports" in masked
    assert "LAST4" in site.run("column", "list", str(site.db_id)).stdout
    refused = site.run("column", "mask", str(site.db_id), "customers", "nope", "FULL", ok=False)
    assert result_is_one_line_error(refused, "TableNotFound")
    refused = site.as_(
        "carl", "column", "mask", str(site.db_id), "customers", "name", "FULL", ok=False
    )
    assert "only an administrator flags sensitive columns" in refused.stderr

    order_id = site.approved_export("SELECT id, email FROM customers WHERE id <= 3", 3)
    assert "export" in site.run("order", "export", order_id, "--file-type", "csv").stdout
    site.run("jobs", "run")
    execution = as_json(site.run("order", "show", order_id))["Execution"]
    assert (execution["Kind"], execution["Status"], execution["Rows"]) == (
        "export",
        "EXPORT_SUCCESS",
        3,
    )
    followed = site.run("order", "show", order_id, "--follow").stdout.splitlines()
    assert followed[-1] == f"Ticket {order_id}: success, succeeded (3 rows)"
    saved = site.data_dir.parent / "out.zip"
    shown = site.run("order", "exported", order_id, "--save", str(saved)).stdout
    assert "EXPORT_SUCCESS" in shown and "3 rows, CSV in UTF8" in shown
    assert "masked email (LAST4) from customers.email" in shown
    with zipfile.ZipFile(saved) as zf:
        (name,) = zf.namelist()
        rows = list(csv.reader(io.StringIO(zf.read(name).decode())))
    assert rows[0] == ["id", "email"]
    assert all(r[1].startswith("*") and r[1].endswith(".com") for r in rows[1:])


def test_export_checks_its_file_type_as_execute_data_export_does(site: Site) -> None:
    order_id = site.approved_export("SELECT id FROM customers WHERE id <= 3", 3)
    refused = site.run("order", "export", order_id, "--file-type", "pdf", ok=False)
    assert result_is_one_line_error(refused, "ActionDetail.fileType: 'pdf' is not one of")
