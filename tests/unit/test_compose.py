"""docker-compose.yml: Docker does not run here, so check the wiring by reading the file."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def _depends(service: dict) -> dict[str, str]:
    dep = service.get("depends_on") or {}
    if isinstance(dep, list):
        return {name: "service_started" for name in dep}
    return {name: (cond or {}).get("condition", "service_started") for name, cond in dep.items()}


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _ports(service: dict) -> set[str]:
    return {str(p) for p in service.get("ports") or []}


def _command(service: dict) -> list[str]:
    cmd = service.get("command")
    return cmd.split() if isinstance(cmd, str) else list(cmd or [])


def test_the_services_and_their_images(services):
    assert {"postgres", "temporal", "temporal-ui", "api", "worker"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["temporal"]["image"].startswith("temporalio/auto-setup:")
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")
    for name in ("api", "worker"):
        assert services[name]["build"] in (".", {"context": "."}), name
    assert services["api"].get("image") == services["worker"].get("image"), "api and worker share one image"


def test_postgres_is_healthchecked_and_temporal_waits_for_it(services):
    test = services["postgres"]["healthcheck"]["test"]
    assert "pg_isready" in " ".join(test if isinstance(test, list) else [test])
    assert _depends(services["temporal"])["postgres"] == "service_healthy"
    env = _env(services["temporal"])
    assert env["DB"] == "postgres12"
    assert env["POSTGRES_SEEDS"] == "postgres"
    assert env["DB_PORT"] == "5432"
    assert env["POSTGRES_USER"] == _env(services["postgres"])["POSTGRES_USER"]
    assert "7233:7233" in _ports(services["temporal"])


def test_the_ui_talks_to_temporal(services):
    ui = services["temporal-ui"]
    assert _env(ui)["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert "8080:8080" in _ports(ui)
    assert "temporal" in _depends(ui)


@pytest.mark.parametrize("name,command", [("api", ["yingji", "api"]), ("worker", ["yingji", "worker"])])
def test_api_and_worker_are_wired_by_the_same_env(services, name, command):
    svc = services[name]
    assert _command(svc) == command
    env = _env(svc)
    url = env["YINGJI_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://") and re.search(r"@postgres:5432/yingji$", url), url
    assert env["YINGJI_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["YINGJI_API_HOST"] == "0.0.0.0"
    deps = _depends(svc)
    assert deps["postgres"] == "service_healthy"
    assert "temporal" in deps
    # the database name and user agree with the postgres service
    pg = _env(services["postgres"])
    assert f"//{pg['POSTGRES_USER']}:" in url and url.endswith("/" + pg["POSTGRES_DB"])


def test_api_port_and_worker_exposes_none(services):
    assert "8000:8000" in _ports(services["api"])
    assert not _ports(services["worker"])
    assert _env(services["api"]).get("YINGJI_API_PORT", "8000") == "8000"


def test_env_names_are_real_settings(services):
    from config import Settings

    known = {f"YINGJI_{name.upper()}" for name in Settings.model_fields}
    for name in ("api", "worker"):
        unknown = {k for k in _env(services[name]) if k.startswith("YINGJI_")} - known
        assert not unknown, f"{name}: not settings: {unknown}"


def test_the_image_runs_the_api_by_default():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.M)
    assert re.search(r'^CMD \["yingji", "api"\]', dockerfile, re.M)
    assert "pip install" in dockerfile
