"""The README's layout section names every package of installer/ and nothing that is gone."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _layout_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Layout of this repository")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_layout_section_names_every_installer_package() -> None:
    packages = {
        path.parent.relative_to(ROOT).as_posix() + "/"
        for path in (ROOT / "installer").rglob("__init__.py")
        if path.parent != ROOT / "installer"
    }
    named = set(re.findall(r"`(installer/[\w/]+/)`", _layout_section()))
    assert named == packages
