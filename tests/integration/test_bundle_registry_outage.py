"""The registry disappearing in the middle of ``bundle push``: the real docker-registry is
killed (SIGKILL) right after the first blob went up. The push stops with exit 3 and a
message that names the registry and says to make it reachable and run the same command
again — no "unexpected error", no traceback. The registry comes back on the same port with
the same storage; the same command then finishes, skipping what was already there."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from installer.bundle.create import create_bundle
from installer.bundle.reader import locate_bundle, read_index
from installer.engine.registry import MANIFEST_V2, RETRIES, RegistryClient
from installer.errors import ExitCode
from installer.release import load_release
from tests.integration.bundle_support import cached_wheelhouse, ensure_bundle_images, release_file
from tests.support.registry import RegistryProcess, RegistryStartError
from tests.unit.cli_helpers import run_cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any) -> Path:
    ensure_bundle_images(docker_engine)
    directory = tmp_path_factory.mktemp("outage")
    release = load_release(str(release_file(directory, "7.4.0-outage", with_base=True)))
    return create_bundle(release, directory / "b.bundle", wheelhouse=cached_wheelhouse()).path


@pytest.fixture
def registry_process(tmp_path: Path) -> Iterator[RegistryProcess]:
    try:
        process = RegistryProcess(tmp_path / "registry")
    except RegistryStartError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield process
    finally:
        process.stop()


def _manifest_digest(address: str, repository: str, tag: str) -> str:
    request = urllib.request.Request(
        f"http://{address}/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": MANIFEST_V2},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local registry
        return str(response.headers["Docker-Content-Digest"])


def test_a_registry_gone_mid_push_is_exit_3_and_the_same_push_then_finishes(
    bundle: Path, registry_process: RegistryProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    registry = registry_process.start()
    uploaded: list[str] = []
    upload_blob = RegistryClient.upload_blob

    def upload_then_the_registry_dies(self: RegistryClient, **kw: Any) -> None:
        upload_blob(self, **kw)
        uploaded.append(kw["digest"])
        if len(uploaded) == 1:
            registry_process.kill()

    monkeypatch.setattr(RegistryClient, "upload_blob", upload_then_the_registry_dies)
    workdir = tmp_path / "work"
    command = (
        "bundle", "push", str(bundle), "--mirror", f"{registry.address}/corp", "--insecure",
        "--workdir", str(workdir),
    )  # fmt: skip

    gone = run_cli(*command)

    assert gone.exit_code == ExitCode.PREREQUISITES, gone.output
    assert uploaded and len(uploaded) == 1  # it died after the first blob, mid-push
    error = next(line for line in gone.stderr.splitlines() if line.startswith("error: "))
    assert f"the registry at {registry.address} cannot be reached" in error
    assert f"connection refused (tried {RETRIES} times)" in error
    assert "make the registry reachable" in gone.stderr
    assert "run the same command again" in gone.stderr
    assert "unexpected error" not in gone.output
    assert "Traceback" not in gone.output
    assert list(workdir.iterdir()) == []  # the extraction is gone: the command can run again

    monkeypatch.undo()
    back = registry_process.start()
    assert back.address == registry.address

    again = run_cli(*command)

    assert again.exit_code == 0, again.output
    assert list(workdir.iterdir()) == []
    states = [line for line in again.stdout.splitlines() if "@sha256:" in line]
    assert len(states) == 3, again.stdout
    # The blob that made it before the registry died is there and is not sent again.
    present = [int(n) for line in states for n in re.findall(r"(\d+) present", line)]
    assert sum(present) >= 1, states
    metadata = read_index(locate_bundle(bundle)).metadata
    for image in metadata.images:
        for reference in image.references:
            path, _, tag = reference.rpartition(":")
            digest = _manifest_digest(registry.address, f"corp/{path}", tag)
            assert digest == image.manifest_digest
