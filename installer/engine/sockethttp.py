"""HTTP to the Docker Engine without the SDK: ``http.client`` over the Engine's socket.

Two callers need the Engine before (or instead of) the Docker SDK: ``check``'s one
``GET /info`` (the SDK would cost ``check`` more than everything else it does) and
``bundle create``'s ``docker save`` stream, asked for before the SDK is loaded and read in
large blocks. Both open an :func:`engine_connection` to the endpoint
:func:`installer.engine.endpoint.docker_endpoint` resolved: a Unix socket, or TCP (with
TLS when ``DOCKER_TLS_VERIFY`` is set, as the docker CLI does). ``http.client`` does the
HTTP, chunked answers included.
"""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

from installer.engine.endpoint import DockerEndpoint

MAX_JSON_ANSWER = 8 * 1024 * 1024  # no Engine answer the installer reads is near this


class EngineProtocolError(ValueError):
    """The peer did not answer like the Docker Engine API."""


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to a server listening on a Unix socket."""

    def __init__(self, socket_path: str, timeout: float | None = None) -> None:
        super().__init__("docker", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def engine_connection(
    endpoint: DockerEndpoint, timeout: float | None
) -> http.client.HTTPConnection:
    """A (not yet connected) HTTP connection to the Engine at ``endpoint``; unix:// and
    tcp:// only (:class:`EngineProtocolError` otherwise)."""
    if endpoint.socket_path is not None:
        return UnixHTTPConnection(endpoint.socket_path, timeout)
    if not endpoint.url.startswith("tcp://"):
        raise EngineProtocolError(f"unsupported endpoint {endpoint.url}")
    host, _, port = endpoint.url[len("tcp://") :].rstrip("/").rpartition(":")
    if not host:  # tcp://HOST without a port
        host, port = port, ""
    host = host.strip("[]") or "localhost"
    if not endpoint.tls_verify:
        return http.client.HTTPConnection(host, int(port or 2375), timeout=timeout)
    import ssl
    from pathlib import Path

    cert_dir = Path(endpoint.cert_path or Path.home() / ".docker")
    context = ssl.create_default_context(cafile=str(cert_dir / "ca.pem"))
    context.load_cert_chain(str(cert_dir / "cert.pem"), str(cert_dir / "key.pem"))
    return http.client.HTTPSConnection(host, int(port or 2376), timeout=timeout, context=context)


def engine_get_json(
    endpoint: DockerEndpoint, path: str, timeout: float
) -> tuple[http.client.HTTPMessage, Any]:
    """GET ``path`` from the Engine API: the answer's headers and its JSON body.

    Raises ``OSError`` (not reachable, timeout), :class:`EngineProtocolError` (not the
    Engine API, or not 200) and ``ValueError`` (a body that is not JSON).
    """
    connection = engine_connection(endpoint, timeout)
    try:
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read(MAX_JSON_ANSWER + 1)
        except http.client.HTTPException as e:
            raise EngineProtocolError("not an HTTP answer") from e
        if len(body) > MAX_JSON_ANSWER:
            raise EngineProtocolError(f"GET {path} answered more than the Engine ever does")
        if response.status != 200:
            raise EngineProtocolError(f"GET {path} answered HTTP {response.status}")
        return response.headers, json.loads(body)
    finally:
        connection.close()


def engine_answers(endpoint: DockerEndpoint, timeout: float = 3.0) -> bool:
    """Whether the Engine at ``endpoint`` answers ``GET /_ping`` (to tell a command that
    failed on its own from one whose Engine went away)."""
    try:
        connection = engine_connection(endpoint, timeout)
    except (OSError, EngineProtocolError):
        return False
    try:
        connection.request("GET", "/_ping")
        response = connection.getresponse()
        response.read(1024)
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def error_message(body: bytes) -> str:
    """The ``message`` of an Engine error answer, or the body as text."""
    try:
        return str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", "replace").strip()
