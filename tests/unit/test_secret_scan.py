"""The scan that ends every apply integration test finds a leaked secret wherever it hides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.apply_support import Install

GENERATED = "generated-database-password-0123456789"
SUPPLIED = "sk-supplied-api-key-abcdefghij"


def _install(tmp_path: Path) -> Install:
    install = Install(tmp_path, tmp_path / "install", docker=None)
    state = install.state
    (state / "logs").mkdir(parents=True)
    (state / "generated-secrets.json").write_text(json.dumps({"database_password": GENERATED}))
    install.secrets = {"anthropic_api_key": SUPPLIED}
    (state / "logs" / "apply-1.log").write_text("all clean\n")
    (state / "result.json").write_text("{}")
    install.transcripts.append('{"type":"run.finished","message":"password is ***"}')
    return install


def test_a_clean_installation_passes(tmp_path: Path) -> None:
    _install(tmp_path).assert_no_secret_leaked()


@pytest.mark.parametrize("where", ["log", "result", "journal", "events"])
@pytest.mark.parametrize("value", [GENERATED, SUPPLIED])
def test_a_leak_is_found_in_every_kind_of_output(tmp_path: Path, where: str, value: str) -> None:
    install = _install(tmp_path)
    text = f"connecting with {value} now"
    if where == "log":
        (install.state / "logs" / "apply-1.log").write_text(text)
    elif where == "result":
        (install.state / "result.json").write_text(json.dumps({"note": text}))
    elif where == "journal":
        (install.state / "journal.json").write_text(json.dumps({"error": text}))
    else:
        install.transcripts.append(text)
    with pytest.raises(AssertionError, match="holds a secret"):
        install.assert_no_secret_leaked()
