"""deploy/ is a contract too: its systemd units and compose file start only commands the CLI
has, with options it knows and settings that exist; the compose file is two API processes and
two workers on one store, broker, master key and volume of files, started in order and
behind a balancer that passes the Host header on (images cannot be pulled here: the file is
read, not run)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
import yaml

from opendms.cli import app
from opendms.config import Settings
from tests.cli_support import opendms

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = {"opendms-api@.service": "8081", "opendms-worker@.service": "1"}  # unit: an instance
ENV_FILE = "/etc/opendms/opendms.env"
SETTINGS = {f"OPENDMS_{name.upper()}" for name in Settings.model_fields}
SHARED = ("OPENDMS_DATABASE_URL", "OPENDMS_BROKER_URL", "OPENDMS_SECRET_KEY", "OPENDMS_FILES_DIR")
APIS, WORKERS = ("api-1", "api-2"), ("worker-1", "worker-2")


def cli_accepts(argv: list[str]) -> None:
    """``opendms ARGV`` names a command (not a group) of the CLI with options it knows."""
    command = typer.main.get_command(app)
    words = []
    for word in argv:
        subs = getattr(command, "commands", None)
        if not subs:
            break
        assert word in subs, f"opendms {' '.join([*words, word])}: no such command"
        command, words = subs[word], [*words, word]
    assert not getattr(command, "commands", None), f"opendms {' '.join(words)} is a group"
    parsed = opendms(*argv, "--help", ok=False)  # parses every option, runs nothing
    assert parsed.returncode == 0, f"opendms {shlex.join(argv)}: {parsed.stderr}"


# ------------------------------------------------------------------ systemd


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections: key -> its values, in order (a key may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in (DEPLOY / "systemd" / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, value = line.split("=", 1)
        current.setdefault(key, []).append(value)
    return sections


def one(section: dict[str, list[str]], key: str) -> str:
    (value,) = section[key]
    return value


def env_example() -> dict[str, str]:
    text = (DEPLOY / "systemd" / "opendms.env.example").read_text()
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return {key: value for key, value in pairs}


def longest_step() -> float:
    """How long a stopping worker may need to end its job's step: the step ends at its time
    slice, unless a statement in it waits for a row lock first (the defaults)."""
    fields = Settings.model_fields
    return float(fields["job_slice_seconds"].default) + fields["lock_wait_seconds"].default


def seconds(text: str) -> float:
    """A systemd or compose duration: 300s, 5m, 60."""
    found = re.fullmatch(r"(\d+)\s*(s|m|min)?", text)
    assert found, text
    return int(found.group(1)) * (60 if found.group(2) in ("m", "min") else 1)


@pytest.mark.parametrize(("name", "instance"), UNITS.items())
def test_a_unit_starts_a_command_the_cli_has(name: str, instance: str) -> None:
    service = unit(name)["Service"]
    program, *argv = shlex.split(one(service, "ExecStart").replace("%i", instance))
    assert Path(program).name == "opendms"
    cli_accepts(argv)
    assert one(service, "EnvironmentFile") == ENV_FILE


@pytest.mark.parametrize("name", UNITS)
def test_a_unit_is_hardened_and_may_write_only_its_directories(name: str) -> None:
    sections = unit(name)
    service = sections["Service"]
    hardening = {
        "User": "opendms",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "Restart": "on-failure",
        "KillSignal": "SIGTERM",
    }
    assert {key: one(service, key) for key in hardening} == hardening
    env = env_example()
    writable = " ".join(service["ReadWritePaths"]).split()
    assert sorted(writable) == sorted([env["OPENDMS_DATA_DIR"], env["OPENDMS_FILES_DIR"]])
    assert one(service, "StateDirectory") == Path(env["OPENDMS_DATA_DIR"]).name
    assert one(sections["Unit"], "RequiresMountsFor") == env["OPENDMS_FILES_DIR"]


def test_a_stopping_worker_has_time_to_end_its_step() -> None:
    service = unit("opendms-worker@.service")["Service"]
    assert seconds(one(service, "TimeoutStopSec")) >= 2 * longest_step()


def test_the_env_example_sets_real_settings_to_valid_values() -> None:
    env = env_example()
    assert sorted(set(env) - SETTINGS) == [], "no such setting"
    production = {
        "OPENDMS_DATABASE_URL",
        "OPENDMS_BROKER_URL",
        "OPENDMS_SECRET_KEY",
        "OPENDMS_DATA_DIR",
        "OPENDMS_FILES_DIR",
        "OPENDMS_HOST",
        "OPENDMS_PUBLIC_URL",
        "OPENDMS_LOG_FORMAT",
    }
    assert sorted(production - set(env)) == []
    settings = Settings(**{key.removeprefix("OPENDMS_").lower(): v for key, v in env.items()})
    assert settings.metadata_url.startswith("postgresql+psycopg://")
    assert settings.log_format == "json"
    assert settings.runner_threads == 0  # beside the broker, the API processes run no jobs


def test_the_units_pass_systemd_analyze(tmp_path: Path) -> None:
    """systemd's own reading of the units (an unknown or misspelled key is a warning), with
    ExecStart's program this environment's opendms."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    installed = Path(sys.executable).parent / "opendms"
    instances = []
    for name, instance in UNITS.items():
        text = (DEPLOY / "systemd" / name).read_text()
        program = shlex.split(one(unit(name)["Service"], "ExecStart"))[0]
        (tmp_path / name).write_text(text.replace(program, str(installed)))
        started = tmp_path / name.replace("@.", f"@{instance}.")
        started.symlink_to(tmp_path / name)
        instances.append(str(started))
    done = subprocess.run(
        [analyze, "verify", "--man=no", *instances],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


# ------------------------------------------------------------------ compose


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def interpolated(text: str) -> str:
    """``text`` as compose makes it, each ``${NAME…}`` given the value ``<NAME>``."""
    return re.sub(r"\$\{(\w+)(?::?[-?][^}]*)?\}", r"<\1>", text)


def test_compose_runs_two_apis_and_two_workers_on_one_store_broker_key_and_files() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", "init", *APIS, *WORKERS, "lb"}
    ours = [*APIS, *WORKERS, "init"]
    for name in APIS:
        assert services[name]["command"][0] == "serve"
    for name in WORKERS:
        assert services[name]["command"] == ["worker"]
    for name in (*APIS, *WORKERS):
        cli_accepts(services[name]["command"])
    for each in services["init"]["command"][0].split("||"):  # sh -c "… || …"
        program, *argv = shlex.split(each)
        assert program == "opendms"
        cli_accepts(argv)

    envs = [services[name]["environment"] for name in ours]
    for env in envs:
        assert sorted(set(env) - SETTINGS) == [], "no such setting"
    for key in SHARED:
        assert len({env[key] for env in envs}) == 1, f"{key} differs between processes"
    env = envs[0]
    store = urlsplit(interpolated(env["OPENDMS_DATABASE_URL"]))
    broker = urlsplit(env["OPENDMS_BROKER_URL"])
    pg = services["postgres"]["environment"]
    assert store.scheme == "postgresql+psycopg"
    assert (store.hostname, store.username, store.path) == (
        "postgres",
        pg["POSTGRES_USER"],
        f"/{pg['POSTGRES_DB']}",
    )
    assert store.password == interpolated(pg["POSTGRES_PASSWORD"]) == "<POSTGRES_PASSWORD>"
    assert (broker.scheme, broker.hostname) == ("redis", "redis")
    # the master key comes from deploy/.env, and compose refuses to start without it
    assert re.fullmatch(r"\$\{OPENDMS_SECRET_KEY:\?[^}]+\}", env["OPENDMS_SECRET_KEY"])
    assert env["OPENDMS_LOG_FORMAT"] == "json"

    files = f"files:{env['OPENDMS_FILES_DIR']}"
    assert "files" in compose()["volumes"]
    for name in ours:
        assert files in services[name]["volumes"], name


def test_compose_starts_in_order_and_checks_health() -> None:
    services = compose()["services"]
    for name in ("postgres", "redis", *APIS):
        assert services[name]["healthcheck"]["test"], name
    assert services["init"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in (*APIS, *WORKERS):
        assert services[name]["depends_on"] == {
            "init": {"condition": "service_completed_successfully"},
            "redis": {"condition": "service_healthy"},
        }, name
    assert services["lb"]["depends_on"] == {name: {"condition": "service_healthy"} for name in APIS}
    for name in APIS:  # ready: the port serve listens on answers /readyz
        command = services[name]["command"]
        port = command[command.index("--port") + 1]
        assert f"http://127.0.0.1:{port}/readyz" in " ".join(services[name]["healthcheck"]["test"])
    for name in WORKERS:
        assert seconds(services[name]["stop_grace_period"]) >= 2 * longest_step(), name


def test_the_balancer_passes_both_apis_and_the_host_header() -> None:
    services = compose()["services"]
    assert "./nginx.conf:/etc/nginx/conf.d/default.conf:ro" in services["lb"]["volumes"]
    conf = (DEPLOY / "nginx.conf").read_text()
    upstream = re.search(r"upstream opendms \{(.*?)\}", conf, re.S)
    assert upstream
    servers = set(re.findall(r"server (\S+?)(?:\s|;)", upstream.group(1)))
    ports = {name: services[name]["command"][-1] for name in APIS}
    assert servers == {f"{name}:{port}" for name, port in ports.items()}
    assert "proxy_pass http://opendms;" in conf
    assert "proxy_set_header Host $http_host;" in conf  # signatures cover the Host header


def test_the_image_installs_the_project_and_runs_opendms() -> None:
    services = compose()["services"]
    build = services["api-1"]["build"]
    dockerfile = (DEPLOY / build["context"] / build["dockerfile"]).resolve()
    assert dockerfile == DEPLOY / "Dockerfile"
    text = dockerfile.read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert re.search(r"^RUN pip install \.", text, re.M)
    assert re.search(r'^ENTRYPOINT \["opendms"\]$', text, re.M)
    assert re.search(r"^USER opendms$", text, re.M)
    files_dir = services["api-1"]["environment"]["OPENDMS_FILES_DIR"]
    assert f"OPENDMS_FILES_DIR={files_dir}" in text  # the volume is where the image writes
    for name in (*APIS, *WORKERS, "init"):
        assert services[name]["build"] == build and services[name]["image"] == "opendms:local"
