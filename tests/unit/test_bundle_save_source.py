"""Where ``bundle create`` reads the save from: the Engine's Unix socket as the Docker SDK
would find it, and otherwise (TCP, SSH) not the socket."""

from __future__ import annotations

import pytest

from installer.bundle.create import _engine_socket


@pytest.mark.parametrize(
    ("docker_host", "expected"),
    [
        (None, "/var/run/docker.sock"),
        ("", "/var/run/docker.sock"),
        ("unix:///run/user/1000/docker.sock", "/run/user/1000/docker.sock"),
        ("unix://", None),
        ("tcp://127.0.0.1:2375", None),
        ("ssh://builder@host", None),
    ],
)
def test_the_engine_socket_follows_docker_host(
    monkeypatch: pytest.MonkeyPatch, docker_host: str | None, expected: str | None
) -> None:
    if docker_host is None:
        monkeypatch.delenv("DOCKER_HOST", raising=False)
    else:
        monkeypatch.setenv("DOCKER_HOST", docker_host)
    assert _engine_socket() == expected
