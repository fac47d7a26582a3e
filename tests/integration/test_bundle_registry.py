"""Pushing a bundle's images to Debian's real docker-registry on 127.0.0.1, pulling them
back by digest with the real Docker, skipping what is there on a second push, and TLS
verified against a corporate CA."""

from __future__ import annotations

import datetime
import ipaddress
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from installer.bundle import open_bundle
from installer.bundle.create import create_bundle
from installer.bundle.registry import RegistryError, RegistryTarget, mirror_destination
from installer.errors import ExitCode
from installer.release import load_release
from tests.integration.bundle_support import (
    APP,
    BASE,
    TOOL,
    cached_wheelhouse,
    ensure_bundle_images,
    release_file,
)
from tests.support.registry import LocalRegistry
from tests.unit.cli_helpers import run_cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def opened(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any) -> Any:
    ensure_bundle_images(docker_engine)
    directory = tmp_path_factory.mktemp("push")
    release = load_release(str(release_file(directory, "7.1.0-bundle", with_base=True)))
    created = create_bundle(release, directory / "b.bundle", wheelhouse=cached_wheelhouse())
    return open_bundle(created.path, directory / "extracted")


def test_push_then_pull_by_digest_and_a_second_push_skips(
    opened: Any, registry: LocalRegistry, docker_engine: Any
) -> None:
    target = RegistryTarget(mirror=f"{registry.address}/corp", insecure=True)
    seen: list[Any] = []
    first = opened.push_images(target, progress=seen.append)
    assert {p.source for p in first} == {APP, TOOL, BASE}
    assert sum(p.uploaded_blobs for p in first) + sum(p.mounted_blobs for p in first) > 0
    assert seen[-1].finished and seen[-1].operation == "push"
    # The shared base layer went up once; the other repositories mounted or found it.
    layer_uploads = sum(p.uploaded_blobs for p in first)
    assert layer_uploads == 3 + 3  # three configs, three distinct layers

    expected = {image.references[0]: image.manifest_digest for image in opened.metadata.images}
    for pushed in first:
        assert pushed.digest == expected[pushed.source]
        destination = mirror_destination(pushed.source, f"{registry.address}/corp")
        assert pushed.reference == str(destination)

    app = next(p for p in first if p.source == APP)
    try:
        pulled = docker_engine.images.pull(app.pinned)
        assert pulled.id == next(i.id for i in opened.metadata.images if APP in i.references)
        output = docker_engine.containers.run(app.pinned, ["cat", "/content"], remove=True)
        assert output == b"app\n"
    finally:
        docker_engine.images.remove(app.pinned, force=True)

    second = opened.push_images(target)
    assert all(p.manifest_skipped and p.uploaded_blobs == 0 for p in second)

    # Under another path the registry links blobs per repository: uploaded again, with the
    # layer shared by two repositories mounted from the first, and the same digests.
    other = opened.push_images(RegistryTarget(mirror=f"{registry.address}/other", insecure=True))
    assert {p.digest for p in other} == {p.digest for p in first}
    assert sum(p.mounted_blobs for p in other) >= 1


def test_push_command_reports_pinned_references(
    opened: Any, registry: LocalRegistry, tmp_path: Path
) -> None:
    bundle = opened.index.source.path
    result = run_cli(
        "bundle", "push", str(bundle), "--mirror", registry.address, "--insecure",
        "--workdir", str(tmp_path / "w"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for image in opened.metadata.images:
        assert f"@{image.manifest_digest}" in result.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A corporate CA and a server certificate for 127.0.0.1 signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Corp Test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    ca_file, cert_file, key_file = (
        directory / "ca.pem",
        directory / "cert.pem",
        directory / "key.pem",
    )
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


@pytest.fixture
def tls_registry(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """docker-registry serving HTTPS with a certificate from a private CA."""
    ca_file, cert_file, key_file = _certificates(tmp_path)
    port = _free_port()
    config = tmp_path / "config.yml"
    config.write_text(
        f"version: 0.1\nlog: {{level: warn}}\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'storage'}}}}}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: {secrets.token_hex(8)}\n"
        f"  tls: {{certificate: {cert_file}, key: {key_file}}}\n"
    )
    binary = shutil.which("docker-registry")
    assert binary, "docker-registry is not installed (scripts/test installs it)"
    with open(tmp_path / "log", "wb") as log:
        process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                requests.get(f"https://127.0.0.1:{port}/v2/", verify=str(ca_file), timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        yield f"127.0.0.1:{port}", ca_file
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_tls_is_verified_and_the_corporate_ca_honoured(
    opened: Any, tls_registry: tuple[str, Path]
) -> None:
    address, ca_file = tls_registry
    with pytest.raises(
        RegistryError, match=r"TLS verification of 127\.0\.0\.1:\d+ failed"
    ) as caught:
        opened.push_images(RegistryTarget(mirror=address))
    assert "registry.ca_file" in (caught.value.hint or "")

    pushed = opened.push_images(RegistryTarget(mirror=address, ca_file=ca_file))
    assert len(pushed) == 3 and all(p.uploaded_blobs > 0 for p in pushed if p.source == APP)
    again = opened.push_images(RegistryTarget(mirror=address, insecure=True))
    assert all(p.manifest_skipped for p in again)


def test_an_unreachable_registry_is_a_clear_error(opened: Any, tmp_path: Path) -> None:
    port = _free_port()
    result = run_cli(
        "bundle", "push", str(opened.index.source.path), "--mirror", f"127.0.0.1:{port}",
        "--workdir", str(tmp_path / "w"),
    )  # fmt: skip
    # Not reachable is a prerequisite the operator fixes (start it, fix the address): exit 3.
    assert result.exit_code == ExitCode.PREREQUISITES
    assert f"cannot reach the registry at 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.output
