"""Shared by the bundle integration tests: small images of our own, a cached wheelhouse,
and a release manifest that names them.

The images are ours alone (``cqbundle-test/*``), so the tests may remove and load them
without touching the images other tests use. ``base`` is busybox imported from a tar;
``app`` and ``tool`` are built FROM it, so they share its layer.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.images import cache_dir

BASE = "cqbundle-test/base:1"
APP = "cqbundle-test/app:1"
TOOL = "cqbundle-test/tool:1"
ROOT = Path(__file__).resolve().parents[2]


def _busybox_rootfs() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        binary = Path("/bin/busybox").read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(binary), 0o755
        tar.addfile(info, io.BytesIO(binary))
        for applet in ("sh", "cat", "ls", "sleep", "wget", "true"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    return buffer.getvalue()


def _build(client: Any, reference: str, content: str) -> None:
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        dockerfile = f'FROM {BASE}\nCOPY content /content\nCMD ["sleep", "3600"]\n'.encode()
        for name, data in (("Dockerfile", dockerfile), ("content", content.encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=reference, rm=True)


def ensure_bundle_images(client: Any) -> dict[str, str]:
    """The three images (built when missing); reference -> image ID."""
    import docker

    with _lock("images"):
        try:
            client.images.get(BASE)
        except docker.errors.ImageNotFound:
            client.api.import_image_from_data(
                _busybox_rootfs(), repository=BASE.split(":", maxsplit=1)[0], tag="1"
            )
        for reference, content in ((APP, "app\n"), (TOOL, "tool\n")):
            try:
                client.images.get(reference)
            except docker.errors.ImageNotFound:
                _build(client, reference, content)
        return {ref: client.images.get(ref).id for ref in (BASE, APP, TOOL)}


def release_file(directory: Path, version: str, *, with_base: bool) -> Path:
    """A release manifest over our images: app and tool, plus base when asked."""
    services = {
        "codequal": APP,
        "deepwiki": TOOL,
        **({"nginx": BASE} if with_base else {}),
    }
    lines = [f"name: codequal\nversion: {version}\nservices:\n"]
    for service, image in services.items():
        role = "proxy" if service == "nginx" else "app"
        lines.append(f"  {service}:\n    image: {image}\n    role: {role}\n")
    lines.append(
        "routes:\n  - {path: /, service: codequal, port: 3000, health_path: /health}\n"
        'migration:\n  service: codequal\n  command: ["true"]\n  schema_version: "1"\n'
    )
    path = directory / f"{version}.yaml"
    path.write_text("".join(lines))
    return path


@contextmanager
def _lock(name: str) -> Iterator[None]:
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _source_digest() -> str:
    digest = hashlib.sha256()
    paths = [ROOT / "pyproject.toml", ROOT / "packaging" / "codequal-installer.sh"]
    for package in ("installer", "templates"):
        paths += sorted(
            p for p in (ROOT / package).rglob("*") if p.is_file() and "__pycache__" not in p.parts
        )
    for path in paths:
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def cached_wheelhouse() -> Path:
    """The wheelhouse of this source tree (pip, from PyPI), cached by its content."""
    from installer.bundle.wheelhouse import build_wheelhouse

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    target = cache_dir() / f"wheelhouse-py{version}-{_source_digest()}"
    with _lock("wheelhouse"):
        if not (target / ".complete").exists():
            partial = target.with_name(target.name + f".{os.getpid()}.partial")
            build_wheelhouse(partial, [version])
            (partial / ".complete").write_text("")
            partial.rename(target)
            for stale in cache_dir().glob(f"wheelhouse-py{version}-*"):
                if stale != target and not stale.name.endswith(".partial"):
                    import shutil

                    shutil.rmtree(stale, ignore_errors=True)
    return target


def vendor_bundle(out: Path, release: str, sign_key: Path) -> Path:
    """A vendor's signed bundle of the test release ``release`` at ``out``, made from the
    main Engine's images where the test releases are known, without the installer image."""
    import pytest

    from tests.support import TEST_RELEASES_DIR
    from tests.unit.cli_helpers import run_cli

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CODEQUAL_RELEASES_DIR", str(TEST_RELEASES_DIR))
        result = run_cli(
            "bundle", "create", "--release", release, "--out", str(out),
            "--wheelhouse", str(cached_wheelhouse()), "--sign-key", str(sign_key),
            "--no-installer-image",
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


# -- a Docker Engine of its own, with none of the images, that cannot pull unseen --------------

ISOLATED_POOL = "172.31.240.0/20"  # its Compose networks: away from the main Engine's
ISOLATED_BRIDGE_ADDRESS = "172.31.239.1/24"  # its default bridge, an interface of its own


@dataclass
class IsolatedEngine:
    """A second ``dockerd`` with its own (empty) data root, socket and containerd.

    Its registry traffic goes through ``HTTPS_PROXY``/``HTTP_PROXY`` pointing at
    ``trap``, a listener on 127.0.0.1 that only counts connections: any pull (by the
    installer, Compose or the Engine) would show up there. It shares the host's iptables
    with the main Engine, which drops forwarded traffic by default, so it runs without
    iptables management and one ACCEPT rule for its own address pool is added (and removed
    again) in DOCKER-USER. Its default bridge is an interface made for it: ``--bridge
    none`` would make dockerd delete ``docker0``, the main Engine's bridge.
    """

    host: str
    client: Any
    root: Path
    trap: ConnectionTrap

    def environment(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.host}

    def image_events(self, since: float, until: float) -> list[dict[str, Any]]:
        """The Engine's image events (``docker events``) between two times."""
        events = self.client.events(
            since=int(since), until=int(until) + 1, decode=True, filters={"type": "image"}
        )
        return list(events)


class ConnectionTrap:
    """A TCP listener on 127.0.0.1 that counts connections and closes each at once."""

    def __init__(self) -> None:
        import socket
        import threading

        self.connections = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._server.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._server.close()


def _iptables_pool_rule(action: str) -> None:
    import subprocess

    subprocess.run(
        ["iptables", action, "DOCKER-USER", "-s", ISOLATED_POOL, "-d", ISOLATED_POOL,
         "-j", "ACCEPT"],
        check=action == "-I", capture_output=True, timeout=30,
    )  # fmt: skip


@contextmanager
def isolated_engine(workdir: Path) -> Iterator[IsolatedEngine]:
    """Start the second Engine (see :class:`IsolatedEngine`); stop it and remove it all."""
    # One at a time: they would share the address pool and the bridge's address.
    with _lock("isolated-engine"), _isolated_engine(workdir) as engine:
        yield engine


def _ip(*args: str, check: bool = True) -> None:
    import subprocess

    subprocess.run(["ip", *args], check=check, capture_output=True, timeout=30)


BRIDGE_PREFIX = "cqde"


def _remove_stale_bridges() -> None:
    """Delete the bridges of isolated Engines whose test process is gone (killed before its
    cleanup ran): each carries the same address, and two of them on the host would leave
    the new one's traffic to whichever the kernel routes first."""
    import re

    for name in os.listdir("/sys/class/net"):
        owner = re.fullmatch(BRIDGE_PREFIX + r"(\d+)", name)
        if owner and not Path(f"/proc/{owner.group(1)}").exists():
            _ip("link", "del", name, check=False)


@contextmanager
def _isolated_engine(workdir: Path) -> Iterator[IsolatedEngine]:
    import shutil
    import signal
    import subprocess
    import tempfile
    import time

    import docker

    trap = ConnectionTrap()
    # Socket paths must stay short: the exec root lives directly under /tmp.
    exec_root = Path(tempfile.mkdtemp(prefix="cqde-", dir="/tmp"))
    _remove_stale_bridges()
    bridge = f"{BRIDGE_PREFIX}{os.getpid()}"  # at most 11 characters: pids stay below 2**22
    _ip("link", "del", bridge, check=False)
    _ip("link", "add", "name", bridge, "type", "bridge")
    _ip("addr", "add", ISOLATED_BRIDGE_ADDRESS, "dev", bridge)
    _ip("link", "set", bridge, "up")
    root = workdir / "docker-root"
    host = f"unix://{exec_root}/docker.sock"
    log = open(workdir / "dockerd.log", "wb")  # noqa: SIM115 - closed below
    proxy = f"http://127.0.0.1:{trap.port}"
    env = {**os.environ, "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "NO_PROXY": ""}
    env.pop("DOCKER_HOST", None)
    daemon = subprocess.Popen(
        ["dockerd", "--data-root", str(root), "--exec-root", str(exec_root / "x"),
         "--pidfile", str(exec_root / "pid"), "-H", host, "--bridge", bridge,
         "--iptables=false", "--ip-masq=false", "--cgroup-parent", exec_root.name,
         "--default-address-pool", f"base={ISOLATED_POOL},size=24"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    client = None
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                client = docker.DockerClient(base_url=host, timeout=300)
                client.ping()
                break
            except docker.errors.DockerException:
                if client is not None:
                    client.close()
                    client = None
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "the isolated dockerd did not start:\n"
                        + (workdir / "dockerd.log").read_text(errors="replace")[-3000:]
                    ) from None
                time.sleep(0.3)
        _iptables_pool_rule("-I")
        yield IsolatedEngine(host, client, root, trap)
    finally:
        _iptables_pool_rule("-D")
        if client is not None:
            for container in client.containers.list(all=True):
                with contextlib.suppress(docker.errors.DockerException):
                    container.remove(force=True, v=True)
            client.close()
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
        trap.close()
        _ip("link", "del", bridge, check=False)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(exec_root, ignore_errors=True)
