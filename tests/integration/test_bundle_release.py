"""The bundle's release manifest is what an install from the bundle installs: a bundle of a
release this installer does not ship (the test release, made where ``CODEQUAL_RELEASES_DIR``
names it) installs offline with no environment variable set, from ``airgap.bundle``, and
the next release's bundle upgrades it the same way (``upgrade --bundle``); a bundle of
another release than ``release.version`` (or ``upgrade --to``) stops with exit 2
naming both, before anything is written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from installer.errors import ExitCode
from installer.release import bundled_release_names
from tests.integration.apply_support import Install, host_ports_lock
from tests.integration.bundle_support import IsolatedEngine, isolated_engine, vendor_bundle
from tests.unit.cli_helpers import run_cli

pytestmark = pytest.mark.integration

RELEASE = "1.0.0-test"
NEXT = "2.0.0-test"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("keys")
    result = run_cli("bundle", "keygen", "--out", str(directory / "vendor"))
    assert result.exit_code == 0, result.output
    return {"private": directory / "vendor.key", "public": directory / "vendor.pub"}


@pytest.fixture(scope="module")
def release_bundle(
    tmp_path_factory: pytest.TempPathFactory, test_images: Any, keys: dict[str, Path]
) -> Path:
    """The vendor's signed bundle of the test release (made where the release is known)."""
    out = tmp_path_factory.mktemp("vendor") / f"codequal-{RELEASE}.bundle"
    return vendor_bundle(out, RELEASE, keys["private"])


@pytest.fixture(scope="module")
def upgrade_bundle(
    tmp_path_factory: pytest.TempPathFactory, test_images: Any, keys: dict[str, Path]
) -> Path:
    """The vendor's next release, 2.0.0-test, as a signed bundle."""
    out = tmp_path_factory.mktemp("vendor-next") / f"codequal-{NEXT}.bundle"
    return vendor_bundle(out, NEXT, keys["private"])


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IsolatedEngine]:
    with isolated_engine(tmp_path_factory.mktemp("engine")) as running:
        yield running


def _without_release_dirs(install: Install) -> dict[str, str]:
    env = install.environment()
    del env["CODEQUAL_RELEASES_DIR"]
    return env


def test_the_release_is_not_one_this_installer_ships() -> None:
    assert RELEASE not in bundled_release_names()


@pytest.mark.host_ports
def test_a_bundle_of_a_release_not_shipped_installs_and_upgrades_offline(
    release_bundle: Path,
    upgrade_bundle: Path,
    engine: IsolatedEngine,
    keys: dict[str, Path],
    tmp_path: Path,
) -> None:
    assert engine.client.images.list() == []
    started = time.time()
    with host_ports_lock():
        install = Install(tmp_path, tmp_path / "install", engine.client, env=engine.environment())
        try:
            answers = install.answers(
                "production",
                release={},  # no version: the bundle's
                airgap={"enabled": True, "bundle": str(release_bundle)},
                monitoring={"enabled": True},
            )
            env = _without_release_dirs(install)
            run = install.run(
                "apply", "--answers", str(answers), "--key", str(keys["public"]), "--yes",
                "--json", env=env,
            )  # fmt: skip
            assert run.exit_code == 0, run.describe()
            assert run.last["type"] == "run.finished"
            status, body = install.https_get("/health")
            assert status == 200 and body["version"] == RELEASE
            assert install.result()["release"]["version"] == RELEASE
            checks = run.step_messages("prerequisites")
            assert any(f"release {RELEASE}, signed by" in m for m in checks), checks
            # The monitoring services started with the others and were waited for after.
            services = run.step_messages("services")
            assert any(m.startswith("starting ") and "prometheus" in m for m in services)
            monitoring = run.step_messages("monitoring")
            assert any("answers 200" in m for m in monitoring), monitoring
            states = {
                c.labels["com.docker.compose.service"]: c.attrs["State"]["Status"]
                for c in install.containers()
            }
            assert {"prometheus", "grafana", "loki"} <= {
                s for s, v in states.items() if v == "running"
            }

            # `status` reads the installation without the release being known either.
            shown = install.run("status", "--install-dir", str(install.install_dir), env=env)
            assert shown.exit_code == 0, shown.describe()

            # The next release comes as a bundle too: `upgrade --bundle` reads it from there,
            # still with no network and no release directory, and backs up first.
            assert NEXT not in bundled_release_names()
            upgrade = install.run(
                "upgrade", "--answers", str(answers), "--to", NEXT, "--bundle",
                str(upgrade_bundle), "--key", str(keys["public"]), "--yes", "--json", env=env,
            )  # fmt: skip
            assert upgrade.exit_code == 0, upgrade.describe()
            status, body = install.https_get("/health")
            assert status == 200 and body["version"] == NEXT
            assert (install.result()["release"]["version"], install.result()["schema_version"]) == (
                NEXT,
                "2",
            )
            history = [
                json.loads(line)
                for line in (install.state / "history.jsonl").read_text().splitlines()
            ]
            assert history[-1]["kind"] == "upgrade" and history[-1]["exit_code"] == 0
            assert history[-1]["release"] == {"from": RELEASE, "to": NEXT}
            archive = Path(history[-1]["backup"])
            verified = json.loads(archive.with_name(archive.name + ".verified.json").read_text())
            assert verified["purpose"] == "pre-upgrade" and verified["release"] == RELEASE
        finally:
            install.teardown()
    actions = [e.get("Action") for e in engine.image_events(started, time.time())]
    assert "load" in actions and "pull" not in actions, actions
    assert engine.trap.connections == 0


def test_a_bundle_of_another_release_than_release_version_exits_2_naming_both(
    release_bundle: Path, tmp_path: Path, docker_engine: Any
) -> None:
    install = Install(tmp_path, tmp_path / "install", docker_engine)
    answers = install.answers(
        "production",
        release={"version": "1.5.0"},
        airgap={"enabled": True, "bundle": str(release_bundle)},
    )
    run = install.run(
        "apply", "--answers", str(answers), "--yes", "--json", env=_without_release_dirs(install)
    )
    assert run.exit_code == ExitCode.USAGE, run.describe()
    message = run.last["message"]
    assert run.last["type"] == "run.failed" and run.last["exit_code"] == 2
    assert f"holds release {RELEASE}" in message and "release.version" in message
    assert "1.5.0" in message
    assert not (install.install_dir / "docker-compose.yml").exists()

    # The same with --bundle, and for an upgrade to another version than the bundle's.
    plain = install.answers("production", release={"version": "1.5.0"})
    given = install.run(
        "apply", "--answers", str(plain), "--bundle", str(release_bundle), "--yes",
        env=_without_release_dirs(install),
    )  # fmt: skip
    assert given.exit_code == ExitCode.USAGE
    assert f"holds release {RELEASE}" in given.stderr and "1.5.0" in given.stderr
    upgrade = install.run(
        "upgrade", "--answers", str(plain), "--to", "2.0.0", "--bundle", str(release_bundle),
        "--yes", env=_without_release_dirs(install),
    )  # fmt: skip
    assert upgrade.exit_code == ExitCode.USAGE, upgrade.describe()
    assert f"holds release {RELEASE}, --to is 2.0.0" in upgrade.stderr


def test_plan_renders_the_bundles_release_with_no_environment_variable(
    release_bundle: Path, tmp_path: Path, docker_engine: Any
) -> None:
    install = Install(tmp_path, tmp_path / "install", docker_engine)
    answers = install.answers(
        "production", release={}, airgap={"enabled": True, "bundle": str(release_bundle)}
    )
    out = tmp_path / "rendered"
    run = install.run(
        "plan", "--answers", str(answers), "--out", str(out), env=_without_release_dirs(install)
    )
    assert run.exit_code == 0, run.describe()
    compose = (out / "docker-compose.yml").read_text()
    assert "codequal-test/standin:1" in compose and "codequal-test/postgres:1" in compose
