"""The Kubernetes API as the install steps use it, through the official client.

:class:`Cluster` is a connection to one API server (a kubeconfig context, or the pod's own
service account when the installer runs inside a cluster). It speaks to the API the way
``kubectl apply --server-side`` does: discovery maps each object's ``apiVersion``/``kind``
to its resource path, writes are server-side apply patches under the field manager
``codequal-installer``, and every error the API answers is turned into an
:class:`KubernetesError` that names the object, the verb and the API's own reason, with a
hint. It also reads what the steps need to explain a rollout: pods, events, container logs.

Objects are plain JSON-like dicts (what the rendered manifests parse to), not the
client's generated models: the installer applies whatever the release renders, including
OpenShift Routes and Prometheus Operator objects that the generated client does not know.
The client is used for what it is good at: configuration loading (kubeconfig contexts,
exec plugins, in-cluster tokens, TLS) and the HTTP transport.

The ``kubernetes`` package costs about half a second to import, so it is imported inside
the functions that need it, never at module level.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from installer.errors import EngineUnavailable, InstallerError

FIELD_MANAGER = "codequal-installer"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
IN_CLUSTER = "in-cluster"
DEFAULT_TIMEOUT_SECONDS = 30.0
# Answers that mean "not now" (API Priority and Fairness throttling, an overloaded or
# restarting server): the request is sent again after Retry-After or a back-off.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_ATTEMPTS = 6
RETRY_BACKOFF_SECONDS = 0.5
RETRY_MAX_WAIT_SECONDS = 30.0

Obj = dict[str, Any]


class KubernetesError(InstallerError):
    """The API server refused a request, or could not be reached.

    ``status`` is the HTTP status (None when the server was not reached), ``reason`` the
    API's ``Status.reason`` (``Forbidden``, ``NotFound``, ``Conflict``, ``Invalid``, ...),
    ``causes`` its ``details.causes`` as ``field: message`` lines.
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        status: int | None = None,
        reason: str | None = None,
        causes: Sequence[str] = (),
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.reason = reason
        self.causes = list(causes)


class ClusterUnreachable(KubernetesError, EngineUnavailable):
    """No API server answered (no kubeconfig, wrong address, network, credentials).

    An :class:`~installer.errors.EngineUnavailable` (exit 3): when the API server stops
    answering mid-run, the runner rolls back only what needs no cluster and the same
    command, run again, resumes.

    ``kind`` says which: ``no_config`` (no usable kubeconfig or context), ``unauthorized``
    (the credentials were refused), ``timeout`` (no answer in time), ``unreachable`` (the
    connection failed or broke); ``detail`` is the short reason (``connection refused``).
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        status: int | None = None,
        reason: str | None = None,
        kind: str = "unreachable",
        detail: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint, status=status, reason=reason)
        self.kind = kind
        self.detail = detail or message


# -- kubeconfig contexts --------------------------------------------------------------


@dataclass(frozen=True)
class KubeContext:
    """A kubeconfig context, as the wizard lists them."""

    name: str
    cluster: str
    user: str
    namespace: str | None
    current: bool


def kubeconfig_files(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The kubeconfig files in effect: ``$KUBECONFIG`` (``:``-separated) or ~/.kube/config.

    Read at call time: the kubernetes client fixes its default when it is first imported,
    which is too early for a process whose environment is set afterwards (the tests).
    """
    env = os.environ if environ is None else environ
    listed = [Path(p).expanduser() for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    home = Path(env["HOME"]) if env.get("HOME") else Path("~").expanduser()
    return [p for p in listed or [home / ".kube" / "config"] if p.is_file()]


def running_in_cluster(
    environ: Mapping[str, str] | None = None, service_account_dir: Path = SERVICE_ACCOUNT_DIR
) -> bool:
    """Inside a pod: the API's service environment and a mounted service-account token."""
    env = os.environ if environ is None else environ
    return bool(env.get("KUBERNETES_SERVICE_HOST")) and (service_account_dir / "token").is_file()


def list_contexts(
    environ: Mapping[str, str] | None = None, service_account_dir: Path = SERVICE_ACCOUNT_DIR
) -> list[KubeContext]:
    """Every context of the kubeconfig files in effect (empty when there are none).

    Inside a pod with no kubeconfig, one pseudo-context ``in-cluster`` stands for the pod's
    service account.
    """
    files = kubeconfig_files(environ)
    if not files:
        if running_in_cluster(environ, service_account_dir):
            return [KubeContext(IN_CLUSTER, "this cluster", "service account", None, True)]
        return []
    contexts: dict[str, KubeContext] = {}
    current: str | None = None
    for path in files:
        document = _read_kubeconfig(path)
        current = current or document.get("current-context") or None
        for item in document.get("contexts") or []:
            if not isinstance(item, dict) or not item.get("name") or item["name"] in contexts:
                continue
            spec = item.get("context") or {}
            contexts[item["name"]] = KubeContext(
                name=str(item["name"]),
                cluster=str(spec.get("cluster", "")),
                user=str(spec.get("user", "")),
                namespace=spec.get("namespace"),
                current=False,
            )
    return [
        KubeContext(c.name, c.cluster, c.user, c.namespace, c.name == current)
        for c in contexts.values()
    ]


def _read_kubeconfig(path: Path) -> dict[str, Any]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    except (OSError, YAMLError, UnicodeDecodeError) as e:
        raise ClusterUnreachable(
            f"cannot read the kubeconfig {path}: {getattr(e, 'strerror', None) or e}",
            hint="fix the file, or point KUBECONFIG at a valid kubeconfig",
            kind="no_config",
        ) from e
    return data if isinstance(data, dict) else {}


# -- objects --------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class ObjectRef:
    """Which object: enough to find it again (the release record stores these)."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectRef:
        meta = obj.get("metadata") or {}
        return cls(
            str(obj.get("apiVersion", "")),
            str(obj.get("kind", "")),
            str(meta.get("name", "")),
            meta.get("namespace") or None,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ObjectRef:
        return cls(
            str(data["apiVersion"]),
            str(data["kind"]),
            str(data["name"]),
            data.get("namespace") or None,
        )

    def to_dict(self) -> dict[str, str]:
        out = {"apiVersion": self.api_version, "kind": self.kind, "name": self.name}
        if self.namespace:
            out["namespace"] = self.namespace
        return out

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def __str__(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{self.kind} {self.name}{where}"


@dataclass(frozen=True)
class ApiResource:
    """A resource as discovery lists it: where objects of one kind live."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


@dataclass
class ApplyResult:
    """What a server-side apply returned: the object as stored, and whether it is new."""

    obj: Obj
    created: bool


@dataclass
class ServerVersion:
    major: int
    minor: int
    git_version: str

    @property
    def text(self) -> str:
        return self.git_version or f"v{self.major}.{self.minor}"


# -- the connection -------------------------------------------------------------------


@dataclass
class Cluster:
    """One API server, reached through the official client's configuration and transport."""

    api: Any  # kubernetes.client.ApiClient (partly untyped)
    context: str
    server: str
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    # Status answers in RETRY_STATUSES: attempts in all, and the first back-off (doubled
    # each time, capped; a Retry-After header is honoured up to the cap).
    retry_attempts: int = RETRY_ATTEMPTS
    retry_backoff: float = RETRY_BACKOFF_SECONDS
    # How a retry waits (up to RETRY_MAX_WAIT_SECONDS): a run gives a wait that its Ctrl-C
    # cuts short, raising its interruption.
    sleep: Callable[[float], None] = time.sleep
    _resources: dict[str, dict[str, ApiResource]] = field(default_factory=dict, repr=False)
    _groups: set[str] | None = field(default=None, repr=False)

    # -- connecting ----------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        context: str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        service_account_dir: Path = SERVICE_ACCOUNT_DIR,
        retries: bool = True,
    ) -> Cluster:
        """The cluster of ``context`` (the kubeconfig's current one when None).

        Inside a pod with no kubeconfig (and no context asked for), the pod's own service
        account. Nothing is sent to the server here. ``retries=False`` makes each request
        one attempt (the prerequisite check's timeout is then the operator's whole wait);
        otherwise the client's transport retries a failed connection a few times.
        """
        from kubernetes import client
        from kubernetes import config as kube_config
        from kubernetes.config.config_exception import ConfigException

        config: Any = kube_config  # its loaders are untyped

        configuration = client.Configuration()
        files = kubeconfig_files(environ)
        try:
            in_pod = running_in_cluster(environ, service_account_dir)
            if not files and context in (None, IN_CLUSTER) and in_pod:
                from kubernetes.config import incluster_config

                loader_type: Any = incluster_config.InClusterConfigLoader  # untyped
                loader = loader_type(
                    token_filename=str(service_account_dir / "token"),
                    cert_filename=str(service_account_dir / "ca.crt"),
                    environ=dict(os.environ if environ is None else environ),
                )
                loader.load_and_set(configuration)
                name = IN_CLUSTER
            elif not files:
                raise ClusterUnreachable(
                    "no kubeconfig found (KUBECONFIG is not set and ~/.kube/config does not exist)",
                    hint="point KUBECONFIG at the kubeconfig of the target cluster, or run "
                    "the installer inside the cluster",
                    kind="no_config",
                )
            else:
                known = [c.name for c in list_contexts(environ)]
                if context is not None and context not in known:
                    raise ClusterUnreachable(
                        f"the kubeconfig has no context named {context!r}",
                        hint=f"contexts found: {', '.join(known) or 'none'}; set "
                        "kubernetes.context to one of them",
                        kind="no_config",
                    )
                config.load_kube_config(
                    config_file=os.pathsep.join(str(p) for p in files),
                    context=context,
                    client_configuration=configuration,
                )
                name = context or next((c.name for c in list_contexts(environ) if c.current), "")
        except ConfigException as e:
            raise ClusterUnreachable(
                f"the kubeconfig cannot be used: {e}",
                hint="check the context's cluster, user and credentials in the kubeconfig",
                kind="no_config",
            ) from e
        if not retries:
            configuration.retries = False
        return cls(client.ApiClient(configuration), name, str(configuration.host), timeout)

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str | None = None,
        stream: bool = False,
        timeout: float | None = None,
        what: str = "",
    ) -> Any:
        """One request; the decoded JSON answer (or the raw response when streaming)."""
        headers = {"Accept": "application/json, */*" if not stream else "*/*"}
        if content_type:
            headers["Content-Type"] = content_type
        payload: Any = body
        if content_type == APPLY_CONTENT_TYPE:
            payload = json.dumps(body)  # JSON is YAML; sent as is
        response = self._send(
            method,
            path,
            query=query,
            headers=headers,
            payload=payload,
            timeout=timeout or self.timeout,
            what=what or path,
        )
        if stream:
            return response.response
        try:
            raw = response.read()
        except Exception as e:  # urllib3 raises many kinds for a connection that broke
            raise self.unreachable(e, what or f"{method} {path}") from e
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]],
        headers: dict[str, str],
        payload: Any,
        timeout: float,
        what: str,
    ) -> Any:
        """Send one request, again while the answer is 429 or 5xx (up to
        ``retry_attempts``); the client's response once it is a success."""
        from kubernetes.client.exceptions import ApiException

        attempts, waited = 0, 0.0
        while True:
            attempts += 1
            try:
                request = self.api.param_serialize(
                    method,
                    path,
                    query_params=list(query),
                    header_params=headers,
                    body=payload,
                    auth_settings=["BearerToken"],
                )
                response = self.api.call_api(*request, _request_timeout=timeout)
                status = int(response.status)
                if status in RETRY_STATUSES and attempts < self.retry_attempts:
                    response.read()
                    delay = self._retry_delay(response, attempts)
                    self.sleep(delay)
                    waited += delay
                    continue
                if not 200 <= status <= 299:
                    response.read()
                    self.api.response_deserialize(response, {})
                return response
            except ApiException as e:
                error = self._api_error(e, method, what)
                if attempts > 1:
                    error.message += (
                        f" (answered {error.status} {attempts} times in a row; retried with "
                        f"back-off for {waited:.1f} s)"
                    )
                raise error from e
            except InstallerError:
                raise
            except Exception as e:  # urllib3 and the client raise many kinds for "unreachable"
                raise self.unreachable(e, what if what != path else f"{method} {path}") from e

    def _retry_delay(self, response: Any, attempts: int) -> float:
        """Retry-After when the server sent one, else an exponential back-off; capped."""
        backoff = self.retry_backoff * 2 ** (attempts - 1)
        header = (response.getheaders() or {}).get("Retry-After")
        try:
            wanted = float(header) if header is not None else backoff
        except ValueError:
            wanted = backoff
        return max(0.0, min(wanted, RETRY_MAX_WAIT_SECONDS))

    def unreachable(self, error: BaseException, what: str) -> ClusterUnreachable:
        """``error``, a failure to reach the API server while doing ``what``, in the
        operator's words: which server, doing what, and to run the same command again."""
        detail = _network_reason(error)
        kind = "timeout" if detail == "timed out" else "unreachable"
        return ClusterUnreachable(
            f"the Kubernetes API at {self.server} did not answer: {detail} "
            f"(context {self.context or 'current'}; {what})",
            hint="make the cluster reachable (the server address in the kubeconfig, the "
            "network path to it: VPN, proxy, firewall; the cluster itself running), then run "
            "the same command again",
            kind=kind,
            detail=detail,
        )

    def _api_error(self, error: Any, method: str, what: str) -> KubernetesError:
        status = int(getattr(error, "status", 0) or 0) or None
        if status is None:  # the client's own word for a TLS failure: no HTTP answer at all
            return self.unreachable(error, what)
        body: dict[str, Any] = {}
        try:
            parsed = json.loads(error.body or "{}")
            if isinstance(parsed, dict):
                body = parsed
        except (TypeError, ValueError):
            body = {}
        reason = str(body.get("reason") or getattr(error, "reason", "") or "")
        message = str(body.get("message") or f"HTTP {status} {getattr(error, 'reason', '')}")
        details = body.get("details") or {}
        causes = [
            f"{c.get('field', '')}: {c.get('message', '')}".strip(": ")
            for c in details.get("causes") or []
            if isinstance(c, dict)
        ]
        hint = None
        if status == 401:
            return ClusterUnreachable(
                f"the Kubernetes API at {self.server} refused the credentials of context "
                f"{self.context or '(current)'}",
                hint="refresh the kubeconfig's credentials (e.g. your cloud's get-credentials "
                "command) and run again",
                status=status,
                reason=reason or "Unauthorized",
                kind="unauthorized",
                detail=f"HTTP {status} {reason or 'Unauthorized'}",
            )
        if status == 403 and "because it is being terminated" in message:
            hint = (
                "the namespace is being deleted (Terminating); wait until it is gone "
                "(`kubectl get namespace`), then run again"
            )
        elif status == 403:
            hint = (
                "ask a cluster administrator to grant this user the verb on that resource "
                "(a Role and RoleBinding in the namespace), then run again"
            )
        elif status == 409 and causes:
            hint = (
                "someone changed these fields outside the installer (kubectl edit, another "
                "tool); revert that change, or take the fields over with "
                f"`kubectl apply --server-side --force-conflicts --field-manager={FIELD_MANAGER}`"
            )
        elif status == 422:
            hint = "the object was rejected by the API's validation; see the causes above"
        elif status == 400 and "not declared in schema" in message:
            hint = (
                "the API does not know the field named above: a typo in the template, or a "
                "field newer than this cluster's Kubernetes version"
            )
        return KubernetesError(
            f"{what}: {message}" if what and what not in message else message,
            hint=hint,
            status=status,
            reason=reason,
            causes=causes,
        )

    # -- discovery -----------------------------------------------------------------------

    def version(self) -> ServerVersion:
        data = self._call("GET", "/version", what="server version")
        git_version = str(data.get("gitVersion", ""))
        major = int("".join(ch for ch in str(data.get("major", "0")) if ch.isdigit()) or 0)
        minor = int("".join(ch for ch in str(data.get("minor", "0")) if ch.isdigit()) or 0)
        return ServerVersion(major, minor, git_version)

    def api_groups(self) -> set[str]:
        """Names of the API groups the server offers (``route.openshift.io``, ...)."""
        if self._groups is None:
            data = self._call("GET", "/apis", what="API groups")
            self._groups = {str(g["name"]) for g in data.get("groups") or []}
        return set(self._groups)

    @property
    def is_openshift(self) -> bool:
        return "route.openshift.io" in self.api_groups()

    def _resource_list(self, api_version: str) -> dict[str, ApiResource]:
        if api_version not in self._resources:
            group, _, version = api_version.rpartition("/")
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            found: dict[str, ApiResource] = {}
            try:
                data = self._call("GET", path, what=f"API {api_version}")
            except KubernetesError as e:
                if e.status != 404:
                    raise
                data = {}
            for item in data.get("resources") or []:
                if "/" in item.get("name", ""):
                    continue  # a subresource
                found[str(item["kind"])] = ApiResource(
                    group, version, str(item["name"]), str(item["kind"]), bool(item["namespaced"])
                )
            self._resources[api_version] = found
        return self._resources[api_version]

    def serves(self, api_version: str, kind: str) -> bool:
        return kind in self._resource_list(api_version)

    def resource(self, api_version: str, kind: str) -> ApiResource:
        found = self._resource_list(api_version).get(kind)
        if found is None:
            hint = None
            if api_version.startswith("route.openshift.io"):
                hint = "this is not an OpenShift cluster: set kubernetes.openshift to false"
            elif api_version.startswith("monitoring.coreos.com"):
                hint = "install the Prometheus Operator, or leave monitoring to plain manifests"
            raise KubernetesError(
                f"the cluster does not serve {kind} ({api_version})", hint=hint, status=404
            )
        return found

    # -- objects -------------------------------------------------------------------------

    def get(self, ref: ObjectRef) -> Obj | None:
        resource = self.resource(ref.api_version, ref.kind)
        try:
            result: Obj = self._call(
                "GET", resource.path(ref.namespace, ref.name), what=f"reading {ref}"
            )
        except KubernetesError as e:
            if e.status == 404:
                return None
            raise
        return result

    def list_objects(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        resource = self.resource(api_version, kind)
        query = []
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        where = f" in namespace {namespace}" if namespace else ""
        data = self._call(
            "GET",
            resource.path(namespace),
            query=query,
            what=f"listing {resource.qualified}{where}",
        )
        items: list[Obj] = data.get("items") or []
        for item in items:  # lists omit each item's kind and apiVersion
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    def apply(
        self, obj: Mapping[str, Any], *, dry_run: bool = False, force: bool = False
    ) -> ApplyResult:
        """Server-side apply of ``obj`` as field manager ``codequal-installer``."""
        ref = ObjectRef.of(obj)
        resource = self.resource(ref.api_version, ref.kind)
        obj = secret_as_data(obj)
        # Strict: a field the API does not know (a typo in a template) is an error, not
        # silently dropped as the server's default (Warn) does.
        query = [("fieldManager", FIELD_MANAGER), ("fieldValidation", "Strict")]
        if force:
            query.append(("force", "true"))
        if dry_run:
            query.append(("dryRun", "All"))
        path = resource.path(ref.namespace, ref.name)
        what = f"applying {ref}"
        response = self._send(
            "PATCH",
            path,
            query=query,
            headers={"Accept": "application/json", "Content-Type": APPLY_CONTENT_TYPE},
            payload=json.dumps(obj),
            timeout=self.timeout,
            what=what,
        )
        try:
            raw = response.read()
        except Exception as e:  # urllib3 raises many kinds for a connection that broke
            raise self.unreachable(e, what) from e
        return ApplyResult(json.loads(raw), response.status == 201)

    def delete(self, ref: ObjectRef, *, dry_run: bool = False) -> bool:
        """Delete ``ref`` with its dependents (background); False when it was already gone."""
        resource = self.resource(ref.api_version, ref.kind)
        query = [("propagationPolicy", "Background")]
        if dry_run:
            query.append(("dryRun", "All"))
        try:
            self._call(
                "DELETE",
                resource.path(ref.namespace, ref.name),
                query=query,
                what=f"deleting {ref}",
            )
        except KubernetesError as e:
            if e.status == 404:
                return False
            raise
        return True

    # -- permissions ---------------------------------------------------------------------

    def can_i(
        self, verb: str, group: str, resource: str, namespace: str | None, subresource: str = ""
    ) -> bool:
        """A SelfSubjectAccessReview: may this user do ``verb`` on ``resource``?"""
        attributes: dict[str, str] = {"verb": verb, "group": group, "resource": resource}
        if namespace:
            attributes["namespace"] = namespace
        if subresource:
            attributes["subresource"] = subresource
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
        data = self._call(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            body=review,
            content_type="application/json",
            what="checking permissions (SelfSubjectAccessReview)",
        )
        return bool((data.get("status") or {}).get("allowed"))

    # -- logs ----------------------------------------------------------------------------

    def pod_log(
        self,
        namespace: str,
        pod: str,
        *,
        container: str | None = None,
        tail: int | None = None,
        previous: bool = False,
    ) -> list[str]:
        query = []
        if container:
            query.append(("container", container))
        if tail is not None:
            query.append(("tailLines", str(tail)))
        if previous:
            query.append(("previous", "true"))
        path = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
        text = self._call("GET", path, query=query, what=f"logs of pod {pod}")
        if isinstance(text, (dict, list)):
            text = json.dumps(text)
        return str(text).splitlines()

    def follow_pod_log(
        self, namespace: str, pod: str, *, container: str | None = None, timeout: float = 3600.0
    ) -> Iterator[str]:
        """The container's log, line by line as it is written, until the container stops."""
        query = [("follow", "true")]
        if container:
            query.append(("container", container))
        path = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
        response = self._call(
            "GET", path, query=query, stream=True, timeout=timeout, what=f"logs of pod {pod}"
        )
        buffer = b""
        try:
            for chunk in response.stream(4096, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    yield line.decode("utf-8", "replace")
            if buffer:
                yield buffer.decode("utf-8", "replace")
        except Exception as e:  # urllib3 raises many kinds for a connection that broke
            raise self.unreachable(e, f"streaming the log of pod {pod}") from e
        finally:
            response.release_conn()


_NETWORK_MARKERS = (
    ("connection refused", "connection refused"),
    ("connection reset", "connection reset"),
    ("connection aborted", "connection broken"),
    ("remote end closed connection", "connection broken"),
    ("broken pipe", "connection broken"),
    ("timed out", "timed out"),
    ("name or service not known", "name or service not known"),
    ("temporary failure in name resolution", "name or service not known"),
    ("no route to host", "no route to host"),
    ("network is unreachable", "network is unreachable"),
    ("certificate verify failed", "certificate verify failed"),
)


def secret_as_data(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """A Secret with its ``stringData`` moved into ``data`` (base64); other objects as they are.

    The API server turns ``stringData`` into ``data`` on every write, so an applier owns only
    ``stringData`` keys, and a key it stops sending stays behind in ``data`` for ever
    (kubernetes/kubernetes#108008). Applied as ``data``, a removed key is removed.
    """
    if obj.get("kind") != "Secret" or not obj.get("stringData"):
        return obj
    import base64

    converted = {k: v for k, v in obj.items() if k != "stringData"}
    data = dict(obj.get("data") or {})
    for key, value in obj["stringData"].items():
        data[key] = base64.b64encode(str(value).encode("utf-8")).decode("ascii")
    converted["data"] = data
    return converted


def _network_reason(error: BaseException) -> str:
    """The telling part of a urllib3 error chain (``connection refused``, ``timed out``)."""
    import socket

    texts: list[str] = []
    current: BaseException | None = error
    while current is not None and len(texts) < 8:
        if isinstance(current, (TimeoutError, socket.timeout)):
            return "timed out"
        texts.append(f"{type(current).__name__}: {current}".lower())
        reason = getattr(current, "reason", None)
        current = reason if isinstance(reason, BaseException) else current.__cause__
    joined = " | ".join(texts)
    for marker, said in _NETWORK_MARKERS:
        if marker in joined:
            return said
    return f"{type(error).__name__}: {error}"[:200]


def parse_quantity(value: object) -> float:
    """A Kubernetes quantity (``8``, ``7500m``, ``32Gi``) as a number, read by the
    client's own parser; a missing value is 0."""
    from kubernetes.utils import quantity

    parse: Any = quantity.parse_quantity  # untyped
    if value is None or str(value).strip() == "":
        return 0.0
    return float(parse(str(value).strip()))


# -- reading workload state -------------------------------------------------------------


def selector_string(selector: Mapping[str, Any] | None) -> str:
    """A LabelSelector object as the ``labelSelector`` query string."""
    if not selector:
        return ""
    terms = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, op = expression["key"], expression["operator"]
        values = ",".join(expression.get("values") or [])
        terms.append(
            {
                "In": f"{key} in ({values})",
                "NotIn": f"{key} notin ({values})",
                "Exists": key,
                "DoesNotExist": f"!{key}",
            }[op]
        )
    return ",".join(terms)


@dataclass(frozen=True)
class RolloutState:
    """Where a Deployment's rollout stands, in ``kubectl rollout status`` terms."""

    done: bool
    failed: bool
    message: str


def deployment_rollout(deployment: Mapping[str, Any]) -> RolloutState:
    """The same decision ``kubectl rollout status`` makes, from the object alone."""
    name = (deployment.get("metadata") or {}).get("name", "?")
    generation = int((deployment.get("metadata") or {}).get("generation") or 0)
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    if int(status.get("observedGeneration") or 0) < generation:
        return RolloutState(False, False, f"{name}: waiting for the controller to see the new spec")
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "Progressing"
            and condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return RolloutState(False, True, f"{name}: rollout exceeded its progress deadline")
    wanted = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < wanted:
        return RolloutState(False, False, f"{name}: {updated} of {wanted} new replicas updated")
    if total > updated:
        return RolloutState(
            False, False, f"{name}: {total - updated} old replicas are pending termination"
        )
    if available < updated:
        return RolloutState(
            False, False, f"{name}: {available} of {updated} updated replicas available"
        )
    return RolloutState(True, False, f"{name}: {available} of {wanted} replicas available")
