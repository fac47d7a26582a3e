"""Fixtures backed by real services: the Docker Engine, the test images, a registry.

scripts/test provisions all of them (and starts dockerd), so a missing one is a failure, not a
reason to skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.images import BuildReport, ImageBuildError, ensure_test_images
from tests.support.registry import LocalRegistry, RegistryStartError, local_registry

# The fixtures that hold the host-ports lock for the whole test (below and in test_check_cli).
_HOST_PORTS_FIXTURES = frozenset({"install", "port_3000_held"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that holds the host-ports lock ``host_ports``: scripts/test runs them
    in one process and everything else beside it, so no process waits on the lock."""
    for item in items:
        if _HOST_PORTS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.host_ports)


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Any]:
    """A docker.DockerClient for a daemon that answers."""
    import docker

    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except docker.errors.DockerException as e:
        pytest.fail(
            f"no Docker Engine answers ({e}); scripts/test installs and starts one",
            pytrace=False,
        )
    yield client
    client.close()


@pytest.fixture(scope="session")
def test_images(docker_engine: Any) -> BuildReport:
    """The locally built test images (tests/support/images.py), built or found cached."""
    try:
        return ensure_test_images()
    except ImageBuildError as e:
        pytest.fail(f"cannot build the test images: {e}", pytrace=False)


@pytest.fixture
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """Debian's docker-registry on a free 127.0.0.1 port with its own config and storage."""
    workdir: Path = tmp_path_factory.mktemp("registry")
    try:
        with local_registry(workdir) as running:
            yield running
    except RegistryStartError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture
def install(tmp_path: Path, docker_engine: Any, test_images: BuildReport) -> Iterator[Any]:
    """An installation in its own install_dir (tests/integration/apply_support.py): holds the
    host-ports lock, and at the end scans what it produced for secrets and removes its
    containers, networks and volumes."""
    from tests.integration.apply_support import Install, host_ports_lock

    with host_ports_lock():
        installation = Install(tmp_path, tmp_path / "install", docker_engine)
        try:
            yield installation
            installation.assert_no_secret_leaked()
        finally:
            installation.teardown()


@pytest.fixture
def unlocked_install(tmp_path: Path, docker_engine: Any, test_images: BuildReport) -> Iterator[Any]:
    """``install`` without the host-ports lock, for installs that publish their ports in a
    second daemon's own network namespace (tests/integration/second_dockerd.py), not on the
    host's."""
    from tests.integration.apply_support import Install

    installation = Install(tmp_path, tmp_path / "install", docker_engine)
    try:
        yield installation
        installation.assert_no_secret_leaked()
    finally:
        installation.teardown()
