"""A namespace being deleted: the rerun after a rollback that deleted it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.errors import ExitCode
from tests.support.fake_kube_api import ContainerRun, FakeKubeAPI
from tests.support.kube_install import answers, install

NAMESPACE = "codequal"
BROKEN = "codequal-test/standin:1"


@pytest.fixture
def api() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as server:
        server.namespace_termination_seconds = 2.0
        yield server


@pytest.fixture
def kubeconfig(api: FakeKubeAPI, tmp_path: Path) -> Path:
    return api.write_kubeconfig(tmp_path / "kubeconfig")


def _failed_first_install(api: FakeKubeAPI, kubeconfig: Path, root: Path) -> None:
    api.crashing_images[BROKEN] = ContainerRun(["boom"], 1)
    first = install(answers(monitoring={"enabled": False}), kubeconfig, root)
    assert first.exit_code == ExitCode.INSTALL_FAILED, first.text()
    namespace = api.get_object("v1", "Namespace", NAMESPACE)
    assert namespace is not None and namespace["status"]["phase"] == "Terminating"
    del api.crashing_images[BROKEN]


def test_the_rerun_after_a_rollback_that_deleted_the_namespace_waits_and_proceeds(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    _failed_first_install(api, kubeconfig, tmp_path / "root")

    again = install(answers(monitoring={"enabled": False}), kubeconfig, tmp_path / "root")

    assert again.exit_code == 0, again.text()
    text = again.text()
    assert "namespace codequal is being deleted (Terminating): waiting up to" in text
    assert "namespace codequal is gone after" in text
    namespace = api.get_object("v1", "Namespace", NAMESPACE)
    assert namespace is not None and namespace["status"]["phase"] == "Active"


def test_a_namespace_that_stays_terminating_is_a_prerequisite_failure_in_bounded_time(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    api.namespace_termination_seconds = 3600.0
    _failed_first_install(api, kubeconfig, tmp_path / "root")
    before = len(api.writes())

    again = install(
        answers(monitoring={"enabled": False}),
        kubeconfig,
        tmp_path / "root",
        namespace_timeout=1.0,
    )

    assert again.exit_code == ExitCode.PREREQUISITES, again.text()
    assert "namespace codequal is still being deleted after 1 s" in again.final().message
    assert len(api.writes()) == before
