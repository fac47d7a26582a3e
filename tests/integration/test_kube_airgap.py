"""An air-gapped Kubernetes install: the offline bundle's images are pushed to the mirror
(Debian's real docker-registry on 127.0.0.1) by the images step, then the cluster (the
fake API server) is given manifests that pull them from there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from installer.answers import AnswerFile
from installer.bundle.create import create_bundle
from installer.credentials import Secrets
from installer.release import load_release
from tests.integration.bundle_support import APP, TOOL, cached_wheelhouse, ensure_bundle_images
from tests.support.fake_kube_api import FakeKubeAPI
from tests.support.kube_install import install
from tests.support.registry import LocalRegistry

pytestmark = pytest.mark.integration

RELEASE = f"""\
name: codequal
version: 7.2.0-airgap
services:
  codequal: {{image: "{APP}", role: app, ports: [3000]}}
  deepwiki: {{image: "{TOOL}", role: app, ports: [8002]}}
routes:
  - {{path: /, service: codequal, port: 3000, health_path: /health}}
migration: {{service: codequal, command: ["true"], schema_version: "1"}}
"""


def test_an_air_gapped_install_pushes_the_bundle_to_the_mirror(
    registry: LocalRegistry, docker_engine: Any, tmp_path: Path
) -> None:
    ensure_bundle_images(docker_engine)
    (tmp_path / "7.2.0-airgap.yaml").write_text(RELEASE)
    release = load_release(str(tmp_path / "7.2.0-airgap.yaml"))
    bundle = create_bundle(release, tmp_path / "b.bundle", wheelhouse=cached_wheelhouse()).path
    answers = AnswerFile.model_validate(
        {
            "version": 1,
            "target": "enterprise",
            "domain": "codequal.test.invalid",
            "database": {"kind": "postgres", "managed": True, "host": "pg.corp.local"},
            "registry": {"mirror": registry.address, "insecure": True},
            "airgap": {"enabled": True, "bundle": str(bundle)},
            "monitoring": {"enabled": False},
            "resources": {"profile": "minimal"},
            "checks": {"skip": ["dns"]},
        }
    )
    with FakeKubeAPI() as api:
        config = api.write_kubeconfig(tmp_path / "kubeconfig")
        run = install(
            answers,
            config,
            tmp_path / "root",
            release_manifest=release,
            secrets=Secrets(database_password="managed-db-airgap-value"),  # type: ignore[arg-type]
        )
        assert run.exit_code == 0, run.text()
        deployment = api.get_object("apps/v1", "Deployment", "codequal", "codequal")
    images = "\n".join(e.message for e in run.of("images"))
    assert f"pushed {APP} as {registry.address}/cqbundle-test/app@sha256:" in images
    assert f"{registry.address}/cqbundle-test/app:1: present in {registry.address}" in images
    assert {"cqbundle-test/app", "cqbundle-test/tool"} <= set(registry.catalog())
    assert deployment is not None
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"{registry.address}/{APP}"
    assert f"pushed {TOOL} as {registry.address}/cqbundle-test/tool@sha256:" in images
