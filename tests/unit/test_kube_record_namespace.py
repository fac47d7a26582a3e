"""The release record says whether this installer created the namespace; uninstall trusts it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from installer.engine.kubernetes import Cluster
from installer.targets.kubernetes.record import read_record
from installer.uninstall import kubernetes_inventory, kubernetes_uninstall
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


def _install(kubeconfig: Path, root: Path) -> None:
    run = install(answers(monitoring={"enabled": False}), kubeconfig, root)
    assert run.exit_code == 0, run.text()


def _record_flag(api: FakeKubeAPI) -> str | None:
    record = api.get_object("v1", "ConfigMap", "codequal-release", NAMESPACE)
    assert record is not None
    return record["data"].get("namespace-created")


def _label_namespace_as_someone_else(kubeconfig: Path) -> None:
    """``kubectl label namespace codequal team=platform``: another field manager appears."""
    with Cluster.connect(environ={"KUBECONFIG": str(kubeconfig)}) as cluster:
        cluster._call(
            "PATCH",
            f"/api/v1/namespaces/{NAMESPACE}",
            query=[("fieldManager", "kubectl-label")],
            body={"metadata": {"labels": {"team": "platform"}}},
            content_type="application/merge-patch+json",
        )


def _deleted(obj: dict[str, Any] | None) -> bool:
    """Gone, or accepted for deletion (a namespace is Terminating first, as in a cluster)."""
    return obj is None or bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def _purge(kubeconfig: Path) -> dict[str, object]:
    subject = answers(monitoring={"enabled": False})
    with Cluster.connect(environ={"KUBECONFIG": str(kubeconfig)}) as cluster:
        inventory, found = kubernetes_inventory(subject, cluster)
        kubernetes_uninstall(subject, purge=True, cluster=cluster, found=found)
    return inventory.to_dict(True)


def test_a_namespace_the_install_created_is_recorded_and_stays_so_on_reapply(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    _install(kubeconfig, tmp_path / "root")
    assert _record_flag(api) == "true"
    with Cluster.connect(environ={"KUBECONFIG": str(kubeconfig)}) as cluster:
        record = read_record(cluster, NAMESPACE)
    assert record is not None and record.namespace_created is True

    # A later apply (another machine, the namespace labelled by someone since) keeps it.
    _label_namespace_as_someone_else(kubeconfig)
    install(
        answers(monitoring={"enabled": False}, resources={"profile": "recommended"}),
        kubeconfig,
        tmp_path / "other-machine",
    )
    assert _record_flag(api) == "true"


def test_a_namespace_that_existed_is_recorded_as_not_created(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    _install(kubeconfig, tmp_path / "root")
    assert _record_flag(api) == "false"


def test_purge_deletes_a_namespace_the_record_says_it_created_though_others_touched_it(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    _install(kubeconfig, tmp_path / "root")
    _label_namespace_as_someone_else(kubeconfig)  # the field-manager guess would now say no

    inventory = _purge(kubeconfig)

    row = next(i for i in inventory["items"] if i["kind"] == "Namespace")  # type: ignore[attr-defined, index]
    assert row["action"] == "removed" and row["detail"] == "created by this installer"
    assert _deleted(api.get_object("v1", "Namespace", NAMESPACE))


def test_purge_keeps_a_namespace_the_record_says_it_did_not_create(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    _install(kubeconfig, tmp_path / "root")
    # The record is the evidence: set it to "false" (as an install into an existing
    # namespace writes it) while the field managers alone would say "created by us".
    with Cluster.connect(environ={"KUBECONFIG": str(kubeconfig)}) as cluster:
        cluster._call(
            "PATCH",
            f"/api/v1/namespaces/{NAMESPACE}/configmaps/codequal-release",
            query=[("fieldManager", "codequal-installer")],
            body={"data": {"namespace-created": "false"}},
            content_type="application/merge-patch+json",
        )

    _purge(kubeconfig)

    assert not _deleted(api.get_object("v1", "Namespace", NAMESPACE))
    assert api.get_object("v1", "ConfigMap", "codequal-release", NAMESPACE) is None


def test_an_older_record_without_the_flag_falls_back_to_the_field_managers(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    _install(kubeconfig, tmp_path / "root")
    with Cluster.connect(environ={"KUBECONFIG": str(kubeconfig)}) as cluster:
        cluster._call(
            "PATCH",
            f"/api/v1/namespaces/{NAMESPACE}/configmaps/codequal-release",
            query=[("fieldManager", "codequal-installer")],
            body={"data": {"namespace-created": None}},
            content_type="application/merge-patch+json",
        )
        record = read_record(cluster, NAMESPACE)
    assert record is not None and record.namespace_created is None

    _purge(kubeconfig)

    # Only this installer managed it.
    assert _deleted(api.get_object("v1", "Namespace", NAMESPACE))
