"""Every prerequisite check, as one table: name, the targets it serves, what it measures,
and the function that judges the measurement.

Adding a check is one :class:`Check` entry in :data:`CHECKS` (its name added to
:data:`installer.names.CheckName`) and its ``evaluate_*`` function in
:mod:`installer.checks.requirements`; a check that needs something not yet measured adds
a :class:`~installer.checks.readings.Measure` here and the method that takes it to
:class:`~installer.checks.probes.Probe` and :class:`~installer.checks.probes.HostProbe`.
:func:`installer.checks.prerequisites.run_prerequisites` runs whatever this table holds.

One name can have an entry per kind of target: ``cpu`` on a Compose host is this
machine's processors, on Kubernetes each node's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from installer.checks.measurements import (
    CgroupInfo,
    ComposeInfo,
    CpuInfo,
    DiskInfo,
    DockerInfo,
    KubernetesInfo,
    ListenerScan,
    MemoryInfo,
    OsInfo,
    Resolution,
    WriteAccess,
)
from installer.checks.readings import Measure, Readings
from installer.checks.report import CheckResult
from installer.checks.requirements import (
    INSTALL_DIR_BYTES,
    evaluate_architecture,
    evaluate_cgroup,
    evaluate_compose,
    evaluate_cpu,
    evaluate_disk,
    evaluate_dns,
    evaluate_docker,
    evaluate_install_dir,
    evaluate_kernel,
    evaluate_kubernetes,
    evaluate_memory,
    evaluate_node_architecture,
    evaluate_node_capacity,
    evaluate_os,
    evaluate_ports,
)
from installer.live.result import LiveResult
from installer.names import (
    CHECK_NAMES,
    COMPOSE_TARGETS,
    KUBERNETES_TARGETS,
    TARGETS,
    CheckName,
    Target,
)

# A public name every pulling install needs; failing to resolve it means no pulls.
PUBLIC_REGISTRY = "registry-1.docker.io"
DEFAULT_DOCKER_ROOT = "/var/lib/docker"
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain"})


# --------------------------------------------------------------------------- measurements


def _docker_not_answering(readings: Readings, error: str) -> DockerInfo:
    from installer.engine.endpoint import docker_endpoint

    resolved = docker_endpoint(os.environ)
    endpoint, from_env = resolved.url, resolved.chosen_by_operator
    if error == "timeout":
        return DockerInfo(
            endpoint,
            reachable=False,
            error="timeout",
            error_detail=f"no answer within {readings.limits.docker:g} s",
            endpoint_from_env=from_env,
        )
    return DockerInfo(
        endpoint, reachable=False, error="error", error_detail=error, endpoint_from_env=from_env
    )


def _resolve_domain(readings: Readings) -> Resolution:
    req = readings.req
    domain = req.domain or ""
    compare = not req.is_kubernetes and domain not in _LOCAL_NAMES
    return readings.probe.resolve(domain, readings.limits.dns, compare_local=compare)


def _kubernetes_not_answering(readings: Readings, error: str) -> KubernetesInfo:
    total = readings.limits.kubernetes_total
    return KubernetesInfo(
        False,
        readings.req.kubernetes_context,
        error="timeout" if error == "timeout" else "error",
        error_detail=f"no answer within {total:g} s" if error == "timeout" else error,
    )


def _docker_root_disk(readings: Readings) -> tuple[DiskInfo, str | None]:
    """Free space at Docker's data root, and a note when that root is a guess."""
    docker = readings.get(DOCKER)
    if docker.root_dir:
        return readings.probe.disk(docker.root_dir), None
    return readings.probe.disk(DEFAULT_DOCKER_ROOT), "Docker not reachable: its default data root"


CPU = Measure[CpuInfo]("cpu", lambda r: r.probe.cpu())
MEMORY = Measure[MemoryInfo]("memory", lambda r: r.probe.memory())
OPERATING_SYSTEM = Measure[OsInfo]("os", lambda r: r.probe.operating_system())
KERNEL = Measure[str]("kernel", lambda r: r.probe.kernel())
MACHINE = Measure[str]("architecture", lambda r: r.probe.architecture())
CGROUP = Measure[CgroupInfo]("cgroup", lambda r: r.probe.cgroup())
LISTENERS = Measure[ListenerScan]("ports", lambda r: r.probe.listeners(list(r.req.ports)))
WRITE_ACCESS = Measure[WriteAccess](
    "install_dir", lambda r: r.probe.write_access(r.req.install_dir)
)
INSTALL_DISK = Measure[DiskInfo]("install_disk", lambda r: r.probe.disk(r.req.install_dir))
DOCKER = Measure[DockerInfo](
    "docker",
    lambda r: r.probe.docker(r.limits.docker),
    budget=lambda t: t.docker + t.grace,
    stand_in=_docker_not_answering,
)
DOCKER_DISK = Measure[tuple[DiskInfo, "str | None"]](
    "docker_disk", _docker_root_disk, uses=(DOCKER,)
)
COMPOSE = Measure[ComposeInfo](
    "compose",
    lambda r: r.probe.compose(r.limits.compose),
    budget=lambda t: t.compose + t.grace,
    stand_in=lambda _r, error: ComposeInfo(
        None,
        error="the Compose version check did not finish in time"
        if error == "timeout"
        else f"probe failed ({error})",
    ),
)
DNS = Measure[Resolution](
    "dns",
    _resolve_domain,
    budget=lambda t: t.dns,
    stand_in=lambda r, error: Resolution(
        r.req.domain or "",
        error="timeout" if error == "timeout" else "error",
        error_detail=error,
    ),
)
KUBERNETES = Measure[KubernetesInfo](
    "kubernetes",
    lambda r: r.probe.kubernetes(r.req.kubernetes_context, r.limits.kubernetes),
    budget=lambda t: t.kubernetes_total,
    stand_in=_kubernetes_not_answering,
)
REGISTRY = Measure["Resolution | None"](
    "registry",
    lambda r: r.probe.resolve(PUBLIC_REGISTRY, r.limits.registry),
    budget=lambda t: t.registry,
)


# --------------------------------------------------------------------------- the checks


@dataclass(frozen=True)
class Check:
    """One check for some targets: what it measures and how the measurements are judged.

    ``skip_reason`` returns why the check cannot run for these answers (None: it can).
    """

    name: CheckName
    targets: frozenset[Target]
    needs: tuple[Measure[Any], ...]
    evaluate: Callable[[Readings], CheckResult]
    skip_reason: Callable[[Readings], str | None] | None = None


def _disks(readings: Readings) -> tuple[DiskInfo | None, DiskInfo | None, str | None, bool]:
    """(install_dir's disk, Docker's, the note on Docker's, whether one file system holds
    both); a disk that could not be measured is None (its own check says why)."""
    try:
        install = readings.get(INSTALL_DISK)
    except Exception:  # noqa: BLE001 - reported by the disk check itself
        install = None
    try:
        docker, note = readings.get(DOCKER_DISK)
    except Exception:  # noqa: BLE001 - reported by the docker_disk check itself
        docker, note = None, None
    shared = install is not None and docker is not None and install.device == docker.device
    return install, docker, note, shared


def _disk(readings: Readings) -> CheckResult:
    req = readings.req
    install = readings.get(INSTALL_DISK)
    _install, _docker, _note, shared = _disks(readings)
    need = INSTALL_DIR_BYTES + (req.profile.disk_bytes if shared else 0)
    floor = INSTALL_DIR_BYTES + (req.floor.disk_bytes if shared else 0)
    what = "install_dir" + (" and Docker's images and volumes" if shared else "")
    return evaluate_disk("disk", install, need, floor, what, shared=shared)


def _docker_disk(readings: Readings) -> CheckResult:
    req = readings.req
    docker, note = readings.get(DOCKER_DISK)
    _install, _docker, _note, shared = _disks(readings)
    return evaluate_disk(
        "docker_disk",
        docker,
        req.profile.disk_bytes + (INSTALL_DIR_BYTES if shared else 0),
        req.floor.disk_bytes + (INSTALL_DIR_BYTES if shared else 0),
        "Docker's images and volumes" + (" and install_dir" if shared else ""),
        shared=shared,
        note=note,
    )


def _kernel(readings: Readings) -> CheckResult:
    return evaluate_kernel(
        readings.get(KERNEL), readings.req, readings.get(OPERATING_SYSTEM).system
    )


def _on_nodes(name: CheckName) -> Callable[[Readings], CheckResult]:
    """A host check (cpu, memory, architecture) judged on the cluster's nodes."""

    def evaluate(readings: Readings) -> CheckResult:
        info = readings.get(KUBERNETES)
        if not info.reachable:
            return CheckResult(
                name, "skipped", None, None, reason="not measured: the cluster could not be reached"
            )
        if info.nodes is None:
            return CheckResult(
                name,
                "warn",
                f"the nodes could not be listed ({info.nodes_error})",
                None,
                hint="grant this user `list nodes`, or check node sizes yourself with "
                "`kubectl describe nodes`",
            )
        if name == "architecture":
            return evaluate_node_architecture(info.nodes)
        return evaluate_node_capacity(name, info.nodes, readings.req)

    return evaluate


def _no_domain(readings: Readings) -> str | None:
    if readings.req.domain:
        return None
    return "no domain to look up: give the answer file (--answers)"


# --------------------------------------------------------------------------- live checks
# The answers tried against the world (installer.live): each live check is a slow
# measurement of its own, started with the other slow ones, and is asked only when the
# caller hands run_prerequisites the answers' LiveInput (check --answers, apply, the wizard).


def _live_measure(name: CheckName) -> Measure[LiveResult]:
    def take(readings: Readings) -> LiveResult:
        from installer.live.run import LIVE_CHECKS, run_one

        if readings.live is None:  # _no_live keeps the check from asking
            return LiveResult(name, "skipped", None, None, reason="no answers to check")
        return run_one(name, LIVE_CHECKS[name], readings.live)

    def stand_in(readings: Readings, error: str) -> LiveResult:
        from installer.live.run import timed_out

        if error == "timeout":
            return timed_out(name, readings.live, readings.limits.live)
        return LiveResult(name, "fail", f"could not check: {error}", None)

    return Measure[LiveResult](f"live-{name}", take, budget=lambda t: t.live, stand_in=stand_in)


def _no_live(readings: Readings) -> str | None:
    if readings.live is None:
        return "checks the answers: give the answer file (--answers)"
    return None


def _live_check(name: CheckName, targets: frozenset[Target]) -> Check:
    measure = _live_measure(name)

    def evaluate(readings: Readings) -> CheckResult:
        return CheckResult(**readings.get(measure).to_dict())

    return Check(name, targets, (measure,), evaluate, _no_live)


HOST = COMPOSE_TARGETS
CLUSTER = KUBERNETES_TARGETS
EVERY = frozenset(TARGETS)
LIVE_CHECK_NAMES: tuple[CheckName, ...] = (
    "images",
    "database",
    "ldap",
    "tls",
    "proxy",
    "deepwiki",
    "supabase",
    "oidc",
)
# The checks of the machine (or cluster) itself: a report without the answers' live checks.
MACHINE_CHECK_NAMES: tuple[CheckName, ...] = tuple(
    name for name in CHECK_NAMES if name not in LIVE_CHECK_NAMES
)

CHECKS: tuple[Check, ...] = (
    Check("cpu", HOST, (CPU,), lambda r: evaluate_cpu(r.get(CPU), r.req)),
    Check("cpu", CLUSTER, (KUBERNETES,), _on_nodes("cpu")),
    Check("memory", HOST, (MEMORY,), lambda r: evaluate_memory(r.get(MEMORY), r.req)),
    Check("memory", CLUSTER, (KUBERNETES,), _on_nodes("memory")),
    Check("disk", HOST, (INSTALL_DISK, DOCKER_DISK), _disk),
    Check("docker_disk", HOST, (INSTALL_DISK, DOCKER_DISK), _docker_disk),
    Check("os", HOST, (OPERATING_SYSTEM,), lambda r: evaluate_os(r.get(OPERATING_SYSTEM), r.req)),
    Check("kernel", HOST, (OPERATING_SYSTEM, KERNEL), _kernel),
    Check("architecture", HOST, (MACHINE,), lambda r: evaluate_architecture(r.get(MACHINE), r.req)),
    Check("architecture", CLUSTER, (KUBERNETES,), _on_nodes("architecture")),
    Check(
        "cgroup", HOST, (CGROUP, DOCKER), lambda r: evaluate_cgroup(r.get(CGROUP), r.get(DOCKER))
    ),
    Check("docker", HOST, (DOCKER,), lambda r: evaluate_docker(r.get(DOCKER))),
    Check("compose", HOST, (COMPOSE,), lambda r: evaluate_compose(r.get(COMPOSE))),
    Check("ports", HOST, (LISTENERS,), lambda r: evaluate_ports(r.get(LISTENERS), r.req)),
    Check("dns", EVERY, (DNS,), lambda r: evaluate_dns(r.get(DNS), r.req), _no_domain),
    Check(
        "kubernetes",
        CLUSTER,
        (KUBERNETES,),
        lambda r: evaluate_kubernetes(r.get(KUBERNETES), r.req),
    ),
    Check(
        "install_dir", HOST, (WRITE_ACCESS,), lambda r: evaluate_install_dir(r.get(WRITE_ACCESS))
    ),
    *(_live_check(name, CLUSTER if name == "ldap" else EVERY) for name in LIVE_CHECK_NAMES),
)


def checks_for(target: str) -> dict[str, Check]:
    """The checks ``target`` uses, by name, in report order."""
    return {check.name: check for check in CHECKS if target in check.targets}
