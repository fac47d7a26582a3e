"""Running the prerequisite checks: probe, evaluate, report.

:func:`run_prerequisites` is the install's first step and the ``check`` command. The slow
probes (the Docker Engine, Compose, DNS, the Kubernetes API, the public registry for the
air-gap guess) start first, each in its own daemon thread with its own timeout, while the
fast ones (procfs, sysfs, statvfs) run in the calling thread; a probe that does not answer
in time becomes a failed or warning check, never a hang. Daemon threads, because a
resolver call cannot be cancelled and must not hold the process open at exit.
"""

from __future__ import annotations

import _thread
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Generic, TypeVar

from installer.checks.probes import (
    DOCKER_TIMEOUT,
    PUBLIC_REGISTRY,
    ComposeInfo,
    DiskInfo,
    DockerInfo,
    HostProbe,
    KubernetesInfo,
    Probe,
    Resolution,
)
from installer.checks.report import CheckResult, PrerequisiteReport
from installer.checks.requirements import (
    INSTALL_DIR_BYTES,
    Requirements,
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
from installer.errors import UsageError
from installer.names import CHECK_NAMES
from installer.records import Record
from installer.resources import Capacity

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.checks.detect import Environment

T = TypeVar("T")

DEFAULT_DOCKER_ROOT = "/var/lib/docker"
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain"})


class Timeouts(Record):
    """Seconds each slow probe may take (the Kubernetes one is per API request).

    ``grace`` is added to each wait: a probe given a timeout needs a moment beyond it to
    report that it timed out. ``kubernetes_import`` allows for importing the client.
    """

    docker: float = DOCKER_TIMEOUT
    compose: float = 5.0
    dns: float = 2.0
    kubernetes: float = 4.0
    registry: float = 1.5
    grace: float = 0.5
    kubernetes_import: float = 2.0

    @property
    def kubernetes_total(self) -> float:
        """Up to three API requests (version, API groups, nodes) and the import."""
        return self.kubernetes * 3 + self.kubernetes_import


class _Background(Generic[T]):
    """A probe running in a thread of its own; ``wait`` gives its value or why there is
    none.

    Started with ``_thread``, not ``threading.Thread``: ``Thread.start()`` waits until the
    new thread has run, a round trip through the interpreter lock for each probe that
    ``check``'s start-up budget notices. Such a thread does not hold up the process's exit
    (as a daemon thread would not): a resolver call cannot be cancelled.
    """

    def __init__(self, name: str, work: Callable[[], T]) -> None:
        self.name = name
        self._value: T | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self.started = time.monotonic()
        _thread.start_new_thread(self._run, (work,))

    def _run(self, work: Callable[[], T]) -> None:
        try:
            self._value = work()
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
            self._error = e
        finally:
            self._done.set()

    def wait(self, budget: float) -> tuple[T | None, str | None]:
        """(value, None), or (None, "timeout") / (None, the exception) after ``budget``
        seconds counted from the start."""
        remaining = max(0.0, self.started + budget - time.monotonic())
        if not self._done.wait(remaining):
            return None, "timeout"
        if self._error is not None:
            return None, f"{type(self._error).__name__}: {self._error}"
        return self._value, None


def _unmeasured(name: str, error: str, required: str | None = None) -> CheckResult:
    return CheckResult(
        name,
        "warn",
        f"could not be measured ({error})",
        required,
        hint="the probe itself failed: run `codequal-installer check --json` and report it",
    )


def _skip_reasons(
    req: Requirements, answer_skips: Iterable[str], cli_skips: Iterable[str], skip_reason: str
) -> dict[str, str]:
    reasons: dict[str, str] = {}
    for name in answer_skips:
        reasons[name] = "skipped by checks.skip in the answer file"
    for name in cli_skips:
        reasons[name] = skip_reason
    unknown = sorted(set(reasons) - set(CHECK_NAMES))
    if unknown:
        raise UsageError(
            f"unknown check name: {', '.join(unknown)}",
            hint=f"check names: {', '.join(CHECK_NAMES)}",
        )
    return reasons


def run_prerequisites(
    subject: AnswerFile | str,
    *,
    skip: Iterable[str] = (),
    probe: Probe | None = None,
    timeouts: Timeouts | None = None,
    skip_reason: str = "skipped by --skip",
) -> PrerequisiteReport:
    """Check this machine (or cluster) against what ``subject`` needs.

    ``subject`` is a validated answer file or a bare target name (its defaults).
    ``skip`` names checks not to run, on top of the answer file's ``checks.skip``; they
    appear in the report as ``skipped`` with the reason. Checks the target does not use
    appear as ``skipped`` too, saying so. Never raises for a condition of the machine.
    """
    if isinstance(subject, str):
        req = Requirements.for_target(subject)
        answer_skips: Iterable[str] = ()
    else:
        req = Requirements.from_answers(subject)
        answer_skips = subject.checks.skip
    reasons = _skip_reasons(req, answer_skips, skip, skip_reason)
    probe = probe if probe is not None else HostProbe()
    limits = timeouts or Timeouts()

    def active(name: str) -> bool:
        return name in req.applicable and name not in reasons

    # Slow probes first, so they overlap with everything below.
    docker_job = (
        _Background("docker", lambda: probe.docker(limits.docker))
        if not req.is_kubernetes and any(active(n) for n in ("docker", "docker_disk", "cgroup"))
        else None
    )
    compose_job = (
        _Background("compose", lambda: probe.compose(limits.compose)) if active("compose") else None
    )
    domain = req.domain
    dns_job = None
    if active("dns") and domain:
        compare = not req.is_kubernetes and domain not in _LOCAL_NAMES
        dns_job = _Background(
            "dns", lambda: probe.resolve(domain, limits.dns, compare_local=compare)
        )
    kube_job = (
        _Background(
            "kubernetes", lambda: probe.kubernetes(req.kubernetes_context, limits.kubernetes)
        )
        if req.is_kubernetes
        and any(active(n) for n in ("kubernetes", "cpu", "memory", "architecture"))
        else None
    )
    registry_job = _Background("registry", lambda: probe.resolve(PUBLIC_REGISTRY, limits.registry))

    results: dict[str, CheckResult] = {}
    capacity: Capacity | None = None

    def guarded(name: str, run: Callable[[], CheckResult]) -> None:
        try:
            results[name] = run()
        except Exception as e:  # noqa: BLE001 - a probe bug must not end in a traceback
            results[name] = _unmeasured(name, f"{type(e).__name__}: {e}")

    # Fast probes, in this thread.
    if not req.is_kubernetes:
        # Measured even when both checks are skipped: `profile: auto` sizes from it.
        try:
            cpu, memory = probe.cpu(), probe.memory()
            capacity = Capacity(cpus=float(cpu.logical), memory_bytes=memory.total_bytes)
            if active("cpu"):
                guarded("cpu", lambda: evaluate_cpu(cpu, req))
            if active("memory"):
                guarded("memory", lambda: evaluate_memory(memory, req))
        except Exception as e:  # noqa: BLE001
            for name in ("cpu", "memory"):
                if active(name):
                    results[name] = _unmeasured(name, f"{type(e).__name__}: {e}")
        os_info = None
        if active("os") or active("kernel"):
            os_info = probe.operating_system()
        if active("os") and os_info is not None:
            info = os_info
            guarded("os", lambda: evaluate_os(info, req))
        if active("kernel"):
            system = os_info.system if os_info is not None else "Linux"
            guarded("kernel", lambda: evaluate_kernel(probe.kernel(), req, system))
        if active("architecture"):
            guarded("architecture", lambda: evaluate_architecture(probe.architecture(), req))
        if active("ports"):
            ports = list(req.ports)
            guarded("ports", lambda: evaluate_ports(probe.listeners(ports), req))
        if active("install_dir"):
            guarded(
                "install_dir", lambda: evaluate_install_dir(probe.write_access(req.install_dir))
            )
        install_disk: DiskInfo | None = None
        if active("disk") or active("docker_disk"):
            try:
                install_disk = probe.disk(req.install_dir)
            except Exception as e:  # noqa: BLE001
                results["disk"] = _unmeasured("disk", f"{type(e).__name__}: {e}")

    # Slow probes' results.
    docker: DockerInfo | None = None
    if docker_job is not None:
        value, error = docker_job.wait(limits.docker + limits.grace)
        docker = value if value is not None else _docker_not_answering(error, limits.docker)
        if active("docker"):
            results["docker"] = evaluate_docker(docker)
        if active("cgroup"):
            info_docker = docker
            guarded("cgroup", lambda: evaluate_cgroup(probe.cgroup(), info_docker))
    if not req.is_kubernetes and (active("disk") or active("docker_disk")):
        _disk_checks(
            probe, req, docker=docker, install_disk=install_disk, results=results, active=active
        )
    if compose_job is not None:
        compose, error = compose_job.wait(limits.compose + limits.grace)
        if compose is None:
            compose = ComposeInfo(
                None,
                error="the Compose version check did not finish in time"
                if error == "timeout"
                else f"probe failed ({error})",
            )
        results["compose"] = evaluate_compose(compose)
    if dns_job is not None:
        resolution, error = dns_job.wait(limits.dns)
        if resolution is None:
            resolution = Resolution(
                domain or "",
                error="timeout" if error == "timeout" else "error",
                error_detail=error,
            )
        results["dns"] = evaluate_dns(resolution, req)
    kubernetes: KubernetesInfo | None = None
    if kube_job is not None:
        kubernetes, error = kube_job.wait(limits.kubernetes_total)
        if kubernetes is None:
            kubernetes = KubernetesInfo(
                False,
                req.kubernetes_context,
                error="timeout" if error == "timeout" else "error",
                error_detail=(
                    f"no answer within {limits.kubernetes_total:g} s"
                    if error == "timeout"
                    else error
                ),
            )
        capacity = _kubernetes_results(kubernetes, req, results, active)

    for name in CHECK_NAMES:
        if name in results:
            continue
        if name in reasons and name in req.applicable:
            results[name] = CheckResult(name, "skipped", None, None, reason=reasons[name])
        elif name not in req.applicable:
            results[name] = CheckResult(
                name, "skipped", None, None, reason=f"not used by the {req.target} target"
            )
        elif name == "dns" and not domain:
            results[name] = CheckResult(
                name,
                "skipped",
                None,
                None,
                reason="no domain to look up: give the answer file (--answers)",
            )

    registry, _error = registry_job.wait(limits.registry)
    environment: Environment | None
    try:
        environment = probe.environment(docker, kubernetes, registry)
    except Exception:  # noqa: BLE001 - detection is informative; the checks stand without it
        environment = None
    return PrerequisiteReport(
        target=req.target,
        profile=req.profile.name,
        results=tuple(results[name] for name in CHECK_NAMES if name in results),
        environment=environment,
        capacity=capacity,
    )


def _docker_not_answering(error: str | None, timeout: float) -> DockerInfo:
    from installer.engine.endpoint import docker_endpoint

    resolved = docker_endpoint(os.environ)
    endpoint, from_env = resolved.url, resolved.chosen_by_operator
    if error == "timeout":
        return DockerInfo(
            endpoint,
            reachable=False,
            error="timeout",
            error_detail=f"no answer within {timeout:g} s",
            endpoint_from_env=from_env,
        )
    return DockerInfo(
        endpoint, reachable=False, error="error", error_detail=error, endpoint_from_env=from_env
    )


def _disk_checks(
    probe: Probe,
    req: Requirements,
    *,
    docker: DockerInfo | None,
    install_disk: DiskInfo | None,
    results: dict[str, CheckResult],
    active: Callable[[str], bool],
) -> None:
    note = None
    root = docker.root_dir if docker is not None and docker.root_dir else None
    if root is None:
        root = DEFAULT_DOCKER_ROOT
        note = "Docker not reachable: its default data root"
    try:
        docker_disk = probe.disk(root)
    except Exception as e:  # noqa: BLE001
        results["docker_disk"] = _unmeasured("docker_disk", f"{type(e).__name__}: {e}")
        docker_disk = None
    shared = (
        install_disk is not None
        and docker_disk is not None
        and install_disk.device == docker_disk.device
    )
    data_need, data_floor = req.profile.disk_bytes, req.floor.disk_bytes
    if active("disk") and install_disk is not None and "disk" not in results:
        need = INSTALL_DIR_BYTES + (data_need if shared else 0)
        floor = INSTALL_DIR_BYTES + (data_floor if shared else 0)
        what = "install_dir" + (" and Docker's images and volumes" if shared else "")
        results["disk"] = evaluate_disk("disk", install_disk, need, floor, what, shared=shared)
    if active("docker_disk") and docker_disk is not None:
        need = data_need + (INSTALL_DIR_BYTES if shared else 0)
        floor = data_floor + (INSTALL_DIR_BYTES if shared else 0)
        results["docker_disk"] = evaluate_disk(
            "docker_disk",
            docker_disk,
            need,
            floor,
            "Docker's images and volumes" + (" and install_dir" if shared else ""),
            shared=shared,
            note=note,
        )


def _kubernetes_results(
    info: KubernetesInfo,
    req: Requirements,
    results: dict[str, CheckResult],
    active: Callable[[str], bool],
) -> Capacity | None:
    if active("kubernetes"):
        results["kubernetes"] = evaluate_kubernetes(info, req)
    node_checks = [n for n in ("cpu", "memory", "architecture") if active(n)]
    if not info.reachable:
        for name in node_checks:
            results[name] = CheckResult(
                name, "skipped", None, None, reason="not measured: the cluster could not be reached"
            )
        return None
    if info.nodes is None:
        for name in node_checks:
            results[name] = CheckResult(
                name,
                "warn",
                f"the nodes could not be listed ({info.nodes_error})",
                None,
                hint="grant this user `list nodes`, or check node sizes yourself with "
                "`kubectl describe nodes`",
            )
        return None
    for name in ("cpu", "memory"):
        if active(name):
            results[name] = evaluate_node_capacity(name, info.nodes, req)
    if active("architecture"):
        results["architecture"] = evaluate_node_architecture(info.nodes)
    if not info.nodes:
        return None
    return Capacity(
        cpus=min(n.cpus for n in info.nodes),
        memory_bytes=min(n.memory_bytes for n in info.nodes),
    )
