"""Browser fixtures: Debian's Chromium driven by Playwright for Python (launched by path; no
browser is ever downloaded), against ``opendms serve --demo`` started on a fresh data
directory exactly as the README's serve command starts it, with the credentials it prints."""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.conftest import require_service
from tests.e2e.conftest import OPENDMS, _child_env, free_port, stop_server, wait_until_listening

CHROMIUM = Path("/usr/bin/chromium")
# The flags a headless Chromium needs on a machine with no display and a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROW = re.compile(r"^[│|]\s*(\S+)\s*[│|]\s*(.*?)\s*[│|]\s*$")


@dataclass(frozen=True)
class Person:
    uid: str
    username: str
    password: str


@dataclass(frozen=True)
class DemoServer:
    data_dir: Path
    port: int
    console: str  # the printed console URL
    admin: Person
    dba: Person
    proc: subprocess.Popen[bytes]
    stdout: str

    def url(self, path: str) -> str:
        return self.console.rstrip("/") + path


def printed_tables(text: str) -> list[dict[str, str]]:
    """The key/value tables ``opendms serve`` prints, each as a dict."""
    tables: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        found = ROW.match(line.strip())
        if found:
            current[found.group(1)] = found.group(2)
        elif current and line.strip().startswith(("└", "+")):
            tables.append(current)
            current = {}
    return tables


@contextmanager
def demo_server() -> Iterator[DemoServer]:
    """``opendms serve --demo`` on a fresh data directory and a free port."""
    with tempfile.TemporaryDirectory(prefix="opendms-web-") as tmp:
        data_dir, port = Path(tmp) / "data", free_port()
        out_path, err_path = Path(tmp) / "stdout.log", Path(tmp) / "stderr.log"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            proc = subprocess.Popen(
                [OPENDMS, "serve", "--demo", "--data-dir", str(data_dir), "--port", str(port)],
                stdout=out,
                stderr=err,
                env=_child_env(),
                cwd=tmp,
            )
        try:
            wait_until_listening(proc, port, err_path)
            printed = out_path.read_text()
            admin, dba = printed_tables(printed)[:2]
            yield DemoServer(
                data_dir,
                port,
                admin["Console"],
                Person(admin["Uid"], admin["Username"], admin["Password"]),
                Person(dba["Uid"], dba["Username"], dba["Password"]),
                proc,
                printed,
            )
        finally:
            stop_server(proc)


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoServer]:
    with demo_server() as server:
        yield server


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Per module, not per session: Playwright's sync API keeps an asyncio loop running
    while it is open, and a test of another module that the same worker runs next (xdist
    interleaves modules) would find ``asyncio.run`` refused."""
    if not CHROMIUM.exists():
        require_service("Chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) at a laptop's width."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, demo: DemoServer, who: Person) -> None:
    """Through the sign-in form, as a person would."""
    page.goto(demo.console)
    page.get_by_label("Username").fill(who.username)
    page.get_by_label("Password").fill(who.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/console/$"))
