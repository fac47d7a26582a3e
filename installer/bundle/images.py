"""Images inside a bundle: Docker's legacy ``docker save`` layout, and registry manifests.

``docker save`` of all the release's images in one call writes every layer once (a layer
shared by two images appears once, the second occurrence as a symbolic link to the
first). The bundle keeps that layout under ``images/``: ``docker load`` reads it as is,
and the registry push reads each layer's tar as an uncompressed blob, so what is pushed
is byte for byte what was saved and its digests are known when the bundle is made.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from typing import Any

from installer.bundle.format import IMAGES_DIR, ImageInfo, LayerInfo
from installer.errors import BundleIntegrityError

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"


def registry_manifest(config_digest: str, config_size: int, layers: list[LayerInfo]) -> bytes:
    """The image manifest (schema 2) a push writes; the same bytes every time."""
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_V2,
        "config": {"mediaType": CONFIG_V1, "size": config_size, "digest": config_digest},
        "layers": [
            {"mediaType": LAYER_TAR, "size": layer.size, "digest": layer.digest} for layer in layers
        ],
    }
    return json.dumps(document, indent=3).encode("utf-8")


def resolve_link(path: str, symlinks: dict[str, str]) -> str:
    """Follow symbolic links between members (``a/layer.tar -> ../b/layer.tar``)."""
    for _ in range(8):
        target = symlinks.get(path)
        if target is None:
            return path
        path = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    raise BundleIntegrityError(f"{path}: symbolic links nest too deep")


def images_from_save(
    manifest_json: bytes,
    sums: dict[str, str],
    sizes: dict[str, int],
    symlinks: dict[str, str],
) -> list[ImageInfo]:
    """The images of a ``docker save`` layout stored under ``images/``.

    ``sums``/``sizes``/``symlinks`` are keyed by bundle member path (``images/...``).
    """
    try:
        entries = json.loads(manifest_json)
        images = []
        for entry in entries:
            config = f"{IMAGES_DIR}/{entry['Config']}"
            config_path = resolve_link(config, symlinks)
            layer_paths = [f"{IMAGES_DIR}/{layer}" for layer in entry["Layers"]]
            layers = []
            for layer_path in layer_paths:
                real = resolve_link(layer_path, symlinks)
                layers.append(LayerInfo("sha256:" + sums[real], sizes[real]))
            config_digest = "sha256:" + sums[config_path]
            manifest = registry_manifest(config_digest, sizes[config_path], layers)
            images.append(
                ImageInfo(
                    references=list(entry.get("RepoTags") or []),
                    id=config_digest,
                    config=config_path,
                    config_size=sizes[config_path],
                    layers=layers,
                    layer_paths=[resolve_link(p, symlinks) for p in layer_paths],
                    manifest_digest="sha256:" + hashlib.sha256(manifest).hexdigest(),
                )
            )
        return images
    except (ValueError, KeyError, TypeError) as e:
        raise BundleIntegrityError(f"the image archive's manifest.json is malformed: {e}") from e
