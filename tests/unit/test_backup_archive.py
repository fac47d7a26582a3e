"""The backup archive: manifest first, every member hashed, damage and wrong keys named.

Real ``age`` and ``age-keygen`` (Debian's package, installed by scripts/test).
"""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from installer.backup.archive import (
    FORMAT,
    MANIFEST,
    ArchiveWriter,
    BackupManifest,
    archive_name,
    open_archive,
    read_manifest,
    verify_hashes,
)
from installer.backup.crypto import encrypting, is_recipient, keygen, recipient_of
from installer.backup.errors import AgeMissing, BackupIntegrityError
from installer.errors import ExitCode, UsageError


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    root = tmp_path_factory.mktemp("keys")
    identity = root / "backup.key"
    recipient = keygen(identity)
    other = root / "other.key"
    keygen(other)
    return identity, recipient, other


def _manifest() -> BackupManifest:
    return BackupManifest(
        format=FORMAT,
        installer_version="0.1.0",
        release="1.0.0-test",
        schema_version="1",
        target="production",
        install="codequal-x-abc123",
        created="2026-12-04T17:00:00Z",
    )


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, keys: tuple[Path, str, Path]) -> Path:
    _, recipient, _ = keys
    directory = tmp_path_factory.mktemp("archives")
    with ArchiveWriter(directory, "a.cqbackup") as writer:
        with writer.member("database/postgres.pgdump") as out:
            for _ in range(5):
                out.write(os.urandom(100_000))
        with writer.member("config.tar.zst") as out:
            out.write(b"configuration " * 1000)
        path = writer.finish(_manifest(), [recipient])
    assert not (directory / ".a.cqbackup.partial").exists()
    return path


def test_keygen_writes_a_private_identity_and_refuses_to_overwrite(tmp_path: Path) -> None:
    identity = tmp_path / "k"
    recipient = keygen(identity)
    assert is_recipient(recipient)
    assert identity.stat().st_mode & 0o777 == 0o600
    assert recipient_of(identity) == recipient
    before = identity.read_bytes()
    with pytest.raises(UsageError, match="never overwritten"):
        keygen(identity)
    assert identity.read_bytes() == before


def test_the_archive_is_age_whose_plaintext_is_a_tar_with_the_manifest_first(
    archive: Path, keys: tuple[Path, str, Path]
) -> None:
    identity, _, _ = keys
    assert archive.read_bytes().startswith(b"age-encryption.org/v1\n")
    assert archive.stat().st_mode & 0o777 == 0o600
    plain = subprocess.run(
        ["age", "-d", "-i", str(identity), str(archive)], capture_output=True, check=True
    ).stdout
    assert b"configuration " not in archive.read_bytes()
    import io

    with tarfile.open(fileobj=io.BytesIO(plain), mode="r:") as tar:
        names = tar.getnames()
    assert names == [MANIFEST, "database/postgres.pgdump", "config.tar.zst"]


def test_manifest_records_each_member_and_the_reader_checks_them(
    archive: Path, keys: tuple[Path, str, Path]
) -> None:
    identity, _, _ = keys
    manifest = read_manifest(archive, identity)
    assert manifest.release == "1.0.0-test"
    assert [(m.name, m.size) for m in manifest.members] == [
        ("database/postgres.pgdump", 500_000),
        ("config.tar.zst", 14_000),
    ]
    seen = {}
    with open_archive(archive, identity) as reader:
        for info, stream in reader.members():
            seen[info.name] = len(stream.read(10))  # read part: the rest is hashed on
    assert seen == {"database/postgres.pgdump": 10, "config.tar.zst": 10}
    assert verify_hashes(archive, identity).members == manifest.members


def _damaged(archive: Path, tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / archive.name
    path.write_bytes(content)
    return path


def test_one_flipped_byte_names_the_member(
    archive: Path, keys: tuple[Path, str, Path], tmp_path: Path
) -> None:
    identity, _, _ = keys
    data = bytearray(archive.read_bytes())
    data[300_000] ^= 0x01  # inside the dump
    with pytest.raises(BackupIntegrityError) as caught:
        verify_hashes(_damaged(archive, tmp_path, bytes(data)), identity)
    assert caught.value.member == "database/postgres.pgdump"
    assert "database/postgres.pgdump" in caught.value.message
    assert caught.value.exit_code == ExitCode.BUNDLE_INTEGRITY == 4


def test_a_one_byte_truncation_is_found(
    archive: Path, keys: tuple[Path, str, Path], tmp_path: Path
) -> None:
    identity, _, _ = keys
    with pytest.raises(BackupIntegrityError) as caught:
        verify_hashes(_damaged(archive, tmp_path, archive.read_bytes()[:-1]), identity)
    assert caught.value.member is not None
    assert caught.value.member in caught.value.message


def test_a_wrong_identity_names_the_key(archive: Path, keys: tuple[Path, str, Path]) -> None:
    _, _, other = keys
    with pytest.raises(BackupIntegrityError, match="wrong key") as caught:
        read_manifest(archive, other)
    assert caught.value.member is None


def test_a_member_that_differs_from_the_manifest_is_named(
    tmp_path: Path, keys: tuple[Path, str, Path]
) -> None:
    """Plaintext changed before encryption (age itself cannot see it): the hash does."""
    identity, recipient, _ = keys
    with ArchiveWriter(tmp_path, "b.cqbackup") as writer:
        with writer.member("state.tar.zst") as out:
            out.write(b"state")
        with writer.member("config.tar.zst") as out:
            out.write(b"config")
        path = writer.finish(_manifest(), [recipient])
        # Assemble again with one member's staged bytes changed: the manifest keeps the
        # hash taken when it was written.
        writer.staged("config.tar.zst").write_bytes(b"CONFIG")
        forged = writer.finish(_manifest(), [recipient])
    assert forged == path
    with pytest.raises(BackupIntegrityError) as caught:
        verify_hashes(path, identity)
    assert caught.value.member == "config.tar.zst"


def test_encryption_needs_a_valid_recipient(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no age recipient"), encrypting([], tmp_path / "x"):
        pass
    with (
        pytest.raises(UsageError, match="not an age X25519 recipient"),
        encrypting(["age1nope"], tmp_path / "x"),
    ):
        pass


def test_age_missing_is_a_prerequisite_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AgeMissing, match="not installed") as caught:
        keygen(tmp_path / "k")
    assert caught.value.exit_code == ExitCode.PREREQUISITES
    assert "apt-get install age" in (caught.value.hint or "")


def test_archive_name() -> None:
    assert (
        archive_name("codequal-x-abc123", "2026-12-04T17:00:00Z", "1.0.0")
        == "codequal-x-abc123-20261204T170000Z-1.0.0.cqbackup"
    )
