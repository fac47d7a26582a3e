"""The registry client's token flow and its errors, against a small registry on 127.0.0.1
that asks for a Bearer token (Debian's docker-registry cannot issue tokens without a whole
token service; the push itself is tested against the real one in tests/integration/)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from installer.engine.registry import (
    RegistryClient,
    RegistryEndpoint,
    RegistryError,
    RegistryMirror,
    RegistryUnreachable,
)
from installer.errors import ExitCode
from installer.targets.kubernetes.images import check_image

DIGEST = "sha256:" + "cd" * 32


class TokenRegistry:
    """Answers manifests only with a Bearer token for the right scope, from its realm."""

    def __init__(self, *, users: dict[str, str] | None = None) -> None:
        self.users = users  # None: anonymous tokens for anyone
        self.token_requests: list[dict[str, Any]] = []
        self.manifests = {"corp/app": {"1"}}
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key.replace("_", "-"), value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _challenge(self, scope: str) -> None:
                realm = f"http://{registry.address}/token"
                self._send(
                    401,
                    WWW_Authenticate=f'Bearer realm="{realm}",service="fake",scope="{scope}"',
                )

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/token":
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    basic = self.headers.get("Authorization", "")
                    user = None
                    if basic.startswith("Basic "):
                        user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
                        if registry.users is not None and registry.users.get(user) != password:
                            self._send(401)
                            return
                    elif registry.users is not None:
                        self._send(401)
                        return
                    registry.token_requests.append({**query, "user": user})
                    token = json.dumps({"token": f"token-for {query['scope']}"}).encode()
                    self._send(200, token, Content_Type="application/json")
                    return
                if url.path == "/v2/":
                    self._challenge("")
                    return
                self._send(404)

            def do_HEAD(self) -> None:
                path = urlsplit(self.path).path
                repository, _, tag = path.removeprefix("/v2/").partition("/manifests/")
                wanted = {f"token-for repository:{repository}:{a}" for a in ("pull", "pull,push")}
                given = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if given not in wanted:
                    self._challenge(f"repository:{repository}:pull")
                    return
                if tag in registry.manifests.get(repository, set()):
                    self._send(200, Docker_Content_Digest=DIGEST)
                else:
                    self._send(404)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def token_registry() -> Iterator[Any]:
    started: list[TokenRegistry] = []

    def start(**kw: Any) -> TokenRegistry:
        started.append(TokenRegistry(**kw))
        return started[-1]

    yield start
    for registry in started:
        registry.close()


def test_the_client_follows_the_token_flow_with_the_mirrors_credentials(
    token_registry: Any,
) -> None:
    registry = token_registry(users={"ci": "s3cret"})
    endpoint = RegistryEndpoint(registry.address, insecure=True, username="ci", password="s3cret")
    with RegistryClient(endpoint, sleep=lambda _: None) as client:
        assert client.manifest_digest("corp/app", "1", pull_only=True) == DIGEST
        assert client.manifest_digest("corp/app", "2", pull_only=True) is None
    # One token for the scope, asked for with the credentials, kept for the second request.
    assert registry.token_requests == [
        {"service": "fake", "scope": "repository:corp/app:pull", "user": "ci"}
    ]


def test_the_kubernetes_check_asks_anonymously_for_a_token_and_names_what_is_missing(
    token_registry: Any,
) -> None:
    registry = token_registry()
    mirror = RegistryMirror(mirror=registry.address, insecure=True)
    present = check_image(f"{registry.address}/corp/app:1", mirror)
    missing = check_image(f"{registry.address}/corp/app:9", mirror)
    assert (present.presence, missing.presence) == ("present", "missing")
    assert registry.token_requests[0]["user"] is None


def test_a_refused_token_is_unauthorised_not_unreachable(token_registry: Any) -> None:
    registry = token_registry(users={"ci": "s3cret"})
    wrong = RegistryMirror(
        mirror=registry.address, insecure=True, username="ci", password="wrong-7731"
    )
    found = check_image(f"{registry.address}/corp/app:1", wrong)
    assert (found.presence, found.detail) == ("unauthorized", "HTTP 401")
    with (
        RegistryClient(wrong.endpoint(), sleep=lambda _: None) as client,
        pytest.raises(RegistryError) as caught,
    ):
        client.manifest_digest("corp/app", "1")
    assert caught.value.status == 401
    assert caught.value.exit_code == ExitCode.INSTALL_FAILED
    assert "registry_password" in (caught.value.hint or "")
    assert "wrong-7731" not in f"{caught.value.message} {caught.value.hint} {wrong!r}"


def test_nothing_listening_is_unreachable_exit_3_naming_the_registry() -> None:
    with pytest.raises(RegistryUnreachable) as caught:
        RegistryClient(RegistryEndpoint("127.0.0.1:9", insecure=True), sleep=lambda _: None)
    assert caught.value.exit_code == ExitCode.PREREQUISITES
    assert caught.value.message == "cannot reach the registry at 127.0.0.1:9: connection refused"
    assert "run the same command again" in (caught.value.hint or "")
