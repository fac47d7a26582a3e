"""``apply --bundle``'s prerequisites on bundles made without Docker: the bundle must hold
the release being installed and be intact; free disk is measured only when images are to
be loaded, per file system, the two needs added up when they share one."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.bundle import check_bundle_for_install, check_install_space
from installer.bundle.extract import DISK_MARGIN
from installer.bundle.reader import locate_bundle, read_index
from installer.errors import BundleIntegrityError, PrerequisiteError, UsageError
from tests.bundle_helpers import RawMember, file_member, rewrite_bundle, write_bundle


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return write_bundle(
        tmp_path / "b.bundle",
        [file_member("release.yaml", b"{}\n"), file_member("images/manifest.json", b"[]")],
        bootstrap=[file_member("codequal-installer", b"#!/bin/sh\n", mode=0o755)],
        body_hash=True,
    )


def test_a_good_bundle_of_the_release_passes(bundle: Path) -> None:
    lines = [
        str(u) for u in check_bundle_for_install(bundle, release_version="0.0.0-test", missing=[])
    ]
    assert any("release 0.0.0-test" in line for line in lines)
    assert any("bundle verified" in line for line in lines)
    assert any("every image is present" in line for line in lines)  # no disk check needed


def test_another_release_is_a_usage_error(bundle: Path) -> None:
    with pytest.raises(UsageError, match=r"release 0\.0\.0-test, the answers install 9\.9\.9"):
        list(check_bundle_for_install(bundle, release_version="9.9.9", missing=[]))


def test_a_damaged_bundle_stops_before_the_disk_is_measured(bundle: Path, tmp_path: Path) -> None:
    def flip(found: list[RawMember]) -> list[RawMember]:
        for member in found:
            if member.info.name == "release.yaml":
                member.data = b"[]\n"
        return found

    bad = rewrite_bundle(bundle, tmp_path / "bad.bundle", flip)
    with pytest.raises(BundleIntegrityError, match=r"release\.yaml"):
        list(check_bundle_for_install(bad, release_version="0.0.0-test", missing=["x:1"]))


def test_free_disk_is_added_up_on_one_file_system(bundle: Path, tmp_path: Path) -> None:
    index = read_index(locate_bundle(bundle))
    work, docker_root = tmp_path / "work", tmp_path / "docker"
    docker_root.mkdir()
    lines = check_install_space(index, work, docker_root)
    assert len(lines) == 1  # one file system: one line, both needs on it
    line = lines[0]
    assert "extraction" in line and "Docker's images" in line
    needed = index.metadata.uncompressed_size + index.metadata.images_size + DISK_MARGIN
    from installer.sizes import human_size

    assert f"{human_size(needed)} needed" in line


def test_free_disk_without_a_local_docker_root_counts_the_extraction_only(
    bundle: Path, tmp_path: Path
) -> None:
    index = read_index(locate_bundle(bundle))
    lines = check_install_space(index, tmp_path, None)
    assert len(lines) == 1 and "Docker's images" not in lines[0]


def test_a_disk_too_small_is_exit_3_naming_it(bundle: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    index = read_index(locate_bundle(bundle))
    huge = replace(index, metadata=replace(index.metadata, uncompressed_size=1 << 62))
    with pytest.raises(PrerequisiteError) as caught:
        check_install_space(huge, tmp_path, None)
    assert caught.value.exit_code == 3
    assert "not enough free disk for the bundle" in caught.value.message
    assert "nothing was written" in (caught.value.hint or "")
