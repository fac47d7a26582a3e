"""The objects an install applies: parsed from the rendered manifests, in apply order.

The configuration step renders one YAML file per object (``kubernetes/NN-<kind>-<name>.yaml``,
see :mod:`installer.render.kubernetes`). Here they are read back into dicts, grouped by the
step that applies them, and adjusted where applying needs it:

* a Deployment that a HorizontalPodAutoscaler scales is applied without ``spec.replicas``
  (the autoscaler owns that field; an installer that kept setting it would fight the
  autoscaler on every run, and server-side apply would report a conflict with it);
* with the Prometheus Operator's CRDs in the cluster, the monitoring step applies
  ServiceMonitors and a PrometheusRule instead of a Prometheus of its own (unless Grafana is
  installed too, which needs a Prometheus it knows the address of).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from installer.engine.kubernetes import ObjectRef

Phase = Literal["deploy", "database", "services", "monitoring"]

# Which step applies each kind (monitoring objects are picked by their service, below).
_PHASE_OF_KIND: dict[str, Phase] = {
    "Job": "database",
    "Ingress": "services",
    "Route": "services",
    "HorizontalPodAutoscaler": "services",
    "PodDisruptionBudget": "services",
    "NetworkPolicy": "services",
    "ServiceMonitor": "monitoring",
    "PrometheusRule": "monitoring",
    "AlertmanagerConfig": "monitoring",
    "Probe": "monitoring",
}
NAME_LABEL = "app.kubernetes.io/name"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
REDACTED = "<redacted>"


@dataclass(frozen=True)
class ManifestObject:
    """One object to apply, and the rendered file it came from (empty for our own)."""

    obj: dict[str, Any]
    path: str = ""

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef.of(self.obj)

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def service(self) -> str:
        return str(((self.obj.get("metadata") or {}).get("labels") or {}).get(NAME_LABEL, ""))

    @property
    def holds_secrets(self) -> bool:
        return self.kind == "Secret"


def parse_manifest(text: str, path: str) -> dict[str, Any]:
    from ruamel.yaml import YAML

    data = YAML(typ="safe", pure=True).load(text)
    if not isinstance(data, dict) or "kind" not in data or "apiVersion" not in data:
        raise ValueError(f"{path} is not a Kubernetes object")
    return data


def phase_of(item: ManifestObject, monitoring_services: Iterable[str]) -> Phase:
    if item.kind in _PHASE_OF_KIND:
        return _PHASE_OF_KIND[item.kind]
    if item.service in set(monitoring_services):
        return "monitoring"
    return "deploy"


def without_autoscaled_replicas(items: Sequence[ManifestObject]) -> list[ManifestObject]:
    """The Deployments an HPA targets lose ``spec.replicas`` (see the module text)."""
    scaled = {
        (item.ref.namespace, ((item.obj.get("spec") or {}).get("scaleTargetRef") or {}).get("name"))
        for item in items
        if item.kind == "HorizontalPodAutoscaler"
    }
    out = []
    for item in items:
        if item.kind == "Deployment" and (item.ref.namespace, item.ref.name) in scaled:
            obj = copy.deepcopy(item.obj)
            obj.get("spec", {}).pop("replicas", None)
            out.append(ManifestObject(obj, item.path))
        else:
            out.append(item)
    return out


def digest(items: Iterable[ManifestObject]) -> str:
    """A stable digest of what is applied (secret values included, as a hash only)."""
    canonical = json.dumps([i.obj for i in items], sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def redacted(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy fit to print: every value of a Secret replaced."""
    out = copy.deepcopy(obj)
    if out.get("kind") == "Secret":
        for key in ("data", "stringData"):
            if isinstance(out.get(key), dict):
                out[key] = {k: REDACTED for k in out[key]}
    tls = (out.get("spec") or {}).get("tls") if out.get("kind") == "Route" else None
    if isinstance(tls, dict) and "key" in tls:
        tls["key"] = REDACTED
    return out


def comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """An object without what changes on every write (for "would this change anything")."""
    out = copy.deepcopy(obj)
    meta = out.get("metadata") or {}
    for key in ("managedFields", "resourceVersion"):
        meta.pop(key, None)
    return out


def service_monitors(
    items: Sequence[ManifestObject],
    namespace: str,
    services: Iterable[str],
    rules: dict[str, Any] | None,
) -> list[ManifestObject]:
    """ServiceMonitors for the application services, and the alert rules as a PrometheusRule."""
    by_name = {i.ref.name: i for i in items if i.kind == "Service"}
    out: list[ManifestObject] = []
    for service in services:
        svc = by_name.get(service)
        if svc is None:
            continue
        labels = dict((svc.obj.get("metadata") or {}).get("labels") or {})
        selector = {
            k: v for k, v in labels.items() if k in (NAME_LABEL, "app.kubernetes.io/instance")
        }
        port = next(
            (
                p.get("name")
                for p in (svc.obj.get("spec") or {}).get("ports") or []
                if p.get("name")
            ),
            "http",
        )
        out.append(
            ManifestObject(
                {
                    "apiVersion": "monitoring.coreos.com/v1",
                    "kind": "ServiceMonitor",
                    "metadata": {"name": service, "namespace": namespace, "labels": labels},
                    "spec": {
                        "selector": {"matchLabels": selector},
                        "namespaceSelector": {"matchNames": [namespace]},
                        "endpoints": [{"port": port, "path": "/metrics", "interval": "30s"}],
                    },
                }
            )
        )
    if rules and rules.get("groups"):
        labels = {
            NAME_LABEL: "codequal",
            "app.kubernetes.io/instance": "codequal",
            "app.kubernetes.io/part-of": "codequal",
            MANAGED_BY_LABEL: "codequal-installer",
            "app.kubernetes.io/component": "monitoring",
        }
        out.append(
            ManifestObject(
                {
                    "apiVersion": "monitoring.coreos.com/v1",
                    "kind": "PrometheusRule",
                    "metadata": {
                        "name": "codequal-alerts",
                        "namespace": namespace,
                        "labels": labels,
                    },
                    "spec": {"groups": rules["groups"]},
                }
            )
        )
    return out
