"""`opendms worker` refuses, in one line, what it cannot do."""

from __future__ import annotations

from pathlib import Path

from tests.cli_support import opendms


def test_a_worker_needs_a_broker(tmp_path: Path) -> None:
    opendms("init", "--json", data_dir=tmp_path)
    done = opendms("worker", data_dir=tmp_path, ok=False)
    assert done.returncode != 0
    assert "needs a broker: set OPENDMS_BROKER_URL" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_worker_names_the_queues_it_knows(tmp_path: Path) -> None:
    opendms("init", "--json", data_dir=tmp_path)
    done = opendms("worker", "--queues", "jobs,emails", data_dir=tmp_path, ok=False)
    assert done.returncode != 0
    assert "--queues takes jobs, uploads or both, not emails" in done.stderr, done.stderr
