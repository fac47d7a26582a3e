"""Why pods are not running, in the operator's words.

When a rollout or a Job does not finish, the bare facts (``0/2 available``) help nobody.
:func:`explain_pods` reads the pods behind a selector, their container states and their
events, and says what is wrong and what to do: an image that cannot be pulled (with the
registry's answer and a hint about the mirror), a container that keeps crashing (with its
last log lines), a pod the scheduler cannot place (with the scheduler's reason, and the
volume claim's own event when a storage class is missing), a container that runs but
fails its readiness probe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from installer.engine.kubernetes import Cluster, KubernetesError

LOG_LINES = 10


@dataclass
class Finding:
    """One thing wrong with one or more pods: a sentence, details, and what to do."""

    summary: str
    details: list[str] = field(default_factory=list)
    hint: str | None = None
    pods: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        more = f" (and {len(self.pods) - 1} more pods)" if len(self.pods) > 1 else ""
        return [self.summary + more, *(f"  {d}" for d in self.details)]


@dataclass
class Explanation:
    """Every finding about a workload; empty when the pods look healthy or do not exist."""

    findings: list[Finding] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [line for f in self.findings for line in f.lines()]

    @property
    def hint(self) -> str | None:
        hints = [f.hint for f in self.findings if f.hint]
        return "; ".join(dict.fromkeys(hints)) or None

    @property
    def summary(self) -> str:
        return "; ".join(f.summary for f in self.findings)


def _events_for(cluster: Cluster, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
    try:
        events = cluster.list_objects(
            "v1",
            "Event",
            namespace,
            field_selector=f"involvedObject.kind={kind},involvedObject.name={name}",
        )
    except KubernetesError:
        return []  # events are an explanation, never a reason to fail differently
    return sorted(events, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))


def _last_event(
    events: list[dict[str, Any]], reasons: tuple[str, ...], contains: str = ""
) -> str | None:
    for event in reversed(events):
        message = str(event.get("message") or "")
        if event.get("reason") in reasons and contains in message:
            return message
    return None


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition  # type: ignore[no-any-return]
    return None


def _pull_hint(image: str, mirror: str | None) -> str:
    if mirror and image.startswith(mirror):
        return (
            f"push the image to the mirror {mirror} (`codequal-installer apply --bundle "
            "FILE` pushes every image of the bundle) and check that the pull secret "
            "codequal-registry holds valid credentials"
        )
    return (
        "check the image name and that the cluster's nodes can reach its registry; a site "
        "without internet access needs registry.mirror (and the offline bundle)"
    )


def _scheduling_finding(
    cluster: Cluster, namespace: str, pod: Mapping[str, Any], message: str
) -> Finding:
    name = pod["metadata"]["name"]
    finding = Finding(f"pod {name} cannot be scheduled: {message}", pods=[name])
    if "Insufficient cpu" in message or "Insufficient memory" in message:
        finding.hint = (
            "the nodes cannot give the CPU or memory the pods request: choose a smaller "
            "resources.profile, lower the replica counts, or add nodes"
        )
    elif "PersistentVolumeClaim" in message or "persistentvolumeclaim" in message:
        for volume in pod.get("spec", {}).get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim:
                continue
            events = _events_for(cluster, namespace, "PersistentVolumeClaim", claim)
            problem = _last_event(events, ("ProvisioningFailed", "FailedBinding"))
            if problem:
                finding.details.append(f"volume claim {claim} is not bound: {problem}")
        finding.hint = (
            "the volume claims cannot be bound: set kubernetes.storage_class to a StorageClass "
            "that exists (`kubectl get storageclass`), or mark one as the cluster default"
        )
    else:
        finding.hint = "see `kubectl describe pod` for the scheduler's full reasoning"
    return finding


def _container_findings(
    cluster: Cluster, namespace: str, pod: Mapping[str, Any], mirror: str | None
) -> list[Finding]:
    name = pod["metadata"]["name"]
    status = pod.get("status") or {}
    events: list[dict[str, Any]] | None = None
    findings: list[Finding] = []
    for container in (status.get("initContainerStatuses") or []) + (
        status.get("containerStatuses") or []
    ):
        cname = container.get("name", "?")
        image = str(container.get("image", ""))
        state = container.get("state") or {}
        waiting = state.get("waiting") or {}
        reason = waiting.get("reason")
        if reason in ("ImagePullBackOff", "ErrImagePull", "InvalidImageName"):
            if events is None:
                events = _events_for(cluster, namespace, "Pod", name)
            registry_said = _last_event(events, ("Failed",), "Failed to pull image") or waiting.get(
                "message", ""
            )
            finding = Finding(
                f"container {cname} of pod {name}: the image {image} cannot be pulled ({reason})",
                [f"the node reported: {registry_said}"] if registry_said else [],
                _pull_hint(image, mirror),
                [name],
            )
            findings.append(finding)
        elif reason == "CrashLoopBackOff":
            last = (container.get("lastState") or {}).get("terminated") or {}
            code = last.get("exitCode")
            restarts = container.get("restartCount", 0)
            logs = _log_tail(cluster, namespace, name, cname)
            findings.append(
                Finding(
                    f"container {cname} of pod {name} keeps crashing (exit code {code}, "
                    f"restarted {restarts} times)",
                    [f"last log lines of {cname}:", *(f"| {line}" for line in logs)]
                    if logs
                    else ["it wrote nothing to its log before exiting"],
                    "the application exits on start: its last log lines above say why "
                    "(often a missing setting, a wrong secret or an unreachable database)",
                    [name],
                )
            )
        elif reason in ("CreateContainerConfigError", "CreateContainerError"):
            findings.append(
                Finding(
                    f"container {cname} of pod {name} cannot be created: "
                    f"{waiting.get('message', reason)}",
                    hint="a Secret or ConfigMap the pod refers to is missing or lacks a key",
                    pods=[name],
                )
            )
        elif "running" in state and not container.get("ready"):
            if events is None:
                events = _events_for(cluster, namespace, "Pod", name)
            probe = _last_event(events, ("Unhealthy",))
            findings.append(
                Finding(
                    f"container {cname} of pod {name} runs but is not ready"
                    + (f": {probe}" if probe else " yet"),
                    hint="the readiness probe fails: check the service's health endpoint and "
                    "its log (`kubectl logs`)",
                    pods=[name],
                )
            )
    return findings


def _log_tail(cluster: Cluster, namespace: str, pod: str, container: str) -> list[str]:
    for previous in (True, False):
        try:
            lines = cluster.pod_log(
                namespace, pod, container=container, tail=LOG_LINES, previous=previous
            )
        except KubernetesError:
            continue
        if lines:
            return lines[-LOG_LINES:]
    return []


def _creation_refused(cluster: Cluster, namespace: str, owner: str) -> Finding | None:
    """Why no pod exists: the ReplicaSet's (or Job's) ``FailedCreate`` event."""
    try:
        events = cluster.list_objects(
            "v1", "Event", namespace, field_selector="reason=FailedCreate"
        )
    except KubernetesError:
        return None
    mine = [
        e
        for e in events
        if (name := str((e.get("involvedObject") or {}).get("name", ""))) == owner
        or name.startswith(f"{owner}-")
    ]
    if not mine:
        return None
    last = sorted(mine, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))[-1]
    involved = last.get("involvedObject") or {}
    return Finding(
        f"its pods cannot be created: {last.get('message', '')}",
        [f"reported for {involved.get('kind', '?')} {involved.get('name', '?')}"],
        "an admission check refuses the pods (Pod Security admission, an OpenShift SCC, a "
        "policy webhook, a quota): the message says which; on OpenShift set "
        "kubernetes.openshift to true",
    )


def explain_pods(
    cluster: Cluster,
    namespace: str,
    selector: str,
    *,
    mirror: str | None = None,
    owner: str | None = None,
) -> Explanation:
    """What keeps the pods matching ``selector`` (of the workload ``owner``) from running
    and being ready."""
    try:
        pods = cluster.list_objects("v1", "Pod", namespace, label_selector=selector)
    except KubernetesError as e:
        return Explanation([Finding(f"the pods could not be read: {e.message}")])
    if not pods:
        refused = _creation_refused(cluster, namespace, owner) if owner else None
        return Explanation([refused or Finding("no pods were created for it")])
    merged: dict[str, Finding] = {}
    for pod in pods:
        found: list[Finding] = []
        scheduled = _condition(pod, "PodScheduled")
        if scheduled is not None and scheduled.get("status") == "False":
            found.append(
                _scheduling_finding(cluster, namespace, pod, str(scheduled.get("message", "")))
            )
        else:
            found.extend(_container_findings(cluster, namespace, pod, mirror))
        for finding in found:
            # The same problem in several replicas is said once.
            key = finding.summary.replace(pod["metadata"]["name"], "<pod>")
            if key in merged:
                merged[key].pods.extend(finding.pods)
            else:
                merged[key] = finding
    return Explanation(list(merged.values()))
