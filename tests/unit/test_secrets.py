"""Secrets: file and environment, permission warnings, and never a value in any output."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.answers import SECRET_KEYS
from installer.credentials import Redactor, env_name
from installer.validation import load_secrets
from tests.unit.cli_helpers import run_cli

SECRET_VALUES = {key: f"s3cr3t-{key}-Zq81" for key in SECRET_KEYS}


def _secrets_file(tmp_path: Path, mode: int = 0o600, extra: str = "") -> Path:
    path = tmp_path / "secrets.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in SECRET_VALUES.items()) + extra)
    path.chmod(mode)
    return path


def _example(tmp_path: Path) -> Path:
    path = tmp_path / "answers.yaml"
    path.write_text(run_cli("answers", "example", "--target", "production").stdout)
    return path


def test_file_values_win_over_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("openai_api_key: from-file-1234\n")
    path.chmod(0o600)
    env = {env_name("openai_api_key"): "from-env-1234", env_name("github_token"): "gh-env-1234"}
    loaded = load_secrets(str(path), env)
    assert loaded.secrets.get("openai_api_key") == "from-file-1234"
    assert loaded.secrets.get("github_token") == "gh-env-1234"
    assert loaded.origin == {"openai_api_key": "secrets file", "github_token": "environment"}
    assert loaded.warnings == []


def test_group_or_world_readable_secrets_file_gets_a_warning(tmp_path: Path) -> None:
    path = _secrets_file(tmp_path, mode=0o644)
    result = run_cli("answers", "validate", str(_example(tmp_path)), "--secrets", str(path))
    assert result.exit_code == 0
    assert "warning:" in result.stderr
    assert f"chmod 600 {path}" in result.stderr
    private = _secrets_file(tmp_path, mode=0o600)
    quiet = run_cli("answers", "validate", str(_example(tmp_path)), "--secrets", str(private))
    assert "warning" not in quiet.stderr


def test_no_secret_value_appears_in_any_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_values = {key: f"env-{key}-Yx72" for key in SECRET_KEYS}
    for key, value in env_values.items():
        monkeypatch.setenv(env_name(key), value)
    secrets = _secrets_file(tmp_path, mode=0o644)
    bad_secrets = tmp_path / "bad.yaml"
    bad_secrets.write_text(
        f"openai_api_key: [{SECRET_VALUES['openai_api_key']}]\n"
        f"antropic_api_key: {SECRET_VALUES['anthropic_api_key']}\n"
        f"github_token: {SECRET_VALUES['github_token']}\n"
    )
    duplicate = tmp_path / "dup.yaml"
    duplicate.write_text(f"github_token: a\ngithub_token: {SECRET_VALUES['github_token']}\n")
    mistyped = tmp_path / "typed.yaml"
    mistyped.write_text(f"openai_api_key: {{nested: {SECRET_VALUES['openai_api_key']}}}\n")
    answers = _example(tmp_path)
    outputs = [
        run_cli("answers", "validate", str(answers), "--secrets", str(secrets)),
        run_cli("answers", "validate", str(answers), "--secrets", str(bad_secrets)),
        run_cli("answers", "validate", str(answers), "--secrets", str(duplicate)),
        run_cli("answers", "validate", str(answers), "--secrets", str(mistyped)),
        run_cli("answers", "example", "--target", "enterprise"),
        run_cli("answers", "schema"),
    ]
    assert [o.exit_code for o in outputs] == [0, 2, 2, 2, 0, 0]
    assert "did you mean 'anthropic_api_key'?" in outputs[1].stderr
    everything = "".join(o.output for o in outputs)
    for value in [*SECRET_VALUES.values(), *env_values.values()]:
        assert value not in everything


def test_invalid_secret_in_the_environment_names_the_variable_not_the_value() -> None:
    # The environment only holds strings, so the model can only reject what the file holds;
    # but a value the model rejects must still never be echoed.
    loaded = load_secrets(None, {env_name("gemini_api_key"): "gm-value-9999"})
    assert loaded.secrets.get("gemini_api_key") == "gm-value-9999"
    assert "gm-value-9999" not in repr(loaded.secrets)


def test_redactor_hides_longest_first_and_ignores_tiny_values() -> None:
    redact = Redactor(["abcd", "abcdefgh", "xy"])
    assert redact("pw=abcdefgh and abcd, xy") == "pw=*** and ***, xy"
    assert not Redactor([])


@pytest.mark.parametrize(
    "value",
    ["sk-ant-plain-0001", 'q"uo\\te $HOME #not-a-comment', "emoji-\U0001f600-key", "a: b\n- c"],
)
def test_the_written_secrets_file_reads_back_and_is_private(tmp_path: Path, value: str) -> None:
    import stat

    from installer.credentials import write_secrets_file

    path = tmp_path / "codequal-secrets.yaml"
    path.write_text("old")
    path.chmod(0o644)
    write_secrets_file(path, {"openai_api_key": value, "github_token": "ghp-1234"}, comment="c")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith('# c\ngithub_token: "ghp-1234"\nopenai_api_key: ')
    loaded = load_secrets(str(path), {})
    assert loaded.secrets.supplied() == {"openai_api_key": value, "github_token": "ghp-1234"}
    assert loaded.warnings == []


def test_the_secrets_file_writer_takes_only_secret_keys(tmp_path: Path) -> None:
    from installer.credentials import write_secrets_file

    with pytest.raises(ValueError, match="domain"):
        write_secrets_file(tmp_path / "s.yaml", {"domain": "x"})
    assert not (tmp_path / "s.yaml").exists()


def test_a_generated_secret_that_cannot_be_stored_is_a_state_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    from installer import statedir
    from installer.secretstore import SecretStore
    from installer.statedir import StateError

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(statedir.os, "fsync", full_disk)
    store = SecretStore(tmp_path / "state")
    with pytest.raises(StateError) as failure:
        store.generated("database_password")
    path = tmp_path / "state" / "generated-secrets.json"
    assert failure.value.message == f"cannot write {path}: No space left on device"
    assert failure.value.path == path
    assert failure.value.hint is not None and "free some space" in failure.value.hint
