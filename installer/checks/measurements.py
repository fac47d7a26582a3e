"""What the probes measure: one frozen value per measurement, read by the checks.

:mod:`installer.checks.probes` fills them in, :mod:`installer.checks.requirements` judges
them and :mod:`installer.checks.detect` draws conclusions from them; this module imports
none of those, so each can import it.
"""

from __future__ import annotations

from dataclasses import dataclass

from installer.checks.docker_probe import DockerInfo

__all__ = [
    "CgroupInfo",
    "ComposeInfo",
    "CpuInfo",
    "DiskInfo",
    "DockerInfo",
    "Environment",
    "KubernetesInfo",
    "Listener",
    "ListenerScan",
    "MemoryInfo",
    "NodeInfo",
    "OsInfo",
    "Resolution",
    "WriteAccess",
]


@dataclass(frozen=True)
class CpuInfo:
    """Processors the containers can use."""

    logical: int
    physical: int | None = None  # cores without SMT siblings; None when unreadable


@dataclass(frozen=True)
class MemoryInfo:
    """Memory as the kernel reports it (MemTotal is below the installed RAM; see checks)."""

    total_bytes: int
    available_bytes: int | None = None


@dataclass(frozen=True)
class DiskInfo:
    """Free space of the file system that holds ``path`` (or would, once created)."""

    path: str
    measured_at: str  # ``path`` or its nearest existing parent
    free_bytes: int
    total_bytes: int
    device: int  # st_dev: two paths on one file system share their free space


@dataclass(frozen=True)
class OsInfo:
    """Operating system and distribution."""

    system: str  # platform.system(): Linux, Darwin, Windows
    id: str | None = None  # os-release ID: ubuntu, debian, rhel ...
    id_like: tuple[str, ...] = ()
    version_id: str | None = None
    pretty_name: str | None = None
    unseen: str | None = None  # why the host's distribution could not be read (in the image)


@dataclass(frozen=True)
class CgroupInfo:
    """The control-group hierarchy Docker places containers in."""

    version: int | None  # 1 (or hybrid), 2 (unified), None when not Linux or unreadable
    controllers: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ComposeInfo:
    """The Compose CLI plugin (or a docker-compose binary on PATH) and its version."""

    path: str | None
    version: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Listener:
    """A socket listening on one of the ports the install needs."""

    port: int
    address: str
    pid: int | None = None
    process: str | None = None


@dataclass(frozen=True)
class ListenerScan:
    """Listening sockets on the ports asked about; ``complete`` is false when the scan
    could not see every socket (then ``error`` says why)."""

    listeners: tuple[Listener, ...] = ()
    complete: bool = True
    error: str | None = None


@dataclass(frozen=True)
class Resolution:
    """A host name looked up through the system resolver."""

    host: str
    addresses: tuple[str, ...] = ()
    error: str | None = None  # nxdomain, no_answer, timeout, error
    error_detail: str | None = None
    local_addresses: tuple[str, ...] = ()  # this host's own addresses, for comparison


@dataclass(frozen=True)
class NodeInfo:
    """One Kubernetes node's capacity."""

    name: str
    cpus: float
    memory_bytes: int
    architecture: str | None = None
    provider_id: str | None = None


@dataclass(frozen=True)
class KubernetesInfo:
    """The cluster behind a kubeconfig context, or why it could not be reached.

    ``error``: ``no_config``, ``unauthorized``, ``timeout``, ``unreachable``, ``error``.
    ``nodes`` is None when the nodes could not be listed (RBAC), empty only for a cluster
    without nodes.
    """

    reachable: bool
    context: str | None = None
    server: str | None = None
    version: str | None = None  # major.minor.patch
    git_version: str | None = None
    api_groups: tuple[str, ...] = ()
    nodes: tuple[NodeInfo, ...] | None = None
    nodes_error: str | None = None
    error: str | None = None
    error_detail: str | None = None


@dataclass(frozen=True)
class WriteAccess:
    """Whether the installer can create and write ``path``."""

    path: str
    exists: bool
    is_dir: bool
    writable: bool
    checked_at: str  # ``path`` or, when missing, the nearest existing parent
    entries: tuple[str, ...] = ()  # a few names, when non-empty
    entry_count: int = 0
    error: str | None = None


@dataclass(frozen=True)
class Environment:
    """Where the installer runs; every conclusion carries the evidence it rests on."""

    container_runtimes: tuple[str, ...]
    in_container: str | None
    container_evidence: str | None
    kubernetes_flavour: str | None
    cloud: str | None
    cloud_evidence: str | None
    airgapped: bool | None
    airgap_evidence: str

    def to_dict(self) -> dict[str, object]:
        return {
            "container_runtimes": list(self.container_runtimes),
            "in_container": self.in_container,
            "container_evidence": self.container_evidence,
            "kubernetes_flavour": self.kubernetes_flavour,
            "cloud": self.cloud,
            "cloud_evidence": self.cloud_evidence,
            "airgapped": self.airgapped,
            "airgap_evidence": self.airgap_evidence,
        }
