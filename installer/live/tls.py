"""tls: the provided certificate fits — its key, its chain, the domain, its dates.

With ``tls.mode: provided``: the private key is the certificate's; the chain (the
certificates after the first in ``cert_file``) leads to the CA file given (else a
failure), or to a CA this machine trusts (else a warning: a company CA that only its
clients trust is common); the certificate covers ``domain`` (its subject alternative names, one
leading wildcard label allowed); and it is valid now (else fail) and for at least
:data:`WARN_DAYS` more days (else warn).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from installer.live.result import LiveInput, LiveResult, not_applicable

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

NAME = "tls"
WARN_DAYS = 14
REQUIRED = f"key matches, chain verifies, covers the domain, valid >= {WARN_DAYS} days"


def _load(path: str, what: str) -> bytes:
    from pathlib import Path

    with Path(path).open("rb") as handle:
        data = handle.read(1 << 20)
    if not data.strip():
        raise ValueError(f"{what} {path} is empty")
    return data


def covers(names: list[str], domain: str) -> bool:
    """Whether a certificate for DNS ``names`` serves ``domain`` (RFC 6125's one wildcard)."""
    domain = domain.lower().rstrip(".")
    for given in names:
        name = given.lower().rstrip(".")
        if name == domain:
            return True
        if name.startswith("*.") and "." in domain:
            label, rest = domain.split(".", 1)
            if label and rest == name[2:]:
                return True
    return False


def _names(certificate: Certificate) -> tuple[list[str], list[str]]:
    from cryptography import x509

    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    dns = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    ips = [str(n) for n in san.get_values_for_type(x509.IPAddress)]
    return dns, ips


def check_tls(inputs: LiveInput, *, now: Callable[[], dt.datetime] | None = None) -> LiveResult:
    """The tls check (see the module text)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    tls = inputs.answers.tls
    if tls.mode != "provided" or not tls.cert_file or not tls.key_file:
        return not_applicable(NAME, f"tls.mode is {tls.mode}: no certificate is provided")
    domain = inputs.answers.domain
    moment = (now or (lambda: dt.datetime.now(dt.timezone.utc)))()
    try:
        chain = x509.load_pem_x509_certificates(_load(tls.cert_file, "tls.cert_file"))
    except (OSError, ValueError) as e:
        return _fail(
            f"cannot read tls.cert_file as PEM certificates ({_why(e)})",
            "give the certificate (with its chain) in PEM form",
        )
    try:
        key = serialization.load_pem_private_key(_load(tls.key_file, "tls.key_file"), None)
    except (OSError, ValueError, TypeError) as e:
        return _fail(
            f"cannot read tls.key_file as an unencrypted PEM private key ({_why(e)})",
            "give the private key in PEM form, without a passphrase",
        )
    leaf = chain[0]
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, spki) != leaf.public_key().public_bytes(der, spki):
        return _fail(
            "the private key does not belong to the certificate (the key does not match)",
            "give the key the certificate was issued for",
        )
    details = {
        "subject": leaf.subject.rfc4514_string(),
        "issuer": leaf.issuer.rfc4514_string(),
        "not_after": leaf.not_valid_after_utc.isoformat(),
    }
    if moment < leaf.not_valid_before_utc:
        return _fail(
            f"the certificate is not valid before {leaf.not_valid_before_utc:%Y-%m-%d}",
            "use a certificate valid today",
            details,
        )
    if moment >= leaf.not_valid_after_utc:
        return _fail(
            f"the certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d}",
            "renew the certificate",
            details,
        )
    dns, ips = _names(leaf)
    try:
        ipaddress.ip_address(domain)
        covered = domain in ips
    except ValueError:
        covered = covers(dns, domain)
    if not covered:
        shown = ", ".join(dns + ips) or "no subject alternative names"
        return _fail(
            f"the certificate does not cover {domain} (it covers {shown})",
            f"use a certificate issued for {domain}",
            details,
        )
    problem = _chain_problem(chain, domain, moment, inputs.tls_ca_file)
    if problem is not None and inputs.tls_ca_file:
        return _fail(
            f"the chain does not verify with {inputs.tls_ca_file}: {problem}",
            "put the intermediate certificates after the certificate in tls.cert_file",
            details,
        )
    if problem is not None:
        # A private CA is common inside a company; only clients that trust it will connect.
        return LiveResult(
            NAME,
            "warn",
            f"the chain does not lead to a CA this machine trusts ({problem})",
            REQUIRED,
            hint="fine with a company CA its clients trust; otherwise put the intermediate "
            "certificates after the certificate in tls.cert_file",
            details=details,
        )
    days = (leaf.not_valid_after_utc - moment).days
    measured = f"{leaf.subject.rfc4514_string()} for {domain}, valid {days} more days"
    if days < WARN_DAYS:
        return LiveResult(
            NAME,
            "warn",
            f"the certificate expires in {days} days ({leaf.not_valid_after_utc:%Y-%m-%d})",
            REQUIRED,
            hint="renew the certificate before it expires",
            details=details,
        )
    return LiveResult(NAME, "pass", measured, REQUIRED, details=details)


def _chain_problem(
    chain: Sequence[Certificate], domain: str, moment: dt.datetime, ca_file: str | None
) -> str | None:
    """Why the chain does not lead to a trusted CA (the system's, or ``ca_file``)."""
    from cryptography import x509
    from cryptography.x509 import verification

    roots: list[x509.Certificate] = []
    if ca_file:
        try:
            roots = x509.load_pem_x509_certificates(_load(ca_file, "the CA file"))
        except (OSError, ValueError) as e:
            return f"cannot read the CA file {ca_file} ({_why(e)})"
    else:
        roots = _system_roots()
    if not roots:
        return "no trusted CA certificates found on this machine"
    leaf, *intermediates = chain
    try:
        subject: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(domain))
    except ValueError:
        subject = x509.DNSName(domain)
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store(roots))
        .time(moment)
        .build_server_verifier(subject)  # type: ignore[arg-type]
    )
    try:
        verifier.verify(leaf, intermediates)
    except verification.VerificationError as e:
        return str(e)
    return None


def _system_roots() -> list[Certificate]:
    import ssl
    from pathlib import Path

    from cryptography import x509

    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            try:
                return list(x509.load_pem_x509_certificates(Path(candidate).read_bytes()))
            except ValueError:
                continue
    return []


def _why(error: BaseException) -> str:
    if isinstance(error, OSError):
        return error.strerror or type(error).__name__
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _fail(measured: str, hint: str, details: dict[str, str] | None = None) -> LiveResult:
    return LiveResult(NAME, "fail", measured, REQUIRED, hint=hint, details=details or {})
