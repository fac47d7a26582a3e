"""restore's decisions that need no Docker Engine: refusals, where its steps go in the
target's plan, which archived state files it takes, and how it compares with a manifest."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from installer.answers import AnswerFile
from installer.backup.restore import (
    ArchiveSource,
    RestorePlan,
    _state_path,
    compare_tables,
    insert_steps,
    peek_root,
    refusals,
)
from installer.credentials import LoadedSecrets, Secrets
from installer.runner import Step
from installer.targets.compose import ComposeTarget


def _answers(tmp_path: Path, **extra: Any) -> AnswerFile:
    document: dict[str, Any] = {
        "version": 1,
        "target": "production",
        "install_dir": str(tmp_path / "install"),
        "domain": "codequal.test",
        "monitoring": {"enabled": False},
        "release": {"version": "1.0.0-test"},
    }
    document.update(extra)
    return AnswerFile.model_validate(document)


def _source(tmp_path: Path, **manifest: Any) -> ArchiveSource:
    document: dict[str, Any] = {
        "format": "codequal-backup/1",
        "release": "1.0.0-test",
        "target": "production",
        "created": "2026-12-04T17:00:00Z",
        "schema_version": "1",
        "database": {"engine": "postgres", "managed": False, "tables": {}},
        "volumes": [],
        "members": [],
    }
    document.update(manifest)
    return ArchiveSource(tmp_path / "a.cqbackup", tmp_path / "key", document)


def test_an_archive_of_the_same_or_an_older_release_is_accepted(tmp_path: Path) -> None:
    answers = _answers(tmp_path)
    assert refusals(_source(tmp_path), answers, "1.0.0-test") == []
    assert refusals(_source(tmp_path), answers, "2.0.0-test") == []


def test_an_archive_of_a_newer_release_is_refused(tmp_path: Path) -> None:
    problems = refusals(_source(tmp_path, release="2.0.0-test"), _answers(tmp_path), "1.0.0-test")
    assert len(problems) == 1
    assert "newer than the answers' release 1.0.0-test" in problems[0]


def test_sqlite_into_postgres_answers_is_refused_and_the_reverse_too(tmp_path: Path) -> None:
    sqlite = _source(tmp_path, database={"engine": "sqlite", "tables": {}})
    problems = refusals(sqlite, _answers(tmp_path), "1.0.0-test")
    assert problems and "SQLite database and the answers ask for PostgreSQL" in problems[0]
    development = _answers(tmp_path, target="development", domain="localhost")
    assert development.database.kind == "sqlite"
    assert refusals(sqlite, development, "1.0.0-test") == []
    problems = refusals(_source(tmp_path), development, "1.0.0-test")
    assert problems and "PostgreSQL database and the answers ask for SQLite" in problems[0]


def test_a_kubernetes_target_is_refused(tmp_path: Path) -> None:
    answers = AnswerFile.model_validate(
        {"version": 1, "target": "kubernetes", "domain": "codequal.test"}
    )
    problems = refusals(_source(tmp_path), answers, "1.0.0-test")
    assert any("not a Compose target" in p for p in problems)


class _Named(Step):
    def __init__(self, name: str) -> None:
        self.name = name


def test_steps_are_inserted_by_name_and_an_unknown_name_raises() -> None:
    steps = [_Named(n) for n in ("a", "b", "c")]
    out = insert_steps(steps, before={"b": [_Named("x")]}, after={"b": [_Named("y")]})
    assert [s.name for s in out] == ["a", "x", "b", "y", "c"]
    with pytest.raises(ValueError, match="no step 'z'"):
        insert_steps(steps, before={"z": [_Named("x")]})


def test_the_restore_plan_is_the_targets_plan_with_the_restore_steps_in_place(
    tmp_path: Path, test_releases_dir: Path
) -> None:
    target = ComposeTarget(_answers(tmp_path), LoadedSecrets(Secrets()))
    plan = RestorePlan(target, _source(tmp_path)).plan()
    assert [s.name for s in plan.steps] == [
        "prerequisites",
        "restore-safety-backup",
        "restore-state",
        "configuration",
        "containers",
        "restore-volumes",
        "restore-database",
        "database",
        "services",
        "verification",
        "monitoring",
        "restore-check",
    ]
    assert plan.identity != target.plan().identity
    assert plan.state.path == tmp_path / "install" / "state"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("generated-secrets.json", "generated-secrets.json"),
        ("./generated-secrets.json", "generated-secrets.json"),
        ("state/tls/codequal.key", "tls/codequal.key"),
        ("tls/codequal.crt", "tls/codequal.crt"),
        ("journal.json", None),
        ("result.json", None),
        ("history.jsonl", None),
        ("logs/apply-1.log", None),
        ("../generated-secrets.json", None),
        ("/etc/passwd", None),
        ("tls/../../x", None),
    ],
)
def test_restore_takes_only_the_generated_secrets_and_tls_from_the_state(
    name: str, expected: str | None
) -> None:
    assert _state_path(name) == expected


def test_tables_compare_by_rows_then_checksum_and_a_missing_table_is_named() -> None:
    manifest = {
        "public.items": {"rows": 3, "checksum": "10"},
        "public.schema_migrations": {"rows": 1, "checksum": "5"},
        "public.gone": {"rows": 0, "checksum": "0"},
    }
    live = {
        "public.items": {"rows": 3, "checksum": "11"},
        "public.schema_migrations": {"rows": 2, "checksum": "9"},
    }
    assert compare_tables(manifest, live) == [
        "table public.gone is missing",
        "table public.items: checksum 11 differs from the manifest's 10",
        "table public.schema_migrations: 2 rows, the manifest has 1",
    ]
    skipped = compare_tables(manifest, live, skip=("public.schema_migrations", "public.gone"))
    assert skipped == ["table public.items: checksum 11 differs from the manifest's 10"]
    assert compare_tables(manifest, dict(manifest)) == []


def _tar(*entries: tarfile.TarInfo) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for entry in entries:
            tar.addfile(entry, io.BytesIO(b"x" * entry.size) if entry.isfile() else None)
    return buffer.getvalue()


def test_the_volume_roots_owner_is_read_from_the_first_entry_and_the_stream_kept_whole() -> None:
    root = tarfile.TarInfo("./")
    root.type, root.uid, root.gid, root.mode = tarfile.DIRTYPE, 1000, 1001, 0o750
    item = tarfile.TarInfo("./items/1")
    item.size = 3
    data = _tar(root, item)
    found, stream = peek_root(io.BytesIO(data))
    assert found is not None
    assert (found.uid, found.gid, found.mode) == (1000, 1001, 0o750)
    assert stream.read(7) + stream.read() == data

    found, stream = peek_root(io.BytesIO(_tar(item)))
    assert found is None
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        assert [m.name for m in tar] == ["./items/1"]


def test_the_sandbox_publishes_nothing_and_its_network_is_internal(tmp_path: Path) -> None:
    import json
    import stat

    from installer.backup.sandbox import VERIFY_LABEL, Sandbox

    sandbox = Sandbox(_source(tmp_path), lambda _message: None)
    try:
        sandbox._write_project("codequal-test/postgres:1", ["codequal_data"], with_database=True)
        document = json.loads((sandbox.directory / "docker-compose.yml").read_text())
        assert document["name"] == sandbox.name and sandbox.name.startswith("codequal-verify-")
        assert document["networks"]["sandbox"]["internal"] is True
        assert all("ports" not in service for service in document["services"].values())
        assert document["services"]["postgres"]["networks"] == ["sandbox"]
        labelled = [document["networks"]["sandbox"], *document["volumes"].values()]
        assert all(item["labels"] == {VERIFY_LABEL: sandbox.name} for item in labelled)
        env = sandbox.directory / ".env"
        assert stat.S_IMODE(env.stat().st_mode) == 0o600
        password = env.read_text().strip().split("=", 1)[1]
        environment = document["services"]["postgres"]["environment"]
        assert environment["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD}"
        assert password not in json.dumps(document)
    finally:
        sandbox.remove()
    assert not sandbox.directory.exists()
