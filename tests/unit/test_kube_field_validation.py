"""Unknown fields: the stand-in drops them with a warning by default, as the API server does;
the installer asks for ``fieldValidation=Strict`` so that a template typo fails the install."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.credentials import Secrets
from installer.errors import ExitCode
from installer.runner import Runner
from installer.targets.kubernetes.plan import install_plan, prepare_install
from tests.support.fake_kube_api import FakeKubeAPI
from tests.support.kube_install import answers, options, release

NAMESPACE = "codequal"


@pytest.fixture
def api() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as server:
        yield server


def _post(api: FakeKubeAPI, path: str, body: dict[str, object]) -> tuple[int, str, str]:
    """(status, Warning header, body) of a POST as any client sends it."""
    request = urllib.request.Request(  # noqa: S310 - the stand-in, over http
        api.url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the stand-in
            return response.status, response.headers.get("Warning", ""), response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Warning", ""), e.read().decode()


def test_unknown_fields_are_dropped_with_a_warning_unless_strict(api: FakeKubeAPI) -> None:
    api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}})
    body = {"metadata": {"name": "c"}, "data": {"a": "1"}, "dataa": {"b": "2"}}
    path = "/api/v1/namespaces/demo/configmaps"

    status, warning, _ = _post(api, path, body)

    assert status == 201
    assert warning == '299 - "unknown field \\"dataa\\""'
    stored = api.get_object("v1", "ConfigMap", "c", "demo")
    assert stored is not None and "dataa" not in stored and stored["data"] == {"a": "1"}
    status, _, answer = _post(
        api, path + "?fieldValidation=Strict", {**body, "metadata": {"name": "d"}}
    )
    assert status == 400
    assert 'strict decoding error: unknown field \\"dataa\\"' in answer
    assert api.get_object("v1", "ConfigMap", "d", "demo") is None


def test_a_template_typo_fails_the_install_at_its_first_apply_naming_the_field(
    api: FakeKubeAPI, tmp_path: Path
) -> None:
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    session = prepare_install(
        answers(monitoring={"enabled": False}),
        Secrets(),
        release=release(),
        root=tmp_path / "root",
        options=options(kubeconfig),
    )
    deployment = next(
        o for o in session.objects if o.kind == "Deployment" and o.ref.name == "codequal"
    )
    container = deployment.obj["spec"]["template"]["spec"]["containers"][0]
    container["imagePulPolicy"] = container.pop("imagePullPolicy", "IfNotPresent")
    runner = Runner(install_plan(session))
    try:
        events = list(runner.run())
    finally:
        session.close()

    assert runner.outcome is not None
    assert runner.outcome.exit_code == ExitCode.INSTALL_FAILED
    failed = next(e for e in events if e.type == "step.failed")
    assert failed.step == "containers"
    assert "Deployment codequal" in failed.message
    assert "imagePulPolicy" in failed.message and "not declared in schema" in failed.message
    assert "typo" in failed.data["hint"]
    assert api.get_object("apps/v1", "Deployment", "codequal", NAMESPACE) is None
