"""GitOps export: the Kubernetes install as a Helm chart or a Kustomize tree.

``plan --format helm|kustomize`` writes what ``apply`` would apply to a cluster as files for
Argo CD or Flux to apply instead: :mod:`installer.export.helm` makes a chart whose templates
are the Kubernetes target's own objects with the chart values substituted,
:mod:`installer.export.kustomize` a ``base/`` and one overlay per answer file. Neither holds
a secret (:mod:`installer.export.secrets`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from installer.answers import AnswerFile

FORMATS = ("helm", "kustomize")


def export(sources: list[tuple[str, AnswerFile]], output_format: str, out: Path) -> list[str]:
    """Write the chart (``helm``: one answer file) or the Kustomize tree (one overlay per
    answer file) for ``sources`` (name, answers) into ``out``; the paths written.

    Raises :class:`~installer.export.objects.ExportError` (exit 2) for what cannot be
    exported, ``OSError`` when ``out`` cannot be written.
    """
    from installer.errors import UsageError
    from installer.release import release_for

    if output_format not in FORMATS:
        raise UsageError(f"unknown export format {output_format!r}")
    if output_format == "helm" and len(sources) != 1:
        raise UsageError("--format helm takes one --answers (a chart per answer file)")
    releases = {release_for(answers).version: release_for(answers) for _, answers in sources}
    if len(releases) != 1:
        raise UsageError(
            "the answer files name different releases: " + ", ".join(sorted(releases)),
            hint="export one release at a time",
        )
    (release,) = releases.values()
    if output_format == "helm":
        from installer.export.helm import helm_files

        name, answers = sources[0]
        files = helm_files(answers, release, name)
    else:
        from installer.export.kustomize import kustomize_files

        files = kustomize_files(sources, release)
    return write_files(files, out)


def write_files(files: dict[str, tuple[str, int]], out: Path) -> list[str]:
    """Write ``files`` under ``out`` atomically, each with its mode; the paths, sorted."""
    from installer.statedir import replace_file

    for path, (text, mode) in sorted(files.items()):
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        replace_file(target, text.encode("utf-8"), mode)
    return sorted(files)
