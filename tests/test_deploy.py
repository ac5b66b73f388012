"""The deployment files agree with the code: commands, health checks, image layout, environment.

No Docker engine is needed: docker-compose.yml, the Railway files and the Dockerfile are parsed,
their commands checked against the ``mechtrade`` parser, the health path requested from the real
health server, and the image's final stage rebuilt as a plain directory and imported from.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import aiohttp
import pytest
import yaml

from ingest import config, health
from ingest.cli import build_parser
from ingest.metrics import Metrics

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
RAILWAY = {"ingester": ROOT / "railway.toml", "coordinator": ROOT / "deploy" / "railway.coordinator.toml"}
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
APP_SERVICES = ("migrate", "ingester", "coordinator", "chart", "demo")
PLATFORM_VARIABLES = {"RAILWAY_ENVIRONMENT"}  # set by Railway itself


def subcommands() -> set[str]:
    parser = build_parser()
    [commands] = [a for a in parser._actions if a.dest == "command"]
    return set(commands.choices)


def require_subcommand(name: str) -> None:
    assert name in subcommands(), f"mechtrade has no {name!r} command"


def compose_subcommand(service: dict) -> str:
    """The mechtrade subcommand a compose service runs (ENTRYPOINT mechtrade, or a shell that execs it)."""
    command = service["command"]
    if service.get("entrypoint", ["mechtrade"])[:2] == ["/bin/sh", "-c"]:
        [script] = command
        return re.search(r"exec mechtrade (\w+)", script).group(1)  # type: ignore[union-attr]
    return command[0]


def health_status(path: str) -> int:
    """Status of ``path`` on the real health server (healthy)."""

    async def go() -> int:
        runner = await health.serve(0, Metrics(), lambda: (True, {}), host="127.0.0.1")
        try:
            url = f"http://127.0.0.1:{runner.bound_port}{path}"
            async with aiohttp.ClientSession() as session, session.get(url) as response:
                return response.status
        finally:
            await runner.cleanup()

    return asyncio.run(go())


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_services_run_real_commands(name: str) -> None:
    service = COMPOSE["services"][name]
    assert service["image"] == "mechtrade:local" and service["build"] == "."
    require_subcommand(compose_subcommand(service))
    if name != "migrate":
        assert service["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
        assert service["restart"] == ("no" if name == "demo" else "unless-stopped")


def test_compose_database_and_demo_switch() -> None:
    db = COMPOSE["services"]["db"]
    assert db["image"] == "timescale/timescaledb:2.28.3-pg15"
    assert "pg_isready -h 127.0.0.1" in db["healthcheck"]["test"][1], "over TCP, not the init server's socket"
    migrate = COMPOSE["services"]["migrate"]
    assert migrate["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert migrate["command"][:2] == ["migrate", "--wait"] and migrate["restart"].startswith("on-failure")
    [script] = COMPOSE["services"]["ingester"]["command"]
    assert 'if [ -z "$$PROJECTX_USERNAME" ] || [ -z "$$PROJECTX_API_KEY" ]' in script
    assert "export MECHTRADE_DEMO=1" in script


COORDINATOR_PORT = config.Coordinator().health_port if hasattr(config, "Coordinator") else 8081


@pytest.mark.parametrize("name, variable, port", [
    ("ingester", "MECHTRADE_INGEST_HEALTH_PORT", config.Ingest().health_port),
    ("coordinator", "MECHTRADE_COORDINATOR_HEALTH_PORT", COORDINATOR_PORT),
])
def test_compose_health_checks(name: str, variable: str, port: int) -> None:
    service = COMPOSE["services"][name]
    [url] = re.findall(r"http://127\.0\.0\.1:(\d+)(/\w+)", service["healthcheck"]["test"][-1])
    assert url == (str(port), "/healthz")
    assert service["environment"][variable] == str(port)
    assert any(p.endswith(f":{port}") for p in service["ports"])
    assert health_status("/healthz") == 200


@pytest.mark.parametrize("service", sorted(RAILWAY))
def test_railway_config(service: str) -> None:
    cfg = tomllib.loads(RAILWAY[service].read_text())
    assert cfg["build"]["builder"] == "DOCKERFILE" and (ROOT / cfg["build"]["dockerfilePath"]).is_file()
    deploy = cfg["deploy"]
    program, command = deploy["startCommand"].split()
    assert program == "mechtrade" and command == {"ingester": "ingest", "coordinator": "coordinate"}[service]
    require_subcommand(command)
    assert deploy["preDeployCommand"] == ["mechtrade migrate"]
    assert deploy["restartPolicyType"] == "ON_FAILURE" and deploy["restartPolicyMaxRetries"] > 0
    assert health_status(deploy["healthcheckPath"]) == 200
    if service == "ingester":  # SIGTERM must leave the ingester time to flush before SIGKILL
        assert deploy["drainingSeconds"] > config.Ingest().shutdown_deadline_s


def test_env_example_names_every_variable_the_code_reads() -> None:
    read = set()
    for path in (ROOT / "ingest").rglob("*.py"):
        text = path.read_text()
        read |= set(re.findall(r"(?:environ|env)(?:\.get|\.setdefault)?[(\[]\s*[\"']([A-Z][A-Z0-9_]+)[\"']", text))
        read |= set(re.findall(r"[\"']([A-Z][A-Z0-9_]+)[\"'] in (?:os\.)?(?:environ|env)\b", text))
    compose_text = (ROOT / "docker-compose.yml").read_text()
    read |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", compose_text))
    assert {"DATABASE_URL", "PROJECTX_API_KEY", "MECHTRADE_DEMO", "PORT", "POSTGRES_PASSWORD"} <= read
    missing = {name for name in read - PLATFORM_VARIABLES if not re.search(rf"\b{name}\b", ENV_EXAMPLE)}
    assert not missing, f".env.example does not mention {sorted(missing)}"
    secrets = re.findall(r"^(PROJECTX_USERNAME|PROJECTX_API_KEY|POSTGRES_PASSWORD|DATABASE_URL)=(.*)$", ENV_EXAMPLE,
                         re.MULTILINE)
    assert len(secrets) == 4 and all(value == "" for _, value in secrets)


def test_image_layout_runs(tmp_path: Path) -> None:
    """Copy what the Dockerfile's final stage copies (minus .dockerignore) and run the CLI from there."""
    dockerfile = (ROOT / "Dockerfile").read_text().split("\nFROM ")[-1]
    ignored = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and line[0] != "!"]
    kept = [line[1:] for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")]
    app = tmp_path / "app"
    for src, dest in re.findall(r"^COPY (?!--)(\S+) (\S+)$", dockerfile, re.MULTILINE):
        assert src in kept or not any(src == i or src.startswith(f"{i}/") for i in ignored), f"{src} is ignored"
        target = app / dest
        if (ROOT / src).is_dir():
            shutil.copytree(ROOT / src, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / src, target)
    assert re.search(r"^ENV PATH=/opt/venv/bin:\$PATH \\\n\s+PYTHONPATH=/app", dockerfile, re.MULTILINE)
    assert "USER mechtrade" in dockerfile
    probe = (
        "import ingest, ingest.config as c, ingest.migrate as m, ingest.fake_gateway.tape as t; "
        "print(ingest.__file__); assert c.load().roots, 'no roots'; assert t.MES_5M.is_file(), t.MES_5M; "
        "assert list((m.default_sql_dir() / 'migrations').glob('*.sql'))"
    )
    env = {"PYTHONPATH": str(app), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", probe], check=False, cwd=tmp_path, env=env, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(app / "ingest" / "__init__.py")
    cli = subprocess.run([sys.executable, "-m", "ingest.cli", "--help"], check=False, cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert cli.returncode == 0 and "migrate" in cli.stdout, cli.stderr
