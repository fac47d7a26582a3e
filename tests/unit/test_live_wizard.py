"""The wizard's prerequisites step asks the live checks too, with the verdicts ``check
--answers`` gives (issue 16, acceptance 6). Both run for real on this machine: what is
compared is that the same answers get the same live rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.answers import AnswerFile
from installer.checks import run_prerequisites
from installer.checks.catalog import LIVE_CHECK_NAMES
from installer.live.result import LiveInput
from screens.engine import EngineBackend


def test_the_prerequisites_step_shows_the_live_checks_with_the_same_verdicts(
    tmp_path: Path,
) -> None:
    answers = AnswerFile.model_validate(
        {
            "version": 1,
            "target": "production",
            "install_dir": str(tmp_path / "install"),
            "domain": "codequal.corp.example",
            "deepwiki": {"mode": "external", "url": "https://deepwiki.invalid/"},
        }
    )
    view = EngineBackend().prerequisites(answers)
    report = run_prerequisites(answers, live=LiveInput.for_answers(answers))
    shown = {row.name: (row.status, row.skip_name) for row in view.rows}
    expected = {r.name: r.status for r in report.results if r.name in LIVE_CHECK_NAMES}
    assert set(expected) == set(LIVE_CHECK_NAMES)
    for name, status in expected.items():
        assert shown[name] == (status, name)  # the same verdict, skippable by its name
    deepwiki = next(row for row in view.rows if row.name == "deepwiki")
    assert deepwiki.status == "fail"
    assert deepwiki.measured.startswith("could not reach https://deepwiki.invalid/ (DNS:")


def test_the_review_asks_the_live_checks_with_the_typed_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from installer.credentials import Secrets
    from installer.live import run
    from installer.live.result import LiveResult

    seen: list[str | None] = []

    def database(inputs: LiveInput) -> LiveResult:
        seen.append(inputs.secrets.get("database_password"))
        return LiveResult("database", "fail", "the server refused the password", "login")

    monkeypatch.setitem(run.LIVE_CHECKS, "database", database)  # type: ignore[index]
    monkeypatch.setenv("CODEQUAL_DATABASE_PASSWORD", "from-the-environment")
    answers = AnswerFile.model_validate(
        {
            "version": 1,
            "target": "production",
            "install_dir": str(tmp_path / "install"),
            "domain": "localhost",
            "database": {"managed": True, "host": "127.0.0.1"},
            "checks": {"skip": ["images", "deepwiki"]},
        }
    )
    view = EngineBackend().live_checks(answers, Secrets(database_password="typed-in-the-form"))
    assert seen == ["typed-in-the-form"]
    assert [row.name for row in view.rows] == list(LIVE_CHECK_NAMES)  # no machine check
    rows = {row.name: row for row in view.rows}
    assert (rows["database"].status, rows["database"].skip_name) == ("fail", "database")
    assert rows["database"].measured == "the server refused the password"
    assert rows["images"].status == "skipped"
