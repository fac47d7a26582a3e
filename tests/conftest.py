"""Fixtures every kind of test may use. Docker-backed ones live in tests/integration/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import TEST_RELEASES_DIR


@pytest.fixture
def test_releases_dir(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the test releases (tests/releases: 1.0.0-test, 2.0.0-test, 2.0.0-broken) loadable
    by version, through CODEQUAL_RELEASES_DIR, for this test and the processes it starts."""
    monkeypatch.setenv("CODEQUAL_RELEASES_DIR", str(TEST_RELEASES_DIR))
    return TEST_RELEASES_DIR


# The proxy variables the render passes to every service (installer.render.context).
PROXY_ENVIRONMENT = (
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
)


@pytest.fixture
def without_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy in the environment, as the golden files were rendered (a CI behind a proxy
    would otherwise render every service with it)."""
    for variable in PROXY_ENVIRONMENT:
        monkeypatch.delenv(variable, raising=False)
