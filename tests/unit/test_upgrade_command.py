"""The upgrade command's decisions before anything changes (the run itself: integration)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from installer import upgrade
from installer.cli import main
from installer.errors import PrerequisiteError


@pytest.fixture
def answers(tmp_path: Path, test_releases_dir: Path) -> Path:
    path = tmp_path / "answers.yaml"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "target": "development",
                "install_dir": str(tmp_path / "install"),
                "release": {"version": "1.0.0-test"},
            }
        )
    )
    return path


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The plan runs the command would start, recorded instead of run."""
    calls: list[dict[str, Any]] = []

    def fake_run(answers: Any, loaded: Any, **kwargs: Any) -> int:
        calls.append({"release": answers.release.version, **kwargs})
        return 0

    monkeypatch.setattr(upgrade, "installed_version", lambda answers: "1.0.0-test")
    monkeypatch.setattr(upgrade, "check_healthy", lambda answers: "installation healthy")
    monkeypatch.setattr(upgrade, "_run", fake_run)
    return calls


def _main(*args: str) -> int:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    return int(exited.value.code or 0)


def test_skipping_a_stop_exits_2_naming_it_and_the_path(
    answers: Path, runs: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    code = _main("upgrade", "--answers", str(answers), "--to", "3.0.0-test", "--yes")
    assert code == 2
    err = capsys.readouterr().err
    assert "skips the required stop 1.5.0-test" in err
    assert "1.0.0-test -> 1.5.0-test -> 3.0.0-test" in err
    assert runs == []


def test_force_path_goes_on_and_hands_the_reason_to_the_history(
    answers: Path, runs: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    code = _main(
        "upgrade", "--answers", str(answers), "--to", "3.0.0-test", "--yes", "--json",
        "--force-path", "vendor approved",
    )  # fmt: skip
    assert code == 0
    assert len(runs) == 1
    assert runs[0]["release"] == "3.0.0-test"
    assert runs[0]["force_path"] == "vendor approved"
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any("going on (--force-path: vendor approved)" in e["message"] for e in out)


def test_an_allowed_path_records_no_forced_reason(
    answers: Path, runs: list[dict[str, Any]]
) -> None:
    code = _main(
        "upgrade", "--answers", str(answers), "--to", "1.5.0-test", "--yes",
        "--force-path", "not needed",
    )  # fmt: skip
    assert code == 0
    assert runs[0]["force_path"] is None
    assert runs[0]["path"] == ["1.0.0-test", "1.5.0-test"]


def test_the_same_or_an_older_release_is_not_an_upgrade(
    answers: Path, runs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _main("upgrade", "--answers", str(answers), "--to", "1.0.0-test", "--yes") == 0
    monkeypatch.setattr(upgrade, "installed_version", lambda answers: "2.0.0-test")
    assert _main("upgrade", "--answers", str(answers), "--to", "1.5.0-test", "--yes") == 2
    monkeypatch.setattr(upgrade, "installed_version", lambda answers: None)
    assert _main("upgrade", "--answers", str(answers), "--to", "2.0.0-test", "--yes") == 2
    assert runs == []


def test_an_unhealthy_installation_is_not_upgraded(
    answers: Path, runs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def sick(answers: Any) -> str:
        raise upgrade.UnhealthyInstallation("the installation is not healthy: deepwiki (exited)")

    monkeypatch.setattr(upgrade, "check_healthy", sick)
    assert _main("upgrade", "--answers", str(answers), "--to", "2.0.0-test", "--yes") == 3
    assert runs == []
    assert issubclass(upgrade.UnhealthyInstallation, PrerequisiteError)


def test_free_disk_must_be_twice_the_last_backup(tmp_path: Path) -> None:
    assert "free disk" in upgrade.check_free_space(tmp_path / "not-yet", 1)
    with pytest.raises(PrerequisiteError) as caught:
        upgrade.check_free_space(tmp_path, 10**18)
    assert "twice the last backup" in caught.value.message
    assert caught.value.exit_code == 3
