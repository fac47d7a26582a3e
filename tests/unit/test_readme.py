"""The README's answer-file reference is the model's, word for word."""

from __future__ import annotations

from pathlib import Path

from installer.reference import REFERENCE_END, REFERENCE_START, answers_reference_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_reference_matches_the_model() -> None:
    text = README.read_text()
    start = text.index(REFERENCE_START) + len(REFERENCE_START)
    end = text.index(REFERENCE_END)
    assert text[start:end].strip() == answers_reference_markdown().strip(), (
        "regenerate the README reference: codequal-installer answers reference"
    )


def test_reference_lists_every_section_and_nested_field() -> None:
    reference = answers_reference_markdown()
    for key in ("`tls.mode`", "`kubernetes.autoscaling.cpu_percent`", "`checks.skip`"):
        assert key in reference
