"""Secrets the installer makes itself, kept once in the state directory.

Passwords nobody supplied (``database_password``, ``grafana_admin_password``) are generated
with the :mod:`secrets` module the first time a plan needs them and stored, mode 0600, in
``<root>/state/generated-secrets.json``; the self-signed TLS certificate and its key are
generated once with ``cryptography`` and kept beside them. Later runs reuse both, so two
renders of the same answers are byte-identical and a re-install never changes a password
under a running database.

``cryptography`` is imported only when a certificate has to be made.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from installer.credentials import LoadedSecrets, Secrets
from installer.statedir import StateError, replace_file

SecretOrigin = Literal["secrets file", "environment", "generated"]

GENERATED_SECRETS_FILE = "generated-secrets.json"
TLS_DIR = "tls"
CERT_FILE = "self-signed.crt"
KEY_FILE = "self-signed.key"
CERT_INFO_FILE = "self-signed.json"
# A self-signed certificate is remade when it has less than this left, or for another domain.
_RENEW_BEFORE_SECONDS = 30 * 24 * 3600
_VALID_DAYS = 825
_PASSWORD_BYTES = 24


@dataclass(frozen=True)
class ResolvedSecret:
    """A secret's value and where it came from (the value is never printed)."""

    value: str
    origin: SecretOrigin

    def __repr__(self) -> str:
        return f"ResolvedSecret(origin={self.origin!r})"

    @property
    def shown_as(self) -> str:
        """How a summary shows this secret: never its value."""
        return {
            "generated": "<generated>",
            "secrets file": "<from secrets file>",
            "environment": "<from environment>",
        }[self.origin]


def write_private(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` atomically with mode 0600 (temp file, fsync, rename)."""
    replace_file(path, content, 0o600)


class SecretStore:
    """Generated secrets and the self-signed certificate of one installation."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._generated: dict[str, str] | None = None

    # -- passwords ---------------------------------------------------------------------

    @property
    def _secrets_path(self) -> Path:
        return self.state_dir / GENERATED_SECRETS_FILE

    def _load(self) -> dict[str, str]:
        if self._generated is None:
            try:
                data = json.loads(self._secrets_path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                data = {}
            except (OSError, ValueError) as e:
                raise StateError(
                    self._secrets_path,
                    e if isinstance(e, OSError) else None,
                    message=f"cannot read {self._secrets_path}",
                    hint="restore it from a backup; deleting it would change every generated "
                    "password",
                ) from e
            if not isinstance(data, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in data.items()
            ):
                raise StateError(
                    self._secrets_path,
                    message=f"{self._secrets_path} is not a generated-secrets file",
                )
            self._generated = dict(data)
        return self._generated

    def generated(self, key: str) -> str:
        """The generated value of ``key``: made and stored the first time, reused after."""
        stored = self._load()
        if key not in stored:
            stored[key] = secrets.token_urlsafe(_PASSWORD_BYTES)
            self._ensure_dir()
            try:
                write_private(
                    self._secrets_path,
                    (json.dumps(stored, indent=2, sort_keys=True) + "\n").encode(),
                )
            except OSError as e:
                raise StateError(self._secrets_path, e) from e
        return stored[key]

    def resolve(
        self, supplied: Secrets | LoadedSecrets, generate: tuple[str, ...] | list[str]
    ) -> dict[str, ResolvedSecret]:
        """Every supplied secret, plus a generated one for each key of ``generate`` not given."""
        if isinstance(supplied, LoadedSecrets):
            values, origins = supplied.secrets.supplied(), supplied.origin
        else:
            values, origins = supplied.supplied(), {}
        resolved: dict[str, ResolvedSecret] = {}
        for key, value in values.items():
            origin = origins.get(key, "secrets file")
            resolved[key] = ResolvedSecret(
                value, "environment" if origin == "environment" else "secrets file"
            )
        for key in generate:
            if key not in resolved:
                resolved[key] = ResolvedSecret(self.generated(key), "generated")
        return resolved

    # -- the self-signed certificate ---------------------------------------------------

    def self_signed_certificate(self, domain: str) -> tuple[bytes, bytes]:
        """(certificate PEM, private key PEM) for ``domain``, made once and then reused.

        A new pair is made when none is stored, when the stored one is for another domain,
        or when it expires within 30 days.
        """
        tls = self.state_dir / TLS_DIR
        cert_path, key_path, info_path = tls / CERT_FILE, tls / KEY_FILE, tls / CERT_INFO_FILE
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
            if (
                isinstance(info, Mapping)
                and info.get("domain") == domain
                and float(info.get("not_after", 0)) - time.time() > _RENEW_BEFORE_SECONDS
            ):
                return cert_path.read_bytes(), key_path.read_bytes()
        except (OSError, ValueError, TypeError):
            pass  # missing or unreadable: make a new pair below
        cert, key, not_after = generate_self_signed(domain)
        self._ensure_dir()
        try:
            tls.mkdir(mode=0o700, exist_ok=True)
            write_private(key_path, key)
            write_private(cert_path, cert)
            write_private(
                info_path, json.dumps({"domain": domain, "not_after": not_after}).encode()
            )
        except OSError as e:
            raise StateError(
                tls, e, message=f"cannot write the certificate to {tls}: {e.strerror}"
            ) from e
        return cert, key

    def _ensure_dir(self) -> None:
        try:
            self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise StateError(
                self.state_dir, e, message=f"cannot create the state directory {self.state_dir}"
            ) from e


def generate_self_signed(domain: str) -> tuple[bytes, bytes, float]:
    """A new ECDSA P-256 key and a self-signed certificate for ``domain`` (and localhost)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    not_after = now + datetime.timedelta(days=_VALID_DAYS)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, domain),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CodeQual self-signed"),
        ]
    )
    names: list[x509.GeneralName] = [x509.DNSName(domain)]
    if domain != "localhost":
        names.append(x509.DNSName("localhost"))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem, not_after.timestamp()
