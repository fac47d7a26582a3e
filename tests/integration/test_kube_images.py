# ruff: noqa: S310 - requests to the local test registry, URLs built here
"""The images step against a real registry (Debian's docker-registry on 127.0.0.1): an image
missing from the mirror stops the install before anything is applied, naming it; once it is
pushed, the same install goes through."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import urllib.request
from pathlib import Path

import pytest

from installer.errors import ExitCode
from installer.targets.kubernetes.images import RegistryAccess, check_image
from tests.support.fake_kube_api import FakeKubeAPI
from tests.support.kube_install import answers, install
from tests.support.registry import LocalRegistry

pytestmark = pytest.mark.integration

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


def _blob(registry: LocalRegistry, repository: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = urllib.request.Request(
        f"http://{registry.address}/v2/{repository}/blobs/uploads/", method="POST"
    )
    with urllib.request.urlopen(start, timeout=10) as response:
        location = response.headers["Location"]
    if location.startswith("/"):
        location = f"http://{registry.address}{location}"
    sep = "&" if "?" in location else "?"
    put = urllib.request.Request(f"{location}{sep}digest={digest}", data=data, method="PUT")
    put.add_header("Content-Type", "application/octet-stream")
    with urllib.request.urlopen(put, timeout=10):
        pass
    return digest


def push_image(registry: LocalRegistry, repository: str, tag: str) -> None:
    """A one-layer image, pushed through the Registry HTTP API as ``docker push`` would."""
    layer_buffer = io.BytesIO()
    with tarfile.open(fileobj=layer_buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("hello.txt")
        payload = f"{repository}:{tag}\n".encode()
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    layer = layer_buffer.getvalue()
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}})
    layer_digest = _blob(registry, repository, layer)
    config_digest = _blob(registry, repository, config.encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_V2,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": len(config),
            "digest": config_digest,
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": len(layer),
                "digest": layer_digest,
            }
        ],
    }
    request = urllib.request.Request(
        f"http://{registry.address}/v2/{repository}/manifests/{tag}",
        data=json.dumps(manifest).encode(),
        method="PUT",
    )
    request.add_header("Content-Type", MANIFEST_V2)
    with urllib.request.urlopen(request, timeout=10):
        pass


def test_check_image_asks_the_registry(registry: LocalRegistry) -> None:
    access = RegistryAccess(mirror=registry.address, insecure=True)
    push_image(registry, "codequal-test/standin", "1")
    present = check_image(f"{registry.address}/codequal-test/standin:1", access)
    missing = check_image(f"{registry.address}/codequal-test/standin:9", access)
    assert (present.presence, missing.presence) == ("present", "missing")
    closed = RegistryAccess(mirror="127.0.0.1:9", insecure=True)
    assert check_image("127.0.0.1:9/x/y:1", closed, timeout=2).presence == "unreachable"


def test_a_missing_mirror_image_stops_the_install_before_anything_is_applied(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    push_image(registry, "codequal-test/standin", "1")
    mirrored = answers(registry={"mirror": registry.address, "insecure": True})
    with FakeKubeAPI() as api:
        config = api.write_kubeconfig(tmp_path / "kubeconfig")

        first = install(mirrored, config, tmp_path / "root")

        # The live images check finds it among the prerequisites, before anything changes.
        assert first.exit_code == ExitCode.PREREQUISITES, first.text()
        failed = next(e for e in first.events if e.type == "step.failed")
        assert failed.step == "prerequisites" and "images" in failed.message
        verdict = next(
            e.message for e in first.of("prerequisites") if e.message.startswith("images:")
        )
        assert f"404: {registry.address}/codequal-test/postgres:1 is not in" in verdict
        assert "standin" not in verdict
        assert "bundle" in verdict
        assert api.writes() == []

        push_image(registry, "codequal-test/postgres", "1")
        second = install(mirrored, config, tmp_path / "root")

        assert second.exit_code == 0, second.text()
        images = "\n".join(e.message for e in second.of("images"))
        assert f"codequal-test/postgres:1: present in {registry.address}" in images
