"""The test images, built on this machine (no registry can be reached), cached.

    codequal-test/busybox:1        Debian's busybox-static, imported (a tiny stand-in)
    codequal-test/debian:bookworm-<hash>
                                   a debootstrap-made Debian root file system (nginx, PostgreSQL,
                                   Python with psycopg2, wget), imported; the base of the rest
    codequal-test/standin:1, :2, :unhealthy
                                   tests/images/standin: stand-in for codequal and deepwiki
    codequal-test/postgres:1       PostgreSQL with the official image's contract
    codequal-test/nginx:1          nginx reading /etc/nginx/conf.d/*.conf, in the foreground

Every image carries the hash of its build inputs in the label ``org.codequal.test.inputs``
(the base image in its tag too); an image whose label matches is not built again. The
debootstrap tarball is cached under ``$CODEQUAL_TEST_CACHE`` (default
``~/.cache/codequal-installer-tests``), so a machine whose Docker images were removed
imports it again instead of running debootstrap.

By hand: ``python -m tests.support.images [--force] [--only NAME ...]``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IMAGES_DIR = Path(__file__).resolve().parent.parent / "images"
INPUTS_LABEL = "org.codequal.test.inputs"
# Bump when the way images are made changes in a way the hashed inputs do not show.
RECIPE_REVISION = "1"

BUSYBOX = "codequal-test/busybox:1"
STANDIN_1 = "codequal-test/standin:1"
STANDIN_2 = "codequal-test/standin:2"
STANDIN_UNHEALTHY = "codequal-test/standin:unhealthy"
POSTGRES = "codequal-test/postgres:1"
NGINX = "codequal-test/nginx:1"
BASE_REPOSITORY = "codequal-test/debian"

DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = (
    "ca-certificates",
    "nginx",
    "postgresql",
    "python3",
    "python3-psycopg2",
    "wget",
)
# Run on the debootstrapped tree before it is packed: the apt caches, documentation and the
# cluster that postgresql-common's postinst creates are dead weight in a test image.
BASE_TRIM = """
set -eu
rm -rf var/cache/apt/archives/*.deb var/cache/apt/*.bin var/lib/apt/lists/*
rm -rf usr/share/doc/* usr/share/man/* usr/share/info/* usr/share/locale/*
rm -rf etc/postgresql/*/main var/lib/postgresql/*/main
rm -f etc/nginx/sites-enabled/default
: > etc/resolv.conf
echo codequal-test > etc/hostname
"""

Log = Callable[[str], None]


def _stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ServiceImage:
    """An image built with ``docker build`` from a directory under tests/images/."""

    reference: str
    context: str
    build_args: dict[str, str] = field(default_factory=dict)


SERVICE_IMAGES: tuple[ServiceImage, ...] = (
    ServiceImage(STANDIN_1, "standin", {"STANDIN_VERSION": "1.0.0-test"}),
    ServiceImage(STANDIN_2, "standin", {"STANDIN_VERSION": "2.0.0-test"}),
    ServiceImage(
        STANDIN_UNHEALTHY,
        "standin",
        {"STANDIN_VERSION": "2.0.0-broken", "STANDIN_HEALTHY": "false"},
    ),
    ServiceImage(POSTGRES, "postgres"),
    ServiceImage(NGINX, "nginx"),
)
ALL_IMAGES: tuple[str, ...] = (BUSYBOX, *(image.reference for image in SERVICE_IMAGES))


class ImageBuildError(RuntimeError):
    """A test image could not be built; the message says which and why."""


@dataclass
class BuildReport:
    """What ``ensure_test_images`` did: every reference, and which were (re)built."""

    references: dict[str, str] = field(default_factory=dict)  # reference -> image id
    built: list[str] = field(default_factory=list)
    seconds: float = 0.0


def cache_dir() -> Path:
    explicit = os.environ.get("CODEQUAL_TEST_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "codequal-installer-tests"


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def _tree_digest(directory: Path) -> str:
    """Hash of every file's relative path, mode bit for execute, and content."""
    parts: list[str | bytes] = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts:
            continue
        parts += [
            str(path.relative_to(directory)),
            str(os.access(path, os.X_OK)),
            path.read_bytes(),
        ]
    return _digest(*parts)


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """Serialises builds between concurrent pytest sessions on one machine."""
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _docker_client() -> Any:
    import docker

    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except docker.errors.DockerException as e:
        raise ImageBuildError(f"no Docker Engine answers: {e}") from e
    return client


def _label_of(client: Any, reference: str) -> str | None:
    import docker

    try:
        image = client.images.get(reference)
    except docker.errors.ImageNotFound:
        return None
    labels = image.attrs.get("Config", {}).get("Labels") or {}
    value = labels.get(INPUTS_LABEL)
    return str(value) if value is not None else None


def _image_id(client: Any, reference: str) -> str:
    return str(client.images.get(reference).id)


def _docker_import(tar_stream: Any, reference: str, changes: list[str]) -> None:
    """``docker import`` from a byte stream (file object) with ``--change`` instructions."""
    command = ["docker", "import"]
    for change in changes:
        command += ["--change", change]
    command += ["-", reference]
    result = subprocess.run(command, stdin=tar_stream, capture_output=True, text=False, check=False)
    if result.returncode != 0:
        raise ImageBuildError(
            f"docker import {reference} failed: {result.stderr.decode(errors='replace').strip()}"
        )


# --- busybox -------------------------------------------------------------------------------


def _busybox_binary() -> Path:
    """Debian's static busybox (a dynamic one would not run in an empty image)."""
    listing = subprocess.run(
        ["dpkg", "-L", "busybox-static"], capture_output=True, text=True, check=False
    )
    for line in listing.stdout.splitlines():
        if line.endswith("/bin/busybox") and Path(line).is_file():
            return Path(line)
    raise ImageBuildError("busybox-static is not installed (apt-get install busybox-static)")


def _busybox_tar(binary: Path) -> bytes:
    applets = subprocess.run(
        [str(binary), "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        for directory in (
            "bin",
            "sbin",
            "usr",
            "usr/bin",
            "usr/sbin",
            "etc",
            "root",
            "var",
            "var/run",
        ):
            add_dir(directory)
        add_dir("tmp", 0o1777)
        add_file("bin/busybox", binary.read_bytes(), 0o755)
        for applet in sorted(set(applets)):
            if applet == "bin/busybox":
                continue
            info = tarfile.TarInfo(applet)
            info.type, info.linkname = tarfile.SYMTYPE, "/bin/busybox"
            tar.addfile(info)
        add_file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    return buffer.getvalue()


def _ensure_busybox(client: Any, force: bool, log: Log) -> bool:
    binary = _busybox_binary()
    inputs = _digest(RECIPE_REVISION, "busybox", binary.read_bytes())
    if not force and _label_of(client, BUSYBOX) == inputs:
        return False
    log(f"building {BUSYBOX} from {binary}")
    with tempfile.TemporaryFile() as stream:
        stream.write(_busybox_tar(binary))
        stream.seek(0)
        _docker_import(stream, BUSYBOX, ['CMD ["/bin/sh"]', f"LABEL {INPUTS_LABEL}={inputs}"])
    return True


# --- the Debian base -------------------------------------------------------------------------


def debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt uses; deb.debian.org when it uses none.

    CODEQUAL_TEST_DEBIAN_MIRROR overrides it. Reads both the one-line (sources.list) and the
    deb822 (*.sources) forms; skips security and third-party repositories.
    """
    override = os.environ.get("CODEQUAL_TEST_DEBIAN_MIRROR")
    if override:
        return override
    candidates: list[str] = []
    parts = apt_dir / "sources.list.d"
    for path in sorted(parts.glob("*.sources")) if parts.is_dir() else []:
        for line in path.read_text(errors="replace").splitlines():
            if line.strip().lower().startswith("uris:"):
                candidates += line.split(":", 1)[1].split()
    one_line = [apt_dir / "sources.list", *(sorted(parts.glob("*.list")) if parts.is_dir() else [])]
    for path in one_line:
        if path.is_file():
            for line in path.read_text(errors="replace").splitlines():
                words = line.split("#", 1)[0].split()
                if words and words[0] == "deb":
                    candidates += [w for w in words[1:] if "://" in w][:1]
    for uri in candidates:
        stripped = uri.rstrip("/")
        if stripped.endswith("/debian") and "security" not in stripped:
            return stripped
    return "http://deb.debian.org/debian"


def _debian_architecture() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _base_inputs() -> str:
    return _digest(
        RECIPE_REVISION,
        "debian",
        DEBIAN_SUITE,
        "minbase",
        _debian_architecture(),
        ",".join(sorted(DEBIAN_PACKAGES)),
        BASE_TRIM,
    )


def base_reference() -> str:
    return f"{BASE_REPOSITORY}:{DEBIAN_SUITE}-{_base_inputs()[:16]}"


def _unmount_below(root: Path) -> None:
    """Unmount what a failed debootstrap left mounted inside ``root`` (/proc, /sys, ...)."""
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False)


def _remove_tree(root: Path) -> None:
    if root.exists():
        _unmount_below(root)
        subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=False)


def _debootstrap_tarball(target: Path, log: Log) -> None:
    """Run debootstrap and pack the tree as a zstd tarball at ``target``."""
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("debootstrap is not installed (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise ImageBuildError("debootstrap needs root")
    mirror = debian_mirror()
    target.parent.mkdir(parents=True, exist_ok=True)
    # Trees left by a run that was killed (callers hold the build lock: none is in use).
    for stale in target.parent.glob("debootstrap-*"):
        _remove_tree(stale)
    work = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=target.parent))
    root = work / "root"
    try:
        command = [
            "debootstrap",
            "--variant=minbase",
            f"--arch={_debian_architecture()}",
            f"--include={','.join(DEBIAN_PACKAGES)}",
            DEBIAN_SUITE,
            str(root),
            mirror,
        ]
        log(f"running {' '.join(command)}")
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            log_file = root / "debootstrap" / "debootstrap.log"
            if log_file.is_file():
                tail += "\n" + "\n".join(log_file.read_text(errors="replace").splitlines()[-15:])
            raise ImageBuildError(f"debootstrap failed (exit {result.returncode}):\n{tail}")
        log(f"debootstrap done in {time.monotonic() - started:.0f}s; packing")
        _unmount_below(root)
        subprocess.run(["sh", "-c", BASE_TRIM], cwd=root, check=True)
        partial = target.with_suffix(".partial")
        subprocess.run(
            [
                "tar",
                "--zstd",
                "--numeric-owner",
                "--xattrs",
                "-C",
                str(root),
                "--exclude=./proc/*",
                "--exclude=./sys/*",
                "--exclude=./dev/*",
                "-cf",
                str(partial),
                ".",
            ],
            check=True,
        )
        partial.rename(target)
    finally:
        _remove_tree(work)


class _UnreadableTarball(Exception):
    """The cached tarball cannot be decompressed (truncated, corrupted)."""


def _import_tarball(tarball: Path, reference: str, inputs: str, log: Log) -> None:
    """Import under a temporary tag, and give it ``reference`` only once the whole tarball was
    read: a truncated stream still imports (as a partial image) and must not pass for the base.
    """
    log(f"importing {reference}")
    importing = f"{reference}-importing"
    import_error: ImageBuildError | None = None
    with subprocess.Popen(["zstd", "-qdc", str(tarball)], stdout=subprocess.PIPE) as unzstd:
        try:
            _docker_import(
                unzstd.stdout,
                importing,
                [
                    f"LABEL {INPUTS_LABEL}={inputs}",
                    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "ENV LANG=C.UTF-8",
                    'CMD ["/bin/bash"]',
                ],
            )
        except ImageBuildError as e:
            import_error = e
    try:
        if unzstd.returncode != 0:
            raise _UnreadableTarball(str(tarball))
        if import_error is not None:
            raise import_error
        subprocess.run(["docker", "tag", importing, reference], check=True, capture_output=True)
    finally:
        subprocess.run(["docker", "rmi", importing], check=False, capture_output=True)


def _ensure_base(client: Any, force: bool, log: Log) -> tuple[str, bool]:
    inputs = _base_inputs()
    reference = base_reference()
    if not force and _label_of(client, reference) == inputs:
        return reference, False
    tarball = cache_dir() / f"debian-{DEBIAN_SUITE}-{inputs[:16]}.tar.zst"
    if force or not tarball.is_file():
        _debootstrap_tarball(tarball, log)
    else:
        log(f"using cached {tarball}")
    try:
        _import_tarball(tarball, reference, inputs, log)
    except _UnreadableTarball:
        log(f"{tarball} is unreadable; making it again")
        tarball.unlink(missing_ok=True)
        _debootstrap_tarball(tarball, log)
        _import_tarball(tarball, reference, inputs, log)
    return reference, True


# --- service images ------------------------------------------------------------------------


def _service_inputs(image: ServiceImage, base_inputs: str) -> str:
    args = json.dumps(image.build_args, sort_keys=True)
    return _digest(
        RECIPE_REVISION, base_inputs, image.context, _tree_digest(IMAGES_DIR / image.context), args
    )


def _build_service(client: Any, image: ServiceImage, base: str, inputs: str, log: Log) -> None:
    import docker

    log(f"building {image.reference}")
    try:
        client.images.build(
            path=str(IMAGES_DIR / image.context),
            tag=image.reference,
            buildargs={"BASE": base, **image.build_args},
            labels={INPUTS_LABEL: inputs},
            pull=False,
            rm=True,
            forcerm=True,
            # No build step needs the network (nothing is downloaded); without one a build
            # does not depend on the Engine's default bridge.
            network_mode="none",
        )
    except docker.errors.BuildError as e:
        lines = [str(chunk.get("stream", chunk.get("error", ""))).rstrip() for chunk in e.build_log]
        tail = "\n".join(line for line in lines if line)[-3000:]
        raise ImageBuildError(f"docker build {image.reference} failed: {e}\n{tail}") from e
    except docker.errors.APIError as e:
        raise ImageBuildError(f"docker build {image.reference} failed: {e}") from e


def ensure_test_images(
    names: tuple[str, ...] | list[str] | None = None,
    *,
    force: bool = False,
    log: Log = _stderr_log,
) -> BuildReport:
    """Make sure the test images exist and are current; build what is missing or stale."""
    started = time.monotonic()
    wanted = set(names or ALL_IMAGES)
    unknown = wanted - set(ALL_IMAGES)
    if unknown:
        raise ImageBuildError(f"unknown test image(s): {', '.join(sorted(unknown))}")
    report = BuildReport()
    client = _docker_client()
    with _build_lock():
        if BUSYBOX in wanted and _ensure_busybox(client, force, log):
            report.built.append(BUSYBOX)
        services = [image for image in SERVICE_IMAGES if image.reference in wanted]
        base_inputs = _base_inputs()
        inputs = {image.reference: _service_inputs(image, base_inputs) for image in services}
        stale = [
            image
            for image in services
            if force or _label_of(client, image.reference) != inputs[image.reference]
        ]
        if stale:
            base, base_built = _ensure_base(client, force, log)
            if base_built:
                report.built.append(base)
            for image in stale:
                _build_service(client, image, base, inputs[image.reference], log)
                report.built.append(image.reference)
        for reference in sorted(wanted):
            report.references[reference] = _image_id(client, reference)
    report.seconds = time.monotonic() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.images",
        description="Build (or confirm cached) the locally made test images.",
    )
    parser.add_argument("--force", action="store_true", help="rebuild everything, debootstrap too")
    parser.add_argument(
        "--only", nargs="+", metavar="REFERENCE", choices=ALL_IMAGES, help="build only these images"
    )
    parser.add_argument("--list", action="store_true", help="print the image references and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(ALL_IMAGES))
        return 0
    try:
        report = ensure_test_images(args.only, force=args.force)
    except ImageBuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for reference, image_id in sorted(report.references.items()):
        state = "built" if reference in report.built else "cached"
        print(f"{reference:40} {image_id[:19]}  {state}")
    print(f"test images ready in {report.seconds:.1f}s ({len(report.built)} built)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
