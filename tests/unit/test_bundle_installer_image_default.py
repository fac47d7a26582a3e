"""Every bundle carries the installer image: ``bundle create`` ships
``codequal/installer:<the installer's version>`` unless told ``--no-installer-image``, and
stops before writing anything (exit 3, with a hint) when that image or ``zstd`` is missing.

The Engine is a stand-in that knows which images it holds; ``create_bundle`` (tested with the
real Engine in tests/integration/test_installer_image.py) is replaced by a recorder, so what
is checked here is what the command line asks for, and that nothing is written before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest

from installer import __version__
from installer.bundle import installer_image
from installer.errors import ExitCode
from tests.support import TEST_RELEASES_DIR
from tests.unit.cli_helpers import run_cli

DEFAULT = f"codequal/installer:{__version__}"


class FakeImages:
    def __init__(self, present: set[str]) -> None:
        self.present = present
        self.asked: list[str] = []

    def get(self, reference: str) -> object:
        self.asked.append(reference)
        if reference not in self.present:
            raise docker.errors.ImageNotFound(f"No such image: {reference}")
        return object()


class FakeClient:
    def __init__(self, present: set[str]) -> None:
        self.images = FakeImages(present)
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    client = FakeClient({DEFAULT, "registry.example/codequal/installer:9"})
    monkeypatch.setattr("installer.engine.docker.docker_client", lambda *a, **k: client)
    return client


@pytest.fixture
def created(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What ``create_bundle`` was asked for; it writes nothing (and raises to stop there)."""
    calls: list[dict[str, Any]] = []

    def record(release: Any, out: Path, **kwargs: Any) -> Any:
        calls.append({"out": out, **kwargs})
        raise SystemExit(0)

    monkeypatch.setattr("installer.bundle.create.create_bundle", record)
    return calls


@pytest.fixture
def wheelhouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CODEQUAL_RELEASES_DIR", str(TEST_RELEASES_DIR))
    made: list[Path] = []
    monkeypatch.setattr(
        "installer.bundle.wheelhouse.build_wheelhouse", lambda path, *a: made.append(path)
    )
    directory = tmp_path / "wheelhouse"
    directory.mkdir()
    (directory / "codequal_installer-0-py3-none-any.whl").touch()
    return directory


def _create(out: Path, wheelhouse: Path, *extra: str) -> Any:
    return run_cli(
        "bundle", "create", "--release", "1.0.0-test", "--out", str(out),
        "--wheelhouse", str(wheelhouse), *extra,
    )  # fmt: skip


def test_without_a_flag_the_bundle_ships_the_installers_own_image(
    engine: FakeClient, created: list[dict[str, Any]], wheelhouse: Path, tmp_path: Path
) -> None:
    assert installer_image.default_reference() == DEFAULT
    result = _create(tmp_path / "b.bundle", wheelhouse)
    assert result.exit_code == 0, result.output
    assert created[0]["installer_image"] == DEFAULT
    assert engine.images.asked == [DEFAULT] and engine.closed


def test_installer_image_names_another_reference(
    engine: FakeClient, created: list[dict[str, Any]], wheelhouse: Path, tmp_path: Path
) -> None:
    other = "registry.example/codequal/installer:9"
    result = _create(tmp_path / "b.bundle", wheelhouse, "--installer-image", other)
    assert result.exit_code == 0, result.output
    assert created[0]["installer_image"] == other


def test_no_installer_image_leaves_it_out_without_asking_the_engine(
    engine: FakeClient, created: list[dict[str, Any]], wheelhouse: Path, tmp_path: Path
) -> None:
    result = _create(tmp_path / "b.bundle", wheelhouse, "--no-installer-image")
    assert result.exit_code == 0, result.output
    assert created[0]["installer_image"] is None
    assert engine.images.asked == []


def test_both_flags_are_a_usage_error(
    engine: FakeClient, created: list[dict[str, Any]], wheelhouse: Path, tmp_path: Path
) -> None:
    result = _create(
        tmp_path / "b.bundle", wheelhouse, "--no-installer-image", "--installer-image", "x:1"
    )
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "contradict" in result.stderr and created == []


def test_a_missing_default_image_stops_before_anything_is_written(
    engine: FakeClient,
    created: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CODEQUAL_RELEASES_DIR", str(TEST_RELEASES_DIR))
    made: list[Path] = []
    monkeypatch.setattr(
        "installer.bundle.wheelhouse.build_wheelhouse", lambda path, *a: made.append(path)
    )
    engine.images.present.clear()
    empty = tmp_path / "wheelhouse"  # would be made by pip: it is not, the check comes first
    out = tmp_path / "b.bundle"
    result = _create(out, empty)
    assert result.exit_code == ExitCode.PREREQUISITES, result.output
    assert f"error: the installer image {DEFAULT} is not in the local Docker Engine" in (
        result.stderr
    )
    assert "hint: build it with `packaging/build-installer-image" in result.stderr
    assert "--no-installer-image for a bundle for hosts with Python 3.10+ only" in result.stderr
    assert "Traceback" not in result.output
    assert created == [] and made == [] and not empty.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_missing_named_image_names_the_flag(
    engine: FakeClient, created: list[dict[str, Any]], wheelhouse: Path, tmp_path: Path
) -> None:
    result = _create(tmp_path / "b.bundle", wheelhouse, "--installer-image", "acme/inst:2")
    assert result.exit_code == ExitCode.PREREQUISITES, result.output
    assert "acme/inst:2 (--installer-image) is not in the local Docker Engine" in result.stderr
    assert "--tag acme/inst:2" in result.stderr and created == []


def test_without_zstd_the_default_stops_with_a_hint(
    engine: FakeClient,
    created: list[dict[str, Any]],
    wheelhouse: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("installer.bundle.installer_image.shutil.which", lambda name: None)
    result = _create(tmp_path / "b.bundle", wheelhouse)
    assert result.exit_code == ExitCode.PREREQUISITES, result.output
    assert "error: the zstd command is not installed on this machine" in result.stderr
    assert "hint: install zstd (apt-get install zstd), or give --no-installer-image" in (
        result.stderr
    )
    assert "Traceback" not in result.output and created == []
    assert not (tmp_path / "b.bundle").exists()
