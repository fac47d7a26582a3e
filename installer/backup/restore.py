"""``restore ARCHIVE``: a backup archive back onto this host, as a runner plan like ``apply``.

The plan is the Compose target's own install plan with the restore's steps inserted at
their places (by step name), so a restore installs exactly what ``apply`` would, with the
archived data:

=====================  =========================================================================
prerequisites          the target's checks (read-only)
restore-safety-backup  over an existing installation: a backup of it first (``backup create``),
                       its file name printed and kept in the journal
restore-state          the archived generated secrets and TLS material into ``state/``, BEFORE
                       the configuration is rendered, so the files reuse the archived passwords
configuration          the target's step
containers             the target's step: images present, the database container up and healthy
restore-volumes        application services stopped; each named volume emptied and filled from
                       the archive through the Engine's archive API
restore-database       PostgreSQL: the database dropped and created afresh, then ``pg_restore
                       --single-transaction --exit-on-error`` in a one-off container of the
                       release's PostgreSQL image; SQLite: the archived copy written into the
                       volume; then the row counts and checksums compared with the manifest
database               the target's step: the normal migration (an older archive moves forward)
services, ...          the target's steps: services, verification, monitoring
restore-check          the live database's row counts and checksums against the manifest
                       (read-only); a difference fails the run with exit 4
=====================  =========================================================================

Each restore step is idempotent: a run killed in any step (SIGKILL included) resumes at it
and repeats it whole (a volume is emptied before it is filled; the database is dropped
before it is created), so the rerun ends with the same data.

The volumes and the PostgreSQL database are independent, so ``restore-volumes`` starts the
database's work (the ``restore-database`` step's own, in a thread, on its own pass over the
archive) as it begins, and fills the volumes meanwhile; ``restore-database`` then waits for
that work, reports it, and is journaled as done only when it succeeded and the tables
equal the manifest's. A run killed before that repeats it (``restore-database`` alone when
the volumes were done): the head start lives only in the process that made it.

Before anything is changed the command refuses, exit 2, an archive from a newer release
than the answers' and an archive whose database engine differs from the answers'
(SQLite vs PostgreSQL); it refuses, exit 4, an archive that does not decrypt with the
identity or whose members do not match the manifest (every member is hashed first).

A difference between the restored data and the manifest is exit 4 (an integrity failure of
the archive or of the restore), never a "successful" restore.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import queue
import subprocess
import tarfile
import threading
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from installer.errors import ExitCode, InstallerError, StepFailed, UsageError
from installer.runner import InstallPlan, Progress, RunSummary, Step, StepContext, StepUpdate
from installer.statedir import atomic_write, atomic_write_json, read_json

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.backup.archive import BackupManifest
    from installer.engine.docker import ContainerInfo
    from installer.targets.compose import ComposeTarget

STATE_MEMBER = "state.tar.zst"
POSTGRES_MEMBER = "database/postgres.pgdump"
SQLITE_MEMBER = "database/sqlite.db.zst"
SQLITE_VOLUME = "codequal_data"
SQLITE_FILE = "codequal.db"
# What restore-state takes from the archived state directory. The journal, the lock, the
# result and the logs belong to this host's runs, never to the archived one.
STATE_FILES = ("generated-secrets.json",)
STATE_DIRS = ("tls",)
# Bookkeeping tables a migration writes: compared only when the schema did not move.
MIGRATION_TABLES = ("schema_migrations", "public.schema_migrations")
_CHUNK = 1024 * 1024
SAFETY_BACKUP_LINE = "safety backup of the installation as it was:"
# Members read once while the archive is hashed, and kept in memory for their step.
KEPT_MEMBERS = (STATE_MEMBER,)
KEPT_LIMIT = 64 * 1024 * 1024


class RestoreRefused(UsageError):
    """The archive cannot be restored with these answers; nothing was changed (exit 2)."""

    def __init__(self, message: str, *, problems: Sequence[str] = (), hint: str | None = None):
        super().__init__(message, hint=hint)
        self.problems = list(problems)


class RestoredDataDiffers(InstallerError):
    """The restored data differs from the archive's manifest (exit 4): never a success."""

    exit_code = ExitCode.BUNDLE_INTEGRITY

    def __init__(self, message: str, *, problems: Sequence[str] = (), hint: str | None = None):
        super().__init__(message, hint=hint)
        self.problems = list(problems)


# -- the archive, as the restore reads it -------------------------------------------------


def manifest_document(manifest: Any) -> dict[str, Any]:
    """The manifest as a JSON-like dict, whatever model the archive reader returns."""
    if isinstance(manifest, Mapping):
        return dict(manifest)
    for method in ("model_dump", "to_dict"):
        dump = getattr(manifest, method, None)
        if callable(dump):
            document = dump(mode="json") if method == "model_dump" else dump()
            if isinstance(document, dict):
                return document
    raise TypeError(f"unexpected manifest type {type(manifest).__name__}")


@dataclass(frozen=True)
class ArchiveSource:
    """The archive being restored, the identity that decrypts it, and its manifest."""

    path: Path
    identity: Path
    manifest: dict[str, Any]
    kept: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def open(cls, path: Path, identity: Path) -> ArchiveSource:
        from installer.backup.archive import read_manifest

        return cls(path, identity, manifest_document(read_manifest(path, identity)))

    @property
    def release(self) -> str:
        return str(self.manifest.get("release") or "")

    @property
    def database(self) -> dict[str, Any]:
        database = self.manifest.get("database")
        return database if isinstance(database, dict) else {}

    @property
    def engine(self) -> str:
        return str(self.database.get("engine") or "")

    @property
    def tables(self) -> dict[str, Any]:
        tables = self.database.get("tables")
        return tables if isinstance(tables, dict) else {}

    @property
    def volumes(self) -> list[dict[str, Any]]:
        volumes = self.manifest.get("volumes")
        return [v for v in volumes or [] if isinstance(v, dict) and v.get("name")]

    def members(self) -> list[str]:
        return [
            str(m.get("name"))
            for m in self.manifest.get("members") or []
            if isinstance(m, dict) and m.get("name")
        ]

    def verify_hashes(self) -> BackupManifest:
        """Every member decrypted and hashed against the manifest (as ``verify --quick``).

        On the way the small state member is kept in memory (never on disk: it holds
        secrets), so restoring it costs no pass over the archive of its own.
        """
        from installer.backup.archive import open_archive

        kept: dict[str, bytes] = {}
        with open_archive(self.path, self.identity) as reader:
            for info, stream in reader.members():
                if info.name in KEPT_MEMBERS and info.size <= KEPT_LIMIT:
                    chunks = []
                    while chunk := stream.read(_CHUNK):
                        chunks.append(chunk)
                    kept[info.name] = b"".join(chunks)
            manifest = reader.manifest
        self.kept.update(kept)  # every member matched: only now are these bytes known good
        return manifest

    def read_members(self, names: Sequence[str]) -> Iterator[tuple[str, Any]]:
        """The members ``names`` in one pass, in the archive's order, each hashed as read."""
        from installer.backup.archive import open_archive

        wanted = set(names)
        missing = wanted - set(self.members())
        if missing:
            raise RestoreRefused(f"{self.path.name} has no member {sorted(missing)[0]}")
        if not wanted:
            return
        with open_archive(self.path, self.identity) as reader:
            members = reader.members()
            for info, stream in members:  # a generator: closed below
                if info.name not in wanted:
                    continue
                wanted.discard(info.name)
                yield info.name, stream
                if not wanted:
                    # The reader checks a member's hash when the next one is reached.
                    with contextlib.suppress(StopIteration):
                        next(members)
                    members.close()  # type: ignore[attr-defined]
                    return

    @contextlib.contextmanager
    def member(self, name: str) -> Iterator[Any]:
        """The bytes of member ``name``, hashed while read (a mismatch raises, exit 4).

        Each call decrypts the archive from its start: the members come in the archive's
        order and each step reads only its own, so a resumed step needs nothing staged.
        The whole archive was hashed before the run began (:meth:`verify_hashes`); the
        member's own hash is checked again once it is consumed.
        """
        from installer.backup.archive import open_archive

        if name in self.kept:
            yield io.BytesIO(self.kept[name])
            return
        if name not in self.members():
            raise RestoreRefused(f"{self.path.name} has no member {name}")
        with open_archive(self.path, self.identity) as reader:
            members = reader.members()
            for info, stream in members:  # a generator: closed below
                if info.name == name:
                    yield stream
                    # The reader checks a member's hash when the next one is reached.
                    with contextlib.suppress(StopIteration):
                        next(members)
                    members.close()  # type: ignore[attr-defined]
                    return
        raise RestoreRefused(f"{self.path.name}: member {name} not found in the archive")


@contextlib.contextmanager
def zstd_reader(stream: IO[bytes]) -> Iterator[IO[bytes]]:
    import zstandard

    with zstandard.ZstdDecompressor().stream_reader(stream, closefd=False) as reader:
        yield reader


# -- refusals before any change ---------------------------------------------------------


def _version_key(version: str) -> tuple[int, ...]:
    # The release order of installer.release (its bundled_release_names sorts this way).
    from installer.release import _version_key as release_order

    return release_order(version)


def refusals(source: ArchiveSource, answers: AnswerFile, release_version: str) -> list[str]:
    """Why this archive cannot be restored with these answers (empty: it can)."""
    problems = []
    manifest = source.manifest
    fmt = str(manifest.get("format") or "")
    if not fmt.startswith("codequal-backup/"):
        problems.append(f"{source.path.name} is not a CodeQual backup (format {fmt or '?'})")
    if not answers.is_compose:
        problems.append(
            f"restore installs on this host's Docker Engine; target {answers.target} is not a "
            "Compose target (development or production)"
        )
    if source.release and _version_key(source.release) > _version_key(release_version):
        problems.append(
            f"the archive is from release {source.release}, newer than the answers' release "
            f"{release_version}: a restore never moves a database backwards"
        )
    engine = source.engine
    wanted = answers.database.kind
    if engine and engine != wanted:
        problems.append(
            f"the archive holds a {_engine_name(engine)} database and the answers ask for "
            f"{_engine_name(wanted)}: restore with answers whose database.kind is {engine}"
        )
    if engine == "postgres" and source.database.get("managed") != answers.database.managed:
        # Allowed (a container dump restores into a managed server and back); said in the log.
        pass
    return problems


def _engine_name(kind: str) -> str:
    return {"postgres": "PostgreSQL", "sqlite": "SQLite"}.get(kind, kind)


# -- the plan ---------------------------------------------------------------------------


class RestorePlan:
    """The Compose target's plan with the restore steps in their places."""

    def __init__(
        self,
        target: ComposeTarget,
        source: ArchiveSource,
        *,
        safety_backup: Path | None = None,
        safety_note: str | None = None,
    ) -> None:
        self.target = target
        self.source = source
        self.safety_backup = safety_backup
        # What the safety step says when there is no safety backup (default: no installation).
        self.safety_note = safety_note
        self.database_step = RestoreDatabaseStep(self)
        # The database's work, started by the volume step beside its own (this process only).
        self.database_job: _DatabaseJob | None = None

    def plan(self) -> InstallPlan:
        base = self.target.plan()
        steps = list(base.steps)
        inserted = insert_steps(
            steps,
            before={
                "configuration": [SafetyBackupStep(self), RestoreStateStep(self)],
            },
            after={"containers": [RestoreVolumesStep(self), self.database_step]},
        )
        inserted.append(RestoreCheckStep(self))
        digest = hashlib.sha256()
        digest.update(base.identity.encode())
        digest.update(b"\0restore\0")
        digest.update(str(self.source.path.resolve()).encode())
        digest.update(str(self.source.manifest.get("created") or "").encode())
        for member in self.source.manifest.get("members") or []:
            if isinstance(member, dict):
                digest.update(f"\0{member.get('name')}\0{member.get('sha256')}".encode())
        base_result = base.result

        def result(summary: RunSummary) -> dict[str, Any]:
            document = base_result(summary) if base_result is not None else {}
            document["restored_from"] = {
                "archive": str(self.source.path),
                "release": self.source.release,
                "created": self.source.manifest.get("created"),
                "schema_version": self.source.manifest.get("schema_version"),
            }
            return document

        return InstallPlan(
            steps=inserted,
            state=base.state,
            identity=digest.hexdigest(),
            description=(
                f"restore {self.source.path.name} (CodeQual {self.source.release}) as "
                f"{self.target.release.version} ({self.target.answers.target}) in "
                f"{self.target.install_dir}"
            ),
            redactor=base.redactor,
            result=result,
            summary={**base.summary, "restore": str(self.source.path)},
            command="restore",
        )


def insert_steps(
    steps: Sequence[Step],
    *,
    before: Mapping[str, Sequence[Step]] = {},
    after: Mapping[str, Sequence[Step]] = {},
) -> list[Step]:
    """``steps`` with others inserted before or after the step of each name.

    A name the plan does not have is a programming error (the target renamed a step):
    it raises rather than silently leaving a restore step out.
    """
    names = [s.name for s in steps]
    for name in (*before, *after):
        if name not in names:
            raise ValueError(f"the target's plan has no step {name!r} (it has {names})")
    out: list[Step] = []
    for step in steps:
        out.extend(before.get(step.name, ()))
        out.append(step)
        out.extend(after.get(step.name, ()))
    return out


class RestoreStep(Step):
    def __init__(self, restore: RestorePlan) -> None:
        self.restore = restore

    @property
    def target(self) -> ComposeTarget:
        return self.restore.target

    @property
    def source(self) -> ArchiveSource:
        return self.restore.source

    def rollback(self, ctx: StepContext) -> Iterator[StepUpdate]:
        backup = _safety_backup_name(ctx)
        yield (
            "restored data is not undone; "
            + (
                f"the installation as it was is in the safety backup {backup}"
                if backup
                else "there was no installation here before"
            )
        )


def _safety_backup_name(ctx: StepContext) -> str | None:
    journal = read_json(ctx.state.journal) if hasattr(ctx, "state") else None
    if not isinstance(journal, dict):
        return None
    record = (journal.get("steps") or {}).get(SafetyBackupStep.name) or {}
    value = (record.get("data") or {}).get("archive")
    return str(value) if value else None


class SafetyBackupStep(RestoreStep):
    """Records the safety backup ``restore`` took of the installation before the run began.

    ``backup create`` takes the installation's run lock itself, so it runs just before the
    runner does (:mod:`installer.backup.restore_cli`), and only when this step has no
    archive recorded yet: a resumed restore never backs up a half-restored installation.
    """

    name = "restore-safety-backup"
    title = "Safety backup of the installation"

    @property
    def description(self) -> str:
        return "over an existing installation: a backup of it first, its file named"

    def check(self, ctx: StepContext) -> str | None:
        done = ctx.data.get("archive")
        if done:
            return f"{SAFETY_BACKUP_LINE} {done}"
        if self.restore.safety_backup is None:
            return self.restore.safety_note or "no installation here: nothing to keep"
        return None

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        archive = self.restore.safety_backup
        if archive is None or not archive.is_file():
            raise StepFailed(
                "the safety backup of the installation is missing",
                step=self.name,
                hint="back it up with `codequal-installer backup create`, then restore again",
            )
        ctx.remember("archive", str(archive))
        yield f"{SAFETY_BACKUP_LINE} {archive}"


def recorded_safety_backup(state: Any) -> Path | None:
    """The safety backup an unfinished restore recorded in the journal (None: none)."""
    journal = read_json(state.journal)
    if not isinstance(journal, dict) or journal.get("status") not in (
        "running",
        "interrupted",
        "rolling_back",
    ):
        return None
    record = (journal.get("steps") or {}).get(SafetyBackupStep.name) or {}
    value = (record.get("data") or {}).get("archive")
    return Path(str(value)) if value else None


class RestoreStateStep(RestoreStep):
    name = "restore-state"
    title = "Restore generated secrets and TLS"

    @property
    def description(self) -> str:
        return "the archived generated passwords and TLS material into state/ (0600)"

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        state = self.target.state
        state.ensure()
        restored: list[str] = []
        with (
            self.source.member(STATE_MEMBER) as raw,
            zstd_reader(raw) as plain,
            tarfile.open(fileobj=plain, mode="r|") as tar,
        ):
            for member in tar:
                relative = _state_path(member.name)
                if relative is None or not member.isfile():
                    continue
                extracted = tar.extractfile(member)
                if extracted is None:
                    continue
                content = extracted.read()
                if relative == "generated-secrets.json":
                    _redact_generated(self.target, content)
                atomic_write(state.path / relative, content, 0o600)
                restored.append(relative)
        # The configuration step renders from these files. Nothing renders before this step
        # in a restore (the prerequisites read no rendering without a bundle), but a
        # rendering cached earlier would carry the generated passwords it read then: drop it.
        # (The target has no public way to do this; ask for one rather than grow this.)
        self.target._rendered = None
        self.target._compose_doc = None
        if not restored:
            yield "the archive's state holds no generated secrets (all were supplied)"
        for relative in sorted(restored):
            yield f"restored state/{relative}"
        ctx.remember("restored", sorted(restored))


def _redact_generated(target: ComposeTarget, content: bytes) -> None:
    """Every archived generated password is hidden from events and logs from now on."""
    import json

    try:
        values = json.loads(content.decode("utf-8"))
    except ValueError:
        return
    if isinstance(values, dict):
        target.redactor.add(str(v) for v in values.values() if isinstance(v, str))


def _state_path(name: str) -> str | None:
    """The state-relative path of an archived state member restore takes, else None."""
    parts = [p for p in Path(name).parts if p not in (".", "")]
    if parts and parts[0] == "state":
        parts = parts[1:]
    if not parts or any(p == ".." for p in parts) or Path(name).is_absolute():
        return None
    if len(parts) == 1 and parts[0] in STATE_FILES:
        return parts[0]
    if len(parts) == 2 and parts[0] in STATE_DIRS:
        return "/".join(parts)
    return None


class _DataStep(RestoreStep):
    """Shared by the volume and database steps."""

    def engine_volume(self, name: str) -> str:
        return f"{self.target.project.name}_{name}"

    def helper_image(self, volume: str) -> str:
        """An image of the release already on this host, to mount ``volume`` in."""
        images = self.target.images()
        for service, spec in self.target.services().items():
            mounts = [str(v).split(":", 1)[0] for v in spec.get("volumes") or []]
            if volume in mounts and service in images:
                return images[service]
        return images.get("codequal") or next(iter(images.values()))

    def remove_applications(self, ctx: StepContext) -> Iterator[StepUpdate]:
        """Every container of the project but the database's, one-off runs included: they
        may hold the volumes, and must not write while the data is replaced. The later
        steps create them again from the configuration."""
        database = set(self.target.database_services())
        engine = self.target.engine
        doomed = [
            c
            for c in engine.project_containers(self.target.project.name, oneoff=None)
            if c.service not in database
        ]
        if not doomed:
            return
        yield "stopping and removing " + ", ".join(sorted({c.name for c in doomed}))
        for info in doomed:
            engine.remove_container(info.id)


class RestoreVolumesStep(_DataStep):
    name = "restore-volumes"
    title = "Restore the volumes"

    @property
    def description(self) -> str:
        names = ", ".join(v["name"] for v in self.source.volumes) or "none"
        extra = (
            f" (SQLite: the archived database written into {SQLITE_VOLUME})"
            if self.source.engine == "sqlite"
            else ""
        )
        return f"application containers removed; each volume made afresh and filled: {names}{extra}"

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        volumes = {str(v["name"]): v for v in self.source.volumes}
        sqlite = self.source.engine == "sqlite"
        if sqlite and SQLITE_VOLUME not in volumes:
            volumes[SQLITE_VOLUME] = {"name": SQLITE_VOLUME, "member": None}
        if not volumes:
            yield "the archive holds no volumes"
            return
        yield from self.remove_applications(ctx)
        if not sqlite:
            job = self.restore.database_job = _DatabaseJob(self.restore.database_step, ctx)
            yield "restoring the database beside the volumes (reported by restore-database)"
            try:
                yield from self._fill(ctx, volumes, sqlite)
            except BaseException:
                job.stop()
                self.restore.database_job = None
                raise
        else:
            yield from self._fill(ctx, volumes, sqlite)

    def _fill(
        self, ctx: StepContext, volumes: dict[str, dict[str, Any]], sqlite: bool
    ) -> Iterator[StepUpdate]:
        from installer.engine import volumes as engine_volumes

        engine = self.target.engine
        project = self.target.project.name
        total = sum(int(v.get("bytes") or 0) for v in volumes.values()) or None
        # Every volume made afresh first: whatever a killed run or the old installation
        # left is gone. Then all of them filled in one pass over the archive.
        members: dict[str, str] = {}
        for name, volume in volumes.items():
            ctx.raise_if_cancelled()
            engine_name = self.engine_volume(name)
            if engine_volumes.remove_volume(engine, engine_name):
                yield f"removed the old volume {engine_name}"
            engine_volumes.create_compose_volume(engine, project, name)
            if sqlite and name == SQLITE_VOLUME:
                yield from self._sqlite_volume(
                    ctx, engine_name, volume.get("member"), self.helper_image(name)
                )
            elif volume.get("member"):
                members[str(volume["member"])] = name
        done = 0
        for member, raw in self.source.read_members(list(members)):
            name = members[member]
            volume, engine_name, image = (
                volumes[name],
                self.engine_volume(name),
                self.helper_image(name),
            )
            yield f"restoring {name} ({volume.get('files', '?')} files) into {engine_name}"
            with zstd_reader(raw) as plain:
                root, stream = peek_root(plain)
                engine_volumes.import_volume(engine, engine_name, stream, image=image)
            if root is not None:
                engine_volumes.set_volume_root(
                    engine, engine_name, uid=root.uid, gid=root.gid, mode=root.mode, image=image
                )
            done += int(volume.get("bytes") or 0)
            yield Progress(done, total, "bytes", f"{name} restored")

    def _sqlite_volume(
        self, ctx: StepContext, engine_name: str, member: Any, image: str
    ) -> Iterator[StepUpdate]:
        """The volume's files, minus any database file, plus the archived database."""
        import shutil
        import tempfile

        from installer.backup.tables import sqlite_integrity
        from installer.engine import volumes as engine_volumes

        uid, gid = _volume_owner(self.target)
        with tempfile.TemporaryDirectory(prefix="restore-", dir=self.target.state.path) as tmp:
            database = Path(tmp) / SQLITE_FILE
            with (
                self.source.member(SQLITE_MEMBER) as raw,
                zstd_reader(raw) as plain,
                open(database, "wb") as out,
            ):
                shutil.copyfileobj(plain, out, _CHUNK)
            verdict = sqlite_integrity(database)
            if verdict != "ok":
                raise RestoredDataDiffers(
                    f"the archived SQLite database fails PRAGMA integrity_check: {verdict}"
                )
            combined = Path(tmp) / "volume.tar"
            root: tarfile.TarInfo | None = None
            with tarfile.open(combined, "w", format=tarfile.PAX_FORMAT) as tar:
                if member:
                    with (
                        self.source.member(str(member)) as raw,
                        zstd_reader(raw) as plain,
                        tarfile.open(fileobj=plain, mode="r|") as source,
                    ):
                        for entry in source:
                            if _is_database_file(entry.name):
                                continue
                            if entry.isdir() and entry.name.strip("./") == "":
                                root = entry
                            handle = source.extractfile(entry) if entry.isfile() else None
                            tar.addfile(entry, handle)
                            # A stream: keep no list of every file read and written.
                            source.members = tar.members = []  # type: ignore[attr-defined]
                else:
                    root = tarfile.TarInfo(".")
                    root.type, root.mode, root.uid, root.gid = tarfile.DIRTYPE, 0o755, uid, gid
                info = tar.gettarinfo(str(database), arcname=f"./{SQLITE_FILE}")
                info.uid, info.gid, info.mode = uid, gid, 0o644
                info.uname = info.gname = ""
                with open(database, "rb") as handle:
                    tar.addfile(info, handle)
            yield f"writing the files and the archived SQLite database into {engine_name}"
            with open(combined, "rb") as stream:
                engine_volumes.import_volume(self.target.engine, engine_name, stream, image=image)
            if root is not None:
                engine_volumes.set_volume_root(
                    self.target.engine, engine_name, uid=root.uid, gid=root.gid, mode=root.mode,
                    image=image,
                )  # fmt: skip


class _Prefixed(io.RawIOBase):
    """``head`` then the rest of ``stream``: a stream whose first bytes were peeked at."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        super().__init__()
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            data, self._head = self._head, b""
            return data + self._stream.read()
        if self._head:
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._stream.read(size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def peek_root(stream: IO[bytes]) -> tuple[tarfile.TarInfo | None, IO[bytes]]:
    """The tar's first entry when it is the root directory (``./``), and the whole stream.

    The Engine's export of a volume starts with it; its owner and mode are the volume
    root's, which extracting the tar does not restore (:func:`set_volume_root`).
    """
    head = b""
    while len(head) < tarfile.BLOCKSIZE:
        data = stream.read(tarfile.BLOCKSIZE - len(head))
        if not data:
            break
        head += data
    root = None
    try:
        entry = tarfile.TarInfo.frombuf(head, tarfile.ENCODING, "surrogateescape")
        if entry.isdir() and entry.name.strip("./") == "":
            root = entry
    except tarfile.TarError:
        root = None
    return root, cast(IO[bytes], _Prefixed(head, stream))


def _is_database_file(name: str) -> bool:
    parts = [p for p in Path(name).parts if p not in (".", "")]
    return len(parts) == 1 and parts[0] in (
        SQLITE_FILE, f"{SQLITE_FILE}-wal", f"{SQLITE_FILE}-shm", f"{SQLITE_FILE}-journal",
    )  # fmt: skip


class RestoreDatabaseStep(_DataStep):
    name = "restore-database"
    title = "Restore the database"

    @property
    def description(self) -> str:
        if self.source.engine == "sqlite":
            return f"SQLite (restored with the {SQLITE_VOLUME} volume): compared with the manifest"
        return (
            "database dropped and created afresh, pg_restore in a one-off container of "
            f"{self.target.images().get('postgres', 'the PostgreSQL image')}, then compared"
        )

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        yield from self.remove_applications(ctx)
        job, self.restore.database_job = self.restore.database_job, None
        if job is not None:  # started by restore-volumes in this run
            yield from job.updates()
        else:
            yield from self.load(ctx)
        _record_schema(self.target, self.source.manifest.get("schema_version"))

    def load(self, ctx: StepContext) -> Generator[StepUpdate, None, None]:
        """The database's data, then compared with the manifest (touches no volume: may
        run beside the volume step)."""
        if self.source.engine != "sqlite":
            yield from self._postgres(ctx)
        stats = live_table_stats(self.target)
        problems = compare_tables(self.source.tables, stats)
        if problems:
            raise RestoredDataDiffers(
                f"the restored database differs from the archive's manifest: {problems[0]}",
                problems=problems,
                hint="the archive or the restore is at fault; nothing was started on this data",
            )
        yield f"{len(stats)} tables: row counts and checksums equal the manifest's"

    # -- PostgreSQL ---------------------------------------------------------------------

    def _postgres(self, ctx: StepContext) -> Iterator[StepUpdate]:
        db = self.target.answers.database
        if not db.managed:
            yield from self._recreate_in_container(ctx)
        else:
            yield from self._recreate_managed(ctx)
        size = self._member_size(POSTGRES_MEMBER)
        yield f"pg_restore of {POSTGRES_MEMBER} ({size} bytes) into database {db.name}"
        argv = self._oneoff(
            [
                "pg_restore", "--host", self._db_host(), "--port", str(db.port),
                "--username", db.user, "--dbname", db.name,
                "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error",
            ]
        )  # fmt: skip
        with self.source.member(POSTGRES_MEMBER) as stream:
            yield from _pipe_into(
                argv, stream, ctx, step=self.name, size=size, password=self._password()
            )
        yield f"database {db.name} restored"

    def _member_size(self, name: str) -> int | None:
        for member in self.source.manifest.get("members") or []:
            if isinstance(member, dict) and member.get("name") == name:
                return int(member.get("size") or 0)
        return None

    def _password(self) -> str:
        return database_password(self.target)

    def _db_host(self) -> str:
        db = self.target.answers.database
        if db.managed and db.host:
            return db.host
        container = postgres_container(self.target)
        if container is None:
            raise StepFailed(
                "the PostgreSQL container is not running",
                step=self.name,
                hint=f"see `docker compose ps -a` in {self.target.install_dir}",
            )
        return str(container.name)

    def _oneoff(self, command: list[str]) -> list[str]:
        """``docker run`` of the release's PostgreSQL image on the project's network.

        The password reaches it as PGPASSWORD from this process's environment (``-e NAME``
        without a value), never on a command line.
        """
        image = self.target.images().get("postgres") or self.target.release.image_for("postgres")
        name = f"{self.target.project.name}-restore-db"
        subprocess.run(
            ["docker", "rm", "--force", name],
            capture_output=True,
            check=False,
        )
        network = [] if self.target.answers.database.managed else [
            "--network", f"{self.target.project.name}_default"
        ]  # fmt: skip
        return [
            "docker", "run", "--rm", "--interactive", "--name", name,
            "--label", f"org.codequal.restore={self.target.project.name}",
            *network, "--env", "PGPASSWORD", "--entrypoint", command[0], image, *command[1:],
        ]  # fmt: skip

    def _recreate_in_container(self, ctx: StepContext) -> Iterator[StepUpdate]:
        """The database dropped (its sessions ended) and created again, empty, owned by the
        role, whose password is set from the secrets (sent on standard input)."""
        from installer.engine.process import CommandFailed

        db = self.target.answers.database
        yield from self._wait_ready(ctx)
        password = self._password().replace("'", "''")
        role, name = db.user, db.name
        sql = (
            "\\set ON_ERROR_STOP on\n"
            f"SELECT 'CREATE ROLE \"{role}\" LOGIN' WHERE NOT EXISTS "
            f"(SELECT FROM pg_roles WHERE rolname = '{role}')\\gexec\n"
            f"ALTER ROLE \"{role}\" WITH LOGIN PASSWORD '{password}';\n"
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);\n'
            f'CREATE DATABASE "{name}" OWNER "{role}";\n'
        )
        try:
            yield from self.target.project.stream(
                "exec", "-T", "postgres", "psql", "-q", "-U", db.user, "-d", "postgres",
                stdin=sql.encode(), cancel=ctx.cancel,
            )  # fmt: skip
        except CommandFailed as e:
            raise StepFailed(
                f"cannot create the database {name} afresh: {e.message}",
                step=self.name,
                command=e.command,
                returncode=e.returncode,
                log_tail=e.tail,
            ) from e
        yield f"database {name} created afresh, owned by {role}"

    def _recreate_managed(self, ctx: StepContext) -> Iterator[StepUpdate]:
        db = self.target.answers.database
        yield f"managed PostgreSQL at {db.host}: the public schema of {db.name} made afresh"
        sql = "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;\n"
        argv = self._oneoff(
            [
                "psql", "--host", self._db_host(), "--port", str(db.port), "--username",
                db.user, "--dbname", db.name, "-v", "ON_ERROR_STOP=1", "-q",
            ]
        )  # fmt: skip
        yield from _pipe_into(
            argv,
            io.BytesIO(sql.encode()),
            ctx,
            step=self.name,
            size=None,
            password=self._password(),
        )

    def _wait_ready(self, ctx: StepContext) -> Iterator[StepUpdate]:
        import time

        db = self.target.answers.database
        deadline = time.monotonic() + 120
        while True:
            container = postgres_container(self.target)
            if container is not None:
                code, _ = self.target.engine.exec(
                    container.id,
                    ["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-U", db.user],
                )
                if code == 0:
                    return
            if time.monotonic() > deadline:
                raise StepFailed(
                    "PostgreSQL did not accept connections within 120s",
                    step=self.name,
                    hint=f"see `docker compose logs postgres` in {self.target.install_dir}",
                )
            yield "waiting for PostgreSQL to accept connections"
            ctx.sleep(1)


class _DatabaseJob:
    """:meth:`RestoreDatabaseStep.load` in a thread; its updates kept for that step."""

    def __init__(self, step: RestoreDatabaseStep, ctx: StepContext) -> None:
        self._work = step.load(ctx)
        self._updates: queue.Queue[StepUpdate] = queue.Queue()
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="restore-database", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for update in self._work:
                self._updates.put(update)
                if self._stopping.is_set():
                    break
        except BaseException as e:  # noqa: BLE001 - re-raised by the step that waits
            self._error = e
        finally:
            self._work.close()  # a stopped pg_restore is killed (its transaction undone)

    def updates(self) -> Iterator[StepUpdate]:
        """The updates as they come, until the work ends; its failure raised here."""
        while self._thread.is_alive() or not self._updates.empty():
            try:
                yield self._updates.get(timeout=0.5)
            except queue.Empty:
                continue
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Stop the work at its next update, and wait for it."""
        self._stopping.set()
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)
            with contextlib.suppress(queue.Empty):
                self._updates.get_nowait()


def postgres_container(target: ComposeTarget) -> ContainerInfo | None:
    """The running PostgreSQL container of the installation (None when there is none)."""
    return next(
        (c for c in target.containers() if c.service == "postgres" and c.state == "running"),
        None,
    )


def database_password(target: ComposeTarget) -> str:
    from installer.secretstore import SecretStore

    supplied = target.secrets.secrets.get("database_password")
    if supplied:
        return supplied
    return SecretStore(target.state.path).generated("database_password")


def _volume_owner(target: ComposeTarget) -> tuple[int, int]:
    """The user the codequal service runs as (owner of its database file)."""
    user = str(target.services().get("codequal", {}).get("user") or "0:0")
    uid, _, gid = user.partition(":")
    try:
        return int(uid), int(gid or uid)
    except ValueError:
        return 0, 0


def _pipe_into(
    argv: Sequence[str],
    stream: IO[bytes],
    ctx: StepContext,
    *,
    step: str,
    size: int | None,
    password: str,
) -> Iterator[StepUpdate]:
    """Run ``argv`` with ``stream`` copied to its standard input; its output as lines."""
    import tempfile

    from installer.engine.process import TAIL_LINES

    env = dict(os.environ)
    env["PGPASSWORD"] = password
    with tempfile.TemporaryFile() as output:
        try:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        except OSError as e:
            raise StepFailed(f"cannot run {argv[0]}: {e.strerror or e}", step=step) from e
        assert process.stdin is not None  # noqa: S101 - PIPE was asked for
        copied = 0
        broken = False
        try:
            while True:
                if ctx.cancel.cancelled:
                    break
                chunk = stream.read(_CHUNK)
                if not chunk:
                    break
                try:
                    process.stdin.write(chunk)
                except BrokenPipeError:
                    broken = True
                    break
                copied += len(chunk)
                if copied % (64 * _CHUNK) < _CHUNK:
                    yield Progress(copied, size, "bytes", "restoring")
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
            if ctx.cancel.cancelled:
                process.terminate()
            code = process.wait()
        except BaseException:
            if process.poll() is None:
                process.kill()
                process.wait()
            raise
        ctx.raise_if_cancelled()
        output.seek(0)
        lines = output.read().decode("utf-8", "replace").splitlines()
        for line in lines[-TAIL_LINES:]:
            if line.strip():
                yield line
        if code != 0 or broken:
            program = argv[argv.index("--entrypoint") + 1] if "--entrypoint" in argv else argv[0]
            raise StepFailed(
                f"{program} failed (exit {code})",
                step=step,
                command=list(argv),
                returncode=code,
                log_tail=lines[-TAIL_LINES:],
                hint="the archive's dump could not be restored; the log has the details",
            )
    yield Progress(copied, size or copied, "bytes", "restored")


def _record_schema(target: ComposeTarget, schema_version: Any) -> None:
    """The database is now at the archive's schema: say so in result.json, so the
    target's database step migrates it forward when the release's schema is newer."""
    record = read_json(target.state.result)
    if isinstance(record, dict) and schema_version is not None:
        record["schema_version"] = str(schema_version)
        atomic_write_json(target.state.result, record, 0o644)


# -- comparing with the manifest ---------------------------------------------------------


def live_table_stats(target: ComposeTarget) -> dict[str, Any]:
    """Row counts and checksums of the installation's live database, as the manifest has
    them (:mod:`installer.backup.tables`: one definition for both sides)."""
    from installer.backup.tables import sqlite_table_stats, table_stats

    db = target.answers.database
    if db.kind == "sqlite":
        import tempfile

        from installer.engine import volumes as engine_volumes

        engine_name = f"{target.project.name}_{SQLITE_VOLUME}"
        image = target.images().get("codequal") or next(iter(target.images().values()))
        with tempfile.TemporaryDirectory(prefix="restore-", dir=target.state.path) as tmp:
            written = engine_volumes.copy_files_out(
                target.engine, engine_name, [SQLITE_FILE], Path(tmp), image=image
            )
            if not written:
                return {}
            copy = written[0]
            return dict(sqlite_table_stats(copy))
    container: ContainerInfo | None = postgres_container(target)
    if container is None:
        raise StepFailed(
            "the PostgreSQL container is not running: the restored data cannot be compared",
            step="restore-check",
        )

    def query(sql: str) -> list[list[str]]:
        code, output = target.engine.exec(
            container.id,
            ["psql", "-X", "-q", "-At", "-F", "\t", "-U", db.user, "-d", db.name, "-c", sql],
        )
        if code != 0:
            raise StepFailed(
                f"cannot read the table statistics: psql exit {code}",
                step="restore-check",
                log_tail=output.splitlines()[-10:],
            )
        return [line.split("\t") for line in output.splitlines() if line.strip()]

    return dict(table_stats(query))


def _stat_pair(value: Any) -> tuple[Any, Any]:
    if isinstance(value, Mapping):
        return value.get("rows"), value.get("checksum")
    rows = getattr(value, "rows", None)
    checksum = getattr(value, "checksum", None)
    return rows, checksum


def compare_tables(
    expected: Mapping[str, Any],
    live: Mapping[str, Any],
    *,
    skip: Sequence[str] = (),
) -> list[str]:
    """One line per table whose rows or checksum differ (or that is missing)."""
    problems = []
    for table in sorted(expected):
        if table in skip:
            continue
        if table not in live:
            problems.append(f"table {table} is missing")
            continue
        want_rows, want_sum = _stat_pair(expected[table])
        have_rows, have_sum = _stat_pair(live[table])
        if want_rows != have_rows:
            problems.append(f"table {table}: {have_rows} rows, the manifest has {want_rows}")
        elif want_sum != have_sum:
            problems.append(
                f"table {table}: checksum {have_sum} differs from the manifest's {want_sum}"
            )
    return problems


class RestoreCheckStep(RestoreStep):
    name = "restore-check"
    title = "Compare with the archive"
    read_only = True

    @property
    def description(self) -> str:
        return "the live database's row counts and checksums equal the manifest's"

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        stats = live_table_stats(self.target)
        skip: tuple[str, ...] = ()
        archived = str(self.source.manifest.get("schema_version") or "")
        if archived != self.target.release.migration.schema_version:
            skip = MIGRATION_TABLES  # the migration recorded the new schema version there
        problems = compare_tables(self.source.tables, stats, skip=skip)
        if problems:
            raise RestoredDataDiffers(
                f"after the restore the database differs from the archive's manifest: "
                f"{problems[0]}",
                problems=problems,
                hint="do not use this installation's data as restored; check the archive with "
                "`backup verify` and restore again",
            )
        yield (
            f"{len(self.source.tables)} tables: row counts and checksums equal the manifest's"
            + (
                f" (schema moved {archived} -> {self.target.release.migration.schema_version})"
                if skip
                else ""
            )
        )
