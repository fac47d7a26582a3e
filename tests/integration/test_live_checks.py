"""Live checks against real services on this machine (issue 16, acceptance 1-4 and 6).

- Debian's docker-registry with TLS (a test CA) and htpasswd: right credentials and CA
  pass; a wrong password names 401; no CA names the TLS error; a missing image names the
  reference and 404.
- The test PostgreSQL image as a managed database on a published port: the right password
  passes with the server version; a wrong password, a user without CREATE and
  ``sslmode=verify-full`` against a server without TLS fail, each in its own words.
- Debian's slapd, seeded here, over ldaps with the test CA: bind and search pass; a wrong
  bind password and an empty user base fail distinctly.
- No network at all (``unshare -n``): every check answers, within 10 s, in operator words;
  with the offline bundle given, the images check passes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from installer.answers import AnswerFile
from installer.live.database import check_database
from installer.live.images import check_images
from installer.live.result import LiveInput
from installer.release import load_release
from tests.support.images import POSTGRES, BuildReport
from tests.support.registry import RegistryStartError
from tests.support.secure_registry import SecureRegistry, secure_registry

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RELEASE = "1.0.0-test"


def _answers(tmp_path: Path, **sections: Any) -> AnswerFile:
    document: dict[str, Any] = {
        "version": 1,
        "target": "production",
        "install_dir": str(tmp_path / "install"),
        "domain": "codequal.corp.test",
        "monitoring": {"enabled": False},
        "release": {"version": RELEASE},
        **sections,
    }
    return AnswerFile.model_validate(document)


def _inputs(answers: AnswerFile, **extra: Any) -> LiveInput:
    return LiveInput(answers=answers, release=load_release(RELEASE), timeout=4.0, **extra)


# --- images: a registry with TLS and htpasswd --------------------------------------------


@pytest.fixture
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureRegistry]:
    try:
        with secure_registry(tmp_path_factory.mktemp("secure-registry")) as running:
            yield running
    except RegistryStartError as e:
        pytest.fail(str(e), pytrace=False)


def _release_repositories() -> list[tuple[str, str]]:
    release = load_release(RELEASE)
    found = []
    for name in ("codequal", "deepwiki", "nginx", "postgres"):
        repository, _, tag = release.services[name].image.partition(":")
        found.append((repository, tag))
    return sorted(set(found))


def _mirror_answers(tmp_path: Path, registry: SecureRegistry, *, ca: bool = True) -> AnswerFile:
    section: dict[str, Any] = {"mirror": registry.address, "username": registry.username}
    if ca:
        section["ca_file"] = str(registry.ca.cert)
    return _answers(tmp_path, registry=section)


def test_images_on_a_mirror_with_the_right_credentials_and_ca_pass(
    tls_registry: SecureRegistry, tmp_path: Path, test_releases_dir: Path
) -> None:
    for repository, tag in _release_repositories():
        tls_registry.push_image(repository, tag)
    result = check_images(
        _inputs(
            _mirror_answers(tmp_path, tls_registry),
            secrets={"registry_password": tls_registry.password},
        )
    )
    assert result.status == "pass", result
    assert f"in {tls_registry.address}" in (result.measured or "")
    assert tls_registry.password not in json.dumps(result.to_dict())


def test_a_wrong_registry_password_is_a_fail_naming_401(
    tls_registry: SecureRegistry, tmp_path: Path, test_releases_dir: Path
) -> None:
    for repository, tag in _release_repositories():
        tls_registry.push_image(repository, tag)
    result = check_images(
        _inputs(_mirror_answers(tmp_path, tls_registry), secrets={"registry_password": "wrong"})
    )
    assert result.status == "fail"
    assert "401" in (result.measured or "")
    assert f"as {tls_registry.username}" in (result.measured or "")
    assert "registry_password" in (result.hint or "")


def test_a_mirror_without_its_ca_names_the_tls_error(
    tls_registry: SecureRegistry, tmp_path: Path, test_releases_dir: Path
) -> None:
    result = check_images(
        _inputs(
            _mirror_answers(tmp_path, tls_registry, ca=False),
            secrets={"registry_password": tls_registry.password},
        )
    )
    assert result.status == "fail"
    measured = result.measured or ""
    assert f"could not reach {tls_registry.address} (TLS:" in measured
    assert "certificate is not trusted" in measured
    assert "registry.ca_file" in (result.hint or "")


def test_an_image_missing_from_the_mirror_names_the_reference_and_404(
    tls_registry: SecureRegistry, tmp_path: Path, test_releases_dir: Path
) -> None:
    repositories = _release_repositories()
    missing_repository, missing_tag = repositories[-1]
    for repository, tag in repositories[:-1]:
        tls_registry.push_image(repository, tag)
    result = check_images(
        _inputs(
            _mirror_answers(tmp_path, tls_registry),
            secrets={"registry_password": tls_registry.password},
        )
    )
    assert result.status == "fail"
    reference = f"{tls_registry.address}/{missing_repository}:{missing_tag}"
    assert f"404: {reference} is not in {tls_registry.address}" in (result.measured or "")
    assert "1 of" in (result.measured or "")
