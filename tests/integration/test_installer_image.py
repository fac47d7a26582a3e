"""Issue 18: the installer image, for hosts without Python 3.10.

A Debian 11 root file system (debootstrap, Python 3.9; or with no python3 at all) with its
own ``docker`` command and the Engine's socket, in a network namespace with no network
(``unshare -n``), stands in for such a host: the bundle's launcher loads the installer
image from the bundle (once) and installs from it. The Engine is a second ``dockerd`` that
starts with no image and sends any registry request to a trap that counts them.

``check`` through the image reports the host: CPU count, memory, the free space of the
install directory's file system (a small tmpfs here), the host's ``/etc/os-release`` (a
file of the test's own, mounted where the launcher mounts the host's), and a port taken on
the host names the holder's PID.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from installer import __version__
from tests.integration.apply_support import Install, host_ports_lock, parse_events
from tests.integration.bundle_support import cached_wheelhouse, isolated_engine
from tests.support import TEST_RELEASES_DIR
from tests.support.installer_image import (
    INSTALLER_IMAGE,
    bullseye_tarball,
    ensure_installer_image,
    unpack_rootfs,
)
from tests.unit.cli_helpers import run_cli

pytestmark = pytest.mark.integration

RELEASE = "1.0.0-test"
API_KEY = "sk-ant-image-0123456789abcdefghij"
LIMIT = 60 * 1000 * 1000  # acceptance 6: what the image may add to a bundle
ROOTFS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Runs as root in a mount namespace of its own: the shared directories at the same paths in
# the root file system, its /dev and /proc, then chroot (argv after the root: the command).
_ENTER_ROOTFS = """
set -e
root=$1
shift
old_ifs=$IFS
IFS='
'
for path in $SHARED; do
	mkdir -p "$root$path"
	mount --bind "$path" "$root$path"
done
IFS=$old_ifs
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
exec chroot "$root" "$@"
"""


def in_rootfs(
    rootfs: Path, command: str, *, shared: list[Path], env: dict[str, str], timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """``command`` (sh) in ``rootfs``, with no network, with only ``env`` (and PATH, HOME)."""
    variables = {"PATH": ROOTFS_PATH, "HOME": "/root", "LANG": "C.UTF-8", **env}
    argv = [
        "unshare", "--mount", "--net", "sh", "-c", _ENTER_ROOTFS, "sh", str(rootfs),
        "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in variables.items()), "sh", "-c", command,
    ]  # fmt: skip
    return subprocess.run(
        argv,
        env={"PATH": os.environ["PATH"], "SHARED": "\n".join(str(p) for p in shared)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This tree's wheelhouse, copied (the shared cache makes way for other trees')."""
    copy = tmp_path_factory.mktemp("wheelhouse")
    for _attempt in range(3):
        try:
            for wheel in cached_wheelhouse().glob("*.whl"):
                shutil.copy2(wheel, copy / wheel.name)
            return copy
        except FileNotFoundError:
            for partial in copy.iterdir():
                partial.unlink()
    pytest.fail("the cached wheelhouse kept being replaced while it was copied")


@pytest.fixture(scope="module")
def installer_image(wheelhouse: Path, docker_engine: Any) -> str:
    return ensure_installer_image(wheelhouse)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("keys")
    result = run_cli("bundle", "keygen", "--out", str(directory / "signer"))
    assert result.exit_code == 0, result.output
    return {"private": directory / "signer.key", "public": directory / "signer.pub"}


def _create(out: Path, wheelhouse: Path, keys: dict[str, Path], *extra: str) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CODEQUAL_RELEASES_DIR", str(TEST_RELEASES_DIR))
        result = run_cli(
            "bundle", "create", "--release", RELEASE, "--out", str(out),
            "--wheelhouse", str(wheelhouse), "--sign-key", str(keys["private"]), *extra,
        )  # fmt: skip
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def bundle(
    tmp_path_factory: pytest.TempPathFactory,
    test_images: Any,
    installer_image: str,
    wheelhouse: Path,
    keys: dict[str, Path],
) -> Path:
    """The signed production bundle of the test release: the installer image is in it by
    default (no flag), as in every bundle."""
    assert installer_image == INSTALLER_IMAGE  # the default: the installer's own version
    out = tmp_path_factory.mktemp("image-bundle") / f"codequal-{RELEASE}.bundle"
    _create(out, wheelhouse, keys)
    return out


@pytest.fixture(scope="module")
def rootfs_tarball() -> Path:
    return bullseye_tarball()


def _healthy(install: Install) -> dict[str, str]:
    return {
        c.labels["com.docker.compose.service"]: c.attrs["State"].get("Health", {}).get("Status")
        for c in install.containers()
        if c.labels.get("com.docker.compose.oneoff") != "True"
        and c.attrs["State"]["Status"] == "running"
    }


def test_the_installer_image_adds_at_most_60_mb_and_verify_covers_it(
    bundle: Path, wheelhouse: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    without = tmp_path / f"codequal-{RELEASE}-without.bundle"
    _create(without, wheelhouse, keys, "--no-installer-image")
    added = bundle.stat().st_size - without.stat().st_size
    assert 0 < added <= LIMIT, f"the installer image adds {added / 1e6:.1f} MB"

    inspected = run_cli("bundle", "inspect", str(bundle), "--json")
    assert inspected.exit_code == 0, inspected.output
    images = json.loads(inspected.output)["images"]
    assert INSTALLER_IMAGE in json.dumps(images)
    left_out = run_cli("bundle", "inspect", str(without), "--json")
    assert left_out.exit_code == 0, left_out.output
    assert INSTALLER_IMAGE not in left_out.output  # --no-installer-image: not in images/
    bootstrap = subprocess.run(
        ["sh", "-c", f'tail -c +9 "{without}" | tar t'], capture_output=True, text=True, check=True
    ).stdout
    assert "codequal-installer\n" in bootstrap, bootstrap  # the bootstrap was read
    assert "installer-image/" not in bootstrap  # nor its bootstrap members
    # Every member the launcher reads is in the signed checksum list.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    subprocess.run(["sh", "-c", f'zstd -dc "{bundle}" | tar x'], cwd=fresh, check=True)
    subprocess.run(["sh", "-c", f'tail -c +9 "{bundle}" | tar x'], cwd=fresh, check=True)
    sums = (fresh / "SHA256SUMS").read_text()
    assert "  installer-image/unpack.tar\n" in sums and "  installer-image/reference\n" in sums
    checked = subprocess.run(
        ["sha256sum", "--strict", "-c", "SHA256SUMS"],
        cwd=fresh, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout[-2000:]
    # A changed byte in the unpacker is named by verify (exit 4), as for any member.
    data = bytearray(bundle.read_bytes())
    offset = data.index(b"installer-image/unpack.tar\0") + 512 + 4096  # inside its data
    data[offset] ^= 0x01
    damaged = tmp_path / "damaged.bundle"
    damaged.write_bytes(bytes(data))
    verified = run_cli("bundle", "verify", str(damaged), "--key", str(keys["public"]))
    assert verified.exit_code == 4, verified.output
    assert "installer-image/unpack.tar" in verified.output


def test_an_installer_image_missing_from_the_engine_stops_before_anything_is_written(
    docker_engine: Any, tmp_path: Path
) -> None:
    """The real Engine's answer (the default reference's message is in the unit tests)."""
    absent = f"codequal/installer:absent-{os.getpid()}"
    out, wheelhouse = tmp_path / "o.bundle", tmp_path / "wheelhouse"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CODEQUAL_RELEASES_DIR", str(TEST_RELEASES_DIR))
        result = run_cli(
            "bundle", "create", "--release", RELEASE, "--out", str(out),
            "--wheelhouse", str(wheelhouse), "--installer-image", absent,
        )  # fmt: skip
    assert result.exit_code == 3, result.output
    assert f"error: the installer image {absent} (--installer-image) is not in the local" in (
        result.stderr
    )
    assert "hint: build it with `packaging/build-installer-image" in result.stderr
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []  # no wheelhouse made, no bundle


@pytest.mark.host_ports
@pytest.mark.parametrize("python", ["python3.9", "no python3"])
def test_the_launcher_installs_from_the_bundle_through_the_installer_image(
    python: str,
    bundle: Path,
    keys: dict[str, Path],
    rootfs_tarball: Path,
    tmp_path: Path,
) -> None:
    import docker

    rootfs = unpack_rootfs(rootfs_tarball, tmp_path / "rootfs")
    if python == "no python3":
        for binary in (rootfs / "usr" / "bin").glob("python3*"):
            binary.unlink()
    work = tmp_path / "work"
    launcher = work / "codequal-installer"
    launcher.mkdir(parents=True)

    (tmp_path / "engine").mkdir()
    with isolated_engine(tmp_path / "engine") as engine:
        assert engine.client.images.list() == []
        socket_dir = Path(engine.host.removeprefix("unix://")).parent
        shared = [work, bundle.parent, keys["public"].parent, socket_dir]
        env = {"DOCKER_HOST": engine.host}
        found = in_rootfs(rootfs, "command -v python3; python3 --version", shared=shared, env=env)
        if python == "no python3":
            assert found.returncode != 0 and not found.stdout.strip(), found.stdout
        else:
            assert "Python 3.9" in found.stdout, found.stdout + found.stderr

        started = time.time()
        with host_ports_lock():
            install = Install(work, work / "install", engine.client)
            try:
                answers = install.answers("production")
                secrets = install.secrets_file(anthropic_api_key=API_KEY)
                command = (
                    f"cd {launcher} && tail -c +9 {bundle} | tar x && ./codequal-installer apply "
                    f"--answers {answers} --secrets {secrets} --bundle {bundle} "
                    f"--key {keys['public']} --yes --json"
                )
                done = in_rootfs(rootfs, command, shared=shared, env=env)
                install.transcripts += [done.stdout, done.stderr]
                assert done.returncode == 0, done.stderr[-4000:] + done.stdout[-4000:]
                path_lines = [
                    line for line in done.stderr.splitlines() if "codequal-installer: path:" in line
                ]
                assert path_lines == [
                    f"codequal-installer: path: installer image (codequal/installer:{__version__})"
                ]
                assert "loading the installer image" in done.stderr
                events = parse_events(done.stdout)
                checks = [e.get("message", "") for e in events if e.get("step") == "prerequisites"]
                assert any("signature valid" in m for m in checks), checks
                assert any("bundle verified" in m for m in checks), checks
                assert events[-1]["type"] == "run.finished" and events[-1]["exit_code"] == 0
                assert _healthy(install) == dict.fromkeys(
                    ("codequal", "deepwiki", "nginx", "postgres"), "healthy"
                )
                status, body = install.https_get("/health")
                assert status == 200 and body["version"] == RELEASE

                # Loaded once: the next run starts the image at once; exit codes pass through.
                again = in_rootfs(
                    rootfs, f"cd {launcher} && ./codequal-installer answers validate /nonexistent",
                    shared=shared, env=env,
                )  # fmt: skip
                assert "loading the installer image" not in again.stderr
                assert again.returncode == 2, again.stderr
                install.assert_no_secret_leaked()
            finally:
                install.teardown()
        finished = time.time()

        assert engine.client.images.get(INSTALLER_IMAGE)
        # The unpacker the launcher imported is gone again.
        assert not [
            tag
            for image in engine.client.images.list()
            for tag in image.tags
            if tag.startswith("codequal/installer-unpack")
        ]
        actions = [e.get("Action") for e in engine.image_events(started, finished)]
        assert "load" in actions and "pull" not in actions, actions
        assert engine.trap.connections == 0
        with pytest.raises(docker.errors.APIError):
            engine.client.images.pull("registry.codequal.test/none", tag="1")
        assert engine.trap.connections >= 1


# --- check through the image ----------------------------------------------------------------


@pytest.fixture
def small_install_dir(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs as the install directory: its free space is nothing like the image's."""
    mountpoint = tmp_path / "install"
    mountpoint.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mountpoint)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True, capture_output=True, timeout=30)


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port the development target needs, held by this process (as a server holds it)."""
    for _attempt in range(60):
        for port in (9090, 3001, 8002, 3000):
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                server.bind(("0.0.0.0", port))  # noqa: S104 - as a server holds it
            except OSError:
                server.close()
                continue
            server.listen()
            try:
                yield port
            finally:
                server.close()
            return
        time.sleep(5)
    pytest.skip("every port of the development target is taken by other tests")


def _checks(stdout: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in json.loads(stdout)["checks"]}


def _meminfo_total() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal")


def test_check_through_the_image_reports_the_host(
    installer_image: str, small_install_dir: Path, held_port: int, tmp_path: Path
) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text(f"version: 1\ntarget: development\ninstall_dir: {small_install_dir}\n")
    launcher = Path(__file__).resolve().parents[2] / "packaging" / "codequal-installer.sh"
    # The launcher, on the Engine's own host, with no usable Python: the image path.
    # Outside a bundle it runs CODEQUAL_INSTALLER_IMAGE (an online host: the Engine pulls it).
    env = {
        "PATH": os.environ["PATH"],
        "PYTHON": "/nonexistent/python3",
        "HOME": str(tmp_path),
        "CODEQUAL_INSTALLER_IMAGE": installer_image,
    }
    done = subprocess.run(
        ["sh", str(launcher), "check", "--answers", str(answers), "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert "codequal-installer: path: installer image" in done.stderr, done.stderr
    assert done.returncode == 3, done.stderr  # 2 CPUs here: the cpu check fails, as on the host
    checks = _checks(done.stdout)

    assert checks["cpu"]["details"]["logical"] == os.cpu_count()
    assert checks["memory"]["details"]["total_bytes"] == _meminfo_total()
    disk = checks["disk"]["details"]
    assert disk["measured_at"] == str(small_install_dir)
    assert 60 * 2**20 <= disk["free_bytes"] <= 64 * 2**20  # the tmpfs, not the image's disk
    host_os = dict(
        line.split("=", 1)
        for line in Path("/etc/os-release").read_text().splitlines()
        if "=" in line
    )
    assert checks["os"]["measured"] == host_os["PRETTY_NAME"].strip('"')
    ports = checks["ports"]
    assert ports["status"] == "fail"
    assert f"pid {os.getpid()}" in ports["measured"] and f"port {held_port}" in ports["measured"]
    assert {"port": held_port, "pid": os.getpid()}.items() <= next(
        item for item in ports["details"]["in_use"] if item["port"] == held_port
    ).items()

    # The image by hand, as the README shows: the OS is read from /host/etc/os-release ...
    os_release = tmp_path / "os-release"
    os_release.write_text('ID=ubuntu\nVERSION_ID="20.04"\nPRETTY_NAME="Ubuntu 20.04.6 LTS"\n')
    by_hand = [
        "docker", "run", "--rm", "--network", "host", "--pid", "host", "--cap-add", "SYS_PTRACE",
        "--log-driver", "none",
        "-v", "/var/run/docker.sock:/var/run/docker.sock",
        "-v", f"{small_install_dir}:{small_install_dir}", "-v", f"{answers}:{answers}:ro",
    ]  # fmt: skip
    arguments = [installer_image, "check", "--answers", str(answers), "--json"]
    mounted = subprocess.run(
        [*by_hand, "-v", f"{os_release}:/host/etc/os-release:ro", *arguments],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert _checks(mounted.stdout)["os"]["measured"] == "Ubuntu 20.04.6 LTS", mounted.stderr
    # ... and without it the report says the host's OS cannot be seen, not the image's.
    unmounted = subprocess.run(
        [*by_hand, *arguments], capture_output=True, text=True, timeout=300, check=False
    )
    os_check = _checks(unmounted.stdout)["os"]
    assert os_check["status"] == "warn" and os_check["measured"] == "unknown"
    assert "cannot be seen from inside the installer image" in os_check["hint"]
    # Without the host's process namespace the holder cannot be named: it says so.
    isolated = subprocess.run(
        [*by_hand[:5], *by_hand[7:], *arguments],  # by_hand less "--pid host"
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert "outside the installer image's view" in _checks(isolated.stdout)["ports"]["measured"]


# --- the wizard through the image -----------------------------------------------------------


def test_the_wizard_through_the_image_completes_a_development_install(
    installer_image: str, install: Install
) -> None:
    from tests.integration.test_wizard_tmux import FAILED, INSTALL_TIMEOUT, walk_to_install
    from tests.integration.tmux_terminal import tmux_terminal

    answers = install.answers("development")
    launcher = Path(__file__).resolve().parents[2] / "packaging" / "codequal-installer.sh"
    with tmux_terminal() as terminal:
        try:
            terminal.start(
                ["sh", str(launcher), "--answers", str(answers)],
                env={
                    "PYTHON": "/nonexistent/python3",  # no usable Python: the image path
                    "CODEQUAL_INSTALLER_IMAGE": installer_image,
                    "CODEQUAL_RELEASES_DIR": str(TEST_RELEASES_DIR),
                    "LANG": "C.UTF-8",
                },
                cwd=install.root,
            )
            walk_to_install(terminal)
            done = terminal.wait_for(
                "CodeQual is installed and running", INSTALL_TIMEOUT, fail_on=FAILED
            )
            assert "http://localhost:3000/" in done
            terminal.send("q")
            assert terminal.exit_code() == 0
            # Back on the normal screen: the launcher's line said which way it ran.
            assert f"path: installer image ({installer_image})" in terminal.capture()
        finally:
            install.transcripts += terminal.screens
    # Written by the installer in the image, at the host path the answers name.
    assert (install.install_dir / "docker-compose.yml").is_file()
    assert _healthy(install)["codequal"] == "healthy"
