"""Running the real ``codequal-installer apply`` against the real Docker Engine, for tests.

An :class:`Install` is one installation in its own temporary ``install_dir`` (so its own
Compose project, ``codequal-<dir>-<hash>``): it writes answer and secrets files, runs
``apply``/``status`` as a subprocess exactly as an operator would (``--json`` so the test
reads the events), can stop a run at a chosen event with SIGKILL or SIGINT, and at the
end removes every container, network and volume of its project and scans every log,
event stream and result file it saw for the secret values in play.

Tests that publish host ports (80, 443, 3000, 8002) hold :func:`host_ports_lock` so that
they never overlap, even with another test process on the same machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import TEST_RELEASES_DIR

REPO = Path(__file__).resolve().parents[2]
PORTS_LOCK = Path(os.environ.get("CODEQUAL_TEST_PORTS_LOCK", "/tmp/codequal-test-host-ports.lock"))
DOMAIN = "codequal.test"
# Hardware and host checks a small test VM fails, skipped by name as an operator would.
SKIPPED_CHECKS = ["cpu", "memory", "disk", "docker_disk", "os", "cgroup", "dns"]


@contextlib.contextmanager
def host_ports_lock(timeout: float = 1800) -> Iterator[None]:
    """Hold the machine-wide lock of the host ports the installs publish."""
    PORTS_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(PORTS_LOCK, "a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{PORTS_LOCK} held for {timeout:.0f}s") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class ApplyRun:
    """One finished ``apply`` (or ``status``) subprocess."""

    exit_code: int
    stdout: str
    stderr: str
    events: list[dict[str, Any]]

    @property
    def last(self) -> dict[str, Any]:
        return self.events[-1] if self.events else {}

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    def step_messages(self, step: str) -> list[str]:
        return [str(e.get("message")) for e in self.events if e.get("step") == step]

    def describe(self) -> str:
        return (
            f"exit {self.exit_code}\nstdout:\n{self.stdout[-6000:]}\nstderr:\n{self.stderr[-3000:]}"
        )


def parse_events(text: str) -> list[dict[str, Any]]:
    events = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
    return events


@dataclass
class Install:
    """An installation under test; see the module documentation."""

    root: Path
    install_dir: Path
    docker: Any
    secrets: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    transcripts: list[str] = field(default_factory=list)
    extra_projects: list[str] = field(default_factory=list)

    # -- inputs ---------------------------------------------------------------------------

    def answers(self, target: str = "production", **sections: Any) -> Path:
        """Write an answer file (YAML is JSON's superset, so JSON it is) and return its path."""
        document: dict[str, Any] = {
            "version": 1,
            "target": target,
            "install_dir": str(self.install_dir),
            "monitoring": {"enabled": False},
            "release": {"version": "1.0.0-test"},
            "checks": {"skip": list(SKIPPED_CHECKS)},
        }
        if target != "development":
            document["domain"] = DOMAIN
        document.update(sections)
        path = self.root / f"answers-{len(list(self.root.glob('answers-*')))}.yaml"
        path.write_text(json.dumps(document, indent=2))
        return path

    def secrets_file(self, **values: str) -> Path:
        self.secrets.update(values)
        path = self.root / "secrets.yaml"
        path.write_text(json.dumps(values, indent=2))
        path.chmod(0o600)
        return path

    def environment(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env["CODEQUAL_RELEASES_DIR"] = str(TEST_RELEASES_DIR)
        env["PYTHONPATH"] = str(REPO)
        env.update(self.env)
        env.update(extra)
        return env

    # -- running the installer ------------------------------------------------------------

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "installer", *args]

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 900) -> ApplyRun:
        result = subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            env=env or self.environment(),
            cwd=self.root,
            timeout=timeout,
            check=False,
        )
        self.transcripts += [result.stdout, result.stderr]
        events = parse_events(result.stdout)
        return ApplyRun(result.returncode, result.stdout, result.stderr, events)

    def apply(
        self,
        answers: Path,
        *extra: str,
        secrets: Path | None = None,
        env: dict[str, str] | None = None,
        json_events: bool = True,
    ) -> ApplyRun:
        args = ["apply", "--answers", str(answers), "--yes", *extra]
        if json_events:
            args.append("--json")
        if secrets is not None:
            args += ["--secrets", str(secrets)]
        return self.run(*args, env=env)

    def apply_until(
        self,
        answers: Path,
        stop_at: Callable[[dict[str, Any]], bool],
        *,
        send: int = signal.SIGKILL,
        secrets: Path | None = None,
        timeout: float = 600,
    ) -> ApplyRun:
        """Run ``apply --json`` and send ``send`` to it at the first event ``stop_at`` likes."""
        args = ["apply", "--answers", str(answers), "--yes", "--json"]
        if secrets is not None:
            args += ["--secrets", str(secrets)]
        process = subprocess.Popen(
            self.command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.environment(),
            cwd=self.root,
        )
        assert process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        signalled = False
        for line in process.stdout:
            lines.append(line)
            with contextlib.suppress(ValueError):
                if not signalled and stop_at(json.loads(line)):
                    process.send_signal(send)
                    signalled = True
                    if send == signal.SIGKILL:
                        break
            if time.monotonic() > deadline:
                process.kill()
                break
        rest, errors = process.communicate(timeout=120)
        stdout = "".join(lines) + (rest or "")
        self.transcripts += [stdout, errors]
        if not signalled:
            raise AssertionError(f"the run ended before the chosen event:\n{stdout}\n{errors}")
        return ApplyRun(process.returncode, stdout, errors, parse_events(stdout))

    # -- looking at the result -------------------------------------------------------------

    @property
    def state(self) -> Path:
        return self.install_dir / "state"

    def result(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.state / "result.json").read_text())
        return data

    def journal(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.state / "journal.json").read_text())
        return data

    @property
    def project(self) -> str:
        from installer.answers import AnswerFile

        answers = AnswerFile.model_validate(
            {"version": 1, "target": "development", "install_dir": str(self.install_dir)}
        )
        return answers.compose_project

    def containers(self, *, all_: bool = True) -> list[Any]:
        return list(
            self.docker.containers.list(
                all=all_, filters={"label": [f"com.docker.compose.project={self.project}"]}
            )
        )

    def containers_by_service(self) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for container in self.containers():
            labels = container.labels
            key = labels.get("com.docker.compose.service", "?")
            if labels.get("com.docker.compose.oneoff", "False") == "True":
                key += " (one-off)"
            out.setdefault(key, []).append(container)
        return out

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Plain ``docker compose`` in the install directory, as the operator runs it."""
        return subprocess.run(
            ["docker", "compose", *args],
            cwd=self.install_dir,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )

    def tls_context(self) -> ssl.SSLContext:
        """Trusting exactly the installation's own certificate (verification stays on)."""
        return ssl.create_default_context(cafile=str(self.install_dir / "nginx/ssl/codequal.crt"))

    def https_get(self, path: str) -> tuple[int, Any]:
        """GET through nginx on 127.0.0.1:443 as codequal.test."""
        return _request(self.tls_context(), "GET", path)

    def https_post(self, path: str, body: str) -> tuple[int, Any]:
        return _request(self.tls_context(), "POST", path, body)

    def psql(self, sql: str) -> str:
        """A query in the installation's PostgreSQL container, as its superuser."""
        container = self.containers_by_service()["postgres"][0]
        code, output = container.exec_run(["psql", "-U", "codequal", "-d", "codequal", "-tAc", sql])
        assert code == 0, output
        return str(output.decode()).strip()

    # -- the end ----------------------------------------------------------------------------

    def secret_values(self) -> set[str]:
        values = {v for v in self.secrets.values() if v}
        generated = self.state / "generated-secrets.json"
        if generated.is_file():
            values |= set(json.loads(generated.read_text()).values())
        key = self.install_dir / "nginx/ssl/codequal.key"
        if key.is_file():
            values |= {line for line in key.read_text().splitlines() if len(line) > 20}
        tls_key = self.state / "tls" / "self-signed.key"
        if tls_key.is_file():
            values |= {line for line in tls_key.read_text().splitlines() if len(line) > 20}
        return {v for v in values if len(v) >= 8 and not v.startswith("-----")}

    def scanned_texts(self) -> dict[str, str]:
        """Every log, event stream and result file this install produced."""
        texts = {f"transcript {i}": t for i, t in enumerate(self.transcripts) if t}
        for pattern in ("logs/*.log", "result.json", "journal.json", "previous/snapshot.json"):
            for path in self.state.glob(pattern):
                texts[str(path)] = path.read_text(errors="replace")
        return texts

    def assert_no_secret_leaked(self) -> None:
        values = self.secret_values()
        leaks = [
            f"{where} holds a secret ({value[:3]}…)"
            for where, text in self.scanned_texts().items()
            for value in values
            if value in text
        ]
        assert not leaks, "\n".join(leaks)

    def teardown(self) -> None:
        for project in [self.project, *self.extra_projects]:
            subprocess.run(
                ["docker", "compose", "-p", project, "down", "-v", "--remove-orphans", "-t", "2"],
                capture_output=True,
                check=False,
                timeout=300,
            )
            label = {"label": [f"com.docker.compose.project={project}"]}
            for container in self.docker.containers.list(all=True, filters=label):
                with contextlib.suppress(Exception):
                    container.remove(force=True, v=True)
            for volume in self.docker.volumes.list(filters=label):
                with contextlib.suppress(Exception):
                    volume.remove(force=True)
            for network in self.docker.networks.list(filters=label):
                with contextlib.suppress(Exception):
                    network.remove()


def _request(
    context: ssl.SSLContext, method: str, path: str, body: str | None = None
) -> tuple[int, Any]:
    sock = socket.create_connection(("127.0.0.1", 443), timeout=10)
    tls = context.wrap_socket(sock, server_hostname=DOMAIN)
    connection = http.client.HTTPSConnection(DOMAIN, 443, context=context, timeout=10)
    connection.sock = tls
    try:
        headers = {"Host": DOMAIN}
        if body is not None:
            headers["Content-Type"] = "text/plain"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        raw = response.read().decode()
    finally:
        connection.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, raw


def one_container_per_service(install: Install) -> dict[str, int]:
    """Container count per service (one-off containers counted apart)."""
    return {service: len(found) for service, found in install.containers_by_service().items()}
