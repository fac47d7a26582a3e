"""Shared by the bundle integration tests: small images of our own, a cached wheelhouse,
and a release manifest that names them.

The images are ours alone (``cqbundle-test/*``), so the tests may remove and load them
without touching the images other tests use. ``base`` is busybox imported from a tar;
``app`` and ``tool`` are built FROM it, so they share its layer.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.images import cache_dir

BASE = "cqbundle-test/base:1"
APP = "cqbundle-test/app:1"
TOOL = "cqbundle-test/tool:1"
ROOT = Path(__file__).resolve().parents[2]


def _busybox_rootfs() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        binary = Path("/bin/busybox").read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(binary), 0o755
        tar.addfile(info, io.BytesIO(binary))
        for applet in ("sh", "cat", "ls", "sleep", "wget", "true"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    return buffer.getvalue()


def _build(client: Any, reference: str, content: str) -> None:
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        dockerfile = f'FROM {BASE}\nCOPY content /content\nCMD ["sleep", "3600"]\n'.encode()
        for name, data in (("Dockerfile", dockerfile), ("content", content.encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=reference, rm=True)


def ensure_bundle_images(client: Any) -> dict[str, str]:
    """The three images (built when missing); reference -> image ID."""
    import docker

    with _lock("images"):
        try:
            client.images.get(BASE)
        except docker.errors.ImageNotFound:
            client.api.import_image_from_data(
                _busybox_rootfs(), repository=BASE.split(":", maxsplit=1)[0], tag="1"
            )
        for reference, content in ((APP, "app\n"), (TOOL, "tool\n")):
            try:
                client.images.get(reference)
            except docker.errors.ImageNotFound:
                _build(client, reference, content)
        return {ref: client.images.get(ref).id for ref in (BASE, APP, TOOL)}


def release_file(directory: Path, version: str, *, with_base: bool) -> Path:
    """A release manifest over our images: app and tool, plus base when asked."""
    services = {
        "codequal": APP,
        "deepwiki": TOOL,
        **({"nginx": BASE} if with_base else {}),
    }
    lines = [f"name: codequal\nversion: {version}\nservices:\n"]
    for service, image in services.items():
        role = "proxy" if service == "nginx" else "app"
        lines.append(f"  {service}:\n    image: {image}\n    role: {role}\n")
    lines.append(
        "routes:\n  - {path: /, service: codequal, port: 3000, health_path: /health}\n"
        'migration:\n  service: codequal\n  command: ["true"]\n  schema_version: "1"\n'
    )
    path = directory / f"{version}.yaml"
    path.write_text("".join(lines))
    return path


@contextmanager
def _lock(name: str) -> Iterator[None]:
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _source_digest() -> str:
    digest = hashlib.sha256()
    paths = [ROOT / "pyproject.toml", ROOT / "packaging" / "codequal-installer.sh"]
    for package in ("installer", "templates"):
        paths += sorted(
            p for p in (ROOT / package).rglob("*") if p.is_file() and "__pycache__" not in p.parts
        )
    for path in paths:
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def cached_wheelhouse() -> Path:
    """The wheelhouse of this source tree (pip, from PyPI), cached by its content."""
    from installer.bundle.wheelhouse import build_wheelhouse

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    target = cache_dir() / f"wheelhouse-py{version}-{_source_digest()}"
    with _lock("wheelhouse"):
        if not (target / ".complete").exists():
            partial = target.with_name(target.name + f".{os.getpid()}.partial")
            build_wheelhouse(partial, [version])
            (partial / ".complete").write_text("")
            partial.rename(target)
            for stale in cache_dir().glob(f"wheelhouse-py{version}-*"):
                if stale != target and not stale.name.endswith(".partial"):
                    import shutil

                    shutil.rmtree(stale, ignore_errors=True)
    return target
