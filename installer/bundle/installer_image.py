"""The installer image in a bundle, for hosts without Python 3.10.

The image (``codequal/installer:<version>``, made by ``packaging/build-installer-image``)
is saved with the release's images into ``images/``, so the layers it shares with them are
stored once. The launcher (``packaging/codequal-installer.sh``) loads it on a host whose
only tools are a POSIX shell, ``tar`` and ``docker``: an Engine older than 23 cannot read
zstd, so the bootstrap frame (a plain tar) also carries the *unpacker*, a root file system
with the ``zstd`` command and the libraries it links (no shell, a few MB), which the
launcher imports with ``docker import`` and runs with no network to decompress the bundle's
body into ``tar``. Both are bootstrap members, in ``SHA256SUMS`` like every other member::

    installer-image/reference    the image's reference, one line
    installer-image/unpack.tar   the unpacker's root file system (``/usr/bin/zstd``)

Every bundle carries the image: ``bundle create`` ships :func:`default_reference` (this
installer's own version) unless told another reference (``--installer-image REF``) or
none (``--no-installer-image``: a bundle for hosts with Python 3.10 or newer only).
:func:`check_ready` stops before anything is written when the image or ``zstd`` is not
on this machine.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from installer import __version__
from installer.bundle.format import INSTALLER_IMAGE_DIR
from installer.errors import PrerequisiteError, UsageError

REFERENCE_NAME = f"{INSTALLER_IMAGE_DIR}/reference"
UNPACKER_NAME = f"{INSTALLER_IMAGE_DIR}/unpack.tar"
UNPACKER_COMMAND = "/usr/bin/zstd"
REPOSITORY = "codequal/installer"
BUILD_COMMAND = "packaging/build-installer-image --wheelhouse DIR"
NO_IMAGE_HINT = "--no-installer-image for a bundle for hosts with Python 3.10+ only"


def default_reference() -> str:
    """The image every bundle carries by default: this installer's own version."""
    return f"{REPOSITORY}:{__version__}"


def _zstd_command(zstd: str | None = None) -> str:
    binary = zstd or shutil.which("zstd")
    if binary is None or not os.access(binary, os.X_OK):
        raise PrerequisiteError(
            "the zstd command is not installed on this machine: the bundle's launcher runs "
            "it (in a container) to load the installer image on hosts without Python",
            hint=f"install zstd (apt-get install zstd), or give {NO_IMAGE_HINT}",
        )
    return binary


def check_ready(reference: str, *, default: bool, client: Any) -> None:
    """Stop (exit 3) when ``reference`` is not in the Engine ``client`` talks to, or this
    machine has no ``zstd`` for the unpacker: checked before a bundle is written.

    ``default``: the reference is :func:`default_reference`, not one the operator named.
    """
    import docker

    from installer.engine.docker import docker_unavailable, sdk_errors

    _zstd_command()
    try:
        client.images.get(reference)
    except docker.errors.ImageNotFound as e:
        if default:
            raise PrerequisiteError(
                f"the installer image {reference} is not in the local Docker Engine: every "
                "bundle carries it, for hosts without Python 3.10",
                hint=f"build it with `{BUILD_COMMAND}` (or load it), or give {NO_IMAGE_HINT}",
            ) from e
        raise PrerequisiteError(
            f"the installer image {reference} (--installer-image) is not in the local Docker "
            "Engine",
            hint=f"build it with `{BUILD_COMMAND} --tag {reference}`, pull or load it, "
            "or name another with --installer-image",
        ) from e
    except docker.errors.APIError as e:
        raise PrerequisiteError(f"cannot look up the installer image {reference}: {e}") from e
    except sdk_errors() as e:
        raise docker_unavailable(f"cannot look up the installer image {reference}", e) from e


def _linked_libraries(binary: str) -> list[str]:
    """The shared libraries ``binary`` loads, as ``ldd`` resolves them (absolute paths)."""
    try:
        listing = subprocess.run(
            ["ldd", binary], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UsageError(
            f"cannot list the libraries of {binary}: {e}",
            hint="install ldd (libc-bin) to ship the installer image, or give --no-installer-image",
        ) from e
    if listing.returncode != 0 and "not a dynamic executable" in listing.stderr + listing.stdout:
        return []
    if listing.returncode != 0:
        raise UsageError(f"ldd {binary} failed: {listing.stderr.strip() or listing.stdout.strip()}")
    found: list[str] = []
    for line in listing.stdout.splitlines():
        words = line.split()
        # "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or "/lib64/ld-linux... (0x...)"
        path = words[2] if len(words) >= 3 and words[1] == "=>" else words[0] if words else ""
        if path.startswith("/"):
            found.append(path)
    return found


def unpacker_rootfs(zstd: str | None = None) -> bytes:
    """A tar of a root file system holding this machine's ``zstd`` command and its libraries
    (each at the path it is loaded from): what ``docker import`` turns into the unpacker."""
    binary = _zstd_command(zstd)
    files = {UNPACKER_COMMAND: os.path.realpath(binary)}
    for library in _linked_libraries(binary):
        files[library] = os.path.realpath(library)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        directories: set[str] = set()
        for name in sorted(files):
            parts = name.strip("/").split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                if directory not in directories:
                    directories.add(directory)
                    info = tarfile.TarInfo(directory)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            data = Path(files[name]).read_bytes()
            info = tarfile.TarInfo(name.strip("/"))
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("tmp")
        info.type, info.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(info)
    return buffer.getvalue()


def reference_text(reference: str) -> bytes:
    return f"{reference}\n".encode()
