"""The offline bundle: create, verify, inspect, extract, load into Docker, push to a registry.

The engine's entry points:

- :func:`installer.release.bundle_release` reads the release the bundle carries (what an
  install from it installs) from the tail alone.
- :func:`check_bundle_for_install` and :func:`load_images_into_docker` are a Compose
  install's: the whole bundle verified (and free disk checked) before anything is written,
  then the images streamed from the bundle into ``docker load`` (nothing extracted).
- :func:`open_bundle` verifies a bundle (parts, signature, every member) while extracting
  it with hardened extraction into a work directory, after checking free disk; it returns
  an :class:`OpenedBundle` whose ``load_images()`` streams the images into Docker and
  whose ``push_images()`` pushes them to ``registry.mirror`` (Kubernetes).
- :func:`verify_bundle` and :func:`inspect_bundle` back ``bundle verify`` and ``bundle inspect``.
- :func:`~installer.bundle.create.create_bundle` backs ``bundle create``.

Long operations take a ``progress`` callback (:class:`~installer.bundle.progress.TransferProgress`:
bytes done, total and rate). Integrity failures raise
:class:`~installer.errors.BundleIntegrityError` (exit 4).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from installer.bundle.format import (
    ANSWERS_NAME,
    IMAGES_DIR,
    RELEASE_NAME,
    BundleMetadata,
)
from installer.bundle.progress import ProgressCallback, TransferProgress
from installer.bundle.reader import BundleIndex, locate_bundle, read_index

T = TypeVar("T")

if TYPE_CHECKING:
    from installer.bundle.docker_load import LoadedImage
    from installer.bundle.registry import PushedImage, RegistryTarget
    from installer.release import ReleaseManifest

__all__ = [
    "BundleIndex",
    "BundleReport",
    "OpenedBundle",
    "ProgressCallback",
    "TransferProgress",
    "check_bundle_for_install",
    "check_install_space",
    "inspect_bundle",
    "load_images_into_docker",
    "open_bundle",
    "verify_bundle",
]


@dataclass(frozen=True)
class BundleReport:
    """What ``verify``/``inspect`` found: the index and the signature's status line."""

    index: BundleIndex
    signature: str
    verified: bool  # every member checked (verify), or only the index read (inspect)
    method: str = ""  # how verify checked the body: "body hash" or "member by member"

    @property
    def metadata(self) -> BundleMetadata:
        return self.index.metadata


def inspect_bundle(path: str | Path, *, key: Path | None = None) -> BundleReport:
    """Release, images, platform and signature status, from the footer and tail alone."""
    index = read_index(locate_bundle(path))
    return BundleReport(index, index.check_signature(key), verified=False)


def verify_bundle(
    path: str | Path,
    *,
    key: Path | None = None,
    progress: ProgressCallback | None = None,
    deep: bool = False,
) -> BundleReport:
    """Parts, signature, aggregate hash, then the body; raises naming every problem found.

    By default the body is checked with one sequential SHA-256 of every byte before the
    tail against the signed ``body_sha256`` (what ``sha256sum -c`` costs). When that
    differs, or with ``deep``, or for a bundle without a body hash, every member is read
    and checked against ``SHA256SUMS`` and the metadata, so that the damaged, missing or
    extra members are named. Raises :class:`~installer.errors.BundleIntegrityError`.
    """
    from installer.bundle.extract import check_index_paths
    from installer.bundle.reader import body_matches, iter_members
    from installer.errors import BundleIntegrityError

    source = locate_bundle(path)
    source.check_parts()
    index = read_index(source)
    signature = index.check_signature(key)
    check_index_paths(index)
    matched = None if deep else body_matches(index, progress=progress)
    if matched:
        return BundleReport(index, signature, verified=True, method="body hash")
    for _ in iter_members(index, fail_fast=False, progress=progress):
        pass
    if matched is False:
        # Every member is intact, yet bytes differ from what was signed (frame headers,
        # padding, the bootstrap's end): still not the bundle that was made.
        raise BundleIntegrityError(
            f"{source.display}: the bundle's bytes differ from its signed body hash, "
            "though every member's content matches",
            hint="copy the bundle again from the original",
        )
    return BundleReport(index, signature, verified=True, method="member by member")


@dataclass(frozen=True)
class OpenedBundle:
    """A verified bundle, extracted into ``root``."""

    index: BundleIndex
    root: Path
    signature: str
    images_extracted: bool

    @property
    def metadata(self) -> BundleMetadata:
        return self.index.metadata

    @property
    def release_path(self) -> Path:
        return self.root / RELEASE_NAME

    @property
    def answers_example_path(self) -> Path:
        return self.root / ANSWERS_NAME

    @property
    def images_dir(self) -> Path:
        return self.root / IMAGES_DIR

    def release(self) -> ReleaseManifest:
        from installer.release import load_release

        return load_release(str(self.release_path))

    def load_images(
        self, *, docker_client: Any = None, progress: ProgressCallback | None = None
    ) -> list[LoadedImage]:
        """Stream every image into Docker (from the extraction, or from the bundle)."""
        from installer.bundle.docker_load import load_images_into_docker

        return load_images_into_docker(
            self.index,
            extracted_root=self.root if self.images_extracted else None,
            docker_client=docker_client,
            progress=progress,
        )

    def push_images(
        self, target: RegistryTarget, *, progress: ProgressCallback | None = None
    ) -> list[PushedImage]:
        """Push every image to ``target`` (needs the images extracted)."""
        from installer.bundle.registry import push_images

        if not self.images_extracted:
            raise RuntimeError("open_bundle(..., extract_images=True) is needed to push")
        return push_images(target, self.root, self.metadata.images, progress=progress)


def open_bundle(
    path: str | Path,
    workdir: Path,
    *,
    key: Path | None = None,
    extract_images: bool = True,
    progress: ProgressCallback | None = None,
) -> OpenedBundle:
    """Check the parts and the signature, check free disk, then verify while extracting.

    ``workdir`` must be new or empty. With ``extract_images=False`` the images stay in the
    bundle and ``load_images()`` streams them from it (checking them again on the way).
    """
    from installer.bundle.extract import extract_bundle

    source = locate_bundle(path)
    source.check_parts()
    index = read_index(source)
    signature = index.check_signature(key)
    prefix = f"{IMAGES_DIR}/"
    extract_bundle(
        index,
        workdir,
        include=None if extract_images else (lambda name: not name.startswith(prefix)),
        progress=progress,
    )
    return OpenedBundle(index, workdir, signature, extract_images)


def _updates_of(work: Callable[[ProgressCallback], T], out: list[T]) -> Iterator[str | Any]:
    """Run ``work(progress)`` in a thread; yield its progress as the runner's ``Progress``.

    The bundle's readers call ``progress`` from their prefetch threads, so the updates go
    through a queue to the step's own thread. ``out`` receives the result.
    """
    import queue
    import threading

    from installer.runner import Progress

    updates: queue.Queue[Any] = queue.Queue()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            out.append(work(updates.put))
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            outcome.append(e)
        finally:
            updates.put(None)

    threading.Thread(target=run, name="bundle-work", daemon=True).start()
    while (update := updates.get()) is not None:
        if isinstance(update, TransferProgress):
            yield Progress(update.done, update.total, "bytes", update.describe())
        else:
            yield update
    if outcome:
        raise outcome[0]


def docker_root_dir(docker_client: Any = None) -> Path | None:
    """The Engine's data root, when it is a directory on this machine (else None)."""
    import docker
    import requests

    from installer.engine.docker import docker_client as engine_docker_client
    from installer.errors import InstallerError

    try:
        client = docker_client or engine_docker_client()
        root = client.info().get("DockerRootDir")
    except (InstallerError, docker.errors.DockerException, requests.RequestException, OSError):
        return None
    return Path(root) if root and Path(root).is_dir() else None


def check_install_space(
    index: BundleIndex, workdir_parent: Path | None, docker_root: Path | None
) -> list[str]:
    """Free disk against the bundle's recorded sizes, per file system; lines to show.

    An extraction needs the whole uncompressed stream (``uncompressed_size``) under
    ``workdir_parent`` (None: nothing is extracted); Docker stores the images
    (``images_size``) under its data root. On one file system the two add up. Raises
    :class:`PrerequisiteError` (exit 3) naming each short file system: nothing has been
    written yet.
    """
    import os
    import shutil

    from installer.bundle.extract import DISK_MARGIN
    from installer.errors import PrerequisiteError
    from installer.sizes import human_size

    def existing(path: Path) -> Path:
        while not path.exists() and path != path.parent:
            path = path.parent
        return path

    needs: dict[int, tuple[Path, int, list[str]]] = {}
    wanted: list[tuple[Path, int, str]] = []
    if workdir_parent is not None:
        wanted.append((workdir_parent, index.metadata.uncompressed_size, "extraction"))
    if docker_root is not None:
        wanted.append((docker_root, index.metadata.images_size, "Docker's images"))
    for path, size, what in wanted:
        probe = existing(path)
        device = os.stat(probe).st_dev
        first, total, whats = needs.get(device, (probe, DISK_MARGIN, []))
        needs[device] = (first, total + size, [*whats, f"{what} {human_size(size)} in {path}"])
    lines: list[str] = []
    short: list[str] = []
    for probe, needed, whats in needs.values():
        free = shutil.disk_usage(probe).free
        line = (
            f"{probe}: {human_size(free)} free, {human_size(needed)} needed "
            f"({'; '.join(whats)}; margin {human_size(DISK_MARGIN)})"
        )
        (short if free < needed else lines).append(line)
    if short:
        extraction = " or set TMPDIR to a larger file system for the extraction;"
        raise PrerequisiteError(
            "not enough free disk for the bundle: " + "; ".join(short),
            hint=f"free some space{',' + extraction if workdir_parent else ';'} "
            "nothing was written",
        )
    return lines


def check_bundle_for_install(
    bundle: Path,
    *,
    release_version: str,
    missing: Sequence[str],
    key: Path | None = None,
    docker_client: Any = None,
) -> Iterator[str | Any]:
    """``apply --bundle``'s prerequisites, read-only, before anything is written.

    The bundle must be intact (parts, signature when ``key`` is given, every byte), hold
    the release the answers install, and fit: free disk for Docker's images (streamed from
    the bundle: nothing is extracted) is checked against the recorded size when ``missing``
    images are to be loaded. Yields output lines and byte progress; raises
    ``BundleIntegrityError`` (exit 4), ``UsageError`` (exit 2, another release) or
    ``PrerequisiteError`` (exit 3, disk).
    """
    from installer.bundle.extract import check_index_paths
    from installer.errors import UsageError

    source = locate_bundle(bundle)
    source.check_parts()
    index = read_index(source)
    signature = index.check_signature(key)
    metadata = index.metadata
    yield f"bundle {source.display}: release {metadata.release_version}, {signature}"
    if metadata.release_version != release_version:
        raise UsageError(
            f"the bundle holds release {metadata.release_version}, the answers install "
            f"{release_version}",
            hint=f"set release.version: {metadata.release_version}, or give the bundle "
            f"of release {release_version}",
        )
    check_index_paths(index)
    reports: list[BundleReport] = []
    yield from _updates_of(
        lambda progress: verify_bundle(bundle, key=key, progress=progress), reports
    )
    yield f"bundle verified: {metadata.files} files and {len(metadata.symlinks)} links match"
    if not missing:
        yield "every image is present already: nothing to load from the bundle"
        return
    for line in check_install_space(index, None, docker_root_dir(docker_client)):
        yield f"free disk: {line}"


def load_images_into_docker(
    bundle: Path, references: Sequence[str], *, key: Path | None = None
) -> Iterator[str | Any]:
    """The Compose engine's loader: stream the bundle's images into Docker.

    Yields output lines and :class:`installer.runner.Progress` (bytes). ``references`` are
    the images the install still misses; each must be in the bundle (checked first), and
    with ``key`` its signature must verify with that public key (the prerequisites
    verified the whole bundle; the file may have been replaced since). Nothing is
    extracted: the images are decompressed straight into ``docker load``, each member
    checked against its SHA-256 as it passes. A member that fails its check stops the
    stream before its end, and Docker loads nothing from a stream that stops early (it
    reads the image manifests, at the end of the archive, only after the whole archive).
    """
    from installer.bundle.docker_load import load_images_into_docker as load_index
    from installer.engine.images import ImageReference
    from installer.errors import BundleIntegrityError

    def normalized(reference: str) -> ImageReference:
        return ImageReference.parse(reference).without_digest().with_default_tag()

    source = locate_bundle(bundle)
    source.check_parts()
    index = read_index(source)
    index.check_signature(key)
    held = {normalized(r) for image in index.metadata.images for r in image.references}
    absent = [r for r in references if normalized(r) not in held]
    if absent:
        raise BundleIntegrityError(f"the bundle does not hold {', '.join(absent)}")
    yield f"streaming the images from {source.display} into Docker (each member checked)"
    loaded: list[list[LoadedImage]] = []
    yield from _updates_of(lambda progress: load_index(index, progress=progress), loaded)
    for image in loaded[0]:
        yield f"loaded    {image.reference} ({image.id[:19]})"
