"""Release manifests: shipped and extra releases, clear errors, and the parse cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.errors import AnswerFileError, UsageError
from installer.release import _cache_path, bundled_release_names, load_release

MANIFEST = """\
version: 9.9.9
services:
  codequal:
    image: example.org/codequal:9.9.9
    role: app
    ports: [3000]
routes:
  - {path: /, service: codequal, port: 3000, health_path: /health}
migration: {service: codequal, command: [migrate], schema_version: "7"}
"""


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


def test_the_installers_own_release_is_the_newest_shipped() -> None:
    names = bundled_release_names()
    assert load_release().version == names[-1]
    assert set(load_release().services) >= {"codequal", "deepwiki", "nginx", "postgres"}


def test_extra_release_directories_are_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "9.9.9.yaml").write_text(MANIFEST)
    monkeypatch.setenv("CODEQUAL_RELEASES_DIR", str(tmp_path))
    release = load_release("9.9.9")
    assert release.migration.schema_version == "7"
    with pytest.raises(UsageError, match=r"unknown release '8\.8\.8'"):
        load_release("8.8.8")


def test_an_invalid_manifest_is_reported_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(MANIFEST.replace("role: app", "role: frontend"))
    with pytest.raises(AnswerFileError) as info:
        load_release(str(path))
    assert any(f"{path}:5:11: services.codequal.role" in p for p in info.value.problems)


def test_a_parsed_manifest_is_cached_and_a_damaged_cache_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(MANIFEST)
    first = load_release(str(path))
    cache = _cache_path(MANIFEST)
    assert cache.is_file()
    assert load_release(str(path)) == first
    # The cache is what a second load reads: a different (valid) document there wins.
    cache.write_text(first.model_copy(update={"name": "from-cache"}).model_dump_json())
    assert load_release(str(path)).name == "from-cache"
    cache.write_text("{not json")
    assert load_release(str(path)) == first  # re-parsed from the YAML
    assert load_release(str(path)).version == "9.9.9"
    changed = MANIFEST.replace("9.9.9", "9.9.10")
    path.write_text(changed)
    assert load_release(str(path)).version == "9.9.10"  # new content, new cache entry


def test_an_unwritable_cache_costs_nothing_but_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    path = tmp_path / "r.yaml"
    path.write_text(MANIFEST)
    assert load_release(str(path)).version == "9.9.9"
