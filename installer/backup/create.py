"""``backup create``: one consistent, encrypted archive of a Compose installation.

What happens, as the events show it (same shape as ``apply``'s, so the same displays
render them and ``--json`` writes them as NDJSON):

==============  =========================================================================
prepare         the installation is there, ``age`` is installed, a recipient is given;
                the installation's run lock is taken (never beside an ``apply``)
snapshot        the application containers (not the database) are paused; PostgreSQL
                exports a snapshot in a repeatable-read transaction (SQLite: its files are
                copied out); every named volume is copied through the Engine's archive
                API; the containers are unpaused at once (always, even on error or
                Ctrl-C). The pause is measured and recorded.
database        in that same snapshot: every table's row count and checksum, then
                ``pg_dump -Fc --snapshot`` in a one-off container of the release's
                PostgreSQL image (SQLite: a backup-API copy, ``PRAGMA integrity_check``)
files           the rendered configuration and the state (generated secrets, TLS
                material, journal, result, history)
archive         manifest first, then every member, through ``age`` to the recipients
==============  =========================================================================

Members are staged beside the archive (``.<name>.partial/``, 0700) and removed
afterwards, however the run ends. Everything streams: no member is ever held in memory.
A SIGKILL during the pause leaves ``state/backup-paused.json``; the next ``backup create``
unpauses what it names before anything else.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import sqlite3
import tarfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from installer import __version__
from installer.backup.archive import (
    FORMAT,
    SUFFIX,
    ArchiveWriter,
    BackupManifest,
    Consistency,
    DatabaseInfo,
    TableStats,
    VolumeInfo,
    archive_name,
)
from installer.backup.crypto import age_program
from installer.credentials import Redactor
from installer.errors import ExitCode, InstallerError, Interrupted, UsageError
from installer.events import Event, EventType
from installer.statedir import StateDir, atomic_write_json, read_json

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.credentials import LoadedSecrets
    from installer.engine.docker import ContainerInfo, DockerEngine
    from installer.runner import CancelToken

PAUSE_RECORD = "backup-paused.json"
# How long a backup waits, after writing its archive, for the first health check of a
# container it paused (the Engine runs none while paused).
HEALTH_AFTER_PAUSE_SECONDS = 60.0
DATABASE_SERVICE: Final = "postgres"
SQLITE_DEFAULT = "file:/app/data/codequal.db"
ZSTD_LEVEL = 3
# One worker per core (threads=-1), each compressing jobs of 4 MiB: zstd's default job for
# level 3 is several times larger, and each worker holds its job's input and output, which
# is what the default costs in memory (measured: about 60 MB more for no speed).
ZSTD_JOB_SIZE = 4 * 1024 * 1024


def _compressor() -> Any:
    """The zstd compressor of every member: level 3, all cores, bounded memory."""
    import zstandard

    params = zstandard.ZstdCompressionParameters.from_level(
        ZSTD_LEVEL, threads=-1, job_size=ZSTD_JOB_SIZE
    )
    return zstandard.ZstdCompressor(compression_params=params)


# Not in the state member: logs (redacted, per run), the rollback copies, dumps, the lock.
# rollback-identity.key: the key a pre-upgrade backup is also encrypted to (installer.upgrade);
# an archive holding its own key would be readable by anyone who has the archive.
_STATE_EXCLUDED = frozenset(
    {"logs", "previous", "backups", "apply.lock", PAUSE_RECORD, "rollback-identity.key"}
)
_PROGRESS_SECONDS = 0.25

STEPS: tuple[tuple[str, str], ...] = (
    ("prepare", "Preparation"),
    ("snapshot", "Consistent snapshot"),
    ("database", "Database dump"),
    ("files", "Configuration and state"),
    ("archive", "Encrypted archive"),
)


class BackupFailed(InstallerError):
    """``backup create`` could not finish; nothing was changed on the installation."""


@dataclass
class BackupResult:
    archive: Path
    size: int
    manifest: BackupManifest
    pause_seconds: float
    log_file: Path | None = None


@dataclass
class _Rate:
    """Bytes and rate of one copy, reported at most every quarter second."""

    what: str
    total: int | None = None
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    last: float = 0.0

    def message(self) -> str:
        seconds = max(time.monotonic() - self.started, 1e-6)
        return f"{self.what} · {self.done / seconds / 1e6:.1f} MB/s"


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _load_yaml(path: Path) -> dict[str, Any]:
    from ruamel.yaml import YAML

    data = YAML(typ="safe", pure=True).load(path.read_bytes())
    return data if isinstance(data, dict) else {}


class BackupCreate:
    """One ``backup create`` run; iterate :meth:`run` for its events (see the module doc)."""

    def __init__(
        self,
        answers: AnswerFile,
        secrets: LoadedSecrets,
        *,
        cancel: CancelToken,
        directory: Path | None = None,
        recipients: list[str] | None = None,
        engine: DockerEngine | None = None,
    ) -> None:
        self.answers = answers
        self.secrets = secrets
        self.cancel = cancel
        self.install_dir = Path(answers.install_dir)
        self.state = StateDir.for_install_dir(self.install_dir)
        self.directory = directory or Path(str(answers.backup.directory_for(answers.install_dir)))
        self.recipients = list(recipients or answers.backup.recipients)
        self._engine = engine
        self.redactor = Redactor(secrets.secrets.supplied().values())
        self.result: BackupResult | None = None
        self.exit_code: int | None = None
        self._events: queue.Queue[Event | None] = queue.Queue(maxsize=256)
        self._log: Any = None
        self._step: str | None = None
        self._paused: list[str] = []

    @property
    def engine(self) -> DockerEngine:
        if self._engine is None:
            from installer.engine.docker import DockerEngine

            self._engine = DockerEngine()
        return self._engine

    # -- events ---------------------------------------------------------------------------

    def _emit(
        self,
        type_: EventType,
        message: str = "",
        *,
        step: str | None = None,
        data: dict[str, Any] | None = None,
        **extra: Any,
    ) -> None:
        from installer.runner import _redact_data

        clean = _redact_data(data or {}, self.redactor)
        event = Event(type=type_, message=self.redactor(message), step=step, data=clean, **extra)
        if self._log is not None:
            where = f"[{step}] " if step else ""
            self._log.write(f"{where}{type_}: {event.message}")
        self._events.put(event)

    def _say(self, message: str) -> None:
        self._emit("step.output", message, step=self._step)

    def _progress(self, rate: _Rate, amount: int) -> None:
        self.cancel.raise_if_cancelled()
        rate.done += amount
        now = time.monotonic()
        if now - rate.last >= _PROGRESS_SECONDS:
            rate.last = now
            self._emit(
                "step.progress",
                rate.message(),
                step=self._step,
                current=rate.done,
                total=rate.total,
                unit="bytes",
            )

    @contextlib.contextmanager
    def _phase(self, index: int) -> Iterator[dict[str, Any]]:
        """A step's started/finished events; the block may add data to the finished one."""
        name, title = STEPS[index]
        self._step = name
        started = time.monotonic()
        self._emit("step.started", title, step=name, data={"index": index, "title": title})
        extra: dict[str, Any] = {}
        yield extra
        elapsed = round(time.monotonic() - started, 3)
        message = f"{title}: done in {elapsed:.1f}s"
        if "pause_seconds" in extra:
            message += f"; application paused {extra['pause_seconds']:.2f}s"
        self._emit(
            "step.finished",
            message,
            step=name,
            data={"index": index, "title": title, "elapsed_seconds": elapsed, **extra},
        )

    # -- the run --------------------------------------------------------------------------

    def run(self) -> Iterator[Event]:
        """The run's events; the last one is ``run.finished`` or ``run.failed``."""
        worker = threading.Thread(target=self._work, name="backup-create", daemon=True)
        worker.start()
        finished = False
        try:
            while True:
                event = self._events.get()
                if event is None:
                    break
                yield event
            finished = True
        finally:
            if not finished:
                # The consumer stopped listening: cancel, and take the worker's last events
                # off the queue until it has ended (it unpauses on its way out).
                self.cancel.cancel("stopped")
                while worker.is_alive():
                    with contextlib.suppress(queue.Empty):
                        self._events.get(timeout=0.1)
            worker.join()

    def _work(self) -> None:
        from installer.runner import RunLock, RunLog, new_run_id

        run_id = new_run_id()
        lock: RunLock | None = None
        try:
            self._check_inputs()
            self.state.ensure()
            lock = RunLock(self.state.lock, "backup create")
            lock.acquire()
            self._log = RunLog(self.state.logs / f"backup-{run_id}.log", self.redactor)
            self._log.write(f"codequal-installer backup create {run_id} (pid {os.getpid()})")
            self._emit(
                "run.started",
                f"back up the installation in {self.install_dir} to {self.directory}",
                data={
                    "run_id": run_id,
                    "steps": [{"name": n, "title": t} for n, t in STEPS],
                    "log_file": str(self._log.path),
                },
            )
            self.result = self._create()
            self.result.log_file = self._log.path
            self.exit_code = int(ExitCode.OK)
            manifest = self.result.manifest
            self._emit(
                "run.finished",
                f"backup written: {self.result.archive} ({_size(self.result.size)}; "
                f"application paused {self.result.pause_seconds:.2f}s)",
                exit_code=0,
                data={
                    "archive": str(self.result.archive),
                    "size": self.result.size,
                    "pause_seconds": self.result.pause_seconds,
                    "release": manifest.release,
                    "created": manifest.created,
                    "members": [m.model_dump() for m in manifest.members],
                    "tables": {
                        k: v.model_dump()
                        for k, v in (manifest.database.tables if manifest.database else {}).items()
                    },
                    "log_file": str(self._log.path),
                },
            )
        except InstallerError as e:
            self._fail(e)
        except Exception as e:  # noqa: BLE001 - a bug: reported, traceback in the log only
            if self._log is not None:
                self._log.write(traceback.format_exc())
            self._fail(
                BackupFailed(
                    f"unexpected error: {type(e).__name__}: {e}",
                    hint="the traceback is in the backup's log file",
                )
            )
        finally:
            if self._log is not None:
                self._log.close()
            if lock is not None:
                lock.release()
            self._events.put(None)

    def _fail(self, error: InstallerError) -> None:
        self.exit_code = int(error.exit_code)
        data: dict[str, Any] = {}
        if error.hint:
            data["hint"] = error.hint
        member = getattr(error, "member", None)
        if member:
            data["member"] = member
        if self._log is not None:
            data["log_file"] = str(self._log.path)
        if self._step is not None:
            self._emit("step.failed", error.message, step=self._step, data=dict(data))
        message = error.message
        if isinstance(error, Interrupted):
            message = f"interrupted: {error.message}; no archive was written"
        self._emit("run.failed", message, exit_code=self.exit_code, data=data)

    # -- the work -------------------------------------------------------------------------

    def _check_inputs(self) -> None:
        if not self.answers.is_compose:
            raise UsageError(
                f"backup create supports the Compose targets (development, production), "
                f"not {self.answers.target}"
            )
        if not self.recipients:
            raise UsageError(
                "no age recipient to encrypt the backup to: an archive holds secrets, so it "
                "is always encrypted",
                hint="set backup.recipients in the answers or pass --recipient age1... "
                "(make a key with `codequal-installer backup keygen --out FILE`)",
            )
        from installer.backup.crypto import is_recipient

        for recipient in self.recipients:
            if not is_recipient(recipient):
                raise UsageError(
                    f"{recipient[:20]!r} is not an age X25519 recipient (age1 and 58 characters)"
                )
        age_program()
        compose_file = self.install_dir / "docker-compose.yml"
        record = read_json(self.state.result)
        if not compose_file.is_file() or not (
            isinstance(record, dict) and record.get("status") == "installed"
        ):
            raise UsageError(
                f"no installation in {self.install_dir} to back up",
                hint="install it with `codequal-installer apply` first (or check install_dir)",
            )

    def _create(self) -> BackupResult:
        created = _now()
        with self._phase(0):
            prepared = self._prepare()
            self._remove_leftovers(prepared.project)
            name = archive_name(prepared.project, _iso(created), prepared.release)
            self._say(f"archive: {self.directory / name}")
        with ArchiveWriter(self.directory, name) as writer:
            database, consistency, volumes = self._snapshot_and_database(prepared, writer)
            with self._phase(3):
                self._files(writer)
            with self._phase(4):
                manifest = BackupManifest(
                    format=FORMAT,
                    installer_version=__version__,
                    release=prepared.release,
                    schema_version=prepared.schema_version,
                    target=self.answers.target,
                    install=prepared.project,
                    install_dir=str(self.install_dir),
                    created=_iso(created),
                    answers=self.answers.model_dump(mode="json"),
                    database=database,
                    volumes=volumes,
                    consistency=consistency,
                )
                total = sum(m.size for m in writer.members)
                rate = _Rate("encrypting with age", total)
                path = writer.finish(manifest, self.recipients, lambda n: self._progress(rate, n))
                size = path.stat().st_size
                self._say(f"{path.name}: {_size(size)}, {len(manifest.members) + 1} members")
                try:
                    self._await_health_after_pause(prepared.to_pause)
                except InstallerError as e:  # the archive is written: said, not failed
                    self._say(f"cannot read the application's health after the pause: {e.message}")
        return BackupResult(path, size, manifest, consistency.pause_seconds)

    def _await_health_after_pause(self, containers: list[str]) -> None:
        """Leave the application as the backup found it, health included.

        The Engine stops a container's health checks while it is paused and calls it
        "unhealthy" from then until its next probe, though no probe failed. Until that probe
        `status` exits 3 and an `upgrade` right after the backup is refused as unhealthy, so
        such a container is waited for (usually done by now: the archive took longer than a
        probe interval). One whose probes fail is named, not waited for: the archive is whole
        either way.
        """
        from installer.targets.compose.polling import wait_until

        def look() -> list[ContainerInfo]:
            return [info for info in map(self.engine.inspect, containers) if info is not None]

        def not_probed_since_the_pause(found: list[ContainerInfo]) -> list[ContainerInfo]:
            return [i for i in found if i.health == "unhealthy" and not i.failed_health]

        started = time.monotonic()
        found = look()
        if pending := not_probed_since_the_pause(found):
            self._say(
                f"waiting for the next health check of {', '.join(i.name for i in pending)} "
                "(none has run since the pause)"
            )
            try:
                found = wait_until(
                    self.cancel,
                    look,
                    lambda now: not not_probed_since_the_pause(now),
                    timeout=HEALTH_AFTER_PAUSE_SECONDS,
                )
            except Interrupted:  # the archive is whole: Ctrl-C stops the wait, not the backup
                found = look()
            elapsed = time.monotonic() - started
            for info in (still := not_probed_since_the_pause(found)):
                self._say(
                    f"{info.name}: no health check has run since the pause ({elapsed:.0f}s); "
                    "`status` shows its health once one has"
                )
            if not still:
                self._say(f"health checks run again, {elapsed:.1f}s later")
        for info in found:
            if info.failed_health:
                self._say(f"{info.name} is unhealthy: its health check fails; see `status`")

    def _remove_leftovers(self, project: str) -> None:
        """What a killed ``backup create`` of this installation left: its staging directory
        and its unfinished archive (this run holds the lock, so none is in use)."""
        if not self.directory.is_dir():
            return
        for path in self.directory.iterdir():
            name = path.name
            staging = name.startswith(f".{project}-") and name.endswith(f"{SUFFIX}.partial")
            unfinished = name.startswith(f"{project}-") and name.endswith(f"{SUFFIX}.partial")
            if staging and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif unfinished and path.is_file():
                path.unlink(missing_ok=True)
            else:
                continue
            self._say(f"removed {name}, left by an interrupted backup")

    def _prepare(self) -> _Prepared:
        self._recover_pause()
        generated = read_json(self.state.path / "generated-secrets.json")
        if isinstance(generated, dict):
            self.redactor.add(str(v) for v in generated.values())
        compose = _load_yaml(self.install_dir / "docker-compose.yml")
        project = str(compose.get("name") or self.answers.compose_project)
        services: dict[str, Any] = compose.get("services") or {}
        record = read_json(self.state.result) or {}
        release = str((record.get("release") or {}).get("version") or "unknown")
        schema = record.get("schema_version")
        containers = self.engine.project_containers(project)
        running = [c for c in containers if c.state in ("running", "paused")]
        db = self.answers.database
        postgres = None
        if db.kind == "postgres":
            postgres = self._postgres_target(services, containers)
        volumes = self._volume_plan(project, compose, services)
        self._say(
            f"CodeQual {release} ({self.answers.target}), project {project}: "
            f"{len(running)} running containers, {len(volumes)} volumes, "
            + (
                f"PostgreSQL {'(managed) ' if db.managed else ''}{db.name}"
                if postgres
                else "SQLite"
            )
        )
        return _Prepared(
            project=project,
            release=release,
            schema_version=str(schema) if schema is not None else None,
            services=services,
            to_pause=[
                c.id
                for c in running
                if c.service != DATABASE_SERVICE and not c.oneoff and c.state == "running"
            ],
            postgres=postgres,
            volumes=volumes,
        )

    def _password(self) -> str:
        supplied = self.secrets.secrets.get("database_password")
        if supplied:
            return supplied
        generated = read_json(self.state.path / "generated-secrets.json")
        if isinstance(generated, dict):
            self.redactor.add(str(v) for v in generated.values())
            value = generated.get("database_password")
            if isinstance(value, str) and value:
                return value
        raise UsageError(
            "the database password is neither in the secrets nor among the generated ones",
            hint="pass the secrets file the installation was made with (--secrets)",
        )

    def _postgres_target(self, services: dict[str, Any], containers: list[Any]) -> Any:
        from installer.backup.postgres import PostgresTarget
        from installer.release import release_for

        db = self.answers.database
        password = self._password()
        self.redactor.add([password])
        image = (services.get(DATABASE_SERVICE) or {}).get("image")
        if not image:
            image = release_for(self.answers).image_for(DATABASE_SERVICE, self.answers)
        network = None
        for container in containers:
            if container.state != "running":
                continue
            info = self.engine.client.api.inspect_container(container.id)
            networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
            if networks:
                network = sorted(networks)[0]
                break
        if not db.managed and network is None:
            raise BackupFailed(
                "the PostgreSQL container is not running",
                hint=f"start the installation (docker compose up -d in {self.install_dir})",
            )
        return PostgresTarget(
            image=str(image),
            host=db.host if db.managed and db.host else DATABASE_SERVICE,
            port=db.port,
            user=db.user,
            database=db.name,
            password=password,
            network=network,
            sslmode=db.sslmode if db.managed else None,
        )

    def _volume_plan(
        self, project: str, compose: dict[str, Any], services: dict[str, Any]
    ) -> list[_Volume]:
        """Every named volume of the installed Compose file but the database's data."""
        from installer.engine.volumes import compose_volume, remove_helpers

        declared = list((compose.get("volumes") or {}).keys())
        users: dict[str, list[tuple[str, str]]] = {}
        for service, spec in services.items():
            for mount in spec.get("volumes") or []:
                source, _, target = str(mount).partition(":")
                users.setdefault(source, []).append((service, target.split(":")[0]))
        planned: list[_Volume] = []
        for name in declared:
            mounted = users.get(name, [])
            if any(service == DATABASE_SERVICE for service, _ in mounted):
                continue  # the dump covers it
            engine_name = compose_volume(self.engine, project, name)
            if engine_name is None:
                self._say(f"volume {name}: not created yet, nothing to copy")
                continue
            if removed := remove_helpers(self.engine, engine_name):
                self._say(f"volume {name}: removed {removed} helper container(s) a killed run left")
            image = str((services.get(mounted[0][0]) or {}).get("image")) if mounted else None
            if not image:
                image = next(str(s.get("image")) for s in services.values() if s.get("image"))
            planned.append(_Volume(name, engine_name, image, dict(mounted)))
        return planned

    # -- the consistent snapshot --------------------------------------------------------

    def _recover_pause(self) -> None:
        """Unpause what a killed backup left paused (its record names the containers)."""
        from installer.engine.volumes import unpause_container

        record_path = self.state.path / PAUSE_RECORD
        record = read_json(record_path)
        if not isinstance(record, dict):
            return
        for container_id in record.get("containers") or []:
            if unpause_container(self.engine, str(container_id)):
                self._say(f"unpaused container {str(container_id)[:12]}, left by a killed backup")
        record_path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _paused_application(self, containers: list[str]) -> Iterator[Callable[[], float]]:
        """Pause ``containers`` (recorded first); always unpause. Yields the pause clock."""
        from installer.engine.volumes import pause_container, unpause_container

        record_path = self.state.path / PAUSE_RECORD
        atomic_write_json(record_path, {"pid": os.getpid(), "containers": containers}, 0o600)
        started = time.monotonic()
        ended: list[float] = []
        try:
            for container_id in containers:
                pause_container(self.engine, container_id)
                self._paused.append(container_id)
            self._say(f"paused {len(containers)} application containers")
            yield lambda: (ended[0] if ended else time.monotonic()) - started
        finally:
            problems = []
            for container_id in self._paused:
                try:
                    unpause_container(self.engine, container_id)
                except InstallerError as e:
                    problems.append(e.message)
            ended.append(time.monotonic())
            self._paused = []
            if not problems:
                record_path.unlink(missing_ok=True)
            self._say(
                f"unpaused the application after {ended[0] - started:.2f}s"
                + (f" ({'; '.join(problems)})" if problems else "")
            )

    def _snapshot_and_database(
        self, prepared: _Prepared, writer: ArchiveWriter
    ) -> tuple[DatabaseInfo, Consistency, list[VolumeInfo]]:
        if prepared.postgres is not None:
            return self._postgres_backup(prepared, writer)
        return self._sqlite_backup(prepared, writer)

    def _postgres_backup(
        self, prepared: _Prepared, writer: ArchiveWriter
    ) -> tuple[DatabaseInfo, Consistency, list[VolumeInfo]]:
        from installer.backup.postgres import PsqlSession, pg_dump
        from installer.backup.tables import table_stats

        target = prepared.postgres
        member = "database/postgres.pgdump"
        with contextlib.ExitStack() as stack:
            with self._phase(1) as extra:
                # The session starts before the pause: its container's start is not in it.
                session = stack.enter_context(PsqlSession(target))
                with self._paused_application(prepared.to_pause) as pause_clock:
                    session.query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    snapshot = session.query("SELECT pg_export_snapshot()")[0][0]
                    self._say(f"database snapshot {snapshot} exported (repeatable read)")
                    volumes = self._copy_volumes(prepared, writer)
                pause = extra["pause_seconds"] = round(pause_clock(), 3)
            with self._phase(2):
                version = session.query("SHOW server_version")[0][0]
                self._say(f"PostgreSQL {version}: counting rows and checksums in the snapshot")
                tables = table_stats(session.query)
                rows = sum(t.rows for t in tables.values())
                self._say(f"{len(tables)} tables, {rows} rows")
                rate = _Rate("pg_dump -Fc")
                with writer.member(member) as out:

                    def sink(chunk: bytes, out: Any = out) -> None:
                        out.write(chunk)
                        self._progress(rate, len(chunk))

                    pg_dump(
                        target, sink, snapshot=snapshot, cancelled=lambda: self.cancel.cancelled
                    )
                self.cancel.raise_if_cancelled()
                self._say(f"{member}: {_size(writer.members[-1].size)}")
                session.query("COMMIT")
        db = self.answers.database
        database = DatabaseInfo(
            engine="postgres",
            method="pg_dump -Fc",
            managed=db.managed,
            server_version=version,
            name=db.name,
            member=member,
            tables=tables,
        )
        consistency = Consistency(
            method=(
                "application containers paused while the volumes were copied; the dump and "
                "the table statistics read the snapshot exported during the pause"
            ),
            pause_seconds=pause,
            paused=[c[:12] for c in prepared.to_pause],
        )
        return database, consistency, volumes

    def _sqlite_backup(
        self, prepared: _Prepared, writer: ArchiveWriter
    ) -> tuple[DatabaseInfo, Consistency, list[VolumeInfo]]:
        from installer.engine.volumes import copy_files_out

        volume, relative, image = self._sqlite_location(prepared)
        raw = writer.staging / "sqlite-files"
        raw.mkdir(mode=0o700)
        with self._phase(1) as extra:
            with self._paused_application(prepared.to_pause) as pause_clock:
                names = [relative + suffix for suffix in ("", "-wal", "-journal", "-shm")]
                copied = copy_files_out(self.engine, volume.engine_name, names, raw, image=image)
                self._say(
                    f"copied {', '.join(p.name for p in copied) or 'nothing'} "
                    f"from volume {volume.name}"
                )
                # The database member holds the database: the volume's copy leaves it out.
                volumes = self._copy_volumes(prepared, writer, {volume.name: frozenset(names)})
            pause = extra["pause_seconds"] = round(pause_clock(), 3)
        with self._phase(2):
            database_file = raw / Path(relative).name
            if not database_file.is_file():
                raise BackupFailed(
                    f"the SQLite database {relative} is not in volume {volume.name}",
                    hint="has the installation been migrated? run apply again",
                )
            tables = self._sqlite_copy(database_file, writer)
        database = DatabaseInfo(
            engine="sqlite",
            method="sqlite backup API",
            name=relative,
            member="database/sqlite.db.zst",
            tables=tables,
        )
        consistency = Consistency(
            method=(
                "application containers paused while the database files and the volumes were copied"
            ),
            pause_seconds=pause,
            paused=[c[:12] for c in prepared.to_pause],
        )
        return database, consistency, volumes

    def _sqlite_location(self, prepared: _Prepared) -> tuple[_Volume, str, str]:
        """(volume, path inside it, helper image) of the SQLite database file."""
        url = SQLITE_DEFAULT
        for spec in prepared.services.values():
            environment = spec.get("environment") or {}
            if isinstance(environment, dict) and str(environment.get("DATABASE_URL", "")):
                url = str(environment["DATABASE_URL"])
                break
        path = url.split(":", 1)[1] if url.startswith("file:") else url.split("sqlite://", 1)[-1]
        path = "/" + path.lstrip("/")
        best: tuple[_Volume, str] | None = None
        for volume in prepared.volumes:
            for mount in volume.mounts.values():
                if path.startswith(mount.rstrip("/") + "/") and (
                    best is None or len(mount) > len(best[1])
                ):
                    best = (volume, mount)
        if best is None:
            raise BackupFailed(f"no volume of the installation holds the SQLite file {path}")
        volume, mount = best
        return volume, path[len(mount.rstrip("/")) + 1 :], volume.image

    def _sqlite_copy(self, database_file: Path, writer: ArchiveWriter) -> dict[str, TableStats]:
        from installer.backup.tables import sqlite_integrity, sqlite_table_stats

        clean = database_file.parent / "backup.db"
        source = sqlite3.connect(str(database_file))
        try:
            target = sqlite3.connect(str(clean))
            try:
                source.backup(target)  # replays a hot journal or WAL of the copied files
            finally:
                target.close()
        except sqlite3.Error as e:
            raise BackupFailed(f"cannot copy the SQLite database: {e}") from e
        finally:
            source.close()
        verdict = sqlite_integrity(clean)
        if verdict != "ok":
            raise BackupFailed(
                f"the SQLite database fails PRAGMA integrity_check: {verdict}",
                hint="the database itself is damaged; no archive was written",
            )
        self._say("PRAGMA integrity_check: ok")
        tables = sqlite_table_stats(clean)
        self._say(f"{len(tables)} tables, {sum(t.rows for t in tables.values())} rows")
        rate = _Rate("compressing the SQLite copy", clean.stat().st_size)
        compressor = _compressor()
        with (
            writer.member("database/sqlite.db.zst") as out,
            compressor.stream_writer(out, closefd=False) as packed,
            open(clean, "rb") as source_file,
        ):
            while chunk := source_file.read(1024 * 1024):
                packed.write(chunk)
                self._progress(rate, len(chunk))
        shutil.rmtree(database_file.parent, ignore_errors=True)
        return tables

    def _copy_volumes(
        self,
        prepared: _Prepared,
        writer: ArchiveWriter,
        exclude: dict[str, frozenset[str]] | None = None,
    ) -> list[VolumeInfo]:
        """Each volume into ``volumes/<name>.tar.zst`` (``exclude``: paths left out per volume)."""
        from installer.engine.volumes import export_volume

        infos: list[VolumeInfo] = []
        for volume in prepared.volumes:
            member = f"volumes/{volume.name}.tar.zst"
            rate = _Rate(f"volume {volume.name}")
            compressor = _compressor()
            with (
                writer.member(member) as out,
                compressor.stream_writer(out, closefd=False) as packed,
            ):

                def sink(chunk: bytes, packed: Any = packed, rate: _Rate = rate) -> None:
                    packed.write(chunk)
                    self._progress(rate, len(chunk))

                copy = export_volume(
                    self.engine,
                    volume.engine_name,
                    sink,
                    image=volume.image,
                    exclude=(exclude or {}).get(volume.name, frozenset()),
                )
            infos.append(
                VolumeInfo(name=volume.name, member=member, files=copy.files, bytes=copy.bytes)
            )
            self._say(
                f"volume {volume.name}: {copy.files} files, {_size(copy.bytes)} "
                f"-> {_size(writer.members[-1].size)}"
            )
        return infos

    # -- configuration and state -------------------------------------------------------

    def _files(self, writer: ArchiveWriter) -> None:
        state = self.state.path.resolve()
        excluded = {state, self.directory.resolve()}
        default_backups = (self.install_dir / "backups").resolve()
        excluded.add(default_backups)

        def config_filter(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
            path = (self.install_dir / info.name).resolve()
            if path in excluded:
                return None
            return info

        def state_filter(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
            parts = Path(info.name).parts  # "./logs/x" -> ("logs", "x")
            if parts and (parts[0] in _STATE_EXCLUDED or parts[0].endswith(".partial")):
                return None
            return info

        self._tar_member(writer, "config.tar.zst", self.install_dir, config_filter)
        self._tar_member(writer, "state.tar.zst", self.state.path, state_filter)

    def _tar_member(
        self,
        writer: ArchiveWriter,
        member: str,
        root: Path,
        keep: Callable[[tarfile.TarInfo], tarfile.TarInfo | None],
    ) -> None:
        rate = _Rate(member)
        files = 0

        def counted(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
            nonlocal files
            kept = keep(info)
            if kept is not None and kept.isfile():
                files += 1
                self._progress(rate, kept.size)
            return kept

        compressor = _compressor()
        with (
            writer.member(member) as out,
            compressor.stream_writer(out, closefd=False) as packed,
            tarfile.open(fileobj=packed, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            tar.add(str(root), arcname=".", recursive=True, filter=counted)
        self._say(
            f"{member}: {files} files, {_size(rate.done)} -> {_size(writer.members[-1].size)}"
        )


@dataclass
class _Volume:
    name: str
    engine_name: str
    image: str
    mounts: dict[str, str]  # service -> mount path


@dataclass
class _Prepared:
    project: str
    release: str
    schema_version: str | None
    services: dict[str, Any]
    to_pause: list[str]
    postgres: Any
    volumes: list[_Volume]


def _size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def create_backup_events(
    answers: AnswerFile,
    secrets: LoadedSecrets,
    *,
    cancel: CancelToken,
    directory: Path | None = None,
    recipients: list[str] | None = None,
) -> tuple[BackupCreate, Iterator[Event]]:
    """A :class:`BackupCreate` and its event stream (for front ends)."""
    job = BackupCreate(answers, secrets, cancel=cancel, directory=directory, recipients=recipients)
    return job, job.run()
