"""Pushing a bundle's images to a registry (``registry.mirror``).

For each image: the config and every layer are blobs. A blob the registry has already is
skipped; one pushed to another repository in this run is mounted; the rest are uploaded.
Then the manifest (schema 2, the same bytes whose digest the bundle recorded) is ``PUT`` by
tag, so the image can be pulled by that digest. A push is idempotent: run again after an
interruption, it skips what is there and finishes the rest.

This module is the bundle's side only (what to push, in which order, the progress); every
request goes through the one registry client, :class:`installer.engine.registry.RegistryClient`
(TLS, credentials and tokens, retries, errors in operator language).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from installer.bundle.format import ImageInfo
from installer.bundle.images import MANIFEST_V2, registry_manifest
from installer.bundle.progress import ProgressCallback, ProgressMeter
from installer.engine.images import ImageReference
from installer.engine.registry import (
    RETRIES,
    RegistryClient,
    RegistryError,
    RegistryMirror,
    RegistryUnreachable,
)
from installer.errors import UsageError

__all__ = [
    "RETRIES",
    "PushedImage",
    "RegistryError",
    "RegistryTarget",
    "RegistryUnreachable",
    "normalize_reference",
    "push_images",
]

RegistryTarget = RegistryMirror
"""The mirror to push to, from the answer file's ``registry`` section and secrets."""


def normalize_reference(reference: str) -> str:
    """``domain/path:tag[@digest]`` as Docker reads ``reference`` (``latest`` when untagged)."""
    return str(ImageReference.parse(reference).with_default_tag())


def mirror_destination(source: str, mirror: str) -> ImageReference:
    """Where ``source`` goes on ``mirror``: same path under the mirror's, tag kept, no digest."""
    return ImageReference.parse(source).with_default_tag().without_digest().with_mirror(mirror)


@dataclass
class PushedImage:
    """One tag pushed: where it is now, its manifest digest, and what was transferred."""

    source: str
    reference: str  # mirror reference with tag
    digest: str
    uploaded_blobs: int = 0
    skipped_blobs: int = 0
    mounted_blobs: int = 0
    manifest_skipped: bool = False

    @property
    def pinned(self) -> str:
        """``mirror/path@sha256:...``: what Kubernetes manifests should reference."""
        return f"{ImageReference.parse(self.reference).name}@{self.digest}"


def push_images(
    target: RegistryTarget,
    images_root: Path,
    images: list[ImageInfo],
    *,
    progress: ProgressCallback | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[PushedImage]:
    """Push every tag of every image under ``images_root`` (the bundle's extracted root).

    ``images`` come from the verified metadata: each blob's path, digest and size are
    known, so nothing is hashed again.
    """
    if not target.mirror:
        raise UsageError("no registry to push to", hint="set registry.mirror (or --mirror)")
    mirror = target.mirror
    # Every reference read before the first request: a bad one stops the push at once.
    destinations = {
        source: mirror_destination(source, mirror)
        for image in images
        for source in image.references
    }
    client = RegistryClient(target.endpoint(), sleep=sleep)
    try:
        blob_sizes = {
            path: layer.size
            for image in images
            for path, layer in zip(image.layer_paths, image.layers, strict=True)
        }
        total = sum(blob_sizes.values()) + sum(image.config_size for image in images)
        meter = ProgressMeter("push", progress, total)
        pushed_to: dict[str, str] = {}  # digest -> a repository that has it
        results: list[PushedImage] = []
        for image in images:
            blobs = [(image.id, image.config, image.config_size)] + [
                (layer.digest, path, layer.size)
                for layer, path in zip(image.layers, image.layer_paths, strict=True)
            ]
            manifest = registry_manifest(image.id, image.config_size, image.layers)
            for source in image.references:
                destination = destinations[source]
                repository, tag = destination.path, destination.tag or "latest"
                result = PushedImage(source, str(destination), image.manifest_digest)
                if client.manifest_digest(repository, tag, accept=MANIFEST_V2) == (
                    image.manifest_digest
                ):
                    result.manifest_skipped = True
                    result.skipped_blobs = len(blobs)
                    meter.advance(sum(size for _, _, size in blobs))
                    results.append(result)
                    continue
                for digest, path, size in blobs:
                    if client.has_blob(repository, digest):
                        result.skipped_blobs += 1
                        meter.advance(size)
                        pushed_to.setdefault(digest, repository)
                        continue
                    upload_url = None
                    if digest in pushed_to and pushed_to[digest] != repository:
                        upload_url = client.mount_blob(repository, digest, pushed_to[digest])
                        if upload_url is None:
                            result.mounted_blobs += 1
                            meter.advance(size)
                            continue
                    client.upload_blob(
                        repository=repository,
                        digest=digest,
                        path=images_root / path,
                        size=size,
                        on_bytes=meter.advance,
                        upload_url=upload_url,
                    )
                    result.uploaded_blobs += 1
                    pushed_to[digest] = repository
                result.digest = client.put_manifest(repository, tag, manifest)
                results.append(result)
        meter.finish()
        return results
    finally:
        client.close()
