"""`answers schema | example | validate`: the contract operators and automation rely on."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from installer.answers import TARGETS
from tests.unit.cli_helpers import run_cli

THREE_MISTAKES = """\
version: 1
target: production
domain: codequal.example.com
databse:
  kind: postgres
tls:
  mode: self-signed
monitoring:
  enabled: maybe
kubernetes:
  namespace: Bad_Namespace
"""


def test_version_prints_the_package_version() -> None:
    from installer import __version__

    result = run_cli("--version")
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_schema_is_draft_2020_12_with_exactly_the_four_targets() -> None:
    result = run_cli("answers", "schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["target"]["enum"] == list(TARGETS)
    assert set(schema["required"]) == {"version", "target"}


def _walk_properties(node: object, where: str = ""):  # type: ignore[no-untyped-def]
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            yield f"{where}.{name}", prop
        for key, value in node.items():
            yield from _walk_properties(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk_properties(value, f"{where}[{i}]")


def test_every_property_in_the_schema_has_a_description() -> None:
    schema = json.loads(run_cli("answers", "schema").stdout)
    props = list(_walk_properties(schema))
    assert len(props) > 60  # every section's fields are there
    undocumented = [path for path, prop in props if not prop.get("description")]
    assert undocumented == []


def test_schema_validates_the_examples_with_a_real_json_schema_validator() -> None:
    import jsonschema
    import yaml

    schema = json.loads(run_cli("answers", "schema").stdout)
    validator = jsonschema.Draft202012Validator(schema)
    for target in TARGETS:
        doc = yaml.safe_load(run_cli("answers", "example", "--target", target).stdout)
        assert list(validator.iter_errors(doc)) == [], target
    assert list(validator.iter_errors({"version": 1, "target": "staging"}))


@pytest.mark.parametrize("target", TARGETS)
def test_each_example_validates_from_stdin_and_from_a_file(target: str, tmp_path: Path) -> None:
    example = run_cli("answers", "example", "--target", target)
    assert example.exit_code == 0
    assert f"target: {target}" in example.stdout
    assert example.stdout.count("\n# ") > 10  # commented
    piped = run_cli("answers", "validate", "-", stdin=example.stdout)
    assert piped.exit_code == 0, piped.output
    path = tmp_path / "answers.yaml"
    path.write_text(example.stdout)
    assert run_cli("answers", "validate", str(path)).exit_code == 0


def test_three_independent_mistakes_are_reported_at_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "answers.yaml"
    path.write_text(THREE_MISTAKES)
    result = run_cli("answers", "validate", str(path))
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith(str(path))]
    assert len(lines) == 3, result.stderr
    assert lines[0].startswith(f"{path}:4:1: databse: unknown key 'databse'")
    assert "did you mean 'database'?" in lines[0]
    assert lines[1].startswith(f"{path}:9:12: monitoring.enabled: ")
    assert lines[2].startswith(f"{path}:11:14: kubernetes.namespace: ")


def test_a_misspelled_nested_key_suggests_the_closest_one(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("version: 1\ntarget: development\ndatabase:\n  knd: sqlite\n")
    result = run_cli("answers", "validate", str(path))
    assert result.exit_code == 2
    assert f"{path}:4:3: database.knd: unknown key 'knd'; did you mean 'kind'?" in result.stderr


def test_a_misspelled_choice_suggests_the_closest_value(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("version: 1\ntarget: prodution\n")
    result = run_cli("answers", "validate", str(path))
    assert result.exit_code == 2
    assert f"{path}:2:9: target: " in result.stderr
    assert "did you mean 'production'?" in result.stderr


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("", "is empty"),
        ("# only a comment\n", "is empty"),
        ("- a\n- b\n", "must be a mapping"),
        ("just text\n", "must be a mapping"),
        ("a: [\n", "not valid YAML"),
        ("version: 1\ntarget: development\ntarget: production\n", "duplicate key 'target'"),
        ("\tversion: 1\n", "not valid YAML"),
    ],
)
def test_broken_files_get_one_clear_line_and_exit_2(
    content: str, words: str, tmp_path: Path
) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(content)
    result = run_cli("answers", "validate", str(path))
    assert result.exit_code == 2
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{path}:"), first
    assert words in first
    assert "Traceback" not in result.output


def test_missing_unreadable_and_directory_files(tmp_path: Path) -> None:
    missing = run_cli("answers", "validate", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2
    assert "does not exist" in missing.stderr
    directory = run_cli("answers", "validate", str(tmp_path))
    assert directory.exit_code == 2
    assert "is a directory" in directory.stderr
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    not_text = run_cli("answers", "validate", str(binary))
    assert not_text.exit_code == 2
    assert "not UTF-8" in not_text.stderr or "not text" in not_text.stderr


def test_unreadable_file_is_reported_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root can read any file, so the kernel's EACCES is produced at the open() call itself.
    path = tmp_path / "a.yaml"
    path.write_text("version: 1\n")
    real_open = os.open

    def deny(name: str, *args: Any, **kwargs: Any) -> int:
        if Path(name) == path:
            raise PermissionError(13, "Permission denied")
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    result = run_cli("answers", "validate", str(path))
    assert result.exit_code == 2
    assert "cannot be read (permission denied)" in result.stderr


def test_secret_in_the_answer_file_points_to_the_secrets_file(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("version: 1\ntarget: development\nopenai_api_key: sk-live-abcdef123456\n")
    result = run_cli("answers", "validate", str(path))
    assert result.exit_code == 2
    assert "CODEQUAL_OPENAI_API_KEY" in result.stderr
    assert "sk-live-abcdef123456" not in result.output


def test_unknown_command_is_usage_exit_2() -> None:
    result = run_cli("answers", "frobnicate")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_field_mistakes_do_not_hide_rules_between_sections(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(
        "version: 1\n"
        "target: production\n"
        "domain: cq.example.com\n"
        "databse: {}\n"
        "database: {kind: sqlite, port: 0}\n"
        "tls: {mode: none}\n"
    )
    result = run_cli("answers", "validate", str(path))
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith(str(path))]
    assert [line.split(": ")[1] for line in lines] == [
        "databse",
        "database.kind",
        "database.port",
        "tls.mode",
    ]
    assert "sqlite is for development only" in lines[1]
