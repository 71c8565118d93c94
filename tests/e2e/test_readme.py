"""The README's walkthrough, run as written: its first command (``python3 dev.py serve``) on
a fresh data directory, then its command-line block in a second shell, each command's
outcome checked, and the demo database changed as the ticket said."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, _child_env, free_port, stop_server, wait_until_listening
from tests.e2e.readme_blocks import block

pytestmark = [pytest.mark.e2e]


def test_the_two_commands_list_serve_first() -> None:
    commands = [
        line.split("#", 1)[0].strip() for line in block("## Two commands", "bash").splitlines()
    ]
    assert commands == ["python3 dev.py serve", "python3 dev.py test"]


def test_the_walkthrough_works_as_written() -> None:
    walkthrough = block("A first ticket against the demo target", "bash")
    design = block("### Schema changes", "bash")  # it goes on from there
    with tempfile.TemporaryDirectory(prefix="opendms-readme-") as tmp:
        port = free_port()
        env = _child_env({"OPENDMS_DATA_DIR": str(Path(tmp) / "data"), "OPENDMS_PORT": str(port)})
        log = Path(tmp) / "serve.log"
        with log.open("wb") as out:  # the README's first command, in the first terminal
            server = subprocess.Popen(
                ["python3", "dev.py", "serve"], cwd=ROOT, env=env, stdout=out, stderr=out
            )
        try:
            wait_until_listening(server, port, log)
            printed = log.read_text(errors="replace")
            assert "demo-dba" in printed and "AccessKeySecret" in printed, printed
            shell = subprocess.run(  # the walkthrough, in a second terminal in the same folder
                ["bash", "-e", "-o", "pipefail", "-c", walkthrough + design],
                check=False,
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
        finally:
            stop_server(server)
        said = shell.stdout + shell.stderr
        assert shell.returncode == 0, said
        for outcome in (
            r'"OrderId": 1, "StatusCode": "new"',  # order create
            r"Ticket 1: precheck_success",  # order precheck --wait
            r"ROW_CHECK\s*│\s*SUCCESS",
            r"Ticket 1: workflow \d+, template DBA",  # order submit
            r"DBA\s*│\s*AUDITING",  # order approvals: the DBA node waits
            r"Ticket 1 is Approved",  # order approve --as demo-dba
            r"Ticket 1: success, succeeded \(1 row\)",  # order execute --follow
            r'"StatusCode": "success"',  # order show
            r'"OrderId": 2, "StatusCode": "new"',  # the design's ticket
            r"Ticket 2: compared; stages: main@\S+ PENDING",  # design update --wait
            r"Ticket 2: new, succeeded",  # design run --follow: the base, before approval
            r"Ticket 2 is success",  # order approve: then done, every stage having it
            r"EQUAL",  # design show
        ):
            assert re.search(outcome, said), (outcome, said)
        demo = Path(tmp) / "data" / "targets" / "demo-target.db"
        with sqlite3.connect(demo) as db:
            assert db.execute("SELECT status FROM orders WHERE id = 7").fetchone() == ("paid",)
            columns = [r[1] for r in db.execute("PRAGMA table_info(customers)")]
            assert "nickname" in columns
