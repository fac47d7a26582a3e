"""``codequal-installer plan``: render into DIR, summarize, never show a secret."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.unit.cli_helpers import run_cli

# Rendered as without a proxy, whatever the environment running the tests has.
pytestmark = pytest.mark.usefixtures("without_proxy")

PRODUCTION = """\
version: 1
target: production
domain: codequal.example.com
"""
KUBERNETES = """\
version: 1
target: kubernetes
domain: codequal.example.com
kubernetes:
  autoscaling: {cpu_percent: 70}
"""


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def answers_file(tmp_path: Path) -> Path:
    path = tmp_path / "answers.yaml"
    path.write_text(PRODUCTION)
    return path


@pytest.fixture
def secrets_file(tmp_path: Path) -> Path:
    path = tmp_path / "secrets.yaml"
    path.write_text("anthropic_api_key: sk-ant-cli-test-value-77\n")
    path.chmod(0o600)
    return path


def test_plan_writes_every_file_and_summarizes_without_secrets(
    answers_file: Path, secrets_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEQUAL_OPENAI_API_KEY", "sk-openai-from-env-88")
    out = tmp_path / "out"
    result = run_cli(
        "plan", "--answers", str(answers_file), "--secrets", str(secrets_file), "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    files = snapshot(out)
    assert "docker-compose.yml" in files and ".env" in files
    assert "nginx/conf.d/codequal.conf" in files
    assert (out / ".env").stat().st_mode & 0o777 == 0o600
    lines = result.stdout.splitlines()
    assert any(line.split()[:2] == ["new", ".env"] and "holds secrets" in line for line in lines)
    assert any(line.split() == ["anthropic_api_key", "<from", "secrets", "file>"] for line in lines)
    assert any(line.split() == ["openai_api_key", "<from", "environment>"] for line in lines)
    assert any(line.split() == ["database_password", "<generated>"] for line in lines)
    generated = json.loads((out / "state/generated-secrets.json").read_text())
    for value in [*generated.values(), "sk-ant-cli-test-value-77", "sk-openai-from-env-88"]:
        assert value not in result.output
    # The .env's content was shown as a diff of a new file: keys only.
    assert "+ANTHROPIC_API_KEY=<hidden>" in result.stdout


def test_plan_twice_gives_identical_files_and_reports_nothing_changed(
    answers_file: Path, secrets_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ("plan", "--answers", str(answers_file), "--secrets", str(secrets_file))
    assert run_cli(*args, "--out", str(out)).exit_code == 0
    first = snapshot(out)
    second_run = run_cli(*args, "--out", str(out))
    assert second_run.exit_code == 0
    assert snapshot(out) == first
    assert "Changes against" not in second_run.stdout
    assert "0 new, 0 changed" in second_run.stdout


def test_plan_after_one_changed_answer_shows_exactly_that_change(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text(KUBERNETES)
    out = tmp_path / "out"
    assert run_cli("plan", "--answers", str(answers), "--out", str(out)).exit_code == 0
    answers.write_text(KUBERNETES.replace("cpu_percent: 70", "cpu_percent: 90"))
    result = run_cli("plan", "--answers", str(answers), "--out", str(out))
    assert result.exit_code == 0, result.output
    diff = result.stdout.split("Changes against", 1)[1].splitlines()[1:]
    body = [line for line in diff if line.startswith(("-", "+", "@@"))]
    (hpa,) = [p.relative_to(out) for p in out.glob("kubernetes/*-horizontalpodautoscaler-*")]
    assert [line for line in body if not line.startswith("@@")] == [
        f"--- a/{hpa}",
        f"+++ b/{hpa}",
        "-          averageUtilization: 70",
        "+          averageUtilization: 90",
    ]
    assert "1 changed" in result.stdout


def test_plan_changes_nothing_outside_the_output_directory(
    answers_file: Path, tmp_path: Path
) -> None:
    watched = tmp_path / "watched"
    watched.mkdir()
    (watched / "answers.yaml").write_text(PRODUCTION)
    before = snapshot(watched)
    result = run_cli(
        "plan", "--answers", str(watched / "answers.yaml"), "--out", str(watched / "out")
    )
    assert result.exit_code == 0, result.output
    after = {k: v for k, v in snapshot(watched).items() if not k.startswith("out/")}
    assert after == before


def test_plan_with_invalid_answers_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text("version: 1\ntarget: production\ndatabase: {kind: sqlite}\n")
    out = tmp_path / "out"
    result = run_cli("plan", "--answers", str(answers), "--out", str(out))
    assert result.exit_code == 2
    assert "database.kind" in result.stderr
    assert not out.exists()
    assert "Traceback" not in result.output


def test_plan_without_a_required_secret_names_it_and_exits_2(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text(
        PRODUCTION + "database: {kind: postgres, managed: true, host: db.example.net}\n"
    )
    result = run_cli("plan", "--answers", str(answers), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "database_password" in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.output


def test_plan_into_an_unwritable_place_is_a_clear_error(answers_file: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_cli("plan", "--answers", str(answers_file), "--out", str(blocker / "out"))
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert str(blocker) in result.stderr


def test_plan_with_source_dir_mounts_it_for_development(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text("version: 1\ntarget: development\n")
    source = tmp_path / "checkout"
    source.mkdir()
    out = tmp_path / "out"
    result = run_cli(
        "plan", "--answers", str(answers), "--out", str(out), "--source-dir", str(source)
    )
    assert result.exit_code == 0, result.output
    assert f'"{source}:/app/src:ro"' in (out / "docker-compose.yml").read_text()
    missing = run_cli(
        "plan",
        "--answers",
        str(answers),
        "--out",
        str(out),
        "--source-dir",
        str(tmp_path / "nope"),
    )
    assert missing.exit_code == 2


def test_plan_lists_kubernetes_objects_in_apply_order(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text(KUBERNETES)
    result = run_cli("plan", "--answers", str(answers), "--out", str(tmp_path / "out"))
    section = result.stdout.split("Kubernetes objects, in apply order:\n", 1)[1]
    objects = [line.strip() for line in section.split("\n\n", 1)[0].splitlines()]
    assert objects[0] == "Namespace/codequal"
    assert objects[-1].startswith("NetworkPolicy/")
    assert os.path.isdir(tmp_path / "out/kubernetes")
