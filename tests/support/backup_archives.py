"""Small real backup archives and a pretend installation, for the Backups screen's tests.

The archives are written by the real :class:`~installer.backup.archive.ArchiveWriter` and
encrypted by the real ``age`` to a real ``age-keygen`` identity; the "installation" is the
two files an installed Compose target leaves that the Backups screen reads
(``state/result.json`` and ``docker-compose.yml``), with no container behind them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from installer.backup.archive import (
    FORMAT,
    ArchiveWriter,
    BackupManifest,
    DatabaseInfo,
    TableStats,
    VolumeInfo,
    archive_name,
)

RELEASE = "0.1.0"

COMPOSE = """\
name: {project}
services:
  codequal:
    image: codequal-test/standin:1
    volumes:
      - codequal_data:/app/data
  deepwiki:
    image: codequal-test/standin:1
    volumes:
      - deepwiki_cache:/cache
volumes:
  codequal_data: {{}}
  deepwiki_cache: {{}}
"""


def make_installation(install_dir: Path, project: str, *, target: str = "development") -> None:
    """What ``apply`` leaves that the Backups screen reads: the result and the compose file."""
    (install_dir / "state").mkdir(parents=True, exist_ok=True)
    result = {
        "format": 1,
        "status": "installed",
        "target": target,
        "install_dir": str(install_dir),
        "compose_project": project,
        "release": {"version": RELEASE, "name": "codequal"},
        "database": {"kind": "sqlite", "managed": False},
    }
    (install_dir / "state" / "result.json").write_text(json.dumps(result))
    (install_dir / "docker-compose.yml").write_text(COMPOSE.format(project=project))


def make_archive(
    directory: Path,
    recipient: str,
    *,
    install: str,
    created: str,
    release: str = RELEASE,
    engine: str = "sqlite",
    answers: dict[str, Any] | None = None,
) -> Path:
    """A small real archive (a database member and one volume) in ``directory``."""
    manifest = BackupManifest(
        format=FORMAT,
        installer_version="0.1.0",
        release=release,
        schema_version="1",
        target="development",
        install=install,
        created=created,
        answers=answers or {"version": 1, "target": "development"},
        database=DatabaseInfo(
            engine=engine,
            method="sqlite backup API" if engine == "sqlite" else "pg_dump -Fc",
            tables={"items": TableStats(rows=3, checksum="123")},
        ),
        volumes=[
            VolumeInfo(
                name="codequal_data", member="volumes/codequal_data.tar.zst", files=2, bytes=10
            )
        ],
    )
    database = "database/sqlite.db.zst" if engine == "sqlite" else "database/postgres.pgdump"
    with ArchiveWriter(directory, archive_name(install, created, release)) as writer:
        with writer.member(database) as out:
            out.write(os.urandom(2000))
        with writer.member("volumes/codequal_data.tar.zst") as out:
            out.write(b"volume " * 300)
        return writer.finish(manifest, [recipient])
