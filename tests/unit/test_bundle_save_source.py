"""Where ``bundle create`` reads the save from: the Engine the one resolver names
(:func:`installer.engine.endpoint.docker_endpoint`), over the engine layer's HTTP helper;
only an Engine reached over ssh:// is left to the docker command."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.bundle.create import _engine_save_stream, _start_early_save
from installer.engine.endpoint import DEFAULT_SOCKET_VARIABLE, DockerEndpoint
from installer.errors import ImageSaveError


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="cq-") as directory:
        yield Path(directory)


class SaveStandIn:
    """A Unix socket that answers one request with ``reply`` and records the request."""

    def __init__(self, path: Path, reply: bytes) -> None:
        self.request = b""
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen()
        self.reply = reply
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            while b"\r\n\r\n" not in self.request:
                self.request += conn.recv(65536)
            conn.sendall(self.reply)

    def close(self) -> None:
        self.thread.join(5)
        self.server.close()


def _chunked(body: bytes, size: int = 7) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + encoded


def test_the_save_is_read_from_the_resolved_socket_chunked_encoding_and_all(
    short_tmp: Path,
) -> None:
    body = bytes(range(256)) * 40
    engine = SaveStandIn(short_tmp / "d.sock", _chunked(body))
    endpoint = DockerEndpoint(f"unix://{short_tmp}/d.sock", "rootless")
    try:
        with _engine_save_stream(endpoint, ["a/b:1", "c:2"]) as stream:
            received = b""
            while chunk := stream.read(4096):
                received += chunk
    finally:
        engine.close()
    assert received == body
    assert engine.request.startswith(b"GET /images/get?names=a%2Fb%3A1&names=c%3A2 HTTP/1.1")


def test_a_refused_save_names_the_images_and_the_engine_s_reason(short_tmp: Path) -> None:
    message = json.dumps({"message": "reference does not exist"}).encode()
    reply = b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n%s" % (len(message), message)
    engine = SaveStandIn(short_tmp / "d.sock", reply)
    try:
        with (
            pytest.raises(ImageSaveError, match="docker save of x:1 failed: reference does not"),
            _engine_save_stream(DockerEndpoint(f"unix://{short_tmp}/d.sock"), ["x:1"]) as stream,
        ):
            stream.read(1 << 20)
    finally:
        engine.close()


@pytest.mark.parametrize(
    ("docker_host", "read_here"),
    [("tcp://127.0.0.1:1", True), ("unix:///nowhere/docker.sock", True), ("ssh://b@h", False)],
)
def test_only_an_engine_over_ssh_is_left_to_the_docker_command(
    monkeypatch: pytest.MonkeyPatch, docker_host: str, read_here: bool
) -> None:
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    with contextlib.ExitStack() as stack:
        started = _start_early_save(stack, ["x:1"])
    # Nothing listens at the first two: the error is kept for after the image check.
    assert (started is not None) is read_here
    if read_here:
        assert isinstance(started, ImageSaveError)


def test_without_docker_host_the_save_goes_to_the_rootless_socket(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = SaveStandIn(short_tmp / "docker.sock", _chunked(b"tar bytes"))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("DOCKER_CONTEXT", "default")
    monkeypatch.setenv(DEFAULT_SOCKET_VARIABLE, str(short_tmp / "none.sock"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_tmp))
    try:
        with contextlib.ExitStack() as stack:
            stream = _start_early_save(stack, ["x:1"])
            assert stream is not None and not isinstance(stream, Exception)
            assert stream.read(100) == b"tar bytes"
    finally:
        engine.close()
