"""Image references: rewriting them to a private registry mirror."""

from __future__ import annotations

from installer.engine.images import ImageReference


def mirrored(reference: str, mirror: str | None) -> str:
    """``reference`` as pulled through ``mirror`` (host[:port][/path]), or unchanged.

    The registry host is replaced and the repository path kept, so
    ``docker.io/library/nginx:1.27-alpine`` becomes
    ``registry.corp:5000/library/nginx:1.27-alpine``; a Docker Hub short name gains Hub's
    implicit ``library/`` prefix. The tag and digest stay as written.
    """
    if not mirror:
        return reference
    return str(ImageReference.parse(reference).with_mirror(mirror))
