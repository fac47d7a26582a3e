"""A user with rights in one namespace only, against the stand-in's real RBAC.

The normal enterprise case: a namespace administrator (``admin`` bound with a RoleBinding in
an existing namespace), or an OpenShift project user. RBAC evaluates ``get`` on a Namespace
object in that namespace, so such a user may read it but not change it, and may list neither
nodes nor storage classes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.engine.kubernetes import Cluster
from installer.errors import ExitCode
from installer.uninstall import kubernetes_inventory, kubernetes_uninstall
from tests.support.fake_kube_api import FakeKubeAPI
from tests.support.kube_install import RELEASE_2, answers, install, release

NAMESPACE = "codequal"


@pytest.fixture
def api() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI(cluster_admin=False) as server:
        server.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        yield server


@pytest.fixture
def kubeconfig(api: FakeKubeAPI, tmp_path: Path) -> Path:
    return api.write_kubeconfig(tmp_path / "kubeconfig")


def _messages(run: object, step: str) -> str:
    return "\n".join(e.message for e in run.events if e.step == step)  # type: ignore[attr-defined]


def test_the_stand_in_scopes_rolebindings_to_their_namespace(api: FakeKubeAPI) -> None:
    api.bind("admin", namespace=NAMESPACE)
    assert api.allowed("create", "apps", "deployments", NAMESPACE)
    assert not api.allowed("create", "apps", "deployments", "other")
    assert api.allowed("get", "", "namespaces", NAMESPACE, NAMESPACE)
    assert not api.allowed("get", "", "namespaces", "")  # cluster-wide: no
    assert not api.allowed("patch", "", "namespaces", NAMESPACE, NAMESPACE)
    assert not api.allowed("list", "", "nodes", "")


def test_a_namespace_admin_installs_upgrades_and_uninstalls(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    api.bind("admin", namespace=NAMESPACE)
    subject = answers(monitoring={"enabled": False})

    first = install(subject, kubeconfig, tmp_path / "root")
    assert first.exit_code == 0, first.text()
    assert "is used as it is" in _messages(first, "prerequisites")

    upgrade = install(subject, kubeconfig, tmp_path / "root", release_manifest=release(RELEASE_2))
    assert upgrade.exit_code == 0, upgrade.text()
    record = api.get_object("v1", "ConfigMap", "codequal-release", NAMESPACE)
    assert record is not None and record["data"]["version"] == "2.0.0-test"

    with Cluster.connect(environ={"KUBECONFIG": str(kubeconfig)}) as cluster:
        _, found = kubernetes_inventory(subject, cluster)
        kubernetes_uninstall(subject, purge=False, cluster=cluster, found=found)
    assert api.list_objects("apps/v1", "Deployment", NAMESPACE) == []
    assert api.get_object("v1", "Namespace", NAMESPACE) is not None


def test_a_user_without_rights_is_refused_at_prerequisites_with_nothing_written(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    api.bind("view", namespace=NAMESPACE)

    run = install(answers(monitoring={"enabled": False}), kubeconfig, tmp_path / "root")

    assert run.exit_code == ExitCode.PREREQUISITES, run.text()
    final = run.final()
    assert final.data["step"] == "prerequisites"
    assert "cannot create deployments.apps in namespace codequal" in final.message
    assert "cannot patch secrets in namespace codequal" in final.message
    assert "403" not in final.message and "Forbidden" not in final.message
    assert api.writes() == []


def test_a_user_with_no_binding_at_all_is_refused_naming_the_namespace_read(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    run = install(answers(monitoring={"enabled": False}), kubeconfig, tmp_path / "root")

    assert run.exit_code == ExitCode.PREREQUISITES, run.text()
    final = run.final()
    assert "cannot get namespaces in namespace codequal" in final.message
    assert "cannot create deployments.apps in namespace codequal" in final.message
    assert api.writes() == []
