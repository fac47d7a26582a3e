"""Backups that are known to restore, against the real Docker Engine and the test release.

A production install (PostgreSQL, volumes) is backed up under a write load of about 200
rows a second (each request a row AND a file, tests/images/standin), the archive is
verified in a sandbox (and damaged copies are refused), the host is wiped (install
directory, containers and volumes; only the archive and the identity kept), and
``restore`` brings it back: healthy, every table's rows and checksum equal to the
manifest's, every row's file present. The restore is SIGKILLed in its volume step and in
its database step first; the reruns complete with the same data. Restoring over the
running install names its safety backup. An archive from a newer release, or a
PostgreSQL archive with SQLite answers, is refused before anything changes. The same
round trip for development with SQLite. No secret appears in the archive's bytes nor in
any log, event or result file.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from installer.backup.tables import table_stats
from tests.integration.apply_support import ApplyRun, Install, parse_events

pytestmark = pytest.mark.integration

API_KEY = "sk-ant-test-backup-0123456789abcdef"


# -- helpers ------------------------------------------------------------------------------


@pytest.fixture
def install(install: Install, tmp_path: Path, docker_engine: Any) -> Install:
    """The installation, run from a private tag of this tree's stand-in image.

    The stand-in's items (a row and a file per request) are new; other checkouts on the same
    Engine may build ``codequal-test/standin:1`` from an older stand-in at any moment, so
    these tests pin the image they built under a tag of their own, in a copy of the test
    release.
    """
    from tests.support import TEST_RELEASES_DIR
    from tests.support.images import STANDIN_1, STANDIN_2, ensure_test_images

    built = ensure_test_images().references
    pins = {}
    for reference in (STANDIN_1, STANDIN_2):
        image = docker_engine.images.get(built[reference])
        pins[reference] = f"codequal-test/standin-items:{image.id.split(':')[1][:12]}"
        image.tag(pins[reference])
    releases = tmp_path / "releases"
    releases.mkdir()
    for release in TEST_RELEASES_DIR.glob("*.yaml"):
        text = release.read_text()
        for reference, private in pins.items():
            text = text.replace(reference, private)
        (releases / release.name).write_text(text)
    install.env["CODEQUAL_RELEASES_DIR"] = str(releases)
    return install


def keygen(install: Install) -> tuple[Path, str]:
    identity = install.root / "backup.key"
    run = install.run("backup", "keygen", "--out", str(identity))
    assert run.exit_code == 0, run.describe()
    recipient = next(w for w in (run.stdout + run.stderr).split() if w.startswith("age1"))
    return identity, recipient


def create(install: Install, answers: Path, secrets: Path | None, to: Path) -> Path:
    args = ["backup", "create", "--answers", str(answers), "--to", str(to)]
    if secrets is not None:
        args += ["--secrets", str(secrets)]
    before = set(to.glob("*.cqbackup")) if to.is_dir() else set()
    run = install.run(*args)
    assert run.exit_code == 0, run.describe()
    made = sorted(set(to.glob("*.cqbackup")) - before)
    assert len(made) == 1, (made, run.describe())
    return made[0]


def manifest_of(archive: Path, identity: Path) -> dict[str, Any]:
    from installer.backup.archive import read_manifest

    return read_manifest(archive, identity).model_dump(mode="json")


def restore_args(archive: Path, answers: Path, identity: Path, secrets: Path | None) -> list[str]:
    args = ["restore", str(archive), "--answers", str(answers), "--identity", str(identity)]
    args += ["--yes", "--json"]
    if secrets is not None:
        args += ["--secrets", str(secrets)]
    return args


def run_until(
    install: Install,
    args: list[str],
    stop_at: Callable[[dict[str, Any]], bool],
    send: int = signal.SIGKILL,
) -> ApplyRun:
    """Run the installer with ``args`` and send it ``send`` at the first event ``stop_at``
    likes (after SIGKILL nothing more is read; after another signal, the rest of its run)."""
    process = subprocess.Popen(
        install.command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=install.environment(),
        cwd=install.root,
    )
    assert process.stdout is not None
    lines: list[str] = []
    killed = False
    for line in process.stdout:
        lines.append(line)
        with contextlib.suppress(ValueError):
            if not killed and stop_at(json.loads(line)):
                process.send_signal(send)
                killed = True
                if send == signal.SIGKILL:
                    break
    rest, errors = process.communicate(timeout=300)
    stdout = "".join(lines) + (rest or "")
    install.transcripts += [stdout, errors]
    assert killed, f"the run ended before the chosen event:\n{stdout}\n{errors}"
    return ApplyRun(process.returncode, stdout, errors, parse_events(stdout))


def live_stats(install: Install) -> dict[str, dict[str, Any]]:
    container = install.containers_by_service()["postgres"][0]

    def query(sql: str) -> list[list[str]]:
        code, output = container.exec_run(
            ["psql", "-X", "-q", "-At", "-F", "\t", "-U", "codequal", "-d", "codequal", "-c", sql]
        )
        assert code == 0, output
        return [line.split("\t") for line in output.decode().splitlines() if line.strip()]

    return {name: s.model_dump() for name, s in table_stats(query).items()}


def wipe(install: Install) -> None:
    """The host lost: containers, networks, volumes and the install directory gone."""
    install.teardown()
    shutil.rmtree(install.install_dir)
    assert install.containers() == []
    label = {"label": [f"com.docker.compose.project={install.project}"]}
    assert install.docker.volumes.list(filters=label) == []


def leftovers(docker: Any, label: str) -> list[str]:
    """Containers, networks and volumes carrying ``label`` (a key or key=value)."""
    filters = {"label": [label]}
    found = [f"container {c.name}" for c in docker.containers.list(all=True, filters=filters)]
    found += [f"network {n.name}" for n in docker.networks.list(filters=filters)]
    found += [f"volume {v.name}" for v in docker.volumes.list(filters=filters)]
    return found


class Leftovers:
    """What carries the sandbox's or the volume helpers' label and was not there when the
    test began: the Engine is shared, and a run killed elsewhere may have left some."""

    LABELS = ("org.codequal.verify", "dev.codequal.installer.helper")

    def __init__(self, docker: Any) -> None:
        self.docker = docker
        self.before = {label: set(leftovers(docker, label)) for label in self.LABELS}

    def new(self) -> list[str]:
        return sorted(
            found
            for label in self.LABELS
            for found in set(leftovers(self.docker, label)) - self.before[label]
        )


class WriteLoad:
    """About ``rate`` POST /items a second, from two threads, straight to the codequal
    container (nginx limits one client to 20 requests a second, as it should)."""

    def __init__(self, install: Install, rate: float = 200.0) -> None:
        container = install.containers_by_service()["codequal"][0]
        networks = container.attrs["NetworkSettings"]["Networks"]
        address = next(n["IPAddress"] for n in networks.values() if n.get("IPAddress"))
        self.url = f"http://{address}:3000/items"
        self.interval = 2.0 / rate
        self.stop = threading.Event()
        self.written = 0
        self.failed = 0
        self.errors: dict[str, int] = {}
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(2)]

    def _post(self, body: str) -> int:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(self.url, data=body.encode(), method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - http
                return int(response.status)
        except urllib.error.HTTPError as e:
            return int(e.code)

    def _run(self, index: int) -> None:
        next_at = time.monotonic()
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                status = self._post(f"load {index}-{n} {time.time()}")
                if status == 201:
                    self.written += 1
                else:
                    self._error(f"HTTP {status}")
            except OSError as e:
                self._error(type(e).__name__)
            next_at += self.interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    def _error(self, what: str) -> None:
        self.failed += 1
        self.errors[what] = self.errors.get(what, 0) + 1

    def __enter__(self) -> WriteLoad:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


def _healthy(install: Install) -> dict[str, str]:
    return {
        c.labels["com.docker.compose.service"]: c.attrs["State"].get("Health", {}).get("Status")
        for c in install.containers()
        if c.labels.get("com.docker.compose.oneoff") != "True"
        and c.attrs["State"]["Status"] == "running"
    }


def _damaged_copies(archive: Path, root: Path) -> Iterator[tuple[str, Path]]:
    data = archive.read_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    path = root / f"flipped-{archive.name}"
    path.write_bytes(bytes(flipped))
    yield "flipped byte", path
    path = root / f"truncated-{archive.name}"
    path.write_bytes(data[:-1])
    yield "one-byte truncation", path


# -- production: PostgreSQL and volumes ---------------------------------------------------


def test_production_round_trip_under_load_with_verify_kills_and_refusals(
    install: Install, tmp_path: Path
) -> None:
    left = Leftovers(install.docker)
    answers = install.answers("production")
    secrets = install.secrets_file(anthropic_api_key=API_KEY)
    run = install.apply(answers, secrets=secrets)
    assert run.exit_code == 0, run.describe()
    identity, recipient = keygen(install)
    answers = install.answers(
        "production", backup={"recipients": [recipient], "directory": str(tmp_path / "backups")}
    )
    keep = tmp_path / "kept"  # what survives the host: the archive and the identity
    keep.mkdir()

    # The backup, taken while about 200 rows a second are written.
    for index in range(50):
        assert install.https_post("/items", f"before {index}")[0] == 201
    with WriteLoad(install) as load:
        time.sleep(2)
        archive = create(install, answers, secrets, tmp_path / "backups")
        time.sleep(1)
    assert load.written > 200, (load.written, load.errors)
    manifest = manifest_of(archive, identity)
    tables = manifest["database"]["tables"]
    assert tables["public.items"]["rows"] >= 50
    assert {v["name"] for v in manifest["volumes"]} >= {"codequal_data"}
    # What the archive holds agrees with itself: one file per row, as the stand-in writes.
    data_volume = next(v for v in manifest["volumes"] if v["name"] == "codequal_data")
    assert data_volume["files"] >= tables["public.items"]["rows"]

    # No secret in the archive's bytes.
    raw = archive.read_bytes()
    for value in install.secret_values():
        assert value.encode() not in raw, "a secret is readable in the archive"

    # verify: a good archive passes, in a sandbox that leaves nothing behind.
    verify = install.run("backup", "verify", str(archive), "--identity", str(identity))
    assert verify.exit_code == 0, verify.describe()
    record = json.loads(Path(f"{archive}.verified.json").read_text())
    assert record["mode"] == "full"
    assert record["rows"] >= tables["public.items"]["rows"]
    assert left.new() == []
    # ... and damaged copies or the wrong key are exit 4, naming what, writing nothing.
    for what, damaged in _damaged_copies(archive, tmp_path):
        bad = install.run("backup", "verify", str(damaged), "--identity", str(identity), "--json")
        assert bad.exit_code == 4, (what, bad.describe())
        assert bad.last["type"] == "run.failed" and bad.last["exit_code"] == 4
        assert bad.last["data"].get("member") or "archive" in bad.last["message"], bad.last
        assert not Path(f"{damaged}.verified.json").exists()
    other = tmp_path / "other.key"
    assert install.run("backup", "keygen", "--out", str(other)).exit_code == 0
    wrong = install.run("backup", "verify", str(archive), "--identity", str(other), "--json")
    assert wrong.exit_code == 4, wrong.describe()
    assert "wrong key" in wrong.last["message"], wrong.last
    assert left.new() == []
    # SIGTERM while the sandbox runs: it is removed all the same.
    stopped = run_until(
        install,
        ["backup", "verify", str(archive), "--identity", str(identity), "--json"],
        lambda e: e.get("step") == "sandbox" and "starting the sandbox" in str(e.get("message")),
        send=signal.SIGTERM,
    )
    assert stopped.exit_code == 130, stopped.describe()
    assert left.new() == []
    assert not list(Path(tempfile.gettempdir()).glob("codequal-verify-*"))

    # Refused before any change: a newer archive than the answers' release, another engine.
    elsewhere = tmp_path / "untouched"
    older = install.answers("production", install_dir=str(elsewhere), release={"version": "0.1.0"})
    refused = install.run(*restore_args(archive, older, identity, secrets))
    assert refused.exit_code == 2, refused.describe()
    assert "newer than the answers' release" in refused.stdout + refused.stderr
    sqlite = install.answers("development", install_dir=str(elsewhere))
    refused = install.run(*restore_args(archive, sqlite, identity, None))
    assert refused.exit_code == 2, refused.describe()
    assert "SQLite" in refused.stdout + refused.stderr
    assert not elsewhere.exists()

    # Restore over the running install: a safety backup first, its name printed.
    over = install.run(*restore_args(archive, answers, identity, secrets))
    assert over.exit_code == 0, over.describe()
    safety = [
        e["message"] for e in over.events if "safety backup of the installation" in e["message"]
    ]
    assert safety, over.describe()
    safety_file = Path(safety[-1].rsplit(": ", 1)[1].strip())
    assert safety_file.is_file() and safety_file.name.endswith(".cqbackup")
    for path in (safety_file, *Path(tmp_path / "backups").glob("*.verified.json")):
        content = path.read_bytes()
        for value in install.secret_values():
            assert value.encode() not in content, f"a secret is readable in {path.name}"
    assert live_stats(install)["public.items"] == tables["public.items"]

    # Keep only the archive and the identity; wipe the host.
    kept_archive = Path(shutil.copy2(archive, keep))
    kept_identity = Path(shutil.copy2(identity, keep))
    wipe(install)

    # SIGKILL in the volume step, then in the database step; the third run completes.
    args = restore_args(kept_archive, answers, kept_identity, secrets)
    killed = run_until(
        install,
        args,
        # After the first volume is back, with the others still to come.
        lambda e: e.get("step") == "restore-volumes" and e.get("type") == "step.progress",
    )
    assert killed.exit_code == -signal.SIGKILL
    killed = run_until(
        install,
        args,
        lambda e: e.get("step") == "restore-database" and "pg_restore of" in str(e.get("message")),
    )
    assert killed.exit_code == -signal.SIGKILL
    final = install.run(*args)
    assert final.exit_code == 0, final.describe()
    started = final.of_type("run.started")
    assert started and "resuming" in started[0]["message"], started

    # Healthy, the data equal to the manifest's, every row's file present.
    assert _healthy(install) == dict.fromkeys(
        ("codequal", "deepwiki", "nginx", "postgres"), "healthy"
    )
    stats = live_stats(install)
    for table, expected in tables.items():
        assert stats[table] == expected, table
    status, check = install.https_get("/items/check")
    assert status == 200 and check["ok"] is True, check
    assert check["rows"] == tables["public.items"]["rows"]
    # The restored installation takes writes again (its volumes belong to its services).
    assert install.https_post("/items", "after the restore")[0] == 201
    status, check = install.https_get("/items/check")
    assert check["ok"] is True and check["rows"] == tables["public.items"]["rows"] + 1
    result = install.result()
    assert result["restored_from"]["archive"] == str(kept_archive)
    # The archived generated passwords were reused: the restored .env has the same.
    assert json.loads((install.state / "generated-secrets.json").read_text())

    # Retention: the newest verified archive is kept even when newer unverified ones exist.
    newer = create(install, answers, secrets, tmp_path / "backups")
    prune = install.run("backup", "prune", "--answers", str(answers), "--keep", "1")
    assert prune.exit_code == 0, prune.describe()
    assert archive.is_file(), "the newest verified archive was pruned"
    assert newer.is_file()


# -- development: SQLite ------------------------------------------------------------------


def test_development_sqlite_round_trip(install: Install, tmp_path: Path) -> None:
    import sqlite3
    import urllib.request

    answers = install.answers("development")
    run = install.apply(answers)
    assert run.exit_code == 0, run.describe()
    identity, recipient = keygen(install)
    answers = install.answers(
        "development", backup={"recipients": [recipient], "directory": str(tmp_path / "b")}
    )

    def post(body: str) -> int:
        request = urllib.request.Request(
            "http://127.0.0.1:3000/items", data=body.encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http
            return int(response.status)

    for index in range(120):
        assert post(f"sqlite item {index}") == 201
    archive = create(install, answers, None, tmp_path / "b")
    manifest = manifest_of(archive, identity)
    assert manifest["database"]["engine"] == "sqlite"
    expected = manifest["database"]["tables"]
    assert expected["items"]["rows"] == 120

    kept = tmp_path / "kept"
    kept.mkdir()
    kept_archive = Path(shutil.copy2(archive, kept))
    wipe(install)
    restored = install.run(*restore_args(kept_archive, answers, identity, None))
    assert restored.exit_code == 0, restored.describe()

    with urllib.request.urlopen("http://127.0.0.1:3000/items/check", timeout=10) as response:
        check = json.load(response)
    assert check["ok"] is True and check["rows"] == 120, check
    # The database file as it is in the volume: sound, and equal to the manifest.
    codequal = install.containers_by_service()["codequal"][0]
    bits, _ = codequal.get_archive("/app/data/codequal.db")
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(b"".join(bits))) as tar:
        member = tar.getmembers()[0]
        handle = tar.extractfile(member)
        assert handle is not None
        (tmp_path / "live.db").write_bytes(handle.read())
    connection = sqlite3.connect(tmp_path / "live.db")
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        connection.close()
    from installer.backup.tables import sqlite_table_stats

    live = {k: v.model_dump() for k, v in sqlite_table_stats(tmp_path / "live.db").items()}
    for table, stats in expected.items():
        assert live[table] == stats, table

    # The same archive restored as the next release: restored, then migrated forward.
    wipe(install)
    newer = install.answers(
        "development",
        release={"version": "2.0.0-test"},
        backup={"recipients": [recipient], "directory": str(tmp_path / "b")},
    )
    forward = install.run(*restore_args(kept_archive, newer, identity, None))
    assert forward.exit_code == 0, forward.describe()
    assert install.result()["release"]["version"] == "2.0.0-test"
    assert install.result()["schema_version"] == "2"
    with urllib.request.urlopen("http://127.0.0.1:3000/health", timeout=10) as response:
        health = json.load(response)
    assert health["version"] == "2.0.0-test"
    assert health["database"]["schema_versions"] == ["1", "2"]
    with urllib.request.urlopen("http://127.0.0.1:3000/items/check", timeout=10) as response:
        check = json.load(response)
    assert check["ok"] is True and check["rows"] == 120, check
