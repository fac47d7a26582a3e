"""Detached ed25519 signatures over a bundle's ``metadata.json``.

Keys are PEM files: the private key PKCS#8 (written mode 0600), the public key
SubjectPublicKeyInfo. A key's id is the SHA-256 of its raw 32-byte public key; the
metadata records the signer's key id so ``inspect`` can say which key signed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from installer.errors import BundleIntegrityError, UsageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {what} {path}: {e.strerror or type(e).__name__}") from e


def load_private_key(path: Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(_read(path, "signing key"), password=None)
    except (ValueError, TypeError) as e:
        raise UsageError(
            f"{path} is not an unencrypted PEM private key",
            hint="make one with `codequal-installer bundle keygen --out NAME`",
        ) from e
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{path} is not an ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(_read(path, "public key"))
    except (ValueError, TypeError) as e:
        raise UsageError(f"{path} is not a PEM public key") from e
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"{path} is not an ed25519 public key")
    return key


def key_id(public_key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def generate_key_pair(prefix: Path) -> tuple[Path, Path]:
    """Write ``PREFIX.key`` (private, 0600) and ``PREFIX.pub``; never overwrites."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    private_path = prefix.with_name(prefix.name + ".key")
    public_path = prefix.with_name(prefix.name + ".pub")
    for path in (private_path, public_path):
        if path.exists():
            raise UsageError(f"{path} exists; not overwriting a key")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    public_pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private_pem)
        public_path.write_bytes(public_pem)
    except OSError as e:
        raise UsageError(f"cannot write the key pair: {e.strerror or type(e).__name__}") from e
    return private_path, public_path


def sign(private_key: Ed25519PrivateKey, data: bytes) -> bytes:
    return private_key.sign(data)


def check_signature(public_key: Ed25519PublicKey, signature: bytes, data: bytes) -> None:
    from cryptography.exceptions import InvalidSignature

    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        raise BundleIntegrityError(
            "the signature of metadata.json does not match the given public key: "
            "the bundle was changed or signed with another key",
            hint="check that --key is the public half of the key that signed the bundle",
        ) from None
