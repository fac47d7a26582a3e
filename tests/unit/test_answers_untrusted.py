"""Answer and secrets files as untrusted input: bounded work, only regular files, positions.

The command-line cases run the real console entry in a child process with a timeout, so a
file that made the installer block or spin fails the test instead of hanging the suite.
The property over anchor/alias structures asserts the budget itself (what the parser hands
over is never larger than ``MAX_NODES``, and a larger expansion is refused at an alias),
not the wall time; ``benchmarks/bench_answers_limits.py`` measures the time.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from installer.errors import AnswerFileError
from installer.yamlsource import MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_NODES, parse_yaml, read_yaml
from tests.unit.cli_helpers import run_cli

REPO = Path(__file__).resolve().parents[2]
PROBLEM = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<message>.*)$")


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    """The classic: each level a list of ``width`` aliases to the level below."""
    lines = ["version: 1", "target: development"]
    lines.append("a0: &a0 [" + ",".join(['"lol"'] * width) + "]")
    for level in range(1, levels):
        aliases = ",".join(f"*a{level - 1}" for _ in range(width))
        lines.append(f"a{level}: &a{level} [{aliases}]")
    return "\n".join(lines) + "\n"


def _cli(*args: str, timeout: float = 20) -> tuple[subprocess.CompletedProcess[str], float]:
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "installer", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=timeout,  # a blocked or spinning installer fails here, not in an hour
        check=False,
    )
    return result, time.monotonic() - started


def _problem(stderr: str, path: Path) -> re.Match[str]:
    for line in stderr.splitlines():
        match = PROBLEM.match(line)
        if match and match["file"] == str(path):
            return match
    raise AssertionError(f"no FILE:LINE:COL line for {path} in:\n{stderr}")


def _at(text: str, line: int, column: int) -> str:
    return text.splitlines()[line - 1][column - 1 :]


@pytest.fixture
def laughs(tmp_path: Path) -> Path:
    path = tmp_path / "laughs.yaml"
    path.write_text(billion_laughs())
    assert path.stat().st_size < 600
    return path


@pytest.mark.parametrize(
    "command",
    [
        ("answers", "validate", "{path}"),
        ("apply", "--answers", "{path}", "--yes"),
        ("check", "--answers", "{path}"),
        ("plan", "--answers", "{path}", "--out", "{tmp}/out"),
        ("--answers", "{path}"),  # the wizard, pre-filled: refused before any screen opens
    ],
    ids=["validate", "apply", "check", "plan", "wizard"],
)
def test_billion_laughs_is_refused_at_the_alias_that_crosses_the_budget(
    command: tuple[str, ...], laughs: Path, tmp_path: Path
) -> None:
    args = [part.format(path=laughs, tmp=tmp_path) for part in command]
    result, elapsed = _cli(*args)
    assert result.returncode == 2, result.stderr
    problem = _problem(result.stderr, laughs)
    assert f"more than {MAX_NODES} values" in problem["message"]
    assert _at(laughs.read_text(), int(problem["line"]), int(problem["col"])).startswith("*a")
    assert "Traceback" not in result.stderr
    print(f"{' '.join(command[:2])}: {elapsed:.2f} s")  # figures for the notes, with -s


def test_billion_laughs_as_secrets_file_is_refused_too(laughs: Path, tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text("version: 1\ntarget: development\n")
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(billion_laughs().replace("version: 1\ntarget: development\n", ""))
    result = run_cli("answers", "validate", str(answers), "--secrets", str(secrets))
    assert result.exit_code == 2
    assert f"more than {MAX_NODES} values" in _problem(result.stderr, secrets)["message"]


@pytest.mark.parametrize(
    "command",
    [
        ("answers", "validate", "{pipe}"),
        ("answers", "validate", "{answers}", "--secrets", "{pipe}"),
        ("apply", "--answers", "{pipe}", "--yes"),
        ("apply", "--answers", "{answers}", "--secrets", "{pipe}", "--dry-run"),
        ("check", "--answers", "{pipe}"),
        ("--answers", "{pipe}"),
    ],
    ids=["validate", "validate-secrets", "apply", "apply-secrets", "check", "wizard"],
)
def test_a_named_pipe_is_a_usage_error_at_once(command: tuple[str, ...], tmp_path: Path) -> None:
    pipe = tmp_path / "answers.fifo"
    os.mkfifo(pipe)
    answers = tmp_path / "answers.yaml"
    answers.write_text(f"version: 1\ntarget: development\ninstall_dir: {tmp_path / 'install'}\n")
    args = [part.format(pipe=pipe, answers=answers) for part in command]
    result, _ = _cli(*args, timeout=10)  # nobody ever writes to the pipe
    assert result.returncode == 2, result.stderr
    assert "is a named pipe, not a regular file" in _problem(result.stderr, pipe)["message"]
    assert not (tmp_path / "install").exists()


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda tmp: Path("/dev/null"), "a device"),
        (lambda tmp: Path("/dev/zero"), "a device"),
        (lambda tmp: tmp, "a directory"),
    ],
    ids=["dev-null", "dev-zero", "directory"],
)
def test_devices_and_directories_are_refused_before_reading(
    make: Any, kind: str, tmp_path: Path
) -> None:
    path = make(tmp_path)
    result = run_cli("answers", "validate", str(path))
    assert result.exit_code == 2
    assert f"is {kind}, not a regular file" in _problem(result.stderr, path)["message"]
    with pytest.raises(AnswerFileError, match=f"is {kind}, not a regular file"):
        read_yaml(str(path), what="secrets file")


def test_a_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(AnswerFileError, match="is a socket, not a regular file"):
            read_yaml(str(path))


def test_a_symlink_to_a_regular_file_is_read(tmp_path: Path) -> None:
    target = tmp_path / "real.yaml"
    target.write_text("version: 1\ntarget: development\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    assert read_yaml(str(link)).data == {"version": 1, "target": "development"}


def _limit_problem(text: str | bytes, tmp_path: Path) -> tuple[int, int, str]:
    path = tmp_path / "a.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(AnswerFileError) as caught:
        read_yaml(str(path))
    match = PROBLEM.match(caught.value.problems[0])
    assert match is not None and match["file"] == str(path)
    return int(match["line"]), int(match["col"]), match["message"]


def test_each_limit_is_reported_where_it_was_reached(tmp_path: Path) -> None:
    size = _limit_problem("version: 1\n" + "k: " + "x" * MAX_DOCUMENT_BYTES + "\n", tmp_path)
    assert size == (2, MAX_DOCUMENT_BYTES - len("version: 1\n") + 1, size[2])
    assert f"larger than {MAX_DOCUMENT_BYTES // 1024} KiB" in size[2]

    nul = _limit_problem("version: 1\ntarget: de\x00v\n", tmp_path)
    assert nul[:2] == (2, 11) and "NUL" in nul[2]

    not_utf8 = _limit_problem(b"version: 1\ntarget: \xff\n", tmp_path)
    assert not_utf8[:2] == (2, 9) and "not UTF-8" in not_utf8[2]

    flow = "k: " + "[" * (MAX_DEPTH + 50) + "]" * (MAX_DEPTH + 50) + "\n"
    deep = _limit_problem(flow, tmp_path)
    assert deep[0] == 1 and flow[deep[1] - 1] == "[" and "deeper than" in deep[2]

    block = "".join(" " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 5)) + " " * 200 + "x\n"
    deep_block = _limit_problem(block, tmp_path)
    assert deep_block[:2] == (MAX_DEPTH, MAX_DEPTH) and "deeper than" in deep_block[2]

    many = "".join(f"k{i}: v\n" for i in range(MAX_NODES))
    too_many = _limit_problem(many, tmp_path)
    assert _at(many, *too_many[:2]) == "v" and "more than" in too_many[2]


def test_nesting_through_aliases_counts_too(tmp_path: Path) -> None:
    half = MAX_DEPTH // 2 + 5
    text = (
        "a: &deep " + "[" * half + "]" * half + "\nb: " + "[" * half + "*deep" + "]" * half + "\n"
    )
    line, col, message = _limit_problem(text, tmp_path)
    assert "deeper than" in message
    assert _at(text, line, col).startswith("*deep")


def test_an_alias_inside_its_own_node_is_refused_at_the_alias(tmp_path: Path) -> None:
    text = "version: 1\nloop: &x\n  - 1\n  - *x\n"
    line, col, message = _limit_problem(text, tmp_path)
    assert (line, col) == (4, 5)
    assert "alias *x is inside the node it names" in message


def test_aliases_within_the_budget_still_work() -> None:
    text = (
        "version: 1\n"
        "target: development\n"
        "checks:\n  skip: &skipped [dns, cpu]\n"
        "resources: {profile: minimal}\n"
    )
    document = parse_yaml(text, "<test>")
    assert document.data["checks"] == {"skip": ["dns", "cpu"]}
    unrelated = parse_yaml("a: &a [x, y]\nb: *a\nc: *a\n", "<test>")
    assert unrelated.data == {"a": ["x", "y"], "b": ["x", "y"], "c": ["x", "y"]}


# --- the property: generated anchor/alias structures --------------------------------------


def _expanded(value: Any) -> int:
    """Values in plain data, counted as the composer counts them (keys too)."""
    if isinstance(value, dict):
        return 1 + sum(1 + _expanded(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_expanded(v) for v in value)
    return 1


@st.composite
def alias_structures(draw: st.DrawFn) -> tuple[str, int]:
    """A document of anchored collections, each made of scalars and aliases to earlier ones.

    Returns the text and the size it would have with every alias expanded.
    """
    levels = draw(st.integers(min_value=1, max_value=12))
    sizes: list[int] = []
    lines: list[str] = []
    for level in range(levels):
        width = draw(st.integers(min_value=1, max_value=12))
        items: list[tuple[str, int]] = []
        for _ in range(width):
            if sizes and draw(st.integers(min_value=0, max_value=3)) > 0:  # mostly aliases
                target = draw(st.integers(min_value=0, max_value=len(sizes) - 1))
                items.append((f"*n{target}", sizes[target]))
            else:
                items.append(("s", 1))
        as_mapping = draw(st.booleans())
        if as_mapping:
            body = ", ".join(f"k{i}: {text}" for i, (text, _) in enumerate(items))
            text, size = "{" + body + "}", 1 + sum(1 + s for _, s in items)
        else:
            body = ", ".join(text for text, _ in items)
            text, size = "[" + body + "]", 1 + sum(s for _, s in items)
        lines.append(f"n{level}: &n{level} {text}")
        sizes.append(size)
    return "\n".join(lines) + "\n", 1 + sum(1 + s for s in sizes)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(alias_structures())
def test_no_alias_structure_gets_past_the_node_budget(structure: tuple[str, int]) -> None:
    text, expanded = structure
    event("over the budget" if expanded > MAX_NODES else "within the budget")
    try:
        document = parse_yaml(text, "<generated>")
    except AnswerFileError as e:
        match = PROBLEM.match(e.problems[0])
        assert match is not None, e.problems
        assert expanded > MAX_NODES, (expanded, e.problems)
        assert f"more than {MAX_NODES} values" in match["message"]
        # Where the count crossed the budget: at an alias, or (the last value counted being
        # a plain one) at that key or value; a top-level key (nN, in column 1) is one too.
        column = int(match["col"])
        there = _at(text, int(match["line"]), column)
        if "aliases expanded" in match["message"]:
            assert there.startswith("*n"), there
        else:
            assert there[:1] in ("s", "k", "[", "{") or (column == 1 and there[:1] == "n"), there
    else:
        assert expanded <= MAX_NODES
        assert _expanded(document.data) == expanded


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(structure=alias_structures())
def test_validate_answers_either_refuses_or_validates_alias_structures(
    structure: tuple[str, int], tmp_path_factory: pytest.TempPathFactory
) -> None:
    text, expanded = structure
    path = tmp_path_factory.mktemp("aliases") / "a.yaml"
    path.write_text("version: 1\ntarget: development\n" + text)
    result = run_cli("answers", "validate", str(path))
    assert result.exit_code == 2  # the generated keys are unknown: never valid, never a crash
    assert "Traceback" not in result.output
    budget = [line for line in result.stderr.splitlines() if "values (the limit)" in line]
    assert bool(budget) == (expanded + 4 > MAX_NODES)
