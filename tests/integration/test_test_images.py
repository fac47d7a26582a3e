"""The locally built test images and the registry fixture do, for real, what the suite relies on."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from installer.release import HealthCheck, load_release
from tests.support import TEST_RELEASES
from tests.support.images import (
    ALL_IMAGES,
    BUSYBOX,
    NGINX,
    POSTGRES,
    STANDIN_1,
    BuildReport,
    ensure_test_images,
)
from tests.support.registry import LocalRegistry

pytestmark = pytest.mark.integration

TEST_LABEL = "org.codequal.test.owner"
# scripts/test removes what a test run that died left behind, by this pid.
PID_LABEL = "org.codequal.test.pid"


def http_get(url: str, timeout: float = 5) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http only
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def published_port(container: Any, port: int) -> int:
    container.reload()
    return int(container.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"][0]["HostPort"])


def main_process_uid(container: Any) -> int:
    """Real uid of the container's PID 1, read from /proc (works whatever user exec runs as)."""
    result = container.exec_run(["cat", "/proc/1/status"], user="0")
    for line in result.output.decode().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line in /proc/1/status")


class Containers:
    """Starts containers and networks for one test and removes exactly those afterwards."""

    def __init__(self, client: Any, owner: str) -> None:
        self.client = client
        self.owner = owner
        self.containers: list[Any] = []
        self.networks: list[Any] = []
        self.labels = {TEST_LABEL: owner, PID_LABEL: str(os.getpid())}

    def network(self) -> str:
        name = f"cqtest-{secrets.token_hex(4)}"
        self.networks.append(self.client.networks.create(name, labels=self.labels))
        return name

    def run(self, image: str, command: list[str] | None = None, **kwargs: Any) -> Any:
        labels = {**self.labels, **kwargs.pop("labels", {})}
        container = self.client.containers.run(image, command, detach=True, labels=labels, **kwargs)
        self.containers.append(container)
        return container

    def remove_all(self) -> None:
        import docker

        for container in reversed(self.containers):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
        for network in self.networks:
            network.remove()


@pytest.fixture
def containers(docker_engine: Any, request: pytest.FixtureRequest) -> Iterator[Containers]:
    started = Containers(docker_engine, request.node.name)
    yield started
    started.remove_all()


def test_a_second_build_reuses_every_cached_image(test_images: BuildReport) -> None:
    assert set(test_images.references) == set(ALL_IMAGES)
    again = ensure_test_images()
    assert again.built == []
    assert again.references == test_images.references


def test_standin_migrates_and_reports_a_real_postgres_through_nginx(
    test_images: BuildReport, containers: Containers, tmp_path: Path
) -> None:
    network = containers.network()
    password = secrets.token_urlsafe(16)
    postgres = containers.run(
        POSTGRES,
        name=f"{network}-db",
        network=network,
        environment={
            "POSTGRES_USER": "codequal",
            "POSTGRES_PASSWORD": password,
            "POSTGRES_DB": "codequal",
        },
    )
    wait_for(
        lambda: (
            postgres.exec_run(["pg_isready", "-h", "127.0.0.1", "-U", "codequal"]).exit_code == 0
        ),
        "postgres to accept TCP connections",
        timeout=120,
    )
    assert main_process_uid(postgres) != 0, "postgres must not run as root"
    database_url = f"postgresql://codequal:{password}@{network}-db:5432/codequal"

    # Migrate first, as the installer does; twice, because the command must be idempotent.
    for expected in ("migrated to schema version 1", "already at schema version 1"):
        output = containers.client.containers.run(
            STANDIN_1,
            ["standin", "migrate", "--schema-version", "1"],
            network=network,
            environment={"DATABASE_URL": database_url},
            labels=containers.labels,
            remove=True,
        )
        assert expected in output.decode()

    app = containers.run(
        STANDIN_1,
        ["standin", "serve", "--port", "3000", "--service", "codequal"],
        name=f"{network}-app",
        network=network,
        environment={"DATABASE_URL": database_url},
        ports={"3000/tcp": ("127.0.0.1", None)},
    )
    app_port = published_port(app, 3000)

    def app_health() -> tuple[int, dict[str, Any]] | None:
        try:
            return http_get(f"http://127.0.0.1:{app_port}/health")
        except (urllib.error.URLError, OSError):
            return None

    wait_for(lambda: app_health() is not None, "the stand-in to listen")
    status, body = app_health() or (0, {})
    assert status == 200
    assert body["service"] == "codequal"
    assert body["version"] == "1.0.0-test"
    assert body["database"]["reachable"] is True
    assert body["database"]["migrated"] is True
    assert body["database"]["schema_version"] == "1"
    assert main_process_uid(app) == 1000

    # A row written before a database restart is still there after it, and the restart does
    # not initialise the data directory again.
    request = urllib.request.Request(
        f"http://127.0.0.1:{app_port}/items", data=b"kept across restarts", method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - http only
        assert response.status == 201
    postgres.restart(timeout=20)
    wait_for(
        lambda: postgres.exec_run(["pg_isready", "-h", "127.0.0.1"]).exit_code == 0,
        "postgres to come back",
        timeout=120,
    )
    assert "Skipping initialization" in postgres.logs().decode()
    wait_for(
        lambda: http_get(f"http://127.0.0.1:{app_port}/items")[0] == 200, "items after restart"
    )
    assert http_get(f"http://127.0.0.1:{app_port}/items")[1]["items"] == [
        {"id": 1, "body": "kept across restarts"}
    ]

    # nginx reads conf.d/*.conf, proxies to the stand-in, and has wget for its health check.
    conf = tmp_path / "codequal.conf"
    conf.write_text(
        "server {\n"
        "    listen 8080;\n"
        "    location = /nginx-health { return 200 'ok'; }\n"
        f"    location / {{ proxy_pass http://{network}-app:3000; }}\n"
        "}\n"
    )
    proxy = containers.run(
        NGINX,
        network=network,
        volumes={str(conf): {"bind": "/etc/nginx/conf.d/codequal.conf", "mode": "ro"}},
        ports={"8080/tcp": ("127.0.0.1", None)},
    )
    wait_for(
        lambda: (
            proxy.exec_run(
                ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/nginx-health"]
            ).exit_code
            == 0
        ),
        "nginx to answer its health check",
    )
    assert proxy.exec_run(["nginx", "-t"]).exit_code == 0
    status, body = http_get(f"http://127.0.0.1:{published_port(proxy, 8080)}/health")
    assert (status, body["service"], body["database"]["migrated"]) == (200, "codequal", True)


def test_standin_with_sqlite_runs_as_its_user_in_a_fresh_volume(
    test_images: BuildReport, containers: Containers, docker_engine: Any
) -> None:
    volume = docker_engine.volumes.create(
        f"cqtest-{secrets.token_hex(4)}", labels={PID_LABEL: str(os.getpid())}
    )
    try:
        app = containers.run(
            STANDIN_1,
            network=containers.network(),
            environment={"DATABASE_URL": "sqlite:////app/data/codequal.db"},
            volumes={volume.name: {"bind": "/app/data", "mode": "rw"}},
            ports={"3000/tcp": ("127.0.0.1", None)},
        )
        port = published_port(app, 3000)
        migrate = app.exec_run(["standin", "migrate"])
        assert migrate.exit_code == 0, migrate.output.decode()
        wait_for(lambda: _answers(port), "the stand-in to listen")
        status, body = http_get(f"http://127.0.0.1:{port}/health")
        assert status == 200
        database = body["database"]
        assert (database["kind"], database["reachable"], database["migrated"]) == (
            "sqlite",
            True,
            True,
        )
        assert database["schema_version"] == "1"
        assert main_process_uid(app) == 1000
    finally:
        for container in containers.containers:
            container.remove(force=True)
        containers.containers.clear()
        volume.remove(force=True)


def _answers(port: int) -> bool:
    try:
        http_get(f"http://127.0.0.1:{port}/health", timeout=1)
        return True
    except (urllib.error.URLError, OSError):
        return False


def _docker_healthcheck(health: HealthCheck) -> dict[str, Any]:
    """The manifest's health check as the Engine API takes it, sped up for the test.

    Compose turns ``$$`` into ``$`` before the Engine sees the command; so does this.
    """
    second = 1_000_000_000
    test = [health.test[0], *(part.replace("$$", "$") for part in health.test[1:])]
    return {
        "test": test,
        "interval": 1 * second,
        "timeout": health.timeout_seconds * second,
        "retries": health.retries,
        "start_period": 0,
    }


def test_every_test_release_health_check_passes_in_its_image_except_the_broken_one(
    test_images: BuildReport, containers: Containers, test_releases_dir: Path, tmp_path: Path
) -> None:
    # nginx's health path comes from the installer's own configuration; give it one.
    conf = tmp_path / "health.conf"
    conf.write_text(
        "server { listen 80 default_server; location = /nginx-health { return 200; } }\n"
    )
    expectations: dict[tuple[str, str, tuple[str, ...]], tuple[Any, bool]] = {}
    for version in TEST_RELEASES:
        release = load_release(version)
        for name, service in release.services.items():
            if service.health is None:
                continue
            healthy = not (version == "2.0.0-broken" and name == "deepwiki")
            key = (service.image, name, tuple(service.command or ()))
            if key in expectations:
                continue
            # Health checks talk to 127.0.0.1 inside the container: no network needed.
            kwargs: dict[str, Any] = {
                "healthcheck": _docker_healthcheck(service.health),
                "network_mode": "none",
            }
            if service.command:
                kwargs["command"] = service.command
            if service.user:
                kwargs["user"] = service.user
            if name == "postgres":
                kwargs["environment"] = {
                    "POSTGRES_USER": "codequal",
                    "POSTGRES_PASSWORD": secrets.token_urlsafe(12),
                    "POSTGRES_DB": "codequal",
                }
            if name == "nginx":
                kwargs["volumes"] = {str(conf): {"bind": "/etc/nginx/conf.d/health.conf"}}
            expectations[key] = (containers.run(service.image, **kwargs), healthy)

    def states() -> dict[tuple[str, str, tuple[str, ...]], str]:
        result = {}
        for key, (container, _) in expectations.items():
            container.reload()
            result[key] = container.attrs["State"].get("Health", {}).get("Status", "none")
        return result

    wait_for(
        lambda: all(state != "starting" for state in states().values()),
        "every health check to settle",
        timeout=120,
    )
    final = states()
    wrong = {
        f"{image} as {name}: {final[(image, name, command)]}"
        for (image, name, command), (_, healthy) in expectations.items()
        if (final[(image, name, command)] == "healthy") != healthy
    }
    assert not wrong, f"health checks that did not behave: {sorted(wrong)}"
    assert any(not healthy for _, healthy in expectations.values())


def test_registry_takes_a_push_and_serves_it_back_by_digest(
    test_images: BuildReport, registry: LocalRegistry, docker_engine: Any
) -> None:
    pushed = registry.reference("codequal-test/busybox:1")
    subprocess.run(["docker", "tag", BUSYBOX, pushed], check=True)
    try:
        push = subprocess.run(
            ["docker", "push", pushed], capture_output=True, text=True, check=False
        )
        assert push.returncode == 0, push.stderr
        digest = next(word for word in push.stdout.split() if word.startswith("sha256:"))
        assert registry.catalog() == ["codequal-test/busybox"]
    finally:
        subprocess.run(["docker", "rmi", pushed], capture_output=True, check=False)

    by_digest = f"{registry.reference('codequal-test/busybox')}@{digest}"
    try:
        pull = subprocess.run(
            ["docker", "pull", by_digest], capture_output=True, text=True, check=False
        )
        assert pull.returncode == 0, pull.stderr
        assert docker_engine.images.get(by_digest).id == docker_engine.images.get(BUSYBOX).id
        ran = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", by_digest, "echo", "served back"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert ran.stdout.strip() == "served back"
    finally:
        subprocess.run(["docker", "rmi", by_digest], capture_output=True, check=False)


def test_a_corrupt_cached_base_tarball_is_recognised_so_it_can_be_made_again(
    docker_engine: Any, tmp_path: Path
) -> None:
    from tests.support.images import _import_tarball, _UnreadableTarball

    tarball = tmp_path / "debian-bookworm-truncated.tar.zst"
    tarball.write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 64)  # a zstd magic number, then garbage
    reference = f"codequal-test/scratch:{secrets.token_hex(4)}"
    with pytest.raises(_UnreadableTarball):
        _import_tarball(tarball, reference, "inputs", lambda _: None)
    assert not docker_engine.images.list(name=reference)
