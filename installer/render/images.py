"""Image references: rewriting them to a private registry mirror."""

from __future__ import annotations


def split_registry(reference: str) -> tuple[str | None, str]:
    """``ghcr.io/codequal/api:1`` -> (``ghcr.io``, ``codequal/api:1``).

    The first path component is a registry when it has a dot or a port, or is
    ``localhost`` (Docker's own rule); ``nginx:1.27`` has none and means Docker Hub.
    """
    first, sep, rest = reference.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return None, reference


def mirrored(reference: str, mirror: str | None) -> str:
    """``reference`` as pulled through ``mirror`` (host[:port][/path]), or unchanged.

    The registry host is replaced and the repository path kept, so
    ``docker.io/library/nginx:1.27-alpine`` becomes
    ``registry.corp:5000/library/nginx:1.27-alpine``; a Docker Hub short name gains Hub's
    implicit ``library/`` prefix.
    """
    if not mirror:
        return reference
    registry, path = split_registry(reference)
    if registry is None and "/" not in path.split("@")[0].split(":")[0]:
        path = f"library/{path}"
    return f"{mirror.rstrip('/')}/{path}"
