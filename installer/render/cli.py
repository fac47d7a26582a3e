"""The ``plan`` command's work, kept out of :mod:`installer.cli` so start-up stays light."""

from __future__ import annotations

import os
from pathlib import Path

import click

from installer.resources import Capacity


def machine_capacity() -> Capacity:
    """CPUs this process may use and the machine's memory (for ``resources.profile: auto``)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 0
    return Capacity(cpus=float(cpus), memory_bytes=int(memory))


def run_plan(
    answers_paths: str | tuple[str, ...],
    secrets_path: str | None,
    out_dir: str,
    source_dir: str | None,
    output_format: str = "files",
) -> None:
    """Load and validate the inputs, render, write into ``out_dir``, print the summary."""
    paths = (answers_paths,) if isinstance(answers_paths, str) else answers_paths
    if output_format != "files":  # helm, kustomize: see installer.export
        from installer.export.cli import run_export

        run_export(paths, out_dir, output_format, secrets_path=secrets_path, source_dir=source_dir)
        return
    if len(paths) != 1:
        from installer.errors import UsageError

        raise UsageError("--answers is given once, except with --format kustomize")
    (answers_path,) = paths
    from installer.release import release_for
    from installer.render import render_plan, write_plan
    from installer.render.escape import RenderError
    from installer.render.summary import plan_summary
    from installer.validation import load_answers, load_secrets

    answers = load_answers(answers_path)
    loaded = load_secrets(secrets_path)
    for warning in loaded.warnings:
        click.echo(f"warning: {warning}", err=True)
    release = release_for(answers)
    out = Path(out_dir)
    if source_dir is not None:
        source = Path(source_dir).resolve()
        if not source.is_dir():
            raise RenderError(f"--source-dir {source_dir}: not a directory")
        source_dir = str(source)
    capacity = machine_capacity() if answers.resources.profile == "auto" else None
    plan = render_plan(answers, loaded, release, out, capacity, source_dir=source_dir)
    changes = write_plan(plan, out)
    click.echo(plan_summary(plan, changes, str(out), release=release.version), nl=False)
