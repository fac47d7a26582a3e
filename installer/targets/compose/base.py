"""What the Compose target and its steps share: the step base class, names and helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from installer.engine.process import CommandFailed
from installer.errors import EngineUnavailable, InstallerError, StepFailed
from installer.runner import StepUpdate

ImageLoader = Callable[[Path, Sequence[str]], Iterator[StepUpdate]]
"""Loads images from an offline bundle into Docker: ``(bundle, references) -> updates``."""

MIGRATE_SERVICE = "migrate"
RENDERED_INDEX = "rendered-files.json"


def step_failure(step: str, error: InstallerError, what: str | None = None) -> InstallerError:
    """An engine error as the step's failure, keeping command, exit code and output tail.

    An engine that stopped answering stays what it is (exit 3, resumable): the step did
    nothing wrong, and the runner leaves the rest to the next run."""
    if isinstance(error, (StepFailed, EngineUnavailable)):
        return error
    if isinstance(error, CommandFailed):
        return StepFailed(
            f"{what}: {error.message}" if what else error.message,
            step=step,
            hint=error.hint,
            command=error.command,
            returncode=error.returncode,
            log_tail=error.tail,
        )
    return StepFailed(
        f"{what}: {error.message}" if what else error.message, step=step, hint=error.hint
    )


def load_yaml(content: bytes) -> dict[str, Any]:
    from ruamel.yaml import YAML

    data = YAML(typ="safe", pure=True).load(content)
    return data if isinstance(data, dict) else {}


def safe_relative(path: str) -> bool:
    parts = Path(path).parts
    return bool(path) and not Path(path).is_absolute() and ".." not in parts


def kib(size: float) -> str:
    return f"{size / 1024:.0f} KiB" if size < 10 * 1024 * 1024 else f"{size / 1048576:.0f} MiB"
