"""Listing archives, verification records, and prune's rule: never the newest verified."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from installer.backup.archive import FORMAT, BackupManifest
from installer.backup.catalog import (
    list_archives,
    prune_plan,
    read_verification,
    record_path,
    write_verification,
)


def _archive(directory: Path, stamp: str, release: str = "1.0.0") -> Path:
    path = directory / f"codequal-x-abc123-{stamp}-{release}.cqbackup"
    path.write_bytes(os.urandom(64))
    return path


def _manifest() -> BackupManifest:
    return BackupManifest(
        format=FORMAT,
        installer_version="0.1.0",
        release="1.0.0",
        target="development",
        install="codequal-x-abc123",
        created="2026-12-01T10:00:00Z",
    )


@pytest.fixture
def archives(tmp_path: Path) -> list[Path]:
    paths = [_archive(tmp_path, f"2026120{day}T100000Z") for day in (1, 2, 3, 4)]  # oldest first
    (tmp_path / ".codequal-x-abc123-20261205T100000Z-1.0.0.cqbackup.partial").mkdir()
    (tmp_path / "codequal-x-abc123-20261206T100000Z-1.0.0.cqbackup.partial").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not an archive")
    return paths


def test_list_is_newest_first_and_leaves_out_unfinished_files(
    tmp_path: Path, archives: list[Path]
) -> None:
    entries = list_archives(tmp_path)
    assert [e.path for e in entries] == list(reversed(archives))
    assert entries[0].created == "2026-12-04T10:00:00Z"
    assert entries[0].release == "1.0.0" and entries[0].install == "codequal-x-abc123"
    assert all(e.verified is None for e in entries)
    assert list_archives(tmp_path / "missing") == []


def test_a_verification_record_counts_only_for_the_same_file(
    tmp_path: Path, archives: list[Path]
) -> None:
    record = write_verification(archives[0], _manifest(), "quick")
    assert record == record_path(archives[0])
    assert record.stat().st_mode & 0o777 == 0o600
    verified = read_verification(archives[0])
    assert verified is not None and verified["mode"] == "quick"
    archives[0].write_bytes(os.urandom(65))  # replaced: the record no longer applies
    assert read_verification(archives[0]) is None


def test_prune_keeps_the_newest_n(tmp_path: Path, archives: list[Path]) -> None:
    plan = prune_plan(list_archives(tmp_path), 2)
    assert [e.path for e in plan.keep] == [archives[3], archives[2]]
    assert [e.path for e in plan.delete] == [archives[1], archives[0]]
    assert plan.kept_verified is None


def test_prune_never_deletes_the_newest_verified_archive(
    tmp_path: Path, archives: list[Path]
) -> None:
    write_verification(archives[0], _manifest(), "full")
    write_verification(archives[1], _manifest(), "quick")
    plan = prune_plan(list_archives(tmp_path), 1)
    assert [e.path for e in plan.keep] == [archives[3], archives[1]]
    assert plan.kept_verified is not None and plan.kept_verified.path == archives[1]
    assert [e.path for e in plan.delete] == [archives[2], archives[0]]
    # the newest archive verified: nothing extra is kept
    write_verification(archives[3], _manifest(), "quick")
    plan = prune_plan(list_archives(tmp_path), 1)
    assert [e.path for e in plan.keep] == [archives[3]] and plan.kept_verified is None


def test_prune_needs_a_positive_count(tmp_path: Path, archives: list[Path]) -> None:
    with pytest.raises(ValueError):
        prune_plan(list_archives(tmp_path), 0)
