"""429 (API Priority and Fairness) and 5xx answers: retried with back-off, up to a limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.engine.kubernetes import RETRY_ATTEMPTS, Cluster, KubernetesError
from installer.errors import ExitCode
from installer.runner import CancelToken
from tests.support.fake_kube_api import FakeKubeAPI
from tests.support.kube_install import answers, install

NAMESPACE_OBJ = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "retried"}}


@pytest.fixture
def api() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as server:
        yield server


@pytest.fixture
def kubeconfig(api: FakeKubeAPI, tmp_path: Path) -> Path:
    return api.write_kubeconfig(tmp_path / "kubeconfig")


def _cluster(kubeconfig: Path) -> Cluster:
    return Cluster.connect(environ={"KUBECONFIG": str(kubeconfig)})


def test_429_is_retried_after_the_servers_retry_after(api: FakeKubeAPI, kubeconfig: Path) -> None:
    api.inject(429, 2, retry_after=1)
    started = time.monotonic()
    with _cluster(kubeconfig) as cluster:
        assert cluster.version().text
    assert time.monotonic() - started >= 2.0  # Retry-After: 1, twice
    assert [status for _, _, status in api.injected] == [429, 429]


def test_503_is_retried_with_exponential_back_off(api: FakeKubeAPI, kubeconfig: Path) -> None:
    api.inject(503, 3, when=lambda method, _path: method == "PATCH")
    started = time.monotonic()
    with _cluster(kubeconfig) as cluster:
        result = cluster.apply(NAMESPACE_OBJ)
    assert result.created
    assert time.monotonic() - started >= 0.5 + 1.0 + 2.0
    assert api.get_object("v1", "Namespace", "retried") is not None


def test_answers_that_go_on_are_reported_with_the_count(api: FakeKubeAPI, kubeconfig: Path) -> None:
    api.inject(503, 100, when=lambda method, _path: method == "PATCH")
    with _cluster(kubeconfig) as cluster:
        cluster.retry_backoff = 0.01
        with pytest.raises(KubernetesError) as caught:
            cluster.apply(NAMESPACE_OBJ)
    error = caught.value
    assert error.status == 503
    assert f"answered 503 {RETRY_ATTEMPTS} times in a row; retried with back-off" in error.message
    assert "Namespace retried" in error.message
    assert len(api.injected) == RETRY_ATTEMPTS
    assert api.get_object("v1", "Namespace", "retried") is None


def test_an_install_throttled_now_and_then_completes(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    api.inject(429, 4, retry_after=0, when=lambda method, _path: method == "PATCH")
    api.inject(503, 2, retry_after=0, when=lambda method, path: "selfsubjectaccess" in path)

    run = install(answers(monitoring={"enabled": False}), kubeconfig, tmp_path / "root")

    assert run.exit_code == 0, run.text()
    assert len(api.injected) == 6


def test_ctrl_c_ends_a_long_retry_after_wait_and_the_rerun_resumes(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    """The server asks for 30 s (Retry-After) on the first write; Ctrl-C a second into that
    wait ends it there: the run stops as interrupted, and the same apply then resumes."""
    api.inject(429, 1, retry_after=30, when=lambda method, _path: method == "PATCH")
    cancel = CancelToken()
    throttled_at: list[float] = []

    def press_ctrl_c_once_throttled() -> None:
        while not api.injected and not cancel.cancelled:
            time.sleep(0.05)
        throttled_at.append(time.monotonic())
        time.sleep(1.0)
        cancel.cancel("interrupted")

    presser = threading.Thread(target=press_ctrl_c_once_throttled, daemon=True)
    presser.start()
    run = install(
        answers(monitoring={"enabled": False}), kubeconfig, tmp_path / "root", cancel=cancel
    )
    cancel.cancel("the test is over")  # the presser stops waiting if the 429 never came
    presser.join(timeout=10)
    assert run.exit_code == ExitCode.INTERRUPTED, run.text()
    assert throttled_at, "the server never throttled"
    waited = time.monotonic() - throttled_at[0]
    assert waited < 25, f"the run waited out the server's 30 s ({waited:.1f} s)"
    assert [status for _, _, status in api.injected] == [429]
    assert "Run the same apply again to resume" in run.events[-1].message
    # The same apply again, unthrottled, resumes and finishes.
    again = install(answers(monitoring={"enabled": False}), kubeconfig, tmp_path / "root")
    assert again.exit_code == 0, again.text()
