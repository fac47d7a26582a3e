"""The one resolver of the Docker endpoint: DOCKER_HOST, else the selected context, else the
system socket, else a rootless daemon's socket; what start-up exports for the docker
commands; and the same answer for the probe, the SDK client and the compose commands."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from installer.engine.endpoint import (
    CONTEXT_VARIABLE,
    DEFAULT_SOCKET_VARIABLE,
    SOURCE_VARIABLE,
    adopt_docker_endpoint,
    command_environment,
    docker_endpoint,
)


@pytest.fixture
def host(tmp_path: Path) -> dict[str, str]:
    """An environment with no context, no system socket and an empty runtime directory."""
    (tmp_path / "runtime").mkdir()
    return {
        "DOCKER_CONFIG": str(tmp_path / "config"),
        DEFAULT_SOCKET_VARIABLE: str(tmp_path / "system.sock"),
        "XDG_RUNTIME_DIR": str(tmp_path / "runtime"),
    }


def test_docker_host_comes_first(host: dict[str, str]) -> None:
    endpoint = docker_endpoint(
        {**host, "DOCKER_HOST": "tcp://10.0.0.2:2376", "DOCKER_TLS_VERIFY": "1"}
    )
    assert (endpoint.url, endpoint.source, endpoint.tls_verify) == (
        "tcp://10.0.0.2:2376",
        "env",
        True,
    )
    assert endpoint.socket_path is None and endpoint.chosen_by_operator


def test_the_system_socket_before_the_rootless_one(host: dict[str, str]) -> None:
    Path(host[DEFAULT_SOCKET_VARIABLE]).touch()
    Path(host["XDG_RUNTIME_DIR"], "docker.sock").touch()
    endpoint = docker_endpoint(host)
    assert (endpoint.socket_path, endpoint.source) == (host[DEFAULT_SOCKET_VARIABLE], "default")


def test_a_rootless_socket_when_there_is_no_system_one(host: dict[str, str]) -> None:
    rootless = Path(host["XDG_RUNTIME_DIR"], "docker.sock")
    rootless.touch()
    endpoint = docker_endpoint(host)
    assert (endpoint.socket_path, endpoint.source) == (str(rootless), "rootless")
    assert not endpoint.chosen_by_operator
    assert "rootless" in endpoint.describe()


def test_nothing_anywhere_names_the_system_socket(host: dict[str, str]) -> None:
    endpoint = docker_endpoint(host)
    assert (endpoint.url, endpoint.source) == (f"unix://{host[DEFAULT_SOCKET_VARIABLE]}", "default")


def test_start_up_exports_a_rootless_socket_and_later_answers_agree(host: dict[str, str]) -> None:
    Path(host["XDG_RUNTIME_DIR"], "docker.sock").touch()
    env = dict(host)
    adopted = adopt_docker_endpoint(env, io.StringIO())
    assert env["DOCKER_HOST"] == adopted.url and env[SOURCE_VARIABLE] == "rootless"
    again = docker_endpoint(env)  # what the probe, the SDK and bundle create ask later
    assert (again.url, again.source) == (adopted.url, "rootless")


def test_the_docker_commands_get_the_rootless_socket_but_not_the_default(
    host: dict[str, str],
) -> None:
    assert "DOCKER_HOST" not in command_environment(host)
    Path(host["XDG_RUNTIME_DIR"], "docker.sock").touch()
    assert (
        command_environment(host)["DOCKER_HOST"] == f"unix://{host['XDG_RUNTIME_DIR']}/docker.sock"
    )
    user_choice = command_environment({**host, "DOCKER_HOST": "tcp://h:2375"})
    assert user_choice["DOCKER_HOST"] == "tcp://h:2375"


def test_an_adopted_context_is_still_named(host: dict[str, str]) -> None:
    env = {
        **host,
        "DOCKER_HOST": "unix:///run/desk.sock",
        SOURCE_VARIABLE: "context",
        CONTEXT_VARIABLE: "desk",
    }
    endpoint = docker_endpoint(env)
    assert (endpoint.source, endpoint.context) == ("context", "desk")
    assert "'desk'" in endpoint.describe()


def test_the_sdk_client_factory_uses_the_resolver(
    host: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Engine at the resolved socket: the factory says DockerUnavailable (exit 3), naming it."""
    from installer.engine.docker import DockerUnavailable, docker_client
    from installer.errors import ExitCode

    rootless = Path(host["XDG_RUNTIME_DIR"], "docker.sock")
    rootless.touch()  # a stale socket file: nothing listens
    for name, value in host.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("DOCKER_CONTEXT", "default")
    with pytest.raises(DockerUnavailable) as caught:
        docker_client(timeout=2)
    assert caught.value.exit_code == ExitCode.PREREQUISITES
    assert f"unix://{rootless}" in caught.value.message
    assert caught.value.message.endswith("is not answering (connection refused)")
    assert "run the same command again" in (caught.value.hint or "")


def test_the_socket_error_under_the_sdk_s_wrappers_is_said_in_words() -> None:
    import requests
    import urllib3

    from installer.engine.docker import docker_unavailable
    from installer.engine.endpoint import DockerEndpoint

    wrapped = requests.ConnectionError(
        urllib3.exceptions.ProtocolError("Connection aborted.", FileNotFoundError(2, "gone"))
    )
    said = docker_unavailable("cannot list", wrapped, DockerEndpoint("unix:///x.sock"))
    assert said.message == (
        "cannot list: the Docker Engine at unix:///x.sock is not answering (no socket at that path)"
    )
    other = docker_unavailable(
        "cannot list", RuntimeError("odd\nmore"), DockerEndpoint("unix:///x")
    )
    assert other.message.endswith("(odd)")
