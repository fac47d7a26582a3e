"""``backup create`` refuses before touching anything: no recipient, no age, no install."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.answers import AnswerFile
from installer.backup.create import BackupCreate
from installer.credentials import LoadedSecrets, Secrets
from installer.events import Event
from installer.runner import CancelToken

RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"


def _run(tmp_path: Path, **kwargs: object) -> tuple[BackupCreate, list[Event]]:
    answers = AnswerFile.model_validate(
        {"version": 1, "target": "development", "install_dir": str(tmp_path / "install")}
    )
    job = BackupCreate(
        answers,
        LoadedSecrets(Secrets()),
        cancel=CancelToken(),
        **kwargs,
    )
    return job, list(job.run())


def test_no_recipient_is_a_usage_error(tmp_path: Path) -> None:
    job, events = _run(tmp_path)
    assert job.exit_code == 2
    assert events[-1].type == "run.failed" and "always encrypted" in events[-1].message
    assert not (tmp_path / "install").exists()


def test_age_missing_exits_3_saying_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    job, events = _run(tmp_path, recipients=[RECIPIENT])
    assert job.exit_code == 3
    assert "age" in events[-1].message
    assert "apt-get install age" in events[-1].data["hint"]


def test_no_installation_is_a_usage_error(tmp_path: Path) -> None:
    job, events = _run(tmp_path, recipients=[RECIPIENT])
    assert job.exit_code == 2
    assert "no installation" in events[-1].message
    assert not (tmp_path / "install").exists()


def test_kubernetes_targets_are_refused(tmp_path: Path) -> None:
    answers = AnswerFile.model_validate(
        {"version": 1, "target": "kubernetes", "domain": "cq.example.com"}
    )
    job = BackupCreate(
        answers, LoadedSecrets(Secrets()), cancel=CancelToken(), recipients=[RECIPIENT]
    )
    events = list(job.run())
    assert job.exit_code == 2 and "Compose targets" in events[-1].message


def test_a_consumer_that_stops_listening_ends_the_run(tmp_path: Path) -> None:
    answers = AnswerFile.model_validate(
        {"version": 1, "target": "development", "install_dir": str(tmp_path / "install")}
    )
    job = BackupCreate(answers, LoadedSecrets(Secrets()), cancel=CancelToken())
    events = job.run()
    next(events)
    events.close()  # returns once the worker has ended
    assert job.exit_code is not None
