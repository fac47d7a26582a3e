"""scripts/test runs the tests that hold the host-ports lock (marked ``host_ports``) in one
process and every other test beside it. A test that takes the lock without the mark would
run in the other process and wait there for the whole first one: these tests keep the mark
and the lock together."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import _HOST_PORTS_FIXTURES

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent


def _decorators(function: ast.FunctionDef) -> list[str]:
    names = []
    for decorator in function.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        names.append(ast.unparse(target))
    return names


def _takes_the_lock(function: ast.FunctionDef) -> bool:
    return any(
        isinstance(node, ast.Call) and ast.unparse(node.func) == "host_ports_lock"
        for node in ast.walk(function)
    )


def test_whatever_takes_the_host_ports_lock_is_marked_or_a_marking_fixture() -> None:
    unmarked = []
    for path in sorted(TESTS.rglob("*.py")):
        if path.name == "apply_support.py":  # where the lock is defined
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.FunctionDef) or not _takes_the_lock(node):
                continue
            decorators = _decorators(node)
            if "pytest.fixture" in decorators:
                if node.name not in _HOST_PORTS_FIXTURES:
                    unmarked.append(f"{path.relative_to(REPO)}: fixture {node.name}")
            elif "pytest.mark.host_ports" not in decorators:
                unmarked.append(f"{path.relative_to(REPO)}: {node.name}")
    assert unmarked == []


def test_the_install_fixture_marks_its_tests_and_nothing_else() -> None:
    collected = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-m",
            "host_ports",
            "tests/integration/test_lifecycle.py",
            "tests/integration/test_check_cli.py",
            "tests/integration/test_bundle_apply.py",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert collected.returncode == 0, collected.stdout + collected.stderr
    ids = {line for line in collected.stdout.splitlines() if "::" in line}
    lifecycle = {i for i in ids if i.startswith("tests/integration/test_lifecycle.py::")}
    assert lifecycle and len(lifecycle) >= 4  # every test there uses ``install``
    assert {i.split("::")[1] for i in ids if "test_check_cli" in i} == {
        "test_a_listener_on_port_3000_fails_the_ports_check"  # through port_3000_held
    }
    assert {i.split("::")[1] for i in ids if "test_bundle_apply" in i} == {
        "test_a_bundle_not_signed_by_the_key_given_stops_the_install_before_anything_is_written",
        "test_a_compose_install_from_the_bundle_needs_no_network",
    }
