# ruff: noqa: E501, PLR0917 - the API's messages are quoted whole; handlers take the request's parts
"""A small Kubernetes API server for tests: the endpoints the installer uses, nothing more.

No real API server can run on the test machines, so the Kubernetes adapter is tested by
pointing the official ``kubernetes`` Python client at this HTTP server. It answers with the
API's own shapes and semantics for what it implements, so that an adapter that works here
has been exercised the way a cluster would exercise it. Everything else is refused plainly.

What it implements, with the real semantics:

* Discovery: ``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>/<version>``
  (the legacy, non-aggregated form). Optional groups: OpenShift (``route.openshift.io``,
  ``security.openshift.io``) and the Prometheus Operator (``monitoring.coreos.com``).
* Objects of every listed resource: get, list (``labelSelector``; ``fieldSelector`` on
  ``metadata.name``, ``metadata.namespace``, ``involvedObject.*``, ``type``, ``status.phase``),
  create, update (PUT with the ``resourceVersion`` precondition), merge patch, delete,
  ``dryRun=All`` on every write (nothing is stored, no version moves).
  ``metadata.uid``, ``creationTimestamp``, a global ``resourceVersion`` that moves only when an
  object really changes, ``metadata.generation`` that moves only when the object's spec (all
  but ``metadata`` and ``status``) changes, and ``status.observedGeneration`` set by the
  controllers below. Namespaced objects need their namespace (404 otherwise). Nodes
  (:class:`Node`, three of 8 CPU / 32 GiB by default) are served read-only, with
  ``allocatable`` below ``capacity`` by what the kubelet reserves (100m CPU, 512 MiB by
  default); the scheduler places pods against allocatable.
* Server-side apply: PATCH ``application/apply-patch+yaml`` with ``fieldManager`` and
  ``force``; ``metadata.managedFields`` (``FieldsV1``) per manager and operation; a field owned
  by another manager with a different live value is a 409 conflict naming the manager and the
  field, unless ``force=true`` takes it over; fields a manager stops applying are removed when
  nobody else owns them; an apply that changes nothing writes nothing. Updates (create, PUT,
  merge patch) take ownership of the fields they change, as in the real server. Field paths
  follow the kind's official schema (the strict JSON schemas ``kubernetes-validate`` ships, of
  the newest Kubernetes minor not above the server's version): lists marked
  ``x-kubernetes-list-type: map`` are merged item by item on their
  ``x-kubernetes-list-map-keys`` (``containers`` and ``env`` by ``name``, ports by port and
  protocol), so two managers may each own items of one list; ``set`` lists value by value;
  other lists are atomic. An item nobody applies any more goes whole. Duplicate keys in an
  applied map list are a 400 (``duplicate entries for key [name="A"]``). Conflicts name the
  field as the API does (``.spec.template.spec.containers[name="codequal"].image``).
* Field validation (``fieldValidation``): fields the kind's schema does not declare are
  dropped with a ``Warning: 299 - "unknown field \"spec.x\""`` header (``Warn``, the
  default; :attr:`FakeKubeAPI.warnings_sent` keeps them), dropped silently with ``Ignore``, a
  400 BadRequest naming them with ``Strict``. Kinds without a shipped schema (Route,
  ServiceMonitor) are not checked.
* Quantities in container resources and claim sizes are stored in canonical form (``1024Mi``
  -> ``1Gi``, ``0.5`` -> ``500m``); a claim may grow but not shrink (422).
* Deletion that takes time: an object with ``metadata.finalizers`` only gets its
  ``deletionTimestamp`` until they are removed (:meth:`FakeKubeAPI.add_finalizer`,
  :meth:`FakeKubeAPI.remove_finalizer`); claims carry ``kubernetes.io/pvc-protection``, which
  goes once no pod uses the claim; a deleted namespace is ``Terminating`` for
  :attr:`FakeKubeAPI.namespace_termination_seconds` (1 s by default), refuses new content with
  the API's 403 (``unable to create new content in namespace X because it is being
  terminated``), then goes with everything in it; dependents of a deleted owner (a Job's or a
  Deployment's pods) are removed by the garbage collector :attr:`FakeKubeAPI.gc_delay` later.
* Overload: :meth:`FakeKubeAPI.inject` answers the next requests with 429 (with
  ``Retry-After``, as API Priority and Fairness throttles), 500 or 503;
  :attr:`FakeKubeAPI.injected` records them.
* Authorization: RBAC. Roles, ClusterRoles, RoleBindings and ClusterRoleBindings are stored
  objects and every request is evaluated against them as the RBAC authorizer does: a
  ClusterRoleBinding grants everywhere, a RoleBinding (of a Role or a ClusterRole) only in its
  own namespace; rules match verbs, API groups, resources (``pods/log``, ``*/status``) and
  ``resourceNames``; a request on ``/api/v1/namespaces/<name>`` is in namespace ``<name>``, so
  ``admin`` bound in a namespace may ``get`` that Namespace object but not patch or delete it.
  The bootstrap ClusterRoles ``cluster-admin``, ``admin``, ``edit`` and ``view`` exist (their
  aggregated rules, flattened, on the resources served here); the user starts bound to
  ``cluster-admin`` (``FakeKubeAPI(cluster_admin=False)`` and :meth:`FakeKubeAPI.bind` for
  anything less). Writing a Role or ClusterRole that grants what the writer does not hold is
  refused (the escalation check) unless the writer may ``escalate``. :meth:`FakeKubeAPI.deny`
  takes single permissions away on top of RBAC (a test shorthand: real RBAC has no deny
  rules). A denied request gets the API's 403 Forbidden body; ``SelfSubjectAccessReview``
  (allowed to every user, as ``system:basic-user`` grants) answers from the same evaluation.
  An apply that creates an object needs both ``patch`` and ``create``, as in the real server.
* Errors as ``Status`` bodies: 400 BadRequest, 401 Unauthorized (wrong bearer token), 403
  Forbidden, 404 NotFound, 405 MethodNotAllowed, 409 AlreadyExists / Conflict, 415
  UnsupportedMediaType, 422 Invalid (with ``details.causes``), messages worded as the real ones.
* Validation (422) of what the installer sends: names (DNS-1123), label syntax, Deployment
  selector required and matching the template labels, selector immutable, containers with
  names and images, Job ``restartPolicy`` and immutable template, Service ports, ConfigMap
  keys, Secret data as base64, PVC access modes, size and immutable spec.
* Defaulting of the fields a real server defaults and the installer may see: Deployment
  replicas, strategy, progress deadline and container defaults; Service cluster IP; Secret
  ``stringData`` into ``data``; PVC default storage class; Job selector and labels.
* Controllers (a background loop every 50 ms): PVCs bind when their storage class exists
  (``ProvisioningFailed`` otherwise); Deployments create pods, roll to a new template (all new
  pods at once), remove old pods once the new ones are ready, and keep ``status``
  (``observedGeneration``, ``replicas``, ``updatedReplicas``, ``readyReplicas``,
  ``availableReplicas``, ``Available``/``Progressing`` conditions with
  ``ProgressDeadlineExceeded``); the scheduler leaves pods Pending with the real
  ``FailedScheduling`` wording when no node has the CPU or memory requested or a claim is
  unbound; the kubelet pulls (images in :attr:`FakeKubeAPI.unpullable_images` end in
  ``ErrImagePull``/``ImagePullBackOff``), runs (images in :attr:`FakeKubeAPI.crashing_images`
  end in ``CrashLoopBackOff`` with their log lines) and reports ready; pods of images in
  :attr:`FakeKubeAPI.forbidden_images` are refused at creation with a ``FailedCreate`` event
  on their ReplicaSet (or Job), as an admission refusal reads; Jobs run one pod at a
  time up to ``backoffLimit`` with the log lines and exit code from
  :attr:`FakeKubeAPI.job_runs`, ending ``Complete`` or ``Failed`` (with ``restartPolicy:
  OnFailure`` a failed container restarts in the same pod after a back-off, its restarts
  counted against ``backoffLimit``, and the pod is removed when the Job fails);
  EndpointSlices follow the ready pods behind each Service; Events are recorded (and
  counted) as the kubelet, scheduler and controllers word them.
* Pod logs: ``/pods/<name>/log`` with ``container``, ``tailLines``, ``previous`` and
  ``follow`` (streamed, chunked, until the container stops).

For assertions, :attr:`FakeKubeAPI.requests` records every request (verb, resource,
namespace, dry run or not), :attr:`FakeKubeAPI.seen` every request line at all (discovery
and refused ones too), :meth:`FakeKubeAPI.writes` the ones that would change something,
:attr:`FakeKubeAPI.applied_bodies` every server-side apply body as sent, and
:meth:`FakeKubeAPI.resource_versions` every stored object's version.

Going away: :attr:`FakeKubeAPI.vanish_when` names a request at which the server stops
answering, as an API server that crashes or drops off the network does: that request and
every later one get their connection closed without an answer, and the server stops
listening. :meth:`FakeKubeAPI.start` with the old ``port`` brings it back with the objects
it stored.

What it does not model (the installer must not rely on these here):

* ``watch`` (refused with 400), aggregated discovery, OpenAPI, protobuf, table output,
  pagination (``limit``/``continue`` are ignored: lists are whole), ``deletecollection``.
* TLS and real authentication: plain HTTP; one bearer token; one user name.
* RBAC: aggregated ClusterRoles (``aggregationRule``) are not aggregated; the escalation
  check of RoleBindings (``bind``) is not made; non-resource URLs (discovery, ``/version``)
  are open to everyone.

* Strategic merge patch is applied as a JSON merge patch (lists replaced whole); JSON patch
  is refused (415). ``managedFields`` sent by clients are ignored; status fields are not
  tracked there; ``x-kubernetes-map-type: atomic`` maps are walked like others; an applied
  map-list item matches a live one on the keys it names (a defaulted key such as a port's
  ``protocol`` is not compared). Empty maps and structs: one applied empty is owned as a
  field, and a map a removal leaves empty is dropped; the real server's finer rules (an empty
  struct kept, ``omitempty``) are not modelled. Quantities in an exponent form (``1e3``) are
  kept as sent.
* Field validation checks field names only (not types, enums or formats: the 422 checks
  below do some of that); the duplicate-field check of JSON decoding is not made.
* Deletion: ``gracePeriodSeconds`` and ``propagationPolicy`` are not read (dependents always
  go in the background; pods go at once); namespace finalizers other than the namespace
  controller's are not modelled; controllers still act on an owner that is being deleted.
* Overload: no real priority levels or queues; injected answers are taken in order.
* Time: back-offs, restarts and log lines advance in fractions of a second, not the
  kubelet's minutes; ``progressDeadlineSeconds`` is honoured in real seconds.
* ``previous=true`` logs of a crashing container are its last run's, like the current ones;
  a restarted Job container's earlier runs are not kept.
* ReplicaSets (pods are owned by the Deployment directly), rolling-update pacing
  (``maxSurge``/``maxUnavailable``), probes (a started container is ready at once),
  ``minReadySeconds``, HPA, PDB, NetworkPolicy, Ingress, Route and ServiceMonitor behaviour
  (they are stored and returned, nothing acts on them), a pod's graceful termination,
  admission webhooks, quotas, OpenShift security context constraints.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import hashlib
import json
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

Obj = dict[str, Any]
FieldPath = tuple[str, ...]
Key = tuple[str, str, str, str]  # group, plural, namespace ("" when cluster-scoped), name

CRUD = ("create", "delete", "get", "list", "patch", "update")
TICK_SECONDS = 0.05


@dataclass(frozen=True)
class ResourceType:
    """One resource the server offers, as discovery lists it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...] = CRUD
    subresources: tuple[str, ...] = ()
    # Objects with a spec whose changes move metadata.generation.
    generation: bool = False

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``deployments.apps``, ``configmaps``: how error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def kind_qualified(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind


def _rt(
    group: str, version: str, plural: str, kind: str, namespaced: bool, **kw: Any
) -> ResourceType:
    return ResourceType(group, version, plural, kind, namespaced, **kw)


CORE_TYPES: tuple[ResourceType, ...] = (
    _rt("", "v1", "namespaces", "Namespace", False, subresources=("status",)),
    _rt("", "v1", "nodes", "Node", False, verbs=("get", "list")),
    _rt("", "v1", "configmaps", "ConfigMap", True),
    _rt("", "v1", "secrets", "Secret", True),
    _rt("", "v1", "services", "Service", True, subresources=("status",)),
    _rt("", "v1", "serviceaccounts", "ServiceAccount", True),
    _rt(
        "", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, subresources=("status",)
    ),
    _rt("", "v1", "pods", "Pod", True, subresources=("log", "status")),
    _rt("", "v1", "events", "Event", True),
    _rt("apps", "v1", "deployments", "Deployment", True, subresources=("status",), generation=True),
    _rt(
        "apps", "v1", "statefulsets", "StatefulSet", True, subresources=("status",), generation=True
    ),
    _rt("batch", "v1", "jobs", "Job", True, subresources=("status",), generation=True),
    _rt(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        True,
        subresources=("status",),
        generation=True,
    ),
    _rt("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False),
    _rt("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, generation=True),
    _rt(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        True,
        subresources=("status",),
    ),
    _rt(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        True,
        subresources=("status",),
        generation=True,
    ),
    _rt("storage.k8s.io", "v1", "storageclasses", "StorageClass", False),
    _rt("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
    _rt("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    _rt("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    _rt("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    _rt("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _rt(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        False,
        verbs=("create",),
    ),
)
OPENSHIFT_TYPES: tuple[ResourceType, ...] = (
    _rt("route.openshift.io", "v1", "routes", "Route", True, subresources=("status",)),
    _rt(
        "security.openshift.io",
        "v1",
        "securitycontextconstraints",
        "SecurityContextConstraints",
        False,
    ),
)
PROMETHEUS_OPERATOR_TYPES: tuple[ResourceType, ...] = (
    _rt("monitoring.coreos.com", "v1", "servicemonitors", "ServiceMonitor", True, generation=True),
    _rt("monitoring.coreos.com", "v1", "prometheusrules", "PrometheusRule", True, generation=True),
    _rt("monitoring.coreos.com", "v1", "probes", "Probe", True, generation=True),
    _rt(
        "monitoring.coreos.com",
        "v1alpha1",
        "alertmanagerconfigs",
        "AlertmanagerConfig",
        True,
        generation=True,
    ),
)


# --- RBAC: the bootstrap ClusterRoles a cluster ships -------------------------------------

_RW = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
_RO = ["get", "list", "watch"]


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> Obj:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


# The user-facing roles as their aggregation stands on a plain cluster (view < edit <
# admin), flattened: what kube-apiserver's bootstrap policy grants on the resources here.
VIEW_RULES: list[Obj] = [
    _rule(
        [""],
        [
            "configmaps",
            "endpoints",
            "persistentvolumeclaims",
            "persistentvolumeclaims/status",
            "pods",
            "replicationcontrollers",
            "serviceaccounts",
            "services",
            "services/status",
            "bindings",
            "events",
            "limitranges",
            "namespaces/status",
            "pods/log",
            "pods/status",
            "resourcequotas",
            "resourcequotas/status",
            "namespaces",
        ],
        _RO,
    ),
    _rule(
        ["apps"],
        ["daemonsets", "deployments", "deployments/scale", "replicasets", "statefulsets"],
        _RO,
    ),
    _rule(["autoscaling"], ["horizontalpodautoscalers"], _RO),
    _rule(["batch"], ["cronjobs", "jobs"], _RO),
    _rule(["policy"], ["poddisruptionbudgets"], _RO),
    _rule(["networking.k8s.io"], ["ingresses", "networkpolicies"], _RO),
    _rule(["discovery.k8s.io"], ["endpointslices"], _RO),
]
EDIT_RULES: list[Obj] = [
    *VIEW_RULES,
    _rule([""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"], _RW),
    _rule(
        [""],
        [
            "configmaps",
            "events",
            "persistentvolumeclaims",
            "replicationcontrollers",
            "secrets",
            "serviceaccounts",
            "services",
            "services/proxy",
        ],
        _RW,
    ),
    _rule([""], ["serviceaccounts/token"], ["create"]),
    _rule(
        ["apps"],
        ["daemonsets", "deployments", "deployments/scale", "replicasets", "statefulsets"],
        _RW,
    ),
    _rule(["autoscaling"], ["horizontalpodautoscalers"], _RW),
    _rule(["batch"], ["cronjobs", "jobs"], _RW),
    _rule(["policy"], ["poddisruptionbudgets"], _RW),
    _rule(["networking.k8s.io"], ["ingresses", "networkpolicies"], _RW),
]
ADMIN_RULES: list[Obj] = [
    *EDIT_RULES,
    _rule(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"]),
    _rule(["rbac.authorization.k8s.io"], ["rolebindings", "roles"], _RW),
]
BOOTSTRAP_CLUSTER_ROLES: dict[str, list[Obj]] = {
    "cluster-admin": [_rule(["*"], ["*"], ["*"])],
    "admin": ADMIN_RULES,
    "edit": EDIT_RULES,
    "view": VIEW_RULES,
}
CLUSTER_ADMIN_BINDING = "fake-installer-cluster-admin"


def rule_allows(rule: Obj, verb: str, group: str, resource: str, name: str) -> bool:
    """One PolicyRule against one request's attributes, as RBAC's rule matcher reads it."""
    if rule.get("nonResourceURLs"):
        return False
    verbs = rule.get("verbs") or []
    groups = rule.get("apiGroups") or []
    resources = rule.get("resources") or []
    names = rule.get("resourceNames") or []
    subresource = resource.partition("/")[2]
    return (
        ("*" in verbs or verb in verbs)
        and ("*" in groups or group in groups)
        and (
            "*" in resources
            or resource in resources
            or (bool(subresource) and f"*/{subresource}" in resources)
        )
        and (not names or name in names)
    )


class ApiError(Exception):
    """An error answered with the API's ``Status`` body."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: Obj | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers: dict[str, str] = {}

    def status(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


@dataclass
class ManagedEntry:
    """One row of ``metadata.managedFields``: who owns which fields, through which operation."""

    manager: str
    operation: str  # Apply | Update
    api_version: str
    time: str
    paths: set[FieldPath] = field(default_factory=set)

    def render(self) -> Obj:
        return {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": _fields_v1(self.paths),
        }


@dataclass
class Node:
    """A schedulable node: what it can give to pods."""

    name: str
    cpu_millis: int = 8000  # capacity
    memory_bytes: int = 32 * 1024**3  # capacity
    # What the kubelet keeps for the system, kube-reserved and the eviction threshold:
    # ``allocatable`` is capacity less these, and pods are scheduled against allocatable.
    reserved_cpu_millis: int = 100
    reserved_memory_bytes: int = 512 * 1024**2

    @property
    def allocatable_cpu_millis(self) -> int:
        return max(0, self.cpu_millis - self.reserved_cpu_millis)

    @property
    def allocatable_memory_bytes(self) -> int:
        return max(0, self.memory_bytes - self.reserved_memory_bytes)


@dataclass
class ContainerRun:
    """What a container prints and how it ends (Jobs, and crashing images)."""

    lines: list[str] = field(default_factory=list)
    exit_code: int = 0


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    verb: str
    group: str
    resource: str
    namespace: str
    name: str
    dry_run: bool


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- field paths: the unit of ownership in server-side apply ----------------------------


def _leaves(
    obj: Any,
    prefix: FieldPath = (),
    schema: Schema | None = None,
    node: Obj | None = None,
) -> Iterator[tuple[FieldPath, Any]]:
    """Every leaf of a configuration, as structured-merge-diff sees it with the kind's
    ``schema``: maps are walked; an item of a map list (``x-kubernetes-list-type: map``) is
    the path element ``k:{"name":"..."}`` and is walked too; a value of a set list is the
    element ``v:<value>``; atomic lists and scalars are leaves. Without a schema every list
    is atomic."""
    if schema is not None and node is None:
        node = schema.root
    if isinstance(obj, dict) and obj:
        for key, value in obj.items():
            sub = schema.child(node or {}, str(key)) if schema is not None else None
            yield from _leaves(value, (*prefix, str(key)), schema if sub is not None else None, sub)
        return
    if isinstance(obj, list) and obj and schema is not None and node is not None:
        resolved = schema.resolve(node)
        keys = Schema.list_keys(resolved)
        if keys and all(isinstance(item, dict) for item in obj):
            items = schema.items(resolved)
            for item in obj:
                yield from _leaves(item, (*prefix, _key_element(item, keys)), schema, items)
            return
        if resolved.get("x-kubernetes-list-type") == "set":
            for value in obj:
                yield (*prefix, "v:" + json.dumps(value, separators=(",", ":"))), value
            return
    if prefix:
        yield prefix, obj


def _key_element(item: Obj, keys: list[str]) -> str:
    return "k:" + json.dumps(
        {k: item[k] for k in keys if k in item}, separators=(",", ":"), sort_keys=False
    )


def _matches(item: Any, element: str) -> bool:
    """Whether a list item is the one a ``k:``/``v:`` element names (keys the element
    leaves out, defaulted ones like a port's protocol, are not compared)."""
    value = json.loads(element[2:])
    if element.startswith("v:"):
        return bool(item == value)
    return isinstance(item, dict) and all(item.get(k) == v for k, v in value.items())


def _fields_v1(paths: Iterable[FieldPath]) -> Obj:
    tree: Obj = {}
    for path in sorted(paths):
        node = tree
        for part in path:
            node = node.setdefault(part if part[:2] in ("k:", "v:") else f"f:{part}", {})
    return tree


def _step(node: Any, part: str) -> tuple[bool, Any]:
    if part[:2] in ("k:", "v:"):
        if not isinstance(node, list):
            return False, None
        for item in node:
            if _matches(item, part):
                return True, item
        return False, None
    if not isinstance(node, dict) or part not in node:
        return False, None
    return True, node[part]


def _get(obj: Any, path: FieldPath) -> tuple[bool, Any]:
    node = obj
    for part in path:
        found, node = _step(node, part)
        if not found:
            return False, None
    return True, node


def _set(obj: Obj, path: FieldPath, value: Any) -> None:
    node: Any = obj
    for index, part in enumerate(path[:-1]):
        listed = path[index + 1][:2] in ("k:", "v:")
        if part[:2] == "k:":
            found, child = _step(node, part)
            if not found:
                child = dict(json.loads(part[2:]))
                node.append(child)
        else:
            child = node.get(part)
            if listed and not isinstance(child, list):
                child = node[part] = []
            elif not listed and not isinstance(child, dict):
                child = node[part] = {}
        node = child
    last = path[-1]
    if last[:2] == "v:":
        if value not in node:
            node.append(value)
    elif last[:2] == "k:":
        if not _step(node, last)[0]:
            node.append(value)
    else:
        node[last] = value


def _delete(obj: Obj, path: FieldPath) -> None:
    """Remove a field (or a list item), then the maps and lists it leaves empty (below the
    top-level sections)."""
    parents: list[tuple[Any, Any]] = []  # (container, key or list item)
    node: Any = obj
    for part in path[:-1]:
        found, child = _step(node, part)
        if not found:
            return
        parents.append((node, part if part[:2] not in ("k:", "v:") else child))
        node = child
    last = path[-1]
    if last[:2] in ("k:", "v:"):
        if isinstance(node, list):
            node[:] = [item for item in node if not _matches(item, last)]
    elif isinstance(node, dict):
        node.pop(last, None)
    for container, key in reversed(parents[1:]):
        if isinstance(container, list):
            if key == {}:
                container[:] = [item for item in container if item is not key]
        elif container.get(key) in ({}, []):
            del container[key]


def _overlaps(a: FieldPath, b: FieldPath) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def _format_path(path: FieldPath) -> str:
    """``.spec.template.spec.containers[name="codequal"].image``, as the API names fields."""
    out = []
    for part in path:
        if part[:2] == "k:":
            keys = json.loads(part[2:])
            out.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in keys.items()) + "]")
        elif part[:2] == "v:":
            out.append(f"[={part[2:]}]")
        else:
            out.append(f".{part}")
    return "".join(out)


# --- the official schemas (kubernetes-validate's strict JSON schemas) ----------------------


@functools.lru_cache(maxsize=4)
def _schema_dir(server_version: str) -> Path | None:
    """The strict schemas of the newest Kubernetes minor not above ``server_version``."""
    try:
        import kubernetes_validate
    except ImportError:  # pragma: no cover - a dev dependency
        return None
    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    wanted = tuple(int(p) for p in re.findall(r"\d+", server_version)[:2])
    found = sorted(
        (tuple(int(p) for p in re.findall(r"\d+", d.name)[:2]), d)
        for d in root.glob("v*-local-strict")
    )
    below = [d for v, d in found if v <= wanted]
    return below[-1] if below else (found[0][1] if found else None)


@functools.lru_cache(maxsize=4)
def _definitions(directory: Path) -> Obj:
    return dict(json.loads((directory / "_definitions.json").read_text("utf-8"))["$defs"])


@functools.lru_cache(maxsize=256)
def _kind_schema(directory: Path, kind: str, group: str, version: str) -> Obj | None:
    prefix = group.split(".", maxsplit=1)[0]
    name = f"{kind.lower()}-{prefix}-{version}.json" if group else f"{kind.lower()}-{version}.json"
    path = directory / name
    return dict(json.loads(path.read_text("utf-8"))) if path.is_file() else None


class Schema:
    """One kind's schema, walked as the API server's structured-merge-diff walks types:
    which fields exist, which lists are maps (``x-kubernetes-list-type: map`` with their
    ``x-kubernetes-list-map-keys``), sets or atomic, which maps are atomic."""

    def __init__(self, directory: Path, root: Obj) -> None:
        self.defs = _definitions(directory)
        self.root = root

    def resolve(self, schema: Any) -> Obj:
        while isinstance(schema, dict) and "$ref" in schema:
            schema = {
                **self.defs[schema["$ref"].rsplit("/", 1)[-1]],
                **{k: v for k, v in schema.items() if k not in ("$ref", "description")},
            }
        return schema if isinstance(schema, dict) else {}

    def child(self, schema: Obj, key: str) -> Obj | None:
        """The schema of field ``key`` of an object, None when it has no such field."""
        schema = self.resolve(schema)
        props = schema.get("properties")
        if props is not None and key in props:
            return self.resolve(props[key])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return self.resolve(extra)
        if props is None or extra is True or extra is None:
            return {}  # free-form: anything goes below
        return None

    def items(self, schema: Obj) -> Obj:
        return self.resolve(self.resolve(schema).get("items") or {})

    @staticmethod
    def list_keys(schema: Obj) -> list[str] | None:
        """The keys of a map list; None for an atomic list (and for sets, compared whole)."""
        if schema.get("x-kubernetes-list-type") == "map":
            return list(schema.get("x-kubernetes-list-map-keys") or [])
        return None

    def unknown(self, value: Any, schema: Obj | None = None, path: str = "") -> list[str]:
        """The paths of the fields ``value`` has and the schema does not."""
        schema = self.resolve(self.root if schema is None else schema)
        found: list[str] = []
        if isinstance(value, dict) and schema.get("properties") is not None:
            for key, child in value.items():
                sub = self.child(schema, str(key))
                where = f"{path}.{key}" if path else str(key)
                if sub is None:
                    found.append(where)
                elif child is not None:
                    found += self.unknown(child, sub, where)
        elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
            for key, child in value.items():
                found += self.unknown(child, self.child(schema, str(key)), f"{path}.{key}")
        elif isinstance(value, list) and "items" in schema:
            for index, item in enumerate(value):
                found += self.unknown(item, self.items(schema), f"{path}[{index}]")
        return found


def schema_for(server_version: str, rt: ResourceType) -> Schema | None:
    directory = _schema_dir(server_version)
    if directory is None:
        return None
    root = _kind_schema(directory, rt.kind, rt.group, rt.version)
    return Schema(directory, root) if root is not None else None


def _drop_path(obj: Any, path: str) -> None:
    """Remove the field at ``path`` (``a.b[2].c``) from ``obj``."""
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    node = obj
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node.get(part)
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(parts[-1], None)


# --- selectors ------------------------------------------------------------------------


_SELECTOR_TERM = re.compile(
    r"^\s*(?P<key>!?[A-Za-z0-9._/-]+)\s*(?:(?P<op>==|!=|=|\s+in\s+|\s+notin\s+)\s*(?P<value>.*?))?\s*$"
)


def _split_selector(text: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        terms.append(current)
    return terms


def label_selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """The label-selector string syntax: ``a=b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``."""
    for term in _split_selector(selector):
        match = _SELECTOR_TERM.match(term)
        if not match:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {term!r}")
        key, op, value = match.group("key"), (match.group("op") or "").strip(), match.group("value")
        if not op:
            if key.startswith("!"):
                if key[1:] in labels:
                    return False
            elif key not in labels:
                return False
        elif op in ("=", "=="):
            if labels.get(key) != value:
                return False
        elif op == "!=":
            if labels.get(key) == value:
                return False
        else:
            values = {v.strip() for v in (value or "").strip("()").split(",") if v.strip()}
            if op == "in" and labels.get(key) not in values:
                return False
            if op == "notin" and labels.get(key) in values:
                return False
    return True


def match_labels_selector(selector: Obj | None, labels: dict[str, str]) -> bool:
    """A ``LabelSelector`` object (``matchLabels`` and ``matchExpressions``)."""
    if not selector:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, op, values = expression["key"], expression["operator"], expression.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


# --- quantities -----------------------------------------------------------------------

_BINARY = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}
_DECIMAL = {"k": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}


_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?$")
_BINARY_SUFFIXES = (
    ("Ei", 2**60),
    ("Pi", 2**50),
    ("Ti", 2**40),
    ("Gi", 2**30),
    ("Mi", 2**20),
    ("Ki", 2**10),
)
_DECIMAL_SUFFIXES = (
    ("E", Decimal(10) ** 18),
    ("P", Decimal(10) ** 15),
    ("T", Decimal(10) ** 12),
    ("G", Decimal(10) ** 9),
    ("M", Decimal(10) ** 6),
    ("k", Decimal(10) ** 3),
    ("", Decimal(1)),
    ("m", Decimal(10) ** -3),
    ("u", Decimal(10) ** -6),
    ("n", Decimal(10) ** -9),
)


def canonical_quantity(quantity: Any) -> Any:
    """A resource quantity in the API server's canonical form (``1024Mi`` -> ``1Gi``,
    ``0.5`` -> ``500m``, ``1.5Gi`` -> ``1536Mi``); anything else (an exponent form, a
    number) as it came."""
    found = _QUANTITY.match(quantity) if isinstance(quantity, str) else None
    if found is None:
        return quantity
    number, suffix = Decimal(found.group(1)), found.group(2) or ""
    if suffix.endswith("i"):
        value = number * dict(_BINARY_SUFFIXES)[suffix]
        if value == value.to_integral_value():
            whole = int(value)
            for name, factor in _BINARY_SUFFIXES:
                if whole and whole % factor == 0:
                    return f"{whole // factor}{name}"
            return str(whole)
    else:
        value = number * dict(_DECIMAL_SUFFIXES)[suffix]
    if value == 0:
        return "0"
    for name, factor in _DECIMAL_SUFFIXES:
        scaled = value / factor
        if scaled == scaled.to_integral_value():
            return f"{int(scaled)}{name}"
    return quantity


def _canonical_resources(resources: Any) -> None:
    if isinstance(resources, dict):
        for section in ("requests", "limits"):
            values = resources.get(section)
            if isinstance(values, dict):
                for name, value in values.items():
                    values[name] = canonical_quantity(value)


def cpu_millis(quantity: Any) -> int:
    text = str(quantity)
    if text.endswith("m"):
        return int(float(text[:-1]))
    return int(float(text) * 1000)


def memory_bytes(quantity: Any) -> int:
    text = str(quantity)
    for suffix, factor in {**_BINARY, **_DECIMAL}.items():
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(float(text))


# --- validation -----------------------------------------------------------------------

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_LABEL_NAMED = frozenset({"namespaces", "services"})


Cause = tuple[str, str, str]  # reason, field, message


def _required(field_name: str) -> Cause:
    return ("FieldValueRequired", field_name, f"{field_name}: Required value")


def _invalid(field_name: str, value: Any, detail: str) -> Cause:
    return (
        "FieldValueInvalid",
        field_name,
        f"{field_name}: Invalid value: {json.dumps(value)}: {detail}",
    )


def _validate_metadata(rt: ResourceType, obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not name:
        causes.append(_required("metadata.name"))
    elif rt.plural in _LABEL_NAMED:
        if len(name) > 63 or not _DNS_LABEL.match(name):
            causes.append(
                _invalid(
                    "metadata.name",
                    name,
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric "
                    "characters or '-', and must start and end with an alphanumeric character",
                )
            )
    elif len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        causes.append(
            _invalid(
                "metadata.name",
                name,
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character",
            )
        )
    for key, value in (meta.get("labels") or {}).items():
        short = key.rsplit("/", 1)[-1]
        if len(short) > 63 or not _LABEL_NAME.match(short):
            causes.append(
                _invalid(
                    "metadata.labels",
                    key,
                    "name part must consist of alphanumeric characters, '-', '_' or '.'",
                )
            )
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(
                _invalid(
                    "metadata.labels",
                    value,
                    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.'",
                )
            )
    return causes


def _validate_pod_spec(spec: Any, prefix: str) -> list[Cause]:
    if not isinstance(spec, dict):
        return [_required(prefix)]
    containers = spec.get("containers")
    if not containers:
        return [_required(f"{prefix}.containers")]
    causes: list[Cause] = []
    for index, container in enumerate(containers):
        where = f"{prefix}.containers[{index}]"
        if not container.get("name"):
            causes.append(_required(f"{where}.name"))
        elif not _DNS_LABEL.match(container["name"]):
            causes.append(_invalid(f"{where}.name", container["name"], "must be a DNS-1123 label"))
        if not container.get("image"):
            causes.append(_required(f"{where}.image"))
    return causes


def _validate_kind(rt: ResourceType, obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.get("spec")
    causes: list[Cause] = []
    if rt.kind in ("Deployment", "StatefulSet"):
        spec = spec or {}
        selector = spec.get("selector")
        template = spec.get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        if not selector:
            causes.append(_required("spec.selector"))
        elif not match_labels_selector(selector, labels):
            causes.append(
                _invalid(
                    "spec.template.metadata.labels",
                    labels,
                    "`selector` does not match template `labels`",
                )
            )
        if old is not None and selector != ((old.get("spec") or {}).get("selector")):
            causes.append(_invalid("spec.selector", selector, "field is immutable"))
        causes.extend(_validate_pod_spec(template.get("spec"), "spec.template.spec"))
    elif rt.kind == "Job":
        spec = spec or {}
        template = spec.get("template") or {}
        causes.extend(_validate_pod_spec(template.get("spec"), "spec.template.spec"))
        restart = (template.get("spec") or {}).get("restartPolicy")
        if restart not in ("Never", "OnFailure"):
            causes.append(
                (
                    "FieldValueNotSupported",
                    "spec.template.spec.restartPolicy",
                    f'spec.template.spec.restartPolicy: Unsupported value: "{restart or ""}": '
                    'supported values: "OnFailure", "Never"',
                )
            )
        if old is not None and template != (old.get("spec") or {}).get("template"):
            causes.append(_invalid("spec.template", template, "field is immutable"))
    elif rt.kind == "Service":
        spec = spec or {}
        if spec.get("type") != "ExternalName":
            ports = spec.get("ports") or []
            if not ports:
                causes.append(_required("spec.ports"))
            for index, port in enumerate(ports):
                number = port.get("port")
                if not isinstance(number, int) or not 1 <= number <= 65535:
                    causes.append(
                        _invalid(
                            f"spec.ports[{index}].port",
                            number,
                            "must be between 1 and 65535, inclusive",
                        )
                    )
    elif rt.kind == "ConfigMap":
        for key in list(obj.get("data") or {}) + list(obj.get("binaryData") or {}):
            if not _CONFIG_KEY.match(key):
                causes.append(
                    _invalid(
                        f"data[{key}]",
                        key,
                        "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                    )
                )
    elif rt.kind == "Secret":
        for key, value in (obj.get("data") or {}).items():
            if not _CONFIG_KEY.match(key):
                causes.append(
                    _invalid(
                        f"data[{key}]",
                        key,
                        "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                    )
                )
            try:
                base64.b64decode(str(value), validate=True)
            except ValueError:
                causes.append(_invalid(f"data[{key}]", "<value omitted>", "illegal base64 data"))
        if old is not None and obj.get("type") != old.get("type"):
            causes.append(_invalid("type", obj.get("type"), "field is immutable"))
    elif rt.kind == "PersistentVolumeClaim":
        spec = spec or {}
        if not spec.get("accessModes"):
            causes.append(_required("spec.accessModes"))
        if not ((spec.get("resources") or {}).get("requests") or {}).get("storage"):
            causes.append(_required("spec.resources[storage]"))
        if old is not None:
            size = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
            before_size = (
                ((old.get("spec") or {}).get("resources") or {}).get("requests") or {}
            ).get("storage")
            if size and before_size and memory_bytes(size) < memory_bytes(before_size):
                causes.append(
                    (
                        "FieldValueForbidden",
                        "spec.resources.requests.storage",
                        "spec.resources.requests.storage: Forbidden: field can not be less than "
                        "status.capacity",
                    )
                )
            mutable = ("resources", "volumeAttributesClassName")
            before = {k: v for k, v in (old.get("spec") or {}).items() if k not in mutable}
            after = {k: v for k, v in spec.items() if k not in mutable}
            if before != after:
                causes.append(
                    (
                        "FieldValueForbidden",
                        "spec",
                        "spec: Forbidden: spec is immutable after creation except "
                        "resources.requests and volumeAttributesClassName for bound claims",
                    )
                )
    return causes


# --- defaulting -----------------------------------------------------------------------


def _default_container(container: Obj) -> None:
    image = str(container.get("image", ""))
    tag = image.rsplit("/", 1)[-1]
    latest = "@" not in image and (":" not in tag or tag.endswith(":latest"))
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")
    _canonical_resources(container.get("resources"))


def _default_pod_spec(spec: Obj, restart: str = "Always") -> None:
    spec.setdefault("restartPolicy", restart)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if isinstance(container, dict):
            _default_container(container)


# --- the server -----------------------------------------------------------------------


class FakeKubeAPI:
    """The fake API server; ``with FakeKubeAPI() as api:`` starts it on 127.0.0.1.

    Configure before (or while) the code under test runs: :meth:`deny`, :attr:`nodes`,
    :attr:`unpullable_images`, :attr:`crashing_images`, :attr:`job_runs`, and
    :meth:`add` for objects that exist before the installer runs (storage classes, say).
    """

    def __init__(
        self,
        *,
        version: str = "v1.30.4",
        openshift: bool = False,
        prometheus_operator: bool = False,
        user: str = "system:serviceaccount:ci:installer",
        token: str = "fake-token-for-tests",  # noqa: S107 - a test server's token
        storage_classes: Iterable[str] = ("standard",),
        ingress_classes: Iterable[str] = ("nginx",),
        nodes: Iterable[Node] | None = None,
        cluster_admin: bool = True,
    ) -> None:
        self.version = version
        self.user = user
        self.token = token
        types = list(CORE_TYPES)
        if openshift:
            types += OPENSHIFT_TYPES
        if prometheus_operator:
            types += PROMETHEUS_OPERATOR_TYPES
        self.types = types
        self._lock = threading.RLock()
        self._objects: dict[Key, Obj] = {}
        self._managed: dict[Key, list[ManagedEntry]] = {}
        self._resource_version = 1000
        self._denials: list[tuple[str, str, str, str | None]] = []
        self._progress_started: dict[str, float] = {}
        self._container_runs: dict[str, _RunningContainer] = {}
        self._pod_ip = 10
        self._server: ThreadingHTTPServer | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.requests: list[RequestRecord] = []
        # (method, path and query) of every request received, answered or not.
        self.seen: list[tuple[str, str]] = []
        # Called with (method, path and query) before each request is answered: True makes
        # the server go away at that request (see the module text).
        self.vanish_when: Callable[[str, str], bool] | None = None
        self.gone = threading.Event()
        self._connections: set[Any] = set()
        # Every server-side apply body received (dry runs too), as sent.
        self.applied_bodies: list[Obj] = []
        # Exceptions raised inside the controller loop (a bug in this fake): tests assert empty.
        self.fake_failures: list[str] = []
        self.nodes: list[Node] = (
            list(nodes) if nodes is not None else [Node(f"node-{i}") for i in (1, 2, 3)]
        )
        for node in self.nodes:
            self._system_create(_node_object(node, version), "kubelet")
        for role, rules in BOOTSTRAP_CLUSTER_ROLES.items():
            self._system_create(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "metadata": {"name": role},
                    "rules": copy.deepcopy(rules),
                },
                "kube-apiserver",
            )
        if cluster_admin:
            self._system_create(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": {"name": CLUSTER_ADMIN_BINDING},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": "cluster-admin",
                    },
                    "subjects": [self._subject()],
                },
                "kubectl",
            )
        # Deletion that takes time (see the module text): how long a deleted namespace stays
        # Terminating, and how long the garbage collector takes to remove the dependents
        # (pods of a Job or Deployment) of a deleted owner.
        self.namespace_termination_seconds = 1.0
        self.gc_delay = 0.2
        # Owner uid -> when it was deleted (its dependents go gc_delay later).
        self._deleted_owners: dict[str, float] = {}
        self._terminating: dict[str, float] = {}
        # Injected answers (see inject()): [status, times left, Retry-After, predicate].
        self._injections: list[list[Any]] = []
        # (method, path, status) of every request answered by an injection.
        self.injected: list[tuple[str, str, int]] = []
        # Warning headers of the request being answered, per handler thread; every one sent.
        self._local = threading.local()
        self.warnings_sent: list[str] = []
        self.unpullable_images: set[str] = set()
        self.crashing_images: dict[str, ContainerRun] = {}
        # Image -> why admission (PodSecurity, an SCC, a policy webhook) refuses its pods.
        self.forbidden_images: dict[str, str] = {}
        # Image (or "<namespace>/<job name>") -> what the Job's container prints and returns.
        self.job_runs: dict[str, ContainerRun] = {}
        self.default_job_run = ContainerRun(lines=[], exit_code=0)
        for index, name in enumerate(storage_classes):
            annotations = (
                {"storageclass.kubernetes.io/is-default-class": "true"} if index == 0 else {}
            )
            self.add(
                {
                    "apiVersion": "storage.k8s.io/v1",
                    "kind": "StorageClass",
                    "metadata": {"name": name, "annotations": annotations},
                    "provisioner": "fake.example/disk",
                }
            )
        for index, name in enumerate(ingress_classes):
            annotations = (
                {"ingressclass.kubernetes.io/is-default-class": "true"} if index == 0 else {}
            )
            self.add(
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "IngressClass",
                    "metadata": {"name": name, "annotations": annotations},
                    "spec": {"controller": "k8s.io/ingress-nginx"},
                }
            )

    # -- life cycle ----------------------------------------------------------------

    def start(self, port: int = 0) -> FakeKubeAPI:
        """Listen on 127.0.0.1:``port`` (any free port when 0); again after :meth:`stop`,
        with the objects stored before."""
        handler = type("Handler", (_Handler,), {"api": self})
        self.gone.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._stop.clear()
        serve = threading.Thread(
            target=self._server.serve_forever, name="fake-kube-api", daemon=True
        )
        loop = threading.Thread(
            target=self._controller_loop, name="fake-kube-controllers", daemon=True
        )
        self._threads = [serve, loop]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop the open connections (kept-alive ones too)."""
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)

    @property
    def port(self) -> int:
        assert self._server is not None, "start the server first"
        return int(self._server.server_address[1])

    def _vanish(self) -> None:
        """Stop answering now, and stop listening as soon as the server loop lets go."""
        self.gone.set()
        threading.Thread(target=self.stop, name="fake-kube-api-stop", daemon=True).start()

    def __enter__(self) -> FakeKubeAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def kubeconfig_entries(self, context: str) -> tuple[Obj, Obj, Obj]:
        """The (cluster, user, context) entries of a kubeconfig context named ``context``
        that reaches this server with its token (see :func:`write_kubeconfig`)."""
        return (
            {"name": f"{context}-cluster", "cluster": {"server": self.url}},
            {"name": f"{context}-user", "user": {"token": self.token}},
            {
                "name": context,
                "context": {
                    "cluster": f"{context}-cluster",
                    "user": f"{context}-user",
                    "namespace": "default",
                },
            },
        )

    def write_kubeconfig(
        self, path: Path, *, context: str = "fake", extra_contexts: Iterable[str] = ()
    ) -> Path:
        """A kubeconfig whose contexts all point at this server."""
        names = [context, *extra_contexts]
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "installer", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": name,
                    "context": {"cluster": "fake", "user": "installer", "namespace": "default"},
                }
                for name in names
            ],
            "current-context": context,
        }
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        path.chmod(0o600)
        return path

    # -- configuration and inspection for tests --------------------------------------

    def deny(
        self, verb: str, resource: str, *, group: str = "", namespace: str | None = None
    ) -> None:
        """Refuse ``verb`` on ``resource`` (in ``namespace``, or everywhere when None), whatever
        RBAC grants: a shorthand for taking one permission away from a user who otherwise has
        them all (real RBAC has no deny rules; see the module text)."""
        self._denials.append((verb, group, resource, namespace))

    def inject(
        self,
        status: int,
        times: int = 1,
        *,
        retry_after: int | None = None,
        when: Callable[[str, str], bool] | None = None,
    ) -> None:
        """Answer the next ``times`` requests (those ``when(method, path)`` picks; discovery
        and all else too when None) with ``status``: 429 as API Priority and Fairness
        throttles (with ``Retry-After``), 5xx as an overloaded or restarting server."""
        with self._lock:
            self._injections.append([status, times, retry_after, when])

    def _injected(self, method: str, path: str) -> ApiError | None:
        with self._lock:
            for entry in self._injections:
                status, times, retry_after, when = entry
                if times <= 0 or (when is not None and not when(method, path)):
                    continue
                entry[1] -= 1
                self.injected.append((method, path, status))
                reason, message = {
                    429: ("TooManyRequests", "Too many requests, please try again later."),
                    500: (
                        "InternalError",
                        "Internal error occurred: etcdserver: request timed out",
                    ),
                    503: (
                        "ServiceUnavailable",
                        "the server is currently unable to handle the request",
                    ),
                }.get(status, ("InternalError", f"HTTP {status}"))
                error = ApiError(status, reason, message, {"retryAfterSeconds": retry_after or 0})
                if retry_after is not None:
                    error.headers["Retry-After"] = str(retry_after)
                return error
        return None

    def _subject(self) -> Obj:
        """The user as an RBAC subject: a ServiceAccount for ``system:serviceaccount:`` names."""
        parts = self.user.split(":")
        if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
            return {"kind": "ServiceAccount", "namespace": parts[2], "name": parts[3]}
        return {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": self.user}

    def _groups(self) -> list[str]:
        groups = ["system:authenticated"]
        subject = self._subject()
        if subject["kind"] == "ServiceAccount":
            groups += ["system:serviceaccounts", f"system:serviceaccounts:{subject['namespace']}"]
        return groups

    def bind(self, role: str, *, namespace: str | None = None, kind: str = "ClusterRole") -> Obj:
        """Grant the user ``role``: in ``namespace`` with a RoleBinding (of a ClusterRole or a
        Role there), or everywhere with a ClusterRoleBinding when ``namespace`` is None."""
        binding_kind = "RoleBinding" if namespace else "ClusterRoleBinding"
        metadata: Obj = {"name": f"fake-user-{role}"}
        if namespace:
            metadata["namespace"] = namespace
        return self.add(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": binding_kind,
                "metadata": metadata,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
                "subjects": [self._subject()],
            }
        )

    def revoke_cluster_admin(self) -> None:
        """Take away the ClusterRoleBinding to ``cluster-admin`` the user starts with."""
        with self._lock:
            self._objects.pop(
                ("rbac.authorization.k8s.io", "clusterrolebindings", "", CLUSTER_ADMIN_BINDING),
                None,
            )

    def add(self, obj: Obj) -> Obj:
        """Store an object as if someone had created it before the test (manager ``kubectl``)."""
        rt = self._type_for(obj["apiVersion"], obj["kind"])
        with self._lock:
            return self._create(
                rt,
                obj.get("metadata", {}).get("namespace", "") or "",
                copy.deepcopy(obj),
                "kubectl",
                dry_run=False,
            )

    def add_finalizer(
        self, api_version: str, kind: str, name: str, namespace: str, finalizer: str
    ) -> None:
        """Put ``finalizer`` on a stored object, as another controller would."""
        self._edit_finalizers(api_version, kind, name, namespace, add=finalizer)

    def remove_finalizer(
        self, api_version: str, kind: str, name: str, namespace: str, finalizer: str
    ) -> None:
        """Take ``finalizer`` off (an object being deleted then goes)."""
        self._edit_finalizers(api_version, kind, name, namespace, remove=finalizer)

    def _edit_finalizers(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str,
        add: str | None = None,
        remove: str | None = None,
    ) -> None:
        rt = self._type_for(api_version, kind)
        key = (rt.group, rt.plural, namespace if rt.namespaced else "", name)
        with self._lock:
            obj = copy.deepcopy(self._objects[key])
            finalizers = [f for f in obj["metadata"].get("finalizers") or [] if f != remove]
            if add and add not in finalizers:
                finalizers.append(add)
            obj["metadata"]["finalizers"] = finalizers
            if not finalizers:
                obj["metadata"].pop("finalizers")
            obj["metadata"]["resourceVersion"] = self._next_version()
            self._objects[key] = obj

    def get_object(self, api_version: str, kind: str, name: str, namespace: str = "") -> Obj | None:
        rt = self._type_for(api_version, kind)
        with self._lock:
            found = self._objects.get(
                (rt.group, rt.plural, namespace if rt.namespaced else "", name)
            )
            return self._present(rt, found) if found is not None else None

    def list_objects(self, api_version: str, kind: str, namespace: str | None = None) -> list[Obj]:
        rt = self._type_for(api_version, kind)
        with self._lock:
            return [
                self._present(rt, obj)
                for key, obj in sorted(self._objects.items())
                if key[:2] == (rt.group, rt.plural) and (namespace is None or key[2] == namespace)
            ]

    def deleted(self, api_version: str, kind: str, name: str, namespace: str = "") -> bool:
        """Gone, or accepted for deletion (``deletionTimestamp`` set, waiting for finalizers or
        a namespace's contents): what a client may expect right after its delete."""
        obj = self.get_object(api_version, kind, name, namespace)
        return obj is None or bool(obj["metadata"].get("deletionTimestamp"))

    def list_live(self, api_version: str, kind: str, namespace: str | None = None) -> list[Obj]:
        """:meth:`list_objects` less those being deleted."""
        return [
            obj
            for obj in self.list_objects(api_version, kind, namespace)
            if not obj["metadata"].get("deletionTimestamp")
        ]

    def resource_versions(self) -> dict[Key, str]:
        """Every stored object's resourceVersion (to show that a run changed nothing)."""
        with self._lock:
            return {key: obj["metadata"]["resourceVersion"] for key, obj in self._objects.items()}

    def writes(self) -> list[RequestRecord]:
        """The requests that would change something (dry runs excluded)."""
        return [
            r
            for r in self.requests
            if r.verb in ("create", "update", "patch", "delete")
            and not r.dry_run
            and r.resource != "selfsubjectaccessreviews"
        ]

    # -- internals: types and keys ---------------------------------------------------

    def _leaves_of(self, rt: ResourceType, obj: Obj) -> Iterator[tuple[FieldPath, Any]]:
        """The field paths of what a manager can own of ``obj`` (see :func:`_leaves`)."""
        return _leaves(_configuration(obj), (), schema_for(self.version, rt))

    def _type_for(self, api_version: str, kind: str) -> ResourceType:
        group, _, version = api_version.rpartition("/")
        for rt in self.types:
            if rt.group == group and rt.version == version and rt.kind == kind:
                return rt
        raise KeyError(f"{api_version} {kind} is not served")

    def _type_by_plural(self, group: str, version: str, plural: str) -> ResourceType | None:
        for rt in self.types:
            if (rt.group, rt.version, rt.plural) == (group, version, plural):
                return rt
        return None

    def _next_version(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    def _present(self, rt: ResourceType, obj: Obj) -> Obj:
        """The object as the API returns it, managedFields included."""
        out = copy.deepcopy(obj)
        key = (rt.group, rt.plural, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        entries = self._managed.get(key, [])
        if entries:
            out["metadata"]["managedFields"] = [e.render() for e in entries]
        return out

    # -- authorization ---------------------------------------------------------------

    def allowed(self, verb: str, group: str, resource: str, namespace: str, name: str = "") -> bool:
        """Whether the user may: the denials of :meth:`deny` first, then RBAC."""
        for d_verb, d_group, d_resource, d_namespace in self._denials:
            if (
                d_verb in (verb, "*")
                and d_group == group
                and d_resource in (resource, "*")
                and (d_namespace is None or d_namespace == namespace)
            ):
                return False
        with self._lock:
            return any(
                rule_allows(rule, verb, group, resource, name)
                for rule in self._rules_for(namespace)
            )

    def _binds_me(self, binding: Obj) -> bool:
        me, groups = self._subject(), self._groups()
        for subject in binding.get("subjects") or []:
            kind = subject.get("kind")
            if kind == "Group" and subject.get("name") in groups:
                return True
            if kind == me["kind"] == "User" and subject.get("name") == me["name"]:
                return True
            if (
                kind == me["kind"] == "ServiceAccount"
                and subject.get("name") == me["name"]
                and (subject.get("namespace") or binding["metadata"].get("namespace"))
                == me["namespace"]
            ):
                return True
        return False

    def _rules_for(self, namespace: str) -> Iterator[Obj]:
        """Every rule that applies to the user in ``namespace`` ("" for cluster scope):
        ClusterRoleBindings everywhere, RoleBindings only in their own namespace."""
        rbac = "rbac.authorization.k8s.io"
        bindings = [
            (obj, "")
            for key, obj in self._objects.items()
            if key[:2] == (rbac, "clusterrolebindings")
        ]
        if namespace:
            bindings += [
                (obj, namespace)
                for key, obj in self._objects.items()
                if key[:3] == (rbac, "rolebindings", namespace)
            ]
        for binding, where in bindings:
            if not self._binds_me(binding):
                continue
            ref = binding.get("roleRef") or {}
            if ref.get("kind") == "ClusterRole":
                role = self._objects.get((rbac, "clusterroles", "", ref.get("name", "")))
            elif ref.get("kind") == "Role" and where:
                role = self._objects.get((rbac, "roles", where, ref.get("name", "")))
            else:
                role = None
            yield from (role or {}).get("rules") or []

    def _authorize(self, verb: str, rt: ResourceType, namespace: str, name: str) -> None:
        if rt.plural == "namespaces" and name:
            # As the API server's request info reads /api/v1/namespaces/<name>: the object
            # is in its own namespace, so a RoleBinding there can grant get on it.
            namespace = name
        if self.allowed(verb, rt.group, rt.plural, namespace, name):
            return
        subject = f'{rt.qualified} "{name}"' if name else rt.qualified
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        raise ApiError(
            403,
            "Forbidden",
            f'{subject} is forbidden: User "{self.user}" cannot {verb} resource "{rt.plural}" '
            f'in API group "{rt.group}" {scope}',
            {"name": name, "group": rt.group, "kind": rt.plural}
            if name
            else {"group": rt.group, "kind": rt.plural},
        )

    def _validate_fields(
        self, rt: ResourceType, body: Any, query: dict[str, str], *, apply: bool = False
    ) -> Any:
        """Server-side field validation of a write's body against the kind's schema: unknown
        fields are a 400 with ``fieldValidation=Strict``, dropped silently with ``Ignore``,
        dropped with a ``Warning`` header otherwise (``Warn``, the default)."""
        directive = query.get("fieldValidation", "Warn")
        if directive not in ("Strict", "Warn", "Ignore"):
            raise ApiError(
                400,
                "BadRequest",
                f'fieldValidation must be one of "Ignore", "Warn", or "Strict", got {directive!r}',
            )
        schema = schema_for(self.version, rt)
        if schema is None or not isinstance(body, dict):
            return body
        unknown = [p for p in schema.unknown(body) if not p.startswith("status")]
        if not unknown:
            return body
        if directive == "Strict":
            if apply:
                name = (body.get("metadata") or {}).get("name", "")
                listed = "\n".join(f".{p}: field not declared in schema" for p in unknown)
                message = (
                    f"failed to create typed patch object ({rt.group_version}, Kind={rt.kind} "
                    f"{name}): {listed}"
                )
            else:
                message = "strict decoding error: " + ", ".join(
                    f'unknown field "{p}"' for p in unknown
                )
            raise ApiError(400, "BadRequest", message)
        body = copy.deepcopy(body)
        for path in unknown:
            _drop_path(body, path)
            if directive == "Warn":
                warning = f'unknown field "{path}"'
                self.warnings_sent.append(warning)
                if not hasattr(self._local, "warnings"):
                    self._local.warnings = []
                self._local.warnings.append(warning)
        return body

    def _refuse_escalation(self, rt: ResourceType, namespace: str, obj: Any) -> None:
        """RBAC's escalation check: a Role (or ClusterRole) may grant only what its writer
        holds, unless the writer may ``escalate``."""
        if rt.plural not in ("roles", "clusterroles") or not isinstance(obj, dict):
            return
        name = str((obj.get("metadata") or {}).get("name", ""))
        if self.allowed("escalate", rt.group, rt.plural, namespace, name):
            return
        missing = []
        for rule in obj.get("rules") or []:
            for group in rule.get("apiGroups") or [""]:
                for resource in rule.get("resources") or []:
                    for verb in rule.get("verbs") or []:
                        if not self.allowed(verb, group, resource, namespace):
                            missing.append(
                                f'{{APIGroups:["{group}"], Resources:["{resource}"], Verbs:["{verb}"]}}'
                            )
        if missing:
            groups = ", ".join(f'"{g}"' for g in self._groups())
            raise ApiError(
                403,
                "Forbidden",
                f'{rt.qualified} "{name}" is forbidden: user "{self.user}" (groups=[{groups}]) '
                "is attempting to grant RBAC permissions not currently held:\n"
                + "\n".join(missing),
                {"name": name, "group": rt.group, "kind": rt.plural},
            )

    # -- errors ----------------------------------------------------------------------

    @staticmethod
    def _not_found(rt: ResourceType, name: str) -> ApiError:
        return ApiError(
            404,
            "NotFound",
            f'{rt.qualified} "{name}" not found',
            {"name": name, "group": rt.group, "kind": rt.plural},
        )

    def _check_namespace(self, rt: ResourceType, namespace: str, name: str = "") -> None:
        """A namespaced object may be created only in a namespace that exists and is not
        being deleted (the NamespaceLifecycle admission plugin)."""
        if not rt.namespaced:
            return
        found = self._objects.get(("", "namespaces", "", namespace))
        if found is None:
            raise ApiError(
                404,
                "NotFound",
                f'namespaces "{namespace}" not found',
                {"name": namespace, "kind": "namespaces"},
            )
        if found["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f'{rt.qualified} "{name}" is forbidden: unable to create new content in '
                f"namespace {namespace} because it is being terminated",
                {
                    "name": name,
                    "group": rt.group,
                    "kind": rt.plural,
                    "causes": [
                        {
                            "reason": "NamespaceTerminating",
                            "message": f"namespace {namespace} is being terminated",
                            "field": "metadata.namespace",
                        }
                    ],
                },
            )

    def _invalid(self, rt: ResourceType, name: str, causes: list[Cause]) -> ApiError:
        listed = causes[0][2] if len(causes) == 1 else "[" + ", ".join(c[2] for c in causes) + "]"
        return ApiError(
            422,
            "Invalid",
            f'{rt.kind_qualified} "{name}" is invalid: {listed}',
            {
                "name": name,
                "group": rt.group,
                "kind": rt.kind,
                "causes": [{"reason": r, "message": m, "field": f} for r, f, m in causes],
            },
        )

    # -- writes ----------------------------------------------------------------------

    def _prepare(self, rt: ResourceType, obj: Obj, old: Obj | None, namespace: str) -> Obj:
        """Defaults, server-owned metadata and validation: the object as it would be stored."""
        # As the API server's decoder does: a body without apiVersion/kind gets the URL's.
        obj.setdefault("apiVersion", rt.group_version)
        obj.setdefault("kind", rt.kind)
        if obj.get("apiVersion") != rt.group_version or obj.get("kind") != rt.kind:
            raise ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({obj.get('apiVersion')}) does not match the expected "
                f"API version ({rt.group_version})"
                if obj.get("apiVersion") != rt.group_version
                else f"the kind in the data ({obj.get('kind')}) does not match the expected kind ({rt.kind})",
            )
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        for server_owned in (
            "uid",
            "creationTimestamp",
            "resourceVersion",
            "generation",
            "managedFields",
            "selfLink",
        ):
            meta.pop(server_owned, None)
        if old is not None:
            for kept in ("uid", "creationTimestamp", "generation"):
                if kept in old["metadata"]:
                    meta[kept] = old["metadata"][kept]
            if "status" in old and rt.kind not in ("Event",):
                obj["status"] = copy.deepcopy(old["status"])
        else:
            obj.pop("status", None)
        self._default(rt, obj, old)
        causes = _validate_metadata(rt, obj) + _validate_kind(rt, obj, old)
        if causes:
            raise self._invalid(rt, meta.get("name", ""), causes)
        return obj

    def _default(self, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        spec = obj.get("spec")
        if rt.kind == "Namespace":
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj[
                "metadata"
            ].get("name", "")
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj.setdefault("status", {"phase": "Active"})
        elif rt.kind == "Deployment" and isinstance(spec, dict):
            spec.setdefault("replicas", 1)
            spec.setdefault(
                "strategy",
                {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                },
            )
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
            template_spec = (spec.get("template") or {}).get("spec")
            if isinstance(template_spec, dict):
                _default_pod_spec(template_spec)
        elif rt.kind == "Job" and isinstance(spec, dict):
            spec.setdefault("backoffLimit", 6)
            spec.setdefault("completions", 1)
            spec.setdefault("parallelism", 1)
            template = spec.setdefault("template", {})
            if isinstance(template.get("spec"), dict):
                _default_pod_spec(
                    template["spec"], restart=template["spec"].get("restartPolicy", "")
                )
            if old is None:
                uid = obj["metadata"].setdefault("uid", str(uuid.uuid4()))
                labels = {
                    "batch.kubernetes.io/controller-uid": uid,
                    "batch.kubernetes.io/job-name": obj["metadata"].get("name", ""),
                    "controller-uid": uid,
                    "job-name": obj["metadata"].get("name", ""),
                }
                spec.setdefault(
                    "selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
                )
                template.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
        elif rt.kind == "Service" and isinstance(spec, dict):
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("sessionAffinity", "None")
            if spec["type"] != "ExternalName":
                previous = ((old or {}).get("spec") or {}).get("clusterIP")
                if "clusterIP" not in spec:
                    spec["clusterIP"] = (
                        previous
                        or f"10.96.{(self._resource_version // 250) % 250}.{self._resource_version % 250 + 1}"
                    )
                spec.setdefault("clusterIPs", [spec["clusterIP"]])
            for port in spec.get("ports") or []:
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
        elif rt.kind == "Secret":
            obj.setdefault("type", "Opaque")
            string_data = obj.pop("stringData", None) or {}
            for key, value in string_data.items():
                obj.setdefault("data", {})[key] = base64.b64encode(str(value).encode()).decode()
        elif rt.kind == "PersistentVolumeClaim" and isinstance(spec, dict):
            spec.setdefault("volumeMode", "Filesystem")
            _canonical_resources(spec.get("resources"))
            if old is None:  # the StorageObjectInUseProtection admission plugin
                finalizers = obj["metadata"].setdefault("finalizers", [])
                if PVC_PROTECTION not in finalizers:
                    finalizers.append(PVC_PROTECTION)
            if old is None and "storageClassName" not in spec:
                default = self._default_storage_class()
                if default:
                    spec["storageClassName"] = default

    def _default_storage_class(self) -> str | None:
        for key, obj in self._objects.items():
            if key[1] == "storageclasses" and any(
                (obj["metadata"].get("annotations") or {}).get(annotation) == "true"
                for annotation in (
                    "storageclass.kubernetes.io/is-default-class",
                    "storageclass.beta.kubernetes.io/is-default-class",
                )
            ):
                return key[3]
        return None

    def _commit(
        self,
        rt: ResourceType,
        key: Key,
        new: Obj,
        old: Obj | None,
        entries: list[ManagedEntry],
        dry_run: bool,
    ) -> tuple[Obj, bool]:
        """Store ``new`` unless it equals ``old``; returns (object as returned, created)."""
        unchanged = (
            old is not None
            and _same(new, old)
            and _same_entries(entries, self._managed.get(key, []))
        )
        if unchanged:
            assert old is not None
            return self._present(rt, old), False
        if old is None:
            new["metadata"].setdefault("uid", str(uuid.uuid4()))
            new["metadata"]["creationTimestamp"] = _now()
            if rt.generation:
                new["metadata"]["generation"] = 1
        elif rt.generation and _spec_of(new) != _spec_of(old):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if dry_run:
            shown = copy.deepcopy(new)
            if old is not None:
                shown["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            if entries:
                shown["metadata"]["managedFields"] = [e.render() for e in entries]
            return shown, old is None
        new["metadata"]["resourceVersion"] = self._next_version()
        self._objects[key] = new
        self._managed[key] = [e for e in entries if e.paths]
        return self._present(rt, new), old is None

    def _create(
        self, rt: ResourceType, namespace: str, body: Obj, manager: str, dry_run: bool
    ) -> Obj:
        self._check_namespace(rt, namespace, (body.get("metadata") or {}).get("name", ""))
        name = (body.get("metadata") or {}).get("name", "")
        if not name and (body.get("metadata") or {}).get("generateName"):
            name = body["metadata"]["generateName"] + uuid.uuid4().hex[:5]
            body["metadata"]["name"] = name
        key = (rt.group, rt.plural, namespace if rt.namespaced else "", name)
        if key in self._objects:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{rt.qualified} "{name}" already exists',
                {"name": name, "group": rt.group, "kind": rt.plural},
            )
        user_paths = {p for p, _ in self._leaves_of(rt, body)}
        new = self._prepare(rt, body, None, namespace)
        entries = [ManagedEntry(manager, "Update", rt.group_version, _now(), user_paths)]
        return self._commit(rt, key, new, None, entries, dry_run)[0]

    def _update(
        self, rt: ResourceType, key: Key, new_body: Obj, manager: str, dry_run: bool
    ) -> Obj:
        """PUT and merge patch: the changed fields become the updater's."""
        old = self._objects[key]
        precondition = (new_body.get("metadata") or {}).get("resourceVersion")
        if precondition and precondition != old["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {rt.qualified} "{key[3]}": the object has been '
                "modified; please apply your changes to the latest version and try again",
                {"name": key[3], "group": rt.group, "kind": rt.plural},
            )
        new = self._prepare(rt, copy.deepcopy(new_body), old, key[2])
        old_leaves = dict(self._leaves_of(rt, old))
        new_leaves = dict(self._leaves_of(rt, new))
        changed = {p for p, v in new_leaves.items() if old_leaves.get(p, _MISSING) != v}
        gone = set(old_leaves) - set(new_leaves)
        touched = changed | gone
        entries = [copy.deepcopy(e) for e in self._managed.get(key, [])]
        for entry in entries:
            entry.paths = {q for q in entry.paths if not any(_overlaps(q, p) for p in touched)}
        if changed:
            mine = _entry(entries, manager, "Update", rt.group_version)
            mine.paths |= changed
            mine.time = _now()
        return self._commit(rt, key, new, old, entries, dry_run)[0]

    def _apply(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        config: Obj,
        manager: str,
        force: bool,
        dry_run: bool,
    ) -> tuple[Obj, bool]:
        """Server-side apply: merge ``config`` as ``manager``'s intent."""
        if not isinstance(config, dict):
            raise ApiError(400, "BadRequest", "error decoding YAML: the body is not an object")
        if (config.get("metadata") or {}).get("managedFields"):
            raise ApiError(400, "BadRequest", "metadata.managedFields must be nil")
        if not config.get("apiVersion") or not config.get("kind"):
            raise ApiError(
                400, "BadRequest", "apiVersion and kind must be set in an apply configuration"
            )
        config_name = (config.get("metadata") or {}).get("name")
        if config_name != name:
            raise ApiError(
                400,
                "BadRequest",
                "the name of the object ("
                + str(config_name)
                + ") does not match the name on the URL ("
                + name
                + ")",
            )
        key = (rt.group, rt.plural, namespace if rt.namespaced else "", name)
        old = self._objects.get(key)
        if old is None:
            self._check_namespace(rt, namespace, name)
        leaves = list(self._leaves_of(rt, config))
        duplicated = [p for p, n in Counter(p for p, _ in leaves).items() if n > 1]
        if duplicated:
            path = duplicated[0]
            item = max(i for i, part in enumerate(path) if part[:2] == "k:")
            raise ApiError(
                400,
                "BadRequest",
                f"failed to create typed patch object ({rt.group_version}, Kind={rt.kind} "
                f"{name}): {_format_path(path[:item])}: duplicate entries for key "
                f"{_format_path(path[item : item + 1])}",
            )
        applied = dict(leaves)
        entries = [copy.deepcopy(e) for e in self._managed.get(key, [])]
        mine = _entry(entries, manager, "Apply", rt.group_version)
        others = [e for e in entries if e is not mine]
        conflicts: list[tuple[str, FieldPath]] = []
        for path, value in applied.items():
            found, live = _get(old, path) if old is not None else (False, None)
            if found and live == value:
                continue
            for entry in others:
                for owned in list(entry.paths):
                    if _overlaps(owned, path):
                        if force:
                            entry.paths.discard(owned)
                        else:
                            conflicts.append((entry.manager, owned))
        if conflicts:
            raise _apply_conflict(rt, name, conflicts)
        merged = (
            copy.deepcopy(old)
            if old is not None
            else {
                "apiVersion": config.get("apiVersion"),
                "kind": config.get("kind"),
                "metadata": {"name": name},
            }
        )
        owned_by_others = [q for e in others for q in e.paths]
        removed = [
            p
            for p in mine.paths - set(applied)
            if not any(_overlaps(p, q) for q in owned_by_others)
        ]
        for path in removed:
            _delete(merged, path)
        # A list item nobody applies any more goes whole (its defaulted fields with it).
        items = {
            path[: i + 1] for path in removed for i, part in enumerate(path) if part[:2] == "k:"
        }
        for item in sorted(items, key=len, reverse=True):
            if not any(_overlaps(item, q) for q in [*applied, *owned_by_others]):
                _delete(merged, item)
        for path, value in applied.items():
            _set(merged, path, copy.deepcopy(value))
        merged["apiVersion"], merged["kind"] = config.get("apiVersion"), config.get("kind")
        new = self._prepare(rt, merged, old, namespace)
        if set(applied) != mine.paths:
            mine.time = _now()
        mine.paths = set(applied)
        if old is not None and not _same(new, old):
            mine.time = _now()
        return self._commit(rt, key, new, old, entries, dry_run)

    def _delete_object(self, rt: ResourceType, key: Key, dry_run: bool) -> Obj:
        """Delete as the API server does: an object with finalizers (a namespace always has
        one) only gets its ``deletionTimestamp`` and goes when they are removed; its
        dependents go in the background, ``gc_delay`` later (see :meth:`_reconcile_deletions`)."""
        obj = self._objects[key]
        if dry_run:
            return self._present(rt, obj)
        if obj["metadata"].get("deletionTimestamp"):
            return self._present(rt, obj)
        finalizers = list(obj["metadata"].get("finalizers") or [])
        if rt.kind == "Namespace" or finalizers:
            marked = copy.deepcopy(obj)
            marked["metadata"]["deletionTimestamp"] = _now()
            marked["metadata"]["deletionGracePeriodSeconds"] = 0
            marked["metadata"]["resourceVersion"] = self._next_version()
            if rt.kind == "Namespace":
                marked["status"] = {"phase": "Terminating"}
                self._terminating[key[3]] = time.monotonic()
            self._objects[key] = marked
            return self._present(rt, marked)
        self._remove(key)
        return self._present(rt, obj)

    def _remove(self, key: Key) -> None:
        obj = self._objects.pop(key, None)
        self._managed.pop(key, None)
        if obj is None:
            return
        uid = obj["metadata"].get("uid")
        if uid:
            self._deleted_owners[uid] = time.monotonic()
        self._next_version()

    def _reconcile_deletions(self) -> None:
        """The garbage collector, the claim-protection controller and the namespace
        controller: what goes some time after a delete."""
        now = time.monotonic()
        live_uids = {o["metadata"].get("uid") for o in self._objects.values()}
        for key, obj in list(self._objects.items()):
            if key not in self._objects:
                continue
            meta = obj["metadata"]
            owners = [o.get("uid") for o in meta.get("ownerReferences") or []]
            if owners and not any(u in live_uids for u in owners):
                gone_at = min((self._deleted_owners.get(u, now) for u in owners), default=now)
                if now - gone_at >= self.gc_delay:
                    self._delete_object(self._type_by_key(key), key, dry_run=False)
                    continue
            if key[1] == "persistentvolumeclaims" and meta.get("deletionTimestamp"):
                in_use = any(  # by a pod that has not terminated
                    k[1] == "pods"
                    and k[2] == key[2]
                    and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
                    and any(
                        (v.get("persistentVolumeClaim") or {}).get("claimName") == key[3]
                        for v in (p.get("spec") or {}).get("volumes") or []
                    )
                    for k, p in self._objects.items()
                )
                if not in_use and PVC_PROTECTION in (meta.get("finalizers") or []):
                    updated = copy.deepcopy(obj)
                    updated["metadata"]["finalizers"] = [
                        f for f in meta["finalizers"] if f != PVC_PROTECTION
                    ]
                    self._objects[key] = updated
                    meta = updated["metadata"]
            if (
                meta.get("deletionTimestamp")
                and not meta.get("finalizers")
                and key[1] != "namespaces"
            ):
                self._remove(key)
        for namespace, since in list(self._terminating.items()):
            if now - since < self.namespace_termination_seconds:
                continue
            contents = [k for k in self._objects if k[2] == namespace and k[1] != "namespaces"]
            for key in contents:  # the namespace controller deletes everything it holds
                self._objects[key]["metadata"].pop("finalizers", None)
                self._remove(key)
            self._remove(("", "namespaces", "", namespace))
            del self._terminating[namespace]

    def _type_by_key(self, key: Key) -> ResourceType:
        return next(rt for rt in self.types if (rt.group, rt.plural) == key[:2])

    # -- the request entry point -------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        """Answer one request: (status code, JSON body or a line iterator for streams)."""
        split = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        parts = [p for p in split.path.split("/") if p]
        if headers.get("authorization", "") != f"Bearer {self.token}":
            raise ApiError(401, "Unauthorized", "Unauthorized")
        if method == "GET":
            discovery = self._discovery(parts)
            if discovery is not None:
                return 200, discovery
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        namespace = ""
        if (
            len(rest) >= 3
            and rest[0] == "namespaces"
            and self._type_by_plural(group, version, rest[2]) is not None
        ):
            namespace, rest = rest[1], rest[2:]
        if not rest:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        rt = self._type_by_plural(group, version, rest[0])
        if rt is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else ""
        subresource = rest[2] if len(rest) > 2 else ""
        dry_run = query.get("dryRun") == "All"
        verb = {
            "GET": "get" if name else "list",
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete",
        }.get(method, "")
        if method == "GET" and query.get("watch") in ("true", "1"):
            verb = "watch"
        self.requests.append(
            RequestRecord(method, split.path, verb, group, rt.plural, namespace, name, dry_run)
        )
        if "dryRun" in query and not dry_run:
            raise ApiError(
                400, "BadRequest", f"Invalid dry run value: {query['dryRun']!r}; supported: All"
            )
        if rt.plural == "selfsubjectaccessreviews":
            if method != "POST":
                raise ApiError(
                    405,
                    "MethodNotAllowed",
                    "the server does not allow this method on the requested resource",
                )
            return 201, self._access_review(_decode(body, headers))
        if (
            not verb
            or (name and method == "POST")
            or (not name and method in ("PUT", "PATCH", "DELETE"))
        ):
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        if rt.namespaced and not namespace and method != "GET":
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if verb == "watch":
            raise ApiError(
                400, "BadRequest", "watch is not supported by this test server; poll instead"
            )
        if subresource and subresource not in rt.subresources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if subresource == "log":
            self._authorize("get", _LOG_TYPE, namespace, name)
            return 200, self._logs(namespace, name, query)
        if subresource:
            raise ApiError(
                405,
                "MethodNotAllowed",
                f"the {subresource} subresource is not served by this test server",
            )
        with self._lock:
            return self._object_request(
                rt, verb, method, namespace, name, query, headers, body, dry_run
            )

    def _object_request(
        self,
        rt: ResourceType,
        verb: str,
        method: str,
        namespace: str,
        name: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        dry_run: bool,
    ) -> tuple[int, Any]:
        key = (rt.group, rt.plural, namespace if rt.namespaced else "", name)
        manager = query.get("fieldManager") or headers.get("user-agent", "unknown").split("/")[0]
        if verb == "get":
            self._authorize("get", rt, namespace, name)
            if key not in self._objects:
                raise self._not_found(rt, name)
            return 200, self._present(rt, self._objects[key])
        if verb == "list":
            self._authorize("list", rt, namespace, "")
            return 200, self._list(rt, namespace, query)
        if verb == "create":
            self._authorize("create", rt, namespace, "")
            created = self._validate_fields(rt, _decode(body, headers), query)
            self._refuse_escalation(rt, namespace, created)
            return 201, self._create(rt, namespace, created, manager, dry_run)
        if verb == "update":
            self._authorize("update", rt, namespace, name)
            if key not in self._objects:
                raise self._not_found(rt, name)
            updated = self._validate_fields(rt, _decode(body, headers), query)
            self._refuse_escalation(rt, namespace, updated)
            return 200, self._update(rt, key, updated, manager, dry_run)
        if verb == "delete":
            self._authorize("delete", rt, namespace, name)
            if key not in self._objects:
                raise self._not_found(rt, name)
            return 200, self._delete_object(rt, key, dry_run)
        content_type = headers.get("content-type", "").split(";")[0].strip()
        self._authorize("patch", rt, namespace, name)
        if content_type == "application/apply-patch+yaml":
            if not query.get("fieldManager"):
                raise ApiError(
                    422,
                    "Invalid",
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
                )
            if key not in self._objects:
                self._authorize("create", rt, namespace, name)
            config = _decode(body, headers)
            self.applied_bodies.append(copy.deepcopy(config))
            config = self._validate_fields(rt, config, query, apply=True)
            self._refuse_escalation(rt, namespace, config)
            result, created = self._apply(
                rt,
                namespace,
                name,
                config,
                query["fieldManager"],
                query.get("force") == "true",
                dry_run,
            )
            return (201 if created else 200), result
        if query.get("force"):
            raise ApiError(
                422,
                "Invalid",
                'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch',
            )
        if content_type in (
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
        ):
            if key not in self._objects:
                raise self._not_found(rt, name)
            patch = self._validate_fields(rt, _decode(body, headers), query)
            patched = _merge_patch(copy.deepcopy(self._objects[key]), patch)
            return 200, self._update(rt, key, patched, manager, dry_run)
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: application/apply-patch+yaml, application/merge-patch+json, application/strategic-merge-patch+json (this test server does not take {content_type or 'no content type'})",
        )

    def _list(self, rt: ResourceType, namespace: str, query: dict[str, str]) -> Obj:
        labels = query.get("labelSelector", "")
        fields = query.get("fieldSelector", "")
        items = []
        for key, obj in sorted(self._objects.items()):
            if key[:2] != (rt.group, rt.plural) or (namespace and key[2] != namespace):
                continue
            if labels and not label_selector_matches(labels, obj["metadata"].get("labels") or {}):
                continue
            if fields and not _field_selector_matches(fields, obj):
                continue
            items.append(self._present(rt, obj))
        return {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.group_version,
            "metadata": {"resourceVersion": str(self._resource_version)},
            "items": items,
        }

    def _access_review(self, review: Obj) -> Obj:
        attributes = (review.get("spec") or {}).get("resourceAttributes") or {}
        allowed = self.allowed(
            attributes.get("verb", ""),
            attributes.get("group", ""),
            attributes.get("resource", "")
            + (f"/{attributes['subresource']}" if attributes.get("subresource") else ""),
            attributes.get("namespace", ""),
            attributes.get("name", ""),
        )
        return {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": review.get("spec") or {},
            "status": {"allowed": allowed} if allowed else {"allowed": False, "reason": ""},
        }

    def _discovery(self, parts: list[str]) -> Obj | None:
        if parts == ["version"]:
            major, minor = self.version.lstrip("v").split(".")[:2]
            return {
                "major": major,
                "minor": minor,
                "gitVersion": self.version,
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean",
                "buildDate": "2024-07-17T00:00:00Z",
                "platform": "linux/amd64",
                "goVersion": "go1.22.5",
                "compiler": "gc",
            }
        if parts == ["api"]:
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}
                ],
            }
        if parts == ["apis"]:
            groups: dict[str, list[str]] = {}
            for rt in self.types:
                if rt.group and rt.version not in groups.setdefault(rt.group, []):
                    groups[rt.group].append(rt.version)
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": group,
                        "versions": [
                            {"groupVersion": f"{group}/{v}", "version": v} for v in versions
                        ],
                        "preferredVersion": {
                            "groupVersion": f"{group}/{versions[0]}",
                            "version": versions[0],
                        },
                    }
                    for group, versions in groups.items()
                ],
            }
        if parts == ["api", "v1"]:
            return self._resource_list("", "v1")
        if (
            len(parts) == 3
            and parts[0] == "apis"
            and any(rt.group == parts[1] and rt.version == parts[2] for rt in self.types)
        ):
            return self._resource_list(parts[1], parts[2])
        return None

    def _resource_list(self, group: str, version: str) -> Obj:
        resources: list[Obj] = []
        for rt in self.types:
            if (rt.group, rt.version) != (group, version):
                continue
            resources.append(
                {
                    "name": rt.plural,
                    "singularName": rt.kind.lower(),
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": list(rt.verbs),
                }
            )
            for sub in rt.subresources:
                verbs = ["get"] if sub == "log" else ["get", "patch", "update"]
                resources.append(
                    {
                        "name": f"{rt.plural}/{sub}",
                        "singularName": "",
                        "namespaced": rt.namespaced,
                        "kind": "Pod" if sub == "log" else rt.kind,
                        "verbs": verbs,
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    # -- pod logs ----------------------------------------------------------------------

    def _logs(self, namespace: str, name: str, query: dict[str, str]) -> Iterator[str] | list[str]:
        pod_type = self._type_for("v1", "Pod")
        with self._lock:
            pod = self._objects.get(("", "pods", namespace, name))
            if pod is None:
                raise self._not_found(pod_type, name)
            containers = [c["name"] for c in pod["spec"]["containers"]]
            container = query.get("container") or (containers[0] if len(containers) == 1 else "")
            if not container:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"a container name must be specified for pod {name}, choose one of: {containers}",
                )
            if container not in containers:
                raise ApiError(
                    400, "BadRequest", f"container {container} is not valid for pod {name}"
                )
            run = self._container_runs.get(f"{pod['metadata']['uid']}/{container}")
            if run is None or not run.started:
                reason = _waiting_reason(pod, container) or "ContainerCreating"
                raise ApiError(
                    400,
                    "BadRequest",
                    f'container "{container}" in pod "{name}" is waiting to start: {_WAITING_WORDS.get(reason, reason)}',
                )
        tail = int(query["tailLines"]) if query.get("tailLines") else None
        if query.get("follow") != "true":
            lines = list(run.printed)
            return lines[-tail:] if tail is not None else lines
        return self._follow(run, tail)

    def _follow(self, run: _RunningContainer, tail: int | None) -> Iterator[str]:
        with self._lock:
            start = max(0, len(run.printed) - tail) if tail is not None else 0
        sent = start
        while not self._stop.is_set():
            with self._lock:
                fresh = run.printed[sent:]
                finished = run.finished
            yield from fresh
            sent += len(fresh)
            if finished and not fresh:
                return
            time.sleep(TICK_SECONDS)

    # -- controllers -------------------------------------------------------------------

    def _controller_loop(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            with self._lock:
                try:
                    self._reconcile()
                except Exception as e:  # noqa: BLE001 - a bug in the fake must be loud, not a hang
                    self._record_fake_failure(e)

    def _record_fake_failure(self, error: Exception) -> None:
        import traceback

        self.fake_failures.append("".join(traceback.format_exception(error)))

    def _reconcile(self) -> None:
        self._reconcile_deletions()
        for key, obj in list(self._objects.items()):
            if key not in self._objects:
                continue
            if key[1] == "persistentvolumeclaims":
                self._reconcile_claim(key, obj)
            elif key[1] == "deployments":
                self._reconcile_deployment(key, obj)
            elif key[1] == "jobs":
                self._reconcile_job(key, obj)
        for key, obj in list(self._objects.items()):
            if key[1] == "pods" and key in self._objects:
                self._reconcile_pod(key, obj)
        for key, obj in list(self._objects.items()):
            if key[1] == "services":
                self._reconcile_endpoints(key, obj)

    def _write_status(self, key: Key, status: Obj) -> None:
        obj = self._objects[key]
        if obj.get("status") != status:
            updated = copy.deepcopy(obj)
            updated["status"] = status
            updated["metadata"]["resourceVersion"] = self._next_version()
            self._objects[key] = updated

    def _system_create(self, obj: Obj, manager: str) -> Obj:
        rt = self._type_for(obj["apiVersion"], obj["kind"])
        namespace = obj["metadata"].get("namespace", "")
        key = (rt.group, rt.plural, namespace if rt.namespaced else "", obj["metadata"]["name"])
        obj["metadata"]["uid"] = str(uuid.uuid4())
        obj["metadata"]["creationTimestamp"] = _now()
        obj["metadata"]["resourceVersion"] = self._next_version()
        self._objects[key] = obj
        self._managed[key] = [
            ManagedEntry(
                manager,
                "Update",
                rt.group_version,
                _now(),
                {p for p, _ in self._leaves_of(rt, obj)},
            )
        ]
        return obj

    def record_event(
        self,
        involved: Obj,
        event_type: str,
        reason: str,
        message: str,
        component: str,
        field_path: str | None = None,
    ) -> None:
        """An Event about ``involved``; a repeat of the same one counts up, as in a cluster."""
        meta = involved["metadata"]
        namespace = meta.get("namespace") or "default"
        for key, event in self._objects.items():
            if (
                key[1] == "events"
                and key[2] == namespace
                and event["involvedObject"].get("uid") == meta.get("uid")
                and event["reason"] == reason
                and event["message"] == message
            ):
                updated = copy.deepcopy(event)
                updated["count"] = int(event.get("count", 1)) + 1
                updated["lastTimestamp"] = _now()
                updated["metadata"]["resourceVersion"] = self._next_version()
                self._objects[key] = updated
                return
        involved_object = {
            "kind": involved["kind"],
            "namespace": namespace,
            "name": meta["name"],
            "uid": meta.get("uid"),
            "apiVersion": involved["apiVersion"],
            "resourceVersion": meta.get("resourceVersion"),
        }
        if field_path:
            involved_object["fieldPath"] = field_path
        self._system_create(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                    "namespace": namespace,
                },
                "involvedObject": involved_object,
                "reason": reason,
                "message": message,
                "type": event_type,
                "source": {"component": component},
                "count": 1,
                "firstTimestamp": _now(),
                "lastTimestamp": _now(),
                "reportingComponent": component,
            },
            component,
        )

    def _reconcile_claim(self, key: Key, claim: Obj) -> None:
        wanted = (claim.get("spec") or {}).get("storageClassName")
        exists = (
            wanted is not None and ("storage.k8s.io", "storageclasses", "", wanted) in self._objects
        )
        if exists:
            requested = claim["spec"]["resources"]["requests"]["storage"]
            self._write_status(
                key,
                {
                    "phase": "Bound",
                    "accessModes": claim["spec"]["accessModes"],
                    "capacity": {"storage": requested},
                },
            )
        else:
            self._write_status(key, {"phase": "Pending"})
            message = (
                f'storageclass.storage.k8s.io "{wanted}" not found'
                if wanted
                else "no persistent volumes available for this claim and no storage class is set"
            )
            self.record_event(
                claim,
                "Warning",
                "ProvisioningFailed" if wanted else "FailedBinding",
                message,
                "persistentvolume-controller",
            )

    def _pods_of(self, owner: Obj) -> list[tuple[Key, Obj]]:
        uid = owner["metadata"]["uid"]
        return [
            (key, pod)
            for key, pod in sorted(self._objects.items())
            if key[1] == "pods"
            and any(o.get("uid") == uid for o in pod["metadata"].get("ownerReferences") or [])
        ]

    def _new_pod(
        self,
        owner: Obj,
        template: Obj,
        name: str,
        extra_labels: dict[str, str],
        creator: Obj | None = None,
    ) -> Obj | None:
        """A pod for ``owner``; None when admission refuses it (see :attr:`forbidden_images`),
        with the ``FailedCreate`` event on ``creator`` (its ReplicaSet) or the owner."""
        images = [c.get("image") for c in (template.get("spec") or {}).get("containers") or []]
        refused = next(
            (self.forbidden_images[i] for i in images if i in self.forbidden_images), None
        )
        if refused is not None:
            component = "job-controller" if owner["kind"] == "Job" else "replicaset-controller"
            message = f'Error creating: pods "{name}" is forbidden: {refused}'
            self.record_event(creator or owner, "Warning", "FailedCreate", message, component)
            return None
        template_meta = template.get("metadata") or {}
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": owner["metadata"]["namespace"],
                "labels": {**(template_meta.get("labels") or {}), **extra_labels},
                "annotations": dict(template_meta.get("annotations") or {}),
                "ownerReferences": [
                    {
                        "apiVersion": owner["apiVersion"],
                        "kind": owner["kind"],
                        "name": owner["metadata"]["name"],
                        "uid": owner["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": copy.deepcopy(template.get("spec") or {}),
            "status": {"phase": "Pending", "conditions": []},
        }
        return self._system_create(pod, "kube-controller-manager")

    def _reconcile_deployment(self, key: Key, deployment: Obj) -> None:
        spec = deployment["spec"]
        replicas = int(spec.get("replicas", 1))
        template_hash = hashlib.sha256(
            json.dumps(spec["template"], sort_keys=True).encode()
        ).hexdigest()[:10]
        generation = int(deployment["metadata"].get("generation", 1))
        progress_key = f"{deployment['metadata']['uid']}/{generation}"
        self._progress_started.setdefault(progress_key, time.monotonic())
        pods = self._pods_of(deployment)
        new = [
            (k, p)
            for k, p in pods
            if p["metadata"]["labels"].get("pod-template-hash") == template_hash
        ]
        old = [(k, p) for k, p in pods if (k, p) not in new]
        if len(new) < replicas:
            replica_set = {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"{key[3]}-{template_hash}",
                    "namespace": key[2],
                    "uid": f"{deployment['metadata']['uid']}-{template_hash}",
                },
            }
            for _ in range(replicas - len(new)):
                self._new_pod(
                    deployment,
                    spec["template"],
                    f"{key[3]}-{template_hash}-{uuid.uuid4().hex[:5]}",
                    {"pod-template-hash": template_hash},
                    creator=replica_set,
                )
            self.record_event(
                deployment,
                "Normal",
                "ScalingReplicaSet",
                f"Scaled up replica set {key[3]}-{template_hash} to {replicas}",
                "deployment-controller",
            )
        for pod_key, _ in new[replicas:]:
            self._objects.pop(pod_key, None)
        new = [
            (k, p)
            for k, p in self._pods_of(deployment)
            if p["metadata"]["labels"].get("pod-template-hash") == template_hash
        ]
        new_ready = [p for _, p in new if _pod_ready(p)]
        if old and len(new_ready) >= replicas:
            for pod_key, _ in old:
                self._objects.pop(pod_key, None)
            self.record_event(
                deployment,
                "Normal",
                "ScalingReplicaSet",
                f"Scaled down replica set {key[3]} (old) to 0",
                "deployment-controller",
            )
            old = []
        old_ready = [p for _, p in old if _pod_ready(p)]
        available = len(new_ready) + len(old_ready)
        complete = len(new) == replicas and len(new_ready) == replicas and not old
        started = self._progress_started[progress_key]
        deadline = int(spec.get("progressDeadlineSeconds", 600))
        rs_name = f"{key[3]}-{template_hash}"
        if complete:
            progressing = {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable",
                "message": f'ReplicaSet "{rs_name}" has successfully progressed.',
            }
        elif time.monotonic() - started > deadline:
            progressing = {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": f'ReplicaSet "{rs_name}" has timed out progressing.',
            }
        else:
            progressing = {
                "type": "Progressing",
                "status": "True",
                "reason": "ReplicaSetUpdated",
                "message": f'ReplicaSet "{rs_name}" is progressing.',
            }
        max_unavailable = _max_unavailable(spec, replicas)
        if available >= replicas - max_unavailable:
            availability = {
                "type": "Available",
                "status": "True",
                "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.",
            }
        else:
            availability = {
                "type": "Available",
                "status": "False",
                "reason": "MinimumReplicasUnavailable",
                "message": "Deployment does not have minimum availability.",
            }
        status: Obj = {
            "observedGeneration": generation,
            "replicas": len(new) + len(old),
            "updatedReplicas": len(new),
            "readyReplicas": available,
            "availableReplicas": available,
            "conditions": _timed(
                (deployment.get("status") or {}).get("conditions"), [availability, progressing]
            ),
        }
        if replicas - available > 0:
            status["unavailableReplicas"] = replicas - available
        status = {k: v for k, v in status.items() if v != 0 or k == "observedGeneration"}
        self._write_status(key, status)

    def _reconcile_job(self, key: Key, job: Obj) -> None:
        status = copy.deepcopy(job.get("status") or {})
        if any(
            c["type"] in ("Complete", "Failed") and c["status"] == "True"
            for c in status.get("conditions", [])
        ):
            return
        status.setdefault("startTime", _now())
        pods = self._pods_of(job)
        succeeded = sum(1 for _, p in pods if p["status"]["phase"] == "Succeeded")
        failed = sum(1 for _, p in pods if p["status"]["phase"] == "Failed")
        active = [p for _, p in pods if p["status"]["phase"] in ("Pending", "Running")]
        # Under OnFailure a failure is a container restart in the same pod; the Job counts
        # them against backoffLimit as it counts failed pods.
        failed += sum(
            int(c.get("restartCount") or 0)
            for _, p in pods
            for c in (p.get("status") or {}).get("containerStatuses") or []
        )
        if succeeded:
            status.update({"succeeded": 1, "completionTime": _now(), "ready": 0})
            status.pop("active", None)
            status["conditions"] = [
                {
                    "type": "SuccessCriteriaMet",
                    "status": "True",
                    "reason": "CompletionsReached",
                    "message": "Reached expected number of succeeded pods",
                },
                {
                    "type": "Complete",
                    "status": "True",
                    "reason": "CompletionsReached",
                    "message": "Reached expected number of succeeded pods",
                },
            ]
            self.record_event(job, "Normal", "Completed", "Job completed", "job-controller")
        elif failed > int(job["spec"].get("backoffLimit", 6)):
            status.update({"failed": failed, "ready": 0})
            status.pop("active", None)
            for pod_key, pod in pods:  # the Job controller stops what still runs
                if pod["status"]["phase"] in ("Pending", "Running"):
                    self._remove(pod_key)
            status["conditions"] = [
                {
                    "type": "FailureTarget",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                },
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                },
            ]
            self.record_event(
                job,
                "Warning",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                "job-controller",
            )
        elif not active:
            pod = self._new_pod(
                job, job["spec"]["template"], f"{key[3]}-{uuid.uuid4().hex[:5]}", {}
            )
            if pod is None:
                return
            self.record_event(
                job,
                "Normal",
                "SuccessfulCreate",
                f"Created pod: {pod['metadata']['name']}",
                "job-controller",
            )
            status["active"] = 1
            if failed:
                status["failed"] = failed
        self._write_status(key, status)

    def _reconcile_pod(self, key: Key, pod: Obj) -> None:
        status = copy.deepcopy(pod["status"])
        if status["phase"] in ("Succeeded", "Failed"):
            return
        spec = pod["spec"]
        conditions = {c["type"]: c for c in status.get("conditions", [])}
        if "nodeName" not in spec:
            reason = self._unschedulable(pod)
            if reason:
                conditions["PodScheduled"] = {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": reason,
                }
                status["conditions"] = list(conditions.values())
                self._write_status(key, status)
                self.record_event(pod, "Warning", "FailedScheduling", reason, "default-scheduler")
                return
            node = self.nodes[hash(key[3]) % len(self.nodes)].name
            updated = copy.deepcopy(self._objects[key])
            updated["spec"]["nodeName"] = node
            updated["metadata"]["resourceVersion"] = self._next_version()
            self._objects[key] = updated
            pod = updated
            self._pod_ip += 1
            status.update(
                {
                    "hostIP": "192.168.0.10",
                    "podIP": f"10.244.{self._pod_ip // 250}.{self._pod_ip % 250}",
                    "startTime": _now(),
                }
            )
            conditions["PodScheduled"] = {"type": "PodScheduled", "status": "True"}
            self.record_event(
                pod,
                "Normal",
                "Scheduled",
                f"Successfully assigned {key[2]}/{key[3]} to {node}",
                "default-scheduler",
            )
        statuses: list[Obj] = []
        is_job = any(o.get("kind") == "Job" for o in pod["metadata"].get("ownerReferences") or [])
        for container in spec["containers"]:
            statuses.append(self._run_container(pod, container, is_job))
        status["containerStatuses"] = statuses
        all_ready = all(s["ready"] for s in statuses)
        terminated = [s["state"].get("terminated") for s in statuses]
        if all(terminated):
            status["phase"] = (
                "Succeeded" if all(t["exitCode"] == 0 for t in terminated if t) else "Failed"
            )
        elif any(
            "running" in s["state"] or s.get("lastState", {}).get("terminated") for s in statuses
        ):
            status["phase"] = "Running"
        ready_condition = "True" if all_ready and status["phase"] == "Running" else "False"
        conditions["Initialized"] = {"type": "Initialized", "status": "True"}
        conditions["ContainersReady"] = {"type": "ContainersReady", "status": ready_condition}
        conditions["Ready"] = {"type": "Ready", "status": ready_condition}
        status["conditions"] = [
            conditions[t]
            for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
            if t in conditions
        ]
        self._write_status(key, status)

    def _unschedulable(self, pod: Obj) -> str | None:
        spec = pod["spec"]
        namespace = pod["metadata"]["namespace"]
        for volume in spec.get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim is None:
                continue
            stored = self._objects.get(("", "persistentvolumeclaims", namespace, claim))
            if stored is None:
                return f'0/{len(self.nodes)} nodes are available: persistentvolumeclaim "{claim}" not found. preemption: 0/{len(self.nodes)} nodes are available: {len(self.nodes)} Preemption is not helpful for scheduling.'
            if (stored.get("status") or {}).get("phase") != "Bound":
                return f"0/{len(self.nodes)} nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/{len(self.nodes)} nodes are available: {len(self.nodes)} Preemption is not helpful for scheduling."
        cpu = sum(
            cpu_millis(((c.get("resources") or {}).get("requests") or {}).get("cpu", "0"))
            for c in spec["containers"]
        )
        memory = sum(
            memory_bytes(((c.get("resources") or {}).get("requests") or {}).get("memory", "0"))
            for c in spec["containers"]
        )
        short = []
        if not any(n.allocatable_cpu_millis >= cpu for n in self.nodes):
            short.append(f"{len(self.nodes)} Insufficient cpu")
        if not any(n.allocatable_memory_bytes >= memory for n in self.nodes):
            short.append(f"{len(self.nodes)} Insufficient memory")
        if short:
            count = len(self.nodes)
            return f"0/{count} nodes are available: {', '.join(short)}. preemption: 0/{count} nodes are available: {count} No preemption victims found for incoming pod."
        return None

    def _run_container(self, pod: Obj, container: Obj, is_job: bool) -> Obj:
        name, image = container["name"], container["image"]
        run_key = f"{pod['metadata']['uid']}/{name}"
        field_path = f"spec.containers{{{name}}}"
        base = {
            "name": name,
            "image": image,
            "imageID": "",
            "restartCount": 0,
            "started": False,
            "ready": False,
        }
        if image in self.unpullable_images:
            pulling = self._container_runs.setdefault(run_key, _RunningContainer())
            if not pulling.due():
                return _last_status(pod, name) or {
                    **base,
                    "state": {"waiting": {"reason": "ContainerCreating"}},
                }
            pulling.attempts += 1
            self.record_event(
                pod, "Normal", "Pulling", f'Pulling image "{image}"', "kubelet", field_path
            )
            self.record_event(
                pod,
                "Warning",
                "Failed",
                f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and unpack image "{image}": failed to resolve reference "{image}": {image}: not found',
                "kubelet",
                field_path,
            )
            if pulling.attempts == 1:
                self.record_event(
                    pod, "Warning", "Failed", "Error: ErrImagePull", "kubelet", field_path
                )
                return {
                    **base,
                    "state": {
                        "waiting": {
                            "reason": "ErrImagePull",
                            "message": f'failed to pull and unpack image "{image}": not found',
                        }
                    },
                }
            self.record_event(
                pod, "Normal", "BackOff", f'Back-off pulling image "{image}"', "kubelet", field_path
            )
            self.record_event(
                pod, "Warning", "Failed", "Error: ImagePullBackOff", "kubelet", field_path
            )
            return {
                **base,
                "state": {
                    "waiting": {
                        "reason": "ImagePullBackOff",
                        "message": f'Back-off pulling image "{image}"',
                    }
                },
            }
        run = self._container_runs.get(run_key)
        if run is None:
            plan = self._plan_for(pod, image, is_job)
            run = self._container_runs[run_key] = _RunningContainer(plan=plan)
            self.record_event(
                pod,
                "Normal",
                "Pulled",
                f'Container image "{image}" already present on machine',
                "kubelet",
                field_path,
            )
            self.record_event(
                pod, "Normal", "Created", f"Created container {name}", "kubelet", field_path
            )
            self.record_event(
                pod, "Normal", "Started", f"Started container {name}", "kubelet", field_path
            )
        if not run.started:
            run.started, run.started_at = True, _now()
        crash = self.crashing_images.get(image)
        if crash is not None:
            if not run.due():
                return _last_status(pod, name) or base
            run.printed = list(crash.lines)
            run.finished = True
            run.attempts += 1
            self.record_event(
                pod,
                "Warning",
                "BackOff",
                f"Back-off restarting failed container {name} in pod {pod['metadata']['name']}_{pod['metadata']['namespace']}({pod['metadata']['uid']})",
                "kubelet",
                field_path,
            )
            return {
                **base,
                "restartCount": run.attempts,
                "state": {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off 10s restarting failed container={name} pod={pod['metadata']['name']}_{pod['metadata']['namespace']}({pod['metadata']['uid']})",
                    }
                },
                "lastState": {
                    "terminated": {
                        "exitCode": crash.exit_code,
                        "reason": "Error",
                        "startedAt": _now(),
                        "finishedAt": _now(),
                    }
                },
            }
        if is_job and run.plan is not None:
            restarted: Obj = {}
            if run.attempts:
                restarted = {
                    "restartCount": run.attempts,
                    "lastState": {
                        "terminated": {
                            "exitCode": run.plan.exit_code,
                            "reason": "Error",
                            "startedAt": run.started_at,
                            "finishedAt": run.started_at,
                        }
                    },
                }
            if run.restarting:
                if not run.due():
                    return {
                        **base,
                        **restarted,
                        "state": {
                            "waiting": {
                                "reason": "CrashLoopBackOff",
                                "message": f"back-off 10s restarting failed container={name} pod={pod['metadata']['name']}_{pod['metadata']['namespace']}({pod['metadata']['uid']})",
                            }
                        },
                    }
                run.restarting, run.finished = False, False
                run.printed = []
                run.started_at = _now()
                self.record_event(
                    pod, "Normal", "Started", f"Started container {name}", "kubelet", field_path
                )
            if len(run.printed) < len(run.plan.lines):
                run.printed.append(run.plan.lines[len(run.printed)])
                return {
                    **base,
                    **restarted,
                    "started": True,
                    "state": {"running": {"startedAt": run.started_at}},
                }
            run.finished = True
            if run.plan.exit_code != 0 and pod["spec"].get("restartPolicy") == "OnFailure":
                # The kubelet restarts the container in the same pod, after a back-off.
                run.attempts += 1
                run.restarting = True
                run.last_attempt = time.monotonic()
                self.record_event(
                    pod,
                    "Warning",
                    "BackOff",
                    f"Back-off restarting failed container {name} in pod {pod['metadata']['name']}_{pod['metadata']['namespace']}({pod['metadata']['uid']})",
                    "kubelet",
                    field_path,
                )
                return {
                    **base,
                    "restartCount": run.attempts,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {
                        "terminated": {
                            "exitCode": run.plan.exit_code,
                            "reason": "Error",
                            "startedAt": run.started_at,
                            "finishedAt": _now(),
                        }
                    },
                }
            reason = "Completed" if run.plan.exit_code == 0 else "Error"
            return {
                **base,
                "state": {
                    "terminated": {
                        "exitCode": run.plan.exit_code,
                        "reason": reason,
                        "startedAt": _now(),
                        "finishedAt": _now(),
                    }
                },
            }
        return {
            **base,
            "started": True,
            "ready": True,
            "state": {"running": {"startedAt": run.started_at}},
        }

    def _plan_for(self, pod: Obj, image: str, is_job: bool) -> ContainerRun | None:
        if not is_job:
            return None
        owner = next(
            o["name"] for o in pod["metadata"]["ownerReferences"] if o.get("kind") == "Job"
        )
        return (
            self.job_runs.get(f"{pod['metadata']['namespace']}/{owner}")
            or self.job_runs.get(image)
            or self.default_job_run
        )

    def _reconcile_endpoints(self, key: Key, service: Obj) -> None:
        selector = (service.get("spec") or {}).get("selector")
        if not selector:
            return
        namespace, name = key[2], key[3]
        pods = [
            p
            for k, p in sorted(self._objects.items())
            if k[1] == "pods"
            and k[2] == namespace
            and p["status"].get("podIP")
            and all((p["metadata"].get("labels") or {}).get(a) == b for a, b in selector.items())
        ]
        endpoints = [
            {
                "addresses": [p["status"]["podIP"]],
                "conditions": {
                    "ready": _pod_ready(p),
                    "serving": _pod_ready(p),
                    "terminating": False,
                },
                "targetRef": {
                    "kind": "Pod",
                    "namespace": namespace,
                    "name": p["metadata"]["name"],
                    "uid": p["metadata"]["uid"],
                },
                "nodeName": p["spec"].get("nodeName"),
            }
            for p in pods
        ]
        ports = [
            {
                "name": port.get("name", ""),
                "port": port["targetPort"]
                if isinstance(port.get("targetPort"), int)
                else port["port"],
                "protocol": port.get("protocol", "TCP"),
            }
            for port in service["spec"].get("ports") or []
        ]
        slice_key = ("discovery.k8s.io", "endpointslices", namespace, f"{name}-fake")
        existing = self._objects.get(slice_key)
        if existing is None:
            self._system_create(
                {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "name": f"{name}-fake",
                        "namespace": namespace,
                        "labels": {
                            "kubernetes.io/service-name": name,
                            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                        },
                        "ownerReferences": [
                            {
                                "apiVersion": "v1",
                                "kind": "Service",
                                "name": name,
                                "uid": service["metadata"]["uid"],
                                "controller": True,
                                "blockOwnerDeletion": True,
                            }
                        ],
                    },
                    "addressType": "IPv4",
                    "endpoints": endpoints,
                    "ports": ports,
                },
                "endpointslice-controller",
            )
        elif existing.get("endpoints") != endpoints or existing.get("ports") != ports:
            updated = copy.deepcopy(existing)
            updated["endpoints"], updated["ports"] = endpoints, ports
            updated["metadata"]["resourceVersion"] = self._next_version()
            self._objects[slice_key] = updated


@dataclass
class _RunningContainer:
    plan: ContainerRun | None = None
    printed: list[str] = field(default_factory=list)
    started: bool = False
    started_at: str = ""
    finished: bool = False
    # Pull attempts, or restarts of a crashing container; paced like the kubelet's back-off.
    attempts: int = 0
    last_attempt: float = 0.0
    # A Job's container that failed under ``restartPolicy: OnFailure``: restarted in the
    # same pod once the back-off is over.
    restarting: bool = False

    def due(self, interval: float = 0.5) -> bool:
        now = time.monotonic()
        if now - self.last_attempt < interval:
            return False
        self.last_attempt = now
        return True


def _last_status(pod: Obj, container: str) -> Obj | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status["name"] == container:
            return dict(status)
    return None


_LOG_TYPE = ResourceType("", "v1", "pods/log", "Pod", True)
PVC_PROTECTION = "kubernetes.io/pvc-protection"
_MISSING = object()
_WAITING_WORDS = {
    "ErrImagePull": "trying and failing to pull image",
    "ImagePullBackOff": "trying and failing to pull image",
    "ContainerCreating": "ContainerCreating",
}


def _node_object(node: Node, version: str) -> Obj:
    capacity = {
        "cpu": str(node.cpu_millis // 1000)
        if node.cpu_millis % 1000 == 0
        else f"{node.cpu_millis}m",
        "memory": f"{node.memory_bytes // 1024}Ki",
        "pods": "110",
    }
    allocatable = {
        "cpu": f"{node.allocatable_cpu_millis}m",
        "memory": f"{node.allocatable_memory_bytes // 1024}Ki",
        "pods": "110",
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": {
                "kubernetes.io/hostname": node.name,
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
            },
        },
        "spec": {"providerID": f"fake://{node.name}"},
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                }
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": "00000000-0000-0000-0000-000000000000",
                "containerRuntimeVersion": "containerd://1.7.20",
                "kernelVersion": "6.1.0-fake",
                "kubeProxyVersion": version,
                "kubeletVersion": version,
                "machineID": "0" * 32,
                "operatingSystem": "linux",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "systemUUID": "00000000-0000-0000-0000-000000000000",
            },
        },
    }


def _waiting_reason(pod: Obj, container: str) -> str | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status["name"] == container:
            return str((status["state"].get("waiting") or {}).get("reason") or "") or None
    return None


def _timed(old: list[Obj] | None, new: list[Obj]) -> list[Obj]:
    """Conditions with their times: kept while a condition stays the same, as controllers do."""
    previous = {c["type"]: c for c in old or []}
    out = []
    for condition in new:
        before = previous.get(condition["type"])
        same = before is not None and (before["status"], before.get("reason")) == (
            condition["status"],
            condition.get("reason"),
        )
        stamp = _now()
        out.append(
            {
                **condition,
                "lastUpdateTime": before["lastUpdateTime"] if same and before else stamp,
                "lastTransitionTime": before["lastTransitionTime"] if same and before else stamp,
            }
        )
    return out


def _pod_ready(pod: Obj) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _max_unavailable(spec: Obj, replicas: int) -> int:
    value = ((spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxUnavailable", "25%")
    if isinstance(value, str) and value.endswith("%"):
        return int(replicas * int(value[:-1]) / 100)
    return int(value)


def _configuration(obj: Obj) -> Obj:
    """The parts of an object a manager can own: all but identity, server metadata and status."""
    out = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
    meta = {
        k: v
        for k, v in (out.get("metadata") or {}).items()
        if k
        not in (
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "selfLink",
        )
    }
    if meta:
        out["metadata"] = meta
    else:
        out.pop("metadata", None)
    return out


def _spec_of(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _comparable(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    for key in ("resourceVersion", "managedFields"):
        out.get("metadata", {}).pop(key, None)
    return out


def _same(a: Obj, b: Obj) -> bool:
    return _comparable(a) == _comparable(b)


def _same_entries(a: list[ManagedEntry], b: list[ManagedEntry]) -> bool:
    def shape(entries: list[ManagedEntry]) -> list[tuple[str, str, list[FieldPath]]]:
        return sorted((e.manager, e.operation, sorted(e.paths)) for e in entries if e.paths)

    return shape(a) == shape(b)


def _entry(
    entries: list[ManagedEntry], manager: str, operation: str, api_version: str
) -> ManagedEntry:
    for entry in entries:
        if entry.manager == manager and entry.operation == operation:
            return entry
    entry = ManagedEntry(manager, operation, api_version, _now())
    entries.append(entry)
    return entry


def _apply_conflict(
    rt: ResourceType, name: str, conflicts: list[tuple[str, FieldPath]]
) -> ApiError:
    unique = sorted(set(conflicts))
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f'conflict with "{m}" using {rt.group_version}',
            "field": _format_path(p),
        }
        for m, p in unique
    ]
    if len(unique) == 1:
        manager, path = unique[0]
        message = f'Apply failed with 1 conflict: conflict with "{manager}" using {rt.group_version}: {_format_path(path)}'
    else:
        lines = "\n".join(
            f'- conflict with "{m}" using {rt.group_version}: {_format_path(p)}' for m, p in unique
        )
        message = f"Apply failed with {len(unique)} conflicts:\n{lines}"
    return ApiError(
        409,
        "Conflict",
        message,
        {"name": name, "group": rt.group, "kind": rt.plural, "causes": causes},
    )


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge_patch(target.get(key), value)
    return target


def _field_selector_matches(selector: str, obj: Obj) -> bool:
    for term in selector.split(","):
        negate = "!=" in term
        field_name, _, value = term.partition("!=" if negate else "=")
        field_name, value = field_name.strip(), value.lstrip("=").strip()
        if not (
            field_name.startswith(
                (
                    "metadata.name",
                    "metadata.namespace",
                    "involvedObject.",
                    "status.phase",
                    "type",
                    "reason",
                )
            )
            and field_name.count(".") <= 1
        ):
            raise ApiError(
                400,
                "BadRequest",
                f'"{field_name}" is not a known field selector: only "metadata.name", "metadata.namespace"',
            )
        found, actual = _get(obj, tuple(field_name.split(".")))
        actual = "" if not found or actual is None else str(actual)
        if (actual == value) == negate:
            return False
    return True


def _decode(body: bytes, headers: dict[str, str]) -> Obj:
    content_type = headers.get("content-type", "")
    try:
        data = (
            yaml.safe_load(body.decode("utf-8"))
            if "yaml" in content_type
            else json.loads(body or b"null")
        )
    except (ValueError, yaml.YAMLError) as e:
        raise ApiError(400, "BadRequest", f"error decoding request body: {e}") from e
    if not isinstance(data, dict):
        raise ApiError(400, "BadRequest", "the request body must be an object")
    return data


def write_kubeconfig(path: Path, contexts: dict[str, FakeKubeAPI], current: str) -> Path:
    """A kubeconfig with one context per server (each with its own cluster and user
    entries), ``current`` selected."""
    entries = [api.kubeconfig_entries(name) for name, api in contexts.items()]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster for cluster, _user, _context in entries],
        "users": [user for _cluster, user, _context in entries],
        "contexts": [context for _cluster, _user, context in entries],
        "current-context": current,
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    path.chmod(0o600)
    return path


class _Handler(BaseHTTPRequestHandler):
    api: FakeKubeAPI
    protocol_version = "HTTP/1.1"
    # One write per response, sent at once: without these, keep-alive responses written in
    # pieces wait on the peer's delayed ACK (about 40 ms a request).
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read :attr:`FakeKubeAPI.requests` instead."""

    def setup(self) -> None:
        super().setup()
        with self.api._lock:
            self.api._connections.add(self.connection)

    def finish(self) -> None:
        with self.api._lock:
            self.api._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def _serve(self) -> None:
        self.api.seen.append((self.command, self.path))
        vanish = self.api.vanish_when
        if not self.api.gone.is_set() and vanish is not None and vanish(self.command, self.path):
            self.api._vanish()
        if self.api.gone.is_set():
            self.close_connection = True  # closed without an answer: the server is gone
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        extra: dict[str, str] = {}
        self.api._local.warnings = []
        try:
            injected = self.api._injected(self.command, self.path)
            if injected is not None:
                raise injected
            code, payload = self.api.handle(self.command, self.path, headers, body)
        except ApiError as e:
            code, payload, extra = e.code, e.status(), e.headers
        warnings = self.api._local.warnings
        if isinstance(payload, dict):
            data = json.dumps(payload).encode()
            self.send_response(code)
            for name, value in extra.items():
                self.send_header(name, value)
            for warning in warnings:
                escaped = warning.replace("\\", "\\\\").replace('"', '\\"')
                self.send_header("Warning", f'299 - "{escaped}"')
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for line in payload:
                chunk = (line + "\n").encode()
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


def main() -> None:
    """Run the server by hand: ``python -m tests.support.fake_kube_api --kubeconfig PATH``."""
    import argparse

    parser = argparse.ArgumentParser(
        description="A small Kubernetes API server for trying the installer."
    )
    parser.add_argument(
        "--kubeconfig", type=Path, required=True, help="where to write its kubeconfig"
    )
    parser.add_argument("--openshift", action="store_true", help="serve the OpenShift API groups")
    parser.add_argument("--prometheus-operator", action="store_true", help="serve ServiceMonitors")
    args = parser.parse_args()
    with FakeKubeAPI(openshift=args.openshift, prometheus_operator=args.prometheus_operator) as api:
        api.write_kubeconfig(args.kubeconfig)
        print(f"serving {api.url}; KUBECONFIG={args.kubeconfig}; Ctrl-C stops it", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
