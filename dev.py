#!/usr/bin/env python3
"""Set-up and the two everyday commands, needing nothing but Python 3.11+ and the registries.

python3 dev.py serve [opendms serve flags]   install, then run OpenDMS with the demo target
python3 dev.py test  [pytest args]           install, check services, ruff, mypy, pytest
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Services the test suite needs: name -> (port, command that starts it on this kind of machine)
SERVICES = {
    "PostgreSQL": (
        5432,
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | head -n1) main start",
    ),
    "MariaDB": (
        3306,
        "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
    ),
    # the brokers of the scale-out tests (opendms worker)
    "Redis": (6379, "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''"),
    "RabbitMQ": (5672, "rabbitmq-server -detached"),
}


def say(msg: str) -> None:
    print(f"[dev] {msg}", flush=True)


def run(*cmd: str | Path, **kw: object) -> None:
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kw)  # type: ignore[call-overload]


def ensure_venv(extras: str) -> None:
    """Install opendms (with ``extras``) into .venv unless an install of this pyproject.toml
    with those extras, or more, is already there: serve after test installs nothing."""
    if not (BIN / "python").exists():
        say("creating .venv")
        run(sys.executable, "-m", "venv", VENV)
        run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    stamp = VENV / f".installed-{digest}"  # holds the extras installed, e.g. "dev"
    want = {extras.strip("[]")} - {""}
    if stamp.exists() and want <= set(stamp.read_text().split()):
        return
    had = {x for old in VENV.glob(".installed-*") for x in old.read_text().split()}
    union = sorted(want | had)  # what an earlier install had stays
    spec = f".[{','.join(union)}]" if union else "."
    say(f"installing opendms{spec[1:]} into .venv")
    run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", spec)
    for old in VENV.glob(".installed-*"):
        old.unlink()
    stamp.write_text(" ".join(union))


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def ensure_services() -> list[str]:
    """Start what is down; return the names still missing (fatal in CI)."""
    missing = []
    for name, (port, start) in SERVICES.items():
        if port_open(port):
            continue
        say(f"{name} is not up on 127.0.0.1:{port}; starting it")
        subprocess.run(start, shell=True, check=False)
        for _ in range(60):
            if port_open(port):
                break
            time.sleep(0.5)
        else:
            missing.append(name)
    return missing


CHROMIUM = Path("/usr/bin/chromium")  # Debian's; Playwright launches it by path (no download)


def ensure_chromium() -> bool:
    """Debian's Chromium for the console's browser tests, installed when missing."""
    if CHROMIUM.exists():
        return True
    say("chromium is not installed; installing Debian's package")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "-q", "chromium"]
    if subprocess.run(install, check=False, env=env).returncode != 0:
        subprocess.run([*sudo, "apt-get", "update", "-q"], check=False, env=env)
        subprocess.run(install, check=False, env=env)
    return CHROMIUM.exists()


def serve(args: list[str]) -> None:
    ensure_venv("")
    os.execv(BIN / "opendms", [str(BIN / "opendms"), "serve", "--demo", *args])


def test(args: list[str]) -> None:
    ensure_venv("[dev]")
    missing = ensure_services()
    if not ensure_chromium():
        missing.append("Chromium")
    if missing:
        if IN_CI:
            sys.exit(f"[dev] FATAL: required service(s) not running: {', '.join(missing)}")
        say(f"WARNING: {', '.join(missing)} not running; their tests will be skipped")
        os.environ["OPENDMS_TEST_MISSING"] = ",".join(missing)
    say("ruff")
    run(BIN / "ruff", "check", "src", "tests", "bench", "dev.py")
    say("mypy")
    run(BIN / "mypy")
    say("import layers")
    run(BIN / "lint-imports", "--no-cache")
    say("pytest")
    # loadgroup: tests marked with one xdist_group run on one worker, one after another
    pytest = [str(BIN / "pytest"), "-n", "2", "--dist", "loadgroup", *args]
    result = subprocess.run(pytest, cwd=ROOT, check=False)
    sys.exit(result.returncode)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ("serve", "test"):
        sys.exit(__doc__)
    command, rest = sys.argv[1], sys.argv[2:]
    try:
        serve(rest) if command == "serve" else test(rest)
    except subprocess.CalledProcessError as exc:
        sys.exit(f"[dev] failed: {' '.join(map(str, exc.cmd))} (exit {exc.returncode})")


if __name__ == "__main__":
    main()
