"""The installer image and a Debian 11 root file system for the tests, built here, cached.

    codequal/installer:<version>   packaging/build-installer-image from this tree's wheelhouse
                                   on the suite's debootstrap Debian base (tests/support/images)
    debian-bullseye-<hash>.tar.zst a debootstrap-made Debian 11 (Python 3.9) root file system,
                                   cached under $CODEQUAL_TEST_CACHE like the bookworm base

The image carries the hash of its inputs (script, wheels, base, docker and Compose binaries)
in ``org.codequal.test.inputs`` and is built again only when they change.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from installer import __version__
from tests.support.images import (
    INPUTS_LABEL,
    ImageBuildError,
    _build_lock,
    _debian_architecture,
    _digest,
    _docker_client,
    _label_of,
    _remove_tree,
    _unmount_below,
    base_reference,
    cache_dir,
    debian_mirror,
    ensure_test_images,
)

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "packaging" / "build-installer-image"
INSTALLER_IMAGE = f"codequal/installer:{__version__}"
BULLSEYE_PACKAGES = ("python3", "ca-certificates")


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def compose_plugin() -> Path:
    for directory in ("/usr/local/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins"):
        candidate = Path(directory) / "docker-compose"
        if os.access(candidate, os.X_OK):
            return candidate.resolve()
    raise ImageBuildError("no Compose v2 plugin on this machine to copy into the installer image")


def ensure_installer_image(wheelhouse: Path) -> str:
    """``codequal/installer:<version>`` built from ``wheelhouse`` (when its inputs changed)."""
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        raise ImageBuildError("no docker command to copy into the installer image")
    ensure_test_images(["codequal-test/standin:1"])  # the Debian base under it
    base = base_reference()
    compose = compose_plugin()
    inputs = _digest(
        "installer-image",
        BUILD_SCRIPT.read_bytes(),
        base,
        *(f"{p.name}:{_file_digest(p)}" for p in sorted(wheelhouse.glob("*.whl"))),
        _file_digest(Path(docker_cli).resolve()),
        _file_digest(compose),
    )
    client = _docker_client()
    with _build_lock():
        if _label_of(client, INSTALLER_IMAGE) == inputs:
            return INSTALLER_IMAGE
        command = [
            str(BUILD_SCRIPT), "--wheelhouse", str(wheelhouse), "--base", base,
            "--tag", INSTALLER_IMAGE, "--docker", docker_cli, "--compose", str(compose),
            "--", "--label", f"{INPUTS_LABEL}={inputs}",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            raise ImageBuildError(f"build-installer-image failed:\n{done.stderr[-3000:]}")
    return INSTALLER_IMAGE


def bullseye_tarball() -> Path:
    """A zstd tarball of a Debian 11 minbase root file system with python3 (3.9), cached."""
    inputs = _digest("bullseye", "minbase", _debian_architecture(), ",".join(BULLSEYE_PACKAGES))
    target = cache_dir() / f"debian-bullseye-{inputs[:16]}.tar.zst"
    with _build_lock():
        if target.is_file():
            return target
        if shutil.which("debootstrap") is None:
            raise ImageBuildError("debootstrap is not installed (apt-get install debootstrap)")
        work = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=target.parent))
        root = work / "root"
        try:
            command = [
                "debootstrap", "--variant=minbase", f"--arch={_debian_architecture()}",
                f"--include={','.join(BULLSEYE_PACKAGES)}", "bullseye", str(root),
                debian_mirror(),
            ]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
                raise ImageBuildError(f"debootstrap bullseye failed:\n{tail}")
            _unmount_below(root)
            subprocess.run(
                ["sh", "-c", "rm -rf var/cache/apt/archives/*.deb var/lib/apt/lists/* "
                 "usr/share/doc/* usr/share/man/* usr/share/locale/*"],
                cwd=root, check=True,
            )  # fmt: skip
            partial = target.with_suffix(".partial")
            subprocess.run(
                ["tar", "--zstd", "--numeric-owner", "-C", str(root), "--exclude=./proc/*",
                 "--exclude=./sys/*", "--exclude=./dev/*", "-cf", str(partial), "."],
                check=True,
            )  # fmt: skip
            partial.rename(target)
        finally:
            _remove_tree(work)
    return target


def unpack_rootfs(tarball: Path, into: Path) -> Path:
    """The root file system extracted into ``into`` (a fresh directory), with the docker
    command of this machine in /usr/local/bin (Debian 11's own docker.io is not installed:
    no network)."""
    into.mkdir(parents=True)
    subprocess.run(["tar", "--zstd", "-xpf", str(tarball), "-C", str(into)], check=True)
    docker_cli = shutil.which("docker")
    assert docker_cli is not None
    shutil.copy2(docker_cli, into / "usr" / "local" / "bin" / "docker")
    return into
