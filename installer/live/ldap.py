"""ldap: the service account binds over TLS and finds someone under the user base.

``ldaps://`` connects with TLS from the start; ``ldap://`` must accept StartTLS before
the bind (the bind password never travels in clear). The server's certificate is checked
against ``ldap.ca_file`` (else this machine's CAs). Then a search under ``user_base_dn``
must find at least one entry below it: an empty or missing base means nobody can sign in.
"""

from __future__ import annotations

import math
import socket
import ssl
import urllib.parse

from installer.live.result import LiveInput, LiveResult, not_applicable

NAME = "ldap"
REQUIRED = "binds over TLS; at least one entry under user_base_dn"


def _fail(measured: str, hint: str, cause: str) -> LiveResult:
    return LiveResult(NAME, "fail", measured, REQUIRED, hint=hint, details={"cause": cause})


def _cause_of(error: BaseException, host: str) -> tuple[str, str]:
    """(kind, sentence) for what ldap3 raised while opening the connection."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    for item in seen:
        if isinstance(item, socket.gaierror):
            return "DNS", f"{host} does not resolve"
        # ldap3 makes classes that inherit from the socket error's type without its
        # attributes, so they are read with a default.
        if isinstance(item, ssl.SSLCertVerificationError):
            why = getattr(item, "verify_message", None) or "certificate verify failed"
            return "TLS", f"{host}'s certificate is not trusted ({why})"
        if isinstance(item, ssl.SSLError):
            why = getattr(item, "reason", None) or "handshake failed"
            return "TLS", f"the TLS handshake with {host} failed ({why})"
        if isinstance(item, ConnectionRefusedError):
            return "TCP", f"{host} refused the connection"
        if isinstance(item, (TimeoutError, socket.timeout)):
            return "TCP", f"{host} did not answer in time"
    text = str(error)
    # ldap3 folds socket errors into its own exception's text.
    for fragment, kind, sentence in (
        ("Name or service not known", "DNS", f"{host} does not resolve"),
        ("getaddrinfo", "DNS", f"{host} does not resolve"),
        ("CERTIFICATE_VERIFY_FAILED", "TLS", f"{host}'s certificate is not trusted"),
        ("certificate verify failed", "TLS", f"{host}'s certificate is not trusted"),
        ("SSL", "TLS", f"the TLS handshake with {host} failed"),
        ("Connection refused", "TCP", f"{host} refused the connection"),
        ("timed out", "TCP", f"{host} did not answer in time"),
    ):
        if fragment in text:
            return kind, sentence
    return "TCP", f"cannot connect to {host} ({type(error).__name__})"


def check_ldap(inputs: LiveInput) -> LiveResult:
    """The ldap check (see the module text)."""
    import ldap3
    from ldap3.core import exceptions as ldap_errors

    ldap = inputs.answers.ldap
    if inputs.answers.is_compose or not ldap.enabled:
        return not_applicable(NAME, "directory sign-in is not enabled")
    if not (ldap.url and ldap.bind_dn and ldap.user_base_dn):
        return not_applicable(NAME, "ldap.url, bind_dn and user_base_dn are not all set")
    url = urllib.parse.urlsplit(ldap.url)
    host = url.hostname or ""
    secure = url.scheme == "ldaps"
    port = url.port or (636 if secure else 389)
    try:  # ldap3 folds a failed lookup into "invalid server address": ask first
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return _fail(
            f"could not reach {host}:{port} (DNS: {host} does not resolve)", "check ldap.url", "DNS"
        )
    tls = ldap3.Tls(
        validate=ssl.CERT_REQUIRED,
        ca_certs_file=ldap.ca_file,
        version=ssl.PROTOCOL_TLS_CLIENT,
    )
    server = ldap3.Server(
        host,
        port=port,
        use_ssl=secure,
        tls=tls,
        connect_timeout=inputs.timeout,
        get_info=ldap3.NONE,
    )
    connection = ldap3.Connection(
        server,
        user=ldap.bind_dn,
        password=inputs.secret("ldap_bind_password") or "",
        receive_timeout=max(1, math.ceil(inputs.timeout)),  # ldap3 packs it as an integer
        raise_exceptions=False,
        auto_referrals=False,
    )
    how = "ldaps" if secure else "StartTLS"
    try:
        connection.open()
        if not secure and not connection.start_tls():
            return _fail(
                f"{host}:{port} refused StartTLS ({connection.result.get('description')})",
                "use ldaps:// or enable StartTLS on the directory",
                "TLS",
            )
        if not connection.bind():
            result = connection.result or {}
            code = result.get("result")
            if code == 49:
                return _fail(
                    f"{host} refused the bind as {ldap.bind_dn} (invalid credentials)",
                    "check ldap.bind_dn and ldap_bind_password (secrets file)",
                    "auth",
                )
            return _fail(
                f"{host} refused the bind as {ldap.bind_dn} ({result.get('description')})",
                "check ldap.bind_dn and what the directory allows it",
                "auth",
            )
        connection.search(
            ldap.user_base_dn,
            "(objectClass=*)",
            search_scope=ldap3.LEVEL,
            attributes=[],
            size_limit=1,
            time_limit=max(1, int(inputs.timeout)),
        )
        result = connection.result or {}
        if result.get("result") == 32:
            return _fail(
                f"user_base_dn {ldap.user_base_dn} does not exist on {host}",
                "check ldap.user_base_dn",
                "base",
            )
        if result.get("result") not in (0, 4):  # success, size limit reached
            return _fail(
                f"search under {ldap.user_base_dn} failed ({result.get('description')})",
                "check what the directory lets ldap.bind_dn read",
                "search",
            )
        if not connection.entries and not connection.response:
            return _fail(
                f"no entries under {ldap.user_base_dn} on {host}",
                "check ldap.user_base_dn: nobody under it could sign in",
                "empty",
            )
        return LiveResult(
            NAME,
            "pass",
            f"bound as {ldap.bind_dn} over {how}; entries found under {ldap.user_base_dn}",
            REQUIRED,
        )
    except ldap_errors.LDAPException as e:
        kind, sentence = _cause_of(e, host)
        hint = {
            "TLS": "set ldap.ca_file to the CA that signed the directory's certificate",
            "DNS": "check ldap.url",
        }.get(kind, "check ldap.url and the firewall between here and the directory")
        return _fail(f"could not reach {host}:{port} ({kind}: {sentence})", hint, kind)
    finally:
        connection.unbind()
