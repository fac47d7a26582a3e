"""The Backups screen's API: the installation, the previews, and the event streams' ends.

Real ``age``/``age-keygen`` and real archives (the writer of ``installer.backup.archive``);
nothing here reaches Docker: the streams are driven only as far as they go before an
Engine would be needed (a refusal, a wrong key), which is what the screen must show.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.answers import AnswerFile
from installer.backup import actions
from installer.backup.crypto import keygen, recipient_of
from installer.credentials import LoadedSecrets, Secrets
from installer.errors import ExitCode
from installer.events import Event
from installer.runner import CancelToken
from tests.support.backup_archives import RELEASE, make_archive, make_installation


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    root = tmp_path_factory.mktemp("keys")
    identity = root / "backup.key"
    recipient = keygen(identity)
    other = root / "other.key"
    keygen(other)
    return identity, recipient, other


def _answers(install_dir: Path, **extra: object) -> AnswerFile:
    return AnswerFile.model_validate(
        {"version": 1, "target": "development", "install_dir": str(install_dir), **extra}
    )


def _secrets() -> LoadedSecrets:
    return LoadedSecrets(secrets=Secrets(), origin={})


def test_installed_at_reads_only_an_installed_result(tmp_path: Path) -> None:
    assert actions.installed_at(tmp_path) is None
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "result.json").write_text('{"status": "failed"}')
    assert actions.installed_at(tmp_path) is None
    (tmp_path / "state" / "result.json").write_text("{not json")
    assert actions.installed_at(tmp_path) is None
    make_installation(tmp_path, "codequal-x-abc123", target="production")
    found = actions.installed_at(tmp_path)
    assert found == actions.Installation(
        install_dir=str(tmp_path),
        target="production",
        release=RELEASE,
        project="codequal-x-abc123",
        database="sqlite",
    )


def test_default_install_dir_is_the_answer_files() -> None:
    assert actions.default_install_dir() == AnswerFile.model_fields["install_dir"].default


def test_create_preview_says_what_is_written_where(
    tmp_path: Path, keys: tuple[Path, str, Path]
) -> None:
    _, recipient, _ = keys
    install_dir = tmp_path / "install"
    answers = _answers(install_dir, backup={"recipients": [recipient]})
    make_installation(install_dir, answers.compose_project)
    preview = actions.create_preview(answers)
    assert preview.problems == []
    assert preview.directory == install_dir / "backups"
    assert preview.name_pattern == f"{answers.compose_project}-<UTC time>-{RELEASE}.cqbackup"
    assert preview.recipients == [recipient]
    members = [member for member, _ in preview.contents]
    assert members == [
        "manifest.json",
        "database/sqlite.db.zst",
        "volumes/codequal_data.tar.zst",
        "volumes/deepwiki_cache.tar.zst",
        "config.tar.zst",
        "state.tar.zst",
    ]
    assert "codequal, deepwiki are paused" in preview.pauses
    # --to and --recipient override the answers, as on the command line.
    other = tmp_path / "elsewhere"
    preview = actions.create_preview(answers, recipients=["age1bad"], directory=other)
    assert preview.directory == other
    assert preview.problems == ["'age1bad' is not an age recipient"]


def test_create_preview_names_why_it_cannot_start(tmp_path: Path) -> None:
    answers = _answers(tmp_path / "nothing-here")
    preview = actions.create_preview(answers)
    assert any("no installation in" in p for p in preview.problems)
    assert preview.needs_recipient and not preview.recipients


def test_volumes_to_copy_leaves_the_database_volume_out() -> None:
    compose = {
        "services": {"postgres": {"volumes": ["pgdata:/var/lib/postgresql/data"]}},
        "volumes": {"pgdata": {}, "codequal_data": {}},
    }
    assert actions.volumes_to_copy(compose) == ["codequal_data"]
    assert actions.volumes_to_copy({}) == []


def test_restore_preview_over_an_installation_names_the_safety_backup(
    tmp_path: Path, keys: tuple[Path, str, Path]
) -> None:
    identity, recipient, _ = keys
    install_dir = tmp_path / "install"
    answers = _answers(install_dir, backup={"recipients": [recipient]})
    make_installation(install_dir, answers.compose_project)
    archive = make_archive(
        tmp_path / "archives", recipient, install="codequal", created="2026-12-04T17:00:00Z"
    )
    preview = actions.restore_preview(archive, identity, answers, _secrets())
    assert preview.allowed
    assert preview.release == RELEASE
    assert preview.existing is not None
    assert preview.safety_directory == install_dir / "backups"
    # The answers' recipient and the identity's (the same key here: listed once).
    assert preview.safety_recipients == [recipient]
    text = "\n".join(preview.replaces)
    assert "codequal_data" in text
    assert "SQLite database" in text and "3 rows" in text
    assert str(install_dir) in text


def test_restore_preview_on_a_fresh_host_takes_no_safety_backup(
    tmp_path: Path, keys: tuple[Path, str, Path]
) -> None:
    identity, recipient, _ = keys
    answers = _answers(tmp_path / "fresh")
    archive = make_archive(tmp_path, recipient, install="codequal", created="2026-12-04T17:00:00Z")
    preview = actions.restore_preview(archive, identity, answers, _secrets())
    assert preview.allowed
    assert preview.existing is None and preview.safety_directory is None
    assert preview.safety_recipients == []


def test_restore_preview_refuses_a_newer_release_and_another_engine(
    tmp_path: Path, keys: tuple[Path, str, Path]
) -> None:
    identity, recipient, _ = keys
    answers = _answers(tmp_path / "install")
    newer = make_archive(
        tmp_path, recipient, install="codequal", created="2026-12-04T17:00:00Z", release="99.0.0"
    )
    preview = actions.restore_preview(newer, identity, answers, _secrets())
    assert not preview.allowed
    assert "newer than the answers' release" in preview.refusals[0]
    postgres = make_archive(
        tmp_path, recipient, install="codequal", created="2026-12-04T18:00:00Z", engine="postgres"
    )
    preview = actions.restore_preview(postgres, identity, answers, _secrets())
    assert any("PostgreSQL" in r and "SQLite" in r for r in preview.refusals)


def test_restore_preview_with_the_wrong_identity_is_an_integrity_error(
    tmp_path: Path, keys: tuple[Path, str, Path]
) -> None:
    _, recipient, other = keys
    archive = make_archive(tmp_path, recipient, install="codequal", created="2026-12-04T17:00:00Z")
    from installer.backup.errors import BackupIntegrityError

    with pytest.raises(BackupIntegrityError) as caught:
        actions.restore_preview(archive, other, _answers(tmp_path / "i"), _secrets())
    assert caught.value.exit_code == ExitCode.BUNDLE_INTEGRITY


def _drain_in_a_thread(stream: Iterator[Event]) -> list[Event]:
    """Iterate ``stream`` in a worker thread, as the wizard does (no signal handlers)."""
    events: list[Event] = []
    errors: list[BaseException] = []

    def drain() -> None:
        try:
            events.extend(stream)
        except BaseException as e:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(e)

    worker = threading.Thread(target=drain)
    worker.start()
    worker.join(60)
    assert not worker.is_alive()
    if errors:
        raise errors[0]
    return events


def test_a_refused_restore_ends_in_one_run_failed_with_exit_2_and_changes_nothing(
    tmp_path: Path, keys: tuple[Path, str, Path]
) -> None:
    identity, recipient, _ = keys
    install_dir = tmp_path / "install"
    answers = _answers(install_dir)
    make_installation(install_dir, answers.compose_project)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    newer = make_archive(
        tmp_path / "a", recipient, install="codequal", created="2026-12-04T17:00:00Z", release="9.9"
    )
    before.extend(sorted(p.relative_to(tmp_path) for p in (tmp_path / "a").rglob("*")))
    before.append(Path("a"))
    events = _drain_in_a_thread(
        actions.restore_events(newer, identity, answers, _secrets(), cancel=CancelToken())
    )
    kinds = [e.type for e in events]
    assert kinds == ["run.started", "step.started", "step.failed", "run.failed"]
    assert events[-1].exit_code == ExitCode.USAGE
    assert "newer than the answers' release" in events[-1].message
    assert events[-1].data["hint"] == "nothing was changed"
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == sorted(before)


def test_verify_with_the_wrong_identity_ends_with_exit_4_in_a_worker_thread(
    tmp_path: Path, keys: tuple[Path, str, Path]
) -> None:
    _, recipient, other = keys
    archive = make_archive(tmp_path, recipient, install="codequal", created="2026-12-04T17:00:00Z")
    events = _drain_in_a_thread(actions.verify_events(archive, other, cancel=CancelToken()))
    assert events[0].type == "run.started"
    assert events[-1].type == "run.failed"
    assert events[-1].exit_code == ExitCode.BUNDLE_INTEGRITY
    assert [e.type for e in events].count("run.failed") == 1
    assert not (tmp_path / (archive.name + ".verified.json")).exists()


def test_the_sandbox_leaves_signals_alone_outside_the_main_thread() -> None:
    from installer.backup import sandbox

    def enter() -> None:
        with sandbox._terminate_raises(), sandbox._signals_ignored():
            pass

    errors: list[BaseException] = []

    def run() -> None:
        try:
            enter()
        except BaseException as e:  # noqa: BLE001 - checked below
            errors.append(e)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(10)
    assert errors == []


def test_exit_meanings_cover_every_documented_code() -> None:
    for code in ExitCode:
        assert actions.exit_meaning(int(code))
    assert "verification" in actions.exit_meaning(4)
    assert "age" in actions.exit_meaning(3)
    assert actions.exit_meaning(77) == "the run failed"


def test_verification_text(tmp_path: Path, keys: tuple[Path, str, Path]) -> None:
    from installer.backup.archive import read_manifest
    from installer.backup.catalog import list_archives, write_verification

    identity, recipient, _ = keys
    archive = make_archive(tmp_path, recipient, install="codequal", created="2026-12-04T17:00:00Z")
    (entry,) = list_archives(tmp_path)
    assert actions.verification_text(entry) == "no"
    write_verification(archive, read_manifest(archive, identity), "full")
    (entry,) = actions.list_backups(tmp_path)
    assert actions.verification_text(entry).startswith("full 20")
    assert recipient_of(identity) == recipient
