"""PostgreSQL for backups: a psql session and ``pg_dump`` in one-off containers.

Both run from the release's PostgreSQL image (already on this host) in a throwaway
container on the installation's network, for the container database and a managed one
alike, so the client always matches what the release ships and nothing is installed on
the host. The password reaches them on standard input (the first line, read by ``sh``
into ``PGPASSWORD``): never on a command line, never in the container's configuration
(``docker inspect``).

:class:`PsqlSession` keeps one psql open, so that a transaction can hold the snapshot
the dump is made from (``pg_export_snapshot()``, then ``pg_dump --snapshot``) while table
statistics are computed in it.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from installer.engine.process import _death_signal_prefix
from installer.errors import InstallerError

HELPER_LABEL = "dev.codequal.installer.helper"
_END = "__codequal_end_of_result__"
_SHELL_PRELUDE = 'IFS= read -r PGPASSWORD; export PGPASSWORD; exec "$@"'
CHUNK = 1024 * 1024


class DatabaseBackupError(InstallerError):
    """The database could not be read for a backup (nothing was changed)."""


@dataclass(frozen=True)
class PostgresTarget:
    """Where the database is and how to reach it from a container."""

    image: str
    host: str
    port: int
    user: str
    database: str
    password: str = field(repr=False)  # never in a repr, a traceback or a log
    network: str | None = None
    sslmode: str | None = None
    docker: str = "docker"

    def argv(self, name: str, program: Sequence[str]) -> list[str]:
        argv = [
            self.docker, "run", "--rm", "-i", "--name", name,
            "--label", f"{HELPER_LABEL}=backup", "--entrypoint", "sh",
        ]  # fmt: skip
        if self.network:
            argv += ["--network", self.network]
        if self.sslmode:
            argv += ["--env", f"PGSSLMODE={self.sslmode}"]
        return [*argv, self.image, "-c", _SHELL_PRELUDE, "sh", *program]

    def connection(self) -> list[str]:
        return ["-h", self.host, "-p", str(self.port), "-U", self.user, "-d", self.database]


def _remove_container(docker: str, name: str) -> None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            [docker, "rm", "--force", name], capture_output=True, timeout=60, check=False
        )


class PsqlSession:
    """One psql in a one-off container; :meth:`query` runs a statement and returns rows.

    Use with ``with``: the container is removed on leaving the block, however it ends.
    """

    def __init__(self, target: PostgresTarget) -> None:
        self.target = target
        self.name = f"codequal-backup-psql-{secrets.token_hex(4)}"
        self._process: subprocess.Popen[str] | None = None
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()

    def __enter__(self) -> PsqlSession:
        program = [
            "psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
            *self.target.connection(),
        ]  # fmt: skip
        argv = [*_death_signal_prefix(), *self.target.argv(self.name, program)]
        try:
            self._process = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._errors,
                text=True, encoding="utf-8", errors="replace", start_new_session=True,
            )  # fmt: skip
        except OSError as e:
            self.close()
            raise DatabaseBackupError(f"cannot run docker: {e.strerror or e}") from e
        assert self._process.stdin is not None  # noqa: S101 - PIPE was asked for
        self._process.stdin.write(self.target.password + "\n")
        self._process.stdin.flush()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query(self, sql: str) -> list[list[str]]:
        """Run one statement; its rows as lists of text columns."""
        process = self._process
        if process is None or process.stdin is None or process.stdout is None:
            raise DatabaseBackupError("the psql session is closed")
        try:
            process.stdin.write(sql.rstrip().rstrip(";") + ";\n\\echo " + _END + "\n")
            process.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise self._failure("psql stopped") from e
        rows: list[list[str]] = []
        while True:
            line = process.stdout.readline()
            if not line:
                raise self._failure("psql stopped")
            line = line.rstrip("\n")
            if line == _END:
                return rows
            if line:
                rows.append(line.split("\t"))

    def _failure(self, what: str) -> DatabaseBackupError:
        process = self._process
        code = None
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = process.wait(timeout=30)
        self._errors.seek(0)
        tail = self._errors.read().decode("utf-8", "replace").strip().splitlines()[-5:]
        return DatabaseBackupError(
            f"cannot query the database {self.target.database} at {self.target.host}: "
            f"{what} (exit {code}): {' '.join(tail) or 'no message'}",
            hint="check that the database is running and that the installation's "
            "database password is the one in its secrets",
        )

    def close(self) -> None:
        process = self._process
        self._process = None
        if process is not None:
            with contextlib.suppress(OSError, ValueError):
                if process.stdin is not None:
                    process.stdin.write("\\q\n")
                    process.stdin.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
            _remove_container(self.target.docker, self.name)
        self._errors.close()


def pg_dump(
    target: PostgresTarget,
    sink: Callable[[bytes], Any],
    *,
    snapshot: str | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> int:
    """``pg_dump -Fc`` of the database into ``sink`` (called per chunk); the bytes written."""
    name = f"codequal-backup-dump-{secrets.token_hex(4)}"
    program = ["pg_dump", "-Fc", "--no-owner"]
    if snapshot:
        program.append(f"--snapshot={snapshot}")
    program += target.connection()
    argv = [*_death_signal_prefix(), *target.argv(name, program)]
    total = 0
    with tempfile.TemporaryFile() as errors:
        try:
            process = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
                start_new_session=True,
            )  # fmt: skip
        except OSError as e:
            raise DatabaseBackupError(f"cannot run docker: {e.strerror or e}") from e
        assert process.stdin is not None and process.stdout is not None  # noqa: S101
        try:
            process.stdin.write(target.password.encode() + b"\n")
            process.stdin.close()
            while True:
                if cancelled():
                    from installer.errors import Interrupted

                    raise Interrupted("interrupted during the database dump")
                chunk = process.stdout.read(CHUNK)
                if not chunk:
                    break
                sink(chunk)
                total += len(chunk)
            code = process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdout.close()
            _remove_container(target.docker, name)
        if code != 0:
            errors.seek(0)
            tail = errors.read().decode("utf-8", "replace").strip().splitlines()[-5:]
            raise DatabaseBackupError(
                f"pg_dump of {target.database} at {target.host} failed (exit {code}): "
                + (" ".join(tail) or "no message"),
                hint="a managed server newer than the release's PostgreSQL client cannot be "
                "dumped with it; otherwise check that the database is up",
            )
    return total
