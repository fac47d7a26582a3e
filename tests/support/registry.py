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


class RegistryProcess:
    """A registry the test may kill and start again on the same port with the same storage
    (a registry that disappears in the middle of a push, and comes back)."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        binary = shutil.which(REGISTRY_BINARY)
        if binary is None:
            raise RegistryStartError(
                "docker-registry is not installed (apt-get install docker-registry)"
            )
        self.binary = binary
        self.storage = workdir / "storage"
        self.storage.mkdir(parents=True, exist_ok=True)
        self.log = workdir / "registry.log"
        self.config = workdir / "config.yml"
        self.port = port or _free_port()
        self.config.write_text(_config(self.port, self.storage))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def registry(self) -> LocalRegistry:
        return LocalRegistry(address=f"127.0.0.1:{self.port}", storage=self.storage, log=self.log)

    def start(self, timeout: float = 15) -> LocalRegistry:
        """Start it and wait until it answers; :class:`RegistryStartError` if it does not."""
        with open(self.log, "ab") as log_file:
            self.process = subprocess.Popen(
                [self.binary, "serve", str(self.config)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        address = self.registry.address
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if _answers(address):
                return self.registry
            time.sleep(0.1)
        self.stop()
        raise RegistryStartError(
            f"docker-registry did not start:\n{self.log.read_text(errors='replace')[-2000:]}"
        )

    def kill(self) -> None:
        """SIGKILL, as a crash or a pulled cable would: no clean shutdown."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def local_registry(workdir: Path, attempts: int = 3) -> Iterator[LocalRegistry]:
    """Start a registry under ``workdir``, yield it once it answers, stop it afterwards."""
    last_error: RegistryStartError | None = None
    for _ in range(attempts):
        # Another process can take the port between choosing and binding it: try again.
        process = RegistryProcess(workdir)
        try:
            running = process.start()
        except RegistryStartError as e:
            last_error = e
            continue
        try:
            yield running
            return
        finally:
            process.stop()
    raise last_error or RegistryStartError("docker-registry did not start")
