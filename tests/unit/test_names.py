"""The command line's choice lists are the answer model's, without loading the model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from installer import answers, names

ROOT = Path(__file__).resolve().parents[2]


def test_the_names_are_the_models_literals() -> None:
    assert names.TARGETS == answers.TARGETS
    assert names.CHECK_NAMES == answers.CHECK_NAMES


def test_starting_the_command_line_loads_neither_pydantic_nor_the_ui() -> None:
    heavy = ("pydantic", "textual", "rich", "screens", "installer.bundle", "tarfile")
    code = f"import sys, installer.cli\nprint(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == ""
