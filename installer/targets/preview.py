"""What a run would do, computed without changing anything: the front ends' view of a plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from installer.render import RenderPreview


@dataclass(frozen=True)
class PlannedFile:
    """One file a run would write: where, how big, and how it differs from what is there."""

    path: str
    size: int
    mode: int
    change: str  # new | changed | unchanged | removed
    holds_secrets: bool = False


@dataclass(frozen=True)
class PlannedStep:
    name: str
    title: str
    description: str


@dataclass
class PlanPreview:
    """What a run would do, computed without changing anything."""

    target: str
    release: str
    location: str  # install_dir, or the cluster context and namespace
    files: list[PlannedFile]
    steps: list[PlannedStep]
    facts: dict[str, Any] = field(default_factory=dict)  # project name, images, URLs...
    rendering: RenderPreview | None = field(default=None, repr=False, compare=False)
    """The scratch rendering behind ``files`` (contents, diffs), for a front end to show
    without rendering again; not part of :meth:`to_dict`."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "release": self.release,
            "location": self.location,
            "files": [
                {
                    "path": f.path,
                    "size": f.size,
                    "mode": f"{f.mode:04o}",
                    "change": f.change,
                    "holds_secrets": f.holds_secrets,
                }
                for f in self.files
            ],
            "steps": [
                {"name": s.name, "title": s.title, "description": s.description} for s in self.steps
            ],
            **self.facts,
        }
