"""Is an image there? Asked of its registry over the Registry HTTP API (v2), from here.

The cluster's nodes pull the images, not the installer; but a missing image found before
anything is applied is an error the operator can fix in a minute, where the same image
found missing by the kubelet is an ``ImagePullBackOff`` ten minutes later. So the images
step asks each registry for each manifest (``HEAD /v2/<name>/manifests/<reference>``)
through the one registry client (:mod:`installer.engine.registry`: the mirror's TLS and
credentials, the token flow), and only a clear "not there" is an error: a registry this
machine cannot reach may well be reachable from the nodes, so it is asked once, not retried.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from installer.engine.images import ImageReference
from installer.engine.registry import (
    RegistryClient,
    RegistryError,
    RegistryMirror,
    RegistryUnreachable,
)

Presence = Literal["present", "missing", "unreachable", "unauthorized"]

RegistryAccess = RegistryMirror
"""How to talk to the mirror (other registries are asked anonymously, over HTTPS)."""


@dataclass(frozen=True)
class ImageCheck:
    image: str
    registry: str
    presence: Presence
    detail: str = ""


def check_image(image: str, access: RegistryMirror, *, timeout: float = 10.0) -> ImageCheck:
    """Ask the image's registry whether its manifest exists."""
    name = ImageReference.parse(image)
    try:
        with RegistryClient(access.endpoint(name.api_host), timeout=timeout, retries=1) as client:
            digest = client.manifest_digest(name.path, name.manifest_reference, pull_only=True)
    except RegistryUnreachable as e:
        return ImageCheck(image, name.domain, "unreachable", e.message)
    except RegistryError as e:
        if e.status in (401, 403):
            return ImageCheck(image, name.domain, "unauthorized", f"HTTP {e.status}")
        return ImageCheck(image, name.domain, "unreachable", e.message)
    if digest is None:
        return ImageCheck(image, name.domain, "missing", "the registry has no such manifest")
    return ImageCheck(image, name.domain, "present")


def images_of(objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every container image the objects' pod templates run, sorted, once each."""
    found: set[str] = set()
    for obj in objects:
        template = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        for key in ("initContainers", "containers"):
            for container in template.get(key) or []:
                if container.get("image"):
                    found.add(str(container["image"]))
    return sorted(found)
