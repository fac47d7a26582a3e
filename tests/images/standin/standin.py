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
    GET .../items            rows of the items table;  POST .../items  stores the request body
    anything else            200 {"service", "version", "path", "host", "forwarded_proto"}

The build facts (version, healthy or not) come from /usr/local/share/standin/build.json, baked
into the image, so a container's environment cannot change them. Outside an image (the unit
tests) STANDIN_BUILD_FILE points at another file, or the defaults apply.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import closing
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BUILD_FILE = "/usr/local/share/standin/build.json"
HEALTH_SUFFIXES = ("/health", "/-/healthy", "/api/health", "/ready")
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


def _items(db: Database, method: str, body: bytes) -> tuple[int, Any]:
    with closing(db.connect()) as connection:
        cursor = connection.cursor()
        if method == "POST":
            text = body.decode("utf-8", "replace")
            if db.kind == "postgres":
                cursor.execute(db.sql("INSERT INTO items (body) VALUES (?) RETURNING id"), (text,))
                row = cursor.fetchone()
                new_id = row[0] if row else None
            else:
                cursor.execute(db.sql("INSERT INTO items (body) VALUES (?)"), (text,))
                new_id = cursor.lastrowid
            connection.commit()
            return 201, {"id": new_id, "body": text}
        cursor.execute("SELECT id, body FROM items ORDER BY id")
        return 200, {"items": [{"id": r[0], "body": r[1]} for r in cursor.fetchall()]}


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
            status, payload = _items(db, method, body)
        except db.driver_errors() as e:  # no table before `migrate`, the database is down...
            status, payload = 503, {"error": f"{type(e).__name__}: {e}"}
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


COMMANDS = ("serve", "migrate", "check", "version")


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
    return 2  # unreachable: every command in COMMANDS is handled above


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
