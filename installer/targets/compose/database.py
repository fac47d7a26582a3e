"""The database step: SQLite, or PostgreSQL (container or managed) made ready and migrated."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer.engine.process import CommandFailed, command_to_file
from installer.errors import StepFailed
from installer.targets.compose.base import MIGRATE_SERVICE, kib, step_failure
from installer.targets.compose.installation import ComposeStep
from installer.targets.compose.polling import wait_until

if TYPE_CHECKING:
    from installer.engine.docker import ContainerInfo
    from installer.runner import StepContext, StepUpdate


class DatabaseStep(ComposeStep):
    name = "database"
    title = "Database initialization"

    @property
    def description(self) -> str:
        db = self.target.answers.database
        if db.kind == "sqlite":
            where = "SQLite in the codequal_data volume"
        elif db.managed:
            where = f"managed PostgreSQL at {db.host}:{db.port}"
        else:
            where = "the PostgreSQL container: role and database with the generated password"
        return f"{where}; migrate to schema version {self.target.release.migration.schema_version}"

    def check(self, ctx: StepContext) -> str | None:
        record = self.target.installed_record()
        wanted = self.target.release.migration.schema_version
        if record is None or record.get("schema_version") != wanted:
            return None
        if record.get("database") != self._database_facts():
            return None
        if self._postgres_container() is not None and not self._login_works():
            return None
        return f"database ready at schema version {wanted}"

    def _database_facts(self) -> dict[str, Any]:
        db = self.target.answers.database
        return {
            "kind": db.kind,
            "managed": db.managed,
            "host": db.host if db.managed else None,
            "name": db.name if db.kind == "postgres" else None,
        }

    def _postgres_container(self) -> ContainerInfo | None:
        if "postgres" not in self.target.database_services():
            return None
        running = [
            c for c in self.target.containers() if c.service == "postgres" and c.state == "running"
        ]
        return running[0] if running else None

    def _password(self) -> str:
        from installer.secretstore import SecretStore

        supplied = self.target.secrets.secrets.get("database_password")
        if supplied:
            return supplied
        return SecretStore(self.target.state.path).generated("database_password")

    def _login_works(self) -> bool:
        container = self._postgres_container()
        if container is None:
            return False
        db = self.target.answers.database
        code, _ = self.target.engine.exec(
            container.id,
            ["psql", "-h", "127.0.0.1", "-U", db.user, "-d", db.name, "-tAc", "SELECT 1"],
            environment={"PGPASSWORD": self._password(), "PGCONNECT_TIMEOUT": "5"},
        )
        return code == 0

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        target = self.target
        db = target.answers.database
        for leftover in target.engine.project_containers(target.project.name, oneoff=True):
            yield f"removing {leftover.name}, left by an interrupted run"
            target.engine.remove_container(leftover.id)
        if db.kind == "postgres" and not db.managed:
            yield from self._prepare_container(ctx)
        elif db.kind == "postgres":
            yield from self._wait_managed(ctx)
        else:
            yield "SQLite: the database file lives in the codequal_data volume"
        yield from self._backup_before_migration(ctx)
        migration = target.release.migration
        command = " ".join(migration.command)
        yield f"migrating to schema version {migration.schema_version}: {command}"
        try:
            if MIGRATE_SERVICE in target.services():
                yield from target.project.run_once(MIGRATE_SERVICE, cancel=ctx.cancel)
            else:
                yield from target.project.stream(
                    "run", "--rm", "--no-deps", "--no-TTY", "--pull", "never",
                    migration.service, *migration.command, cancel=ctx.cancel,
                )  # fmt: skip
        except CommandFailed as e:
            raise step_failure(self.name, e, "the migration failed") from e
        target._schema_version = migration.schema_version
        ctx.remember("schema_version", migration.schema_version)
        yield f"database at schema version {migration.schema_version}"

    def _prepare_container(self, ctx: StepContext) -> Iterator[StepUpdate]:
        db = self.target.answers.database
        yield "waiting for PostgreSQL to accept connections"

        def accepts() -> tuple[ContainerInfo | None, bool]:
            container = self._postgres_container()
            if container is None:
                return None, False
            # Over TCP: the first start's initialisation runs a temporary server on the
            # socket only, which answers the socket and then shuts down under our feet.
            code, _ = self.target.engine.exec(
                container.id,
                ["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-U", db.user, "-d", db.name],
            )
            return container, code == 0

        container, ready = wait_until(ctx, accepts, lambda answer: answer[1], timeout=120)
        if not ready:
            raise StepFailed(
                "PostgreSQL did not accept connections within 120s",
                step=self.name,
                log_tail=self.target.engine.logs(container.id) if container else [],
                hint=f"see `docker compose logs postgres` in {self.target.install_dir}",
            )
        yield "PostgreSQL is ready"
        password = self._password().replace("'", "''")
        role = db.user
        name = db.name
        # The role and database names are validated identifiers; the password travels on
        # standard input only, never on a command line or in a log.
        sql = (
            "\\set ON_ERROR_STOP on\n"  # noqa: S608 - validated identifiers, escaped password
            f"SELECT 'CREATE ROLE \"{role}\" LOGIN' WHERE NOT EXISTS "
            f"(SELECT FROM pg_roles WHERE rolname = '{role}')\\gexec\n"
            f"ALTER ROLE \"{role}\" WITH LOGIN PASSWORD '{password}';\n"
            f'SELECT \'CREATE DATABASE "{name}" OWNER "{role}"\' WHERE NOT EXISTS '
            f"(SELECT FROM pg_database WHERE datname = '{name}')\\gexec\n"
        )
        for attempt in range(1, 6):
            try:
                yield from self.target.project.stream(
                    "exec", "-T", "postgres", "psql", "-q", "-U", db.user, "-d", "postgres",
                    stdin=sql.encode(), cancel=ctx.cancel,
                )  # fmt: skip
                break
            except CommandFailed as e:
                # psql exits 2 when the connection failed (a server still starting): retry.
                if e.returncode != 2 or attempt == 5:
                    raise step_failure(self.name, e, "cannot create the database role") from e
                yield f"PostgreSQL is not ready yet (attempt {attempt}); retrying"
                ctx.sleep(2)
        yield f"role {role} and database {name} ready (password set from the secrets)"

    def _wait_managed(self, ctx: StepContext) -> Iterator[StepUpdate]:
        db = self.target.answers.database
        assert db.host is not None  # noqa: S101 - the model requires it when managed
        yield f"waiting for the managed PostgreSQL at {db.host}:{db.port}"
        address = (db.host, db.port)

        def connect() -> OSError | None:
            try:
                with socket.create_connection(address, timeout=5):
                    return None
            except OSError as e:
                return e

        error = wait_until(ctx, connect, lambda e: e is None, timeout=60, interval=1)
        if error is not None:
            raise StepFailed(
                f"cannot reach the managed PostgreSQL at {db.host}:{db.port}: "
                f"{error.strerror or error}",
                step=self.name,
                hint="check database.host and database.port, and the firewall between",
            ) from error
        yield "reachable; the migration connects as the configured role"

    def _backup_before_migration(self, ctx: StepContext) -> Iterator[StepUpdate]:
        """Dump the database before a schema change, so a rollback can restore it."""
        record = self.target.installed_record()
        wanted = self.target.release.migration.schema_version
        if record is None or record.get("schema_version") in (None, wanted):
            return
        if "backup" in ctx.data:
            return
        if self._postgres_container() is None:
            from installer.upgrade_pending import PendingUpgrade

            pending = PendingUpgrade.load(self.target.state)
            if pending is not None and pending.archive:
                yield (
                    f"the schema changes from version {record.get('schema_version')} to "
                    f"{wanted}; the pre-upgrade backup {Path(pending.archive).name} holds the "
                    "database as it was (a failed upgrade restores it)"
                )
                return
            yield (
                "note: the schema changes from version "
                f"{record.get('schema_version')} to {wanted}; back up this database yourself, "
                "a rollback cannot undo the migration here"
            )
            return
        db = self.target.answers.database
        dump = self.target.state.backups / f"{ctx.run_id}-{db.name}.sql"
        yield f"backing up database {db.name} before the schema change"
        try:
            size = command_to_file(
                self.target.project.argv(
                    "exec", "-T", "postgres", "pg_dump", "-U", db.user, "-d", db.name,
                    "--no-owner",
                ),
                dump,
                cancel=ctx.cancel,
            )  # fmt: skip
        except CommandFailed as e:
            raise step_failure(self.name, e, "cannot back up the database") from e
        ctx.remember("backup", str(dump))
        yield f"backup: {dump} ({kib(size)})"

    def rollback(self, ctx: StepContext) -> Iterator[StepUpdate]:
        backup = ctx.data.get("backup")
        if not backup:
            return
        db = self.target.answers.database
        yield f"restoring database {db.name} from {backup}"
        project = self.target.project
        recreate = (
            f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE);\n'
            f'CREATE DATABASE "{db.name}" OWNER "{db.user}";\n'
        )
        try:
            yield from project.stream(
                "exec", "-T", "postgres", "psql", "-q", "-v", "ON_ERROR_STOP=1",
                "-U", db.user, "-d", "postgres", stdin=recreate.encode(),
            )  # fmt: skip
            command_to_file(
                project.argv(
                    "exec", "-T", "postgres", "psql", "-q", "-v", "ON_ERROR_STOP=1",
                    "-U", db.user, "-d", db.name,
                ),
                Path(os.devnull),
                stdin_file=Path(backup),
            )  # fmt: skip
        except CommandFailed as e:
            raise step_failure(self.name, e, "cannot restore the database backup") from e
        yield f"database {db.name} restored to its state before the migration"
