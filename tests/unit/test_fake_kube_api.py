"""The fake API server keeps the API's semantics: checked with the official client's typed
APIs, so a fake that drifted from what a cluster answers fails here, not in the adapter."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from tests.support.fake_kube_api import ContainerRun, FakeKubeAPI

NS = "demo"


@pytest.fixture
def api() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as server:
        yield server
        assert server.fake_failures == []


@pytest.fixture
def kube(api: FakeKubeAPI, tmp_path: Path) -> Iterator[client.ApiClient]:
    configuration = client.Configuration()
    config.load_kube_config(
        config_file=str(api.write_kubeconfig(tmp_path / "kubeconfig")),
        client_configuration=configuration,
    )
    with client.ApiClient(configuration) as api_client:
        client.CoreV1Api(api_client).create_namespace({"metadata": {"name": NS}})
        yield api_client


def deployment(replicas: int = 2, image: str = "nginx:1.27", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS, "labels": {"app": "web", **labels}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    }


def apply(kube: client.ApiClient, body: dict[str, Any], manager: str = "me", **kw: Any) -> Any:
    return client.AppsV1Api(kube).patch_namespaced_deployment(
        body["metadata"]["name"],
        NS,
        body,
        field_manager=manager,
        _content_type="application/apply-patch+yaml",
        **kw,
    )


def status_of(error: client.ApiException) -> dict[str, Any]:
    body = json.loads(error.body)
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["code"] == error.status
    return body


def wait_for(predicate: Any, seconds: float = 5.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_discovery_and_version(kube: client.ApiClient, tmp_path: Path) -> None:
    assert client.VersionApi(kube).get_code().git_version == "v1.30.4"
    groups = {g.name for g in client.ApisApi(kube).get_api_versions().groups}
    assert {"apps", "batch", "networking.k8s.io", "authorization.k8s.io"} <= groups
    assert "route.openshift.io" not in groups
    resources = client.AppsV1Api(kube).get_api_resources().resources
    assert {"deployments", "deployments/status"} <= {r.name for r in resources}
    with FakeKubeAPI(openshift=True, prometheus_operator=True) as other:
        configuration = client.Configuration()
        config.load_kube_config(
            config_file=str(other.write_kubeconfig(tmp_path / "other")),
            client_configuration=configuration,
        )
        with client.ApiClient(configuration) as c:
            names = {g.name for g in client.ApisApi(c).get_api_versions().groups}
    assert {"route.openshift.io", "monitoring.coreos.com"} <= names


def test_server_side_apply_creates_then_changes_nothing(kube: client.ApiClient) -> None:
    created = apply(kube, deployment())
    assert created.metadata.generation == 1
    managers = [(m.manager, m.operation) for m in created.metadata.managed_fields]
    assert managers == [("me", "Apply")]
    before = client.AppsV1Api(kube).read_namespaced_deployment("web", NS)
    again = apply(kube, deployment())
    if again.metadata.resource_version != before.metadata.resource_version:
        # The fake's deployment controller wrote status in between (it ticks every 50 ms,
        # as a cluster's would); the apply itself must have changed nothing else.
        assert again.status != before.status
    assert again.metadata.generation == before.metadata.generation == 1
    assert kube.sanitize_for_serialization(again.spec) == kube.sanitize_for_serialization(
        before.spec
    )
    assert again.metadata.labels == before.metadata.labels
    # A label is metadata: a new resourceVersion, the same generation.
    labelled = apply(kube, deployment(tier="front"))
    assert labelled.metadata.resource_version != created.metadata.resource_version
    assert labelled.metadata.generation == 1
    scaled = apply(kube, deployment(replicas=3))
    assert scaled.metadata.generation == 2
    # A field the manager stops applying is removed.
    assert "tier" not in scaled.metadata.labels


def test_conflicts_between_managers_and_force(kube: client.ApiClient) -> None:
    apply(kube, deployment())
    client.AppsV1Api(kube).patch_namespaced_deployment(
        "web",
        NS,
        {"spec": {"replicas": 5}},
        field_manager="kubectl-edit",
        _content_type="application/merge-patch+json",
    )
    # The same value as the other manager's: shared, no conflict.
    apply(kube, deployment(replicas=5))
    with pytest.raises(client.ApiException) as caught:
        apply(kube, deployment(replicas=2))
    assert caught.value.status == 409
    body = status_of(caught.value)
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        'Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas'
    )
    assert body["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl-edit" using apps/v1',
            "field": ".spec.replicas",
        }
    ]
    forced = apply(kube, deployment(replicas=2), force=True)
    assert forced.spec.replicas == 2
    owners = {m.manager: json.dumps(m.fields_v1) for m in forced.metadata.managed_fields}
    assert "f:replicas" in owners["me"] and "f:replicas" not in owners.get("kubectl-edit", "")


def test_api_error_bodies(api: FakeKubeAPI, kube: client.ApiClient) -> None:
    core = client.CoreV1Api(kube)
    with pytest.raises(client.ApiException) as caught:
        core.read_namespaced_config_map("absent", NS)
    assert status_of(caught.value)["reason"] == "NotFound"
    assert status_of(caught.value)["message"] == 'configmaps "absent" not found'

    with pytest.raises(client.ApiException) as caught:
        core.create_namespaced_config_map("elsewhere", {"metadata": {"name": "c"}})
    assert status_of(caught.value)["message"] == 'namespaces "elsewhere" not found'

    created = core.create_namespaced_config_map(NS, {"metadata": {"name": "c"}, "data": {"a": "1"}})
    with pytest.raises(client.ApiException) as caught:
        core.create_namespaced_config_map(NS, {"metadata": {"name": "c"}})
    assert (caught.value.status, status_of(caught.value)["reason"]) == (409, "AlreadyExists")

    core.patch_namespaced_config_map("c", NS, {"data": {"a": "2"}})
    stale = {"metadata": {"name": "c", "resourceVersion": created.metadata.resource_version}}
    with pytest.raises(client.ApiException) as caught:
        core.replace_namespaced_config_map("c", NS, stale)
    assert status_of(caught.value)["reason"] == "Conflict"
    assert "the object has been modified" in status_of(caught.value)["message"]

    broken = deployment()
    broken["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(client.ApiException) as caught:
        apply(kube, broken)
    body = status_of(caught.value)
    assert (caught.value.status, body["reason"]) == (422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "spec.template.metadata.labels"
    assert "`selector` does not match template `labels`" in body["message"]

    api.deny("list", "secrets", namespace=NS)
    with pytest.raises(client.ApiException) as caught:
        core.list_namespaced_secret(NS)
    body = status_of(caught.value)
    assert (caught.value.status, body["reason"]) == (403, "Forbidden")
    assert body["message"] == (
        'secrets is forbidden: User "system:serviceaccount:ci:installer" cannot list resource '
        '"secrets" in API group "" in the namespace "demo"'
    )


def test_access_reviews_answer_from_the_same_rules(
    api: FakeKubeAPI, kube: client.ApiClient
) -> None:
    api.deny("create", "deployments", group="apps", namespace=NS)
    reviews = client.AuthorizationV1Api(kube)

    def allowed(verb: str, namespace: str) -> bool:
        review = {
            "spec": {
                "resourceAttributes": {
                    "verb": verb,
                    "group": "apps",
                    "resource": "deployments",
                    "namespace": namespace,
                }
            }
        }
        return bool(reviews.create_self_subject_access_review(review).status.allowed)

    assert allowed("create", NS) is False
    assert allowed("create", "other") is True and allowed("patch", NS) is True
    # An apply that would create the object needs create as well as patch.
    with pytest.raises(client.ApiException) as caught:
        apply(kube, deployment())
    assert caught.value.status == 403


def test_dry_run_stores_nothing(api: FakeKubeAPI, kube: client.ApiClient) -> None:
    before = api.resource_versions()
    result = apply(kube, deployment(), dry_run="All")
    assert result.metadata.name == "web"
    assert api.resource_versions() == before
    assert api.get_object("apps/v1", "Deployment", "web", NS) is None


def test_deployments_roll_out_and_report_status(api: FakeKubeAPI, kube: client.ApiClient) -> None:
    apply(kube, deployment(replicas=2))
    apps = client.AppsV1Api(kube)

    def rolled_out() -> Any:
        status = apps.read_namespaced_deployment("web", NS).status
        done = status is not None and status.available_replicas == 2
        return done and status.observed_generation == 1 and status

    status = wait_for(rolled_out)
    assert status.updated_replicas == 2
    conditions = {c.type: c.reason for c in status.conditions}
    assert conditions == {
        "Available": "MinimumReplicasAvailable",
        "Progressing": "NewReplicaSetAvailable",
    }
    # A new template whose image cannot be pulled: the old pods stay, the new ones back off.
    api.unpullable_images.add("nginx:broken")
    apply(kube, deployment(replicas=2, image="nginx:broken"))
    core = client.CoreV1Api(kube)

    def backing_off() -> Any:
        pods = core.list_namespaced_pod(NS, label_selector="app=web").items
        waiting = [
            s.state.waiting.reason
            for p in pods
            for s in p.status.container_statuses or []
            if s.state.waiting
        ]
        return "ImagePullBackOff" in waiting

    wait_for(backing_off)
    status = apps.read_namespaced_deployment("web", NS).status
    assert (status.observed_generation, status.updated_replicas, status.available_replicas) == (
        2,
        2,
        2,
    )
    events = core.list_namespaced_event(NS, field_selector="reason=Failed").items
    assert any('Failed to pull image "nginx:broken"' in e.message for e in events)


def test_job_logs_stream_while_it_runs(api: FakeKubeAPI, kube: client.ApiClient) -> None:
    api.job_runs["busybox:1"] = ContainerRun([f"line {i}" for i in range(5)], 0)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate", "namespace": NS},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "m", "image": "busybox:1"}],
                }
            }
        },
    }
    client.BatchV1Api(kube).create_namespaced_job(NS, job)
    core = client.CoreV1Api(kube)

    def started() -> Any:
        pods = core.list_namespaced_pod(NS, label_selector="job-name=migrate").items
        running = [p for p in pods if p.status.phase == "Running"]
        return running and running[0].metadata.name

    pod = wait_for(started)
    response = core.read_namespaced_pod_log(pod, NS, follow=True, _preload_content=False)
    lines = response.data.decode().splitlines()
    assert lines == [f"line {i}" for i in range(5)]
    finished = wait_for(
        lambda: client.BatchV1Api(kube).read_namespaced_job("migrate", NS).status.succeeded
    )
    assert finished == 1


def test_a_wrong_token_is_unauthorized(api: FakeKubeAPI) -> None:
    configuration = client.Configuration(host=api.url, api_key={"BearerToken": "Bearer nope"})
    with client.ApiClient(configuration) as kube, pytest.raises(client.ApiException) as caught:
        client.CoreV1Api(kube).list_namespace()
    assert caught.value.status == 401
