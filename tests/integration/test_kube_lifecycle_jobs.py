"""The Kubernetes dump and restore Jobs, their containers run for real.

No cluster can run here, so each Job's container is run the way a kubelet would run it:
the container's ``command`` and ``env`` from the rendered Job spec exactly, the secret
reference resolved to the database password, the dump claim a Docker volume owned by the
pod's ``fsGroup``, ``/tmp`` an emptyDir, a read-only root file system and the pod's user.
The database is the test PostgreSQL image, reached by the Service name the Job uses.

Checked: a dump made from one database restores into another, equal in schema and rows; a
database changed after the dump (a column, a table, rows: what a migration does) comes back
exactly as it was; a dump that does not match its SHA-256 is refused and nothing changes.
The rendered objects pass the official schemas (``kubernetes-validate --strict``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from installer.answers import AnswerFile
from installer.targets.kubernetes.lifecycle import (
    _DUMP_REPORT,
    backup_claim,
    backup_network_policies,
    dump_job,
    restore_job,
)
from tests.support.images import POSTGRES
from tests.support.kube_install import BASE_ANSWERS

NAMESPACE = "codequal"
HOST = f"postgres.{NAMESPACE}.svc.cluster.local"
PASSWORD = "pw-" + uuid.uuid4().hex  # the Secret's value: never in the Job spec
KUBERNETES_VERSIONS = ("1.29.0", "1.33.0")
SEED = """
CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, created timestamptz DEFAULT now());
INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 500) g;
CREATE TABLE settings (key text PRIMARY KEY, value jsonb);
INSERT INTO settings VALUES ('schema', '{"version": 1}'), ('quote', '{"s": "it''s"}');
CREATE INDEX items_name ON items (name);
"""
MIGRATION = """
ALTER TABLE items ADD COLUMN score integer DEFAULT 7;
INSERT INTO items (name) VALUES ('written after the upgrade');
UPDATE settings SET value = '{"version": 2}' WHERE key = 'schema';
CREATE TABLE reviews (id serial PRIMARY KEY, item integer REFERENCES items(id));
INSERT INTO reviews (item) VALUES (1), (2);
"""


def docker(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])}: {result.stderr}")
    return result


def _answers() -> AnswerFile:
    return AnswerFile.model_validate(BASE_ANSWERS)


@pytest.fixture(scope="module")
def network(docker_engine: Any, test_images: Any) -> Iterator[str]:
    name = f"cq-kube-jobs-{uuid.uuid4().hex[:8]}"
    docker("network", "create", name)
    yield name
    docker("network", "rm", name, check=False)


class Database:
    """A PostgreSQL container on ``network``, answering as the Job's Service name."""

    def __init__(self, network: str, alias: str | None) -> None:
        self.name = f"cq-kube-pg-{uuid.uuid4().hex[:8]}"
        args = ["run", "-d", "--name", self.name, "--network", network]
        if alias:
            args += ["--network-alias", alias]
        env = {
            "POSTGRES_PASSWORD": PASSWORD,
            "POSTGRES_USER": "codequal",
            "POSTGRES_DB": "codequal",
        }
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        docker(*args, POSTGRES)
        deadline = time.monotonic() + 90
        while True:
            ready = docker(
                "exec", self.name, "pg_isready", "-h", "127.0.0.1", "-U", "codequal", check=False
            )
            if ready.returncode == 0 and self.sql("SELECT 1") == "1":
                break
            if time.monotonic() > deadline:
                logs = docker("logs", self.name, check=False)
                raise AssertionError(f"PostgreSQL did not start: {logs.stdout}{logs.stderr}")
            time.sleep(0.5)

    def sql(self, statement: str) -> str:
        result = docker(
            "exec", "-e", f"PGPASSWORD={PASSWORD}", self.name, "psql", "-X", "-h", "127.0.0.1",
            "-U", "codequal", "-d", "codequal", "-v", "ON_ERROR_STOP=1", "-At", "-c", statement,
            check=False,
        )  # fmt: skip
        return result.stdout.strip() if result.returncode == 0 else f"ERROR {result.stderr}"

    def snapshot(self) -> dict[str, str]:
        """Schema (as pg_dump prints it) and every row of every table, in order."""
        schema = docker(
            "exec", "-e", f"PGPASSWORD={PASSWORD}", self.name, "pg_dump", "-h", "127.0.0.1",
            "-U", "codequal", "-d", "codequal", "--schema-only", "--no-owner",
        ).stdout  # fmt: skip
        tables = self.sql(
            "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables "
            "WHERE schemaname = 'public'"
        )
        rows = {
            t: self.sql(f"SELECT json_agg(x ORDER BY x::text) FROM {t} x")  # noqa: S608 - our own table names
            for t in tables.split(",")
            if t
        }
        sequences = self.sql("SELECT last_value FROM items_id_seq")
        # pg_dump's \restrict key is new on each run (CVE-2025-8714): not part of the schema.
        lines = [
            line
            for line in schema.splitlines()
            if not line.startswith(("--", "\\restrict ", "\\unrestrict "))
        ]
        return {"schema": "\n".join(lines), "tables": tables, "sequence": sequences, **rows}

    def remove(self) -> None:
        docker("rm", "-f", "-v", self.name, check=False)


@pytest.fixture
def databases(network: str) -> Iterator[list[Database]]:
    made: list[Database] = []
    yield made
    for database in made:
        database.remove()


@pytest.fixture
def claim(docker_engine: Any) -> Iterator[str]:
    """The dump claim: a volume owned by the pod's fsGroup (70), as the kubelet leaves it."""
    name = f"cq-kube-backups-{uuid.uuid4().hex[:8]}"
    docker("volume", "create", name)
    docker("run", "--rm", "-v", f"{name}:/backups", "--entrypoint", "chown", POSTGRES,
           "70:70", "/backups")  # fmt: skip
    yield name
    docker("volume", "rm", "-f", name, check=False)


def run_job_container(
    job: dict[str, Any], network: str, volume: str
) -> subprocess.CompletedProcess[str]:
    """The Job's one container as a kubelet would run it (see the module text)."""
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    security = pod["securityContext"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    args = [
        "run", "--rm", "--network", network,
        "--user", f"{security['runAsUser']}:{security['runAsGroup']}",
        "--group-add", str(security["fsGroup"]),
        "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
    ]  # fmt: skip
    for name, path in mounts.items():
        if "persistentVolumeClaim" in volumes[name]:
            args += ["-v", f"{volume}:{path}"]
        else:
            assert "emptyDir" in volumes[name]
            args += ["--tmpfs", f"{path}:rw,mode=1777"]
    for variable in container["env"]:
        if "valueFrom" in variable:
            reference = variable["valueFrom"]["secretKeyRef"]
            assert (reference["name"], reference["key"]) == (
                "codequal-secrets",
                "POSTGRES_PASSWORD",
            )
            args += ["-e", f"{variable['name']}={PASSWORD}"]
        else:
            args += ["-e", f"{variable['name']}={variable['value']}"]
    command = container["command"]
    args += ["--entrypoint", command[0], container["image"], *command[1:]]
    return docker(*args, check=False, timeout=300)


def _dump(database_network: str, volume: str, path: str) -> tuple[dict[str, Any], str]:
    job = dump_job(_answers(), name="codequal-db-dump-test", path=path, image=POSTGRES)
    result = run_job_container(job, database_network, volume)
    assert result.returncode == 0, result.stdout + result.stderr
    report = next(m for line in result.stdout.splitlines() if (m := _DUMP_REPORT.match(line)))
    assert report.group(1) == path and int(report.group(2)) > 0
    return job, report.group(3)


def _restore(network: str, volume: str, path: str, sha256: str) -> subprocess.CompletedProcess[str]:
    job = restore_job(
        _answers(), name="codequal-db-restore-test", path=path, sha256=sha256, image=POSTGRES
    )
    return run_job_container(job, network, volume)


def test_a_dump_restores_into_another_database_equal_in_schema_and_rows(
    network: str, databases: list[Database], claim: str
) -> None:
    source = Database(network, HOST)
    databases.append(source)
    assert source.sql(SEED).startswith("ERROR") is False
    before = source.snapshot()
    assert before["tables"] == "items,settings"

    job, sha256 = _dump(network, claim, "/backups/one.dump")
    assert PASSWORD not in json.dumps(job), "the password is a reference, never a value"

    source.remove()  # the claim outlives the database, as a dump must
    target = Database(network, HOST)
    databases.append(target)
    restored = _restore(network, claim, "/backups/one.dump", sha256)

    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "codequal-restore: committed" in restored.stdout
    assert target.snapshot() == before


def test_a_migrated_database_comes_back_exactly_as_it_was_dumped(
    network: str, databases: list[Database], claim: str
) -> None:
    database = Database(network, HOST)
    databases.append(database)
    database.sql(SEED)
    before = database.snapshot()
    _job, sha256 = _dump(network, claim, "/backups/pre-upgrade.dump")
    database.sql(MIGRATION)
    migrated = database.snapshot()
    assert migrated["tables"] == "items,reviews,settings" and migrated != before

    restored = _restore(network, claim, "/backups/pre-upgrade.dump", sha256)

    assert restored.returncode == 0, restored.stdout + restored.stderr
    after = database.snapshot()
    assert after == before, "schema, rows and sequence as before the migration"
    assert "reviews" not in after["tables"], "a table the newer migration made is gone"


def test_a_dump_that_does_not_match_its_checksum_is_refused_and_nothing_changes(
    network: str, databases: list[Database], claim: str
) -> None:
    database = Database(network, HOST)
    databases.append(database)
    database.sql(SEED)
    _job, sha256 = _dump(network, claim, "/backups/x.dump")
    database.sql(MIGRATION)
    migrated = database.snapshot()
    docker("run", "--rm", "-v", f"{claim}:/backups", "--entrypoint", "sh", POSTGRES, "-c",
           "printf garbage >> /backups/x.dump")  # fmt: skip

    restored = _restore(network, claim, "/backups/x.dump", sha256)

    assert restored.returncode == 3
    assert "does not match its SHA-256" in restored.stderr
    assert database.snapshot() == migrated


def test_a_dump_pg_restore_cannot_read_changes_nothing(
    network: str, databases: list[Database], claim: str
) -> None:
    database = Database(network, HOST)
    databases.append(database)
    database.sql(SEED)
    database.sql(MIGRATION)
    migrated = database.snapshot()
    # A file that matches its recorded SHA-256 but is not a whole dump (cut short when
    # written, say): the transaction is never committed.
    docker("run", "--rm", "-u", "70:70", "-v", f"{claim}:/backups", "--entrypoint", "sh",
           POSTGRES, "-c", "printf 'PGDMP not really' > /backups/cut.dump")  # fmt: skip
    sha256 = docker(
        "run", "--rm", "-v", f"{claim}:/backups", "--entrypoint", "sha256sum", POSTGRES,
        "/backups/cut.dump",
    ).stdout.split()[0]  # fmt: skip

    restored = _restore(network, claim, "/backups/cut.dump", sha256)

    assert restored.returncode != 0, restored.stdout
    assert "committed" not in restored.stdout
    assert database.snapshot() == migrated


def test_the_jobs_claim_and_policies_pass_the_official_schemas(tmp_path: Path) -> None:
    answers = _answers()
    objects = [
        backup_claim(answers),
        *backup_network_policies(answers),
        dump_job(answers, name="codequal-db-dump-1", path="/backups/a.dump", image=POSTGRES),
        restore_job(
            answers, name="codequal-db-restore-1", path="/backups/a.dump", sha256="0" * 64,
            image=POSTGRES,
        ),
    ]  # fmt: skip
    paths = []
    for index, obj in enumerate(objects):
        path = tmp_path / f"{index}-{obj['kind'].lower()}.json"
        path.write_text(json.dumps(obj))
        paths.append(str(path))
    validator = Path(sys.executable).parent / "kubernetes-validate"
    for version in KUBERNETES_VERSIONS:
        result = subprocess.run(
            [str(validator), "--strict", "-k", version, *paths],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_a_claim_with_less_than_twice_the_last_dump_free_is_refused_before_dumping(
    network: str, databases: list[Database], claim: str
) -> None:
    database = Database(network, HOST)
    databases.append(database)
    database.sql(SEED)
    job = dump_job(
        _answers(), name="codequal-db-dump-full", path="/backups/full.dump", image=POSTGRES,
        min_free=10**18,
    )  # fmt: skip

    result = run_job_container(job, network, claim)

    assert result.returncode == 4
    assert "bytes free; the dump needs at least 1000000000000000000 (twice" in result.stderr
    listing = docker("run", "--rm", "-v", f"{claim}:/backups", "--entrypoint", "ls", POSTGRES,
                     "-A", "/backups")  # fmt: skip
    assert listing.stdout.strip() == "", "nothing was written"


def test_the_rollback_check_job_accepts_a_whole_dump_and_refuses_a_damaged_one(
    network: str, databases: list[Database], claim: str
) -> None:
    from installer.targets.kubernetes.lifecycle import VERIFY_SCRIPT, database_job

    database = Database(network, HOST)
    databases.append(database)
    database.sql(SEED)
    _job, sha256 = _dump(network, claim, "/backups/v.dump")

    def check() -> subprocess.CompletedProcess[str]:
        job = database_job(
            _answers(), name="codequal-db-verify-test", script=VERIFY_SCRIPT,
            env={"DUMP_FILE": "/backups/v.dump", "DUMP_SHA256": sha256}, image=POSTGRES,
        )  # fmt: skip
        return run_job_container(job, network, claim)

    good = check()
    assert good.returncode == 0, good.stderr
    assert "is whole and readable" in good.stdout
    docker("run", "--rm", "-v", f"{claim}:/backups", "--entrypoint", "sh", POSTGRES, "-c",
           "truncate -s 100 /backups/v.dump")  # fmt: skip
    damaged = check()
    assert damaged.returncode == 4
    assert "does not match its SHA-256" in damaged.stderr
