"""support-bundle: redaction by known values in every encoding, and the fail-closed re-check."""

from __future__ import annotations

import base64
import json
import stat
import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from installer import support_bundle
from installer.credentials import LoadedSecrets, Secrets
from installer.engine.docker import ContainerInfo
from installer.errors import ExitCode
from installer.support_bundle import (
    RedactionFailed,
    create_support_bundle,
    forms_of,
    known_forms,
    redact,
)
from installer.validation import load_answers

SUPPLIED = {
    "openai_api_key": "sk-test-OPENAI/key+with=odd&chars",
    "github_token": "ghp_0123456789abcdefghijklmnopqrstuvwxyz",
}
GENERATED = {"database_password": "gen-DB-pass_0123456789abcdefXYZ"}


def plantings(value: str) -> list[str]:
    """The value as a careless log would show it: raw, URL-encoded, base64 in every way."""
    raw = value.encode()
    out = [value, quote(value, safe=""), quote_plus(value)]
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        out.append(encode(raw).decode())
        out.append(encode(raw).decode().rstrip("="))
        for prefix in (b"", b"u", b"us", b"user:"):  # inside HTTP basic auth, at each alignment
            out.append(encode(prefix + raw + b"!tail").decode())
    return out


@pytest.fixture
def installation(tmp_path: Path) -> dict[str, Any]:
    install_dir = tmp_path / "install"
    state = install_dir / "state"
    (state / "logs").mkdir(parents=True)
    (state / "generated-secrets.json").write_text(json.dumps(GENERATED))
    every = [
        form for value in [*SUPPLIED.values(), *GENERATED.values()] for form in plantings(value)
    ]
    (state / "logs" / "apply-1.log").write_text(
        "\n".join(f"line {i}: token={form};" for i, form in enumerate(every)) + "\n"
    )
    (state / "history.jsonl").write_text('{"kind": "install"}\n')
    (state / "result.json").write_text(json.dumps({"status": "installed", "compose_project": "p"}))
    (install_dir / ".env").write_text(f"DATABASE_PASSWORD={GENERATED['database_password']}\n")
    (install_dir / "nginx" / "ssl").mkdir(parents=True)
    (install_dir / "nginx" / "ssl" / "codequal.key").write_text(
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n"
        "-----END PRIVATE KEY-----\n"
    )
    (install_dir / "docker-compose.yml").write_text(
        f"services: {{}}\n# url: postgres://u:{quote(GENERATED['database_password'], safe='')}@db\n"
    )
    answers = tmp_path / "answers.yaml"
    answers.write_text(
        json.dumps({"version": 1, "target": "development", "install_dir": str(install_dir)})
    )
    return {"answers": load_answers(str(answers)), "install_dir": install_dir, "every": every}


class FakeEngine:
    """Docker's answers for a project with one container whose log holds secrets."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def project_containers(self, project: str) -> list[ContainerInfo]:
        return [
            ContainerInfo(
                id="a" * 64,
                name="p-codequal-1",
                service="codequal",
                state="running",
                health="healthy",
                exit_code=None,
                image="codequal-test/standin:1",
                image_id="sha256:" + "b" * 64,
                config_hash=None,
                oneoff=False,
            )
        ]

    def logs(self, container_id: str, tail: int = 20) -> list[str]:
        return self.log[-tail:]


@pytest.fixture(autouse=True)
def no_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    class Report:
        def to_json(self) -> str:
            return json.dumps({"results": [{"name": "ports", "status": "pass"}]})

    from installer.checks import prerequisites

    monkeypatch.setattr(prerequisites, "run_prerequisites", lambda subject, **_: Report())


def _loaded() -> LoadedSecrets:
    return LoadedSecrets(Secrets.model_validate(SUPPLIED))


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as archive:
        return {
            m.name: archive.extractfile(m).read()  # type: ignore[union-attr]
            for m in archive
            if m.isfile()
        }


def test_every_form_of_every_secret_is_searched_for() -> None:
    value = GENERATED["database_password"]
    forms = {f.text for f in forms_of("database_password", value)}
    for planted in plantings(value):
        assert any(form in planted.encode() for form in forms), planted
    kinds = {f.kind for f in forms_of("database_password", value)}
    assert all(k.startswith("database_password (") for k in kinds)
    assert not any(value in k for k in kinds)


def test_redaction_replaces_longest_first() -> None:
    forms = known_forms({"a": "abcdefgh", "b": "abcdefghijkl"})
    clean, count = redact(b"x abcdefghijkl y abcdefgh", forms)
    assert clean == b"x [REDACTED] y [REDACTED]"
    assert count == 2


def test_the_archive_holds_no_known_secret_in_any_form(
    installation: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "out" / "support.tar.gz"
    engine = FakeEngine([f"container says {form}" for form in installation["every"]])
    bundle = create_support_bundle(installation["answers"], _loaded(), out, engine=engine)
    assert bundle.out == out.resolve()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    members = _members(out)
    names = {name.split("/", 1)[1] for name in members}
    assert {
        "answers.json",
        "status.json",
        "history.jsonl",
        "result.json",
        "logs/apply-1.log",
        "checks.json",
        "config/docker-compose.yml",
        "CONTENTS.json",
    } <= names
    assert any(n.startswith("containers/codequal-") and n.endswith(".log") for n in names)
    assert "config/.env" not in names
    assert "config/nginx/ssl/codequal.key" not in names
    contents = json.loads(next(v for k, v in members.items() if k.endswith("CONTENTS.json")))
    assert ".env (holds secrets)" in contents["left_out"]
    assert contents["redacted"]["replacements"] >= len(installation["every"]) * 2
    everything = b"\n".join(members.values())
    for value in [*SUPPLIED.values(), *GENERATED.values()]:
        for planted in plantings(value):
            assert planted.encode() not in everything
    assert b"[REDACTED]" in members[next(k for k in members if k.endswith("apply-1.log"))]
    assert list(out.parent.iterdir()) == [out]


def test_a_value_the_redactor_misses_stops_the_archive(
    installation: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing_one(values: dict[str, str]) -> list[support_bundle.Form]:
        forms = known_forms(values)
        # Every base64 form of one value (one alone is covered by another: not a miss).
        return [f for f in forms if not f.kind.startswith("github_token (base64")]

    monkeypatch.setattr(support_bundle, "redaction_forms", missing_one)
    out = tmp_path / "out" / "support.tar.gz"
    with pytest.raises(RedactionFailed) as caught:
        create_support_bundle(
            installation["answers"], _loaded(), out, engine=FakeEngine(["nothing here"])
        )
    error = caught.value
    assert error.exit_code == ExitCode.REDACTION_FAILED == 5
    assert "github_token (base64" in error.message
    assert "logs/apply-1.log" in error.message
    for value in SUPPLIED.values():
        assert value not in error.message and value not in (error.hint or "")
    assert list(out.parent.iterdir()) == [], "nothing may be left on disk"


def test_the_command_exits_5_and_writes_nothing_when_a_value_is_missed(
    installation: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from installer.cli import main

    monkeypatch.setattr(
        support_bundle,
        "redaction_forms",
        lambda values: [f for f in known_forms(values) if not f.kind.startswith("openai")],
    )
    monkeypatch.setattr(support_bundle.SupportBundle, "_containers", lambda self: None)
    answers = tmp_path / "a.yaml"
    answers.write_text(installation["answers"].model_dump_json())
    secrets = tmp_path / "s.yaml"
    secrets.write_text(json.dumps(SUPPLIED))
    secrets.chmod(0o600)
    out = tmp_path / "sb" / "x.tar.gz"
    with pytest.raises(SystemExit) as exited:
        main(
            [
                "support-bundle",
                "--answers",
                str(answers),
                "--secrets",
                str(secrets),
                "--out",
                str(out),
            ]
        )
    assert exited.value.code == 5
    err = capsys.readouterr().err
    assert "openai_api_key (raw)" in err
    assert SUPPLIED["openai_api_key"] not in err
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_the_upgrade_rollback_identity_is_a_known_value(
    installation: dict[str, Any], tmp_path: Path
) -> None:
    key = "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"
    state = installation["install_dir"] / "state"
    (state / "rollback-identity.key").write_text(f"# created: now\n{key}\n")
    (state / "logs" / "apply-2.log").write_text(f"oops {key}\n")
    out = tmp_path / "o" / "s.tar.gz"
    create_support_bundle(installation["answers"], _loaded(), out, engine=FakeEngine([]))
    members = _members(out)
    assert all(key.encode() not in data for data in members.values())
    assert not any(name.endswith("rollback-identity.key") for name in members)
