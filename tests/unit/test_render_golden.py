"""Golden files: one answer file per target, every rendered file kept under tests/golden/.

A template change shows up in review as a diff of these files. To accept a change, run

    CODEQUAL_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_render_golden.py

and commit tests/golden/ with the template. Secret values (supplied or generated) are
replaced by ``***`` and PEM blocks by a marker, so the files hold no secret and stay stable.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from installer.release import load_release
from installer.render import RenderedPlan, render_plan
from tests.support.render_matrix import GOLDEN_CASES, case, materialize, write_test_pki

# Rendered as without a proxy, whatever the environment running the tests has.
pytestmark = pytest.mark.usefixtures("without_proxy")

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"
UPDATE = os.environ.get("CODEQUAL_UPDATE_GOLDEN") == "1"
_PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----", re.DOTALL)


def normalized(plan: RenderedPlan, content: bytes) -> str:
    text = _PEM.sub(lambda m: f"<PEM {m.group(1)}>", content.decode())
    return plan.redactor(text)


@pytest.mark.parametrize("target", sorted(GOLDEN_CASES))
def test_rendered_files_match_the_golden_files(target: str, tmp_path: Path) -> None:
    pki = write_test_pki(tmp_path / "pki")
    answers, secrets = materialize(case(GOLDEN_CASES[target]), pki)
    plan = render_plan(answers, secrets, load_release("0.1.0"), tmp_path / "root")
    expected_dir = GOLDEN_DIR / target
    rendered = {f.path: normalized(plan, f.content) for f in plan.files}
    if UPDATE:
        shutil.rmtree(expected_dir, ignore_errors=True)
        for path, text in rendered.items():
            (expected_dir / path).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / path).write_text(text)
    golden = {
        str(p.relative_to(expected_dir)): p.read_text()
        for p in sorted(expected_dir.rglob("*"))
        if p.is_file()
    }
    assert sorted(rendered) == sorted(golden), "files added or removed: update the golden files"
    for path, text in rendered.items():
        assert text == golden[path], f"{target}/{path} differs from tests/golden (see docstring)"


def test_golden_files_hold_no_secret_value(tmp_path: Path) -> None:
    from tests.support.render_matrix import MANAGED_DB_PASSWORD, SUPPLIED_SECRETS

    values = [*SUPPLIED_SECRETS.values(), MANAGED_DB_PASSWORD]
    for path in GOLDEN_DIR.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not [v for v in values if v in text], path
            assert "PRIVATE KEY-----\n" not in text, path
