"""Image references, read the way Docker reads them: the one parser in the installer.

``ghcr.io/codequal/api:1.2@sha256:...`` is a registry (``ghcr.io``), a repository path
(``codequal/api``), a tag and a digest. The first path component names a registry only when
it has a dot or a port, or is ``localhost``; otherwise the image is on Docker Hub, whose
one-component names live under ``library/`` (``nginx`` is ``docker.io/library/nginx``).
Every place that needs part of a reference — the rendered plan's mirror rewrite, the
Compose target's pulls, the Kubernetes target's registry check, the bundle's save, load and
push — goes through :meth:`ImageReference.parse`, so none of them can disagree on what an
image is called.

The grammar is Distribution's (``distribution/reference``): lower-case path components
separated by ``.``, ``_``, ``__`` or dashes; a tag of at most 128 word characters, dots
and dashes; a digest ``algorithm:hex``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from installer.errors import UsageError

DOCKER_HUB = "docker.io"
"""Docker Hub's name in references (``docker.io/library/nginx``)."""
DOCKER_HUB_API = "registry-1.docker.io"
"""The host that serves Docker Hub's Registry API."""
DEFAULT_TAG = "latest"

_HUB_ALIASES = {DOCKER_HUB, "index.docker.io", DOCKER_HUB_API}
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN = re.compile(
    r"^(?:localhost|\[[0-9A-Fa-f:]+\]|"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)"
    r"(?::[0-9]+)?$"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")


class InvalidImageReference(UsageError):
    """A string that is not an image reference (in the release manifest or the answers)."""


@dataclass(frozen=True)
class ImageReference:
    """One image: ``domain/path[:tag][@digest]``, normalised (``docker.io/library/...``).

    ``tag`` and ``digest`` are ``None`` when the reference does not give them; Docker's
    implicit ``latest`` is :meth:`with_default_tag`'s to add, so printing a parsed
    reference never invents a tag the author did not write.
    """

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, reference: str) -> ImageReference:
        """Split ``reference``; raises :class:`InvalidImageReference` when it is not one."""
        text = reference.strip()
        name, at, digest = text.partition("@")
        if at and not _DIGEST.match(digest):
            raise _invalid(reference, f"{digest!r} is not a digest (algorithm:hex)")
        first, slash, rest = name.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost"):
            domain, remainder = first, rest
            if not _DOMAIN.match(domain):
                raise _invalid(reference, f"{domain!r} is not a registry host[:port]")
        else:
            domain, remainder = DOCKER_HUB, name
        path, colon, tag = remainder.rpartition(":") if ":" in remainder else (remainder, "", "")
        if colon and not _TAG.match(tag):
            raise _invalid(reference, f"{tag!r} is not a tag")
        if not _PATH.match(path):
            raise _invalid(
                reference,
                f"{path!r} is not a repository path (lower-case letters, digits, "
                "'.', '_', '-', separated by '/')",
            )
        if domain in _HUB_ALIASES:
            domain = DOCKER_HUB
            if "/" not in path:
                path = f"library/{path}"
        return cls(domain, path, tag if colon else None, digest or None)

    @property
    def name(self) -> str:
        """``domain/path``: the repository with its registry, no tag or digest."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The repository as ``docker`` prints it: ``nginx``, ``prom/prometheus``, ``ghcr.io/x``."""
        if self.domain == DOCKER_HUB:
            return self.path.removeprefix("library/")
        return self.name

    @property
    def api_host(self) -> str:
        """The host that serves this registry's HTTP API (Hub's is ``registry-1.docker.io``)."""
        return DOCKER_HUB_API if self.domain == DOCKER_HUB else self.domain

    @property
    def manifest_reference(self) -> str:
        """What ``/v2/<path>/manifests/<...>`` asks for: the digest, else the tag (or latest)."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_default_tag(self) -> ImageReference:
        """Docker's reading: ``latest`` when the reference has neither tag nor digest."""
        if self.tag is None and self.digest is None:
            return replace(self, tag=DEFAULT_TAG)
        return self

    def without_digest(self) -> ImageReference:
        return replace(self, digest=None)

    def with_mirror(self, mirror: str) -> ImageReference:
        """The same repository on ``mirror`` (``host[:port][/path]``), path prefix included.

        ``docker.io/library/nginx:1.27`` on ``registry.corp:5000/codequal`` is
        ``registry.corp:5000/codequal/library/nginx:1.27``.
        """
        host, _, prefix = mirror.strip().strip("/").partition("/")
        if not _DOMAIN.match(host):
            raise _invalid(mirror, f"{host!r} is not a registry host[:port]", what="mirror")
        prefix = prefix.strip("/")
        return replace(self, domain=host, path=f"{prefix}/{self.path}" if prefix else self.path)

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.name}{tag}{digest}"


def _invalid(text: str, why: str, *, what: str = "image reference") -> InvalidImageReference:
    return InvalidImageReference(
        f"{text!r} is not a valid {what}: {why}",
        hint="write it as [registry[:port]/]path[:tag][@sha256:...], e.g. "
        "ghcr.io/codequal/codequal:0.1.0",
    )
