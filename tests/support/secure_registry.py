"""Debian's docker-registry behind TLS (a test CA's certificate) with htpasswd authentication.

``secure_registry`` starts it on a free 127.0.0.1 port; ``push_image`` stores a small image
(one config blob, no layers) through the Registry HTTP API, so a manifest is there to read
without involving a Docker Engine that would have to trust the test CA.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.registry import REGISTRY_BINARY, RegistryStartError
from tests.support.tls_files import Pem, make_ca, make_leaf

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_V1 = "application/vnd.docker.container.image.v1+json"


@dataclass(frozen=True)
class SecureRegistry:
    address: str  # 127.0.0.1:PORT
    ca: Pem
    username: str
    password: str
    log: Path

    def _request(self, method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
        context = ssl.create_default_context(cafile=str(self.ca.cert))
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        url = path if path.startswith("https://") else f"https://{self.address}{path}"
        request = urllib.request.Request(url, data=body or None, method=method)  # noqa: S310 - https only
        request.add_header("Authorization", f"Basic {token}")
        for name, value in headers.items():
            request.add_header(name.replace("_", "-"), value)
        with urllib.request.urlopen(request, context=context, timeout=10) as response:  # noqa: S310
            location = response.headers.get("Location")
            return location.encode() if method == "POST" and location else response.read()

    def push_image(self, repository: str, tag: str) -> str:
        """Store ``repository:tag`` (a config blob, no layers); returns the full reference."""
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": []},
                "config": {},
                "history": [{"comment": repository}],
            }
        ).encode()
        digest = "sha256:" + hashlib.sha256(config).hexdigest()
        location = self._request("POST", f"/v2/{repository}/blobs/uploads/").decode()
        if location.startswith("/"):
            location = f"https://{self.address}{location}"
        separator = "&" if "?" in location else "?"
        self._request(
            "PUT",
            f"{location}{separator}digest={digest}",
            config,
            Content_Type="application/octet-stream",
        )
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_V2,
                "config": {"mediaType": CONFIG_V1, "size": len(config), "digest": digest},
                "layers": [],
            }
        ).encode()
        self._request(
            "PUT", f"/v2/{repository}/manifests/{tag}", manifest, Content_Type=MANIFEST_V2
        )
        return f"{self.address}/{repository}:{tag}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def htpasswd_line(user: str, password: str) -> str:
    """A bcrypt htpasswd line (the only kind Distribution accepts)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # stdlib through Python 3.12; libxcrypt does bcrypt

        salt = crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 4)  # noqa: S324 - bcrypt
        hashed = crypt.crypt(password, salt)
    if not hashed or not hashed.startswith("$2"):
        raise RegistryStartError("this system's crypt(3) cannot make bcrypt hashes")
    return f"{user}:{hashed}\n"


def _config(port: int, storage: Path, cert: Pem, htpasswd: Path) -> str:
    return f"""version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
auth:
  htpasswd:
    realm: codequal-test
    path: {htpasswd}
http:
  addr: 127.0.0.1:{port}
  secret: {secrets.token_hex(16)}
  tls:
    certificate: {cert.cert}
    key: {cert.key}
"""


def _answers(address: str, ca: Pem) -> bool:
    context = ssl.create_default_context(cafile=str(ca.cert))
    try:
        with urllib.request.urlopen(f"https://{address}/v2/", timeout=1, context=context):
            return True
    except urllib.error.HTTPError as e:
        return e.code == 401  # up, and asking for credentials
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def secure_registry(workdir: Path, username: str = "codequal") -> Iterator[SecureRegistry]:
    binary = shutil.which(REGISTRY_BINARY)
    if binary is None:
        raise RegistryStartError(
            "docker-registry is not installed (apt-get install docker-registry)"
        )
    ca = make_ca(workdir / "ca", "CodeQual Test Registry CA")
    cert = make_leaf(workdir / "tls", ca, ["127.0.0.1", "localhost"])
    password = secrets.token_urlsafe(12)
    htpasswd = workdir / "htpasswd"
    htpasswd.write_text(htpasswd_line(username, password))
    storage = workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    log = workdir / "registry.log"
    last_error = ""
    for _ in range(3):
        port = _free_port()
        config = workdir / "config.yml"
        config.write_text(_config(port, storage, cert, htpasswd))
        address = f"127.0.0.1:{port}"
        with open(log, "ab") as log_file:
            process = subprocess.Popen(
                [binary, "serve", str(config)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and process.poll() is None:
                if _answers(address, ca):
                    yield SecureRegistry(address, ca, username, password, log)
                    return
                time.sleep(0.1)
            last_error = log.read_text(errors="replace")[-2000:]
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    raise RegistryStartError(f"docker-registry (TLS, htpasswd) did not start:\n{last_error}")
