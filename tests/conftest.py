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
