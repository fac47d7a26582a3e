"""The full ``backup verify``: the archive restored into a throwaway sandbox and compared.

``verify --quick`` stops after the hashes. Without it, :func:`verify_in_sandbox`:

1. decrypts the archive and checks every member against the manifest (exit 4 naming the
   member, or the key);
2. starts a scratch Compose project (``codequal-verify-<hex>``) in a temporary directory:
   the release's PostgreSQL image on a network marked ``internal`` (no route out), no port
   published, every object labelled ``org.codequal.verify=<project>``;
3. restores the database into it (``pg_restore --single-transaction --exit-on-error``; a
   SQLite copy is checked with ``PRAGMA integrity_check`` instead) and each volume into a
   scratch volume through the Engine's archive API;
4. compares every table's row count and checksum, and each volume's file count and bytes,
   with the manifest;
5. removes the project, its network and volumes and the directory, however it ends:
   ``try``/``finally`` around everything, with SIGTERM turned into an exception for the
   length of the run (Ctrl-C already is one) and both signals ignored while cleaning up.

A pass is recorded beside the archive as ``<archive>.verified.json`` (by the catalog's
writer, which ``backup list`` and ``prune`` read); a failure writes nothing and ends with
exit 4 naming what differs (the member, the key, the table or the volume).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

from installer.backup.errors import BackupIntegrityError
from installer.errors import InstallerError, Interrupted
from installer.events import Event
from installer.runner import CancelToken

VERIFY_LABEL = "org.codequal.verify"
_DB = "verify"

Say = Callable[[str], None]


@dataclass
class VerifyReport:
    """What a full verification found (``problems`` empty: the archive restores)."""

    archive: str
    release: str
    tables: int = 0
    rows: int = 0
    volumes: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": 1,
            "archive": self.archive,
            "verified": not self.problems,
            "mode": "full",
            "verified_at": datetime.now(timezone.utc)
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
            "release": self.release,
            "tables": self.tables,
            "rows": self.rows,
            "volumes": self.volumes,
            "problems": self.problems,
            "seconds": round(self.seconds, 1),
        }


@contextlib.contextmanager
def _terminate_raises() -> Iterator[None]:
    """SIGTERM raises (so ``finally`` runs) for the block; restored afterwards."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(f"interrupted by {signal.Signals(signum).name}")

    if threading.current_thread() is not threading.main_thread():
        yield  # a front end's worker thread: it stops the run with the cancel token
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """Cleaning up is not interrupted by a second Ctrl-C or SIGTERM."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def verify_in_sandbox(
    archive: Path, identity: Path, *, cancel: CancelToken | None = None, engine: Any = None
) -> Iterator[Event]:
    """Verify ``archive`` fully (see the module documentation), as events.

    The last event is ``run.finished`` (exit 0, the record written) or ``run.failed``
    (exit 4 naming what differs, or the error's own code); nothing is raised for an
    error the operator can act on.
    """
    from installer.backup.catalog import write_verification
    from installer.backup.restore import ArchiveSource

    token = cancel if cancel is not None else CancelToken()
    started = time.monotonic()
    messages: list[str] = []
    step = "hashes"

    def say(message: str) -> None:
        messages.append(message)

    def flush() -> Iterator[Event]:
        while messages:
            yield Event("step.output", messages.pop(0), step=step)

    steps = [
        {"name": "hashes", "title": "Decrypt and check every member"},
        {"name": "sandbox", "title": "Restore into a throwaway sandbox and compare"},
    ]
    yield Event("run.started", f"verify {archive} (restore into a sandbox)", data={"steps": steps})
    try:
        if not archive.is_file():
            raise BackupIntegrityError(f"{archive}: no such archive", member=None)
        yield Event("step.started", steps[0]["title"], step=step)
        source = ArchiveSource.open(archive, identity)
        manifest = source.verify_hashes()
        yield Event("step.finished", f"{len(source.members()) + 1} members match", step=step)
        token.raise_if_cancelled()
        step = "sandbox"
        yield Event("step.started", steps[1]["title"], step=step)
        report = VerifyReport(archive.name, source.release)
        with _terminate_raises():
            sandbox = Sandbox(source, say, engine, token)
            try:
                for _ in sandbox.run(report):
                    yield from flush()
                    token.raise_if_cancelled()
            finally:
                with _signals_ignored():
                    sandbox.remove()
                say(f"sandbox {sandbox.name} removed (containers, network, volumes)")
        yield from flush()
        report.seconds = time.monotonic() - started
        if report.problems:
            raise BackupIntegrityError(
                f"{archive.name} does not restore as its manifest says: {report.problems[0]}",
                member=None,
                problems=report.problems,
                hint="this archive cannot be trusted; take a new backup",
            )
        yield Event("step.finished", f"restored and compared in {report.seconds:.1f}s", step=step)
        written = write_verification(
            archive,
            manifest,
            "full",
            {
                "tables": report.tables,
                "rows": report.rows,
                "volumes": report.volumes,
                "seconds": round(report.seconds, 1),
            },
        )
        yield Event(
            "run.finished",
            f"{archive.name} restores: {report.tables} tables ({report.rows} rows) and "
            f"{len(report.volumes)} volumes equal the manifest; recorded in {written.name}",
            exit_code=0,
            data={"archive": str(archive), "record": str(written), **report.to_dict()},
        )
    except InstallerError as e:
        # Nothing is written on failure, and an earlier record is left alone: the catalog
        # ignores a record whose archive changed since (size and mtime), and a wrong key
        # says nothing about the archive.
        yield from flush()
        data: dict[str, Any] = {}
        if e.hint:
            data["hint"] = e.hint
        member = getattr(e, "member", None)
        if member:
            data["member"] = member
        problems = getattr(e, "problems", None)
        if problems:
            data["problems"] = list(problems)
        yield Event("step.failed", e.message, step=step, data=dict(data))
        yield Event("run.failed", e.message, exit_code=int(e.exit_code), data=data)


class Sandbox:
    """The scratch Compose project one verification restores into."""

    def __init__(
        self, source: Any, say: Say, engine: Any = None, cancel: CancelToken | None = None
    ) -> None:
        from installer.engine.compose import ComposeProject
        from installer.engine.docker import DockerEngine

        self.source = source
        self.say = say
        self.engine = engine if engine is not None else DockerEngine()
        self.name = f"codequal-verify-{secrets.token_hex(4)}"
        self.directory = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        self.project = ComposeProject(self.directory, self.name)
        self.cancel = cancel
        self._created = False

    # -- the project ----------------------------------------------------------------------

    def _image(self) -> str:
        from installer.release import load_release

        try:
            release = load_release(self.source.release)
        except InstallerError:
            release = load_release(None)
        return release.image_for("postgres")

    def _write_project(self, image: str, volumes: list[str], with_database: bool) -> None:
        from installer.secretstore import write_private

        labels = {VERIFY_LABEL: self.name}
        services: dict[str, Any] = {}
        if with_database:
            services["postgres"] = {
                "image": image,
                "environment": {
                    "POSTGRES_USER": _DB,
                    "POSTGRES_DB": _DB,
                    "POSTGRES_PASSWORD": "${POSTGRES_PASSWORD}",
                },
                "networks": ["sandbox"],
                "labels": labels,
                "volumes": ["pgdata:/var/lib/postgresql/data"],
            }
        names = [*volumes, "pgdata"] if with_database else volumes
        document: dict[str, Any] = {
            "name": self.name,
            "services": services,
            "networks": {"sandbox": {"internal": True, "labels": labels}},
            "volumes": {name: {"labels": labels} for name in names},
        }
        # A throwaway password for a database nobody can reach; 0600 all the same.
        write_private(
            self.directory / ".env",
            f"POSTGRES_PASSWORD={secrets.token_urlsafe(24)}\n".encode(),
        )
        (self.directory / "docker-compose.yml").write_text(json.dumps(document, indent=2) + "\n")

    def run(self, report: VerifyReport) -> Iterator[None]:
        """Restore and compare, phase by phase (a yield between phases: a checkpoint)."""
        source = self.source
        engine_kind = source.engine
        volumes = [str(v["name"]) for v in source.volumes]
        image = self._image()
        with_database = engine_kind == "postgres"
        if with_database and self.engine.image_id(image) is None:
            raise InstallerError(
                f"the PostgreSQL image {image} of release {source.release} is not on this host",
                hint="verify on a host where that release is installed (or load its bundle)",
            )
        self._write_project(image, volumes, with_database)
        self._created = True
        if with_database:
            self.say(f"starting the sandbox {self.name} (internal network, nothing published)")
            for _line in self.project.stream(
                "up", "--detach", "--pull", "never", "postgres", cancel=self.cancel
            ):
                pass
            yield
            self._restore_postgres(report)
        elif engine_kind == "sqlite":
            self._check_sqlite(report)
        yield
        for volume in source.volumes:
            self._restore_volume(volume, image, report)
            yield

    # -- database -------------------------------------------------------------------------

    def _container(self) -> Any:
        infos = [c for c in self.engine.project_containers(self.name) if c.service == "postgres"]
        return infos[0] if infos else None

    def _wait_ready(self) -> Any:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            container = self._container()
            if container is not None and container.state == "running":
                code, _ = self.engine.exec(
                    container.id, ["pg_isready", "-h", "127.0.0.1", "-U", _DB, "-d", _DB]
                )
                if code == 0:
                    return container
            time.sleep(0.5)
        raise InstallerError("the sandbox's PostgreSQL did not start within 120s")

    def _restore_postgres(self, report: VerifyReport) -> None:
        from installer.backup.restore import POSTGRES_MEMBER, compare_tables
        from installer.backup.tables import table_stats

        container = self._wait_ready()
        self.say(f"restoring {POSTGRES_MEMBER} into the sandbox")
        argv = self.project.argv(
            "exec", "-T", "postgres", "pg_restore", "-U", _DB, "-d", _DB,
            "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error",
        )  # fmt: skip
        with self.source.member(POSTGRES_MEMBER) as stream:
            code, tail = _pipe(argv, stream, self.cancel)
        if code != 0:
            report.problems.append(
                f"{POSTGRES_MEMBER} does not restore: pg_restore exit {code}"
                + (f": {tail[-1]}" if tail else "")
            )
            return

        def query(sql: str) -> list[list[str]]:
            status, output = self.engine.exec(
                container.id,
                ["psql", "-X", "-q", "-At", "-F", "\t", "-U", _DB, "-d", _DB, "-c", sql],
            )
            if status != 0:
                raise InstallerError(f"cannot read the sandbox's tables: {output.strip()[:200]}")
            return [line.split("\t") for line in output.splitlines() if line.strip()]

        stats = table_stats(query)
        self._compare(report, compare_tables(source_tables(self.source), stats), stats)

    def _check_sqlite(self, report: VerifyReport) -> None:
        from installer.backup.restore import SQLITE_MEMBER, compare_tables, zstd_reader
        from installer.backup.tables import sqlite_integrity, sqlite_table_stats

        self.say(f"restoring {SQLITE_MEMBER} into the sandbox")
        copy = self.directory / "codequal.db"
        with (
            self.source.member(SQLITE_MEMBER) as raw,
            zstd_reader(raw) as plain,
            open(copy, "wb") as out,
        ):
            shutil.copyfileobj(plain, out, 1024 * 1024)
        verdict = sqlite_integrity(copy)
        if verdict != "ok":
            report.problems.append(f"{SQLITE_MEMBER}: PRAGMA integrity_check says {verdict}")
            return
        stats = sqlite_table_stats(copy)
        self._compare(report, compare_tables(source_tables(self.source), stats), stats)

    def _compare(self, report: VerifyReport, problems: list[str], stats: Mapping[str, Any]) -> None:
        report.problems += problems
        report.tables = len(stats)
        report.rows = sum(int(getattr(s, "rows", 0)) for s in stats.values())
        if not problems:
            self.say(f"{report.tables} tables, {report.rows} rows: counts and checksums match")

    # -- volumes --------------------------------------------------------------------------

    def _restore_volume(self, volume: Mapping[str, Any], image: str, report: VerifyReport) -> None:
        from installer.backup.restore import zstd_reader
        from installer.engine import volumes as engine_volumes

        name = str(volume["name"])
        member = str(volume.get("member") or f"volumes/{name}.tar.zst")
        helper_image = image if self.engine.image_id(image) else self._any_release_image()
        engine_name = engine_volumes.create_compose_volume(self.engine, self.name, name)
        self.say(f"restoring {member} into a scratch volume")
        with self.source.member(member) as raw, zstd_reader(raw) as plain:
            engine_volumes.import_volume(self.engine, engine_name, plain, image=helper_image)
        copy = engine_volumes.export_volume(
            self.engine, engine_name, lambda _chunk: None, image=helper_image
        )
        report.volumes[name] = {"files": copy.files, "bytes": copy.bytes}
        want_files, want_bytes = int(volume.get("files") or 0), int(volume.get("bytes") or 0)
        if (copy.files, copy.bytes) != (want_files, want_bytes):
            report.problems.append(
                f"volume {name}: {copy.files} files, {copy.bytes} bytes restored; the manifest "
                f"has {want_files} files, {want_bytes} bytes"
            )
        else:
            self.say(f"volume {name}: {copy.files} files, {copy.bytes} bytes: match")

    def _any_release_image(self) -> str:
        from installer.release import load_release

        release = load_release(self.source.release)
        for service in release.services:
            reference = release.image_for(service)
            if self.engine.image_id(reference):
                return reference
        raise InstallerError(f"no image of release {self.source.release} is on this host")

    # -- cleaning up ----------------------------------------------------------------------

    def remove(self) -> None:
        """Every container, network and volume of the sandbox, and its directory."""
        try:
            if self._created:
                with contextlib.suppress(InstallerError):
                    for _line in self.project.stream("down", "--volumes", "--remove-orphans"):
                        pass
            self._remove_labelled()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _remove_labelled(self) -> None:
        """Whatever ``down`` missed (a helper container, a volume made outside Compose)."""
        import docker

        try:
            client = self.engine.client
        except InstallerError:
            return
        label = f"{VERIFY_LABEL}={self.name}"
        project = f"com.docker.compose.project={self.name}"
        with contextlib.suppress(docker.errors.DockerException):
            for filters in ({"label": label}, {"label": project}):
                for container in client.api.containers(all=True, filters=filters):
                    with contextlib.suppress(docker.errors.DockerException):
                        client.api.remove_container(container["Id"], force=True)
            for filters in ({"label": label}, {"label": project}):
                for volume in client.volumes.list(filters=filters):
                    with contextlib.suppress(docker.errors.DockerException):
                        volume.remove(force=True)
                for network in client.networks.list(filters=filters):
                    with contextlib.suppress(docker.errors.DockerException):
                        network.remove()


def source_tables(source: Any) -> dict[str, Any]:
    tables: dict[str, Any] = source.tables
    return tables


def _pipe(argv: list[str], stream: Any, cancel: CancelToken | None) -> tuple[int, list[str]]:
    """Run ``argv`` with ``stream`` on its standard input: (exit code, last output lines)."""
    import subprocess

    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        assert process.stdin is not None  # noqa: S101 - PIPE was asked for
        try:
            while chunk := stream.read(1024 * 1024):
                if cancel is not None:
                    cancel.raise_if_cancelled()
                try:
                    process.stdin.write(chunk)
                except BrokenPipeError:
                    break
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
            code = process.wait()
        except BaseException:
            if process.poll() is None:
                process.kill()
                process.wait()
            raise
        output.seek(0)
        lines = [line for line in output.read().decode("utf-8", "replace").splitlines() if line]
    return code, lines[-20:]
