"""The Docker context the docker CLI would use becomes DOCKER_HOST for the installer (the
endpoint resolver, :mod:`installer.engine.endpoint`), laid
out here as the docker CLI writes it (``tests/integration/test_docker_context.py`` makes
contexts with the real CLI)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from installer.engine.endpoint import (
    CONTEXT_VARIABLE,
    ContextError,
    adopt_docker_endpoint,
    context_environment,
)


def _context(config: Path, name: str, host: str, *, skip_tls: bool = False) -> Path:
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest / "meta.json"
    meta.parent.mkdir(parents=True)
    endpoint = {"Host": host, "SkipTLSVerify": skip_tls}
    document: dict[str, object] = {"Name": name, "Metadata": {}, "Endpoints": {"docker": endpoint}}
    if host == "broken":  # not the layout the docker CLI writes
        document = {"Docker": {"Host": host}}
    meta.write_text(json.dumps(document))
    return config / "contexts" / "tls" / digest / "docker"


def _use(config: Path, name: str) -> None:
    config.mkdir(exist_ok=True)
    (config / "config.json").write_text(json.dumps({"auths": {}, "currentContext": name}))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return tmp_path / "docker-config"


def test_the_current_context_becomes_docker_host(config: Path) -> None:
    _context(config, "desktop-linux", "unix:///home/me/.docker/desktop/docker.sock")
    _use(config, "desktop-linux")
    assert context_environment({"DOCKER_CONFIG": str(config)}) == {
        "DOCKER_HOST": "unix:///home/me/.docker/desktop/docker.sock",
        CONTEXT_VARIABLE: "desktop-linux",
    }


def test_the_config_directory_defaults_to_home(tmp_path: Path) -> None:
    config = tmp_path / ".docker"
    _context(config, "other", "unix:///run/other.sock")
    _use(config, "other")
    assert context_environment({"HOME": str(tmp_path)})["DOCKER_HOST"] == "unix:///run/other.sock"


def test_docker_context_overrides_the_config_and_docker_host_overrides_both(
    config: Path,
) -> None:
    _context(config, "one", "unix:///run/one.sock")
    _context(config, "two", "unix:///run/two.sock")
    _use(config, "one")
    env = {"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "two"}
    assert context_environment(env)["DOCKER_HOST"] == "unix:///run/two.sock"
    assert context_environment({**env, "DOCKER_HOST": "tcp://10.0.0.1:2375"}) == {}


@pytest.mark.parametrize("config_text", [None, '{"auths": {}}', '{"currentContext": "default"}'])
def test_no_context_or_the_default_one_changes_nothing(
    config: Path, config_text: str | None
) -> None:
    if config_text is not None:
        config.mkdir()
        (config / "config.json").write_text(config_text)
    assert context_environment({"DOCKER_CONFIG": str(config)}) == {}


def test_a_tls_context_brings_its_certificates(config: Path) -> None:
    tls = _context(config, "remote", "tcp://docker.example.internal:2376")
    tls.mkdir(parents=True)
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tls / name).write_text("-----BEGIN-----\n")
    _use(config, "remote")
    assert context_environment({"DOCKER_CONFIG": str(config)}) == {
        "DOCKER_HOST": "tcp://docker.example.internal:2376",
        "DOCKER_CERT_PATH": str(tls),
        "DOCKER_TLS_VERIFY": "1",
        CONTEXT_VARIABLE: "remote",
    }


@pytest.mark.parametrize(
    ("setup", "said"),
    [
        (lambda c: _use(c, "gone"), "the Docker context 'gone' (chosen by"),
        (lambda c: (_context(c, "s", "ssh://me@host"), _use(c, "s")), "over ssh"),
        (lambda c: (_context(c, "x", "tcp://h:2376", skip_tls=True), _use(c, "x")), "TLS"),
        (lambda c: (_context(c, "b", "broken"), _use(c, "b")), "cannot be read"),
        (lambda c: (c.mkdir(), (c / "config.json").write_text('{"currentContext": ')), "JSON"),
    ],
    ids=["missing", "ssh", "tls-off", "unreadable", "bad-config"],
)
def test_a_context_the_installer_cannot_use_is_reported_and_the_default_used(
    config: Path, setup: object, said: str
) -> None:
    setup(config)  # type: ignore[operator]
    env = {"DOCKER_CONFIG": str(config)}
    with pytest.raises(ContextError, match=said.replace("(", r"\(")):
        context_environment(env)

    warnings = io.StringIO()
    adopt_docker_endpoint(env, warnings)
    assert warnings.getvalue().startswith("warning: ") and said in warnings.getvalue()
    assert warnings.getvalue().count("\n") == 1
    # The docker commands the installer runs use the default endpoint, as the SDK does.
    assert env == {"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "default"}


def test_adopting_exports_into_the_environment_given(config: Path) -> None:
    _context(config, "desk", "unix:///run/desk.sock")
    _use(config, "desk")
    env = {"DOCKER_CONFIG": str(config)}
    warnings = io.StringIO()
    adopt_docker_endpoint(env, warnings)
    assert warnings.getvalue() == ""
    assert env["DOCKER_HOST"] == "unix:///run/desk.sock" and env[CONTEXT_VARIABLE] == "desk"
