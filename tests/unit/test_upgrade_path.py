"""Upgrade paths: the manifests' ``upgrade.from`` and ``upgrade.stops``, enforced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from installer.errors import ExitCode
from installer.release import ReleaseManifest, load_release, parse_release
from installer.upgrade_path import (
    crossed_stops,
    decide,
    direct_problem,
    find_path,
    known_releases,
    satisfies,
)


def _release(version: str, **upgrade: Any) -> ReleaseManifest:
    base = load_release("0.1.0")
    return base.model_copy(update={"version": version, "upgrade": _rules(**upgrade)})


def _rules(**values: Any) -> Any:
    from installer.release import UpgradeRules

    return UpgradeRules.model_validate(values)


@pytest.mark.parametrize(
    ("version", "spec", "expected"),
    [
        ("1.0.0", ">=1.0.0", True),
        ("0.9.9", ">=1.0.0", False),
        ("1.0.0-test", ">=1.0.0", True),
        ("1.5.0-test", ">=1.0.0, <2", True),
        ("2.0.0", ">=1.0.0, <2", False),
        ("1.2", "==1.2.0", True),
        ("1.2.1", "1.2.0", False),
        ("3.0.0", None, True),
    ],
)
def test_version_specifiers(version: str, spec: str | None, expected: bool) -> None:
    assert satisfies(version, spec) is expected


def test_the_manifest_field_is_optional_and_checked(tmp_path: Path) -> None:
    assert load_release("0.1.0").upgrade.from_ is None
    assert load_release("0.1.0").upgrade.stops == []
    text = Path("installer/releases/0.1.0.yaml").read_text()
    manifest = parse_release(
        text + 'upgrade:\n  from: ">=0.0.9"\n  stops: ["0.0.5"]\n', "with-rules"
    )
    assert (manifest.upgrade.from_, manifest.upgrade.stops) == (">=0.0.9", ["0.0.5"])
    # What the parse cache stores reads back the same (the field has an alias).
    assert ReleaseManifest.model_validate_json(manifest.model_dump_json()) == manifest
    from installer.errors import AnswerFileError

    with pytest.raises(AnswerFileError):
        parse_release(text + "upgrade:\n  from: 'newer than yesterday'\n", "bad")
    with pytest.raises(AnswerFileError):
        parse_release(text + "upgrade:\n  via: ['1.0']\n", "unknown key")


def test_a_stop_strictly_between_is_crossed() -> None:
    target = _release("3.0.0", stops=["1.5.0", "2.5.0"])
    assert crossed_stops("1.0.0", target) == ["1.5.0", "2.5.0"]
    assert crossed_stops("1.5.0", target) == ["2.5.0"]
    assert crossed_stops("2.5.0", target) == []
    assert direct_problem("2.5.0", target) is None
    assert direct_problem("1.0.0", target) == (
        "the upgrade from 1.0.0 to 3.0.0 skips the required stops 1.5.0, 2.5.0"
    )


def test_a_release_too_old_for_the_target_is_named() -> None:
    target = _release("3.0.0", **{"from": ">=2.0.0"})
    assert direct_problem("1.0.0", target) == (
        "3.0.0 upgrades only from releases >=2.0.0, and 1.0.0 is installed"
    )


def test_the_path_goes_through_the_stop() -> None:
    releases = {
        "1.5.0": _release("1.5.0", **{"from": ">=1.0.0"}),
        "2.0.0": _release("2.0.0"),
        "3.0.0": _release("3.0.0", **{"from": ">=1.0.0", "stops": ["1.5.0"]}),
    }
    decision = decide("1.0.0", releases["3.0.0"], releases)
    assert not decision.allowed
    assert decision.stops == ["1.5.0"]
    assert decision.path == ["1.0.0", "1.5.0", "3.0.0"]
    error = decision.refusal()
    assert error.exit_code == ExitCode.USAGE
    assert "skips the required stop 1.5.0" in error.message
    assert error.hint is not None and "1.0.0 -> 1.5.0 -> 3.0.0" in error.hint
    assert "--force-path" in error.hint

    assert decide("1.5.0", releases["3.0.0"], releases).allowed
    assert decide("1.0.0", releases["2.0.0"], releases).path == ["1.0.0", "2.0.0"]


def test_a_chain_of_from_rules_is_followed() -> None:
    releases = {
        "2.0.0": _release("2.0.0", **{"from": ">=1.0.0"}),
        "3.0.0": _release("3.0.0", **{"from": ">=2.0.0"}),
        "4.0.0": _release("4.0.0", **{"from": ">=3.0.0"}),
    }
    assert find_path("1.0.0", "4.0.0", releases) == ["1.0.0", "2.0.0", "3.0.0", "4.0.0"]
    assert find_path("2.5.0", "4.0.0", releases) == ["2.5.0", "3.0.0", "4.0.0"]


def test_an_unknown_stop_has_no_path_and_says_what_to_get() -> None:
    target = _release("3.0.0", stops=["1.5.0"])
    decision = decide("1.0.0", target, {"3.0.0": target})
    assert decision.path is None
    error = decision.refusal()
    assert "1.5.0" in error.message
    assert error.hint is not None and "get the release 1.5.0" in error.hint


def test_the_test_releases_declare_a_required_stop(test_releases_dir: Path) -> None:
    releases = known_releases()
    assert {"1.0.0-test", "1.5.0-test", "3.0.0-test"} <= set(releases)
    decision = decide("1.0.0-test", releases["3.0.0-test"], releases)
    assert decision.stops == ["1.5.0-test"]
    assert decision.path == ["1.0.0-test", "1.5.0-test", "3.0.0-test"]
    assert decide("1.0.0-test", releases["1.5.0-test"], releases).allowed
    assert decide("1.5.0-test", releases["3.0.0-test"], releases).allowed
    assert decide("1.0.0-test", releases["2.0.0-test"], releases).allowed
