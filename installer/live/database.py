"""database: the managed PostgreSQL answers the given user, over the given TLS mode.

``psql`` is asked — from a one-off container of the release's postgres image (on the
host's network, so it reaches what this machine reaches), or from this machine when the
image is not here and ``psql`` is — to connect as ``database.user`` with ``sslmode``, and
to tell the server's version and whether the user may create CodeQual's tables (CREATE on
the database, or on its ``public`` schema). A server older than the release's minimum
fails; so does a user that may create nothing.

The release's minimum is the major version of the postgres image it ships (``16-alpine``
-> 16). With ``sslmode`` verify-ca or verify-full the server's certificate is checked
against this machine's trusted CAs.

libpq's own words are the only account of a failed connection, so the failure's kind is
taken from them (password refused, no TLS offered, name not resolved, ...).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from installer.live.result import LiveInput, LiveResult, not_applicable

NAME = "database"
SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"
_CONTAINER_CA = "/run/codequal-ca.crt"
_CONTAINER_PASSFILE = "/run/codequal-pgpass"
QUERY = (
    "SELECT current_setting('server_version_num'), current_setting('server_version'), "
    "has_database_privilege(current_database(), 'CREATE'), "
    "coalesce((SELECT has_schema_privilege(oid, 'CREATE') FROM pg_namespace "
    "WHERE nspname = 'public'), false)"
)
# libpq's messages, most specific first: (fragment, kind, what the operator is told).
_CAUSES: tuple[tuple[str, str, str], ...] = (
    ("password authentication failed", "auth", "the server refused the password for user {user}"),
    (
        "no password supplied",
        "auth",
        "the server wants a password for {user}: set database_password",
    ),
    ("no pg_hba.conf entry", "auth", "the server does not let {user} connect from this machine"),
    (
        "server does not support SSL",
        "TLS",
        "the server does not offer TLS, but sslmode {sslmode} requires it",
    ),
    ("certificate verify failed", "TLS", "the server's certificate is not trusted"),
    ("root certificate file", "TLS", "no CA to verify the server's certificate with"),
    ("does not match host name", "TLS", "the server's certificate is not for {host}"),
    ("could not translate host name", "DNS", "{host} does not resolve"),
    ("Name or service not known", "DNS", "{host} does not resolve"),
    ("Connection refused", "TCP", "{host}:{port} refused the connection"),
    ("timeout expired", "TCP", "{host}:{port} did not answer in time"),
    ("No route to host", "TCP", "no route to {host}"),
    ("Network is unreachable", "TCP", "the network to {host} is unreachable"),
    ('role "', "auth", "user {user} does not exist on the server"),
)


@dataclass(frozen=True)
class PsqlRun:
    returncode: int
    stdout: str
    stderr: str
    via: str  # "container IMAGE" | "psql on this machine"


def minimum_major(inputs: LiveInput) -> int | None:
    """The oldest server major version the release accepts (its postgres image's major)."""
    service = inputs.release.services.get("postgres")
    if service is None:
        return None
    tag = service.image.split("@", 1)[0].rsplit("/", 1)[-1].partition(":")[2]
    match = re.match(r"(\d+)", tag)
    return int(match.group(1)) if match else None


def _environment(inputs: LiveInput, ca_file: str | None) -> dict[str, str]:
    database = inputs.answers.database
    env = {
        "PGHOST": database.host or "",
        "PGPORT": str(database.port),
        "PGUSER": database.user,
        "PGDATABASE": database.name,
        "PGSSLMODE": database.sslmode,
        "PGCONNECT_TIMEOUT": str(max(2, int(inputs.timeout))),
        "PGAPPNAME": "codequal-installer-check",
    }
    if ca_file:
        env["PGSSLROOTCERT"] = ca_file
    return env


def _psql_args(sql: str) -> list[str]:
    return ["psql", "-X", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1", "-c", sql]


def _image_here(inputs: LiveInput) -> str | None:
    from installer.engine.docker import DockerEngine
    from installer.errors import InstallerError
    from installer.render.images import mirrored

    answers = inputs.answers
    if "postgres" not in inputs.release.services:
        return None
    original = inputs.release.image_for("postgres", answers)
    engine = DockerEngine(timeout=max(2, int(inputs.timeout)))
    try:
        for reference in dict.fromkeys([mirrored(original, answers.registry.mirror), original]):
            if engine.image_id(reference) is not None:
                return reference
    except InstallerError:
        return None
    finally:
        engine.close()
    return None


@contextlib.contextmanager
def password_file(password: str | None) -> Iterator[str | None]:
    """A libpq password file (mode 0600, in a private temporary directory) matching any
    connection, removed afterwards: the password stays out of process environments and
    ``docker inspect``."""
    if not password:
        yield None
        return
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    with tempfile.TemporaryDirectory(prefix="codequal-check-") as directory:
        path = Path(directory) / "pgpass"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(f"*:*:*:*:{escaped}\n")
        yield str(path)


def run_psql(inputs: LiveInput, sql: str) -> PsqlRun | None:
    """Run ``psql -c sql`` the way the module text says; None when neither way is open."""
    verify = inputs.answers.database.sslmode in ("verify-ca", "verify-full")
    system_ca = SYSTEM_CA if verify and Path(SYSTEM_CA).is_file() else None
    image = _image_here(inputs)
    if image is None and not shutil.which("psql"):
        return None
    with password_file(inputs.secret("database_password")) as passfile:
        if image is not None:
            return _in_container(inputs, image, sql, system_ca, passfile)
        env = {"PATH": "/usr/bin:/bin", **_environment(inputs, system_ca)}
        if passfile:
            env["PGPASSFILE"] = passfile
        done = subprocess.run(
            _psql_args(sql),
            env=env,
            capture_output=True,
            text=True,
            timeout=inputs.timeout * 2,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        return PsqlRun(done.returncode, done.stdout, done.stderr, "psql on this machine")


def _in_container(
    inputs: LiveInput, image: str, sql: str, ca_file: str | None, passfile: str | None
) -> PsqlRun:
    import docker

    from installer.engine.docker import DockerEngine
    from installer.errors import InstallerError

    via = f"container {image}"
    environment = _environment(inputs, _CONTAINER_CA if ca_file else None)
    volumes: dict[str, dict[str, str]] = {}
    if ca_file:
        volumes[ca_file] = {"bind": _CONTAINER_CA, "mode": "ro"}
    if passfile:
        volumes[passfile] = {"bind": _CONTAINER_PASSFILE, "mode": "ro"}
        environment["PGPASSFILE"] = _CONTAINER_PASSFILE
    engine = DockerEngine(timeout=max(5, int(inputs.timeout * 2)))
    try:
        output = engine.client.containers.run(
            image,
            _psql_args(sql)[1:],
            entrypoint=["psql"],
            environment=environment,
            network_mode="host",
            volumes=volumes,
            remove=True,
            stdout=True,
            stderr=False,
            labels={"org.codequal.installer.check": NAME},
        )
        return PsqlRun(0, output.decode(errors="replace"), "", via)
    except docker.errors.ContainerError as e:
        stderr = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else str(e.stderr)
        return PsqlRun(int(e.exit_status), "", stderr, via)
    except docker.errors.DockerException as e:
        return PsqlRun(125, "", f"psql: error: the container did not run: {_first(e)}", via)
    except InstallerError as e:
        return PsqlRun(125, "", f"psql: error: {e.message}", via)
    finally:
        engine.close()


def _first(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def explain(stderr: str, inputs: LiveInput) -> tuple[str, str]:
    """(kind, operator sentence) for psql's error output."""
    database = inputs.answers.database
    fields = {
        "user": database.user,
        "host": database.host or "",
        "port": database.port,
        "sslmode": database.sslmode,
    }
    for fragment, kind, sentence in _CAUSES:
        if fragment in stderr:
            return kind, sentence.format(**fields)
    if f'database "{database.name}" does not exist' in stderr:
        return "database", f"database {database.name} does not exist"
    first = next((line for line in stderr.splitlines() if line.strip()), "psql failed")
    return "other", re.sub(r"^psql: error: ", "", first).strip()


_HINTS = {
    "auth": "check database.user and database_password (secrets file), and pg_hba.conf",
    "TLS": "match database.sslmode to the server (verify-full needs TLS and a trusted CA)",
    "DNS": "check database.host",
    "TCP": "check database.host and database.port, and the firewall between here and there",
    "database": "create the database, or give the user CREATEDB",
    "other": "run psql with the same settings to see the whole message",
}


def check_database(inputs: LiveInput) -> LiveResult:
    """The database check (see the module text)."""
    database = inputs.answers.database
    if database.kind != "postgres" or not database.managed:
        return not_applicable(NAME, "the installer runs its own database")
    where = f"{database.user}@{database.host}:{database.port}/{database.name}"
    minimum = minimum_major(inputs)
    required = "connects; " + (f"PostgreSQL >= {minimum}; " if minimum else "") + "may CREATE"
    run = run_psql(inputs, QUERY)
    if run is None:
        return LiveResult(
            NAME,
            "warn",
            "not checked: needs the release's postgres image or psql on this machine",
            required,
            hint="install postgresql-client (or pull the release's postgres image) to check",
        )
    details: dict[str, object] = {"via": run.via, "sslmode": database.sslmode}
    if run.returncode != 0:
        kind, sentence = explain(run.stderr, inputs)
        # On the Kubernetes targets the pods connect, from the cluster's network: a server
        # this machine cannot reach may well be reachable there (as the images check says
        # of registries); what it refuses (password, TLS, pg_hba) fails all the same.
        unreachable_from_here = kind in ("DNS", "TCP") and not inputs.answers.is_compose
        return LiveResult(
            NAME,
            "warn" if unreachable_from_here else "fail",
            f"could not connect as {where} ({sentence})",
            required,
            hint=(
                "this machine cannot reach the database; the cluster's pods connect, check they can"
                if unreachable_from_here
                else _HINTS.get(kind, _HINTS["other"])
            ),
            details={**details, "cause": kind},
        )
    row = run.stdout.strip().splitlines()[-1].split("|") if run.stdout.strip() else []
    if len(row) != 4 or not row[0].isdigit():
        return LiveResult(
            NAME, "fail", f"unexpected answer from {where}", required, details=details
        )
    version_num, version, on_database, on_public = row
    major = int(version_num) // 10000
    details = {
        **details,
        "server_version": version,
        "create_on_database": on_database == "t",
        "create_on_public": on_public == "t",
    }
    if minimum and major < minimum:
        return LiveResult(
            NAME,
            "fail",
            f"PostgreSQL {version} at {where} is older than {minimum}",
            required,
            hint=f"upgrade the server to PostgreSQL {minimum} or later",
            details=details,
        )
    if on_database != "t" and on_public != "t":
        return LiveResult(
            NAME,
            "fail",
            f"PostgreSQL {version}: {database.user} may not create tables in {database.name} "
            "(no CREATE on the database or on schema public)",
            required,
            hint=f"GRANT CREATE ON DATABASE {database.name} TO {database.user} "
            "(or make it the database's owner)",
            details=details,
        )
    may = "the database" if on_database == "t" else "schema public"
    return LiveResult(
        NAME,
        "pass",
        f"PostgreSQL {version} at {where}; {database.user} may CREATE in {may}",
        required,
        details=details,
    )
