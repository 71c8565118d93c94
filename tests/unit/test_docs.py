"""The README is a contract: its command list is the CLI's command tree, and its settings
table is every setting there is."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from opendms.cli import app
from opendms.config import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _cli_commands() -> set[str]:
    found: set[str] = set()

    def walk(command: object, path: tuple[str, ...]) -> None:
        subs = getattr(command, "commands", None)
        if not subs:
            found.add(" ".join(path))
            return
        for name, sub in subs.items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


def _readme_commands() -> set[str]:
    """``opendms order create|list`` lines of the README's command list, spelled out."""
    block = README.split("## Command line", 1)[1].split("```", 2)[1]
    found: set[str] = set()
    for line in block.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "opendms":
            continue
        path = []
        for word in words[1:]:
            if not re.fullmatch(r"[a-z][a-z|-]*", word):
                break  # an option, an argument (FILE) or a comment
            path.append(word)
        *groups, last = path
        found.update(" ".join((*groups, leaf)) for leaf in last.split("|"))
    return found


def test_the_readme_lists_every_command_and_no_other() -> None:
    cli, readme = _cli_commands(), _readme_commands()
    assert sorted(cli - readme) == [], "commands the README's list leaves out"
    assert sorted(readme - cli) == [], "commands the README lists that do not exist"


def test_every_setting_is_in_the_readme_table_and_every_row_is_a_setting() -> None:
    rows = set(re.findall(r"^\| `(OPENDMS_[A-Z0-9_]+)` \|", README, re.MULTILINE))
    settings = {f"OPENDMS_{name.upper()}" for name in Settings.model_fields}
    assert sorted(settings - rows) == [], "settings the README's table leaves out"
    assert sorted(rows - settings) == [], "rows of the README's table that are no setting"
    named = set(re.findall(r"OPENDMS_[A-Z0-9_]+", README))
    assert sorted(named - settings - {"OPENDMS_TARGET_PASSWORD"}) == []
