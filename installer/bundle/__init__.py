"""The offline bundle: create, verify, inspect, extract, load into Docker, push to a registry.

The engine's entry points:

- :func:`open_bundle` verifies a bundle (parts, signature, every member) while extracting
  it with hardened extraction into a work directory, after checking free disk; it returns
  an :class:`OpenedBundle` whose ``load_images()`` streams the images into Docker (Compose
  targets) and whose ``push_images()`` pushes them to ``registry.mirror`` (Kubernetes).
- :func:`verify_bundle` and :func:`inspect_bundle` back ``bundle verify`` and ``bundle inspect``.
- :func:`~installer.bundle.create.create_bundle` backs ``bundle create``.

Long operations take a ``progress`` callback (:class:`~installer.bundle.progress.TransferProgress`:
bytes done, total and rate). Integrity failures raise
:class:`~installer.errors.BundleIntegrityError` (exit 4).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer.bundle.format import (
    ANSWERS_NAME,
    IMAGES_DIR,
    RELEASE_NAME,
    BundleMetadata,
)
from installer.bundle.progress import ProgressCallback, TransferProgress
from installer.bundle.reader import BundleIndex, locate_bundle, read_index

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

    @property
    def metadata(self) -> BundleMetadata:
        return self.index.metadata


def inspect_bundle(path: str | Path, *, key: Path | None = None) -> BundleReport:
    """Release, images, platform and signature status, from the footer and tail alone."""
    index = read_index(locate_bundle(path))
    return BundleReport(index, index.check_signature(key), verified=False)


def verify_bundle(
    path: str | Path, *, key: Path | None = None, progress: ProgressCallback | None = None
) -> BundleReport:
    """Parts, signature, aggregate hash, every member's hash, missing and extra members.

    Raises :class:`~installer.errors.BundleIntegrityError` naming every problem found.
    """
    from installer.bundle.extract import check_index_paths
    from installer.bundle.reader import iter_members

    source = locate_bundle(path)
    source.check_parts()
    index = read_index(source)
    signature = index.check_signature(key)
    check_index_paths(index)
    for _ in iter_members(index, fail_fast=False, progress=progress):
        pass
    return BundleReport(index, signature, verified=True)


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


def load_images_into_docker(bundle: Path, references: Sequence[str]) -> Iterator[str | Any]:
    """The Compose engine's loader: verify ``bundle`` while streaming its images into Docker.

    Yields output lines and :class:`installer.runner.Progress` (bytes). ``references`` are
    the images the install still misses; each must be in the bundle (checked first).
    """
    import queue
    import threading

    from installer.bundle import docker_load
    from installer.errors import BundleIntegrityError
    from installer.runner import Progress

    source = locate_bundle(bundle)
    source.check_parts()
    index = read_index(source)
    signature = index.check_signature(None)
    yield f"bundle {source.display}: release {index.metadata.release_version}, {signature}"
    from installer.bundle.registry import normalize_reference

    held = {normalize_reference(r) for image in index.metadata.images for r in image.references}
    absent = [r for r in references if normalize_reference(r.split("@", 1)[0]) not in held]
    if absent:
        raise BundleIntegrityError(f"the bundle does not hold {', '.join(absent)}")
    updates: queue.Queue[Any] = queue.Queue()
    outcome: list[BaseException] = []

    def work() -> None:
        try:
            for image in docker_load.load_images_into_docker(index, progress=updates.put):
                updates.put(f"loaded    {image.reference} ({image.id[:19]})")
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            outcome.append(e)
        finally:
            updates.put(None)

    threading.Thread(target=work, name="bundle-load", daemon=True).start()
    while (update := updates.get()) is not None:
        if isinstance(update, TransferProgress):
            yield Progress(update.done, update.total, "bytes", update.describe())
        else:
            yield update
    if outcome:
        raise outcome[0]
