"""The backup archive: one age-encrypted tar stream whose first member is the manifest.

Layout (see the README's "Backups and restore"):

================================  ========================================================
``manifest.json``                 always first: versions, target, answers (no secrets),
                                  database facts with per-table row counts and checksums,
                                  volumes, consistency, and every member's size and SHA-256
``database/postgres.pgdump``      ``pg_dump -Fc`` (PostgreSQL)
``database/sqlite.db.zst``        a consistent SQLite copy, zstd-compressed
``volumes/<volume>.tar.zst``      each named volume, as the Engine's archive API gives it
``config.tar.zst``                the rendered configuration
``state.tar.zst``                 generated secrets, TLS material, journal, result, history
================================  ========================================================

Because the manifest comes first but describes every member, :class:`ArchiveWriter`
stages the members in a private directory beside the archive (hashed while written),
then streams manifest and members through ``age`` into ``<archive>.partial`` and renames
it. :class:`ArchiveReader` reads the plaintext straight from ``age -d`` and hashes each
member as it passes: a member that differs from the manifest, a stream cut short, or a
key that does not decrypt it raises :class:`BackupIntegrityError` naming the member or the
key. Nothing is ever held whole in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from installer.backup.crypto import AgeProcess, decrypting, encrypting
from installer.backup.errors import BackupIntegrityError
from installer.errors import InstallerError
from installer.statedir import StateWriteError

FORMAT = "codequal-backup/1"
MANIFEST = "manifest.json"
SUFFIX = ".cqbackup"
CHUNK = 1024 * 1024
_MANIFEST_LIMIT = 64 * 1024 * 1024

ProgressCallback = Callable[[int], None]
"""Called with the number of bytes just processed."""


# -- the manifest -----------------------------------------------------------------------


class _Model(BaseModel):
    # Readers accept fields a newer writer added; the format string names breaking changes.
    model_config = ConfigDict(extra="allow")


class MemberInfo(_Model):
    name: str = Field(description="Path of the member inside the archive.")
    size: int = Field(ge=0, description="Bytes.")
    sha256: str = Field(description="SHA-256 of the member's bytes, hex.")


class TableStats(_Model):
    rows: int = Field(ge=0)
    checksum: str = Field(description="Order-independent content checksum (see tables.py).")


class DatabaseInfo(_Model):
    engine: str = Field(description="postgres | sqlite")
    method: str = Field(description="How the dump was made (pg_dump -Fc, sqlite backup API).")
    managed: bool = False
    server_version: str | None = None
    name: str | None = None
    member: str | None = None
    tables: dict[str, TableStats] = Field(default_factory=dict)


class VolumeInfo(_Model):
    name: str = Field(description="The volume's name in the release manifest.")
    member: str
    files: int = 0
    bytes: int = 0


class Consistency(_Model):
    method: str
    pause_seconds: float = 0.0
    paused: list[str] = Field(default_factory=list)


class BackupManifest(_Model):
    format: str
    installer_version: str
    release: str
    schema_version: str | None = None
    target: str
    install: str
    install_dir: str | None = None
    created: str
    answers: dict[str, Any] = Field(default_factory=dict)
    database: DatabaseInfo | None = None
    volumes: list[VolumeInfo] = Field(default_factory=list)
    consistency: Consistency | None = None
    members: list[MemberInfo] = Field(default_factory=list)

    def member(self, name: str) -> MemberInfo | None:
        return next((m for m in self.members if m.name == name), None)


# -- writing ----------------------------------------------------------------------------


class HashingWriter(io.RawIOBase):
    """A write-only file that counts and hashes what passes through to ``target``."""

    def __init__(self, target: IO[bytes], progress: ProgressCallback | None = None) -> None:
        super().__init__()
        self._target = target
        self._progress = progress
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._target.write(view)
        self.sha256.update(view)
        self.size += len(view)
        if self._progress is not None:
            self._progress(len(view))
        return len(view)


class ArchiveWriter:
    """Stages members beside the archive, then writes the archive through ``age``.

    Use as a context manager: the staging directory (``<dir>/.<name>.partial/``, 0700) is
    removed when the block ends, however it ends::

        with ArchiveWriter(directory, name) as writer:
            with writer.member("config.tar.zst") as out:
                out.write(...)
            writer.finish(manifest, recipients)
    """

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.name = name
        self.path = directory / name
        self.staging = directory / f".{name}.partial"
        self.members: list[MemberInfo] = []

    def __enter__(self) -> ArchiveWriter:
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging.mkdir(mode=0o700)
        except OSError as e:
            raise StateWriteError(self.staging, e) from e
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    def staged(self, name: str) -> Path:
        return self.staging / "members" / name

    @contextlib.contextmanager
    def member(self, name: str, progress: ProgressCallback | None = None) -> Iterator[IO[bytes]]:
        """A staged member: write its bytes to the yielded file; hashed as written."""
        if self.has(name):
            raise ValueError(f"member {name} written twice")
        path = self.staged(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            handle = open(path, "xb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise StateWriteError(path, e) from e
        os.fchmod(handle.fileno(), 0o600)
        writer = HashingWriter(handle, progress)
        try:
            yield cast(IO[bytes], writer)
            handle.flush()
        except OSError as e:
            raise StateWriteError(path, e) from e
        finally:
            handle.close()
        digest = writer.sha256.hexdigest()
        self.members.append(MemberInfo(name=name, size=writer.size, sha256=digest))

    def has(self, name: str) -> bool:
        return any(m.name == name for m in self.members)

    def finish(
        self,
        manifest: BackupManifest,
        recipients: Sequence[str],
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Write manifest then members through ``age`` to ``<archive>.partial``; rename it.

        ``manifest.members`` is filled in here from what was staged.
        """
        manifest.members = list(self.members)
        if manifest.format != FORMAT:
            raise ValueError(f"unknown format {manifest.format}")
        document = json.dumps(manifest.model_dump(mode="json"), indent=1, sort_keys=False)
        partial = self.directory / f"{self.name}.partial"
        mtime = _epoch(manifest.created)
        try:
            encoded = document.encode()
            with (
                encrypting(recipients, partial) as age,
                tarfile.open(fileobj=age.stream, mode="w|", format=tarfile.PAX_FORMAT) as tar,
            ):
                _add(tar, MANIFEST, io.BytesIO(encoded), len(encoded), mtime)
                for member in self.members:
                    with open(self.staged(member.name), "rb") as source:
                        reader = _CountingReader(source, progress)
                        _add(tar, member.name, reader, member.size, mtime)
            os.chmod(partial, 0o600)
            os.replace(partial, self.path)
        except BrokenPipeError as e:
            partial.unlink(missing_ok=True)
            raise InstallerError("cannot encrypt the backup: age stopped reading") from e
        except OSError as e:
            partial.unlink(missing_ok=True)
            raise StateWriteError(partial, e) from e
        return self.path


def _add(
    tar: tarfile.TarFile, name: str, source: IO[bytes] | io.RawIOBase, size: int, mtime: float
) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = mtime
    tar.addfile(info, source)


class _CountingReader(io.RawIOBase):
    def __init__(self, source: IO[bytes], progress: ProgressCallback | None) -> None:
        super().__init__()
        self._source = source
        self._progress = progress

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        if data and self._progress is not None:
            self._progress(len(data))
        return data


def _epoch(created: str) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


# -- reading ----------------------------------------------------------------------------


class MemberStream(io.RawIOBase):
    """One member's bytes as read from the archive, hashed as they pass."""

    def __init__(self, source: IO[bytes], info: MemberInfo, progress: ProgressCallback | None):
        super().__init__()
        self._source = source
        self.info = info
        self._progress = progress
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(CHUNK if size is None or size < 0 else size)
        self.sha256.update(data)
        self.size += len(data)
        if data and self._progress is not None:
            self._progress(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


class ArchiveReader:
    """Reads an archive in order, verifying each member against the manifest.

    ::

        with ArchiveReader(path, identity) as reader:
            print(reader.manifest.release)
            for info, stream in reader.members():
                consume(stream)        # read what you need; the rest is hashed on
            # leaving the loop normally means every member matched and age exited 0

    A stream's bytes are only known good once the next member is reached (or the loop
    ends): consumers that must not act on damaged data stage first, or run
    :func:`verify_hashes` before.
    """

    def __init__(self, path: Path, identity: Path, progress: ProgressCallback | None = None):
        self.path = path
        self.identity = identity
        self.progress = progress
        self._stack = contextlib.ExitStack()
        self._age: AgeProcess | None = None
        self._tar: tarfile.TarFile | None = None
        self._manifest: BackupManifest | None = None
        self._current: str | None = None

    def __enter__(self) -> ArchiveReader:
        try:
            self._age = self._stack.enter_context(decrypting(self.path, self.identity))
            self._open()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def manifest(self) -> BackupManifest:
        assert self._manifest is not None  # noqa: S101 - set by __enter__
        return self._manifest

    def _damage(self, what: str, member: str | None, *, ended: bool = True) -> BackupIntegrityError:
        """The error to raise for ``what``: age's own verdict first (key, header, chunk).

        ``ended``: the plaintext stopped short, so age has exited or is about to; otherwise
        (a hash that differs) age is still running and has found nothing wrong.
        """
        assert self._age is not None  # noqa: S101
        failure = self._age.failure(timeout=10 if ended else 0.05)
        if failure is not None:
            if member is not None and "wrong key" not in failure.message:
                return BackupIntegrityError(
                    f"{self.path.name}: member {member} is damaged or cut short "
                    f"(decryption stopped in it: {_reason(failure)})",
                    member=member,
                    hint=failure.hint,
                )
            failure.member = member if "wrong key" not in failure.message else None
            return failure
        return BackupIntegrityError(
            f"{self.path.name}: {what}",
            member=member,
            hint="the archive was changed after it was written; use another copy",
        )

    def _open(self) -> None:
        assert self._age is not None  # noqa: S101
        try:
            # Closed with the age process's pipe by __exit__.
            self._tar = tarfile.open(  # noqa: SIM115
                fileobj=self._age.stream, mode="r|", bufsize=CHUNK
            )
            first = self._tar.next()
        except (tarfile.TarError, OSError, EOFError) as e:
            raise self._damage(f"not a backup archive ({e})", None) from e
        if first is None or first.name != MANIFEST or not first.isfile():
            raise self._damage(
                f"the first member is {first.name if first else 'missing'}, not {MANIFEST}",
                first.name if first else MANIFEST,
            )
        if first.size > _MANIFEST_LIMIT:
            raise self._damage(f"{MANIFEST} is implausibly large", MANIFEST)
        try:
            handle = self._tar.extractfile(first)
            assert handle is not None  # noqa: S101 - a regular file
            raw = handle.read()
        except (tarfile.TarError, OSError, EOFError) as e:
            raise self._damage(f"{MANIFEST} is cut short ({e})", MANIFEST) from e
        try:
            self._manifest = BackupManifest.model_validate(json.loads(raw))
        except (ValueError, ValidationError) as e:
            raise self._damage(f"{MANIFEST} is not a valid manifest", MANIFEST) from e
        if self._manifest.format != FORMAT:
            raise BackupIntegrityError(
                f"{self.path.name}: archive format {self._manifest.format!r} is not "
                f"{FORMAT!r} (made by a newer installer?)",
                member=MANIFEST,
                hint="use the installer version that made it, or a newer one",
            )

    def members(self) -> Iterator[tuple[MemberInfo, MemberStream]]:
        """Every member after the manifest, in order, each checked after it is consumed."""
        assert self._tar is not None and self._age is not None  # noqa: S101
        expected = list(self.manifest.members)
        seen: set[str] = set()
        while True:
            try:
                entry = self._tar.next()
            except (tarfile.TarError, OSError, EOFError) as e:
                after = next((m.name for m in expected if m.name not in seen), None)
                raise self._damage(f"damaged after its last good member ({e})", after) from e
            if entry is None:
                break
            info = self.manifest.member(entry.name)
            if info is None or entry.name in seen:
                raise self._damage(
                    f"member {entry.name} is not in the manifest", entry.name, ended=False
                )
            seen.add(entry.name)
            self._current = entry.name
            try:
                handle = self._tar.extractfile(entry)
                if handle is None:
                    raise self._damage(f"member {entry.name} is not a regular file", entry.name)
                stream = MemberStream(handle, info, self.progress)
                yield info, stream
                stream.drain()
            except (tarfile.TarError, OSError, EOFError) as e:
                raise self._damage(f"member {entry.name} is cut short ({e})", entry.name) from e
            if stream.size != info.size or stream.sha256.hexdigest() != info.sha256:
                raise self._damage(
                    f"member {entry.name} differs from the manifest "
                    f"({stream.size} bytes, SHA-256 {stream.sha256.hexdigest()[:16]}…; "
                    f"expected {info.size} bytes, {info.sha256[:16]}…)",
                    entry.name,
                    ended=False,
                )
        self._current = None
        missing = [m.name for m in expected if m.name not in seen]
        if missing:
            raise self._damage(f"member {missing[0]} is missing (archive cut short?)", missing[0])
        # Drain the tar's end padding so that age authenticates the very last chunk.
        with contextlib.suppress(OSError, ValueError):
            while self._age.stream.read(CHUNK):
                pass
        try:
            self._age.finish()
        except BackupIntegrityError as e:
            raise BackupIntegrityError(
                f"{self.path.name}: the end of the archive is damaged or cut short "
                f"(after the last member): {_reason(e)}",
                member="end of archive",
                hint=e.hint,
            ) from e


def _reason(error: BackupIntegrityError) -> str:
    """age's own words from an integrity error's message."""
    message = error.message
    return message[message.find("(") + 1 : -1] if message.endswith(")") else message


def open_archive(
    path: Path, identity: Path, progress: ProgressCallback | None = None
) -> ArchiveReader:
    """An :class:`ArchiveReader` (use it with ``with``)."""
    return ArchiveReader(path, identity, progress)


def read_manifest(path: Path, identity: Path) -> BackupManifest:
    """The manifest of ``path``; decrypts only as far as the first member."""
    with ArchiveReader(path, identity) as reader:
        return reader.manifest


def verify_hashes(
    path: Path, identity: Path, progress: ProgressCallback | None = None
) -> BackupManifest:
    """Decrypt the whole archive and check every member against the manifest (``--quick``)."""
    with ArchiveReader(path, identity, progress) as reader:
        for _info, _stream in reader.members():
            pass
        return reader.manifest


def archive_name(install: str, created: str, release: str) -> str:
    """``codequal-<install>-<YYYYmmddTHHMMSSZ>-<release>.cqbackup``."""
    stamp = created.replace("-", "").replace(":", "")
    prefix = install if install.startswith("codequal") else f"codequal-{install}"
    return f"{prefix}-{stamp}-{release}{SUFFIX}"
