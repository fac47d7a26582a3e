"""Alerting through the Prometheus Operator: what replaces our Alertmanager in such a cluster.

Where the Prometheus Operator runs (and no Grafana of ours needs our own Prometheus), the
cluster's Prometheus evaluates the rules (a PrometheusRule) and sends alerts to the cluster's
Alertmanager. Our routing then goes there as an ``AlertmanagerConfig``
(``monitoring.coreos.com/v1alpha1``) with the same receivers, routes and inhibition as the
rendered ``alertmanager.yml``; the receivers' secrets move into a Secret of their own that it
refers to (an AlertmanagerConfig holds no secret values), and the uptime check becomes a
``Probe`` that the cluster's Prometheus runs through our blackbox exporter.

Everything is derived from the rendered files (the ``alertmanager-config`` Secret and the
``prometheus-config`` ConfigMap), so the plan and the cluster say the same thing.
"""

from __future__ import annotations

import re
from typing import Any

ALERTMANAGER_CONFIG_SECRET = "alertmanager-config"  # noqa: S105 - a Secret's name
ALERTMANAGER_CONFIG_KEY = "alertmanager.yml"
PROMETHEUS_CONFIG = "prometheus-config"
RECEIVERS_SECRET = "alertmanager-receivers"  # noqa: S105 - a Secret's name
OPERATOR_ALERTING_KINDS = ("AlertmanagerConfig", "Probe")

_MATCHER = re.compile(r'^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>=~|!=|!~|=)"(?P<value>.*)"$')
_DURATIONS = ("group_wait", "group_interval", "repeat_interval")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _matchers(items: list[str]) -> list[dict[str, str]]:
    out = []
    for text in items:
        match = _MATCHER.match(text)
        if match is None:
            raise ValueError(f"cannot carry the matcher {text!r} into an AlertmanagerConfig")
        out.append({"name": match["name"], "value": match["value"], "matchType": match["op"]})
    return out


def _route(route: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "receiver" in route:
        out["receiver"] = route["receiver"]
    if "matchers" in route:
        out["matchers"] = _matchers(route["matchers"])
    if "group_by" in route:
        out["groupBy"] = list(route["group_by"])
    for key in _DURATIONS:
        if key in route:
            out[_camel(key)] = route[key]
    if route.get("routes"):
        out["routes"] = [_route(r) for r in route["routes"]]
    return out


def _key_ref(key: str) -> dict[str, str]:
    return {"name": RECEIVERS_SECRET, "key": key}


def _receivers(document: dict[str, Any], secret_data: dict[str, str]) -> list[dict[str, Any]]:
    smtp = document.get("global") or {}
    out = []
    for receiver in document.get("receivers") or []:
        item: dict[str, Any] = {"name": receiver["name"]}
        for config in receiver.get("pagerduty_configs") or []:
            secret_data["pagerduty_routing_key"] = config["routing_key"]
            item.setdefault("pagerdutyConfigs", []).append(
                {
                    "routingKey": _key_ref("pagerduty_routing_key"),
                    "url": config["url"],
                    "severity": config["severity"],
                    "sendResolved": config["send_resolved"],
                }
            )
        for config in receiver.get("slack_configs") or []:
            secret_data["slack_webhook_url"] = config["api_url"]
            item.setdefault("slackConfigs", []).append(
                {
                    "apiURL": _key_ref("slack_webhook_url"),
                    "channel": config["channel"],
                    "sendResolved": config["send_resolved"],
                    "title": config["title"],
                    "text": config["text"],
                }
            )
        for config in receiver.get("email_configs") or []:
            email: dict[str, Any] = {
                "to": config["to"],
                "from": smtp["smtp_from"],
                "smarthost": smtp["smtp_smarthost"],
                "requireTLS": smtp.get("smtp_require_tls", True),
                "sendResolved": config["send_resolved"],
            }
            if "smtp_auth_username" in smtp:
                secret_data["smtp_password"] = smtp["smtp_auth_password"]
                email["authUsername"] = smtp["smtp_auth_username"]
                email["authPassword"] = _key_ref("smtp_password")
            if config.get("headers"):
                email["headers"] = [{"key": k, "value": v} for k, v in config["headers"].items()]
            item.setdefault("emailConfigs", []).append(email)
        out.append(item)
    return out


def operator_alerting_objects(
    alertmanager_yaml: str, prometheus_yaml: str, namespace: str, labels: dict[str, str]
) -> list[dict[str, Any]]:
    """The Secret of the receivers' secrets, the AlertmanagerConfig and the uptime Probe."""
    from ruamel.yaml import YAML

    loader = YAML(typ="safe", pure=True)
    document = loader.load(alertmanager_yaml)
    prometheus = loader.load(prometheus_yaml)
    secret_data: dict[str, str] = {}
    receivers = _receivers(document, secret_data)
    inhibit = [
        {
            "sourceMatch": _matchers(rule["source_matchers"]),
            "targetMatch": _matchers(rule["target_matchers"]),
            "equal": list(rule.get("equal") or []),
        }
        for rule in document.get("inhibit_rules") or []
    ]

    def metadata(name: str) -> dict[str, Any]:
        return {"name": name, "namespace": namespace, "labels": dict(labels)}

    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": metadata(RECEIVERS_SECRET),
            "type": "Opaque",
            "stringData": secret_data,
        },
        {
            "apiVersion": "monitoring.coreos.com/v1alpha1",
            "kind": "AlertmanagerConfig",
            "metadata": metadata("codequal"),
            "spec": {
                "route": _route(document["route"]),
                "inhibitRules": inhibit,
                "receivers": receivers,
            },
        },
    ]
    uptime = next(
        (j for j in prometheus.get("scrape_configs") or [] if j.get("job_name") == "uptime"),
        None,
    )
    if uptime is not None:
        prober = uptime["relabel_configs"][-1]["replacement"]
        static = uptime["static_configs"][0]
        objects.append(
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "Probe",
                "metadata": metadata("codequal-uptime"),
                "spec": {
                    "jobName": "uptime",
                    "module": uptime["params"]["module"][0],
                    "prober": {"url": prober, "path": "/probe"},
                    "targets": {
                        "staticConfig": {
                            "static": list(static["targets"]),
                            "labels": dict(static.get("labels") or {}),
                        }
                    },
                },
            }
        )
    return objects
