"""An air-gapped Kubernetes install from the offline bundle: the images step verifies the
bundle, pushes its images to ``registry.mirror`` (the real registry on 127.0.0.1), checks
them there, and the install goes on against the test API server; a second install finds
everything in the mirror and uploads nothing."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from installer.bundle.create import create_bundle
from installer.bundle.reader import locate_bundle, read_index
from installer.bundle.signing import generate_key_pair
from installer.credentials import Secrets
from installer.errors import ExitCode
from installer.release import load_release
from tests.integration.bundle_support import (
    APP,
    BASE,
    TOOL,
    cached_wheelhouse,
    ensure_bundle_images,
)
from tests.support.fake_kube_api import FakeKubeAPI
from tests.support.kube_install import RELEASE_1, answers, install
from tests.support.registry import LocalRegistry

pytestmark = pytest.mark.integration

VERSION = "7.3.0-airgap"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module")
def airgap_bundle(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any) -> tuple[Any, Path]:
    """The test release with our three small images in place of the service images."""
    ensure_bundle_images(docker_engine)
    directory = tmp_path_factory.mktemp("airgap")
    text = RELEASE_1.read_text()
    for old, new in (
        ("codequal-test/standin:1", APP),
        ("codequal-test/nginx:1", BASE),
        ("codequal-test/postgres:1", TOOL),
        ("version: 1.0.0-test", f"version: {VERSION}"),
    ):
        text = text.replace(old, new)
    (directory / f"{VERSION}.yaml").write_text(text)
    release = load_release(str(directory / f"{VERSION}.yaml"))
    created = create_bundle(release, directory / "airgap.bundle", wheelhouse=cached_wheelhouse())
    return release, created.path


def _manifest_digest(registry: LocalRegistry, repository: str, tag: str) -> str | None:
    request = urllib.request.Request(
        f"http://{registry.address}/v2/{repository}/manifests/{tag}", method="HEAD"
    )
    request.add_header("Accept", MANIFEST_V2)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local
            return str(response.headers["Docker-Content-Digest"])
    except urllib.error.HTTPError:
        return None


def test_an_air_gapped_kubernetes_install_pushes_the_bundle_to_the_mirror(
    airgap_bundle: tuple[Any, Path], registry: LocalRegistry, tmp_path: Path
) -> None:
    release, bundle = airgap_bundle
    offline = answers(
        registry={"mirror": registry.address, "insecure": True},
        airgap={"enabled": True, "bundle": str(bundle)},
        monitoring={"enabled": False},
    )
    secrets = Secrets.model_validate({"database_password": "airgap-db-password-0123456789"})
    assert registry.catalog() == []  # nothing in the mirror yet
    with FakeKubeAPI() as api:
        config = api.write_kubeconfig(tmp_path / "kubeconfig")
        # apply --key: this bundle is not signed, so nothing of it reaches the mirror.
        public = tmp_path / "k.pub"
        generate_key_pair(tmp_path / "k")
        refused = install(
            offline, config, tmp_path / "root", release_manifest=release, secrets=secrets,
            bundle_key=public,
        )  # fmt: skip
        assert refused.exit_code == ExitCode.BUNDLE_INTEGRITY, refused.text()
        assert "the bundle is not signed, but a public key was given" in refused.text()
        assert registry.catalog() == []

        first = install(
            offline, config, tmp_path / "root", release_manifest=release, secrets=secrets
        )
        assert first.exit_code == 0, first.text()
        pushed = [e.message for e in first.of("images") if e.message.startswith("pushed ")]
        assert pushed, first.text()
        checked = "\n".join(e.message for e in first.of("images"))
        assert f"{registry.address}/cqbundle-test/app:1: present in" in checked
        # What the cluster runs is what the bundle holds: the mirror serves its manifests.
        for image in read_index(locate_bundle(bundle)).metadata.images:
            for reference in image.references:
                repository, _, tag = reference.rpartition(":")
                assert _manifest_digest(registry, repository, tag) == image.manifest_digest
        images = {
            container["image"]
            for deployment in api.list_objects("apps/v1", "Deployment")
            for container in deployment["spec"]["template"]["spec"]["containers"]
        }
        assert images and all(i.startswith(f"{registry.address}/") for i in images), images

        second = install(
            offline, config, tmp_path / "root", release_manifest=release, secrets=secrets
        )
        assert second.exit_code == 0, second.text()
        again = [e.message for e in second.of("images") if e.message.startswith("pushed ")]
        assert again and all("already there" in m for m in again), again
