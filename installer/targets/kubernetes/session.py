"""What the steps of one Kubernetes install share: inputs, rendered objects, the cluster."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer.engine.kubernetes import Cluster
from installer.targets.kubernetes.objects import (
    ManifestObject,
    Phase,
    parse_manifest,
    phase_of,
    service_monitors,
    without_autoscaled_replicas,
)

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.credentials import LoadedSecrets, Secrets
    from installer.release import ReleaseManifest
    from installer.render import RenderedPlan
    from installer.runner import CancelToken

PHASES: tuple[Phase, ...] = ("deploy", "database", "services", "monitoring")
# Where the render puts Prometheus's alert rules (one key of its ConfigMap).
RULES_CONFIGMAP = "prometheus-config"
RULES_KEY = "codequal.rules.yml"
APP_SERVICES = ("codequal", "deepwiki")


@dataclass(frozen=True)
class KubeOptions:
    """Timing and overrides of a Kubernetes install (the defaults suit real clusters)."""

    rollout_timeout: float = 600.0  # per verification (all Deployments together)
    job_timeout: float = 1800.0  # the migration Job
    poll_interval: float = 2.0
    request_timeout: float = 30.0
    https_port: int = 443  # the public host's HTTPS port (tests use another)
    https_timeout: float = 120.0
    namespace_timeout: float = 300.0  # for a namespace still being deleted (Terminating)
    environ: Mapping[str, str] | None = None  # KUBECONFIG and friends; os.environ when None
    bundle_key: Path | None = None  # apply --key: the bundle's signature must verify with it


def default_root(answers: AnswerFile) -> Path:
    """Where a Kubernetes install keeps its local state: one directory per context and
    namespace under the user's state directory (``platformdirs``)."""
    import platformdirs

    context = answers.kubernetes.context or "current-context"
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", context)
    base = Path(platformdirs.user_state_dir("codequal-installer"))
    return base / "kubernetes" / f"{safe}--{answers.kubernetes.namespace}"


@dataclass
class KubeInstall:
    """One install: the answers, the rendered objects grouped by step, and the cluster."""

    answers: AnswerFile
    secrets: Secrets | LoadedSecrets
    release: ReleaseManifest
    root: Path
    rendered: RenderedPlan
    objects: list[ManifestObject]
    options: KubeOptions = field(default_factory=KubeOptions)
    bundle: Path | None = None  # the offline bundle (``apply --bundle``, or airgap.bundle)
    # Set by the prerequisites step: the namespace exists and this user may not change it.
    keep_namespace: bool = False
    # Set by the containers step: its apply created the Namespace (True) or found it (False);
    # None when it did not apply. The release record says so; uninstall --purge trusts it.
    namespace_created: bool | None = None
    _cluster: Cluster | None = field(default=None, repr=False)
    _operator: bool | None = field(default=None, repr=False)
    _cancel: CancelToken | None = field(default=None, repr=False)

    @classmethod
    def from_rendered(
        cls,
        answers: AnswerFile,
        secrets: Secrets | LoadedSecrets,
        release: ReleaseManifest,
        root: Path,
        rendered: RenderedPlan,
        *,
        options: KubeOptions,
        bundle: Path | None = None,
    ) -> KubeInstall:
        items = [
            ManifestObject(
                parse_manifest(rendered.file(o.path).content.decode("utf-8"), o.path), o.path
            )
            for o in rendered.kubernetes_objects
        ]
        return cls(
            answers,
            secrets,
            release,
            root,
            rendered,
            without_autoscaled_replicas(items),
            options,
            bundle,
        )

    @property
    def namespace(self) -> str:
        return self.answers.kubernetes.namespace

    @property
    def mirror(self) -> str | None:
        return self.answers.registry.mirror

    @property
    def monitoring_services(self) -> list[str]:
        return [n for n, s in self.release.services.items() if s.role == "monitoring"]

    def secret(self, key: str) -> str | None:
        """The plain value of a secret the operator supplied (never logged)."""
        from installer.credentials import LoadedSecrets

        secrets = self.secrets.secrets if isinstance(self.secrets, LoadedSecrets) else self.secrets
        return secrets.get(key)

    def cluster(self) -> Cluster:
        """The connection, made on first use (so a plan can be built with no cluster)."""
        if self._cluster is None:
            self._cluster = Cluster.connect(
                self.answers.kubernetes.context,
                environ=self.options.environ,
                timeout=self.options.request_timeout,
            )
            self._cluster.sleep = self._retry_wait
        return self._cluster

    def bind_cancel(self, cancel: CancelToken) -> None:
        """The run's cancel token: from now on the cluster's retry waits end on Ctrl-C."""
        self._cancel = cancel

    def _retry_wait(self, seconds: float) -> None:
        """A retry's back-off: the run's interruption at once when it is cancelled (as a
        step's own waits are), a plain wait outside a run."""
        if self._cancel is None:
            time.sleep(seconds)
        else:
            self._cancel.sleep(seconds)

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def prometheus_operator(self) -> bool:
        """The cluster serves ServiceMonitors (the Prometheus Operator's CRDs are there)."""
        if self._operator is None:
            cluster = self.cluster()
            self._operator = cluster.serves("monitoring.coreos.com/v1", "ServiceMonitor")
        return self._operator

    def rendered_phase(self, phase: Phase) -> list[ManifestObject]:
        """The rendered objects a step applies, before any cluster-dependent choice."""
        return [o for o in self.objects if phase_of(o, self.monitoring_services) == phase]

    def phase(self, phase: Phase) -> list[ManifestObject]:
        """The objects a step applies in this cluster."""
        items = self.rendered_phase(phase)
        if phase == "deploy" and self.keep_namespace:
            items = [o for o in items if o.kind != "Namespace"]
        if phase != "monitoring" or "prometheus" not in self.answers.monitoring.components:
            return items
        if not self.answers.monitoring.enabled or not self.prometheus_operator():
            return items
        monitors = service_monitors(self.objects, self.namespace, APP_SERVICES, self._rules())
        if "grafana" in self.answers.monitoring.components:
            # Grafana's data source is our own Prometheus: keep it, and let the cluster's
            # Prometheus scrape the services too.
            return items + monitors
        # The cluster's Prometheus and Alertmanager take over: our routing goes to theirs.
        own = ("prometheus", "alertmanager")
        return [o for o in items if o.service not in own] + monitors + self._operator_alerting()

    def _operator_alerting(self) -> list[ManifestObject]:
        """The AlertmanagerConfig, its receivers' Secret and the uptime Probe (alerting on)."""
        from installer.alerting_operator import (
            ALERTMANAGER_CONFIG_KEY,
            ALERTMANAGER_CONFIG_SECRET,
            PROMETHEUS_CONFIG,
            operator_alerting_objects,
        )

        rendered = {(o.kind, o.ref.name): o.obj for o in self.objects}
        secret = rendered.get(("Secret", ALERTMANAGER_CONFIG_SECRET))
        config = rendered.get(("ConfigMap", PROMETHEUS_CONFIG))
        if secret is None or config is None:
            return []
        labels = dict((secret.get("metadata") or {}).get("labels") or {})
        objects = operator_alerting_objects(
            (secret.get("stringData") or {})[ALERTMANAGER_CONFIG_KEY],
            (config.get("data") or {})["prometheus.yml"],
            self.namespace,
            labels,
        )
        return [ManifestObject(obj) for obj in objects]

    def applied(self) -> list[ManifestObject]:
        """Everything the install applies, in order."""
        return [item for phase in PHASES for item in self.phase(phase)]

    def _rules(self) -> dict[str, Any] | None:
        """The alert rules, as rendered into Prometheus's ConfigMap."""
        from ruamel.yaml import YAML

        for item in self.objects:
            if item.kind == "ConfigMap" and item.ref.name == RULES_CONFIGMAP:
                text = (item.obj.get("data") or {}).get(RULES_KEY)
                if text:
                    data = YAML(typ="safe", pure=True).load(text)
                    return data if isinstance(data, dict) else None
        return None
