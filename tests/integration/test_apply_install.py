"""Acceptance 1: ``apply`` of development (SQLite) and production (PostgreSQL container, nginx
with a self-signed certificate) reaches every service healthy, and an HTTPS request through
nginx reaches the codequal stand-in reporting its database reachable and migrated. Re-apply
changes nothing and says so; a changed answer changes only what it touches; the operator
manages the result with plain ``docker compose``; ``status`` reports it."""

from __future__ import annotations

import json
import secrets
import socket
import stat
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.apply_support import Install

pytestmark = pytest.mark.integration

API_KEY = "sk-ant-test-0123456789abcdefghij"
OPENAI_KEY = "sk-openai-test-9876543210zyxwvu"


def _healthy(install: Install) -> dict[str, str]:
    return {
        c.labels["com.docker.compose.service"]: c.attrs["State"].get("Health", {}).get("Status")
        for c in install.containers()
        if c.labels.get("com.docker.compose.oneoff") != "True"
        and c.attrs["State"]["Status"] == "running"
    }


def test_production_installs_behind_nginx_with_verified_https(install: Install) -> None:
    answers = install.answers("production")
    secrets = install.secrets_file(anthropic_api_key=API_KEY, openai_api_key=OPENAI_KEY)
    run = install.apply(answers, secrets=secrets)
    assert run.exit_code == 0, run.describe()

    # every step reported, in order, and the final event carries the exit code
    started = [e["step"] for e in run.of_type("step.started")]
    assert started == [
        "prerequisites",
        "configuration",
        "containers",
        "database",
        "services",
        "verification",
        "monitoring",
    ]
    assert run.last["type"] == "run.finished" and run.last["exit_code"] == 0
    assert all({"ts", "type", "step", "message"} <= set(e) for e in run.events)

    assert _healthy(install) == dict.fromkeys(
        ("codequal", "deepwiki", "nginx", "postgres"), "healthy"
    )
    # The test's own HTTPS request, verified against the installation's certificate.
    status, body = install.https_get("/health")
    assert status == 200
    assert body["service"] == "codequal" and body["version"] == "1.0.0-test"
    assert body["database"]["kind"] == "postgres"
    assert body["database"]["reachable"] is True and body["database"]["migrated"] is True
    assert body["database"]["schema_version"] == "1"
    status, body = install.https_get("/deepwiki/health")
    assert status == 200 and body["service"] == "deepwiki"

    # the database role uses the generated password, which the stand-in connects with
    generated = json.loads((install.state / "generated-secrets.json").read_text())
    assert generated["database_password"] in (install.install_dir / ".env").read_text()
    assert install.psql("SELECT version FROM schema_migrations") == "1"

    # files: secrets 0600, the result, the log
    assert stat.S_IMODE((install.install_dir / ".env").stat().st_mode) == 0o600
    assert API_KEY in (install.install_dir / ".env").read_text()
    result = install.result()
    assert result["release"]["version"] == "1.0.0-test"
    assert result["schema_version"] == "1"
    assert result["urls"]["codequal"] == "https://codequal.test/"
    assert result["compose_project"] == install.project
    assert ".env" in result["credentials"]["service_secrets"]
    assert result["verified"]["codequal"]["database"] == {
        "reachable": True,
        "migrated": True,
        "schema_version": "1",
    }
    log = run.last["data"]["log_file"]
    assert log.startswith(str(install.state / "logs"))
    assert "run.finished" in Path(log).read_text()

    # HTTP is redirected to HTTPS by nginx
    request = urllib.request.Request("http://127.0.0.1/", headers={"Host": "codequal.test"})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(request, timeout=10)
    assert redirect.value.code in (301, 308)
    assert redirect.value.headers["Location"].startswith("https://codequal.test")

    # the operator sees and manages the project with plain docker compose
    ps = install.compose("ps", "--format", "json")
    assert ps.returncode == 0, ps.stderr
    services = {json.loads(line)["Service"] for line in ps.stdout.splitlines() if line.strip()}
    assert {"codequal", "deepwiki", "nginx", "postgres"} <= services

    # status, human and JSON
    status_run = install.run("status", "--install-dir", str(install.install_dir), "--json")
    assert status_run.exit_code == 0, status_run.describe()
    report = json.loads(status_run.stdout)
    assert report["installed"] and report["healthy"] and report["release"] == "1.0.0-test"
    assert {s["name"]: s["health"] for s in report["services"]} == _healthy(install)
    human = install.run("status", "--install-dir", str(install.install_dir))
    assert human.exit_code == 0 and "1.0.0-test" in human.stdout and "healthy" in human.stdout
    # with the Docker Engine out of reach, status says so and exits 1
    dead = install.environment(DOCKER_HOST=f"unix://{install.root / 'no-docker.sock'}")
    blind = install.run("status", "--install-dir", str(install.install_dir), "--json", env=dead)
    assert blind.exit_code == 1
    assert "cannot reach the Docker Engine" in json.loads(blind.stdout)["docker_error"]


def test_reapply_changes_nothing_and_a_changed_answer_only_what_it_touches(
    install: Install,
) -> None:
    answers = install.answers("production", providers=["anthropic"])
    secrets = install.secrets_file(anthropic_api_key=API_KEY, openai_api_key=OPENAI_KEY)
    first = install.apply(answers, secrets=secrets)
    assert first.exit_code == 0, first.describe()
    ids = {c.labels["com.docker.compose.service"]: c.id for c in install.containers()}
    files = {p: p.stat().st_mtime_ns for p in install.install_dir.rglob("*") if p.is_file()}

    again = install.apply(answers, secrets=secrets)
    assert again.exit_code == 0, again.describe()
    assert again.last["message"] == "nothing changed: the installation already matches the answers"
    skipped = {e["step"] for e in again.of_type("step.skipped")}
    assert skipped == {"configuration", "containers", "database", "services", "monitoring"}
    assert {c.labels["com.docker.compose.service"]: c.id for c in install.containers()} == ids
    rendered = {p for p in files if "state" not in p.relative_to(install.install_dir).parts}
    assert all(p.stat().st_mtime_ns == files[p] for p in rendered)

    # Adding a provider changes the services' environment (.env, docker-compose.yml):
    # codequal and deepwiki are recreated; nginx and postgres keep their containers.
    changed = install.answers("production", providers=["anthropic", "openai"])
    third = install.apply(changed, secrets=secrets)
    assert third.exit_code == 0, third.describe()
    after = {c.labels["com.docker.compose.service"]: c.id for c in install.containers()}
    assert after["nginx"] == ids["nginx"] and after["postgres"] == ids["postgres"]
    assert after["codequal"] != ids["codequal"] and after["deepwiki"] != ids["deepwiki"]
    assert {e["step"] for e in third.of_type("step.skipped")} >= {"containers", "database"}
    written = [m for m in third.step_messages("configuration") if m.startswith(("changed", "new"))]
    assert any(".env" in m for m in written)
    assert not any("nginx" in m for m in written)
    assert third.last["message"] == "installed: changed configuration, services"
    assert OPENAI_KEY in (install.install_dir / ".env").read_text()


def test_development_installs_with_sqlite(install: Install) -> None:
    answers = install.answers("development")
    run = install.apply(answers)
    assert run.exit_code == 0, run.describe()
    assert _healthy(install) == {"codequal": "healthy", "deepwiki": "healthy"}
    with urllib.request.urlopen("http://127.0.0.1:3000/health", timeout=10) as response:
        body = json.loads(response.read())
    assert body["database"]["kind"] == "sqlite"
    assert body["database"]["reachable"] is True and body["database"]["migrated"] is True
    result = install.result()
    assert result["urls"]["codequal"] == "http://localhost:3000/"
    assert result["database"]["kind"] == "sqlite" and result["schema_version"] == "1"
    again = install.apply(answers)
    assert again.exit_code == 0, again.describe()
    assert "nothing changed" in again.last["message"]


def test_monitoring_comes_with_the_answers_and_goes_with_them(install: Install) -> None:
    run = install.apply(install.answers("production", monitoring={"enabled": True}))
    assert run.exit_code == 0, run.describe()
    assert _healthy(install) == {
        "codequal": "healthy",
        "deepwiki": "healthy",
        "nginx": "healthy",
        "postgres": "healthy",
        "prometheus": "healthy",
        "grafana": "healthy",
        "loki": "healthy",
        "promtail": None,  # no health check in the release: running is ready
    }
    messages = run.step_messages("monitoring")
    assert "grafana: http://127.0.0.1:3001/api/health answers 200" in messages
    with urllib.request.urlopen("http://127.0.0.1:9090/-/healthy", timeout=10) as response:
        assert response.status == 200
    assert install.result()["urls"]["grafana"] == "http://127.0.0.1:3001/"

    off = install.apply(install.answers("production", monitoring={"enabled": False}))
    assert off.exit_code == 0, off.describe()
    assert set(_healthy(install)) == {"codequal", "deepwiki", "nginx", "postgres"}
    assert (
        next(e for e in off.of_type("step.skipped") if e["step"] == "monitoring")["message"]
        == "monitoring is turned off in the answers"
    )
    assert not [p for p in (install.install_dir / "monitoring").rglob("*") if p.is_file()]


def _host_address() -> str:
    """This machine's address on its default route (what a container reaches it by)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
        return str(probe.getsockname()[0])


@pytest.fixture
def managed_postgres(install: Install) -> Iterator[tuple[str, int, str]]:
    """A PostgreSQL server outside the installation, published on a host port: a stand-in
    for a managed database reached over the network."""
    password = "managed-" + secrets.token_urlsafe(16)
    network = install.docker.networks.create(f"managed-net-{install.project}", driver="bridge")
    container = install.docker.containers.run(
        "codequal-test/postgres:1",
        detach=True,
        name=f"managed-pg-{install.project}",
        environment={
            "POSTGRES_USER": "codequal",
            "POSTGRES_PASSWORD": password,
            "POSTGRES_DB": "codequal",
        },
        ports={"5432/tcp": ("0.0.0.0", None)},  # noqa: S104 - reached from the containers
        network=network.name,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            code, _ = container.exec_run(["pg_isready", "-h", "127.0.0.1", "-U", "codequal"])
            if code == 0:
                break
            time.sleep(0.5)
        container.reload()
        port = int(container.ports["5432/tcp"][0]["HostPort"])
        yield _host_address(), port, password
    finally:
        container.remove(force=True, v=True)
        network.remove()


def test_production_with_a_managed_database_over_the_network(
    install: Install, managed_postgres: tuple[str, int, str]
) -> None:
    host, port, password = managed_postgres
    answers = install.answers(
        "production",
        database={"kind": "postgres", "managed": True, "host": host, "port": port},
    )
    secrets_path = install.secrets_file(database_password=password)
    run = install.apply(answers, secrets=secrets_path)
    assert run.exit_code == 0, run.describe()
    assert f"waiting for the managed PostgreSQL at {host}:{port}" in run.step_messages("database")
    assert "postgres" not in install.containers_by_service()
    status, body = install.https_get("/health")
    assert status == 200
    assert body["database"]["reachable"] is True and body["database"]["migrated"] is True
    assert install.result()["database"] == {
        "kind": "postgres",
        "managed": True,
        "host": host,
        "name": "codequal",
    }
    again = install.apply(answers, secrets=secrets_path)
    assert again.exit_code == 0 and "nothing changed" in again.last["message"]
