"""``opendms jobs run``: what it says per job."""

from __future__ import annotations

from tests.unit.cli.site import Site


def test_jobs_run_says_what_each_job_does(site: Site) -> None:
    order_id = site.create("DC_COMMON", "UPDATE orders SET status = 'paid' WHERE id = 7")
    ran = site.run("jobs", "run").stdout.splitlines()
    assert any(f"precheck of ticket {order_id}: started" in ln for ln in ran), ran
    assert any(f"precheck of ticket {order_id}: succeeded" in ln for ln in ran), ran
    assert ran[-1] == "1 job run"
