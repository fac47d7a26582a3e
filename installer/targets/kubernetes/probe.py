"""The prerequisite checks' view of the cluster, through the install's own connection.

:func:`installer.checks.prerequisites.run_prerequisites` asks its probe for the cluster's
version, API groups and nodes. :class:`ClusterProbe` answers from the session's
:class:`~installer.engine.kubernetes.Cluster` (the one the install then uses), read by the
same :func:`~installer.checks.probes.describe_cluster` as ``check``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from installer.checks.probes import HostProbe, KubernetesInfo, describe_cluster
from installer.engine.kubernetes import ClusterUnreachable

if TYPE_CHECKING:
    from installer.targets.kubernetes.session import KubeInstall


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
        return describe_cluster(cluster)
