"""The API stand-in's behaviours that a real API server has and a coarser fake would hide."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.fake_kube_api import (
    PVC_PROTECTION,
    ContainerRun,
    FakeKubeAPI,
    canonical_quantity,
)

NS = "demo"


@pytest.fixture
def api() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as server:
        server.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        yield server


def _request(
    api: FakeKubeAPI, method: str, path: str, body: Any = None, content_type: str = ""
) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310 - the stand-in, over http
        api.url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={
            "Authorization": f"Bearer {api.token}",
            "Content-Type": content_type or "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def _apply(api: FakeKubeAPI, path: str, body: Any, manager: str = "test") -> tuple[int, Any]:
    return _request(
        api, "PATCH", f"{path}?fieldManager={manager}", body, "application/apply-patch+yaml"
    )


def _claim(size: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": NS},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
    }


CLAIM = f"/api/v1/namespaces/{NS}/persistentvolumeclaims/data"


@pytest.mark.parametrize(
    ("given", "stored"),
    [("1024Mi", "1Gi"), ("0.5", "500m"), ("1.5Gi", "1536Mi"), ("1000m", "1"), ("2000", "2k")],
)
def test_quantities_are_stored_canonical(given: str, stored: str) -> None:
    assert canonical_quantity(given) == stored


def test_a_claim_is_stored_canonical_protected_and_may_not_shrink(api: FakeKubeAPI) -> None:
    status, created = _apply(api, CLAIM, _claim("10240Mi"))
    assert status == 201
    assert created["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert created["metadata"]["finalizers"] == [PVC_PROTECTION]

    status, refused = _apply(api, CLAIM, _claim("5Gi"))

    assert (status, refused["reason"]) == (422, "Invalid")
    assert "field can not be less than" in refused["message"]
    assert _apply(api, CLAIM, _claim("20Gi"))[0] == 200


def test_a_deleted_claim_waits_for_its_protection_finalizer(api: FakeKubeAPI) -> None:
    _apply(api, CLAIM, _claim("1Gi"))
    status, deleted = _request(api, "DELETE", CLAIM)
    assert status == 200 and deleted["metadata"]["deletionTimestamp"]
    deadline = time.monotonic() + 5
    while api.get_object("v1", "PersistentVolumeClaim", "data", NS) is not None:
        assert time.monotonic() < deadline, "no pod uses it: the finalizer goes, then the claim"
        time.sleep(0.05)


def test_a_deleted_namespace_is_terminating_and_refuses_new_content(api: FakeKubeAPI) -> None:
    api.namespace_termination_seconds = 0.5
    status, _ = _request(api, "DELETE", f"/api/v1/namespaces/{NS}")
    assert status == 200
    namespace = api.get_object("v1", "Namespace", NS)
    assert namespace is not None and namespace["status"]["phase"] == "Terminating"

    status, refused = _apply(api, CLAIM, _claim("1Gi"))

    assert (status, refused["reason"]) == (403, "Forbidden")
    assert "because it is being terminated" in refused["message"]
    deadline = time.monotonic() + 5
    while api.get_object("v1", "Namespace", NS) is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_apply_rejects_duplicate_list_keys(api: FakeKubeAPI) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": NS},
        "spec": {
            "containers": [
                {"name": "a", "image": "x:1", "env": [{"name": "A"}, {"name": "A"}]},
            ]
        },
    }
    status, refused = _apply(api, f"/api/v1/namespaces/{NS}/pods/p", config)
    assert status == 400
    assert 'duplicate entries for key [name="A"]' in refused["message"]


def test_a_rolebinding_grants_get_on_its_own_namespace_object_only() -> None:
    with FakeKubeAPI(cluster_admin=False) as api:
        for name in (NS, "other"):
            api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        api.bind("admin", namespace=NS)
        assert _request(api, "GET", f"/api/v1/namespaces/{NS}")[0] == 200
        status, refused = _request(api, "GET", "/api/v1/namespaces/other")
        assert status == 403
        assert 'cannot get resource "namespaces"' in refused["message"]
        assert _request(api, "GET", "/api/v1/namespaces")[0] == 403  # list: cluster-wide
        assert _request(api, "DELETE", f"/api/v1/namespaces/{NS}")[0] == 403


def test_a_role_granting_more_than_its_writer_holds_is_refused() -> None:
    with FakeKubeAPI(cluster_admin=False) as api:
        api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        api.bind("admin", namespace=NS)
        role = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "r", "namespace": NS},
            "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}],
        }
        path = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/roles/r"
        status, refused = _apply(api, path, role)
        assert status == 403
        assert "attempting to grant RBAC permissions not currently held" in refused["message"]
        role["rules"] = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
        assert _apply(api, path, role)[0] == 201


def test_injected_answers_carry_retry_after(api: FakeKubeAPI) -> None:
    api.inject(429, 1, retry_after=3)
    request = urllib.request.Request(  # noqa: S310 - the stand-in, over http
        api.url + "/version", headers={"Authorization": f"Bearer {api.token}"}
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310
    assert caught.value.code == 429 and caught.value.headers["Retry-After"] == "3"
    assert _request(api, "GET", "/version")[0] == 200


def test_an_on_failure_job_restarts_its_container_in_the_same_pod(api: FakeKubeAPI) -> None:
    api.job_runs["demo/migrate"] = ContainerRun(["trying", "failed"], 1)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate", "namespace": NS},
        "spec": {
            "backoffLimit": 2,
            "template": {
                "spec": {
                    "restartPolicy": "OnFailure",
                    "containers": [{"name": "m", "image": "migrate:1"}],
                }
            },
        },
    }
    assert _apply(api, f"/apis/batch/v1/namespaces/{NS}/jobs/migrate", job)[0] == 201
    restarts = 0
    deadline = time.monotonic() + 15
    while True:
        live = api.get_object("batch/v1", "Job", "migrate", NS)
        assert live is not None
        conditions = {c["type"] for c in (live.get("status") or {}).get("conditions") or []}
        pods = api.list_objects("v1", "Pod", NS)
        assert len(pods) <= 1, "one pod: its container restarts in it"
        for pod in pods:
            for container in pod["status"].get("containerStatuses") or []:
                restarts = max(restarts, container["restartCount"])
        if "Failed" in conditions:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert restarts >= 2
    assert live["status"]["failed"] == 3
