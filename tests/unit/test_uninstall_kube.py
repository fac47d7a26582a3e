"""uninstall on Kubernetes, against the API stand-in: reverse order, claims, the namespace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.engine.kubernetes import Cluster, ObjectRef
from installer.targets.kubernetes.record import read_record
from installer.uninstall import (
    kubernetes_inventory,
    kubernetes_uninstall,
    namespace_created_by_us,
)
from tests.support.fake_kube_api import FakeKubeAPI
from tests.support.kube_install import answers, install

NAMESPACE = "codequal"


@pytest.fixture
def api() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as server:
        yield server


@pytest.fixture
def kubeconfig(api: FakeKubeAPI, tmp_path: Path) -> Path:
    return api.write_kubeconfig(tmp_path / "kubeconfig")


def _installed(api: FakeKubeAPI, kubeconfig: Path, root: Path) -> list[ObjectRef]:
    run = install(answers(monitoring={"enabled": False}), kubeconfig, root)
    assert run.exit_code == 0, run.text()
    with Cluster.connect(environ={"KUBECONFIG": str(kubeconfig)}) as cluster:
        record = read_record(cluster, NAMESPACE)
    assert record is not None
    return list(record.objects)


def _uninstall(kubeconfig: Path, *, purge: bool) -> tuple[dict[str, object], list[str]]:
    subject = answers(monitoring={"enabled": False})
    with Cluster.connect(environ={"KUBECONFIG": str(kubeconfig)}) as cluster:
        inventory, found = kubernetes_inventory(subject, cluster)
        done = kubernetes_uninstall(subject, purge=purge, cluster=cluster, found=found)
    return inventory.to_dict(purge), done


def _deletes(api: FakeKubeAPI, since: int) -> list[tuple[str, str]]:
    return [(r.resource, r.name) for r in api.writes()[since:] if r.verb == "delete"]


def test_objects_go_in_reverse_apply_order_and_claims_and_namespace_stay(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    recorded = _installed(api, kubeconfig, tmp_path / "root")
    claims = [o for o in api.list_objects("v1", "PersistentVolumeClaim", NAMESPACE)]
    assert claims, "the in-cluster database has a claim"
    before = len(api.writes())

    inventory, done = _uninstall(kubeconfig, purge=False)

    kinds = {item["kind"] for item in inventory["items"]}  # type: ignore[index]
    assert {"Deployment", "Service", "PersistentVolumeClaim", "Namespace"} <= kinds
    claim_rows = [i for i in inventory["items"] if i["kind"] == "PersistentVolumeClaim"]  # type: ignore[index]
    assert all(i["action"] == "kept" and i["detail"] != "?" for i in claim_rows)
    deleted = _deletes(api, before)
    expected = [
        r for r in reversed(recorded) if r.kind not in ("Namespace", "PersistentVolumeClaim")
    ]
    assert deleted[: len(expected)] == [
        (api._type_for(r.api_version, r.kind).plural, r.name) for r in expected
    ]
    assert ("configmaps", "codequal-release") in deleted
    assert not any(resource == "persistentvolumeclaims" for resource, _ in deleted)
    assert not any(resource == "namespaces" for resource, _ in deleted)
    assert api.list_objects("v1", "PersistentVolumeClaim", NAMESPACE), "claims are kept"
    assert api.get_object("v1", "Namespace", NAMESPACE) is not None
    assert api.list_objects("apps/v1", "Deployment", NAMESPACE) == []
    assert any("volume claims kept" in line for line in done)

    # A new install in the same namespace binds the same claims (the data is still there).
    uids = {c["metadata"]["uid"] for c in claims}
    _installed(api, kubeconfig, tmp_path / "root")
    assert {
        c["metadata"]["uid"] for c in api.list_objects("v1", "PersistentVolumeClaim", NAMESPACE)
    } == uids


def test_purge_deletes_claims_and_the_namespace_this_tool_created(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    _installed(api, kubeconfig, tmp_path / "root")
    namespace = api.get_object("v1", "Namespace", NAMESPACE)
    assert namespace_created_by_us(namespace)
    before = len(api.writes())

    inventory, _done = _uninstall(kubeconfig, purge=True)

    row = next(i for i in inventory["items"] if i["kind"] == "Namespace")  # type: ignore[index]
    assert row["action"] == "removed"
    deleted = _deletes(api, before)
    assert any(resource == "persistentvolumeclaims" for resource, _ in deleted)
    assert deleted[-1] == ("namespaces", NAMESPACE)
    assert api.deleted("v1", "Namespace", NAMESPACE)  # Terminating, then gone


def test_purge_keeps_a_namespace_the_tool_did_not_create(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    # Made by someone else first (the stand-in records ``kubectl`` as the manager of the
    # fields it set, as the API server does for ``kubectl create``).
    api.add(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": NAMESPACE, "labels": {"team": "platform"}},
        }
    )
    _installed(api, kubeconfig, tmp_path / "root")
    assert not namespace_created_by_us(api.get_object("v1", "Namespace", NAMESPACE))
    before = len(api.writes())

    inventory, _done = _uninstall(kubeconfig, purge=True)

    row = next(i for i in inventory["items"] if i["kind"] == "Namespace")  # type: ignore[index]
    assert row["action"] == "kept" and "not created by this installer" in row["detail"]
    deleted = _deletes(api, before)
    assert not any(resource == "namespaces" for resource, _ in deleted)
    assert api.get_object("v1", "Namespace", NAMESPACE) is not None
    assert api.list_live("v1", "PersistentVolumeClaim", NAMESPACE) == []  # pvc-protection
    assert api.get_object("v1", "ConfigMap", "codequal-release", NAMESPACE) is None
