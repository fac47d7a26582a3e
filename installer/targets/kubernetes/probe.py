"""The prerequisite checks' view of the cluster, through the install's own connection.

:func:`installer.checks.prerequisites.run_prerequisites` asks its probe for the cluster's
version, API groups and nodes. :class:`ClusterProbe` answers from the same
:class:`~installer.engine.kubernetes.Cluster` the install then uses, so the check and the
install always talk to the same context, with the same kubeconfig.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from installer.checks.probes import HostProbe, KubernetesInfo, NodeInfo
from installer.engine.kubernetes import ClusterUnreachable, KubernetesError

if TYPE_CHECKING:
    from installer.targets.kubernetes.session import KubeInstall


def parse_quantity(value: object) -> float:
    """A Kubernetes quantity (``8``, ``7500m``, ``32Gi``, ``1e3``) as a number."""
    text = str(value).strip()
    factors = {
        "Ki": 1024.0,
        "Mi": 1024.0**2,
        "Gi": 1024.0**3,
        "Ti": 1024.0**4,
        "Pi": 1024.0**5,
        "n": 1e-9,
        "u": 1e-6,
        "m": 1e-3,
        "k": 1e3,
        "M": 1e6,
        "G": 1e9,
        "T": 1e12,
        "P": 1e15,
    }
    for suffix in sorted(factors, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factors[suffix]
    return float(text or 0)


class ClusterProbe(HostProbe):
    """The host probe, with the cluster questions answered by the install's connection."""

    def __init__(self, session: KubeInstall) -> None:
        super().__init__(environ=session.options.environ)
        self.session = session

    def kubernetes(self, context: str | None, timeout: float) -> KubernetesInfo:
        try:
            cluster = self.session.cluster()
        except ClusterUnreachable as e:
            return KubernetesInfo(False, context, error="no_config", error_detail=e.message)
        try:
            version = cluster.version()
            groups = tuple(sorted(cluster.api_groups()))
        except KubernetesError as e:
            kind = "unauthorized" if e.status in (401, 403) else "unreachable"
            return KubernetesInfo(
                False, cluster.context, cluster.server, error=kind, error_detail=e.message
            )
        nodes: tuple[NodeInfo, ...] | None
        nodes_error = None
        try:
            listed = cluster.list_objects("v1", "Node")
            nodes = tuple(
                NodeInfo(
                    name=str(n["metadata"]["name"]),
                    cpus=parse_quantity((n.get("status") or {}).get("capacity", {}).get("cpu", 0)),
                    memory_bytes=int(
                        parse_quantity((n.get("status") or {}).get("capacity", {}).get("memory", 0))
                    ),
                    architecture=((n.get("status") or {}).get("nodeInfo") or {}).get(
                        "architecture"
                    ),
                    provider_id=(n.get("spec") or {}).get("providerID"),
                )
                for n in listed
            )
        except KubernetesError as e:
            nodes, nodes_error = None, f"HTTP {e.status} {e.reason or ''}".strip()
        git = version.git_version.lstrip("v").split("-")[0].split("+")[0].split(".")
        patch = git[2] if len(git) > 2 and git[2].isdigit() else "0"
        return KubernetesInfo(
            True,
            cluster.context,
            cluster.server,
            version=f"{version.major}.{version.minor}.{patch}",
            git_version=version.git_version or None,
            api_groups=groups,
            nodes=nodes,
            nodes_error=nodes_error,
        )
