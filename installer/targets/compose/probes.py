"""HTTP requests to the installed services: through nginx by name, or to a published port."""

from __future__ import annotations

import http.client
import socket
import ssl
from typing import TYPE_CHECKING

from installer.targets.compose.polling import wait_until

if TYPE_CHECKING:
    from installer.runner import StepContext

HTTP_WAIT_SECONDS = 30.0


def http_get(
    address: str, port: int, host: str, path: str, context: ssl.SSLContext | None
) -> tuple[int, str]:
    """GET ``path`` from ``address:port`` as ``host`` (TLS SNI and Host header)."""
    connection: http.client.HTTPConnection
    if context is not None:
        connection = _PinnedHTTPSConnection(address, port, host, context)
    else:
        connection = http.client.HTTPConnection(address, port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": host, "User-Agent": "codequal-installer"})
        response = connection.getresponse()
        return response.status, response.read(65536).decode("utf-8", "replace")
    finally:
        connection.close()


def wait_for_ok(
    ctx: StepContext,
    port: int,
    host: str,
    path: str,
    context: ssl.SSLContext | None = None,
    *,
    timeout: float = HTTP_WAIT_SECONDS,
) -> tuple[int, str]:
    """GET ``path`` on ``127.0.0.1:port`` until it answers 200 or ``timeout`` passed.

    Returns the last ``(status, body)``; status 0 (body: the error) when nothing answered.
    A certificate that does not verify is no reason to wait: it propagates at once.
    """

    def attempt() -> tuple[int, str]:
        try:
            return http_get("127.0.0.1", port, host, path, context)
        except ssl.SSLCertVerificationError:
            raise
        except OSError as e:
            return 0, str(e)

    return wait_until(ctx, attempt, lambda answer: answer[0] == 200, timeout=timeout, interval=1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a fixed address, verifying the certificate for ``server_name``."""

    def __init__(self, address: str, port: int, server_name: str, context: ssl.SSLContext) -> None:
        super().__init__(address, port, timeout=10, context=context)
        self._server_name = server_name
        self._tls_context = context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock = self._tls_context.wrap_socket(sock, server_hostname=self._server_name)
