"""``plan --format helm|kustomize``: load the answer files, export, say what was written."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from installer.errors import UsageError


def run_export(
    answers_paths: Sequence[str],
    out_dir: str,
    output_format: str,
    *,
    secrets_path: str | None = None,
    source_dir: str | None = None,
) -> list[str]:
    """Write the chart (helm) or the Kustomize tree into ``out_dir``; the files written."""
    from installer.export import export
    from installer.release import release_for
    from installer.validation import load_answers

    if source_dir is not None:
        raise UsageError("--source-dir is for the development target; it cannot be exported")
    if secrets_path is not None:
        # An export holds no secret: say so rather than read a file that cannot matter.
        click.echo("warning: --secrets is not read: an export holds no secret", err=True)
    if output_format == "helm" and len(answers_paths) != 1:
        raise UsageError("--format helm takes one --answers (a chart per answer file)")
    loaded = [(_source_name(path), load_answers(path)) for path in answers_paths]
    for name, answers in loaded:
        if answers.resources.profile == "auto":
            # apply measures the cluster's nodes; an export talks to no cluster.
            click.echo(
                f"warning: {name}: resources.profile auto is exported as the minimal profile; "
                "name a profile to size the pods for your nodes",
                err=True,
            )
    written = export(loaded, output_format, Path(out_dir))
    version = release_for(loaded[0][1]).version
    what = "Helm chart" if output_format == "helm" else "Kustomize base and overlays"
    click.echo(f"{what} for CodeQual {version}: {len(written)} files in {out_dir}")
    for path in written:
        click.echo(f"  {path}")
    click.echo(
        "No secret is in these files: create the Secrets with create-secrets.sh "
        "(see secrets.example.yaml)."
    )
    return written


def _source_name(path: str) -> str:
    return "standard input" if path == "-" else Path(path).name
