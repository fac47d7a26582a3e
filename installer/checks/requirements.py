"""What each target requires, and the verdict of every check on a measurement.

Each ``evaluate_*`` function is pure: a measurement from :mod:`installer.checks.probes`
and the :class:`Requirements` in, a :class:`CheckResult` out. The three verdicts mean:

- **fail**: the install cannot work (or would break later) as things are;
- **warn**: it works, below what the profile recommends or with a known risk;
- **pass**: meets the profile.

Requirements come from the seed's resource profiles (:data:`installer.resources.PROFILES`):
the profile named in ``resources.profile``, or for ``auto`` the target's own
(:data:`installer.resources.TARGET_PROFILE`). Below that profile a check warns; below the
*floor* (the minimal profile) it fails.

Memory tolerance: the kernel reports less memory (``MemTotal``, a node's capacity) than
the machine has installed, because firmware, the kernel image and a crash-kernel
reservation take their share first: typically 3-6 %, so a "4 GB" VM shows 3.8 GB and an
"8 GB" one 7.6-7.8 GB. Memory therefore passes at :data:`MEMORY_TOLERANCE` (8 %) below
the profile: 8 GiB accepts 7.36 GiB, 16 GiB accepts 14.72 GiB. A machine a whole GiB
short of 8 (7 GiB, 12.5 %) is still below.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from installer.checks.probes import (
    CgroupInfo,
    ComposeInfo,
    CpuInfo,
    DiskInfo,
    DockerInfo,
    KubernetesInfo,
    ListenerScan,
    MemoryInfo,
    NodeInfo,
    OsInfo,
    Resolution,
    WriteAccess,
)
from installer.checks.report import CheckResult, Status
from installer.names import KUBERNETES_TARGETS
from installer.resources import GIB, PROFILES, TARGET_PROFILE, Profile

if TYPE_CHECKING:
    from installer.answers import AnswerFile

MEMORY_TOLERANCE = 0.08
"""Fraction below a profile's memory that still passes (see the module docstring)."""

# Rendered files, the state directory, run logs and the previous release kept for
# rollback; images and volumes live under Docker's data root instead.
INSTALL_DIR_BYTES = 2 * GIB
# After the install, a file system with less than this share free fills up with logs
# and data growth within weeks.
DISK_HEADROOM = 0.10
# "Available" memory below this share of the profile means other programs already use it.
MEMORY_AVAILABLE_SHARE = 0.5

MIN_DOCKER = (20, 10)  # Compose v2's Engine API needs; older releases fail to deploy
SUPPORTED_DOCKER = (23, 0)  # the oldest Engine release line still maintained upstream
MIN_COMPOSE = (2, 0)
SUPPORTED_COMPOSE = (2, 20)  # `include`, `--wait-timeout` and the health-gated start we use
MIN_KERNEL = (4, 0)  # overlay2 needs 4.0
SUPPORTED_KERNEL = (5, 4)  # the oldest kernel of a supported distribution (Ubuntu 20.04)
MIN_KUBERNETES = (1, 25)  # PodSecurity admission, autoscaling/v2, networking.k8s.io/v1
SUPPORTED_KUBERNETES = (1, 28)
# Distributions (os-release ID) and the oldest version tested; ID_LIKE matches count too.
SUPPORTED_OS: dict[str, tuple[int, ...]] = {
    "ubuntu": (20, 4),
    "debian": (11,),
    "rhel": (8,),
    "centos": (8,),
    "rocky": (8,),
    "almalinux": (8,),
    "ol": (8,),
    "fedora": (38,),
    "sles": (15,),
    "opensuse-leap": (15,),
    "amzn": (2,),
}
GOOD_STORAGE_DRIVERS = frozenset({"overlay2", "overlayfs", "btrfs", "zfs", "fuse-overlayfs"})

# Host ports the Compose targets publish. Grafana listens on 3000 inside its container;
# the API has 3000 on the host, so Grafana is published on 3001.
# Loki is only reached inside the Compose network (by Grafana and Promtail): not published.
MONITORING_HOST_PORTS: dict[str, int] = {"prometheus": 9090, "grafana": 3001}


@dataclass(frozen=True)
class Requirements:
    """What one install needs, from its answers (or a bare target's defaults)."""

    target: str
    profile: Profile
    floor: Profile
    install_dir: str = "/opt/codequal"
    domain: str | None = None
    ports: Mapping[int, str] = field(default_factory=dict)
    kubernetes_context: str | None = None
    openshift: bool | None = None  # None: the operator did not say

    @property
    def is_kubernetes(self) -> bool:
        return self.target in KUBERNETES_TARGETS

    @classmethod
    def for_target(cls, target: str) -> Requirements:
        """Defaults of ``target`` when no answer file is given: its own profile, the
        default install directory, ``localhost`` for development (no domain otherwise),
        TLS on except for development, every monitoring component."""
        profile = PROFILES[TARGET_PROFILE[target]]
        return cls(
            target=target,
            profile=profile,
            floor=_floor(profile),
            domain="localhost" if target == "development" else None,
            ports=host_ports(
                target,
                tls=target != "development",
                deepwiki_bundled=True,
                monitoring=("prometheus", "grafana", "loki"),
            ),
        )

    @classmethod
    def from_answers(cls, answers: AnswerFile) -> Requirements:
        name = answers.resources.profile
        profile = PROFILES[TARGET_PROFILE[answers.target] if name == "auto" else name]
        return cls(
            target=answers.target,
            profile=profile,
            floor=_floor(profile),
            install_dir=answers.install_dir,
            domain=answers.domain,
            ports=host_ports(
                answers.target,
                tls=answers.tls.mode != "none",
                deepwiki_bundled=answers.deepwiki.mode == "bundled",
                monitoring=tuple(answers.monitoring.components)
                if answers.monitoring.enabled
                else (),
            ),
            kubernetes_context=answers.kubernetes.context,
            openshift=answers.kubernetes.openshift,
        )


def _floor(profile: Profile) -> Profile:
    minimal = PROFILES["minimal"]
    return profile if profile.cpus <= minimal.cpus else minimal


def host_ports(
    target: str, *, tls: bool, deepwiki_bundled: bool, monitoring: Sequence[str]
) -> dict[int, str]:
    """Host TCP ports a Compose target publishes, each with the service that needs it.

    The same ports the rendered ``docker-compose.yml`` publishes (an integration test
    compares the two): nginx's 80 and 443 when TLS is on; otherwise (development without
    nginx) the API and DeepWiki on 127.0.0.1; Prometheus and Grafana's UIs on 127.0.0.1.
    """
    if target in ("kubernetes", "enterprise"):
        return {}
    if tls:
        ports = {80: "nginx HTTP", 443: "nginx HTTPS"}
    else:
        ports = {3000: "codequal API"}
        if deepwiki_bundled:
            ports[8002] = "DeepWiki"
    for component in monitoring:
        if component in MONITORING_HOST_PORTS:
            ports[MONITORING_HOST_PORTS[component]] = component
    return dict(sorted(ports.items()))


# --------------------------------------------------------------------------- formatting


def size(value: float) -> str:
    """Bytes as GiB, with two decimals below 10 GiB and none from 100 GiB."""
    gib = value / GIB
    if gib >= 100:
        return f"{gib:.0f} GiB"
    text = f"{gib:.1f}" if gib >= 10 else f"{gib:.2f}"
    return f"{text.rstrip('0').rstrip('.')} GiB"


def version_tuple(text: str | None) -> tuple[int, ...]:
    """Leading numeric parts of a version, before any pre-release or build suffix:
    "20.10.24+dfsg1" -> (20, 10, 24), "5.15.0-1051-azure" -> (5, 15, 0)."""
    core = (text or "").strip().lstrip("v").split("-", 1)[0].split("+", 1)[0]
    parts: list[int] = []
    for piece in core.split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
        if digits != piece:
            break
    return tuple(parts)


def dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def _result(
    name: str,
    status: Status,
    measured: str | None,
    required: str | None,
    hint: str | None = None,
    *,
    details: Mapping[str, Any] | None = None,
) -> CheckResult:
    return CheckResult(
        name, status, measured, required, hint if status != "pass" else None, details=details or {}
    )


def _bands(profile: Profile, floor: Profile, what: str) -> str:
    if floor.name == profile.name:
        return f"{what} ({profile.name} profile)"
    return f"{what} ({profile.name} profile); below the {floor.name} profile fails"


# --------------------------------------------------------------------------- host checks


def evaluate_cpu(cpu: CpuInfo, req: Requirements) -> CheckResult:
    need, floor = req.profile.cpus, req.floor.cpus
    measured = f"{cpu.logical} CPUs"
    if cpu.physical is not None and cpu.physical != cpu.logical:
        measured += f" ({cpu.physical} physical cores)"
    required = _bands(req.profile, req.floor, f"{need} CPUs")
    details = {"logical": cpu.logical, "physical": cpu.physical, "required_cpus": need}
    if cpu.logical < floor:
        return _result(
            "cpu",
            "fail",
            measured,
            required,
            f"use a machine with at least {floor} CPUs (on a small test machine: --skip cpu)",
            details=details,
        )
    if cpu.logical < need:
        return _result(
            "cpu",
            "warn",
            measured,
            required,
            f"enough to run, but the {req.profile.name} profile expects {need} CPUs: "
            "expect slower analyses under load",
            details=details,
        )
    return _result("cpu", "pass", measured, required, details=details)


def memory_threshold(required: int) -> int:
    """The least kernel-reported memory, in whole bytes, that meets ``required``."""
    return math.floor(required * (1 - MEMORY_TOLERANCE))


def memory_accepts(measured: int, required: int) -> bool:
    """Whether kernel-reported ``measured`` memory meets ``required`` within the tolerance."""
    return measured >= memory_threshold(required)


def evaluate_memory(memory: MemoryInfo, req: Requirements) -> CheckResult:
    need, floor = req.profile.memory_bytes, req.floor.memory_bytes
    measured = f"{size(memory.total_bytes)} total"
    if memory.available_bytes is not None:
        measured += f", {size(memory.available_bytes)} available"
    required = _bands(
        req.profile,
        req.floor,
        f"{size(need)}, kernel-reported {memory_threshold(need) / GIB:.2f} GiB passes",
    )
    details = {
        "total_bytes": memory.total_bytes,
        "available_bytes": memory.available_bytes,
        "required_bytes": need,
        "tolerance": MEMORY_TOLERANCE,
    }
    if not memory_accepts(memory.total_bytes, floor):
        return _result(
            "memory",
            "fail",
            measured,
            required,
            f"use a machine with at least {size(floor)} of memory "
            "(on a small test machine: --skip memory)",
            details=details,
        )
    if not memory_accepts(memory.total_bytes, need):
        return _result(
            "memory",
            "warn",
            measured,
            required,
            f"enough to run, but the {req.profile.name} profile expects {size(need)}: "
            "services get smaller limits",
            details=details,
        )
    if (
        memory.available_bytes is not None
        and memory.available_bytes < need * MEMORY_AVAILABLE_SHARE
    ):
        return _result(
            "memory",
            "warn",
            measured,
            required,
            f"only {size(memory.available_bytes)} is free: other programs use the rest; "
            "stop them or expect the services to be short of memory",
            details=details,
        )
    return _result("memory", "pass", measured, required, details=details)


def evaluate_disk(
    name: str,
    disk: DiskInfo,
    need: int,
    floor: int,
    what: str,
    *,
    shared: bool = False,
    note: str | None = None,
) -> CheckResult:
    """Free space at one path: fail below ``floor``, warn below ``need`` or when the
    install would leave less than :data:`DISK_HEADROOM` of the file system free."""
    measured = f"{size(disk.free_bytes)} free at {disk.measured_at}"
    if note:
        measured += f" ({note})"
    required = f"{size(need)} free for {what}"
    if shared:
        required += " (one file system holds install_dir and Docker's data)"
    details = {
        "path": disk.path,
        "measured_at": disk.measured_at,
        "free_bytes": disk.free_bytes,
        "total_bytes": disk.total_bytes,
        "required_bytes": need,
        "shared_with_docker": shared,
    }
    if disk.free_bytes < floor:
        return _result(
            name,
            "fail",
            measured,
            required,
            f"free at least {size(floor - disk.free_bytes)} on {disk.measured_at}, "
            "or put it on a larger file system",
            details=details,
        )
    if disk.free_bytes < need:
        return _result(
            name,
            "warn",
            measured,
            required,
            f"enough to start, but {size(need - disk.free_bytes)} short of what the "
            "profile expects: the database and repository cache will fill it",
            details=details,
        )
    if disk.free_bytes - need < disk.total_bytes * DISK_HEADROOM:
        return _result(
            name,
            "warn",
            measured,
            required,
            f"after the install less than {DISK_HEADROOM:.0%} of {disk.measured_at}'s file "
            "system stays free: grow it before logs and data fill it",
            details=details,
        )
    return _result(name, "pass", measured, required, details=details)


def evaluate_os(info: OsInfo, req: Requirements) -> CheckResult:
    required = "Linux: Ubuntu 20.04+, Debian 11+, RHEL 8+ or compatible"
    details = {
        "system": info.system,
        "id": info.id,
        "id_like": list(info.id_like),
        "version_id": info.version_id,
    }
    if info.unseen is not None:
        return _result(
            "os",
            "warn",
            "unknown",
            required,
            f"{info.unseen}: run the image with -v /etc/os-release:/host/etc/os-release:ro "
            "(the bundle's launcher does)",
            details={**details, "unseen": info.unseen},
        )
    if info.system != "Linux":
        measured = f"{info.system} {info.version_id or ''}".strip()
        if req.target == "development" and info.system == "Darwin":
            return _result(
                "os",
                "warn",
                measured,
                required,
                "Docker Desktop on macOS runs the development target, but only Linux is tested",
                details=details,
            )
        return _result(
            "os",
            "fail",
            measured,
            required,
            f"the {req.target} target runs on a Linux server (Ubuntu 22.04 or Debian 12, say)",
            details=details,
        )
    measured = info.pretty_name or f"{info.id or 'Linux'} {info.version_id or ''}".strip()
    family = next(
        (name for name in (info.id, *info.id_like) if name in SUPPORTED_OS),
        None,
    )
    if family is None:
        return _result(
            "os",
            "warn",
            measured,
            required,
            "this distribution is not tested; Docker and Compose v2 are what matters",
            details=details,
        )
    if family == info.id:
        oldest = SUPPORTED_OS[family]
        if version_tuple(info.version_id) < oldest:
            return _result(
                "os",
                "warn",
                measured,
                required,
                f"{info.id} {info.version_id} is older than the oldest tested "
                f"({info.id} {dotted(oldest)}): upgrade the distribution",
                details=details,
            )
    return _result("os", "pass", measured, required, details=details)


def evaluate_kernel(release: str, req: Requirements, system: str = "Linux") -> CheckResult:
    required = f"Linux {dotted(SUPPORTED_KERNEL)}+ ({dotted(MIN_KERNEL)} at the least)"
    if system != "Linux":
        return CheckResult(
            "kernel",
            "skipped",
            release,
            required,
            reason=f"not applicable on {system}: Docker runs its own Linux kernel there",
        )
    version = version_tuple(release)
    details = {"release": release}
    if version < MIN_KERNEL:
        return _result(
            "kernel",
            "fail",
            release,
            required,
            f"the overlay2 storage driver needs Linux {dotted(MIN_KERNEL)} or newer: "
            "upgrade the kernel",
            details=details,
        )
    if version < SUPPORTED_KERNEL:
        return _result(
            "kernel",
            "warn",
            release,
            required,
            "an old kernel: cgroup v2 and overlay2 features may be missing; upgrade it",
            details=details,
        )
    return _result("kernel", "pass", release, required, details=details)


_ARCH_ALIASES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def _architecture_verdict(archs: Sequence[str]) -> tuple[Status, str | None]:
    normalized = {_ARCH_ALIASES.get(a.lower(), a.lower()) for a in archs}
    if normalized - {"amd64", "arm64"}:
        odd = ", ".join(sorted(normalized - {"amd64", "arm64"}))
        return "fail", f"CodeQual's images exist for amd64 (and arm64), not {odd}"
    if "arm64" in normalized:
        return "warn", (
            "the release's images are built for amd64: give arm64 images in release.images, "
            "or use an amd64 machine"
        )
    return "pass", None


def evaluate_architecture(machine: str, req: Requirements) -> CheckResult:
    status, hint = _architecture_verdict([machine])
    return _result(
        "architecture",
        status,
        machine,
        "amd64 (x86_64); arm64 with arm64 images",
        hint,
        details={"machine": machine},
    )


def evaluate_cgroup(info: CgroupInfo, docker: DockerInfo | None) -> CheckResult:
    version = info.version or (docker.cgroup_version if docker is not None else None)
    measured = f"cgroup v{version}" if version else "unknown"
    if info.controllers:
        measured += f" ({', '.join(sorted(info.controllers & {'cpu', 'memory', 'pids'}))})"
    required = "cgroup v2 with the cpu, memory and pids controllers"
    details = {"version": version, "controllers": sorted(info.controllers)}
    if docker is not None and docker.reachable and docker.memory_limit is False:
        return _result(
            "cgroup",
            "fail",
            measured,
            required,
            "Docker cannot enforce memory limits: enable the memory controller "
            "(add cgroup_enable=memory to the kernel command line and reboot)",
            details=details,
        )
    if version is None:
        return _result(
            "cgroup",
            "warn",
            measured,
            required,
            "could not read /sys/fs/cgroup: resource limits may not apply",
            details=details,
        )
    if "memory" not in info.controllers and info.controllers:
        return _result(
            "cgroup",
            "fail",
            measured,
            required,
            "the memory controller is off, so memory limits cannot be enforced: add "
            "cgroup_enable=memory to the kernel command line and reboot",
            details=details,
        )
    if version == 1:
        return _result(
            "cgroup",
            "warn",
            measured,
            required,
            "cgroup v1 still works but Docker and systemd are dropping it: boot with "
            "systemd.unified_cgroup_hierarchy=1",
            details=details,
        )
    missing = {"cpu", "pids"} - info.controllers
    if missing:
        return _result(
            "cgroup",
            "warn",
            measured,
            required,
            f"the {', '.join(sorted(missing))} controller is not delegated: CPU or process "
            "limits will not apply",
            details=details,
        )
    return _result("cgroup", "pass", measured, required, details=details)


# --------------------------------------------------------------------------- engines


def docker_start_hint(info: DockerInfo) -> str:
    """How to get a Docker daemon answering at ``info.endpoint``."""
    start = "start the Docker daemon: sudo systemctl start docker (without systemd: sudo dockerd &)"
    if not info.installed:
        return (
            "install Docker Engine (sudo apt-get install docker.io, or "
            "https://docs.docker.com/engine/install/), then " + start.replace("start the", "start")
        )
    if info.endpoint_from_env:
        from installer.engine.endpoint import CONTEXT_VARIABLE

        context = os.environ.get(CONTEXT_VARIABLE)
        if context:
            return (
                f"{start}; or choose another Docker context (`docker context use default`): "
                f"{context!r} points at {info.endpoint}"
            )
        return f"{start}; or unset DOCKER_HOST, which points at {info.endpoint}"
    return start


def evaluate_docker(info: DockerInfo) -> CheckResult:
    required = f"Docker Engine {dotted(SUPPORTED_DOCKER)}+ ({dotted(MIN_DOCKER)} at the least)"
    details: dict[str, Any] = {
        "endpoint": info.endpoint,
        "reachable": info.reachable,
        "version": info.version,
        "api_version": info.api_version,
        "storage_driver": info.storage_driver,
        "root_dir": info.root_dir,
        "error": info.error,
    }
    if not info.reachable:
        measured = f"not reachable at {info.endpoint}: {info.error_detail or info.error}"
        hints = {
            "not_running": docker_start_hint(info),
            "permission": (
                f"this user may not use {info.endpoint}: run as root, or add the user to the "
                "docker group (sudo usermod -aG docker $USER, then log in again)"
            ),
            "timeout": (
                "the daemon did not answer in time: check it with `sudo systemctl status "
                "docker` and `sudo journalctl -u docker`"
            ),
            "unsupported": "set DOCKER_HOST to a unix:// or tcp:// endpoint",
        }
        hint = hints.get(
            info.error or "",
            f"something other than the Docker Engine answers at {info.endpoint}: check "
            "DOCKER_HOST and the daemon",
        )
        return _result("docker", "fail", measured, required, hint, details=details)
    version = version_tuple(info.version)
    measured = f"{info.version} ({info.storage_driver or 'unknown'} storage driver)"
    if version < MIN_DOCKER:
        return _result(
            "docker",
            "fail",
            measured,
            required,
            f"Docker {info.version} is too old for Compose v2: upgrade Docker Engine",
            details=details,
        )
    if info.storage_driver not in GOOD_STORAGE_DRIVERS:
        return _result(
            "docker",
            "warn",
            measured,
            required,
            f"the {info.storage_driver} storage driver is slow and uses much more disk: "
            "configure overlay2 in /etc/docker/daemon.json",
            details=details,
        )
    if version < SUPPORTED_DOCKER:
        return _result(
            "docker",
            "warn",
            measured,
            required,
            f"Docker {info.version} works, but upstream no longer fixes it: upgrade "
            "Docker Engine when you can",
            details=details,
        )
    return _result("docker", "pass", measured, required, details=details)


def evaluate_compose(info: ComposeInfo) -> CheckResult:
    required = f"Docker Compose v{dotted(SUPPORTED_COMPOSE)}+ (v{dotted(MIN_COMPOSE)} at the least)"
    details = {"path": info.path, "version": info.version, "error": info.error}
    install = (
        "install the Compose v2 plugin (sudo apt-get install docker-compose-plugin, "
        "or https://docs.docker.com/compose/install/linux/)"
    )
    if info.version is None:
        measured = info.error or "not found"
        return _result("compose", "fail", measured, required, install, details=details)
    version = version_tuple(info.version)
    measured = f"{info.version} ({info.path})"
    if version < MIN_COMPOSE:
        return _result(
            "compose",
            "fail",
            measured,
            required,
            f"Compose v1 ({info.version}) cannot run the generated files: " + install,
            details=details,
        )
    if version < SUPPORTED_COMPOSE:
        return _result(
            "compose",
            "warn",
            measured,
            required,
            f"Compose {info.version} lacks features the install uses: upgrade the plugin",
            details=details,
        )
    return _result("compose", "pass", measured, required, details=details)


def evaluate_ports(scan: ListenerScan, req: Requirements) -> CheckResult:
    wanted = ", ".join(str(p) for p in req.ports)
    required = f"free TCP ports: {wanted}"
    held: dict[int, list[str]] = {}
    for listener in scan.listeners:
        owner = (
            f"{listener.process} (pid {listener.pid})"
            if listener.process and listener.pid is not None
            else f"pid {listener.pid}"
            if listener.pid is not None
            else listener.process or "a process this user cannot see"
        )
        entry = f"{owner} on {listener.address}"
        if entry not in held.setdefault(listener.port, []):
            held[listener.port].append(entry)
    details = {
        "required_ports": list(req.ports),
        "in_use": [
            {"port": item.port, "address": item.address, "pid": item.pid, "process": item.process}
            for item in scan.listeners
        ],
    }
    if held:
        measured = "; ".join(
            f"port {port} (for {req.ports.get(port, '?')}) is in use by {', '.join(owners)}"
            for port, owners in sorted(held.items())
        )
        docker_proxy = any(item.process == "docker-proxy" for item in scan.listeners)
        hint = f"stop what holds port {', '.join(str(p) for p in sorted(held))} " + (
            "(docker-proxy: a container publishes it; see `docker ps`)"
            if docker_proxy
            else "or move it to another port"
        )
        return _result("ports", "fail", measured, required, hint, details=details)
    if not scan.complete:
        return _result(
            "ports",
            "warn",
            f"not every port could be tested: {scan.error}",
            required,
            "run the check as root to see every listening socket",
            details=details,
        )
    return _result("ports", "pass", f"{wanted} free", required, details=details)


def evaluate_dns(resolution: Resolution, req: Requirements) -> CheckResult:
    host = resolution.host
    required = (
        f"{host} resolves to this host"
        if not req.is_kubernetes
        else f"{host} resolves (to the cluster's ingress)"
    )
    details = {
        "host": host,
        "addresses": list(resolution.addresses),
        "error": resolution.error,
    }
    if resolution.error is not None:
        causes = {
            "nxdomain": "does not resolve",
            "no_answer": "no DNS server answered",
            "timeout": "the lookup timed out",
        }
        measured = f"{host}: {causes.get(resolution.error, resolution.error_detail or 'failed')}"
        hint = (
            f"create a DNS A record for {host} pointing at this server (or add it to "
            "/etc/hosts for a test), or fix the resolver in /etc/resolv.conf"
            if resolution.error == "nxdomain"
            else "check the DNS servers in /etc/resolv.conf and that they can be reached"
        )
        # On development a certificate for a name nobody resolves is common: say so only.
        status: Status = "warn" if req.target == "development" else "fail"
        return _result("dns", status, measured, required, hint, details=details)
    measured = f"{host} -> {', '.join(resolution.addresses[:4])}"
    if not req.is_kubernetes and resolution.local_addresses:
        local = set(resolution.local_addresses)
        if not local & set(resolution.addresses):
            return _result(
                "dns",
                "warn",
                measured,
                required,
                f"{host} points elsewhere: fine behind NAT or a load balancer that forwards "
                "here, otherwise update the DNS record",
                details=details,
            )
    return _result("dns", "pass", measured, required, details=details)


def evaluate_install_dir(access: WriteAccess) -> CheckResult:
    required = "writable directory (created when missing)"
    details = {
        "path": access.path,
        "exists": access.exists,
        "writable": access.writable,
        "checked_at": access.checked_at,
        "entries": access.entry_count,
    }
    if access.exists and not access.is_dir:
        return _result(
            "install_dir",
            "fail",
            f"{access.path} exists and is not a directory",
            required,
            "choose another install_dir, or move that file away",
            details=details,
        )
    if not access.writable:
        where = access.path if access.exists else f"{access.checked_at} (to create {access.path})"
        return _result(
            "install_dir",
            "fail",
            f"cannot write to {where}: {access.error or 'permission denied'}",
            required,
            f"run as root, or: sudo mkdir -p {access.path} && sudo chown $USER {access.path}; "
            "or choose another install_dir",
            details=details,
        )
    if not access.exists:
        return _result(
            "install_dir",
            "pass",
            f"{access.path} will be created in {access.checked_at} (writable)",
            required,
            details=details,
        )
    if (
        access.entry_count
        and "state" not in access.entries
        and "docker-compose.yml" not in (access.entries)
    ):
        shown = ", ".join(access.entries) + (", ..." if access.entry_count > 5 else "")
        return _result(
            "install_dir",
            "warn",
            f"{access.path} is writable and holds {access.entry_count} other entries ({shown})",
            required,
            "it does not look like a CodeQual installation: generated files may replace "
            "files of the same name; choose an empty directory",
            details=details,
        )
    return _result("install_dir", "pass", f"{access.path} is writable", required, details=details)


# --------------------------------------------------------------------------- Kubernetes


def evaluate_kubernetes(info: KubernetesInfo, req: Requirements) -> CheckResult:
    required = (
        f"a reachable cluster, Kubernetes {dotted(SUPPORTED_KUBERNETES)}+ "
        f"({dotted(MIN_KUBERNETES)} at the least)"
    )
    details: dict[str, Any] = {
        "context": info.context,
        "server": info.server,
        "version": info.version,
        "git_version": info.git_version,
        "openshift": _is_openshift(info),
        "error": info.error,
    }
    if not info.reachable:
        where = f"context {info.context}" if info.context else "the current context"
        measured = f"{where} not reachable: {info.error_detail or info.error}"
        hints = {
            "no_config": (
                "point KUBECONFIG at a kubeconfig (or set kubernetes.context) for the "
                "target cluster"
            ),
            "unauthorized": "the kubeconfig's credentials were refused: refresh them "
            "(e.g. re-run your cloud's get-credentials command)",
            "timeout": f"the API server {info.server or ''} did not answer in time: check the "
            "network path and the server address in the kubeconfig",
        }
        hint = hints.get(
            info.error or "",
            f"the API server {info.server or ''} could not be reached: check the address and "
            "that the cluster is up",
        )
        return _result("kubernetes", "fail", measured, required, hint, details=details)
    version = version_tuple(info.version)
    flavour = "OpenShift" if _is_openshift(info) else "Kubernetes"
    measured = f"{flavour} {info.git_version or info.version} at {info.server}"
    if version < MIN_KUBERNETES:
        return _result(
            "kubernetes",
            "fail",
            measured,
            required,
            f"upgrade the cluster to Kubernetes {dotted(SUPPORTED_KUBERNETES)} or newer",
            details=details,
        )
    if req.openshift and not _is_openshift(info):
        return _result(
            "kubernetes",
            "fail",
            measured,
            required,
            "kubernetes.openshift is true but the cluster serves no OpenShift API groups: "
            "set it to false, or pick the OpenShift context",
            details=details,
        )
    if req.openshift is False and _is_openshift(info):
        return _result(
            "kubernetes",
            "warn",
            measured,
            required,
            "this is OpenShift: set kubernetes.openshift: true for a Route and SCC-friendly pods",
            details=details,
        )
    if version < SUPPORTED_KUBERNETES:
        return _result(
            "kubernetes",
            "warn",
            measured,
            required,
            f"Kubernetes {info.version} is out of upstream support: upgrade the cluster",
            details=details,
        )
    return _result("kubernetes", "pass", measured, required, details=details)


def _is_openshift(info: KubernetesInfo) -> bool:
    return "route.openshift.io" in info.api_groups or "config.openshift.io" in info.api_groups


def _nodes_text(nodes: Sequence[NodeInfo], value: str) -> str:
    if not nodes:
        return "no nodes"
    if value == "cpu":
        items = [f"{n.cpus:g}" for n in nodes]
        return f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}: {', '.join(items)} CPUs"
    items = [size(n.memory_bytes) for n in nodes]
    return f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}: {', '.join(items)}"


def evaluate_node_capacity(name: str, nodes: Sequence[NodeInfo], req: Requirements) -> CheckResult:
    """cpu or memory on the Kubernetes targets: enough nodes that each meet the profile."""
    profile, floor = req.profile, req.floor

    def meets(node: NodeInfo, p: Profile) -> bool:
        if name == "cpu":
            return node.cpus >= p.cpus
        return memory_accepts(node.memory_bytes, p.memory_bytes)

    per_node = f"{profile.cpus} CPUs" if name == "cpu" else size(profile.memory_bytes)
    count = f"{profile.nodes} node{'s' if profile.nodes != 1 else ''}"
    required = f"{count} of {per_node} or more ({profile.name} profile)"
    good = sum(1 for n in nodes if meets(n, profile))
    usable = sum(1 for n in nodes if meets(n, floor))
    measured = _nodes_text(nodes, name)
    details = {
        "nodes": [{"name": n.name, "cpus": n.cpus, "memory_bytes": n.memory_bytes} for n in nodes],
        "meeting_profile": good,
    }
    if good >= profile.nodes:
        return _result(name, "pass", measured, required, details=details)
    if usable >= floor.nodes:
        return _result(
            name,
            "warn",
            measured,
            required,
            f"{good} of the {profile.nodes} nodes the {profile.name} profile expects: add "
            "nodes or grow them for that scale",
            details=details,
        )
    return _result(
        name,
        "fail",
        measured,
        required,
        f"no node meets the {floor.name} profile ({floor.cpus} CPUs, {size(floor.memory_bytes)}): "
        "add a larger node pool",
        details=details,
    )


def evaluate_node_architecture(nodes: Sequence[NodeInfo]) -> CheckResult:
    archs = sorted({n.architecture for n in nodes if n.architecture})
    required = "amd64 nodes; arm64 with arm64 images"
    if not archs:
        return _result(
            "architecture",
            "warn",
            "the nodes do not report an architecture",
            required,
            "check the nodes' architecture with `kubectl get nodes -o wide`",
            details={"architectures": []},
        )
    status, hint = _architecture_verdict(archs)
    return _result(
        "architecture",
        status,
        f"nodes: {', '.join(archs)}",
        required,
        hint,
        details={"architectures": archs},
    )
