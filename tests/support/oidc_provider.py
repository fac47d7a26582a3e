"""A local OpenID Connect provider for tests: it serves the discovery document only.

``oidc_provider()`` starts an HTTP (or, given a certificate, HTTPS) server on 127.0.0.1
in a thread and yields its issuer URL. What the document says can be changed per test
(another issuer, missing endpoints, a status code, a body that is not JSON), which is how
each of the check's verdicts is reached with a real socket and a real HTTP exchange.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.tls_files import Pem

REALM_PATH = "/realms/codequal"


@dataclass
class Provider:
    """The running provider: its issuer, what it answers, what it was asked."""

    issuer: str
    status: int = 200
    body: bytes | None = None  # None: the discovery document for ``issuer``
    document: dict[str, Any] = field(default_factory=dict)  # merged into the document
    requests: list[str] = field(default_factory=list)

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/protocol/openid-connect/auth",
            "token_endpoint": f"{self.issuer}/protocol/openid-connect/token",
            "jwks_uri": f"{self.issuer}/protocol/openid-connect/certs",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "groups"],
            **self.document,
        }


@contextmanager
def oidc_provider(tls: Pem | None = None, host: str = "127.0.0.1") -> Iterator[Provider]:
    """A provider on a free port of 127.0.0.1; ``tls`` serves HTTPS with that certificate
    (the issuer then names ``host``, which the certificate must carry)."""
    holder: list[Provider] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            provider = holder[0]
            provider.requests.append(self.path)
            if self.path != REALM_PATH + "/.well-known/openid-configuration":
                self.send_error(404)
                return
            body = provider.body
            if body is None:
                body = json.dumps(provider.discovery()).encode()
            self.send_response(provider.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls.cert), str(tls.key))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    port = server.server_address[1]
    holder.append(Provider(issuer=f"{scheme}://{host}:{port}{REALM_PATH}"))
    thread = threading.Thread(target=server.serve_forever, name="oidc-provider", daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
