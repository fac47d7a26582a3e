"""A Compose install from the bundle checks free disk before anything is written: the images
stream from the bundle into ``docker load`` (nothing is extracted), so what must fit is
Docker's images under its data root. Here the Engine's data root is a real 48 MiB tmpfs,
less than the test release's images and the margin: exit 3 naming it, nothing written,
nothing loaded. ``$TMPDIR`` does not matter any more (a 1 MiB one here). And a member
damaged at the very end of the stream stops the load with nothing loaded.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from installer.errors import ExitCode
from tests.integration.apply_support import SKIPPED_CHECKS, Install
from tests.integration.bundle_support import IsolatedEngine, cached_wheelhouse, isolated_engine
from tests.support import TEST_RELEASES_DIR
from tests.unit.cli_helpers import run_cli

pytestmark = pytest.mark.integration

RELEASE = "1.0.0-test"


def _mount_tmpfs(mountpoint: Path, size: str) -> None:
    mountpoint.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mountpoint)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip


def _unmount(mountpoint: Path) -> None:
    subprocess.run(["umount", "-l", str(mountpoint)], check=False, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def release_bundle(tmp_path_factory: pytest.TempPathFactory, test_images: Any) -> Path:
    out = tmp_path_factory.mktemp("release-bundle") / f"codequal-{RELEASE}.bundle"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CODEQUAL_RELEASES_DIR", str(TEST_RELEASES_DIR))
        result = run_cli(
            "bundle", "create", "--release", RELEASE, "--out", str(out),
            "--wheelhouse", str(cached_wheelhouse()), "--no-installer-image",
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def small_engine(tmp_path: Path) -> Iterator[IsolatedEngine]:
    """The second Engine, its data root on a 48 MiB tmpfs."""
    workdir = tmp_path / "engine"
    root = workdir / "docker-root"
    _mount_tmpfs(root, "48m")
    try:
        with isolated_engine(workdir) as engine:
            yield engine
    finally:
        _unmount(root)


def test_too_little_disk_for_dockers_images_stops_the_install_before_anything_is_written(
    release_bundle: Path, small_engine: IsolatedEngine, tmp_path: Path
) -> None:
    small_tmp = tmp_path / "tmp"
    _mount_tmpfs(small_tmp, "1m")
    try:
        install = Install(
            tmp_path, tmp_path / "install", small_engine.client,
            env={**small_engine.environment(), "TMPDIR": str(small_tmp)},
        )  # fmt: skip
        try:
            # Nothing starts: the host ports (another test's, maybe) are not this test's.
            answers = install.answers("production", checks={"skip": [*SKIPPED_CHECKS, "ports"]})
            run = install.apply(answers, "--bundle", str(release_bundle))
        finally:
            install.teardown()
        assert list(small_tmp.iterdir()) == []
    finally:
        _unmount(small_tmp)
    assert run.exit_code == ExitCode.PREREQUISITES, run.describe()
    failure = run.last
    assert failure["type"] == "run.failed" and failure["exit_code"] == 3
    message = failure["message"]
    assert "not enough free disk for the bundle" in message
    assert str(small_engine.root) in message and "Docker's images" in message
    assert "extraction" not in message  # nothing is extracted: TMPDIR is not asked for
    # The bundle was verified in full before the disk was measured.
    assert any("bundle verified" in m for m in run.step_messages("prerequisites"))
    # Nothing written: no configuration, no image loaded.
    assert "configuration" not in [e["step"] for e in run.of_type("step.started")]
    assert not (install.install_dir / "docker-compose.yml").exists()
    assert small_engine.client.images.list() == []


@pytest.fixture
def empty_engine(tmp_path: Path) -> Iterator[IsolatedEngine]:
    (tmp_path / "engine").mkdir()
    with isolated_engine(tmp_path / "engine") as engine:
        yield engine


def test_a_member_damaged_at_the_end_of_the_stream_loads_nothing(
    release_bundle: Path, empty_engine: IsolatedEngine, tmp_path: Path
) -> None:
    """The load streams from the bundle: the last member of ``images/`` damaged (its bytes
    reach Docker before its check fails) stops the load, and Docker keeps nothing."""
    from installer.bundle import load_images_into_docker
    from installer.bundle.reader import locate_bundle, read_index
    from installer.errors import BundleIntegrityError
    from tests.bundle_helpers import RawMember, rewrite_bundle

    index = read_index(locate_bundle(release_bundle))
    last = max(name for name in index.sums if name.startswith("images/"))

    def damage(found: list[RawMember]) -> list[RawMember]:
        for member in found:
            if member.info.name == last:
                member.data = bytes([member.data[0] ^ 1]) + member.data[1:]
        return found

    bad = rewrite_bundle(release_bundle, tmp_path / "bad.bundle", damage)
    references = [r for image in index.metadata.images for r in image.references]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_HOST", empty_engine.host)
        with pytest.raises(BundleIntegrityError, match="SHA-256 mismatch"):
            list(load_images_into_docker(bad, references))
    assert empty_engine.client.images.list(all=True) == []
    # The control: the intact bundle loads every image the same way.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_HOST", empty_engine.host)
        lines = [str(u) for u in load_images_into_docker(release_bundle, references)]
    assert any(line.startswith("streaming the images from") for line in lines)
    loaded = {t for image in empty_engine.client.images.list() for t in image.tags}
    assert set(references) <= loaded
