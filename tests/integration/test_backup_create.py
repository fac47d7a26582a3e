"""``backup create``, ``verify --quick``, ``list`` and ``prune`` on the real Docker Engine.

A production install (PostgreSQL container, nginx, volumes) and a development install
(SQLite) of the test release are backed up; the archive is decrypted with the stock
``age -d`` and read with plain ``tar``; the manifest's table counts are compared with
the database; a flipped byte, a one-byte truncation and a wrong identity are refused with
exit 4 naming the member or the key; secrets never appear in the ciphertext, the events
or the logs (the ``install`` fixture scans every transcript and log for them).
"""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
import zstandard

from installer.runner import RunLock
from tests.integration.apply_support import ApplyRun, Install, parse_events
from tests.integration.test_apply_install import managed_postgres  # noqa: F401 - a fixture

pytestmark = pytest.mark.integration

API_KEY = "sk-ant-backup-test-0123456789abcdef"
DB_PASSWORD = "db-Backup-Pass-2468-secret"


def _keygen(install: Install, name: str = "backup.key") -> tuple[Path, str]:
    identity = install.root / name
    run = install.run("backup", "keygen", "--out", str(identity))
    assert run.exit_code == 0, run.describe()
    return identity, run.stdout.strip()


def _create(install: Install, answers: Path, *args: str, secrets: Path | None = None) -> ApplyRun:
    extra = ["--secrets", str(secrets)] if secrets else []
    return install.run("backup", "create", "--answers", str(answers), "--json", *extra, *args)


def _plaintext(archive: Path, identity: Path) -> bytes:
    return subprocess.run(
        ["age", "-d", "-i", str(identity), str(archive)], capture_output=True, check=True
    ).stdout


def _members(plain: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r:") as tar:
        out = {}
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            assert handle is not None
            out[member.name] = handle.read()
        names = tar.getnames()
    assert names[0] == "manifest.json"
    return out


def _verify(install: Install, archive: Path, identity: Path) -> ApplyRun:
    return install.run(
        "backup", "verify", str(archive), "--identity", str(identity), "--quick", "--json"
    )


def _states(install: Install) -> dict[str, str]:
    return {
        c.labels["com.docker.compose.service"]: c.attrs["State"]["Status"]
        for c in install.containers()
        if c.labels.get("com.docker.compose.oneoff") != "True"
    }


def test_production_backup_of_postgres_and_volumes(install: Install) -> None:
    from tests.integration.test_backup_restore import Leftovers

    left = Leftovers(install.docker)
    answers = install.answers("production")
    secrets = install.secrets_file(anthropic_api_key=API_KEY, database_password=DB_PASSWORD)
    run = install.apply(answers, secrets=secrets)
    assert run.exit_code == 0, run.describe()
    install.psql(
        "CREATE TABLE probe (id serial PRIMARY KEY, body text); "
        "INSERT INTO probe (body) SELECT md5(i::text) FROM generate_series(1, 5000) AS i"
    )
    identity, recipient = _keygen(install)
    other, _ = _keygen(install, "other.key")

    run = _create(install, answers, "--recipient", recipient, secrets=secrets)
    assert run.exit_code == 0, run.describe()
    assert [e["step"] for e in run.of_type("step.started")] == [
        "prepare", "snapshot", "database", "files", "archive",
    ]  # fmt: skip
    final = run.last
    assert final["type"] == "run.finished" and final["exit_code"] == 0
    archive = Path(final["data"]["archive"])
    assert archive.parent == install.install_dir / "backups"
    assert archive.name.startswith(install.project + "-") and archive.name.endswith(
        "-1.0.0-test.cqbackup"
    )
    assert 0 < final["data"]["pause_seconds"] < 30
    assert any(e.get("unit") == "bytes" for e in run.of_type("step.progress"))
    # everything is running again, nothing paused, no helper left behind
    assert set(_states(install).values()) == {"running"}
    assert left.new() == []
    assert not (install.state / "backup-paused.json").exists()
    assert not list(archive.parent.glob(".*.partial"))

    # stock age decrypts it; the plaintext is a tar whose first member is the manifest
    data = archive.read_bytes()
    assert data.startswith(b"age-encryption.org/v1\n")
    for secret in install.secret_values():
        assert secret.encode() not in data
    members = _members(_plaintext(archive, identity))
    manifest = json.loads(members["manifest.json"])
    assert manifest["format"] == "codequal-backup/1"
    assert manifest["release"] == "1.0.0-test" and manifest["target"] == "production"
    assert manifest["schema_version"] == "1"
    assert manifest["database"]["engine"] == "postgres"
    assert manifest["database"]["method"] == "pg_dump -Fc"
    assert manifest["database"]["tables"]["public.probe"]["rows"] == 5000
    assert manifest["consistency"]["pause_seconds"] == final["data"]["pause_seconds"]
    assert "database_password" not in json.dumps(manifest["answers"])
    names = [m["name"] for m in manifest["members"]]
    assert "database/postgres.pgdump" in names
    assert {"volumes/codequal_data.tar.zst", "volumes/deepwiki_data.tar.zst"} <= set(names)
    assert not any("postgres_data" in n for n in names)  # the dump covers it
    assert {"config.tar.zst", "state.tar.zst"} <= set(names)
    assert members["database/postgres.pgdump"].startswith(b"PGDMP")
    import hashlib

    for member in manifest["members"]:
        body = members[member["name"]]
        assert len(body) == member["size"]
        assert hashlib.sha256(body).hexdigest() == member["sha256"]
    state = zstandard.ZstdDecompressor().decompress(
        members["state.tar.zst"], max_output_size=64 << 20
    )
    with tarfile.open(fileobj=io.BytesIO(state)) as tar:
        state_names = set(tar.getnames())
    wanted = {"./result.json", "./journal.json"}
    wanted |= {f"./{p.name}" for p in install.state.glob("generated-secrets.json")}
    wanted |= {f"./{p.name}" for p in install.state.glob("tls")}
    assert wanted <= state_names, state_names
    tops = {n.split("/")[1] for n in state_names if n != "."}
    assert not tops & {"logs", "apply.lock", "previous", "backups"}, tops
    # The table statistics are the ones the shared function computes on the live database.
    checksum = install.psql(
        "SELECT coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0) "
        "FROM public.probe AS t"
    )
    assert manifest["database"]["tables"]["public.probe"]["checksum"] == checksum

    # verify --quick: exit 0 and a record beside the archive
    run = _verify(install, archive, identity)
    assert run.exit_code == 0, run.describe()
    assert (archive.parent / (archive.name + ".verified.json")).is_file()

    # damage: a flipped byte, a one-byte truncation, a wrong identity -> exit 4, named
    scratch = install.root / "damaged"
    scratch.mkdir()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    cases: dict[str, tuple[bytes, Path]] = {
        "flipped": (bytes(flipped), identity),
        "truncated": (data[:-1], identity),
        "wrong-key": (data, other),
    }
    for label, (content, key) in cases.items():
        path = scratch / f"{label}-{archive.name}"
        path.write_bytes(content)
        run = _verify(install, path, key)
        assert run.exit_code == 4, (label, run.describe())
        failed = run.last
        assert failed["type"] == "run.failed" and failed["exit_code"] == 4
        if label == "wrong-key":
            assert "wrong key" in failed["message"]
        else:
            assert failed["data"]["member"] in [*names, "end of archive"], failed
            assert failed["data"]["member"] in failed["message"]
        assert not (scratch / (path.name + ".verified.json")).exists()
    assert sorted(p.name.split("-")[0] for p in scratch.iterdir()) == [
        "flipped", "truncated", "wrong"
    ]  # fmt: skip

    # a run holding the installation's lock keeps backup create out (exit 2)
    lock = RunLock(install.state / "apply.lock")
    lock.acquire()
    try:
        run = _create(install, answers, "--recipient", recipient, secrets=secrets)
    finally:
        lock.release()
    assert run.exit_code == 2, run.describe()
    assert "another apply is running" in run.last["message"]


def test_development_backup_of_sqlite(install: Install) -> None:
    answers = install.answers("development")
    run = install.apply(answers)
    assert run.exit_code == 0, run.describe()
    identity, recipient = _keygen(install)
    answers_with_backup = install.answers(
        "development", backup={"recipients": [recipient], "keep": 2}
    )
    run = _create(install, answers_with_backup)
    assert run.exit_code == 0, run.describe()
    archive = Path(run.last["data"]["archive"])
    members = _members(_plaintext(archive, identity))
    manifest = json.loads(members["manifest.json"])
    assert manifest["database"]["engine"] == "sqlite"
    assert manifest["database"]["method"] == "sqlite backup API"
    copy = install.root / "restored.db"
    copy.write_bytes(
        zstandard.ZstdDecompressor().decompress(
            members["database/sqlite.db.zst"], max_output_size=256 << 20
        )
    )
    connection = sqlite3.connect(copy)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        migrations = connection.execute("SELECT count(*) FROM schema_migrations").fetchone()[0]
    finally:
        connection.close()
    assert manifest["database"]["tables"]["schema_migrations"]["rows"] == migrations
    from installer.backup.tables import sqlite_table_stats

    assert {k: v.model_dump() for k, v in sqlite_table_stats(copy).items()} == manifest["database"][
        "tables"
    ]
    assert set(_states(install).values()) == {"running"}
    volume = zstandard.ZstdDecompressor().decompress(
        members["volumes/codequal_data.tar.zst"], max_output_size=256 << 20
    )
    with tarfile.open(fileobj=io.BytesIO(volume)) as tar:
        in_volume = tar.getnames()
    assert not any(n.startswith("./codequal.db") for n in in_volume), in_volume

    # list and prune: prune --keep 1 keeps the newest verified archive even when newer
    # unverified ones exist
    assert _verify(install, archive, identity).exit_code == 0
    newer = []
    for _ in range(2):
        time.sleep(1.1)  # archive names carry the second
        run = _create(install, answers_with_backup)
        assert run.exit_code == 0, run.describe()
        newer.append(Path(run.last["data"]["archive"]))
    listed = install.run("backup", "list", "--answers", str(answers_with_backup), "--json")
    assert listed.exit_code == 0, listed.describe()
    entries: list[dict[str, Any]] = json.loads(listed.stdout)["archives"]
    assert [e["name"] for e in entries] == [newer[1].name, newer[0].name, archive.name]
    assert [e["verified"] for e in entries] == [False, False, True]
    assert all(e["release"] == "1.0.0-test" and e["size"] > 0 for e in entries)

    dry = install.run(
        "backup", "prune", "--answers", str(answers_with_backup), "--keep", "1", "--dry-run"
    )
    assert dry.exit_code == 0, dry.describe()
    assert f"would delete {newer[0]}" in dry.stdout
    assert newer[0].exists()
    pruned = install.run("backup", "prune", "--answers", str(answers_with_backup), "--keep", "1")
    assert pruned.exit_code == 0, pruned.describe()
    assert f"deleted {newer[0]}" in pruned.stdout
    assert "newest verified" in pruned.stdout
    assert not newer[0].exists() and newer[1].exists() and archive.exists()
    assert (archive.parent / (archive.name + ".verified.json")).exists()
    # backup.keep (2) is the default
    kept = install.run("backup", "prune", "--answers", str(answers_with_backup), "--json")
    assert json.loads(kept.stdout)["keep"] == 2 and json.loads(kept.stdout)["deleted"] == []
    assert parse_events(run.stdout)[-1]["type"] == "run.finished"


def _create_until_paused(install: Install, answers: Path, recipient: str, sig: int) -> ApplyRun:
    """Run ``backup create`` and send ``sig`` once the application is paused."""
    process = subprocess.Popen(
        install.command(
            "backup", "create", "--answers", str(answers), "--recipient", recipient, "--json"
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=install.environment(),
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "paused 2 application containers" in line:
            process.send_signal(sig)
            break
    rest, errors = process.communicate(timeout=120)
    stdout = "".join(lines) + rest
    install.transcripts += [stdout, errors]
    return ApplyRun(process.returncode, stdout, errors, parse_events(stdout))


def test_interrupted_backup_unpauses_and_leaves_nothing(install: Install) -> None:
    """Ctrl-C while the application is paused: unpaused at once, no archive, exit 130.
    SIGKILL there: the next backup unpauses what the killed one left paused, removes its
    leftovers, and completes."""
    import signal

    answers = install.answers("development")
    run = install.apply(answers)
    assert run.exit_code == 0, run.describe()
    codequal = install.containers_by_service()["codequal"][0]
    # Enough data in a volume that the copy takes a while.
    code, output = codequal.exec_run(
        ["sh", "-c", "head -c 300000000 /dev/urandom > /app/data/bulk.bin"]
    )
    assert code == 0, output
    _, recipient = _keygen(install)
    backups = install.install_dir / "backups"

    run = _create_until_paused(install, answers, recipient, signal.SIGINT)
    assert run.exit_code == 130, run.describe()
    assert run.last["type"] == "run.failed" and run.last["exit_code"] == 130
    assert any("unpaused the application" in e["message"] for e in run.events)
    assert set(_states(install).values()) == {"running"}
    assert not list(backups.glob("*.cqbackup")) and not list(backups.glob(".*"))
    assert not (install.state / "backup-paused.json").exists()
    assert not (install.state / "apply.lock").exists()

    run = _create_until_paused(install, answers, recipient, signal.SIGKILL)
    assert run.exit_code == -signal.SIGKILL
    assert "paused" in set(_states(install).values())
    assert (install.state / "backup-paused.json").exists()
    assert list(backups.glob(".*.partial"))  # the killed run's staging

    run = _create(install, answers, "--recipient", recipient)
    assert run.exit_code == 0, run.describe()
    messages = [e["message"] for e in run.events]
    assert any("left by a killed backup" in m for m in messages), messages
    assert any("left by an interrupted backup" in m for m in messages), messages
    assert set(_states(install).values()) == {"running"}
    assert [p.name for p in backups.iterdir()] == [Path(run.last["data"]["archive"]).name]


def test_managed_postgres_is_dumped_over_the_network(
    install: Install,
    managed_postgres: tuple[str, int, str],  # noqa: F811 - the fixture
) -> None:
    host, port, password = managed_postgres
    answers = install.answers(
        "production",
        database={"kind": "postgres", "managed": True, "host": host, "port": port},
    )
    secrets = install.secrets_file(database_password=password)
    run = install.apply(answers, secrets=secrets)
    assert run.exit_code == 0, run.describe()
    managed = install.docker.containers.get(f"managed-pg-{install.project}")
    code, output = managed.exec_run(
        ["psql", "-U", "codequal", "-d", "codequal", "-tAc",
         "CREATE TABLE probe AS SELECT i AS id FROM generate_series(1, 321) AS i"]
    )  # fmt: skip
    assert code == 0, output
    identity, recipient = _keygen(install)
    run = _create(install, answers, "--recipient", recipient, secrets=secrets)
    assert run.exit_code == 0, run.describe()
    members = _members(_plaintext(Path(run.last["data"]["archive"]), identity))
    manifest = json.loads(members["manifest.json"])
    assert manifest["database"]["managed"] is True
    assert manifest["database"]["tables"]["public.probe"]["rows"] == 321
    assert members["database/postgres.pgdump"].startswith(b"PGDMP")
    assert password.encode() not in Path(run.last["data"]["archive"]).read_bytes()


LOAD_SCRIPT = r"""
import os, time, psycopg2
connection = psycopg2.connect(os.environ["DATABASE_URL"])
cursor = connection.cursor()
cursor.execute("CREATE TABLE IF NOT EXISTS load_probe (id integer PRIMARY KEY)")
connection.commit()
os.makedirs("/app/data/load", exist_ok=True)
deadline = time.monotonic() + 40
i = 0
while time.monotonic() < deadline:
    i += 1
    # The file first (fsynced), then the row: every committed row has its file.
    with open(f"/app/data/load/{i}", "w") as handle:
        handle.write(str(i))
        handle.flush()
        os.fsync(handle.fileno())
    cursor.execute("INSERT INTO load_probe (id) VALUES (%s)", (i,))
    connection.commit()
    time.sleep(0.005)
"""


def test_dump_and_volumes_describe_the_same_moment_under_load(install: Install) -> None:
    """A writer in the application makes a file, then commits its row, about 150 times a
    second during the backup. The archive's rows are exactly the files' prefix: every row
    has its file, and at most the one in flight has a file without a row."""
    answers = install.answers("production")
    secrets = install.secrets_file(database_password=DB_PASSWORD)
    run = install.apply(answers, secrets=secrets)
    assert run.exit_code == 0, run.describe()
    codequal = install.containers_by_service()["codequal"][0]
    codequal.exec_run(["python3", "-c", LOAD_SCRIPT], detach=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        code, output = codequal.exec_run(["sh", "-c", "ls /app/data/load 2>/dev/null | wc -l"])
        if code == 0 and int(output.decode().strip() or 0) > 200:
            break
        time.sleep(0.5)
    identity, recipient = _keygen(install)
    run = _create(install, answers, "--recipient", recipient, secrets=secrets)
    assert run.exit_code == 0, run.describe()
    members = _members(_plaintext(Path(run.last["data"]["archive"]), identity))
    manifest = json.loads(members["manifest.json"])
    rows = manifest["database"]["tables"]["public.load_probe"]["rows"]
    volume = zstandard.ZstdDecompressor().decompress(
        members["volumes/codequal_data.tar.zst"], max_output_size=256 << 20
    )
    with tarfile.open(fileobj=io.BytesIO(volume)) as tar:
        files = {
            int(name.rsplit("/", 1)[1])
            for name in tar.getnames()
            if name.startswith("./load/") and name.rsplit("/", 1)[1].isdigit()
        }
    assert rows > 200
    assert set(range(1, rows + 1)) <= files, sorted(set(range(1, rows + 1)) - files)[:10]
    assert len(files) <= rows + 1, (rows, len(files))
    # and the writer kept going after the backup: nothing was left paused
    time.sleep(1)
    assert int(install.psql("SELECT count(*) FROM load_probe")) > rows


def test_the_application_is_healthy_again_when_the_backup_ends(install: Install) -> None:
    """The Engine calls a paused and unpaused container "unhealthy" until its next probe,
    though none failed; `status` (exit 3 then) and an `upgrade` (refused as unhealthy) right
    after a backup would read that. The backup ends once a probe has run again."""
    answers = install.answers("development")
    run = install.apply(answers)
    assert run.exit_code == 0, run.describe()
    _, recipient = _keygen(install)
    for _ in range(3):
        run = _create(install, answers, "--recipient", recipient)
        assert run.exit_code == 0, run.describe()
        status = install.run("status", "--install-dir", str(install.install_dir), "--json")
        assert status.exit_code == 0, status.describe()
        shown = json.loads(status.stdout)
        assert shown["healthy"] is True
        assert {s["health"] for s in shown["services"]} == {"healthy"}, shown["services"]
