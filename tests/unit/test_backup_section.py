"""The answer file's ``backup:`` section: a compatible addition to version 1."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from installer.answers import AnswerFile
from installer.backup.section import DEFAULT_KEEP
from installer.errors import AnswerFileError
from installer.validation import parse_answers_text

RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"


def _answers(**backup: object) -> AnswerFile:
    document: dict[str, object] = {
        "version": 1,
        "target": "development",
        "install_dir": "/srv/cq",
    }
    if backup:
        document["backup"] = backup
    return AnswerFile.model_validate(document)


def test_an_answer_file_without_the_section_stays_valid_with_defaults() -> None:
    answers = _answers()
    assert answers.backup.recipients == []
    assert answers.backup.keep == DEFAULT_KEEP == 7
    assert str(answers.backup.directory_for(answers.install_dir)) == "/srv/cq/backups"


def test_recipients_directory_and_keep() -> None:
    answers = _answers(recipients=[RECIPIENT], directory="/var/backups/cq", keep=3)
    assert answers.backup.recipients == [RECIPIENT]
    assert str(answers.backup.directory_for(answers.install_dir)) == "/var/backups/cq"


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ({"recipients": ["age1short"]}, "not an age X25519 recipient"),
        ({"recipients": ["AGE-SECRET-KEY-1QQQQ"]}, "AGE-SECRET-KEY never goes here"),
        ({"recipients": [RECIPIENT, RECIPIENT]}, "listed twice"),
        ({"directory": "backups"}, "absolute path"),
        ({"keep": 0}, "greater than or equal to 1"),
        ({"keepp": 3}, "keepp"),
    ],
)
def test_invalid_values_are_refused(section: dict[str, object], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        _answers(**section)


def test_validate_reports_the_key_and_line() -> None:
    text = (
        "version: 1\ntarget: development\ninstall_dir: /srv/cq\n"
        "backup:\n  recipients:\n    - age1nope\n  keep: 2\n"
    )
    with pytest.raises(AnswerFileError) as caught:
        parse_answers_text(text, "answers.yaml")
    assert any(
        line.startswith("answers.yaml:6:") and "backup.recipients" in line
        for line in caught.value.problems
    ), caught.value.problems
