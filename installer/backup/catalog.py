"""The archives in a backup directory: list them, record verifications, prune old ones.

An archive is ``<install>-<YYYYmmddTHHMMSSZ>-<release>.cqbackup``; ``backup verify``
records a successful verification beside it as ``<archive>.verified.json`` (with the
archive's size and modification time, so a replaced or damaged file no longer counts as
verified). ``backup prune --keep N`` keeps the N newest archives and, whatever N, the
newest *verified* one: the last archive known to restore is never deleted for a newer
one nobody has checked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from installer.backup.archive import SUFFIX, BackupManifest
from installer.statedir import atomic_write_json, read_json

RECORD_SUFFIX = ".verified.json"
_NAME = re.compile(r"^(?P<install>.+)-(?P<stamp>\d{8}T\d{6}Z)-(?P<release>[^/]+)\.cqbackup$")


@dataclass(frozen=True)
class ArchiveEntry:
    """One archive file and what its name and verification record say."""

    path: Path
    size: int
    install: str
    created: str  # ISO 8601, UTC
    release: str
    verified: dict[str, Any] | None

    @property
    def name(self) -> str:
        return self.path.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "archive": str(self.path),
            "name": self.name,
            "size": self.size,
            "install": self.install,
            "created": self.created,
            "release": self.release,
            "verified": self.verified is not None,
            "verification": self.verified,
        }


def record_path(archive: Path) -> Path:
    return archive.with_name(archive.name + RECORD_SUFFIX)


def _stat_key(archive: Path) -> dict[str, int]:
    stat = archive.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def write_verification(
    archive: Path, manifest: BackupManifest, mode: str, details: dict[str, Any] | None = None
) -> Path:
    """Record that ``archive`` verified (``mode``: ``quick`` or ``full``); the record's path."""
    record = {
        "format": 1,
        "verified_at": datetime.now(timezone.utc)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z"),
        "mode": mode,
        "release": manifest.release,
        "created": manifest.created,
        "members": len(manifest.members),
        "archive": _stat_key(archive),
        **(details or {}),
    }
    path = record_path(archive)
    atomic_write_json(path, record, 0o600)
    return path


def read_verification(archive: Path) -> dict[str, Any] | None:
    """The archive's verification record, when it is there and still about this file."""
    record = read_json(record_path(archive))
    if not isinstance(record, dict):
        return None
    try:
        if record.get("archive") != _stat_key(archive):
            return None
    except OSError:
        return None
    return record


def _created(stamp: str) -> str:
    moment = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


def list_archives(directory: Path) -> list[ArchiveEntry]:
    """Every archive in ``directory``, newest first (unfinished ``.partial`` files left out)."""
    if not directory.is_dir():
        return []
    entries: list[ArchiveEntry] = []
    for path in directory.iterdir():
        if not path.name.endswith(SUFFIX) or not path.is_file():
            continue
        match = _NAME.match(path.name)
        if match is None:
            continue
        entries.append(
            ArchiveEntry(
                path=path,
                size=path.stat().st_size,
                install=match["install"],
                created=_created(match["stamp"]),
                release=match["release"],
                verified=read_verification(path),
            )
        )
    entries.sort(key=lambda e: (e.created, e.path.stat().st_mtime_ns, e.name), reverse=True)
    return entries


@dataclass(frozen=True)
class PrunePlan:
    keep: list[ArchiveEntry]
    delete: list[ArchiveEntry]
    kept_verified: ArchiveEntry | None  # kept only because it is the newest verified one


def prune_plan(entries: Sequence[ArchiveEntry], keep: int) -> PrunePlan:
    """Keep the ``keep`` newest of ``entries`` (newest first) and the newest verified one."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    kept = list(entries[:keep])
    newest_verified = next((e for e in entries if e.verified is not None), None)
    extra = None
    if newest_verified is not None and newest_verified not in kept:
        kept.append(newest_verified)
        extra = newest_verified
    delete = [e for e in entries if e not in kept]
    return PrunePlan(kept, delete, extra)


def delete_archive(entry: ArchiveEntry) -> None:
    entry.path.unlink(missing_ok=True)
    record_path(entry.path).unlink(missing_ok=True)
