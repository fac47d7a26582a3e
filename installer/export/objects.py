"""The objects an export holds: the Kubernetes target's own, rendered without a secret.

:func:`install_objects` renders the answers exactly as ``apply`` does (``render_plan``, then
:meth:`KubeInstall.from_rendered`, which drops ``spec.replicas`` from an autoscaled
Deployment), but with a placeholder in place of every secret and in a throw-away state
directory, so no supplied or generated secret can reach an exported file. The Secrets come
out separately, their values still placeholders: the export writes them only as an
example and as the commands that create them (see :mod:`installer.export.secrets`).
"""

from __future__ import annotations

import copy
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer.errors import UsageError

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.release import ReleaseManifest

KUBERNETES_TARGETS = ("kubernetes", "enterprise")
# Where a Route carries the certificate's key inline (OpenShift with tls.mode: provided).
ROUTE_KEY_PATH = ("spec", "tls", "key")


class ExportError(UsageError):
    """The answers cannot be exported (wrong target, or a value the export cannot carry)."""


def placeholder(key: str) -> str:
    """What stands for secret ``key`` while rendering: only URL-safe characters, so it
    survives the percent-encoding of a database URL unchanged."""
    return f"__CODEQUAL_{key.upper()}__"


PLACEHOLDER = re.compile(r"__CODEQUAL_([A-Z0-9_]+?)__")


def env_name(key: str) -> str:
    """The environment variable that supplies secret ``key`` (the installer's own)."""
    return f"CODEQUAL_{key.upper()}"


@dataclass(frozen=True)
class InstallObjects:
    """What the Kubernetes target applies for one answer file, split for export."""

    objects: list[dict[str, Any]]  # every object but the Secrets, in apply order
    secrets: list[dict[str, Any]]  # the Secrets, values holding placeholders
    route_key: str | None = None  # the TLS key the Routes carry inline (never exported)
    paths: list[str] = field(default_factory=list)  # each object's kubernetes/NN-... name


def identity(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return (str(obj.get("kind")), str(meta.get("namespace", "")), str(meta.get("name")))


def install_objects(answers: AnswerFile, release: ReleaseManifest) -> InstallObjects:
    """The objects ``apply`` would apply for ``answers`` (without a Prometheus Operator in
    the cluster), with Secrets and the Routes' inline key taken out."""
    from installer.answers import SECRET_KEYS
    from installer.credentials import Secrets
    from installer.render import render_plan
    from installer.targets.kubernetes.session import KubeInstall, KubeOptions

    if answers.target not in KUBERNETES_TARGETS:
        raise ExportError(
            f"target {answers.target} is installed with Docker Compose, not exported",
            hint="--format helm and kustomize are for the kubernetes and enterprise targets",
        )
    placeholders = Secrets.model_validate({key: placeholder(key) for key in SECRET_KEYS})
    with tempfile.TemporaryDirectory(prefix="codequal-export-") as scratch:
        root = Path(scratch)
        # Not this machine's proxy: the export is applied elsewhere, and holds no secret.
        rendered = render_plan(answers, placeholders, release, root, environ={})
        install = KubeInstall.from_rendered(
            answers, placeholders, release, root, rendered, options=KubeOptions()
        )
    objects: list[dict[str, Any]] = []
    secrets: list[dict[str, Any]] = []
    paths: list[str] = []
    route_key: str | None = None
    for item in install.objects:
        obj = copy.deepcopy(item.obj)
        if item.kind == "Secret":
            secrets.append(obj)
            continue
        if item.kind == "Route":
            tls = (obj.get("spec") or {}).get("tls") or {}
            if "key" in tls:
                route_key = tls["key"]
        leaked = PLACEHOLDER.search(repr(without_route_key(obj)))
        if leaked:
            raise ExportError(
                f"{item.ref} would carry the secret {leaked.group(1).lower()} outside a Secret",
                hint="report this: the export refuses to write a secret into a file",
            )
        objects.append(obj)
        paths.append(item.path)
    return InstallObjects(objects, secrets, route_key, paths)


def without_route_key(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without the inline TLS key of a Route (a copy; other objects as they are)."""
    if obj.get("kind") != "Route":
        return obj
    out = copy.deepcopy(obj)
    ((out.get("spec") or {}).get("tls") or {}).pop("key", None)
    return out
