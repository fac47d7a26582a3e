"""A pull that fails during the install, said the way the images check says it.

The Docker Engine reports a failed pull as its own Go error text (``Get
"https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io ... no such
host``), wrapped by the SDK in an HTTP 500 for ``/images/create``. That text is all there
is, so its well-known phrases are matched to the same causes the images check names
(DNS, TCP, TLS, proxy, 401, 404) and the same hints.
"""

from __future__ import annotations

import re

HINT_UNREACHABLE = (
    "give the offline bundle (apply --bundle FILE, or airgap.bundle) or a mirror this machine "
    "reaches (registry.mirror)"
)

# (phrase in the daemon's text, cause, what the operator is told about the registry)
_PHRASES: tuple[tuple[str, str, str], ...] = (
    ("no such host", "DNS", "{host} does not resolve"),
    ("server misbehaving", "DNS", "the name server could not resolve {host}"),
    ("Temporary failure in name resolution", "DNS", "{host} does not resolve"),
    ("proxyconnect", "proxy", "the proxy refused the connection to {host}"),
    ("x509:", "TLS", "{host}'s certificate is not trusted"),
    ("tls:", "TLS", "the TLS handshake with {host} failed"),
    ("http: server gave HTTP response to HTTPS client", "TLS", "{host} does not speak TLS"),
    ("connection refused", "TCP", "{host} refused the connection"),
    ("i/o timeout", "TCP", "{host} did not answer in time"),
    ("Client.Timeout", "TCP", "{host} did not answer in time"),
    ("network is unreachable", "TCP", "the network to {host} is unreachable"),
    ("no route to host", "TCP", "no route to {host}"),
    ("unauthorized", "401", "{registry} refused the credentials"),
    ("authentication required", "401", "{registry} wants credentials"),
    ("denied", "401", "{registry} refused access"),
    ("manifest unknown", "404", "{reference} is not in {registry}"),
    ("not found", "404", "{reference} is not in {registry}"),
)
_HINTS = {
    "DNS": HINT_UNREACHABLE,
    "TCP": HINT_UNREACHABLE,
    "proxy": "give dockerd the proxy (HTTPS_PROXY, NO_PROXY in its environment), or a mirror",
    "TLS": "set registry.ca_file to the CA that signed the registry's certificate",
    "401": "check registry.username and registry_password (secrets file)",
    "404": "push the image to the mirror (bundle push) or correct release.images",
}
_HOST = re.compile(r"(?:lookup|dial tcp:? (?:lookup )?)\s*([A-Za-z0-9.-]+\.[A-Za-z]{2,}|[0-9.]+)")


def describe_pull_failure(reference: str, daemon_error: str) -> tuple[str, str | None, str | None]:
    """``(message, cause, hint)`` for a pull of ``reference`` that the Engine refused.

    ``cause`` is None (and the message keeps the daemon's first line) when no known
    phrase matches.
    """
    from installer.engine.images import ImageReference
    from installer.errors import UsageError

    try:
        parsed = ImageReference.parse(reference)
        registry, host = parsed.domain, parsed.api_host
    except UsageError:
        registry = host = reference.split("/", 1)[0]
    found = _HOST.search(daemon_error)
    if found:
        host = found.group(1).rstrip(".")
    lowered = daemon_error.lower()
    for phrase, cause, sentence in _PHRASES:
        if phrase.lower() in lowered:
            said = sentence.format(host=host, registry=registry, reference=reference)
            if cause in ("DNS", "TCP", "TLS", "proxy"):
                message = f"cannot pull {reference}: could not reach {registry} ({cause}: {said})"
            else:
                message = f"cannot pull {reference}: {cause}: {said}"
            return message, cause, _HINTS[cause]
    first = daemon_error.strip().splitlines()[0] if daemon_error.strip() else "the pull failed"
    return f"cannot pull {reference}: {first}", None, None
