"""The Docker Engine probe: one GET /info over the Engine's socket, no SDK.

Kept apart from :mod:`installer.checks.probes` so that ``check`` can send this request,
the slowest of its local probes (the daemon asks its runtimes for their versions before it
answers), before it imports anything else: :func:`start_early` sends it and
:func:`take_early` hands its answer to the probe that asks next.
"""

from __future__ import annotations

# _socket, the C core of the socket module: importing socket itself builds four enums
# from its constants (and imports selectors), which costs check more than this probe.
import _socket
import _thread
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock"
# Seconds the Docker Engine has to answer (Timeouts.docker's default).
DOCKER_TIMEOUT = 3.0
# How long an answer fetched ahead (start_early) stays good to hand over.
FRESH_FOR = 10.0


@dataclass(frozen=True)
class DockerInfo:
    """What the Docker Engine said on GET /info, or why it said nothing.

    ``error`` is one of: ``not_running`` (no socket, or nobody listening on it),
    ``permission`` (the socket refuses this user), ``timeout``, ``unsupported`` (an
    endpoint this probe cannot speak to, e.g. ssh://), ``protocol`` (an answer that is not
    the Engine API), ``unreachable`` (any other network error).
    """

    endpoint: str
    reachable: bool
    error: str | None = None
    error_detail: str | None = None
    installed: bool = True  # a docker or dockerd binary is on PATH (for the hint)
    endpoint_from_env: bool = False  # DOCKER_HOST chose the endpoint
    version: str | None = None
    api_version: str | None = None
    storage_driver: str | None = None
    root_dir: str | None = None
    cgroup_version: int | None = None
    memory_limit: bool | None = None  # the Engine can enforce memory limits
    https_proxy: str | None = None
    ncpu: int | None = None
    mem_total: int | None = None


def which(name: str, path: str | None = None) -> str | None:
    """Full path of executable ``name`` on ``path`` (default: PATH), as shutil.which
    finds it on POSIX, without importing shutil (start-up time is measured)."""
    if os.sep in name:
        return name if os.path.isfile(name) and os.access(name, os.X_OK) else None
    search = os.environ.get("PATH", os.defpath) if path is None else path
    for directory in search.split(os.pathsep):
        candidate = os.path.join(directory or os.curdir, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def docker_endpoint(environ: Mapping[str, str]) -> tuple[str, bool]:
    """The Engine endpoint the docker CLI would use, and whether DOCKER_HOST chose it."""
    host = environ.get("DOCKER_HOST", "").strip()
    if host:
        return host, True
    runtime_dir = environ.get("XDG_RUNTIME_DIR")
    if not os.path.exists(DEFAULT_DOCKER_SOCKET) and runtime_dir:
        rootless = os.path.join(runtime_dir, "docker.sock")
        if os.path.exists(rootless):
            return f"unix://{rootless}", False
    return f"unix://{DEFAULT_DOCKER_SOCKET}", False


_MAX_ENGINE_ANSWER = 8 * 1024 * 1024


class EngineProtocolError(ValueError):
    """The peer did not answer like the Docker Engine API."""


def _engine_socket(endpoint: str, timeout: float, environ: Mapping[str, str]) -> _socket.socket:
    """A connected socket to the Engine at ``endpoint`` (unix://, or tcp:// with TLS when
    DOCKER_TLS_VERIFY is set, as the docker CLI does)."""
    if endpoint.startswith("unix://"):
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(endpoint[len("unix://") :])
        except OSError:
            sock.close()
            raise
        return sock
    if endpoint.startswith("tcp://"):
        host, _, port = endpoint[len("tcp://") :].rstrip("/").rpartition(":")
        tls = environ.get("DOCKER_TLS_VERIFY", "") not in ("", "0")
        import socket

        plain = socket.create_connection(
            (host.strip("[]") or "localhost", int(port or (2376 if tls else 2375))), timeout
        )
        if not tls:
            return plain
        import ssl
        from pathlib import Path

        cert_dir = Path(environ.get("DOCKER_CERT_PATH") or Path.home() / ".docker")
        try:
            context = ssl.create_default_context(cafile=str(cert_dir / "ca.pem"))
            context.load_cert_chain(str(cert_dir / "cert.pem"), str(cert_dir / "key.pem"))
            return context.wrap_socket(plain, server_hostname=host.strip("[]"))
        except BaseException:
            plain.close()
            raise
    raise EngineProtocolError(f"unsupported endpoint {endpoint}")


def engine_get(
    endpoint: str, path: str, timeout: float, environ: Mapping[str, str]
) -> tuple[dict[str, str], Any]:
    """GET ``path`` from the Engine API: its headers (lower-case names) and its JSON body.

    A plain HTTP/1.0 exchange over the socket: the Engine answers it with a
    Content-Length (or closes), and it spares ``check`` the import of http.client.
    """
    sock = _engine_socket(endpoint, timeout, environ)
    chunks = []
    try:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode("ascii"))
        received = 0
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
            if received > _MAX_ENGINE_ANSWER:
                raise EngineProtocolError(f"GET {path} answered more than the Engine ever does")
    finally:
        sock.close()
    raw = b"".join(chunks)
    head, separator, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if not separator or len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise EngineProtocolError("not an HTTP answer")
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)
    }
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    if parts[1] != "200":
        raise EngineProtocolError(f"GET {path} answered HTTP {parts[1]}")
    return headers, json.loads(body)


def _dechunk(body: bytes) -> bytes:
    out = []
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        body = rest[size + 2 :]
    return b"".join(out)


def query_docker(
    endpoint: str,
    timeout: float,
    *,
    environ: Mapping[str, str] | None = None,
    from_env: bool = False,
    installed: bool = True,
) -> DockerInfo:
    """GET /info from the Engine at ``endpoint``."""
    env = os.environ if environ is None else environ

    def unreachable(kind: str, detail: str) -> DockerInfo:
        return DockerInfo(
            endpoint,
            reachable=False,
            error=kind,
            error_detail=detail,
            installed=installed,
            endpoint_from_env=from_env,
        )

    if not endpoint.startswith(("unix://", "tcp://")):
        return unreachable("unsupported", "only unix:// and tcp:// endpoints can be probed")
    try:
        # One request: /info carries the server version, and every Engine answer names
        # its API version in a header (a second request to /version would cost a
        # round trip to the daemon, which is most of this probe's time).
        headers, info = engine_get(endpoint, "/info", timeout, env)
        if not isinstance(info, dict):
            raise EngineProtocolError("GET /info answered no JSON object")
    except FileNotFoundError:
        return unreachable("not_running", "no such socket")
    except ConnectionRefusedError:
        return unreachable("not_running", "connection refused")
    except PermissionError:
        return unreachable("permission", "permission denied on the socket")
    except TimeoutError:
        return unreachable("timeout", f"no answer within {timeout:g} s")
    except EngineProtocolError as e:
        return unreachable("protocol", str(e))
    except (ValueError, UnicodeDecodeError) as e:
        return unreachable("protocol", f"the answer is not the Engine API ({type(e).__name__})")
    except OSError as e:
        return unreachable("unreachable", e.strerror or str(e) or type(e).__name__)
    cgroup = info.get("CgroupVersion")
    return DockerInfo(
        endpoint,
        reachable=True,
        installed=installed,
        endpoint_from_env=from_env,
        version=str(info.get("ServerVersion") or "") or None,
        api_version=headers.get("api-version") or None,
        storage_driver=info.get("Driver"),
        root_dir=info.get("DockerRootDir"),
        cgroup_version=int(cgroup) if isinstance(cgroup, str) and cgroup.isdigit() else None,
        memory_limit=info.get("MemoryLimit"),
        https_proxy=info.get("HttpsProxy") or None,
        ncpu=info.get("NCPU"),
        mem_total=info.get("MemTotal"),
    )


def probe_docker(environ: Mapping[str, str], timeout: float) -> DockerInfo:
    """Ask the Engine the docker CLI would use (DOCKER_HOST, else the local socket)."""
    endpoint, from_env = docker_endpoint(environ)
    path = environ.get("PATH", os.defpath)
    installed = any(which(n, path) for n in ("docker", "dockerd"))
    return query_docker(endpoint, timeout, environ=environ, from_env=from_env, installed=installed)


@dataclass(frozen=True)
class _EarlyRequest:
    endpoint: str
    timeout: float
    started: float
    done: threading.Event
    answer: list[DockerInfo]


# At most one request in flight, sent by start_early and taken by take_early.
_EARLY: list[_EarlyRequest] = []


def start_early(timeout: float = DOCKER_TIMEOUT) -> None:
    """Send this process's Engine request now, in a thread of its own (see the module
    text); it replaces one sent earlier and not taken."""
    endpoint, _from_env = docker_endpoint(os.environ)
    answer: list[DockerInfo] = []
    done = threading.Event()

    def ask() -> None:
        try:
            answer.append(probe_docker(os.environ, timeout))
        except BaseException:  # noqa: BLE001, S110 - the probe asks again, and reports it
            pass
        finally:
            done.set()

    _EARLY[:] = [_EarlyRequest(endpoint, timeout, time.monotonic(), done, answer)]
    # _thread: no wait for the thread to start (see prerequisites._Background).
    _thread.start_new_thread(ask, ())


def take_early(timeout: float) -> DockerInfo | None:
    """The answer to the request :func:`start_early` sent with ``timeout`` to the
    endpoint this process would use now, taken once; None when there is none, when it
    is stale (a process that sent it and then failed, and asks again later), or when it
    ended without an answer."""
    if not _EARLY:
        return None
    early = _EARLY.pop()
    fresh = time.monotonic() - early.started < FRESH_FOR
    if early.timeout != timeout or early.endpoint != docker_endpoint(os.environ)[0] or not fresh:
        return None
    early.done.wait(timeout + 1)  # the request itself gives up after ``timeout``
    return early.answer[0] if early.answer else None
