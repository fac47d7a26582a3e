"""Rendered files, writing them atomically, and what changed against a directory."""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from installer.credentials import Redactor
from installer.render.escape import RenderError
from installer.statedir import replace_file

RENDERED_INDEX = "rendered-files.json"
STATE_DIR = "state"
SECRET_MODE = 0o600
PUBLIC_MODE = 0o644


@dataclass(frozen=True)
class RenderedFile:
    """One generated file: where it goes (relative to the root), its bytes and mode."""

    path: str
    content: bytes
    mode: int = PUBLIC_MODE
    holds_secrets: bool = False

    def __post_init__(self) -> None:
        pure = PurePosixPath(self.path)
        if pure.is_absolute() or ".." in pure.parts or not self.path:
            raise RenderError(f"refusing to write outside the root: {self.path}")
        if self.holds_secrets and self.mode & 0o077:
            raise RenderError(f"{self.path} holds secrets and must be mode 0600")


@dataclass(frozen=True)
class KubernetesObject:
    """One Kubernetes object of the plan, in apply order, and the file that holds it."""

    api_version: str
    kind: str
    name: str
    namespace: str | None
    path: str


@dataclass(frozen=True)
class SecretUse:
    """A secret the plan uses, shown only by where it came from."""

    key: str
    shown_as: str  # <generated> | <from secrets file> | <from environment> | <not set>


@dataclass
class RenderedPlan:
    """Every file of an installation, plus what the runner and summary need to know."""

    target: str
    files: list[RenderedFile]
    kubernetes_objects: list[KubernetesObject] = field(default_factory=list)
    secrets: list[SecretUse] = field(default_factory=list)
    redactor: Redactor = field(default_factory=Redactor, repr=False)

    def file(self, path: str) -> RenderedFile:
        for item in self.files:
            if item.path == path:
                return item
        raise KeyError(path)

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self.files]


ChangeKind = Literal["new", "changed", "unchanged", "removed"]


@dataclass(frozen=True)
class FileChange:
    """How one file differs from what is in the root (diffs of secret files are masked)."""

    path: str
    kind: ChangeKind
    size: int
    diff: str = ""


# key: value / KEY=value / "key": value: the value part is hidden in secret files' diffs.
_KEY_VALUE = re.compile(r"^(\s*[-\"']?[A-Za-z0-9_.\-]+[\"']?\s*[:=]\s*)(\S.*)$")


def _mask_line(line: str) -> str:
    match = _KEY_VALUE.match(line)
    if match:
        return f"{match.group(1)}<hidden>"
    return "<hidden line>" if line.strip() else line


def unified_diff(
    path: str, old: bytes | None, new: bytes | None, *, secret: bool, redactor: Redactor
) -> str:
    """A unified diff of ``path``; for a file that holds secrets, changed lines are masked.

    Lines removed or added in a secret file show their key but never their value (the old
    value may be a secret the plan no longer knows); unchanged context lines go through
    ``redactor``.
    """
    old_lines = (old or b"").decode("utf-8", "replace").splitlines()
    new_lines = (new or b"").decode("utf-8", "replace").splitlines()
    if old_lines == new_lines:
        return ""
    out = [f"--- {'a/' + path if old is not None else '/dev/null'}"]
    out.append(f"+++ {'b/' + path if new is not None else '/dev/null'}")
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for group in matcher.get_grouped_opcodes(3):
        first, last = group[0], group[-1]
        out.append(
            f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@",
        )
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out.extend(" " + (redactor(x) if secret else x) for x in old_lines[i1:i2])
                continue
            if tag in ("replace", "delete"):
                out.extend("-" + (_mask_line(x) if secret else x) for x in old_lines[i1:i2])
            if tag in ("replace", "insert"):
                out.extend("+" + (_mask_line(x) if secret else x) for x in new_lines[j1:j2])
    return "\n".join(out) + "\n"


def _range(start: int, stop: int) -> str:
    length = stop - start
    first = start + 1 if length else start
    return f"{first}" if length == 1 else f"{first},{length}"


def _previous_paths(root: Path) -> list[str]:
    try:
        data = json.loads((root / STATE_DIR / RENDERED_INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    paths = data.get("files") if isinstance(data, dict) else None
    return [p for p in paths or [] if isinstance(p, str)]


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError as e:
        raise RenderError(f"{path} is a directory where a file belongs") from e
    except OSError as e:
        raise RenderError(f"cannot read {path}: {e.strerror}") from e


def compare_plan(plan: RenderedPlan, root: Path) -> list[FileChange]:
    """What writing ``plan`` into ``root`` would change, file by file; changes nothing."""
    changes: list[FileChange] = []
    for item in plan.files:
        old = _read(root / item.path)
        if old is None:
            kind: ChangeKind = "new"
        elif old == item.content:
            kind = "unchanged"
        else:
            kind = "changed"
        diff = (
            unified_diff(
                item.path, old, item.content, secret=item.holds_secrets, redactor=plan.redactor
            )
            if kind != "unchanged"
            else ""
        )
        changes.append(FileChange(item.path, kind, len(item.content), diff))
    current = set(plan.paths)
    for path in _previous_paths(root):
        if path in current or _unsafe(path):
            continue
        old = _read(root / path)
        if old is not None:
            # A file the previous plan wrote and this one does not: treat it as secret, the
            # plan no longer knows what it held.
            diff = unified_diff(path, old, None, secret=True, redactor=plan.redactor)
            changes.append(FileChange(path, "removed", 0, diff))
    return changes


def _unsafe(path: str) -> bool:
    pure = PurePosixPath(path)
    return pure.is_absolute() or ".." in pure.parts or not path


def write_plan(plan: RenderedPlan, root: Path) -> list[FileChange]:
    """Write every file of ``plan`` under ``root``; remove files an earlier plan wrote.

    Returns the changes, computed before writing. Files whose content is already right
    are still given the planned mode.
    """
    changes = compare_plan(plan, root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        by_path = {f.path: f for f in plan.files}
        for change in changes:
            target = root / change.path
            if change.kind == "removed":
                target.unlink(missing_ok=True)
                continue
            item = by_path[change.path]
            if change.kind == "unchanged":
                if (target.stat().st_mode & 0o777) != item.mode:
                    os.chmod(target, item.mode)
                continue
            replace_file(target, item.content, item.mode)
        index = json.dumps({"files": plan.paths}, indent=2).encode() + b"\n"
        state = root / STATE_DIR
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        if _read(state / RENDERED_INDEX) != index:
            replace_file(state / RENDERED_INDEX, index, SECRET_MODE)
    except OSError as e:
        raise RenderError(
            f"cannot write the plan into {root}: {e.strerror or type(e).__name__}"
        ) from e
    return changes


def changed_paths(changes: Iterable[FileChange]) -> list[str]:
    return [c.path for c in changes if c.kind != "unchanged"]
