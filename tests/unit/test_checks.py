"""Every prerequisite check through pass, warn and fail, with injected probe results.

A :class:`StubProbe` stands in for the machine: its fields are the raw measurements, set
per test. Its defaults are a machine that passes every development check, so each test
changes only what it is about.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from installer.answers import AnswerFile
from installer.checks import PrerequisiteReport, Timeouts, run_prerequisites
from installer.checks.catalog import MACHINE_CHECK_NAMES
from installer.checks.detect import Environment
from installer.checks.probes import (
    CgroupInfo,
    ComposeInfo,
    CpuInfo,
    DiskInfo,
    DockerInfo,
    KubernetesInfo,
    Listener,
    ListenerScan,
    MemoryInfo,
    NodeInfo,
    OsInfo,
    Resolution,
    WriteAccess,
)
from installer.checks.requirements import MEMORY_TOLERANCE, Requirements, host_ports
from installer.errors import ExitCode, PrerequisiteError, UsageError
from installer.resources import GIB

ENVIRONMENT = Environment(
    container_runtimes=("docker",),
    in_container=None,
    container_evidence=None,
    kubernetes_flavour=None,
    cloud="aws",
    cloud_evidence="DMI sys_vendor: Amazon EC2",
    airgapped=False,
    airgap_evidence="registry-1.docker.io resolves",
)


def docker_ok(**changes: Any) -> DockerInfo:
    base = DockerInfo(
        "unix:///var/run/docker.sock",
        reachable=True,
        version="27.3.1",
        api_version="1.47",
        storage_driver="overlay2",
        root_dir="/var/lib/docker",
        cgroup_version=2,
        memory_limit=True,
    )
    return dataclasses.replace(base, **changes)


@dataclass
class StubProbe:
    """Injected measurements; records which probes ran."""

    cpu_info: CpuInfo = field(default_factory=lambda: CpuInfo(logical=8, physical=8))
    memory_info: MemoryInfo = field(
        default_factory=lambda: MemoryInfo(32 * GIB, available_bytes=28 * GIB)
    )
    disks: dict[str, DiskInfo] = field(default_factory=dict)
    os_info: OsInfo = field(
        default_factory=lambda: OsInfo(
            "Linux", "ubuntu", ("debian",), "22.04", "Ubuntu 22.04.4 LTS"
        )
    )
    kernel_release: str = "6.8.0-45-generic"
    machine: str = "x86_64"
    cgroup_info: CgroupInfo = field(
        default_factory=lambda: CgroupInfo(2, frozenset({"cpu", "memory", "pids", "io"}))
    )
    docker_info: DockerInfo = field(default_factory=docker_ok)
    compose_info: ComposeInfo = field(
        default_factory=lambda: ComposeInfo(
            "/usr/libexec/docker/cli-plugins/docker-compose", "2.29.7"
        )
    )
    scan: ListenerScan = field(default_factory=ListenerScan)
    resolutions: dict[str, Resolution] = field(default_factory=dict)
    kubernetes_info: KubernetesInfo = field(
        default_factory=lambda: KubernetesInfo(
            True,
            "prod",
            "https://10.0.0.1:6443",
            version="1.30.4",
            git_version="v1.30.4",
            api_groups=("apps", "autoscaling", "networking.k8s.io"),
            nodes=tuple(NodeInfo(f"node-{i}", 8, 32 * GIB, "amd64") for i in range(3)),
        )
    )
    access: WriteAccess | None = None
    calls: list[str] = field(default_factory=list)
    ports_asked: list[int] = field(default_factory=list)
    # Set to make the named slow probe wait for this barrier (proves concurrency) or
    # block on this event (proves the timeout).
    barrier: threading.Barrier | None = None
    barrier_probes: frozenset[str] = frozenset()
    block: threading.Event | None = None
    block_probes: frozenset[str] = frozenset()
    broken: frozenset[str] = frozenset()

    def _enter(self, name: str) -> None:
        self.calls.append(name)
        if name in self.broken:
            raise RuntimeError(f"{name} probe bug")
        if self.barrier is not None and name in self.barrier_probes:
            self.barrier.wait()
        if self.block is not None and name in self.block_probes:
            self.block.wait()

    def cpu(self) -> CpuInfo:
        self._enter("cpu")
        return self.cpu_info

    def memory(self) -> MemoryInfo:
        self._enter("memory")
        return self.memory_info

    def disk(self, path: str) -> DiskInfo:
        self._enter("disk")
        if path in self.disks:
            return self.disks[path]
        device = 1 if path.startswith("/var/lib/docker") else 2
        return DiskInfo(path, path, 400 * GIB, 500 * GIB, device)

    def operating_system(self) -> OsInfo:
        self._enter("os")
        return self.os_info

    def kernel(self) -> str:
        self._enter("kernel")
        return self.kernel_release

    def architecture(self) -> str:
        self._enter("architecture")
        return self.machine

    def cgroup(self) -> CgroupInfo:
        self._enter("cgroup")
        return self.cgroup_info

    def docker(self, timeout: float) -> DockerInfo:
        self._enter("docker")
        return self.docker_info

    def compose(self, timeout: float) -> ComposeInfo:
        self._enter("compose")
        return self.compose_info

    def listeners(self, ports: Collection[int]) -> ListenerScan:
        self._enter("ports")
        self.ports_asked = sorted(ports)
        return self.scan

    def resolve(self, host: str, timeout: float, *, compare_local: bool = False) -> Resolution:
        self._enter("registry" if host == "registry-1.docker.io" else "dns")
        if host in self.resolutions:
            return self.resolutions[host]
        return Resolution(host, ("203.0.113.10",), local_addresses=("203.0.113.10", "10.0.0.5"))

    def kubernetes(self, context: str | None, timeout: float) -> KubernetesInfo:
        self._enter("kubernetes")
        return self.kubernetes_info

    def write_access(self, path: str) -> WriteAccess:
        self._enter("install_dir")
        if self.access is not None:
            return self.access
        return WriteAccess(path, exists=False, is_dir=False, writable=True, checked_at="/opt")

    def environment(
        self,
        docker: DockerInfo | None,
        kubernetes: KubernetesInfo | None,
        registry: Resolution | None,
    ) -> Environment:
        self._enter("environment")
        return ENVIRONMENT


def answers(target: str = "production", **sections: Any) -> AnswerFile:
    data: dict[str, Any] = {"version": 1, "target": target}
    if target != "development":
        data["domain"] = "codequal.example.com"
    if target in ("kubernetes", "enterprise"):
        data.setdefault("database", {"managed": True, "host": "db.example.com"})
    data.update(sections)
    return AnswerFile.model_validate(data)


def run(subject: AnswerFile | str = "development", **probe_fields: Any) -> PrerequisiteReport:
    skip = probe_fields.pop("skip", ())
    probe = StubProbe(**probe_fields)
    return run_prerequisites(subject, skip=skip, probe=probe)


def verdict(report: PrerequisiteReport, name: str) -> str:
    return report.result(name).status


# --------------------------------------------------------------------------- the defaults


def test_a_good_machine_passes_every_development_check() -> None:
    report = run("development")
    statuses = {r.name: r.status for r in report.results}
    assert statuses == {
        **{name: "pass" for name in MACHINE_CHECK_NAMES},
        "kubernetes": "skipped",
    }
    assert not report.failed
    assert report.result("kubernetes").reason == "not used by the development target"
    for result in report.results:
        if result.status == "pass":
            assert result.hint is None
            assert result.measured and result.required, result.name


def test_every_check_is_reported_in_a_fixed_order() -> None:
    assert [r.name for r in run("development").results] == list(MACHINE_CHECK_NAMES)
    assert [r.name for r in run(answers("kubernetes")).results] == list(MACHINE_CHECK_NAMES)


# --------------------------------------------------------------------------- cpu


@pytest.mark.parametrize(
    ("target", "cpus", "status"),
    [
        ("development", 4, "pass"),
        ("development", 3, "fail"),
        ("production", 8, "pass"),
        ("production", 6, "warn"),
        ("production", 4, "warn"),
        ("production", 3, "fail"),
    ],
)
def test_cpu(target: str, cpus: int, status: str) -> None:
    report = run(target, cpu_info=CpuInfo(cpus, cpus))
    result = report.result("cpu")
    assert result.status == status
    assert result.measured == f"{cpus} CPUs"
    assert result.details["logical"] == cpus
    if status == "fail":
        assert "at least 4 CPUs" in (result.hint or "")
        assert "--skip cpu" in (result.hint or "")
    if status == "warn":
        assert "expects 8 CPUs" in (result.hint or "")


def test_cpu_shows_physical_cores_when_they_differ() -> None:
    result = run(cpu_info=CpuInfo(8, 4)).result("cpu")
    assert result.measured == "8 CPUs (4 physical cores)"


# --------------------------------------------------------------------------- memory


@pytest.mark.parametrize(
    ("target", "gib", "status"),
    [
        ("development", 8.0, "pass"),
        ("development", 7.8, "pass"),  # an "8 GB" VM as the kernel reports it
        ("development", 7.36, "pass"),  # exactly the 8 % tolerance
        ("development", 7.35, "fail"),  # just below it
        ("development", 7.0, "fail"),  # a whole GiB short is not rounding
        ("development", 3.8, "fail"),
        ("production", 15.6, "pass"),
        ("production", 14.72, "pass"),
        ("production", 14.7, "warn"),
        ("production", 7.8, "warn"),
        ("production", 7.3, "fail"),
    ],
)
def test_memory_with_the_kernel_tolerance(target: str, gib: float, status: str) -> None:
    total = round(gib * GIB)
    report = run(target, memory_info=MemoryInfo(total, available_bytes=total))
    result = report.result("memory")
    assert result.status == status, result
    assert result.details["tolerance"] == MEMORY_TOLERANCE == 0.08
    if status == "fail":
        assert "at least 8 GiB" in (result.hint or "")


def test_memory_required_text_names_the_tolerance() -> None:
    assert run().result("memory").required == (
        "8 GiB, kernel-reported 7.36 GiB passes (minimal profile)"
    )


def test_memory_warns_when_other_programs_use_most_of_it() -> None:
    result = run(memory_info=MemoryInfo(16 * GIB, available_bytes=3 * GIB)).result("memory")
    assert result.status == "warn"
    assert "only 3 GiB is free" in (result.hint or "")


def test_explicit_profile_overrides_the_target_default() -> None:
    small = {"cpu_info": CpuInfo(4, 4), "memory_info": MemoryInfo(8 * GIB, 8 * GIB)}
    assert verdict(run(answers("production"), **small), "cpu") == "warn"
    minimal = answers("production", resources={"profile": "minimal"})
    assert verdict(run(minimal, **small), "cpu") == "pass"
    assert verdict(run(minimal, **small), "memory") == "pass"


# --------------------------------------------------------------------------- disks


def _disk(path: str, free_gib: float, total_gib: float = 500, device: int = 2) -> DiskInfo:
    return DiskInfo(path, path, round(free_gib * GIB), round(total_gib * GIB), device)


def test_disks_on_separate_file_systems_are_judged_separately() -> None:
    report = run(
        disks={
            "/opt/codequal": _disk("/opt/codequal", 3, 5, device=2),
            "/var/lib/docker": _disk("/var/lib/docker", 25, 40, device=1),
        }
    )
    assert verdict(report, "disk") == "pass"  # 2 GiB for install_dir
    assert verdict(report, "docker_disk") == "pass"  # 20 GiB for images and volumes
    assert report.result("disk").details["shared_with_docker"] is False


def test_one_file_system_must_hold_both_needs() -> None:
    shared = {
        "/opt/codequal": _disk("/opt/codequal", 21, device=7),
        "/var/lib/docker": _disk("/var/lib/docker", 21, device=7),
    }
    report = run(disks=shared)
    assert verdict(report, "disk") == "fail"  # 21 < 20 + 2
    assert verdict(report, "docker_disk") == "fail"
    assert report.result("disk").details["required_bytes"] == 22 * GIB
    assert "free at least 1 GiB on /opt/codequal" in (report.result("disk").hint or "")


def test_docker_disk_is_measured_at_the_engines_data_root() -> None:
    probe_docker = docker_ok(root_dir="/srv/docker")
    report = run(
        docker_info=probe_docker,
        disks={"/srv/docker": _disk("/srv/docker", 10, device=9)},
    )
    result = report.result("docker_disk")
    assert result.status == "fail"
    assert result.details["path"] == "/srv/docker"


def test_docker_disk_without_docker_measures_the_default_root() -> None:
    report = run(docker_info=DockerInfo("unix:///var/run/docker.sock", False, "not_running"))
    result = report.result("docker_disk")
    assert result.details["path"] == "/var/lib/docker"
    assert "Docker not reachable" in (result.measured or "")


@pytest.mark.parametrize(
    ("target", "free_gib", "total_gib", "status"),
    [
        ("development", 100, 500, "pass"),
        ("development", 25, 40, "pass"),
        ("development", 21, 500, "warn"),  # the file system is full but for 1 GiB after
        ("development", 19, 500, "fail"),
        ("development", 22, 30, "warn"),  # leaves 2 of 30 GiB free: under 10 %
        ("production", 150, 500, "pass"),
        ("production", 60, 500, "warn"),  # minimal's 20 GiB, not recommended's 100
        ("production", 10, 500, "fail"),
    ],
)
def test_docker_disk(target: str, free_gib: float, total_gib: float, status: str) -> None:
    report = run(
        target,
        disks={"/var/lib/docker": _disk("/var/lib/docker", free_gib, total_gib, device=1)},
    )
    result = report.result("docker_disk")
    assert result.status == status, result
    assert (result.hint is None) == (status == "pass")


# --------------------------------------------------------------------------- os, kernel, arch


@pytest.mark.parametrize(
    ("os_info", "target", "status"),
    [
        (OsInfo("Linux", "ubuntu", ("debian",), "22.04", "Ubuntu 22.04"), "production", "pass"),
        (OsInfo("Linux", "debian", (), "12", "Debian 12"), "production", "pass"),
        (OsInfo("Linux", "rocky", ("rhel", "centos", "fedora"), "9.3"), "production", "pass"),
        (OsInfo("Linux", "linuxmint", ("ubuntu", "debian"), "21.3"), "development", "pass"),
        (OsInfo("Linux", "ubuntu", ("debian",), "18.04", "Ubuntu 18.04"), "production", "warn"),
        (OsInfo("Linux", "debian", (), "10"), "production", "warn"),
        (OsInfo("Linux", "gentoo", (), "2.15"), "production", "warn"),
        (OsInfo("Darwin", version_id="14.5"), "development", "warn"),
        (OsInfo("Darwin", version_id="14.5"), "production", "fail"),
        (OsInfo("Windows", version_id="10"), "development", "fail"),
    ],
)
def test_os(os_info: OsInfo, target: str, status: str) -> None:
    result = run(target, os_info=os_info).result("os")
    assert result.status == status, result
    assert (result.hint is None) == (status == "pass")


@pytest.mark.parametrize(
    ("release", "status"),
    [
        ("6.8.0-45-generic", "pass"),
        ("5.4.0-1103-aws", "pass"),
        ("4.19.0-26-amd64", "warn"),
        ("3.10.0-1160.el7.x86_64", "fail"),
    ],
)
def test_kernel(release: str, status: str) -> None:
    result = run(kernel_release=release).result("kernel")
    assert result.status == status
    assert result.measured == release


def test_kernel_is_not_judged_on_macos() -> None:
    result = run(os_info=OsInfo("Darwin", version_id="14.5"), kernel_release="23.5.0").result(
        "kernel"
    )
    assert result.status == "skipped"
    assert "Darwin" in (result.reason or "")


@pytest.mark.parametrize(
    ("machine", "status"),
    [("x86_64", "pass"), ("amd64", "pass"), ("aarch64", "warn"), ("s390x", "fail")],
)
def test_architecture(machine: str, status: str) -> None:
    assert verdict(run(machine=machine), "architecture") == status


# --------------------------------------------------------------------------- cgroup


@pytest.mark.parametrize(
    ("cgroup", "docker", "status", "hint_part"),
    [
        (CgroupInfo(2, frozenset({"cpu", "memory", "pids"})), docker_ok(), "pass", None),
        (
            CgroupInfo(1, frozenset({"cpu", "cpuacct", "memory", "pids"})),
            docker_ok(cgroup_version=1),
            "warn",
            "systemd.unified_cgroup_hierarchy=1",
        ),
        (CgroupInfo(2, frozenset({"cpu", "memory"})), docker_ok(), "warn", "pids"),
        (CgroupInfo(None), docker_ok(cgroup_version=None), "warn", "/sys/fs/cgroup"),
        (CgroupInfo(1, frozenset({"cpu", "pids"})), docker_ok(), "fail", "cgroup_enable=memory"),
        (
            CgroupInfo(2, frozenset({"cpu", "memory", "pids"})),
            docker_ok(memory_limit=False),
            "fail",
            "Docker cannot enforce memory limits",
        ),
    ],
)
def test_cgroup(cgroup: CgroupInfo, docker: DockerInfo, status: str, hint_part: str | None) -> None:
    result = run(cgroup_info=cgroup, docker_info=docker).result("cgroup")
    assert result.status == status, result
    if hint_part is not None:
        assert hint_part in (result.hint or "")


def test_cgroup_version_falls_back_to_what_docker_reports() -> None:
    result = run(cgroup_info=CgroupInfo(None), docker_info=docker_ok(cgroup_version=2)).result(
        "cgroup"
    )
    assert result.measured == "cgroup v2"


# --------------------------------------------------------------------------- docker


@pytest.mark.parametrize(
    ("info", "status", "hint_part"),
    [
        (docker_ok(), "pass", None),
        (docker_ok(version="20.10.24+dfsg1"), "warn", "upstream no longer fixes it"),
        (docker_ok(storage_driver="vfs"), "warn", "overlay2"),
        (docker_ok(version="19.03.15"), "fail", "too old"),
        (
            DockerInfo("unix:///var/run/docker.sock", False, "not_running", "no such socket"),
            "fail",
            "sudo systemctl start docker",
        ),
        (
            DockerInfo("unix:///var/run/docker.sock", False, "permission", "permission denied"),
            "fail",
            "usermod -aG docker",
        ),
        (
            DockerInfo("unix:///var/run/docker.sock", False, "timeout", "no answer within 3 s"),
            "fail",
            "journalctl -u docker",
        ),
        (
            DockerInfo("unix:///var/run/docker.sock", False, "protocol", "HTTP 404"),
            "fail",
            "something other than the Docker Engine",
        ),
        (
            DockerInfo("ssh://admin@host", False, "unsupported", "ssh"),
            "fail",
            "unix:// or tcp://",
        ),
    ],
)
def test_docker(info: DockerInfo, status: str, hint_part: str | None) -> None:
    result = run(docker_info=info).result("docker")
    assert result.status == status, result
    if hint_part is not None:
        assert hint_part in (result.hint or "")
    if not info.reachable:
        assert result.measured == f"not reachable at {info.endpoint}: {info.error_detail}"


def test_docker_stopped_hint_says_how_to_start_it_and_names_docker_host() -> None:
    info = DockerInfo(
        "unix:///tmp/nonexistent.sock",
        False,
        "not_running",
        "no such socket",
        endpoint_from_env=True,
    )
    hint = run(docker_info=info).result("docker").hint or ""
    assert "sudo systemctl start docker" in hint
    assert "sudo dockerd" in hint
    assert "DOCKER_HOST" in hint and "unix:///tmp/nonexistent.sock" in hint


def test_docker_not_installed_says_how_to_install_it() -> None:
    info = DockerInfo(
        "unix:///var/run/docker.sock", False, "not_running", "no such socket", installed=False
    )
    hint = run(docker_info=info).result("docker").hint or ""
    assert hint.startswith("install Docker Engine")
    assert "systemctl start docker" in hint


# --------------------------------------------------------------------------- compose


@pytest.mark.parametrize(
    ("info", "status"),
    [
        (ComposeInfo("/usr/libexec/docker/cli-plugins/docker-compose", "2.29.7"), "pass"),
        (ComposeInfo("/usr/libexec/docker/cli-plugins/docker-compose", "2.20.0"), "pass"),
        (ComposeInfo("/usr/libexec/docker/cli-plugins/docker-compose", "2.12.2"), "warn"),
        (ComposeInfo("/usr/bin/docker-compose", "1.29.2"), "fail"),
        (ComposeInfo(None, error="no docker-compose plugin or binary found"), "fail"),
    ],
)
def test_compose(info: ComposeInfo, status: str) -> None:
    result = run(compose_info=info).result("compose")
    assert result.status == status
    if status == "fail":
        assert "docker-compose-plugin" in (result.hint or "")


# --------------------------------------------------------------------------- ports


def test_ports_the_target_needs() -> None:
    probe = StubProbe()
    run_prerequisites(answers("production"), probe=probe)
    assert probe.ports_asked == [80, 443, 3001, 9090]  # the apps sit behind nginx
    probe = StubProbe()
    run_prerequisites(
        answers(
            "development",
            deepwiki={"mode": "external", "url": "https://deepwiki.example.com"},
            monitoring={"enabled": False},
        ),
        probe=probe,
    )
    assert probe.ports_asked == [3000]  # no nginx without TLS, no DeepWiki here, no monitoring
    assert host_ports("kubernetes", tls=True, deepwiki_bundled=True, monitoring=()) == {}


def test_a_taken_port_fails_naming_the_port_and_the_process() -> None:
    scan = ListenerScan((Listener(3000, "127.0.0.1", 4242, "node"),))
    result = run(scan=scan).result("ports")
    assert result.status == "fail"
    assert result.measured == (
        "port 3000 (for codequal API) is in use by node (pid 4242) on 127.0.0.1"
    )
    assert "stop what holds port 3000" in (result.hint or "")
    assert result.details["in_use"] == [
        {"port": 3000, "address": "127.0.0.1", "pid": 4242, "process": "node"}
    ]


def test_a_port_held_by_another_user_is_still_taken() -> None:
    scan = ListenerScan(
        (
            Listener(80, "0.0.0.0", 911, "docker-proxy"),  # noqa: S104
            Listener(80, "::", 912, "docker-proxy"),
            Listener(3001, "an address this user cannot see"),
        )
    )
    result = run("production", scan=scan).result("ports")
    assert result.status == "fail"
    assert "port 80 (for nginx HTTP) is in use by docker-proxy (pid 911) on 0.0.0.0" in (
        result.measured or ""
    )
    assert "port 3001 (for grafana) is in use by a process this user cannot see" in (
        result.measured or ""
    )
    assert "docker ps" in (result.hint or "")


def test_ports_warn_when_some_could_not_be_tested() -> None:
    scan = ListenerScan((), complete=False, error="ports 80, 443 could not be tested")
    result = run(scan=scan).result("ports")
    assert result.status == "warn"
    assert "as root" in (result.hint or "")


# --------------------------------------------------------------------------- dns


def test_dns_passes_when_the_domain_points_here() -> None:
    result = run(answers("production")).result("dns")
    assert result.status == "pass"
    assert result.measured == "codequal.example.com -> 203.0.113.10"


def test_dns_warns_when_the_domain_points_elsewhere() -> None:
    elsewhere = Resolution("codequal.example.com", ("198.51.100.7",), local_addresses=("10.0.0.5",))
    result = run(answers("production"), resolutions={"codequal.example.com": elsewhere}).result(
        "dns"
    )
    assert result.status == "warn"
    assert "NAT" in (result.hint or "")


@pytest.mark.parametrize(
    ("error", "hint_part"),
    [("nxdomain", "DNS A record"), ("no_answer", "/etc/resolv.conf")],
)
def test_dns_fails_when_the_domain_does_not_resolve(error: str, hint_part: str) -> None:
    failed = Resolution("codequal.example.com", error=error)
    result = run(answers("production"), resolutions={"codequal.example.com": failed}).result("dns")
    assert result.status == "fail"
    assert hint_part in (result.hint or "")


def test_dns_without_a_domain_is_skipped_and_says_why() -> None:
    result = run("production").result("dns")
    assert result.status == "skipped"
    assert "--answers" in (result.reason or "")


def test_dns_on_kubernetes_does_not_compare_with_this_host() -> None:
    elsewhere = Resolution("codequal.example.com", ("198.51.100.7",), local_addresses=("10.0.0.5",))
    result = run(answers("kubernetes"), resolutions={"codequal.example.com": elsewhere}).result(
        "dns"
    )
    assert result.status == "pass"


# --------------------------------------------------------------------------- install_dir


@pytest.mark.parametrize(
    ("access", "status", "text"),
    [
        (WriteAccess("/opt/codequal", False, False, True, "/opt"), "pass", "will be created"),
        (
            WriteAccess("/opt/codequal", True, True, True, "/opt/codequal", ("state",), 3),
            "pass",
            "is writable",
        ),
        (WriteAccess("/opt/codequal", True, True, True, "/opt/codequal"), "pass", "is writable"),
        (
            WriteAccess(
                "/opt/codequal",
                True,
                True,
                True,
                "/opt/codequal",
                ("a", "b", "c", "d", "e"),
                9,
            ),
            "warn",
            "holds 9 other entries (a, b, c, d, e, ...)",
        ),
        (
            WriteAccess("/opt/codequal", False, False, False, "/opt", error="Permission denied"),
            "fail",
            "cannot write to /opt (to create /opt/codequal): Permission denied",
        ),
        (
            WriteAccess("/opt/codequal", True, False, False, "/opt/codequal", error="not a dir"),
            "fail",
            "exists and is not a directory",
        ),
    ],
)
def test_install_dir(access: WriteAccess, status: str, text: str) -> None:
    result = run(access=access).result("install_dir")
    assert result.status == status
    assert text in (result.measured or "")
    if status == "fail":
        assert result.hint


# --------------------------------------------------------------------------- kubernetes


def kube(**changes: Any) -> KubernetesInfo:
    return dataclasses.replace(StubProbe().kubernetes_info, **changes)


def test_kubernetes_target_checks_the_cluster_not_this_host() -> None:
    probe = StubProbe(cpu_info=CpuInfo(1, 1), memory_info=MemoryInfo(GIB, GIB))
    report = run_prerequisites(answers("kubernetes"), probe=probe)
    assert {r.name: r.status for r in report.results if r.status != "skipped"} == {
        "cpu": "pass",
        "memory": "pass",
        "architecture": "pass",
        "dns": "pass",
        "kubernetes": "pass",
    }
    assert "docker" not in probe.calls and "cpu" not in probe.calls
    assert report.result("docker").reason == "not used by the kubernetes target"
    assert report.capacity is not None and report.capacity.cpus == 8


@pytest.mark.parametrize(
    ("info", "status", "hint_part"),
    [
        (kube(), "pass", None),
        (kube(version="1.27.9", git_version="v1.27.9"), "warn", "out of upstream support"),
        (kube(version="1.24.17", git_version="v1.24.17"), "fail", "upgrade the cluster"),
        (
            KubernetesInfo(False, "prod", error="no_config", error_detail="no kubeconfig"),
            "fail",
            "KUBECONFIG",
        ),
        (
            KubernetesInfo(False, "prod", "https://k", error="unauthorized", error_detail="401"),
            "fail",
            "credentials were refused",
        ),
        (
            KubernetesInfo(False, "prod", "https://k", error="timeout", error_detail="timed out"),
            "fail",
            "did not answer in time",
        ),
        (
            KubernetesInfo(False, "prod", "https://k", error="unreachable", error_detail="refused"),
            "fail",
            "could not be reached",
        ),
    ],
)
def test_kubernetes(info: KubernetesInfo, status: str, hint_part: str | None) -> None:
    report = run(answers("kubernetes"), kubernetes_info=info)
    result = report.result("kubernetes")
    assert result.status == status, result
    if hint_part is not None:
        assert hint_part in (result.hint or "")
    if not info.reachable:
        for name in ("cpu", "memory", "architecture"):
            assert report.result(name).status == "skipped"
            assert "could not be reached" in (report.result(name).reason or "")


def test_openshift_mismatch_both_ways() -> None:
    openshift = kube(api_groups=("apps", "route.openshift.io", "security.openshift.io"))
    said_no = run(answers("kubernetes"), kubernetes_info=openshift).result("kubernetes")
    assert said_no.status == "warn"
    assert "kubernetes.openshift: true" in (said_no.hint or "")
    assert said_no.measured is not None and said_no.measured.startswith("OpenShift")
    said_yes = run(
        answers("enterprise", kubernetes={"openshift": True}), kubernetes_info=kube()
    ).result("kubernetes")
    assert said_yes.status == "fail"
    matching = run(
        answers("enterprise", kubernetes={"openshift": True}), kubernetes_info=openshift
    ).result("kubernetes")
    assert matching.status == "pass"


@pytest.mark.parametrize(
    ("target", "nodes", "cpu", "memory"),
    [
        ("enterprise", [(8, 32)] * 3, "pass", "pass"),
        ("enterprise", [(8, 31.5)] * 3, "pass", "pass"),  # kernel-reported 32 GiB nodes
        ("enterprise", [(8, 32)] * 2, "warn", "warn"),  # not the 3 nodes of the profile
        ("enterprise", [(4, 8)], "warn", "warn"),
        ("enterprise", [(2, 4)] * 5, "fail", "fail"),
        ("kubernetes", [(8, 16)], "pass", "pass"),
        ("kubernetes", [(4, 8), (4, 8)], "warn", "warn"),
        ("kubernetes", [(16, 4)], "pass", "fail"),
    ],
)
def test_node_capacity(
    target: str, nodes: list[tuple[float, float]], cpu: str, memory: str
) -> None:
    infos = tuple(NodeInfo(f"n{i}", c, round(m * GIB), "amd64") for i, (c, m) in enumerate(nodes))
    report = run(answers(target), kubernetes_info=kube(nodes=infos))
    assert (verdict(report, "cpu"), verdict(report, "memory")) == (cpu, memory)
    assert report.capacity is not None
    assert report.capacity.cpus == min(c for c, _ in nodes)


def test_node_architecture() -> None:
    arm = tuple(NodeInfo(f"n{i}", 8, 32 * GIB, "arm64") for i in range(3))
    assert verdict(run(answers("kubernetes"), kubernetes_info=kube(nodes=arm)), "architecture") == (
        "warn"
    )
    odd = (NodeInfo("n", 8, 32 * GIB, "ppc64le"),)
    assert verdict(run(answers("kubernetes"), kubernetes_info=kube(nodes=odd)), "architecture") == (
        "fail"
    )


def test_nodes_that_cannot_be_listed_warn() -> None:
    report = run(answers("kubernetes"), kubernetes_info=kube(nodes=None, nodes_error="HTTP 403"))
    for name in ("cpu", "memory", "architecture"):
        result = report.result(name)
        assert result.status == "warn"
        assert "HTTP 403" in (result.measured or "")
    assert verdict(report, "kubernetes") == "pass"


# --------------------------------------------------------------------------- skipping


def test_skips_from_the_answer_file_and_the_command_line() -> None:
    probe = StubProbe(cpu_info=CpuInfo(2, 2), docker_info=DockerInfo("unix:///x", False))
    report = run_prerequisites(
        answers("development", checks={"skip": ["cpu"]}), skip=["docker", "compose"], probe=probe
    )
    assert report.result("cpu").status == "skipped"
    assert report.result("cpu").reason == "skipped by checks.skip in the answer file"
    assert report.result("docker").reason == "skipped by --skip"
    assert report.result("compose").status == "skipped"
    assert not report.failed
    assert "compose" not in probe.calls  # a skipped probe does not run


def test_unknown_skip_name_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown check name: gpu") as caught:
        run_prerequisites("development", skip=["gpu"], probe=StubProbe())
    assert caught.value.exit_code == ExitCode.USAGE


# --------------------------------------------------------------------------- concurrency


def test_slow_probes_run_concurrently() -> None:
    # Each of these waits until all four have started: run one after another, the first
    # would wait alone and the barrier would break.
    barrier = threading.Barrier(4, timeout=10)
    probe = StubProbe(
        barrier=barrier, barrier_probes=frozenset({"docker", "compose", "dns", "registry"})
    )
    report = run_prerequisites(
        answers("production"),
        probe=probe,
        timeouts=Timeouts(docker=20, compose=20, dns=20, registry=20),
    )
    assert not barrier.broken
    assert {verdict(report, n) for n in ("docker", "compose", "dns")} == {"pass"}


def test_a_probe_that_never_answers_times_out() -> None:
    block = threading.Event()
    probe = StubProbe(block=block, block_probes=frozenset({"docker", "dns"}))
    try:
        report = run_prerequisites(
            answers("production"),
            probe=probe,
            timeouts=Timeouts(docker=0.1, dns=0.1, compose=5, registry=0.1, grace=0),
        )
    finally:
        block.set()
    docker = report.result("docker")
    assert docker.status == "fail"
    assert "no answer within 0.1 s" in (docker.measured or "")
    assert "journalctl -u docker" in (docker.hint or "")
    dns = report.result("dns")
    assert dns.status == "fail"
    assert dns.measured == "codequal.example.com: the lookup timed out"


def test_kubernetes_that_never_answers_times_out() -> None:
    block = threading.Event()
    probe = StubProbe(block=block, block_probes=frozenset({"kubernetes"}))
    try:
        report = run_prerequisites(
            answers("kubernetes"),
            probe=probe,
            timeouts=Timeouts(kubernetes=0.01, kubernetes_import=0, dns=5),
        )
    finally:
        block.set()
    assert report.result("kubernetes").status == "fail"
    assert report.result("kubernetes").details["error"] == "timeout"


def test_a_probe_bug_becomes_a_warning_not_a_traceback() -> None:
    report = run(broken=frozenset({"ports", "environment"}))
    result = report.result("ports")
    assert result.status == "warn"
    assert "RuntimeError: ports probe bug" in (result.measured or "")
    assert report.environment is None


# --------------------------------------------------------------------------- the report


def test_report_json_has_every_field_of_every_check() -> None:
    report = run(cpu_info=CpuInfo(2, 2))
    data = json.loads(report.to_json())
    assert data["target"] == "development"
    assert data["profile"] == "minimal"
    assert data["failed"] is True
    assert data["summary"] == {"pass": 12, "warn": 0, "fail": 1, "skipped": 1}
    assert [c["name"] for c in data["checks"]] == list(MACHINE_CHECK_NAMES)
    for check in data["checks"]:
        assert set(check) == {"name", "status", "measured", "required", "hint", "reason", "details"}
    cpu = data["checks"][0]
    assert cpu["status"] == "fail" and cpu["hint"]
    assert data["environment"]["cloud"] == "aws"
    assert data["capacity"] == {"cpus": 2.0, "memory_bytes": 32 * GIB}


def test_raise_for_failures_names_each_failed_check() -> None:
    report = run(cpu_info=CpuInfo(2, 2), compose_info=ComposeInfo(None, error="none"))
    with pytest.raises(PrerequisiteError) as caught:
        report.raise_for_failures()
    assert caught.value.exit_code == ExitCode.PREREQUISITES == 3
    assert caught.value.message == "2 prerequisite checks failed: cpu, compose"
    assert "--skip NAME" in (caught.value.hint or "")
    run().raise_for_failures()  # nothing failed: no exception


def test_requirements_for_a_bare_target() -> None:
    req = Requirements.for_target("production")
    assert (req.profile.name, req.floor.name) == ("recommended", "minimal")
    assert req.domain is None
    assert Requirements.for_target("development").domain == "localhost"
    assert Requirements.for_target("enterprise").profile.nodes == 3


def test_the_table_prints_values_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from installer.checks.cli import render_report

    scan = ListenerScan((Listener(3000, "::1", 77, "[bold]node[/bold]"),))
    report = run(scan=scan, cpu_info=CpuInfo(2, 2))
    out = io.StringIO()
    monkeypatch.setenv("COLUMNS", "400")  # one line per row
    render_report(report, out)
    text = out.getvalue()
    assert "Prerequisites for the development target (minimal profile)" in text
    assert "[bold]node[/bold]" in text  # a process name is not markup
    assert "port 3000 (for codequal API) is in use by [bold]node[/bold] (pid 77) on ::1" in text
    assert "11 passed, 0 warned, 2 failed, 1 skipped" in text
    assert "cloud: aws" in text and "air-gapped: no" in text


def _rendered(report: PrerequisiteReport, monkeypatch: pytest.MonkeyPatch, width: int) -> str:
    import io

    from installer.checks.cli import render_report

    monkeypatch.setenv("COLUMNS", str(width))
    out = io.StringIO()
    render_report(report, out)
    return out.getvalue()


def _table_rows(text: str) -> list[list[str]]:
    """The table's body rows, each split into its cells (continuation lines included)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Check "))
    return [
        [cell.strip() for cell in line.split("│")] for line in lines[start + 2 :] if "│" in line
    ]


def _one_check(name: str, status: Any, measured: str, hint: str) -> PrerequisiteReport:
    from installer.checks.report import CheckResult

    result = CheckResult(name, status, measured, "4 CPUs (minimal profile)", hint)
    return PrerequisiteReport("development", "minimal", (result,))


def test_the_table_fits_the_terminal_and_wraps_long_cells(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rich.cells import cell_len

    long_hint = ("use a bigger machine " * 6).strip()
    report = _one_check("cpu", "fail", "2 CPUs", long_hint)
    narrow = _rendered(report, monkeypatch, 60)
    assert all(cell_len(line) <= 60 for line in narrow.splitlines()[1:-1])
    rows = _table_rows(narrow)
    assert len(rows) > 1  # the hint wrapped onto more lines
    assert " ".join(row[-1] for row in rows if row[-1]) == long_hint  # every word, in order
    wide = _rendered(report, monkeypatch, 400)
    assert len(_table_rows(wide)) == 1  # one line per row


def test_wide_characters_keep_the_columns_aligned(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.cells import cell_len

    report = PrerequisiteReport(
        "development",
        "minimal",
        (
            _one_check("os", "warn", "麒麟 Kylin V10 桌面版", "🐳 untested").results[0],
            _one_check("kernel", "pass", "6.8.0", "").results[0],
        ),
    )
    text = _rendered(report, monkeypatch, 120)
    table = [line for line in text.splitlines() if "│" in line or "┼" in line]
    columns = {
        tuple(cell_len(line[:i]) for i, ch in enumerate(line) if ch in "│┼") for line in table
    }
    assert len(columns) == 1, table  # every separator at the same screen column


def test_the_status_is_coloured_only_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from installer.checks.cli import render_report

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    report = run(cpu_info=CpuInfo(2, 2))
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    on_terminal = Terminal()
    render_report(report, on_terminal)
    assert "\x1b[1;31mfail" in on_terminal.getvalue()
    assert "\x1b[32mpass" in on_terminal.getvalue()
    piped = io.StringIO()
    render_report(report, piped)
    assert "\x1b" not in piped.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    no_colour = Terminal()
    render_report(report, no_colour)
    assert "\x1b" not in no_colour.getvalue()
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    dumb = Terminal()
    render_report(report, dumb)
    assert "\x1b" not in dumb.getvalue()


def test_the_table_falls_back_to_ascii_lines_where_the_output_cannot_encode_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    from installer.checks.cli import render_report

    monkeypatch.setenv("COLUMNS", "400")  # one line per row
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii")
    scan = ListenerScan((Listener(3000, "::1", 77, "nöde"),))
    render_report(run(cpu_info=CpuInfo(2, 2), scan=scan), out)
    text = raw.getvalue().decode("ascii")
    assert "-+-" in text and " | " in text
    assert "is in use by n?de (pid 77)" in text  # what ASCII cannot say is replaced


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.text(alphabet="ab/-.:", min_size=1, max_size=30), max_size=12),
    st.integers(min_value=50, max_value=120),
)
def test_wrapped_cells_keep_every_character_and_fit(words: list[str], width: int) -> None:
    import io
    import os

    from rich.cells import cell_len

    from installer.checks.cli import render_report

    text = " ".join(words)
    report = _one_check("cpu", "fail", "2 CPUs", text)
    out = io.StringIO()
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        render_report(report, out)
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    rendered = out.getvalue()
    assert all(cell_len(line) <= width for line in rendered.splitlines()[1:-1])
    hint = "".join(row[-1] for row in _table_rows(rendered))
    assert hint.replace(" ", "") == text.replace(" ", "")  # nothing lost, in order
