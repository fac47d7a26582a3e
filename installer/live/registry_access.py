"""The two registry questions the images check asks, through the engine's registry client.

``ping`` opens a :class:`~installer.engine.registry.RegistryClient` for the registry, which
asks ``/v2/`` over TLS with the mirror's CA (a 401 is an answer: it wants credentials);
``manifest`` asks whether the exact reference's manifest is readable with the mirror's
credentials (``HEAD`` of the manifest, pull scope). What failed is read from the
exception chain (DNS, TCP, TLS, proxy), never from its text.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from installer.engine.images import DOCKER_HUB, DOCKER_HUB_API, ImageReference
from installer.engine.registry import (
    RegistryClient,
    RegistryEndpoint,
    RegistryError,
    RegistryMirror,
    RegistryUnreachable,
)
from installer.errors import UsageError
from installer.live.net import Unreachable, classify_chain, proxy_for

Presence = Literal["present", "missing", "unreachable", "unauthorized"]


@dataclass(frozen=True)
class ManifestAnswer:
    """Whether a reference's manifest is readable, and if not, why."""

    presence: Presence
    status: int | None = None
    failure: Unreachable | None = None


@dataclass(frozen=True)
class RegistryPing:
    """How a registry answered ``GET /v2/``."""

    registry: str
    failure: Unreachable | None
    proxy: str | None

    @property
    def answers(self) -> bool:
        return self.failure is None


def endpoint_for(access: RegistryMirror, api_host: str) -> RegistryEndpoint:
    """How to ask ``api_host``, as the Docker Engine would pull from it: the Engine lets a
    registry on the loopback network (127.0.0.0/8, ::1) answer in plain HTTP, so the check
    does too, instead of failing a pull that works. A certificate it does present is still
    verified (stricter than the Engine, which would skip that for loopback)."""
    endpoint = access.endpoint(api_host)
    name = urlsplit(f"//{api_host}").hostname or api_host
    try:
        loopback = ipaddress.ip_address(name).is_loopback
    except ValueError:
        loopback = name == "localhost"
    return dataclasses.replace(endpoint, plain_http=True) if loopback else endpoint


def registry_of(reference: str, access: RegistryMirror) -> str:
    """The registry a reference is pulled from (the mirror, with its path, when it is one)."""
    if access.mirror and reference.startswith(f"{access.mirror}/"):
        return access.mirror
    return ImageReference.parse(reference).domain


def ping(
    registry: str, access: RegistryMirror, *, environ: Mapping[str, str], timeout: float
) -> RegistryPing:
    """Whether ``registry`` answers ``/v2/`` (over TLS; the mirror with its CA)."""
    host = registry.split("/", 1)[0]
    api_host = DOCKER_HUB_API if host == DOCKER_HUB else host
    proxy = proxy_for(f"https://{api_host}/v2/", environ)
    try:
        with RegistryClient(endpoint_for(access, api_host), timeout=timeout, retries=1):
            return RegistryPing(registry, None, proxy)
    except UsageError as e:  # registry.ca_file names no file
        return RegistryPing(registry, Unreachable("TLS", e.message), proxy)
    except RegistryError as e:
        if e.status == 401:  # it answers, and wants credentials the manifest check will try
            return RegistryPing(registry, None, proxy)
        return RegistryPing(registry, classify_chain(e, api_host, timeout), proxy)


def manifest(reference: str, access: RegistryMirror, *, timeout: float) -> ManifestAnswer:
    """Whether the manifest of ``reference`` is readable: present, missing, unauthorized."""
    name = ImageReference.parse(reference)
    try:
        endpoint = endpoint_for(access, name.api_host)
        with RegistryClient(endpoint, timeout=timeout, retries=1) as client:
            digest = client.manifest_digest(name.path, name.manifest_reference, pull_only=True)
    except UsageError as e:
        return ManifestAnswer("unreachable", failure=Unreachable("TLS", e.message))
    except RegistryUnreachable as e:
        return ManifestAnswer("unreachable", failure=classify_chain(e, name.api_host, timeout))
    except RegistryError as e:
        if e.status in (401, 403):
            return ManifestAnswer("unauthorized", status=e.status)
        if e.status is None:
            return ManifestAnswer("unreachable", failure=classify_chain(e, name.api_host, timeout))
        return ManifestAnswer("unreachable", status=e.status)
    return ManifestAnswer("missing" if digest is None else "present")
