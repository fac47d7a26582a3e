"""A second ``dockerd`` that a test may stop and start again (the shared one never stops).

Own data root, exec root, pidfile and socket, and its own network namespace: there it has
its own ``docker0``, iptables and loopback, so nothing it does touches the host's
interfaces. (A dockerd that is restarted deletes the default bridge interface it finds,
and on the host that is the main Engine's ``docker0``.) The socket is a file, reachable
from the host's namespace; the socket path is the caller's, so a test can put it where a
rootless daemon's would be. Commands that must reach what its containers publish on
127.0.0.1 run in its namespace: :meth:`SecondDockerd.in_namespace`.
The test images are copied into it from the main Engine (``docker save | docker load``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


class SecondDockerd:
    """A second Engine listening on ``socket_path``; :meth:`stop` and :meth:`start` it."""

    def __init__(self, workdir: Path, socket_path: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.socket_path = socket_path
        self.exec_root = Path(tempfile.mkdtemp(prefix="cq2d-", dir="/tmp"))
        self.namespace = f"cq2d-{os.getpid()}"
        self.root = workdir / "docker-root"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    def in_namespace(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run in this daemon's network namespace (nsenter, not ``ip netns exec``,
        which mounts a sysfs of its own and so hides the cgroup mounts dockerd needs)."""
        return ["nsenter", f"--net=/run/netns/{self.namespace}", "--", *argv]

    def run_inside(self, install: Any) -> None:
        """Make ``install`` run the installer in this daemon's network namespace, where what
        the install's containers publish on 127.0.0.1 is."""
        command = install.command
        install.command = lambda *args: self.in_namespace(command(*args))

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        with open(self.workdir / "dockerd.log", "ab") as log:
            self.process = subprocess.Popen(
                self.in_namespace(
                    ["dockerd", "--data-root", str(self.root),
                     "--exec-root", str(self.exec_root / "x"),
                     "--pidfile", str(self.exec_root / "pid"), "-H", self.host,
                     "--cgroup-parent", self.exec_root.name]
                ),
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while self.docker("version", check=False).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "the second dockerd did not start:\n"
                    + (self.workdir / "dockerd.log").read_text(errors="replace")[-3000:]
                )
            time.sleep(0.3)

    def stop(self) -> None:
        """Stop it as ``systemctl stop docker`` does (SIGTERM), and wait until it is gone."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)  # nsenter execs dockerd itself
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "-H", self.host, *args],
            capture_output=True, text=True, check=check, timeout=300,
        )  # fmt: skip

    def copy_images(self, references: list[str]) -> None:
        """``docker save`` from the main Engine, ``docker load`` into this one."""
        save = subprocess.Popen(["docker", "save", *references], stdout=subprocess.PIPE)
        loaded = subprocess.run(
            ["docker", "-H", self.host, "load"],
            stdin=save.stdout, capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
        assert save.stdout is not None
        save.stdout.close()
        assert save.wait() == 0 and loaded.returncode == 0, loaded.stderr

    def remove_everything(self) -> None:
        if self.process is None:
            return
        ids = self.docker("ps", "-aq", check=False).stdout.split()
        if ids:
            self.docker("rm", "-f", "-v", *ids, check=False)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def second_dockerd(workdir: Path, socket_path: Path) -> Iterator[SecondDockerd]:
    """Start a :class:`SecondDockerd`; at the end stop it and remove all it had."""
    daemon = SecondDockerd(workdir, socket_path)
    _ip("netns", "add", daemon.namespace)
    try:
        subprocess.run(
            daemon.in_namespace(["ip", "link", "set", "lo", "up"]), check=True, timeout=30
        )
        daemon.start()
        yield daemon
    finally:
        daemon.remove_everything()
        daemon.stop()
        subprocess.run(["ip", "netns", "del", daemon.namespace], capture_output=True, check=False)
        shutil.rmtree(daemon.root, ignore_errors=True)
        shutil.rmtree(daemon.exec_root, ignore_errors=True)
