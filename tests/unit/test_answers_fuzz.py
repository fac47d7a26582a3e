"""Property tests: whatever the operator feeds `answers validate`, never a traceback.

Only two outcomes are allowed: exit 0 for a valid file, or exit 2 with one or more
``FILE:LINE:COL: ...`` lines. The outcome must also agree with the model itself.
"""

from __future__ import annotations

import copy
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from installer.answers import TARGETS
from installer.examples import example_answers
from tests.unit.cli_helpers import Result, run_cli

PROBLEM_LINE = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): ")

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["development", "production", "postgres", "sqlite", "/opt/x", "none", "1"]),
)
keys = st.one_of(
    st.text(min_size=1, max_size=15),
    st.sampled_from(["version", "target", "tls", "mode", "database", "kind", "port", "skip"]),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=25,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _validate_text(text: str) -> tuple[Result, str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "answers.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        return run_cli("answers", "validate", str(path)), str(path)


def _assert_clean_outcome(result: Result, path: str) -> None:
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        problems = [line for line in result.stderr.splitlines() if PROBLEM_LINE.match(line)]
        assert problems, result.stderr
        for line in problems:
            match = PROBLEM_LINE.match(line)
            assert match is not None
            assert match["file"] == path
            assert int(match["line"]) >= 1
            assert int(match["col"]) >= 1
    else:
        assert result.stdout.strip().endswith("valid")


@SETTINGS
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    result, path = _validate_text(text)
    _assert_clean_outcome(result, path)


@SETTINGS
@given(documents)
@example({"[key]": None})  # a key that looks like pydantic's own "[key]" location suffix
def test_arbitrary_yaml_documents_never_crash(document: Any) -> None:
    result, path = _validate_text(yaml.safe_dump(document, allow_unicode=True))
    _assert_clean_outcome(result, path)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


@st.composite
def mutated_answer_files(draw: st.DrawFn) -> dict[str, Any]:
    target = draw(st.sampled_from(TARGETS))
    document = example_answers(target).model_dump(mode="json", exclude_none=True)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(document)
        path = draw(st.sampled_from(paths))
        parent: Any = document
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        action = draw(st.sampled_from(["replace", "delete", "add", "rename"]))
        if action == "replace":
            parent[last] = draw(documents)
        elif action == "delete" and isinstance(parent, dict):
            del parent[last]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(keys)] = draw(documents)
        elif action == "rename" and isinstance(parent, dict):
            parent[str(last) + draw(st.text(min_size=1, max_size=2))] = parent.pop(last)
    return copy.deepcopy(document)


@SETTINGS
@given(mutated_answer_files())
def test_mutated_answer_files_never_crash_and_agree_with_the_model(document: Any) -> None:
    from pydantic import ValidationError

    from installer.answers import AnswerFile

    text = yaml.safe_dump(document, allow_unicode=True)
    result, path = _validate_text(text)
    _assert_clean_outcome(result, path)
    try:
        AnswerFile.model_validate(yaml.safe_load(text))
        model_ok = True
    except ValidationError:
        model_ok = False
    assert (result.exit_code == 0) == model_ok
