"""The target and check names: defined once, used by the answer model and the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import get_args

from installer import answers, names

ROOT = Path(__file__).resolve().parents[2]


def test_the_answer_model_takes_its_names_from_the_one_definition() -> None:
    schema = answers.AnswerFile.model_json_schema()
    assert schema["properties"]["target"]["enum"] == list(names.TARGETS)
    skip = schema["$defs"]["Checks"]["properties"]["skip"]["items"]
    assert skip["enum"] == list(names.CHECK_NAMES)
    assert get_args(names.Target) == names.TARGETS
    assert set(names.TARGETS) == names.COMPOSE_TARGETS | names.KUBERNETES_TARGETS


def test_starting_the_command_line_loads_neither_pydantic_nor_the_ui() -> None:
    heavy = ("pydantic", "textual", "rich", "screens", "installer.bundle", "tarfile")
    code = f"import sys, installer.cli\nprint(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == ""
