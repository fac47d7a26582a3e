#!/usr/bin/env python3
"""A small stand-in for the CodeQual services in tests (codequal, deepwiki, monitoring).

Standard library only, plus psycopg2 when DATABASE_URL names PostgreSQL.

    standin [serve] [--port N] [--service NAME]
                                         serve HTTP on N (default $PORT, else 3000) as NAME
                                         (default $SERVICE_NAME, else "standin")
    standin migrate [--schema-version V] [--wait SECONDS]
                                         create/update schema_migrations and the items table
    standin check [URL]                  exit 0 when URL (default: own /health) answers 200
    standin version                      print the build's version
    standin seed --count N [--size BYTES] [--batch K]
                                         write N items (rows and files) of BYTES each, straight
                                         to the database and the items directory (bulk data for
                                         benchmarks); the bodies are random hex text
    standin items-check                  print the items check below as JSON; exit 0 when every
                                         row has its file, 1 when not

It is the image's entrypoint: arguments that start with "-" are taken as options of `serve`
(ones it does not know, such as a real service's flags, are logged and ignored); any other
command that is not one of the above is executed as given (`docker run IMAGE sh -c ...`).

The database: DATABASE_URL (or a file named by DATABASE_URL_FILE) as
postgresql://user:password@host:port/name[?sslmode=...], or SQLite as the product writes it,
file:/absolute/path.db (also file:./relative.db, sqlite:////absolute/path.db).

HTTP:
    GET /health, /-/healthy, /api/health, /ready (also under any prefix, e.g. /deepwiki/health)
        200 {"status": "ok", "service": ..., "version": ..., "database": {...}}
        (503 from the "unhealthy" build, or when STANDIN_HEALTH_REQUIRES names a database state
        that does not hold: "database" or "migrated")
    GET /metrics             Prometheus text: process_start_time_seconds, and LLM usage counters
                             that grow with uptime (codequal_llm_tokens_total{provider, kind},
                             codequal_llm_requests_total{provider, outcome}) for the providers in
                             ENABLED_PROVIDERS
    GET .../items            rows of the items table;  POST .../items  stores the request body
                             as a row AND as a file, ``<items dir>/<id>`` holding the body's
                             bytes (written and fsynced before the row is committed, so every
                             committed row has its file)
    GET .../items/check      {"rows", "files", "missing", "mismatched", ...}: the rows whose file
                             is absent or differs from the row's body (first 100 ids of each)
    anything else            200 {"service", "version", "path", "host", "forwarded_proto"}

The items directory: STANDIN_ITEMS_DIR, default /app/data/items (the codequal_data volume in
the test releases, beside the SQLite database file of a development install).

The build facts (version, healthy or not) come from /usr/local/share/standin/build.json, baked
into the image, so a container's environment cannot change them. Outside an image (the unit
tests) STANDIN_BUILD_FILE points at another file, or the defaults apply.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import closing, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BUILD_FILE = "/usr/local/share/standin/build.json"
DEFAULT_ITEMS_DIR = "/app/data/items"
CHECK_LIST_LIMIT = 100
HEALTH_SUFFIXES = ("/health", "/-/healthy", "/api/health", "/ready")
STARTED = time.time()
DEFAULT_SCHEMA_VERSION = "1"


@dataclass(frozen=True)
class Build:
    version: str
    healthy: bool


def load_build() -> Build:
    path = os.environ.get("STANDIN_BUILD_FILE", BUILD_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        data = {}
    return Build(version=str(data.get("version", "0")), healthy=bool(data.get("healthy", True)))


class DatabaseError(Exception):
    """The database named by DATABASE_URL cannot be used."""


class Database:
    """A connection factory for postgresql:// and sqlite:// URLs."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = urllib.parse.urlsplit(url)
        self.scheme = parsed.scheme.split("+", 1)[0]
        if self.scheme in ("postgresql", "postgres"):
            self.kind = "postgres"
        elif self.scheme == "sqlite":
            self.kind = "sqlite"
            # sqlite:////abs/path.db -> /abs/path.db ; sqlite:///rel.db -> rel.db
            self.sqlite_path = url.split("sqlite://", 1)[1].split("?", 1)[0]
            if self.sqlite_path.startswith("/"):
                self.sqlite_path = self.sqlite_path[1:]
        elif self.scheme == "file":
            # The product's SQLite form (Prisma's): file:/abs/path.db, file:./rel.db,
            # file:///abs/path.db, with optional ?parameters.
            self.kind = "sqlite"
            path = url[len("file:") :].split("?", 1)[0]
            self.sqlite_path = "/" + path.lstrip("/") if path.startswith("//") else path
        else:
            raise DatabaseError(f"unsupported DATABASE_URL scheme {parsed.scheme!r}")

    def sql(self, statement: str) -> str:
        """A statement written with ``?`` parameters, in this driver's parameter style."""
        return statement.replace("?", "%s") if self.kind == "postgres" else statement

    def driver_errors(self) -> tuple[type[Exception], ...]:
        """What the driver raises when a query fails (a missing table, a lost connection)."""
        if self.kind == "sqlite":
            return (DatabaseError, sqlite3.Error)
        import psycopg2

        return (DatabaseError, psycopg2.Error)

    def connect(self, timeout: float = 3.0) -> Any:
        if self.kind == "sqlite":
            try:
                connection = sqlite3.connect(self.sqlite_path, timeout=timeout)
                connection.execute("SELECT 1")
                return connection
            except sqlite3.Error as e:
                raise DatabaseError(f"sqlite: {e}") from e
        try:
            import psycopg2
        except ImportError as e:
            raise DatabaseError("psycopg2 is not installed") from e
        try:
            return psycopg2.connect(self.url, connect_timeout=max(1, int(timeout)))
        except psycopg2.Error as e:
            # The message names host and database, never the password.
            raise DatabaseError(f"postgres: {str(e).strip().splitlines()[0]}") from e


def database_from_env() -> Database | None:
    url = os.environ.get("DATABASE_URL", "").strip()
    url_file = os.environ.get("DATABASE_URL_FILE", "").strip()
    if not url and url_file:
        try:
            with open(url_file, encoding="utf-8") as f:
                url = f.read().strip()
        except OSError as e:
            raise DatabaseError(f"cannot read DATABASE_URL_FILE: {e.strerror}") from e
    return Database(url) if url else None


def _table_exists(db: Database, connection: Any, table: str) -> bool:
    cursor = connection.cursor()
    if db.kind == "sqlite":
        cursor.execute("SELECT name FROM sqlite_master WHERE type='table' AND name=?", (table,))
    else:
        cursor.execute("SELECT to_regclass(%s)", (table,))
        row = cursor.fetchone()
        return row is not None and row[0] is not None
    return cursor.fetchone() is not None


def database_state() -> dict[str, Any]:
    try:
        db = database_from_env()
    except DatabaseError as e:
        return {
            "configured": True,
            "reachable": False,
            "migrated": False,
            "schema_version": None,
            "error": str(e),
        }
    if db is None:
        return {"configured": False, "reachable": False, "migrated": False, "schema_version": None}
    state: dict[str, Any] = {
        "configured": True,
        "kind": db.kind,
        "reachable": False,
        "migrated": False,
        "schema_version": None,
    }
    try:
        with closing(db.connect()) as connection:
            state["reachable"] = True
            if _table_exists(db, connection, "schema_migrations"):
                cursor = connection.cursor()
                cursor.execute(
                    "SELECT version FROM schema_migrations ORDER BY applied_at DESC, version DESC"
                )
                versions = [row[0] for row in cursor.fetchall()]
                state["migrated"] = bool(versions)
                state["schema_version"] = versions[0] if versions else None
                state["schema_versions"] = sorted(versions)
    except DatabaseError as e:
        state["error"] = str(e)
    except db.driver_errors() as e:  # a driver error mid-query: report it, keep serving
        state["error"] = f"{type(e).__name__}: {e}"
    return state


def migrate(schema_version: str, wait_seconds: float) -> int:
    try:
        db = database_from_env()
    except DatabaseError as e:
        print(f"standin migrate: {e}", file=sys.stderr)
        return 2
    if db is None:
        print("standin migrate: DATABASE_URL is not set", file=sys.stderr)
        return 2
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            connection = db.connect()
            break
        except DatabaseError as e:
            if time.monotonic() >= deadline:
                print(f"standin migrate: database unreachable: {e}", file=sys.stderr)
                return 1
            time.sleep(0.5)
    with closing(connection):
        cursor = connection.cursor()
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version TEXT PRIMARY KEY,"
            " applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        )
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS items (id SERIAL PRIMARY KEY, body TEXT NOT NULL,"
            " created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"
            if db.kind == "postgres"
            else "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " body TEXT NOT NULL, created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        )
        cursor.execute(
            db.sql("SELECT 1 FROM schema_migrations WHERE version = ?"), (schema_version,)
        )
        already = cursor.fetchone() is not None
        if not already:
            cursor.execute(
                db.sql("INSERT INTO schema_migrations (version) VALUES (?)"), (schema_version,)
            )
        connection.commit()
    word = "already at" if already else "migrated to"
    print(f"standin migrate: {word} schema version {schema_version}", flush=True)
    return 0


def items_dir() -> str:
    return os.environ.get("STANDIN_ITEMS_DIR", "").strip() or DEFAULT_ITEMS_DIR


def write_item_file(directory: str, item_id: int, content: bytes, *, sync: bool = True) -> None:
    """``<directory>/<id>`` holding ``content``, written whole (temp file, fsync, rename);
    ``sync=False`` skips the fsync (bulk data for benchmarks, where a crash is no matter)."""
    os.makedirs(directory, exist_ok=True)
    final = os.path.join(directory, str(item_id))
    temporary = f"{final}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        with open(temporary, "wb") as f:
            f.write(content)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(temporary, final)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise


def _insert_item(db: Database, connection: Any, text: str) -> int:
    """Insert a row and write its file in one transaction: the file before the commit."""
    cursor = connection.cursor()
    if db.kind == "postgres":
        cursor.execute(db.sql("INSERT INTO items (body) VALUES (?) RETURNING id"), (text,))
        row = cursor.fetchone()
        new_id = int(row[0])
    else:
        cursor.execute(db.sql("INSERT INTO items (body) VALUES (?)"), (text,))
        new_id = int(cursor.lastrowid)
    try:
        write_item_file(items_dir(), new_id, text.encode("utf-8"))
    except OSError:
        connection.rollback()
        raise
    connection.commit()
    return new_id


def items_check(db: Database) -> dict[str, Any]:
    """Which rows lack their file, or have a file whose bytes differ from the row's body."""
    directory = items_dir()
    missing: list[int] = []
    mismatched: list[int] = []
    rows = missing_count = mismatched_count = 0
    with closing(db.connect()) as connection:
        cursor = connection.cursor()
        cursor.execute("SELECT id, body FROM items ORDER BY id")
        while True:
            batch = cursor.fetchmany(500)
            if not batch:
                break
            for item_id, body in batch:
                rows += 1
                try:
                    with open(os.path.join(directory, str(item_id)), "rb") as f:
                        content = f.read()
                except FileNotFoundError:
                    missing_count += 1
                    if len(missing) < CHECK_LIST_LIMIT:
                        missing.append(int(item_id))
                    continue
                if content != str(body).encode("utf-8"):
                    mismatched_count += 1
                    if len(mismatched) < CHECK_LIST_LIMIT:
                        mismatched.append(int(item_id))
    try:
        files = sum(1 for name in os.listdir(directory) if name.isdigit())
    except FileNotFoundError:
        files = 0
    return {
        "rows": rows,
        "files": files,
        "items_dir": directory,
        "missing_count": missing_count,
        "missing": missing,
        "mismatched_count": mismatched_count,
        "mismatched": mismatched,
        "ok": missing_count == 0 and mismatched_count == 0,
    }


def _items(db: Database, method: str, body: bytes) -> tuple[int, Any]:
    with closing(db.connect()) as connection:
        if method == "POST":
            text = body.decode("utf-8", "replace")
            new_id = _insert_item(db, connection, text)
            return 201, {"id": new_id, "body": text}
        cursor = connection.cursor()
        cursor.execute("SELECT id, body FROM items ORDER BY id")
        return 200, {"items": [{"id": r[0], "body": r[1]} for r in cursor.fetchall()]}


def seed(count: int, size: int, batch: int) -> int:
    """Bulk items for benchmarks: ``count`` rows and files of ``size`` bytes of hex text."""
    try:
        db = database_from_env()
    except DatabaseError as e:
        print(f"standin seed: {e}", file=sys.stderr)
        return 2
    if db is None:
        print("standin seed: DATABASE_URL is not set", file=sys.stderr)
        return 2
    directory = items_dir()
    os.makedirs(directory, exist_ok=True)
    written = 0
    with closing(db.connect(timeout=30)) as connection:
        cursor = connection.cursor()
        while written < count:
            n = min(batch, count - written)
            bodies = [secrets.token_hex((size + 1) // 2)[:size] for _ in range(n)]
            ids: list[int] = []
            for text in bodies:
                if db.kind == "postgres":
                    cursor.execute(
                        db.sql("INSERT INTO items (body) VALUES (?) RETURNING id"), (text,)
                    )
                    ids.append(int(cursor.fetchone()[0]))
                else:
                    cursor.execute(db.sql("INSERT INTO items (body) VALUES (?)"), (text,))
                    ids.append(int(cursor.lastrowid))
            for item_id, text in zip(ids, bodies, strict=True):
                write_item_file(directory, item_id, text.encode("utf-8"), sync=False)
            connection.commit()
            written += n
            print(f"standin seed: {written}/{count}", flush=True)
    return 0


class StandinHandler(BaseHTTPRequestHandler):
    server_version = "standin"
    build: Build = Build("0", True)
    service_name = "standin"

    def log_message(self, format: str, *args: Any) -> None:
        # One line per request on stdout, so `docker logs` shows the traffic.
        print(f"{self.address_string()} {format % args}", flush=True)

    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _metrics(self) -> None:
        uptime = time.time() - STARTED
        lines = [
            "# TYPE process_start_time_seconds gauge",
            f"process_start_time_seconds {STARTED:.3f}",
            "# TYPE codequal_llm_tokens_total counter",
            "# TYPE codequal_llm_requests_total counter",
        ]
        providers = [p for p in os.environ.get("ENABLED_PROVIDERS", "").split(",") if p]
        for provider in providers:
            tokens = int(uptime) * 40
            lines.append(
                f'codequal_llm_tokens_total{{provider="{provider}",kind="prompt"}} {tokens}'
            )
            lines.append(
                f'codequal_llm_requests_total{{provider="{provider}",outcome="success"}} '
                f"{int(uptime)}"
            )
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _health(self) -> None:
        database = database_state()
        status = 200
        requires = os.environ.get("STANDIN_HEALTH_REQUIRES", "").strip()
        if not self.build.healthy:
            status = 503
        elif requires == "database" and not database["reachable"]:
            status = 503
        elif requires == "migrated" and not database["migrated"]:
            status = 503
        self._send(
            status,
            {
                "status": "ok" if status == 200 else "unhealthy",
                "service": self.service_name,
                "version": self.build.version,
                "database": database,
            },
        )

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        trimmed = path.rstrip("/") or "/"
        if trimmed.endswith(HEALTH_SUFFIXES):
            self._health()
        elif trimmed == "/metrics":
            self._metrics()
        elif trimmed.endswith("/items/check"):
            self._items_request("CHECK")
        elif trimmed.endswith("/items"):
            self._items_request("GET")
        else:
            self._send(
                200,
                {
                    "service": self.service_name,
                    "version": self.build.version,
                    "path": path,
                    "host": self.headers.get("Host"),
                    "forwarded_proto": self.headers.get("X-Forwarded-Proto"),
                },
            )

    do_HEAD = do_GET

    def do_POST(self) -> None:
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        if path.endswith("/items"):
            self._items_request("POST")
        else:
            self._send(404, {"error": f"no POST route {path}"})

    def _items_request(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            db = database_from_env()
        except DatabaseError as e:
            self._send(503, {"error": str(e)})
            return
        if db is None:
            self._send(503, {"error": "no database configured"})
            return
        try:
            if method == "CHECK":
                status, payload = 200, items_check(db)
            else:
                status, payload = _items(db, method, body)
        except db.driver_errors() as e:  # no table before `migrate`, the database is down...
            status, payload = 503, {"error": f"{type(e).__name__}: {e}"}
        except OSError as e:  # the items directory cannot be written: the row was rolled back
            status, payload = 503, {"error": f"items directory: {e.strerror or e}"}
        self._send(status, payload)


def serve(options: list[str]) -> int:
    port = int(os.environ.get("PORT", "3000"))
    service_name = os.environ.get("SERVICE_NAME", "standin")
    while options:
        option = options.pop(0)
        if option == "--port" and options:
            port = int(options.pop(0))
        elif option == "--service" and options:
            service_name = options.pop(0)
        else:
            print(f"standin: ignoring {option!r}", flush=True)
    StandinHandler.build = load_build()
    StandinHandler.service_name = service_name
    server = ThreadingHTTPServer(("", port), StandinHandler)
    server.daemon_threads = True

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(
        f"standin {StandinHandler.service_name} version {StandinHandler.build.version}"
        f" listening on :{port}",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def check(url: str | None) -> int:
    target = url or f"http://127.0.0.1:{os.environ.get('PORT', '3000')}/health"
    try:
        if not target.startswith(("http://", "https://")):
            return 2
        with urllib.request.urlopen(target, timeout=5) as response:  # noqa: S310 - checked above
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError):
        return 1


COMMANDS = ("serve", "migrate", "check", "version", "seed", "items-check")


def _items_check_command() -> int:
    try:
        db = database_from_env()
        if db is None:
            print("standin items-check: DATABASE_URL is not set", file=sys.stderr)
            return 2
        report = items_check(db)
    except DatabaseError as e:
        print(f"standin items-check: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report), flush=True)
    return 0 if report["ok"] else 1


def _seed_command(rest: list[str]) -> int:
    count, size, batch = 0, 1024, 200
    while rest:
        option = rest.pop(0)
        if option in ("--count", "--size", "--batch") and rest:
            value = int(rest.pop(0))
            if option == "--count":
                count = value
            elif option == "--size":
                size = value
            else:
                batch = max(1, value)
        else:
            print(f"standin seed: unknown option {option}", file=sys.stderr)
            return 2
    return seed(count, size, batch)


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("standin", "/usr/local/bin/standin"):
        argv = argv[1:]  # `command: [standin, migrate]` under `ENTRYPOINT ["standin"]`
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        os.execvp(argv[0], argv)  # noqa: S606 - a shell or tool asked for by name, as in any image
    if not argv or argv[0].startswith("-"):
        argv = ["serve", *argv]
    command, rest = argv[0], argv[1:]
    if command == "serve":
        return serve(rest)
    if command == "migrate":
        schema_version = os.environ.get("SCHEMA_VERSION", DEFAULT_SCHEMA_VERSION)
        wait_seconds = 30.0
        while rest:
            option = rest.pop(0)
            if option == "--schema-version" and rest:
                schema_version = rest.pop(0)
            elif option == "--wait" and rest:
                wait_seconds = float(rest.pop(0))
            else:
                print(f"standin migrate: unknown option {option}", file=sys.stderr)
                return 2
        return migrate(schema_version, wait_seconds)
    if command == "check":
        return check(rest[0] if rest else None)
    if command == "version":
        print(load_build().version)
        return 0
    if command == "seed":
        return _seed_command(rest)
    if command == "items-check":
        return _items_check_command()
    return 2  # unreachable: every command in COMMANDS is handled above


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
