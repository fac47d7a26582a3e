"""Acceptance 2: a Compose install from the offline bundle, on a Docker Engine that has none
of the release's images and whose every registry request would be seen, reaches healthy
services (with too little free disk it stops before anything is written:
``test_bundle_disk.py``).

The Engine here is a second ``dockerd`` of the test's own (``isolated_engine``): it starts
with no image at all, so nothing the install runs can come from anywhere but the bundle, and
the other tests' images in the main Engine are never touched.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from installer.errors import ExitCode
from tests.integration.apply_support import Install, host_ports_lock
from tests.integration.bundle_support import IsolatedEngine, isolated_engine, vendor_bundle
from tests.support import TEST_RELEASES_DIR
from tests.unit.cli_helpers import run_cli

pytestmark = pytest.mark.integration

RELEASE = "1.0.0-test"
API_KEY = "sk-ant-bundle-0123456789abcdefghij"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The release's signing key pair (``signer``) and another public key (``other``)."""
    directory = tmp_path_factory.mktemp("keys")
    for name in ("signer", "other"):
        result = run_cli("bundle", "keygen", "--out", str(directory / name))
        assert result.exit_code == 0, result.output
    return {
        "private": directory / "signer.key",
        "public": directory / "signer.pub",
        "other": directory / "other.pub",
    }


@pytest.fixture(scope="module")
def release_bundle(
    tmp_path_factory: pytest.TempPathFactory, test_images: Any, keys: dict[str, Path]
) -> Path:
    """The signed bundle of the test release, made from the main Engine's images."""
    out = tmp_path_factory.mktemp("release-bundle") / f"codequal-{RELEASE}.bundle"
    return vendor_bundle(out, RELEASE, keys["private"])


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IsolatedEngine]:
    with isolated_engine(tmp_path_factory.mktemp("engine")) as running:
        yield running


def _release_references() -> list[str]:
    from installer.release import load_release

    release = load_release(str(TEST_RELEASES_DIR / f"{RELEASE}.yaml"))
    return sorted(set(release.images().values()))


def _healthy(install: Install) -> dict[str, str]:
    return {
        c.labels["com.docker.compose.service"]: c.attrs["State"].get("Health", {}).get("Status")
        for c in install.containers()
        if c.labels.get("com.docker.compose.oneoff") != "True"
        and c.attrs["State"]["Status"] == "running"
    }


@pytest.mark.host_ports
def test_a_bundle_not_signed_by_the_key_given_stops_the_install_before_anything_is_written(
    release_bundle: Path, engine: IsolatedEngine, keys: dict[str, Path], tmp_path: Path
) -> None:
    assert engine.client.images.list() == []
    with host_ports_lock():
        install = Install(tmp_path, tmp_path / "install", engine.client, env=engine.environment())
        try:
            answers = install.answers("production")
            wrong = ["--bundle", str(release_bundle), "--key", str(keys["other"])]
            run = install.apply(answers, *wrong)
        finally:
            install.teardown()
    assert run.exit_code == ExitCode.BUNDLE_INTEGRITY, run.describe()
    failure = run.last
    assert failure["type"] == "run.failed" and failure["exit_code"] == 4
    assert "signed by key" in failure["message"] and "not by --key" in failure["message"]
    assert "configuration" not in [e["step"] for e in run.of_type("step.started")]
    assert not (install.install_dir / "docker-compose.yml").exists()
    assert engine.client.images.list() == []


@pytest.mark.host_ports
def test_a_compose_install_from_the_bundle_needs_no_network(
    release_bundle: Path,
    engine: IsolatedEngine,
    keys: dict[str, Path],
    tmp_path: Path,
    docker_engine: Any,
) -> None:
    import docker

    references = _release_references()
    expected_ids = {ref: docker_engine.images.get(ref).id for ref in references}
    # None of the release's images (none at all) before the install.
    assert engine.client.images.list() == []
    for image_id in expected_ids.values():
        with pytest.raises(docker.errors.ImageNotFound):
            engine.client.images.get(image_id)
    started = time.time()
    with host_ports_lock():
        install = Install(tmp_path, tmp_path / "install", engine.client, env=engine.environment())
        try:
            answers = install.answers("production")
            secrets = install.secrets_file(anthropic_api_key=API_KEY)
            run = install.apply(
                answers, "--bundle", str(release_bundle), "--key", str(keys["public"]),
                secrets=secrets,
            )  # fmt: skip
            assert run.exit_code == 0, run.describe()
            assert _healthy(install) == dict.fromkeys(
                ("codequal", "deepwiki", "nginx", "postgres"), "healthy"
            )
            status, body = install.https_get("/health")
            assert status == 200 and body["version"] == RELEASE
            checks = run.step_messages("prerequisites")
            assert any("signature valid" in m for m in checks), checks
            assert any("bundle verified" in m for m in checks), checks
            assert any(m.startswith("free disk:") for m in checks), checks
            containers = run.step_messages("containers")
            assert any(f"loading {len(references)} images from" in m for m in containers)
            assert not any("pulling" in m for m in containers)
            assert any(e.get("unit") == "bytes" for e in run.of_type("step.progress"))

            # A second apply finds every image present and leaves the bundle alone.
            again = install.apply(answers, "--bundle", str(release_bundle), secrets=secrets)
            assert again.exit_code == 0, again.describe()
            assert any("every image is present" in m for m in again.step_messages("prerequisites"))
            install.assert_no_secret_leaked()
        finally:
            install.teardown()
    finished = time.time()

    # The images are the bundle's (same IDs as where it was made), present only now.
    for reference, image_id in expected_ids.items():
        assert engine.client.images.get(reference).id == image_id
    actions = [e.get("Action") for e in engine.image_events(started, finished)]
    assert "load" in actions and "pull" not in actions, actions
    # No registry was contacted: every request would have gone through the trap.
    assert engine.trap.connections == 0
    # ... and the trap does see a pull (the control that makes the zero above mean something).
    with pytest.raises(docker.errors.APIError):
        engine.client.images.pull("registry.codequal.test/none", tag="1")
    assert engine.trap.connections >= 1
