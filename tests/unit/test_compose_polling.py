"""The Compose target's one wait loop and its HTTP use (a real local server)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any, cast

import pytest

from installer.errors import Interrupted
from installer.runner import CancelToken
from installer.targets.compose.polling import wait_until
from installer.targets.compose.probes import wait_for_ok


class SleepingContext:
    """What the loop needs of a StepContext: a sleep that can be cancelled."""

    def __init__(self, cancel: CancelToken | None = None) -> None:
        self.cancel = cancel or CancelToken()
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.cancel.sleep(seconds)


def test_wait_until_returns_the_first_result_that_is_done() -> None:
    ctx: Any = SleepingContext()
    answers = iter([0, 0, 3, 4])
    result = wait_until(ctx, lambda: next(answers), lambda n: n > 0, timeout=10, interval=0.01)
    assert result == 3
    assert ctx.slept == [0.01, 0.01]


def test_wait_until_gives_the_last_result_when_time_is_up() -> None:
    ctx: Any = SleepingContext()
    calls: list[int] = []

    def attempt() -> int:
        calls.append(1)
        return -len(calls)

    result = wait_until(ctx, attempt, lambda n: n > 0, timeout=0.05, interval=0.01)
    assert result == -len(calls) and len(calls) >= 2


def test_wait_until_stops_when_the_run_is_cancelled() -> None:
    cancel = CancelToken()
    ctx: Any = SleepingContext(cancel)
    timer = threading.Timer(0.05, cancel.cancel)
    timer.start()
    with pytest.raises(Interrupted):
        wait_until(ctx, lambda: False, bool, timeout=30, interval=5)
    assert ctx.slept == [5]


@pytest.fixture
def flaky_server() -> Iterator[tuple[int, list[str]]]:
    """Answers 503 twice, then 200, and records each request's Host header."""
    hosts: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hosts.append(self.headers["Host"])
            status = 200 if len(hosts) > 2 else 503
            body = b'{"ok": true}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], hosts
    finally:
        server.shutdown()
        server.server_close()


def test_wait_for_ok_asks_again_until_200(flaky_server: tuple[int, list[str]]) -> None:
    port, hosts = flaky_server
    ctx: Any = SleepingContext()
    status, body = wait_for_ok(ctx, port, "codequal.test", "/health", timeout=30)
    assert (status, body) == (200, '{"ok": true}')
    assert hosts == ["codequal.test"] * 3 and ctx.slept == [1, 1]


def test_wait_for_ok_reports_nothing_answering_as_status_0() -> None:
    import socket

    with socket.socket() as placeholder:  # a port nobody listens on
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    status, body = wait_for_ok(cast(Any, SleepingContext()), port, "x", "/", timeout=0)
    assert status == 0 and "refused" in body.lower()
