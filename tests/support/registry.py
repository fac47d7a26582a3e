"""Debian's docker-registry (Distribution) on a free 127.0.0.1 port, with its own storage.

Docker treats 127.0.0.0/8 as an insecure registry, so ``docker push 127.0.0.1:PORT/...``
works over plain HTTP with no daemon configuration.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REGISTRY_BINARY = "docker-registry"


class RegistryStartError(RuntimeError):
    """The registry did not start; the message carries its log."""


@dataclass(frozen=True)
class LocalRegistry:
    """A running registry: ``address`` is ``127.0.0.1:PORT``, the prefix of image references."""

    address: str
    storage: Path
    log: Path

    def reference(self, repository: str) -> str:
        return f"{self.address}/{repository}"

    def catalog(self) -> list[str]:
        import json

        url = f"http://{self.address}/v2/_catalog"
        with urllib.request.urlopen(url, timeout=5) as r:
            return list(json.load(r).get("repositories", []))

    def __str__(self) -> str:
        return self.address


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(port: int, storage: Path) -> str:
    return f"""version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: {secrets.token_hex(16)}
"""


def _answers(address: str) -> bool:
    try:
        url = f"http://{address}/v2/"
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def local_registry(workdir: Path, attempts: int = 3) -> Iterator[LocalRegistry]:
    """Start a registry under ``workdir``, yield it once it answers, stop it afterwards."""
    binary = shutil.which(REGISTRY_BINARY)
    if binary is None:
        raise RegistryStartError(
            "docker-registry is not installed (apt-get install docker-registry)"
        )
    storage = workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    log = workdir / "registry.log"
    last_error = ""
    for _ in range(attempts):
        # Another process can take the port between choosing and binding it: try again.
        port = _free_port()
        config = workdir / "config.yml"
        config.write_text(_config(port, storage))
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
                if _answers(address):
                    break
                time.sleep(0.1)
            if process.poll() is None and _answers(address):
                yield LocalRegistry(address=address, storage=storage, log=log)
                return
            last_error = log.read_text(errors="replace")[-2000:]
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    raise RegistryStartError(f"docker-registry did not start:\n{last_error}")
