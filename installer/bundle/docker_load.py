"""Loading a bundle's images into the Docker Engine, streamed, with progress.

The images go to ``POST /images/load`` as one tar stream in the legacy ``docker save``
layout. It is produced on the fly, either from the bundle itself (decompressed and
verified member by member as it is sent: nothing lands on disk but what Docker stores) or
from an extracted bundle's ``images/`` directory. Memory stays flat whatever the size.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from installer.bundle.format import IMAGES_DIR, TAR_BLOCK, ImageInfo
from installer.bundle.progress import ProgressCallback, ProgressMeter
from installer.bundle.reader import BundleIndex, iter_members
from installer.bundle.writer import CHUNK, tar_header
from installer.errors import BundleIntegrityError, InstallerError


class ImageLoadError(InstallerError):
    """The Docker Engine refused the image archive."""


@dataclass(frozen=True)
class LoadedImage:
    reference: str
    id: str


def _member_tar(
    name: str, size: int, mode: int, chunks: Iterator[bytes | memoryview]
) -> Iterator[bytes | memoryview]:
    yield tar_header(name, size, mode=mode)
    yield from chunks
    if size % TAR_BLOCK:
        yield b"\0" * (-size % TAR_BLOCK)


def tar_from_bundle(index: BundleIndex, meter: ProgressMeter) -> Iterator[bytes | memoryview]:
    """The ``images/`` members of the bundle, as a tar stream, verified as they pass."""
    prefix = f"{IMAGES_DIR}/"
    for member in iter_members(index, operation="load"):
        if not member.name.startswith(prefix):
            continue
        name = member.name[len(prefix) :]
        if member.kind == "symlink":
            import tarfile

            yield tar_header(name, 0, mode=0o777, kind=tarfile.SYMTYPE, linkname=member.linkname)
            continue
        for piece in _member_tar(name, member.size, member.mode, member.chunks()):
            meter.advance(len(piece))
            yield piece
    yield b"\0" * (2 * TAR_BLOCK)


def tar_from_directory(images_dir: Path, meter: ProgressMeter) -> Iterator[bytes | memoryview]:
    """An extracted ``images/`` directory as a tar stream, in sorted order."""
    import tarfile

    for path in sorted(p for p in images_dir.rglob("*") if not p.is_dir() or p.is_symlink()):
        name = path.relative_to(images_dir).as_posix()
        if path.is_symlink():
            yield tar_header(name, 0, mode=0o777, kind=tarfile.SYMTYPE, linkname=os.readlink(path))
            continue
        size = path.stat().st_size

        def chunks(path: Path = path) -> Iterator[bytes]:
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK):
                    yield chunk

        for piece in _member_tar(name, size, path.stat().st_mode, chunks()):
            meter.advance(len(piece))
            yield piece
    yield b"\0" * (2 * TAR_BLOCK)


def load_images_into_docker(
    index: BundleIndex,
    *,
    extracted_root: Path | None = None,
    docker_client: Any = None,
    progress: ProgressCallback | None = None,
) -> list[LoadedImage]:
    """Load every image of the bundle into Docker; returns each reference with its image ID.

    From ``extracted_root`` (a verified extraction) when given, else straight from the
    bundle. Each loaded image's ID is checked against the metadata.
    """
    import docker

    from installer.bundle.create import SAVE_TIMEOUT_SECONDS
    from installer.engine.docker import docker_client as engine_docker_client
    from installer.engine.docker import docker_unavailable, sdk_errors

    client = docker_client or engine_docker_client(timeout=SAVE_TIMEOUT_SECONDS)
    meter = ProgressMeter("load", progress, index.metadata.images_size)
    if extracted_root is not None:
        stream = tar_from_directory(extracted_root / IMAGES_DIR, meter)
    else:
        stream = tar_from_bundle(index, meter)
    loaded: list[str] = []
    try:
        for line in client.api.load_image(stream):
            if "error" in line:
                detail = line.get("errorDetail", {}).get("message") or line["error"]
                raise ImageLoadError(f"docker load failed: {detail}")
            text = str(line.get("stream", "")).strip()
            if text.startswith("Loaded image: "):
                loaded.append(text.removeprefix("Loaded image: "))
            elif text.startswith("Loaded image ID: "):
                loaded.append(text.removeprefix("Loaded image ID: "))
    except BundleIntegrityError:
        raise
    except docker.errors.APIError as e:
        raise ImageLoadError(f"docker load failed: {e}") from e
    except sdk_errors() as e:  # the Engine went away during the load
        raise docker_unavailable("docker load stopped", e) from e
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    meter.finish()
    return _check_loaded(client, index.metadata.images)


def _check_loaded(client: Any, images: list[ImageInfo]) -> list[LoadedImage]:
    import docker

    result = []
    for image in images:
        for reference in image.references:
            try:
                found = client.images.get(reference).id
            except docker.errors.DockerException as e:
                raise ImageLoadError(f"{reference} is not in Docker after the load: {e}") from e
            if found != image.id:
                raise ImageLoadError(
                    f"{reference} is {found} in Docker, the bundle holds {image.id}"
                )
            result.append(LoadedImage(reference, found))
    return result
