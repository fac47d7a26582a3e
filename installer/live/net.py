"""Reaching a host: which proxy a URL goes through, and what failed, in operator words.

Every live check that talks to a host over the network reports a failure the same way:
its kind — ``DNS`` (the name does not resolve), ``TCP`` (no connection: refused, no route,
no answer in time), ``TLS`` (the handshake or the certificate), ``proxy`` (the proxy
refused the tunnel) — and a short detail. The kind comes from the exception's type, never
from parsing its text.
"""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

FailureKind = Literal["DNS", "TCP", "TLS", "proxy"]


@dataclass(frozen=True)
class Unreachable:
    """Why a host could not be reached."""

    kind: FailureKind
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


def classify(error: BaseException, host: str, timeout: float) -> Unreachable:
    """The kind of a connection failure (``urllib``'s ``URLError`` is unwrapped first)."""
    reason: object = error
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        reason = error.reason
    if isinstance(reason, socket.gaierror):
        return Unreachable("DNS", f"{host} does not resolve ({reason.strerror or reason})")
    if isinstance(reason, ssl.SSLCertVerificationError):
        return Unreachable("TLS", f"{host}'s certificate is not trusted ({reason.verify_message})")
    if isinstance(reason, ssl.SSLError):
        return Unreachable("TLS", f"the TLS handshake with {host} failed ({reason.reason})")
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return Unreachable("TCP", f"{host} did not answer within {timeout:g} s")
    if isinstance(reason, ConnectionRefusedError):
        return Unreachable("TCP", f"{host} refused the connection")
    if isinstance(reason, OSError) and str(reason).startswith("Tunnel connection failed"):
        return Unreachable("proxy", f"the proxy refused the tunnel to {host} ({reason})")
    if isinstance(reason, OSError):
        text = reason.strerror or str(reason) or type(reason).__name__
        return Unreachable("TCP", f"cannot connect to {host} ({text})")
    return Unreachable("TCP", f"cannot connect to {host} ({reason})")


def proxy_for(url: str, environ: Mapping[str, str]) -> str | None:
    """The proxy ``url`` goes through per ``HTTP(S)_PROXY`` / ``NO_PROXY`` (None: direct).

    The lowercase variable wins over the uppercase one, as curl and urllib read them.
    """
    parts = urllib.parse.urlsplit(url)
    proxies = proxy_settings(environ)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if "no" in proxies and bypass(host, proxies):
        return None
    return proxies.get(parts.scheme)


def proxy_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """``{"http": ..., "https": ..., "no": ...}`` from the environment, as set."""
    found: dict[str, str] = {}
    for scheme in ("http", "https", "no"):
        value = environ.get(f"{scheme}_proxy") or environ.get(f"{scheme.upper()}_PROXY")
        if value:
            found[scheme] = value
    return found


def tls_context(ca_file: str | None = None, *, verify: bool = True) -> ssl.SSLContext:
    """The system's trusted CAs, plus ``ca_file`` when given; no verification if not ``verify``."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


@dataclass(frozen=True)
class UrlAnswer:
    """What a URL said: its HTTP status, or why it could not be reached; and the proxy used."""

    url: str
    status: int | None
    failure: Unreachable | None
    proxy: str | None


def get_url(
    url: str,
    *,
    environ: Mapping[str, str],
    timeout: float,
    ca_file: str | None = None,
    verify: bool = True,
    headers: Mapping[str, str] | None = None,
) -> UrlAnswer:
    """``GET url`` through the proxy the environment names; any HTTP status is an answer."""
    host = urllib.parse.urlsplit(url).hostname or url
    proxy = proxy_for(url, environ)
    scheme = urllib.parse.urlsplit(url).scheme
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.ProxyHandler({scheme: proxy} if proxy else {}),
        urllib.request.HTTPSHandler(context=tls_context(ca_file, verify=verify)),
    ]
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers=dict(headers or {}))  # noqa: S310 - http(s) only, checked by the answers' models
    try:
        with opener.open(request, timeout=timeout) as response:
            return UrlAnswer(url, int(response.status), None, proxy)
    except urllib.error.HTTPError as e:
        return UrlAnswer(url, int(e.code), None, proxy)
    except (OSError, ValueError) as e:
        return UrlAnswer(url, None, classify(e, host, timeout), proxy)


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and what it wraps: causes, contexts, ``reason`` and exception arguments
    (requests and urllib3 keep the socket's error in the last two)."""
    seen: list[BaseException] = []
    todo: list[object] = [error]
    while todo and len(seen) < 32:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [getattr(item, "reason", None), item.__cause__, item.__context__, *item.args]
    return seen


def classify_chain(error: BaseException, host: str, timeout: float) -> Unreachable:
    """:func:`classify` of the socket or TLS error that ``error`` wraps."""
    causes = _causes(error)
    for cause in causes:
        if isinstance(cause, (socket.gaierror, ssl.SSLError, ConnectionError, TimeoutError)):
            return classify(cause, host, timeout)
    names = {type(cause).__name__ for cause in causes}
    if names & {"ConnectTimeout", "ReadTimeout", "Timeout", "ConnectTimeoutError"}:
        return Unreachable("TCP", f"{host} did not answer within {timeout:g} s")
    if "ProxyError" in names:
        return Unreachable("proxy", f"the proxy failed on the way to {host}")
    for cause in causes:
        if isinstance(cause, OSError):
            return classify(cause, host, timeout)
    message = getattr(error, "message", None) or str(error).splitlines()[0]
    return Unreachable("TCP", str(message))
