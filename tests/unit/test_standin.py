"""The test stand-in service (tests/images/standin/standin.py), run on this host with SQLite."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import TESTS_DIR

STANDIN = TESTS_DIR / "images" / "standin" / "standin.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    build = tmp_path / "build.json"
    if not build.exists():
        build.write_text(json.dumps({"version": "9.9.9-unit", "healthy": True}))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATABASE_URL_FILE")}
    env.update(STANDIN_BUILD_FILE=str(build), STANDIN_ITEMS_DIR=str(tmp_path / "items"))
    env.update(extra)
    return env


def standin(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(STANDIN), *args],
        env=_environment(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - http only
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


class Server:
    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [sys.executable, str(STANDIN), "--port", str(self.port), "--service", "codequal"],
            env=_environment(tmp_path, **env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("the stand-in did not start listening")

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        return get(f"http://127.0.0.1:{self.port}{path}")

    def post(self, path: str, body: bytes) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=body, method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - http only
            return int(response.status)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/standin.db"


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    running = Server(tmp_path, DATABASE_URL=database_url)
    yield running
    running.stop()


def test_migrate_creates_the_schema_once_and_records_each_version(
    tmp_path: Path, database_url: str
) -> None:
    first = standin(tmp_path, "migrate", DATABASE_URL=database_url)
    again = standin(tmp_path, "migrate", DATABASE_URL=database_url)
    upgrade = standin(tmp_path, "migrate", "--schema-version", "2", DATABASE_URL=database_url)
    assert (first.returncode, again.returncode, upgrade.returncode) == (0, 0, 0)
    assert "migrated to schema version 1" in first.stdout
    assert "already at schema version 1" in again.stdout
    assert "migrated to schema version 2" in upgrade.stdout


def test_migrate_without_a_database_url_is_a_usage_error(tmp_path: Path) -> None:
    result = standin(tmp_path, "migrate")
    assert result.returncode == 2
    assert "DATABASE_URL is not set" in result.stderr


def test_migrate_gives_up_on_an_unreachable_database_after_its_wait(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/no/such/dir/db.sqlite"
    result = standin(tmp_path, "migrate", "--wait", "1", DATABASE_URL=url)
    assert result.returncode == 1
    assert "database unreachable" in result.stderr


def test_health_reports_an_unmigrated_then_a_migrated_database(
    server: Server, tmp_path: Path, database_url: str
) -> None:
    status, body = server.get("/health")
    assert status == 200
    assert body["service"] == "codequal"
    assert body["version"] == "9.9.9-unit"
    assert body["database"]["reachable"] is True
    assert body["database"]["migrated"] is False

    assert standin(tmp_path, "migrate", DATABASE_URL=database_url).returncode == 0
    status, body = server.get("/health")
    assert (status, body["database"]["migrated"], body["database"]["schema_version"]) == (
        200,
        True,
        "1",
    )


@pytest.mark.parametrize(
    "path", ["/health", "/-/healthy", "/api/health", "/ready", "/deepwiki/health"]
)
def test_every_health_path_answers(server: Server, path: str) -> None:
    status, body = server.get(path)
    assert (status, body["status"]) == (200, "ok")


def test_items_survive_a_restart_of_the_service(
    tmp_path: Path, database_url: str, server: Server
) -> None:
    assert server.get("/items")[0] == 503  # no table before the migration
    assert standin(tmp_path, "migrate", DATABASE_URL=database_url).returncode == 0
    assert server.post("/items", b"first") == 201
    server.stop()
    restarted = Server(tmp_path, DATABASE_URL=database_url)
    try:
        assert restarted.get("/items") == (200, {"items": [{"id": 1, "body": "first"}]})
    finally:
        restarted.stop()


def test_the_unhealthy_build_never_answers_200(tmp_path: Path) -> None:
    (tmp_path / "build.json").write_text(json.dumps({"version": "2.0.0-broken", "healthy": False}))
    running = Server(tmp_path)
    try:
        status, body = running.get("/health")
        assert (status, body["status"], body["version"]) == (503, "unhealthy", "2.0.0-broken")
        assert standin(tmp_path, "check", f"http://127.0.0.1:{running.port}/health").returncode == 1
    finally:
        running.stop()


def test_health_can_require_a_migrated_database(tmp_path: Path, database_url: str) -> None:
    running = Server(tmp_path, DATABASE_URL=database_url, STANDIN_HEALTH_REQUIRES="migrated")
    try:
        assert running.get("/health")[0] == 503
        assert standin(tmp_path, "migrate", DATABASE_URL=database_url).returncode == 0
        assert running.get("/health")[0] == 200
        assert standin(tmp_path, "check", f"http://127.0.0.1:{running.port}/health").returncode == 0
    finally:
        running.stop()


def test_a_database_url_file_is_read_like_the_variable(tmp_path: Path, database_url: str) -> None:
    url_file = tmp_path / "database-url"
    url_file.write_text(database_url + "\n")
    result = standin(tmp_path, "migrate", DATABASE_URL_FILE=str(url_file))
    assert result.returncode == 0, result.stderr


def test_an_unknown_database_scheme_is_reported_not_raised(tmp_path: Path) -> None:
    running = Server(tmp_path, DATABASE_URL="mysql://u:p@h/db")
    try:
        status, body = running.get("/health")
        assert status == 200
        assert body["database"]["reachable"] is False
        assert "unsupported DATABASE_URL scheme" in body["database"]["error"]
    finally:
        running.stop()


def test_any_other_command_is_executed_as_given(tmp_path: Path) -> None:
    result = standin(tmp_path, "echo", "from the shell")
    assert (result.returncode, result.stdout.strip()) == (0, "from the shell")


@pytest.mark.parametrize(
    "form", ["file:{path}", "file://{path}", "file:{path}?connection_limit=1", "sqlite:///{path}"]
)
def test_every_sqlite_url_form_names_the_same_file(tmp_path: Path, form: str) -> None:
    database = tmp_path / "codequal.db"
    result = standin(tmp_path, "migrate", DATABASE_URL=form.format(path=database))
    assert result.returncode == 0, result.stderr
    assert database.is_file()


def _migrated(tmp_path: Path, database_url: str) -> None:
    assert standin(tmp_path, "migrate", DATABASE_URL=database_url).returncode == 0


def test_each_posted_item_is_a_row_and_a_file_with_the_body(
    tmp_path: Path, database_url: str, server: Server
) -> None:
    _migrated(tmp_path, database_url)
    for body in (b"first", "zweite \u00fcbung".encode(), b""):
        assert server.post("/items", body) == 201
    status, listed = server.get("/items")
    assert status == 200
    for item in listed["items"]:
        assert (tmp_path / "items" / str(item["id"])).read_bytes() == item["body"].encode()
    assert sorted(p.name for p in (tmp_path / "items").iterdir()) == ["1", "2", "3"]
    status, report = server.get("/items/check")
    assert status == 200
    assert report["ok"] is True
    assert (report["rows"], report["files"], report["missing_count"]) == (3, 3, 0)


def test_the_check_names_rows_whose_file_is_missing_or_differs(
    tmp_path: Path, database_url: str, server: Server
) -> None:
    _migrated(tmp_path, database_url)
    for body in (b"a", b"b", b"c"):
        assert server.post("/items", body) == 201
    (tmp_path / "items" / "2").unlink()
    (tmp_path / "items" / "3").write_bytes(b"not c")
    status, report = server.get("/deepwiki/items/check")
    assert status == 200
    assert report["ok"] is False
    assert (report["missing"], report["mismatched"]) == ([2], [3])
    assert (report["rows"], report["files"]) == (3, 2)

    command = standin(tmp_path, "items-check", DATABASE_URL=database_url)
    assert command.returncode == 1
    assert json.loads(command.stdout)["missing"] == [2]


def test_a_row_is_not_kept_when_its_file_cannot_be_written(
    tmp_path: Path, database_url: str
) -> None:
    _migrated(tmp_path, database_url)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the items directory should be")
    running = Server(tmp_path, DATABASE_URL=database_url, STANDIN_ITEMS_DIR=str(blocked))
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            running.post("/items", b"lost")
        assert refused.value.code == 503
        assert running.get("/items") == (200, {"items": []})
    finally:
        running.stop()


def test_seed_writes_rows_and_files_that_check_clean(tmp_path: Path, database_url: str) -> None:
    _migrated(tmp_path, database_url)
    result = standin(
        tmp_path, "seed", "--count", "25", "--size", "301", "--batch", "10",
        DATABASE_URL=database_url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    files = sorted((tmp_path / "items").iterdir(), key=lambda p: int(p.name))
    assert [p.name for p in files] == [str(i) for i in range(1, 26)]
    assert {len(p.read_bytes()) for p in files} == {301}
    assert len({p.read_bytes() for p in files}) == 25
    check = standin(tmp_path, "items-check", DATABASE_URL=database_url)
    assert check.returncode == 0, check.stdout
    assert json.loads(check.stdout)["rows"] == 25
