"""A pull that fails during an install is told in the live images check's words."""

from __future__ import annotations

import socket

import pytest

from installer.engine.docker import DockerEngine, DockerError


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends


def test_a_pull_from_a_registry_that_refuses_names_the_cause() -> None:
    reference = f"127.0.0.1:{_closed_port()}/codequal-test/absent:1"
    engine = DockerEngine()
    with pytest.raises(DockerError) as caught:
        list(engine.pull(reference))
    message = caught.value.message
    assert message.startswith(f"cannot pull {reference}: could not reach 127.0.0.1:")
    assert "(TCP: " in message and "refused the connection" in message
    assert "500 Server Error" not in message and "http+docker" not in message
    assert caught.value.hint is not None and "offline bundle" in caught.value.hint
