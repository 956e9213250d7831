"""docker-compose.yml: Docker does not run here, so check the wiring by reading the file."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


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


def _published(entry: str) -> tuple[str, str]:
    """(host address or "" for every interface, host port) of a `ports` entry."""
    parts = entry.split(":")
    return (parts[0], parts[1]) if len(parts) == 3 else ("", parts[0])


def test_the_services_and_their_images(services):
    assert {"postgres", "temporal-schema", "temporal", "temporal-namespace", "temporal-ui", "api", "proxy",
            "worker"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:16")
    # temporalio/auto-setup is deprecated upstream: the server image, its schema set up by the admin tools
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert not any("auto-setup" in str(svc.get("image")) for svc in services.values())
    version = services["temporal"]["image"].split(":")[1]
    for job in ("temporal-schema", "temporal-namespace"):
        assert services[job]["image"] == f"temporalio/admin-tools:{version}", job
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")
    for name in ("api", "worker"):
        assert services[name]["build"] in (".", {"context": "."}), name
    assert services["api"].get("image") == services["worker"].get("image"), "api and worker share one image"


def test_temporal_schema_is_set_up_before_the_server_starts(services):
    test = services["postgres"]["healthcheck"]["test"]
    assert "pg_isready" in " ".join(test if isinstance(test, list) else [test])
    schema = services["temporal-schema"]
    assert _depends(schema)["postgres"] == "service_healthy"
    script = " ".join(_command(schema))
    for db in ("temporal", "temporal_visibility"):
        assert f"--db {db} setup-schema" in script and f"--db {db} update-schema" in script, db
    assert _depends(services["temporal"])["temporal-schema"] == "service_completed_successfully"
    env = _env(services["temporal"])
    assert env["DB"] == "postgres12" and env["POSTGRES_SEEDS"] == "postgres" and env["DB_PORT"] == "5432"
    assert env["POSTGRES_USER"] == _env(services["postgres"])["POSTGRES_USER"]
    assert "namespace create" in " ".join(_command(services["temporal-namespace"]))
    assert _depends(services["temporal-namespace"])["temporal"] == "service_healthy"


def test_temporal_is_healthchecked_and_what_needs_it_waits(services):
    check = services["temporal"]["healthcheck"]
    assert "7233" in " ".join(check["test"]) and check.get("retries", 3) >= 10
    for name in ("api", "worker", "temporal-ui"):
        assert _depends(services[name])["temporal"] == "service_healthy", name
    for name in ("api", "worker"):
        assert _depends(services[name])["temporal-namespace"] == "service_completed_successfully", name


def test_only_the_proxy_listens_on_every_interface(services):
    """Temporal's gRPC port and its UI have no login: 127.0.0.1 only. The API replicas publish nothing."""
    assert "127.0.0.1:7233:7233" in _ports(services["temporal"])
    assert "127.0.0.1:8080:8080" in _ports(services["temporal-ui"])
    for name, svc in services.items():
        for entry in _ports(svc):
            host, _ = _published(entry)
            assert host == "127.0.0.1" or name == "proxy", f"{name} publishes {entry} on every interface"


def test_the_ui_talks_to_temporal(services):
    assert _env(services["temporal-ui"])["TEMPORAL_ADDRESS"] == "temporal:7233"


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


def test_two_api_replicas_behind_one_proxy(services, compose):
    api, proxy = services["api"], services["proxy"]
    assert api.get("deploy", {}).get("replicas", 1) >= 2 and services["worker"].get("deploy", {}).get("replicas", 1) >= 2
    assert not _ports(api), "a fixed host port allows one replica only"
    assert "container_name" not in api and "container_name" not in services["worker"]
    assert "8000" in {str(p) for p in api.get("expose", [])}
    assert _env(api).get("YINGJI_API_PORT", "8000") == "8000"
    assert "8000:8000" in _ports(proxy) and _depends(proxy)["api"] == "service_healthy"
    [cfg] = proxy["configs"]
    caddyfile = compose["configs"][cfg["source"]]["content"]
    assert cfg["target"] == "/etc/caddy/Caddyfile"
    assert re.search(r"dynamic a \{\s*name api\s*port 8000", caddyfile), caddyfile  # every replica's address
    assert not _ports(services["worker"])


def test_postgres_connections_fit_two_workers_two_apis_and_temporal(services):
    """The budget documented in the compose file and the README, recomputed from the settings in it."""
    from config import Settings

    cmd = " ".join(_command(services["postgres"]))
    max_connections = int(re.search(r"max_connections=(\d+)", cmd).group(1))
    per_process = {}
    for name in ("api", "worker"):
        env = _env(services[name])
        defaults = Settings.model_fields
        pool = int(env.get("YINGJI_DB_POOL_SIZE", defaults["db_pool_size"].default))
        overflow = int(env.get("YINGJI_DB_MAX_OVERFLOW", defaults["db_max_overflow"].default))
        per_process[name] = pool + overflow
    replicas = {name: services[name]["deploy"]["replicas"] for name in ("api", "worker")}
    yingji = sum(per_process[n] * replicas[n] for n in replicas) + replicas["api"]  # + each API's scheduler lock
    t = _env(services["temporal"])
    temporal = int(t["SQL_MAX_CONNS"]) + int(t["SQL_VIS_MAX_CONNS"])
    reserved = 3 + 2 + 3  # superuser_reserved_connections, the migrate job, an operator's psql or two
    assert yingji + temporal + reserved <= max_connections, (yingji, temporal, reserved, max_connections)
    readme = (ROOT / "README.md").read_text()
    assert f"max_connections={max_connections}" in readme or f"max_connections = {max_connections}" in readme


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


def test_the_api_trusts_forwarded_addresses_from_the_compose_network_only(services, compose):
    """Rate limits per client address need the client's address, not the proxy's; but a header anyone
    can send counts only from the proxy's network (never `*`)."""
    import ipaddress

    trusted = _env(services["api"])["YINGJI_TRUSTED_PROXIES"]
    default = re.fullmatch(r"\$\{YINGJI_TRUSTED_PROXIES:-(.+)\}", trusted).group(1)
    [subnet] = [c["subnet"] for c in compose["networks"]["default"]["ipam"]["config"]]
    assert ipaddress.ip_network(default) == ipaddress.ip_network(subnet)
    assert "FORWARDED_ALLOW_IPS" not in _env(services["api"])
