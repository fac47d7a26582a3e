"""GitOps export: the Kubernetes install as a Helm chart or a Kustomize tree.

``plan --format helm|kustomize`` writes what ``apply`` would apply to a cluster as files for
Argo CD or Flux to apply instead: :mod:`installer.export.helm` makes a chart whose templates
are the Kubernetes target's own objects with the chart values substituted,
:mod:`installer.export.kustomize` a ``base/`` and one overlay per answer file. Neither holds
a secret (:mod:`installer.export.secrets`).
"""

from __future__ import annotations

from pathlib import Path

FORMATS = ("helm", "kustomize")


def write_files(files: dict[str, tuple[str, int]], out: Path) -> list[str]:
    """Write ``files`` under ``out`` atomically, each with its mode; the paths, sorted."""
    from installer.statedir import replace_file

    for path, (text, mode) in sorted(files.items()):
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        replace_file(target, text.encode("utf-8"), mode)
    return sorted(files)
