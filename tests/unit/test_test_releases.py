"""The test releases (tests/releases) and the recipe of the images they run from."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.release import ReleaseManifest, load_release
from tests.support import TEST_RELEASES
from tests.support.images import (
    ALL_IMAGES,
    SERVICE_IMAGES,
    STANDIN_UNHEALTHY,
    _service_inputs,
    _tree_digest,
    debian_mirror,
)


@pytest.fixture
def releases(test_releases_dir: Path) -> dict[str, ReleaseManifest]:
    return {version: load_release(version) for version in TEST_RELEASES}


def test_each_test_release_loads_by_version_and_uses_only_local_test_images(
    releases: dict[str, ReleaseManifest],
) -> None:
    product = load_release("0.1.0")
    for version, release in releases.items():
        assert release.version == version
        assert set(release.services) == set(product.services)
        assert set(release.images().values()) <= set(ALL_IMAGES), version
        assert release.migration.command[:2] == ["standin", "migrate"]
        assert release.migration.command[-1] == release.migration.schema_version


def test_the_upgrade_differs_from_the_first_release_only_in_images_and_schema(
    releases: dict[str, ReleaseManifest],
) -> None:
    first, second = releases["1.0.0-test"], releases["2.0.0-test"]
    assert first.images() != second.images()
    for name, service in first.services.items():
        assert service.model_copy(update={"image": ""}) == second.services[name].model_copy(
            update={"image": ""}
        )
    assert first.routes == second.routes
    assert (first.migration.schema_version, second.migration.schema_version) == ("1", "2")


def test_the_broken_release_breaks_exactly_one_service(
    releases: dict[str, ReleaseManifest],
) -> None:
    good, broken = releases["2.0.0-test"].images(), releases["2.0.0-broken"].images()
    changed = {name for name in good if good[name] != broken[name]}
    assert changed == {"deepwiki"}
    assert broken["deepwiki"] == STANDIN_UNHEALTHY


def test_the_mirror_comes_from_either_form_of_apt_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n"
    )
    assert debian_mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list.d" / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb [arch=amd64] http://one-line.example/debian bookworm main\n"
    )
    assert debian_mirror(tmp_path) == "http://one-line.example/debian"
    (tmp_path / "sources.list").write_text("deb http://archive.ubuntu.com/ubuntu noble main\n")
    assert debian_mirror(tmp_path) == "http://deb.debian.org/debian"


def test_an_image_is_rebuilt_when_its_build_context_changes(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM base\n")
    before = _tree_digest(tmp_path)
    (tmp_path / "Dockerfile").write_text("FROM base\nRUN true\n")
    assert _tree_digest(tmp_path) != before
    inputs = {_service_inputs(image, "base") for image in SERVICE_IMAGES}
    assert len(inputs) == len(SERVICE_IMAGES), "every image has inputs of its own"
    assert {_service_inputs(image, "other base") for image in SERVICE_IMAGES}.isdisjoint(inputs)
