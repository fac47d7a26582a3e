"""``plan --format kustomize``: a ``base/`` and one overlay per answer file.

Equal by construction: every overlay builds exactly the objects the Kubernetes target
applies for its answer file (see :func:`installer.export.objects.install_objects`). An object
goes into ``base/`` when every answer file has it alike once two things are set aside that
each overlay puts back with Kustomize's own transformers: the namespace (``namespace:``) and
the mirror's rewrite of the images (``images:``). Every other object is written whole into
the overlays that have it. Secrets are not written: each overlay has its
``secrets.example.yaml`` and ``create-secrets.sh``. On OpenShift with ``tls.mode: provided``
the Routes carry the certificate's key inline; the overlay patches it in from
``route-tls-key.yaml``, a file the operator makes (from ``route-tls-key.example.yaml``) and
keeps out of Git.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from installer.export.objects import ExportError, InstallObjects, install_objects

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.release import ReleaseManifest

KUSTOMIZATION = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
ROUTE_KEY_PATCH = "route-tls-key.yaml"
ROUTE_KEY_EXAMPLE = """\
# Copy to route-tls-key.yaml with the PEM key of the Routes' certificate as the value.
# Keep that file out of Git (or encrypt it): it is the one secret the Routes carry.
---
- op: add
  path: /spec/tls/key
  value: |
    -----BEGIN PRIVATE KEY-----
    ...
    -----END PRIVATE KEY-----
"""
YAMLLINT_CONFIG = """\
# yamllint's defaults, but for line length: the Prometheus rules and Grafana dashboards
# inside the ConfigMaps are written exactly as the installer renders them.
---
extends: default
rules:
  line-length: disable
"""
_OVERLAY_NAME = re.compile(r"[^A-Za-z0-9._-]+")
# Kinds that have no namespace (Kustomize's namespace transformer leaves them alone).
_CLUSTER_SCOPED = frozenset({"Namespace"})


def _image_name(reference: str) -> str:
    """``reference`` without its tag and digest: the name Kustomize's ``images:`` matches."""
    from installer.engine.images import ImageReference

    parsed = ImageReference.parse(reference)
    tag = f":{parsed.tag}" if parsed.tag else ""
    digest = f"@{parsed.digest}" if parsed.digest else ""
    return reference.removesuffix(digest).removesuffix(tag)


@dataclass
class _Source:
    name: str
    answers: AnswerFile
    install: InstallObjects
    images: dict[str, str]  # mirrored image name -> the release's image name
    generic: list[dict[str, Any]]  # each object without namespace and mirror rewrite


def _generic(obj: dict[str, Any], images: dict[str, str]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    if out.get("kind") not in _CLUSTER_SCOPED:
        (out.get("metadata") or {}).pop("namespace", None)
    spec = ((out.get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in spec.get("containers") or []:
        image = container.get("image", "")
        name = _image_name(image)
        if name in images:
            container["image"] = images[name] + image[len(name) :]
    if out.get("kind") == "Route":
        ((out.get("spec") or {}).get("tls") or {}).pop("key", None)
    return out


def _source(name: str, answers: AnswerFile, release: ReleaseManifest) -> _Source:
    from installer.render.images import mirrored

    install = install_objects(answers, release)
    images: dict[str, str] = {}
    mirror = answers.registry.mirror
    if mirror:
        for service in release.services:
            original = _image_name(release.image_for(service, answers))
            images[mirrored(original, mirror)] = original
    generic = [_generic(o, images) for o in install.objects]
    return _Source(name, answers, install, images, generic)


def overlay_name(source: str) -> str:
    stem = source.rsplit("/", 1)[-1]
    for suffix in (".yaml", ".yml"):
        stem = stem.removesuffix(suffix)
    return _OVERLAY_NAME.sub("-", stem).strip("-.") or "answers"


def kustomize_files(
    sources: list[tuple[str, AnswerFile]], release: ReleaseManifest
) -> dict[str, tuple[str, int]]:
    """Every file of the Kustomize tree: relative path -> (text, mode)."""
    from installer.export.secrets import SCRIPT, secret_files
    from installer.export.yamltext import dump

    names = [overlay_name(source) for source, _ in sources]
    if len(set(names)) != len(names):
        raise ExportError(
            "two answer files would make overlays of the same name: " + ", ".join(names),
            hint="name the answer files apart (each overlay is named after its file)",
        )
    loaded = [_source(n, a, release) for n, (_, a) in zip(names, sources, strict=True)]
    first = loaded[0]
    common = [
        (index, obj)
        for index, obj in enumerate(first.generic)
        if all(obj in other.generic for other in loaded[1:])
    ]
    files: dict[str, tuple[str, int]] = {
        ".yamllint.yaml": (YAMLLINT_CONFIG, 0o644),
        "README.md": (_readme(loaded, len(common), release), 0o644),
    }
    base_resources = []
    for index, obj in common:
        file = first.install.paths[index].rsplit("/", 1)[-1]
        files[f"base/{file}"] = (dump(obj), 0o644)
        base_resources.append(file)
    files["base/kustomization.yaml"] = (dump({**KUSTOMIZATION, "resources": base_resources}), 0o644)
    shared = [obj for _, obj in common]

    for source in loaded:
        prefix = f"overlays/{source.name}/"
        resources = ["../../base"]
        for index, obj in enumerate(source.install.objects):
            if source.generic[index] in shared:
                continue
            file = source.install.paths[index].rsplit("/", 1)[-1]
            own = copy.deepcopy(obj)
            if own.get("kind") == "Route":
                ((own.get("spec") or {}).get("tls") or {}).pop("key", None)
            files[prefix + file] = (dump(own), 0o644)
            resources.append(file)
        kustomization: dict[str, Any] = {
            **KUSTOMIZATION,
            "namespace": source.answers.kubernetes.namespace,
            "resources": resources,
        }
        if source.images:
            kustomization["images"] = [
                {"name": original, "newName": rewritten}
                for rewritten, original in sorted(source.images.items(), key=lambda i: i[1])
            ]
        if source.install.route_key is not None:
            kustomization["patches"] = [
                {"path": ROUTE_KEY_PATCH, "target": {"kind": "Route"}},
            ]
            files[prefix + "route-tls-key.example.yaml"] = (ROUTE_KEY_EXAMPLE, 0o644)
        files[prefix + "kustomization.yaml"] = (dump(kustomization), 0o644)
        for path, text in secret_files(source.install, source.answers).items():
            files[prefix + path] = (text, 0o755 if path == SCRIPT else 0o644)
    return files


def _readme(loaded: list[_Source], shared: int, release: ReleaseManifest) -> str:
    lines = [
        f"# CodeQual {release.version} (Kustomize)",
        "",
        "Exported by `codequal-installer plan --format kustomize`. `kubectl kustomize "
        "overlays/<name>` builds exactly the objects `codequal-installer apply` applies for "
        "that answer file, except the Secrets. `base/` holds the "
        f"{shared} objects every answer file has alike (the overlays put back their "
        "namespace and the mirror's image names); each overlay adds its own.",
        "",
        "| overlay | target | namespace | own objects |",
        "|---------|--------|-----------|-------------|",
    ]
    for source in loaded:
        own = sum(1 for obj in source.generic if not all(obj in o.generic for o in loaded))
        answers = source.answers
        lines.append(
            f"| `overlays/{source.name}` | {answers.target} | {answers.kubernetes.namespace} "
            f"| {own} |"
        )
    lines += [
        "",
        "No Secret is in these files. Each overlay has `create-secrets.sh`, which creates "
        "the Secrets its objects read from `CODEQUAL_<KEY>` environment variables (see its "
        "`secrets.example.yaml`); run it once the namespace exists. An overlay with "
        "`route-tls-key.example.yaml` (OpenShift Routes with a provided certificate) needs "
        "`route-tls-key.yaml` beside it, made from that example and kept out of Git.",
        "",
    ]
    return "\n".join(lines)
