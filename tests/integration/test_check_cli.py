"""``codequal-installer check`` on this machine: the real Engine, Compose, sockets and ports.

Each test runs the installed command as an operator would and reads its JSON (or its
table). The stopped-daemon case points the client at a socket where no daemon listens
(the shared dockerd keeps running for everyone else), which is exactly what the client
sees when the daemon is down.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from installer.answers import CHECK_NAMES
from installer.checks.catalog import MACHINE_CHECK_NAMES
from tests.integration.apply_support import host_ports_lock
from tests.support.fake_kube_api import FakeKubeAPI, Node

pytestmark = pytest.mark.integration

EXE = str(Path(sys.executable).with_name("codequal-installer"))
FIELDS = {"name", "status", "measured", "required", "hint", "reason", "details"}


def run_check(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, "check", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def report_of(completed: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert "Traceback" not in completed.stderr, completed.stderr
    data: dict[str, Any] = json.loads(completed.stdout)
    return data


def check_of(report: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [c for c in report["checks"] if c["name"] == name]
    assert len(matches) == 1, name
    return matches[0]


def only(*names: str) -> list[str]:
    """--skip arguments for every check but ``names``."""
    args: list[str] = []
    for name in CHECK_NAMES:
        if name not in names:
            args += ["--skip", name]
    return args


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The caller's environment with a fresh cache (so Compose's version is really asked)."""
    environment = dict(os.environ)
    environment["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    environment.pop("DOCKER_HOST", None)
    environment["KUBECONFIG"] = str(tmp_path / "no-kubeconfig")
    return environment


def _docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


# --------------------------------------------------------------------------- acceptance 1


def test_json_lists_every_check_with_its_values(env: dict[str, str], tmp_path: Path) -> None:
    completed = run_check("--json", env=env)
    report = report_of(completed)

    assert [c["name"] for c in report["checks"]] == list(MACHINE_CHECK_NAMES)
    for check in report["checks"]:
        assert set(check) == FIELDS
        assert check["status"] in ("pass", "warn", "fail", "skipped")
        if check["status"] in ("warn", "fail"):
            assert check["hint"], check
            assert check["measured"] and check["required"], check
        if check["status"] == "skipped":
            assert check["reason"], check
    assert completed.returncode == (3 if report["failed"] else 0), completed.stderr
    assert report["failed"] == any(c["status"] == "fail" for c in report["checks"])

    # The measurements are this machine's.
    cpu = check_of(report, "cpu")
    assert cpu["details"]["logical"] == os.cpu_count()
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    assert check_of(report, "memory")["details"]["total_bytes"] == (
        int(meminfo["MemTotal"].split()[0]) * 1024
    )
    docker = check_of(report, "docker")
    assert docker["status"] in ("pass", "warn"), docker
    assert docker["details"]["version"] == _docker("version", "--format", "{{.Server.Version}}")
    assert docker["details"]["storage_driver"] == _docker("info", "--format", "{{.Driver}}")
    docker_root = _docker("info", "--format", "{{.DockerRootDir}}")
    assert check_of(report, "docker_disk")["details"]["path"] == docker_root
    compose = check_of(report, "compose")
    assert compose["status"] in ("pass", "warn"), compose
    assert compose["details"]["version"] == _docker("compose", "version", "--short").lstrip("v")
    os_release = Path("/etc/os-release").read_text()
    assert check_of(report, "os")["details"]["id"] in os_release
    assert check_of(report, "kernel")["measured"] == os.uname().release
    assert check_of(report, "dns")["measured"].startswith("localhost -> ")
    assert check_of(report, "kubernetes")["reason"] == "not used by the development target"
    assert report["environment"]["container_runtimes"][0] == "docker"
    assert report["capacity"]["cpus"] == os.cpu_count()

    # Compose's version is remembered for the next run, and the next run agrees.
    assert (tmp_path / "cache/codequal-installer/compose-version.json").is_file()
    again = report_of(run_check("--json", *only("compose"), env=env))
    assert check_of(again, "compose")["details"]["version"] == compose["details"]["version"]


def test_docker_stopped_fails_with_how_to_start_it(env: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix="cq-") as directory:
        endpoint = f"unix://{directory}/nonexistent-{uuid.uuid4().hex[:8]}.sock"
        completed = run_check("--json", *only("docker"), env={**env, "DOCKER_HOST": endpoint})
    report = report_of(completed)
    docker = check_of(report, "docker")
    assert docker["status"] == "fail"
    assert docker["measured"] == f"not reachable at {endpoint}: no such socket"
    assert "sudo systemctl start docker" in docker["hint"]
    assert "sudo dockerd" in docker["hint"]
    assert endpoint in docker["hint"]  # DOCKER_HOST chose it: say so
    assert completed.returncode == 3
    assert "1 prerequisite check failed: docker" in completed.stderr

    # The same checks against the running daemon do not fail: it was the daemon.
    running = run_check("--json", *only("docker"), env=env)
    assert running.returncode == 0, running.stdout + running.stderr
    assert check_of(report_of(running), "docker")["status"] in ("pass", "warn")


def test_a_dead_daemons_socket_fails_the_same_way(env: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix="cq-") as directory:
        path = f"{directory}/docker.sock"
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(path)  # the socket file stays, nothing accepts: a daemon that crashed
        try:
            completed = run_check(
                "--json", *only("docker"), env={**env, "DOCKER_HOST": f"unix://{path}"}
            )
        finally:
            stale.close()
    docker = check_of(report_of(completed), "docker")
    assert docker["measured"].endswith("connection refused")
    assert "systemctl start docker" in docker["hint"]
    assert completed.returncode == 3


def test_table_for_people(env: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix="cq-") as directory:
        completed = run_check(
            *only("docker"),
            env={**env, "COLUMNS": "200", "DOCKER_HOST": f"unix://{directory}/none.sock"},
        )
    assert completed.returncode == 3
    out = completed.stdout
    assert "Prerequisites for the development target (minimal profile)" in out
    for name in MACHINE_CHECK_NAMES:
        assert name in out
    assert "sudo systemctl start docker" in out
    assert "skipped by --skip" in out
    assert "0 passed, 0 warned, 1 failed, 13 skipped" in out
    assert "Environment: runtimes:" in out
    assert completed.stderr.startswith("error: 1 prerequisite check failed: docker")


# --------------------------------------------------------------------------- acceptance 2


@pytest.fixture
def port_3000_held() -> Iterator[subprocess.Popen[str]]:
    """Another process listening on 127.0.0.1:3000 (under the host-ports lock that the
    install tests hold too, so no test of ours publishes 3000 meanwhile)."""
    holder = (
        "import socket, sys, time\n"
        "s = socket.socket()\n"
        # as any server does: connections an earlier test made to 127.0.0.1:3000 may still be
        # in TIME_WAIT, which holds the port for a plain bind (never an active listener)
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "try:\n"
        "    s.bind(('127.0.0.1', 3000))\n"
        "except OSError as e:\n"
        "    print('busy', e, flush=True); sys.exit(1)\n"
        "s.listen()\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    with host_ports_lock():
        process = subprocess.Popen(
            [sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            if line != "ready":
                pytest.fail(
                    f"port 3000 on 127.0.0.1 is already taken here ({line}): this test needs it",
                    pytrace=False,
                )
            yield process
        finally:
            process.kill()
            process.wait(timeout=10)


def test_a_listener_on_port_3000_fails_the_ports_check(
    env: dict[str, str], port_3000_held: subprocess.Popen[str]
) -> None:
    completed = run_check("--json", *only("ports"), env=env)
    report = report_of(completed)
    ports = check_of(report, "ports")
    name = psutil.Process(port_3000_held.pid).name()
    assert ports["status"] == "fail"
    assert (
        f"port 3000 (for codequal API) is in use by {name} (pid {port_3000_held.pid}) on 127.0.0.1"
    ) in ports["measured"]
    assert "stop what holds port 3000" in ports["hint"]
    assert {"port": 3000, "address": "127.0.0.1", "pid": port_3000_held.pid, "process": name} in (
        ports["details"]["in_use"]
    )
    assert completed.returncode == 3


# --------------------------------------------------------------------------- answer files


def _answers(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "answers.yaml"
    path.write_text(text)
    return path


def test_the_answer_file_decides_target_paths_ports_and_skips(
    env: dict[str, str], tmp_path: Path
) -> None:
    install_dir = tmp_path / "install"
    install_dir.mkdir()
    (install_dir / "notes.txt").write_text("not ours")
    answers = _answers(
        tmp_path,
        f"version: 1\ntarget: development\ninstall_dir: {install_dir}\n"
        "monitoring: {enabled: false}\nchecks: {skip: [cpu, memory]}\n",
    )
    completed = run_check("--answers", str(answers), "--json", env=env)
    report = report_of(completed)
    assert report["target"] == "development"
    for name in ("cpu", "memory"):
        assert check_of(report, name)["status"] == "skipped"
        assert check_of(report, name)["reason"] == "skipped by checks.skip in the answer file"
    assert check_of(report, "ports")["details"]["required_ports"] == [3000, 8002]
    install = check_of(report, "install_dir")
    assert install["status"] == "warn"  # writable, but holds a file that is not ours
    assert "notes.txt" in install["measured"]
    assert check_of(report, "disk")["details"]["measured_at"] == str(install_dir)
    assert list(install_dir.iterdir()) == [install_dir / "notes.txt"]  # nothing left behind


def test_conflicting_target_and_answer_file_is_a_usage_error(
    env: dict[str, str], tmp_path: Path
) -> None:
    answers = _answers(tmp_path, "version: 1\ntarget: development\n")
    completed = run_check("--answers", str(answers), "--target", "production", env=env)
    assert completed.returncode == 2
    assert "--target production differs from the answer file's target development" in (
        completed.stderr
    )
    assert "Traceback" not in completed.stderr


def test_an_invalid_answer_file_is_reported_by_line(env: dict[str, str], tmp_path: Path) -> None:
    answers = _answers(tmp_path, "version: 1\ntarget: development\nchecks: {skip: [gpu]}\n")
    completed = run_check("--answers", str(answers), env=env)
    assert completed.returncode == 2
    assert f"{answers}:3:" in completed.stderr
    assert "checks.skip" in completed.stderr


def test_unknown_skip_name_is_a_usage_error(env: dict[str, str]) -> None:
    completed = run_check("--skip", "gpu", env=env)
    assert completed.returncode == 2
    assert "'gpu' is not one of" in completed.stderr


# --------------------------------------------------------------------------- Kubernetes


def _kube_env(env: dict[str, str], api: FakeKubeAPI, tmp_path: Path) -> dict[str, str]:
    config = api.write_kubeconfig(tmp_path / "kubeconfig")
    return {**env, "KUBECONFIG": str(config)}


def test_kubernetes_target_reads_the_cluster(env: dict[str, str], tmp_path: Path) -> None:
    with FakeKubeAPI(
        version="v1.30.4", nodes=[Node(f"n{i}", 8000, 32 << 30) for i in range(3)]
    ) as api:
        completed = run_check("--target", "kubernetes", "--json", env=_kube_env(env, api, tmp_path))
    report = report_of(completed)
    kubernetes = check_of(report, "kubernetes")
    assert kubernetes["status"] == "pass", kubernetes
    assert kubernetes["details"]["version"] == "1.30.4"
    assert kubernetes["details"]["server"] == api.url
    # What pods may use: each node's allocatable (8 CPUs less the 100m the kubelet keeps).
    assert check_of(report, "cpu")["measured"] == "3 nodes: 7.9, 7.9, 7.9 CPUs"
    assert check_of(report, "memory")["status"] == "pass"
    assert check_of(report, "architecture")["measured"] == "nodes: amd64"
    for name in ("docker", "compose", "ports", "install_dir", "disk"):
        assert check_of(report, name)["reason"] == "not used by the kubernetes target"
    assert report["environment"]["kubernetes_flavour"] == "kubernetes"
    assert report["capacity"] == {"cpus": 7.9, "memory_bytes": (32 << 30) - (512 << 20)}
    assert completed.returncode == 0, completed.stderr


def test_openshift_is_recognised_by_its_api_groups(env: dict[str, str], tmp_path: Path) -> None:
    answers = _answers(
        tmp_path,
        "version: 1\ntarget: enterprise\ndomain: codequal.corp.example\n"
        "database: {managed: true, host: db.corp.example}\nkubernetes: {openshift: true}\n"
        "checks: {skip: [dns, database]}\n",  # db.corp.example is nowhere: not this test's
    )
    with FakeKubeAPI(
        openshift=True, nodes=[Node(f"n{i}", 16000, 64 << 30) for i in range(3)]
    ) as api:
        completed = run_check(
            "--answers", str(answers), "--json", env=_kube_env(env, api, tmp_path)
        )
    report = report_of(completed)
    assert report["environment"]["kubernetes_flavour"] == "openshift"
    kubernetes = check_of(report, "kubernetes")
    assert kubernetes["status"] == "pass", kubernetes
    assert kubernetes["measured"].startswith("OpenShift v1.30.4")
    assert completed.returncode == 0, completed.stderr

    with FakeKubeAPI(nodes=[Node(f"n{i}", 16000, 64 << 30) for i in range(3)]) as plain:
        mismatch = run_check(
            "--answers", str(answers), "--json", env=_kube_env(env, plain, tmp_path)
        )
    assert check_of(report_of(mismatch), "kubernetes")["status"] == "fail"
    assert mismatch.returncode == 3


def test_an_old_cluster_and_unlisted_nodes(env: dict[str, str], tmp_path: Path) -> None:
    with FakeKubeAPI(version="v1.24.17") as api:
        api.deny("list", "nodes")
        completed = run_check("--target", "kubernetes", "--json", env=_kube_env(env, api, tmp_path))
    report = report_of(completed)
    assert check_of(report, "kubernetes")["status"] == "fail"
    assert "upgrade the cluster" in check_of(report, "kubernetes")["hint"]
    cpu = check_of(report, "cpu")
    assert cpu["status"] == "warn"
    assert "HTTP 403" in cpu["measured"]
    assert completed.returncode == 3


def test_refused_credentials(env: dict[str, str], tmp_path: Path) -> None:
    with FakeKubeAPI() as api:
        kube_env = _kube_env(env, api, tmp_path)
        config = Path(kube_env["KUBECONFIG"])
        config.write_text(config.read_text().replace(api.token, "expired-token"))
        completed = run_check("--target", "kubernetes", "--json", env=kube_env)
    kubernetes = check_of(report_of(completed), "kubernetes")
    assert kubernetes["status"] == "fail"
    assert kubernetes["details"]["error"] == "unauthorized"
    assert "credentials were refused" in kubernetes["hint"]


def test_no_cluster_listening(env: dict[str, str], tmp_path: Path) -> None:
    with FakeKubeAPI() as api:
        kube_env = _kube_env(env, api, tmp_path)
    completed = run_check("--target", "kubernetes", "--json", env=kube_env)  # server gone
    report = report_of(completed)
    kubernetes = check_of(report, "kubernetes")
    assert kubernetes["status"] == "fail"
    assert kubernetes["details"]["error"] == "unreachable"
    assert check_of(report, "cpu")["reason"] == "not measured: the cluster could not be reached"
    assert completed.returncode == 3


def test_no_kubeconfig(env: dict[str, str]) -> None:
    completed = run_check("--target", "kubernetes", "--json", env=env)
    kubernetes = check_of(report_of(completed), "kubernetes")
    assert kubernetes["details"]["error"] == "no_config"
    assert "KUBECONFIG" in kubernetes["hint"]


def test_a_cluster_that_never_answers_times_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from installer.checks import HostProbe, Timeouts, run_prerequisites

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # connections are accepted by the kernel, never answered
    port = silent.getsockname()[1]
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: silent\n"
        f"clusters: [{{name: s, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: silent, context: {cluster: s, user: u}}]\n"
    )
    # Import the client first with another KUBECONFIG, as a long-lived process would have:
    # the probe must read the variable as it is now, not as it was at import time.
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    import kubernetes.config

    monkeypatch.setenv("KUBECONFIG", str(config))
    try:
        report = run_prerequisites(
            "kubernetes",
            probe=HostProbe(),
            timeouts=Timeouts(kubernetes=0.5, kubernetes_import=10),
        )
    finally:
        silent.close()
    kubernetes = report.result("kubernetes")
    assert kubernetes.status == "fail"
    assert kubernetes.details["error"] == "timeout"
    assert "did not answer in time" in (kubernetes.hint or "")
