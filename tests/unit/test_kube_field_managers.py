"""Server-side apply with another field manager, as a real API server merges it: lists by
their keys (``x-kubernetes-list-map-keys``), so what another manager adds is kept."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from installer.errors import ExitCode
from tests.support.fake_kube_api import FakeKubeAPI
from tests.support.kube_install import answers, install

NAMESPACE = "codequal"
NEW_IMAGE = "codequal-test/standin:1-patched"
DEPLOYMENT = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/codequal"


@pytest.fixture
def api() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as server:
        yield server


@pytest.fixture
def kubeconfig(api: FakeKubeAPI, tmp_path: Path) -> Path:
    return api.write_kubeconfig(tmp_path / "kubeconfig")


def _apply_as(api: FakeKubeAPI, manager: str, body: dict[str, Any], *, force: bool) -> int:
    """A server-side apply by another tool (``kubectl apply --server-side``)."""
    query = f"?fieldManager={manager}" + ("&force=true" if force else "")
    request = urllib.request.Request(  # noqa: S310 - the stand-in, over http
        api.url + DEPLOYMENT + query,
        data=json.dumps(body).encode(),
        method="PATCH",
        headers={
            "Authorization": f"Bearer {api.token}",
            "Content-Type": "application/apply-patch+yaml",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return int(response.status)


def _ops_change(container: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "codequal",
            "namespace": NAMESPACE,
            "annotations": {"ops.example.com/owner": "platform-team"},
        },
        "spec": {"template": {"spec": {"containers": [container]}}},
    }


def _container(api: FakeKubeAPI) -> dict[str, Any]:
    live = api.get_object("apps/v1", "Deployment", "codequal", NAMESPACE)
    assert live is not None
    return dict(live["spec"]["template"]["spec"]["containers"][0])


def test_what_another_manager_adds_survives_the_installers_reapply(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    subject = answers(monitoring={"enabled": False})
    assert install(subject, kubeconfig, tmp_path / "root").exit_code == 0
    env_before = [e["name"] for e in _container(api).get("env") or []]
    ops = {"name": "codequal", "env": [{"name": "HTTP_PROXY", "value": "http://proxy:3128"}]}
    assert _apply_as(api, "ops-team", _ops_change(ops), force=False) == 200
    live = api.get_object("apps/v1", "Deployment", "codequal", NAMESPACE)
    assert live is not None
    managers = {e["manager"] for e in live["metadata"]["managedFields"]}
    assert {"codequal-installer", "ops-team"} <= managers

    changed = answers(monitoring={"enabled": False}, release={"images": {"codequal": NEW_IMAGE}})
    run = install(changed, kubeconfig, tmp_path / "root")

    assert run.exit_code == 0, run.text()
    assert "conflict" not in run.text().lower()
    assert _container(api)["image"] == NEW_IMAGE
    live = api.get_object("apps/v1", "Deployment", "codequal", NAMESPACE)
    assert live is not None
    assert live["metadata"]["annotations"]["ops.example.com/owner"] == "platform-team"
    env = {e["name"]: e.get("value") for e in _container(api)["env"]}
    assert env["HTTP_PROXY"] == "http://proxy:3128"
    assert set(env_before) <= set(env)  # the installer's own variables are all there too


def test_a_real_conflict_on_a_field_the_installer_owns_is_reported_as_one(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    subject = answers(monitoring={"enabled": False})
    assert install(subject, kubeconfig, tmp_path / "root").exit_code == 0
    image = _container(api)["image"]
    ops = {"name": "codequal", "image": "registry.example.com/hotfix:1"}
    assert _apply_as(api, "ops-team", _ops_change(ops), force=True) == 200

    changed = answers(monitoring={"enabled": False}, release={"images": {"codequal": NEW_IMAGE}})
    run = install(changed, kubeconfig, tmp_path / "root")

    assert run.exit_code == ExitCode.INSTALL_FAILED, run.text()
    failed = next(e for e in run.events if e.type == "step.failed")
    assert failed.step == "containers"
    assert 'conflict with "ops-team"' in failed.message
    assert '.spec.template.spec.containers[name="codequal"].image' in failed.message
    assert "--force-conflicts" in failed.data["hint"]
    assert image != "registry.example.com/hotfix:1"
