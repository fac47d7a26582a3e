"""Rendering without touching an installation: the preview behind ``apply --dry-run``,
``plan``'s neighbours and the wizard's review.

Rendering keeps what it generates (passwords nobody supplied, the self-signed certificate)
in ``<root>/state/``. A preview must write nothing there, yet show exactly what an install
would write: so it renders into a scratch root whose ``state/`` starts with copies of those
files from the installation (:data:`BORROWED_STATE`), then compares the result with the
installed files. Everything generated for the first time during a preview is thrown away
with the scratch directory; the install makes its own, once.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from installer.render.plan import STATE_DIR, FileChange, RenderedPlan, compare_plan

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.credentials import LoadedSecrets, Secrets
    from installer.release import ReleaseManifest
    from installer.resources import Capacity

BORROWED_STATE = ("generated-secrets.json", "tls")
"""What a scratch root copies from the installation's ``state/``: what rendering reuses."""


@dataclass(frozen=True)
class RenderPreview:
    """A plan rendered in a scratch root, and how it differs from the installed files.

    ``changes`` is :func:`~installer.render.plan.compare_plan` against the installation
    (empty when there is none to compare with): one entry per rendered file, in order,
    then the files the installation has and this plan no longer writes (``removed``).
    """

    rendered: RenderedPlan
    changes: list[FileChange] = field(default_factory=list)

    def change(self, path: str) -> FileChange | None:
        return next((c for c in self.changes if c.path == path), None)

    @property
    def removed(self) -> list[FileChange]:
        return [c for c in self.changes if c.kind == "removed"]


@contextlib.contextmanager
def scratch_root(installed: Path | None) -> Iterator[Path]:
    """A temporary root whose ``state/`` holds copies of what rendering reuses from the
    installation at ``installed`` (nothing when it is None or holds no installation)."""
    with tempfile.TemporaryDirectory(prefix="codequal-preview-") as scratch:
        root = Path(scratch)
        if installed is not None:
            for name in BORROWED_STATE:
                source = installed / STATE_DIR / name
                target = root / STATE_DIR / name
                if source.is_dir():
                    shutil.copytree(source, target)
                elif source.is_file():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, target)
        yield root


def compared(rendered: RenderedPlan, installed: Path | None) -> RenderPreview:
    """``rendered`` with its differences from the installation at ``installed``."""
    changes = compare_plan(rendered, installed) if installed is not None else []
    return RenderPreview(rendered, changes)


def preview(
    answers: AnswerFile,
    secrets: Secrets | LoadedSecrets,
    release: ReleaseManifest,
    installed: Path | None,
    capacity: Capacity | None = None,
) -> RenderPreview:
    """Render ``answers`` as an install into ``installed`` would, writing nothing anywhere
    but a scratch directory, and compare the result with what is installed there."""
    from installer.render.files import render_plan

    with scratch_root(installed) as root:
        rendered = render_plan(answers, secrets, release, root, capacity)
    return compared(rendered, installed)
