"""Is an image there? Asked of its registry over the Registry HTTP API (v2), from here.

The cluster's nodes pull the images, not the installer; but a missing image found before
anything is applied is an error the operator can fix in a minute, where the same image
found missing by the kubelet is an ``ImagePullBackOff`` ten minutes later. So the images
step asks each registry for each manifest (``HEAD /v2/<name>/manifests/<reference>``,
with the registry's anonymous or basic token flow), and only a clear "not there" is an
error: a registry this machine cannot reach may well be reachable from the nodes.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

DOCKER_HUB = "docker.io"
_DOCKER_HUB_API = "registry-1.docker.io"
_MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


@dataclass(frozen=True)
class ImageName:
    """An image reference split into registry, repository and tag or digest."""

    registry: str
    repository: str
    reference: str  # a tag, or sha256:...

    @classmethod
    def parse(cls, image: str) -> ImageName:
        name, digest = [*image.split("@", 1), ""][:2]
        first, _, rest = name.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            registry, path = first, rest
        else:
            registry, path = DOCKER_HUB, name
        tag = ""
        if ":" in path.rsplit("/", 1)[-1]:
            path, tag = path.rsplit(":", 1)
        if registry == DOCKER_HUB and "/" not in path:
            path = f"library/{path}"
        return cls(registry, path, digest or tag or "latest")

    def __str__(self) -> str:
        sep = "@" if self.reference.startswith("sha256:") else ":"
        return f"{self.registry}/{self.repository}{sep}{self.reference}"


Presence = Literal["present", "missing", "unreachable", "unauthorized"]


@dataclass(frozen=True)
class ImageCheck:
    image: str
    registry: str
    presence: Presence
    detail: str = ""


@dataclass(frozen=True)
class RegistryAccess:
    """How to talk to the mirror (other registries are asked anonymously, over HTTPS)."""

    mirror: str | None = None
    username: str | None = None
    password: str | None = None
    insecure: bool = False
    ca_file: str | None = None


def _host(registry: str) -> str:
    return _DOCKER_HUB_API if registry == DOCKER_HUB else registry.split("/", 1)[0]


def _context(access: RegistryAccess, is_mirror: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if is_mirror and access.ca_file:
        context.load_verify_locations(cafile=access.ca_file)
    if is_mirror and access.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _bearer_token(
    challenge: str, scope_default: str, basic: str | None, context: ssl.SSLContext, timeout: float
) -> str | None:
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    realm = params.pop("realm", None)
    if not realm:
        return None
    params.setdefault("scope", scope_default)
    if not realm.startswith(("https://", "http://")):
        return None
    request = urllib.request.Request(f"{realm}?{urllib.parse.urlencode(params)}")  # noqa: S310 - http(s) only, checked above
    if basic:
        request.add_header("Authorization", f"Basic {basic}")
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
        data: dict[str, Any] = json.loads(response.read() or b"{}")
    token = data.get("token") or data.get("access_token")
    return str(token) if token else None


def check_image(image: str, access: RegistryAccess, *, timeout: float = 10.0) -> ImageCheck:
    """Ask the image's registry whether its manifest exists."""
    name = ImageName.parse(image)
    is_mirror = bool(access.mirror) and image.startswith(f"{access.mirror}/")
    scheme = "http" if is_mirror and access.insecure else "https"
    host = _host(name.registry)
    repository = name.repository
    if is_mirror and access.mirror and "/" in access.mirror:
        # A mirror with a path prefix (registry.corp:5000/codequal): the prefix is repository.
        host = access.mirror.split("/", 1)[0]
        repository = f"{access.mirror.split('/', 1)[1]}/{repository}"
    url = f"{scheme}://{host}/v2/{repository}/manifests/{name.reference}"
    context = _context(access, is_mirror)
    basic = None
    if is_mirror and access.username and access.password is not None:
        basic = base64.b64encode(f"{access.username}:{access.password}".encode()).decode()
    headers = {"Accept": _MANIFEST_TYPES}
    for attempt in range(2):
        request = urllib.request.Request(url, method="HEAD", headers=headers)  # noqa: S310 - http(s) URL built above
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context):  # noqa: S310
                return ImageCheck(image, name.registry, "present")
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return ImageCheck(
                    image, name.registry, "missing", "the registry has no such manifest"
                )
            if e.code == 401 and attempt == 0:
                challenge = e.headers.get("WWW-Authenticate", "")
                if challenge.lower().startswith("basic") and basic:
                    headers["Authorization"] = f"Basic {basic}"
                    continue
                try:
                    token = _bearer_token(
                        challenge, f"repository:{repository}:pull", basic, context, timeout
                    )
                except (OSError, ValueError) as token_error:
                    return ImageCheck(image, name.registry, "unreachable", str(token_error))
                if token:
                    headers["Authorization"] = f"Bearer {token}"
                    continue
            if e.code in (401, 403):
                return ImageCheck(image, name.registry, "unauthorized", f"HTTP {e.code}")
            return ImageCheck(image, name.registry, "unreachable", f"HTTP {e.code}")
        except (OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            return ImageCheck(image, name.registry, "unreachable", str(reason))
    return ImageCheck(image, name.registry, "unauthorized", "the registry refused the token")


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
