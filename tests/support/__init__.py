"""Helpers the test suite shares: the locally built test images, the test releases, a registry."""

from __future__ import annotations

from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent
# Release manifests whose images tests/support/images.py builds; CODEQUAL_RELEASES_DIR names it.
TEST_RELEASES_DIR = TESTS_DIR / "releases"
TEST_RELEASES = ("1.0.0-test", "1.5.0-test", "2.0.0-test", "2.0.0-broken", "3.0.0-test")
