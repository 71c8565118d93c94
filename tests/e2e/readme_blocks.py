"""The README's fenced blocks, as the tests that run them as written read them."""

from __future__ import annotations

from tests.e2e.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def block(after: str, language: str) -> str:
    """The first fenced block of ``language`` after the line starting with ``after``."""
    rest = README.split(f"\n{after}", 1)[1]
    return rest.split(f"```{language}\n", 1)[1].split("```", 1)[0]
