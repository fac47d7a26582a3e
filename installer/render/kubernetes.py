"""The Kubernetes objects of an install, decided in Python and listed in apply order.

Each object is one file, ``kubernetes/NN-<kind>-<name>.yaml``; the number is its place in
:data:`APPLY_ORDER`, so ``kubectl apply -f kubernetes/`` and the installer's own API client
create them in the same order: the namespace, then what pods mount or reference, then the
pods, then what routes traffic to them or scales and protects them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from installer.render.context import RenderContext, ServiceSpec

# Kinds in the order they are applied (and deleted in reverse).
APPLY_ORDER: tuple[str, ...] = (
    "Namespace",
    "Secret",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Service",
    "Deployment",
    "Job",
    "Ingress",
    "Route",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
)

API_VERSIONS: dict[str, str] = {
    "Namespace": "v1",
    "Secret": "v1",
    "ConfigMap": "v1",
    "PersistentVolumeClaim": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
    "Job": "batch/v1",
    "Ingress": "networking.k8s.io/v1",
    "Route": "route.openshift.io/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "PodDisruptionBudget": "policy/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
}

# Storage each named volume asks for.
VOLUME_SIZES: dict[str, str] = {
    "codequal_data": "10Gi",
    "deepwiki_data": "10Gi",
    "deepwiki_repos": "50Gi",
    "postgres_data": "20Gi",
    "prometheus_data": "20Gi",
    "grafana_data": "2Gi",
    "loki_data": "20Gi",
    "alertmanager_data": "1Gi",
}
_DEFAULT_VOLUME_SIZE = "10Gi"

# The user each image runs as when the manifest does not say (the images' own users).
DEFAULT_UIDS: dict[str, int] = {
    "postgres": 70,
    "prometheus": 65534,
    "grafana": 472,
    "loki": 10001,
    "alertmanager": 65534,
    "blackbox": 65534,
}

# On Kubernetes the API keeps its state in PostgreSQL; its data directory is a cache, so it
# is an emptyDir: a ReadWriteOnce volume would pin every replica (and the HPA) to one node.
SCRATCH_VOLUME_SERVICES = frozenset({"codequal"})

# Directories an image writes to outside its volumes (the root file system is read-only).
WRITABLE_PATHS: dict[str, tuple[str, ...]] = {
    "postgres": ("/var/run/postgresql",),
    "grafana": ("/var/log/grafana",),
}

# Services whose pods Prometheus scrapes on Kubernetes (through a headless Service).
SCRAPED_SERVICES = ("codequal", "deepwiki", "grafana", "loki")

_SECRETS = "codequal-secrets"
_TLS = "codequal-tls"
_CA = "codequal-ca-bundle"
_CA_DIR = "/etc/codequal/ca"


@dataclass(frozen=True)
class PlannedObject:
    """An object to render: its kind, name, template and the ``obj`` it is rendered with."""

    kind: str
    name: str
    template: str
    obj: dict[str, Any]
    holds_secrets: bool = False

    @property
    def api_version(self) -> str:
        return API_VERSIONS[self.kind]


def object_path(index: int, kind: str, name: str) -> str:
    return f"kubernetes/{index:02d}-{kind.lower()}-{name}.yaml"


def pvc_name(volume: str) -> str:
    return volume.replace("_", "-")


def dns_name(text: str) -> str:
    cleaned = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return cleaned[:63].rstrip("-") or "x"


def _component(svc: ServiceSpec) -> str:
    return {"app": "application", "database": "database", "monitoring": "monitoring"}.get(
        svc.role, svc.role
    )


def _probes(svc: ServiceSpec) -> dict[str, Any]:
    health = svc.health
    if health is None:
        return {}
    if health.http_path:
        action: dict[str, Any] = {"httpGet": {"path": health.http_path, "port": "http"}}
    else:
        test = list(health.test)
        if test and test[0] == "CMD-SHELL":
            command = ["sh", "-c", " ".join(test[1:]).replace("$$", "$")]
        else:
            command = [part.replace("$$", "$") for part in test[1:]]
        action = {"exec": {"command": command}}
    timing = {
        "periodSeconds": health.interval_seconds,
        "timeoutSeconds": health.timeout_seconds,
    }
    startup_failures = max(1, -(-health.start_period_seconds // health.interval_seconds)) + (
        health.retries
    )
    return {
        "startupProbe": {**action, **timing, "failureThreshold": startup_failures},
        "readinessProbe": {**action, **timing, "failureThreshold": 3},
        "livenessProbe": {**action, **timing, "failureThreshold": health.retries},
    }


def _pod_security(svc: ServiceSpec, openshift: bool) -> dict[str, Any]:
    security: dict[str, Any] = {"runAsNonRoot": True}
    if not openshift:
        # OpenShift's restricted SCC assigns a user from the namespace's range and rejects
        # pods that ask for another; elsewhere the image's own user is pinned.
        uid = svc.uid if svc.uid is not None else DEFAULT_UIDS.get(svc.name, 1000)
        gid = svc.gid if svc.gid is not None else uid
        security.update(runAsUser=uid, runAsGroup=gid, fsGroup=gid)
    security["seccompProfile"] = {"type": "RuntimeDefault"}
    return security


def _scrape_annotations(svc: ServiceSpec) -> dict[str, str]:
    if svc.name in ("postgres",):
        return {}
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(svc.port),
        "prometheus.io/path": "/metrics",
    }


def _workload(
    ctx: RenderContext,
    svc: ServiceSpec,
    *,
    name: str,
    pod_name: str,
    component: str,
    config_files: dict[str, Any] | None = None,
    args: list[str] | None = None,
    command: list[str] | None = None,
    with_probes: bool = True,
) -> dict[str, Any]:
    answers = ctx.answers
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    for volume, path in svc.volumes.items():
        mounts.append({"name": pvc_name(volume), "mountPath": path})
        if svc.name in SCRATCH_VOLUME_SERVICES:
            volumes.append({"name": pvc_name(volume), "emptyDir": {}})
        else:
            volumes.append(
                {
                    "name": pvc_name(volume),
                    "persistentVolumeClaim": {"claimName": pvc_name(volume)},
                }
            )
    # Where each image writes besides its volumes: scratch space under a read-only root.
    for index, path in enumerate(WRITABLE_PATHS.get(svc.name, ())):
        mounts.append({"name": f"scratch-{index}", "mountPath": path})
        volumes.append({"name": f"scratch-{index}", "emptyDir": {}})
    if config_files:
        for volume_name, spec in config_files.items():
            mounts.append({"name": volume_name, "mountPath": spec["mount"], "readOnly": True})
            if "secret" in spec:
                # Files that hold secrets come from a Secret, readable by the pod's group.
                secret_source: dict[str, Any] = {"secretName": spec["secret"]}
                if spec.get("items"):
                    secret_source["items"] = spec["items"]
                secret_source["defaultMode"] = 0o440
                volumes.append({"name": volume_name, "secret": secret_source})
                continue
            source: dict[str, Any] = {"name": spec["configmap"]}
            if spec.get("items"):
                source["items"] = spec["items"]
            volumes.append({"name": volume_name, "configMap": source})
    if ctx.ca_bundle and svc.name in ("codequal", "deepwiki"):
        mounts.append({"name": "ca-bundle", "mountPath": _CA_DIR, "readOnly": True})
        volumes.append({"name": "ca-bundle", "configMap": {"name": _CA}})
    env_config = f"{svc.name}-env" if svc.env else None
    return {
        "name": name,
        "app": pod_name,
        "pod_name": pod_name,
        "component": component,
        "container": svc.name,
        "svc": svc,
        "replicas": 1,
        # A ReadWriteOnce volume attaches to one node: the old pod must go first.
        "recreate": bool(svc.volumes) and svc.name not in SCRATCH_VOLUME_SERVICES,
        "annotations": _scrape_annotations(svc) if with_probes else {},
        "service_account": None,
        "restart_policy": None,
        "pod_security": _pod_security(svc, answers.kubernetes.openshift),
        "command": command,
        "args": args,
        "ports": svc.ports if with_probes else [],
        "env_config": env_config,
        "env_secrets": list(svc.secret_env),
        "probes": _probes(svc) if with_probes else {},
        "mounts": mounts,
        "volumes": volumes,
    }


def plan_objects(ctx: RenderContext, monitoring_files: dict[str, str]) -> list[PlannedObject]:
    """Every object of the install, sorted into apply order."""
    answers = ctx.answers
    ns = ctx.namespace
    objects: list[PlannedObject] = []

    def add(kind: str, name: str, obj: dict[str, Any], *, secret: bool = False) -> None:
        obj.setdefault("name", name)
        obj.setdefault("app", name)
        obj.setdefault("component", "configuration")
        objects.append(PlannedObject(kind, name, f"kubernetes/{kind.lower()}.yaml.j2", obj, secret))

    add("Namespace", ns, {"component": "namespace"})

    secret_data = {name: var.value for name, var in ctx.secret_variables.items()}
    add(
        "Secret",
        _SECRETS,
        {"type": "Opaque", "data": secret_data, "app": "codequal"},
        secret=True,
    )
    if ctx.tls_pair is not None and not answers.kubernetes.openshift:
        cert, key = ctx.tls_pair
        add(
            "Secret",
            _TLS,
            {
                "type": "kubernetes.io/tls",
                "data": {"tls.crt": cert, "tls.key": key},
                "app": "codequal",
            },
            secret=True,
        )
    if ctx.registry_auth:
        add(
            "Secret",
            "codequal-registry",
            {
                "type": "kubernetes.io/dockerconfigjson",
                "data": {".dockerconfigjson": ctx.registry_auth},
                "app": "codequal",
            },
            secret=True,
        )

    if "alertmanager" in ctx.services:
        add(
            "Secret",
            "alertmanager-config",
            {
                "type": "Opaque",
                "data": {
                    "alertmanager.yml": monitoring_files["monitoring/alertmanager/alertmanager.yml"]
                },
                "app": "alertmanager",
                "component": "monitoring",
            },
            secret=True,
        )
    for svc in ctx.services.values():
        if svc.env:
            add("ConfigMap", f"{svc.name}-env", {"data": dict(svc.env), "app": svc.name})
    if ctx.ca_bundle:
        add("ConfigMap", _CA, {"data": {"ca.crt": ctx.ca_bundle}, "app": "codequal"})
    if "prometheus" in ctx.services:
        add(
            "ConfigMap",
            "prometheus-config",
            {
                "data": {
                    "prometheus.yml": monitoring_files["monitoring/prometheus/prometheus.yml"],
                    "codequal.rules.yml": monitoring_files[
                        "monitoring/prometheus/rules/codequal.yml"
                    ],
                },
                "app": "prometheus",
                "component": "monitoring",
            },
        )
    if "grafana" in ctx.services:
        add(
            "ConfigMap",
            "grafana-provisioning",
            {
                "data": {
                    "datasources.yml": monitoring_files[
                        "monitoring/grafana/provisioning/datasources/datasources.yml"
                    ],
                    "dashboards.yml": monitoring_files[
                        "monitoring/grafana/provisioning/dashboards/dashboards.yml"
                    ],
                    "codequal.json": monitoring_files[
                        "monitoring/grafana/dashboards/codequal.json"
                    ],
                },
                "app": "grafana",
                "component": "monitoring",
            },
        )
    if "blackbox" in ctx.services:
        add(
            "ConfigMap",
            "blackbox-config",
            {
                "data": {"blackbox.yml": monitoring_files["monitoring/blackbox/blackbox.yml"]},
                "app": "blackbox",
                "component": "monitoring",
            },
        )
    if "loki" in ctx.services:
        add(
            "ConfigMap",
            "loki-config",
            {
                "data": {"loki.yml": monitoring_files["monitoring/loki/loki.yml"]},
                "app": "loki",
                "component": "monitoring",
            },
        )

    for svc in ctx.services.values():
        if svc.name in SCRATCH_VOLUME_SERVICES:
            continue
        for volume in svc.volumes:
            add(
                "PersistentVolumeClaim",
                pvc_name(volume),
                {
                    "size": VOLUME_SIZES.get(volume, _DEFAULT_VOLUME_SIZE),
                    "app": svc.name,
                    "component": _component(svc),
                },
            )

    for svc in ctx.services.values():
        add(
            "Service",
            svc.name,
            {
                "ports": svc.ports,
                "component": _component(svc),
                "selector": svc.name,
                "headless": False,
            },
        )
    if "prometheus" in ctx.services:
        # Headless: one DNS record per ready pod, for Prometheus to scrape each replica.
        for svc in ctx.services.values():
            if svc.name in SCRAPED_SERVICES:
                add(
                    "Service",
                    f"{svc.name}-pods",
                    {
                        "ports": svc.ports,
                        "component": "monitoring",
                        "app": svc.name,
                        "selector": svc.name,
                        "headless": True,
                    },
                )

    for svc in ctx.services.values():
        config_files: dict[str, Any] = {}
        args: list[str] | None = None
        if svc.name == "prometheus":
            config_files["config"] = {
                "configmap": "prometheus-config",
                "mount": "/etc/prometheus",
                "items": [
                    {"key": "prometheus.yml", "path": "prometheus.yml"},
                    {"key": "codequal.rules.yml", "path": "rules/codequal.yml"},
                ],
            }
            args = [
                "--config.file=/etc/prometheus/prometheus.yml",
                "--storage.tsdb.path=/prometheus",
                "--storage.tsdb.retention.time=15d",
            ]
        elif svc.name == "grafana":
            config_files["provisioning"] = {
                "configmap": "grafana-provisioning",
                "mount": "/etc/grafana/provisioning",
                "items": [
                    {"key": "datasources.yml", "path": "datasources/datasources.yml"},
                    {"key": "dashboards.yml", "path": "dashboards/dashboards.yml"},
                ],
            }
            config_files["dashboards"] = {
                "configmap": "grafana-provisioning",
                "mount": "/etc/grafana/dashboards",
                "items": [{"key": "codequal.json", "path": "codequal.json"}],
            }
        elif svc.name == "loki":
            config_files["config"] = {"configmap": "loki-config", "mount": "/etc/loki"}
            args = ["-config.file=/etc/loki/loki.yml"]
        elif svc.name == "alertmanager":
            config_files["config"] = {"secret": "alertmanager-config", "mount": "/etc/alertmanager"}
            args = [
                "--config.file=/etc/alertmanager/alertmanager.yml",
                "--storage.path=/alertmanager",
                "--cluster.listen-address=",  # one replica: no cluster gossip
            ]
        elif svc.name == "blackbox":
            config_files["config"] = {"configmap": "blackbox-config", "mount": "/etc/blackbox"}
            if ctx.alerting is not None and ctx.alerting.probe_ca_file:
                from installer.alerting import PROBE_CA_DIR

                config_files["probe-ca"] = {
                    "secret": _TLS,
                    "mount": PROBE_CA_DIR,
                    "items": [{"key": "tls.crt", "path": "codequal.crt"}],
                }
            args = ["--config.file=/etc/blackbox/blackbox.yml"]
        if svc.command:
            args = None  # the manifest's own command knows its arguments
        obj = _workload(
            ctx,
            svc,
            name=svc.name,
            pod_name=svc.name,
            component=_component(svc),
            config_files=config_files,
            args=args or None,
            command=svc.command,
        )
        if svc.name == "codequal":
            scaling = answers.kubernetes.autoscaling
            obj["replicas"] = (
                scaling.min if scaling.enabled else answers.kubernetes.replicas.codequal
            )
        elif svc.name == "deepwiki":
            obj["replicas"] = answers.kubernetes.replicas.deepwiki
        add("Deployment", svc.name, obj)

    codequal = ctx.services["codequal"]
    migrate_name = dns_name(f"codequal-migrate-{ctx.release.migration.schema_version}")
    job = _workload(
        ctx,
        codequal,
        name=migrate_name,
        pod_name="codequal-migrate",
        component="migration",
        command=list(ctx.release.migration.command),
        with_probes=False,
    )
    job["env_config"] = "codequal-env"
    job["restart_policy"] = "OnFailure"
    add("Job", migrate_name, job)

    routes = ctx.routes
    if answers.kubernetes.openshift:
        for route in routes:
            name = route.service
            annotations = {}
            if route.path != "/":
                annotations["haproxy.router.openshift.io/rewrite-target"] = "/"
            obj = {
                "path": route.path.rstrip("/") or "/",
                "service": route.service,
                "annotations": annotations,
                "certificate": None,
                "key": None,
                "app": route.service,
            }
            secret = False
            if answers.tls.mode == "provided" and ctx.tls_pair is not None:
                obj["certificate"], obj["key"] = ctx.tls_pair
                secret = True
            add("Route", name, obj, secret=secret)
    else:
        base_annotations = {
            "nginx.ingress.kubernetes.io/ssl-redirect": "true",
            "nginx.ingress.kubernetes.io/force-ssl-redirect": "true",
            "nginx.ingress.kubernetes.io/proxy-body-size": "50m",
            "nginx.ingress.kubernetes.io/proxy-read-timeout": "300",
            "nginx.ingress.kubernetes.io/limit-rps": "20",
        }
        for route in routes:
            annotations = dict(base_annotations)
            if route.path == "/":
                path, path_type = "/", "Prefix"
            else:
                prefix = route.path.rstrip("/")
                path, path_type = f"{prefix}(/|$)(.*)", "ImplementationSpecific"
                annotations["nginx.ingress.kubernetes.io/use-regex"] = "true"
                annotations["nginx.ingress.kubernetes.io/rewrite-target"] = "/$2"
            add(
                "Ingress",
                route.service,
                {
                    "path": path,
                    "path_type": path_type,
                    "service": route.service,
                    "port": route.port,
                    "annotations": annotations,
                    "app": route.service,
                },
            )

    scaling = answers.kubernetes.autoscaling
    if scaling.enabled:
        add(
            "HorizontalPodAutoscaler",
            "codequal",
            {
                "target": "codequal",
                "min": scaling.min,
                "max": scaling.max,
                "cpu_percent": scaling.cpu_percent,
                "component": "application",
            },
        )
    for app in ("codequal", "deepwiki"):
        if app in ctx.services:
            add("PodDisruptionBudget", app, {"target": app, "component": "application"})

    for policy, spec in network_policies(ctx).items():
        add("NetworkPolicy", policy, {"spec": spec, "app": "codequal"})

    order = {kind: i for i, kind in enumerate(APPLY_ORDER)}
    return sorted(objects, key=lambda o: order[o.kind])


def _pods(name: str) -> dict[str, Any]:
    return {
        "matchLabels": {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": "codequal"}
    }


def _port_rules(ports: list[int]) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": p} for p in ports]


def network_policies(ctx: RenderContext) -> dict[str, dict[str, Any]]:
    """Default deny, then each allowed flow; every policy selects pods by name label."""
    answers = ctx.answers
    services = ctx.services
    anywhere = {"ipBlock": {"cidr": "0.0.0.0/0"}}
    policies: dict[str, dict[str, Any]] = {
        "default-deny": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        "allow-dns": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [{"namespaceSelector": {}}],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                }
            ],
        },
    }
    scrape_from = [{"podSelector": _pods("prometheus")}] if "prometheus" in services else []
    # The ingress controller (or OpenShift router) lives in another namespace.
    from_ingress: list[dict[str, Any]] = [{"namespaceSelector": {}}]
    app_ingress: dict[str, list[dict[str, Any]]] = {
        "codequal": [*from_ingress, *scrape_from],
        "deepwiki": [*from_ingress, {"podSelector": _pods("codequal")}, *scrape_from],
    }
    external_ports = [443]
    db = answers.database
    if db.kind == "postgres" and db.managed:
        external_ports.append(db.port)
    if answers.ldap.enabled:
        external_ports.extend([389, 636])
    if answers.deepwiki.mode == "external" and answers.deepwiki.url:
        from urllib.parse import urlsplit

        parts = urlsplit(answers.deepwiki.url)
        external_ports.append(parts.port or (443 if parts.scheme == "https" else 80))
    external_ports = sorted(set(external_ports))
    for name in ("codequal", "deepwiki"):
        if name not in services:
            continue
        egress: list[dict[str, Any]] = []
        if name == "codequal" and "deepwiki" in services:
            egress.append(
                {"to": [{"podSelector": _pods("deepwiki")}], "ports": _port_rules([8002])}
            )
        if "postgres" in services and name == "codequal":
            egress.append(
                {"to": [{"podSelector": _pods("postgres")}], "ports": _port_rules([5432])}
            )
        egress.append({"to": [anywhere], "ports": _port_rules(external_ports)})
        policies[f"{name}-traffic"] = {
            "podSelector": _pods(name),
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": app_ingress[name], "ports": _port_rules(services[name].ports)}],
            "egress": egress,
        }
    migrate_egress: list[dict[str, Any]] = [
        {"to": [anywhere], "ports": _port_rules(external_ports)}
    ]
    if "postgres" in services:
        migrate_egress.insert(
            0, {"to": [{"podSelector": _pods("postgres")}], "ports": _port_rules([5432])}
        )
    policies["codequal-migrate-traffic"] = {
        "podSelector": _pods("codequal-migrate"),
        "policyTypes": ["Egress"],
        "egress": migrate_egress,
    }
    if "postgres" in services:
        policies["postgres-traffic"] = {
            "podSelector": _pods("postgres"),
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {"podSelector": _pods("codequal")},
                        {"podSelector": _pods("codequal-migrate")},
                    ],
                    "ports": _port_rules([5432]),
                }
            ],
        }
    if "prometheus" in services:
        policies["prometheus-traffic"] = {
            "podSelector": _pods("prometheus"),
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {"from": [{"podSelector": _pods("grafana")}], "ports": _port_rules([9090])}
            ],
            "egress": [{"to": [{"podSelector": {}}]}],
        }
    if "grafana" in services:
        targets = [n for n in ("prometheus", "loki") if n in services]
        policies["grafana-traffic"] = {
            "podSelector": _pods("grafana"),
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [*from_ingress], "ports": _port_rules([3000])}],
            "egress": [
                {"to": [{"podSelector": _pods(n)}], "ports": _port_rules(services[n].ports)}
                for n in targets
            ]
            or [{"to": [{"podSelector": _pods("grafana")}]}],
        }
    if ctx.alerting is not None:
        policies.update(_alerting_policies(ctx))
    if "loki" in services:
        policies["loki-traffic"] = {
            "podSelector": _pods("loki"),
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    # Log shippers of the cluster push from their own namespaces.
                    "from": [{"namespaceSelector": {}}],
                    "ports": _port_rules([3100]),
                }
            ],
        }
    return policies


def _alerting_policies(ctx: RenderContext) -> dict[str, dict[str, Any]]:
    """Alertmanager: alerts in from Prometheus, out to the receivers. The prober: asked by
    Prometheus, out to the public URL (through the Ingress, wherever it is)."""
    from urllib.parse import urlsplit

    view = ctx.alerting
    assert view is not None  # noqa: S101 - the caller checks
    section = view.section
    anywhere = {"ipBlock": {"cidr": "0.0.0.0/0"}}
    receiver_ports = {443}
    if section.email is not None:
        receiver_ports.add(int(section.email.smtp_host.rsplit(":", 1)[1]))
    if section.pagerduty is not None:
        parts = urlsplit(section.pagerduty.url)
        receiver_ports.add(parts.port or (443 if parts.scheme == "https" else 80))
    probe = urlsplit(view.probe_url)
    probe_port = probe.port or (443 if probe.scheme == "https" else 80)
    from_prometheus = [{"podSelector": _pods("prometheus")}]
    return {
        "alertmanager-traffic": {
            "podSelector": _pods("alertmanager"),
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": from_prometheus, "ports": _port_rules([9093])}],
            "egress": [{"to": [anywhere], "ports": _port_rules(sorted(receiver_ports))}],
        },
        "blackbox-traffic": {
            "podSelector": _pods("blackbox"),
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": from_prometheus, "ports": _port_rules([9115])}],
            "egress": [{"to": [anywhere], "ports": _port_rules([probe_port])}],
        },
    }
