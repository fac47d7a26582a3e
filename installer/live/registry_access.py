"""The two registry questions the images check asks, behind one seam.

``ping`` asks a registry's ``/v2/`` (does it answer over TLS with the configured CA?);
``manifest`` asks whether the exact reference's manifest is readable with the credentials.
Both use the registry client the install already uses (``installer.targets.kubernetes.
images``); when the engine layer's registry client lands, only this module changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from installer.live.net import Unreachable, get_url
from installer.targets.kubernetes.images import ImageCheck, ImageName, RegistryAccess, check_image

DOCKER_HUB = "docker.io"
_DOCKER_HUB_API = "registry-1.docker.io"


@dataclass(frozen=True)
class RegistryPing:
    """How a registry answered ``GET /v2/`` (401 is an answer: it wants credentials)."""

    registry: str
    url: str
    status: int | None
    failure: Unreachable | None
    proxy: str | None

    @property
    def answers(self) -> bool:
        return self.failure is None


def registry_of(reference: str, access: RegistryAccess) -> str:
    """The registry a reference is pulled from (the mirror, with its path, when it is one)."""
    if access.mirror and reference.startswith(f"{access.mirror}/"):
        return access.mirror
    return ImageName.parse(reference).registry


def ping(
    registry: str, access: RegistryAccess, *, environ: Mapping[str, str], timeout: float
) -> RegistryPing:
    """``GET https://<registry>/v2/`` with the mirror's CA (plain HTTP only when insecure)."""
    is_mirror = registry == access.mirror
    host = registry.split("/", 1)[0]
    host = _DOCKER_HUB_API if host == DOCKER_HUB else host
    scheme = "http" if is_mirror and access.insecure else "https"
    url = f"{scheme}://{host}/v2/"
    answer = get_url(
        url,
        environ=environ,
        timeout=timeout,
        ca_file=access.ca_file if is_mirror else None,
        verify=not (is_mirror and access.insecure),
    )
    return RegistryPing(registry, url, answer.status, answer.failure, answer.proxy)


def manifest(reference: str, access: RegistryAccess, *, timeout: float) -> ImageCheck:
    """Whether the manifest of ``reference`` is readable: present, missing, unauthorized."""
    return check_image(reference, access, timeout=timeout)
