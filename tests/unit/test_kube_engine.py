"""``installer.engine.kubernetes``: how each way of not reaching the API server is told,
and the one quantity parser."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.engine.kubernetes import Cluster, ClusterUnreachable, parse_quantity
from installer.errors import EngineUnavailable, ExitCode
from tests.support.fake_kube_api import FakeKubeAPI


@pytest.mark.parametrize(
    ("quantity", "value"),
    [
        ("8", 8.0),
        ("7500m", 7.5),
        ("32Gi", 32 * 1024**3),
        ("16G", 16e9),
        ("1e3", 1000.0),
        (4, 4.0),
        (None, 0.0),
        ("", 0.0),
    ],
)
def test_quantities_are_read_by_the_clients_parser(quantity: object, value: float) -> None:
    assert parse_quantity(quantity) == value


def test_a_quantity_that_is_not_one_is_an_error() -> None:
    with pytest.raises(ValueError, match="12Qi"):
        parse_quantity("12Qi")


def _kubeconfig(path: Path, server: str, token: str = "t") -> Path:  # noqa: S107
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: s, cluster: {{server: '{server}'}}}}]\n"
        f"users: [{{name: u, user: {{token: {token}}}}}]\n"
        "contexts: [{name: c, context: {cluster: s, user: u}}]\n"
    )
    return path


@pytest.fixture
def silent() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def _error(config: Path) -> ClusterUnreachable:
    cluster = Cluster.connect(environ={"KUBECONFIG": str(config)}, timeout=0.3, retries=False)
    with cluster, pytest.raises(ClusterUnreachable) as caught:
        cluster.version()
    return caught.value


def test_no_answer_in_time_is_a_timeout(tmp_path: Path, silent: str) -> None:
    error = _error(_kubeconfig(tmp_path / "k", silent))
    assert (error.kind, error.detail) == ("timeout", "timed out")
    assert error.message.startswith(f"the Kubernetes API at {silent} did not answer: timed out")
    assert "(context c; server version)" in error.message


def test_nothing_listening_is_unreachable_and_an_engine_out_of_reach(tmp_path: Path) -> None:
    with FakeKubeAPI() as gone:
        server = gone.url
    error = _error(_kubeconfig(tmp_path / "k", server))
    assert (error.kind, error.detail) == ("unreachable", "connection refused")
    assert isinstance(error, EngineUnavailable) and error.exit_code == ExitCode.PREREQUISITES
    assert "run the same command again" in (error.hint or "")


def test_refused_credentials_say_so(tmp_path: Path) -> None:
    with FakeKubeAPI() as api:
        error = _error(_kubeconfig(tmp_path / "k", api.url, token="expired"))
    assert error.kind == "unauthorized" and error.status == 401
    assert "refused the credentials of context c" in error.message


def test_a_missing_context_is_no_config(tmp_path: Path) -> None:
    config = _kubeconfig(tmp_path / "k", "http://127.0.0.1:9")
    with pytest.raises(ClusterUnreachable) as caught:
        Cluster.connect("other", environ={"KUBECONFIG": str(config)})
    assert caught.value.kind == "no_config"
