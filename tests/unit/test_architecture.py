"""docs/architecture.md is held to the code: its layer table to the import contract that
lint-imports enforces, every package to a row, and every module it names to a file."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
PACKAGE = ROOT / "src" / "opendms"


def _contract_layers() -> list[set[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (layers,) = (
        c for c in config["tool"]["importlinter"]["contracts"] if c.get("containers") == ["opendms"]
    )
    return [{name.strip() for name in line.split("|")} for line in layers["layers"]]


def _doc_layers() -> list[set[str]]:
    table = DOC.split("<!-- layers:", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "`" in line]
    return [set(re.findall(r"`([\w.]+)`", row.split("|")[2])) for row in rows]


def test_the_layer_table_is_the_import_contract() -> None:
    assert _doc_layers() == _contract_layers()


def test_every_package_has_a_row() -> None:
    named = set().union(*_doc_layers())
    found = {
        p.stem if p.suffix == ".py" else p.name
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()
    }
    assert found == named


def test_every_module_the_document_names_exists() -> None:
    named = set(re.findall(r"`([a-z_]+(?:/[a-z_]+)+\.py)", DOC))
    assert named, "the document names no module"
    missing = sorted(
        n for n in named if not ((ROOT if n.startswith("tests/") else PACKAGE) / n).is_file()
    )
    assert not missing, f"docs/architecture.md names modules that are not there: {missing}"
