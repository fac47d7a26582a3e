"""Registry pushes survive a flaky registry: a small reverse proxy on 127.0.0.1 in front of
the real registry answers 5xx (or 429) to the first attempt of each kind of request, and
the push still completes, every failed request tried again, each failed upload started
over; the images then pull back by digest from the registry itself. A registry that keeps
failing is a clear error after the documented number of attempts."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from installer.bundle import open_bundle
from installer.bundle.create import create_bundle
from installer.bundle.registry import RETRIES, RegistryError, RegistryTarget, push_images
from installer.release import load_release
from tests.integration.bundle_support import (
    APP,
    cached_wheelhouse,
    ensure_bundle_images,
    release_file,
)
from tests.support.registry import LocalRegistry

pytestmark = pytest.mark.integration

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class FlakyProxy:
    """Forwards to ``upstream``, failing requests as ``should_fail(method, path)`` says.

    The Host header is passed on unchanged, so the registry's upload Locations point back
    at the proxy and every request of the push goes through it.
    """

    def __init__(self, upstream: str, should_fail: Any) -> None:
        self.upstream = upstream
        self.should_fail = should_fail
        self.log: list[tuple[str, str, int]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        data += self.rfile.read(size)
                        self.rfile.readline()
                    self.rfile.readline()
                    return data
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self) -> None:
                body = self._body()
                path = self.path.split("?", 1)[0]
                failure = proxy.should_fail(self.command, path)
                if failure:
                    proxy.log.append((self.command, path, failure))
                    self.send_response(failure)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                connection = http.client.HTTPConnection(proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                headers["Host"] = self.headers.get("Host", proxy.upstream)
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                connection.close()
                proxy.log.append((self.command, path, response.status))
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def opened(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any) -> Any:
    ensure_bundle_images(docker_engine)
    directory = tmp_path_factory.mktemp("retries")
    release = load_release(str(release_file(directory, "7.2.0-retries", with_base=True)))
    created = create_bundle(release, directory / "b.bundle", wheelhouse=cached_wheelhouse())
    return open_bundle(created.path, directory / "extracted")


@pytest.fixture
def flaky(registry: LocalRegistry) -> Iterator[Any]:
    proxies: list[FlakyProxy] = []

    def start(should_fail: Any) -> FlakyProxy:
        proxies.append(FlakyProxy(registry.address, should_fail))
        return proxies[-1]

    yield start
    for proxy in proxies:
        proxy.close()


def _first_of_each_kind() -> Any:
    """The first request of each kind a push makes fails once: 503 for manifest and blob
    checks (HEAD), the upload's PUT and the manifest PUT; 429 for the upload's POST."""
    failed: set[str] = set()
    answers = {"POST": 429}

    def should_fail(method: str, path: str) -> int:
        kind = method + (" blob" if "/blobs/uploads/" in path else "")
        if kind in failed or path == "/v2/":
            return 0
        failed.add(kind)
        return answers.get(method, 503)

    return should_fail


def test_a_push_through_failing_requests_completes(
    opened: Any, flaky: Any, registry: LocalRegistry, docker_engine: Any
) -> None:
    proxy = flaky(_first_of_each_kind())
    waits: list[float] = []
    target = RegistryTarget(mirror=f"{proxy.address}/corp", insecure=True)
    pushed = push_images(target, opened.root, opened.metadata.images, sleep=waits.append)

    failures = [(m, p, s) for m, p, s in proxy.log if s >= 500 or s == 429]
    kinds = {m + (" blob" if "/blobs/uploads/" in p else "") for m, p, _ in failures}
    assert kinds == {"HEAD", "POST blob", "PUT blob", "PUT"}, proxy.log
    assert any(s == 429 for _, _, s in failures)
    # Each failure was followed by the same request succeeding (uploads: a new upload).
    for method, path, _ in failures:
        if "/blobs/uploads/" in path:
            assert any(m == "POST" and s == 202 for m, p, s in proxy.log), proxy.log
        else:
            later = [s for m, p, s in proxy.log if (m, p) == (method, path) and s < 500]
            assert later, (method, path, proxy.log)
    assert waits and waits[:2] == [1.0, 1.0]  # back-off per request, from 1 s

    # The registry itself holds what was pushed: pull it back by digest, without the proxy.
    expected = {image.references[0]: image.manifest_digest for image in opened.metadata.images}
    assert {p.source: p.digest for p in pushed} == expected
    app = next(p for p in pushed if p.source == APP)
    direct = app.pinned.replace(proxy.address, registry.address)
    try:
        pulled = docker_engine.images.pull(direct)
        assert pulled.id == next(i.id for i in opened.metadata.images if APP in i.references)
    finally:
        docker_engine.images.remove(direct, force=True)


def test_a_registry_that_keeps_failing_is_a_clear_error(
    opened: Any, flaky: Any, tmp_path: Path
) -> None:
    proxy = flaky(lambda method, path: 503 if "/blobs/uploads/" in path else 0)
    waits: list[float] = []
    target = RegistryTarget(mirror=f"{proxy.address}/broken", insecure=True)
    with pytest.raises(RegistryError) as caught:
        push_images(target, opened.root, opened.metadata.images, sleep=waits.append)
    assert f"answered 503 (tried {RETRIES} times)" in caught.value.message
    assert caught.value.hint and "keeps failing" in caught.value.hint
    assert waits == [1.0, 2.0, 4.0]  # RETRIES - 1 waits, doubling
    assert [s for _, p, s in proxy.log if "/blobs/uploads/" in p] == [503] * RETRIES
