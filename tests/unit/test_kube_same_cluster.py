"""``check`` and ``apply`` reach the cluster through the same connection code.

A kubeconfig with two contexts, each pointing at its own stand-in API server with its own
token: the current context is ``alpha``, the answers name ``beta``. Both commands must talk
to ``beta``'s server only, with ``beta``'s credentials (the server refuses any other token).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.fake_kube_api import FakeKubeAPI, write_kubeconfig
from tests.unit.cli_helpers import run_cli

ANSWERS = {
    "version": 1,
    "target": "kubernetes",
    "domain": "codequal.test.invalid",
    "resources": {"profile": "minimal"},
    "monitoring": {"enabled": False},
    "kubernetes": {"context": "beta"},
    "checks": {"skip": ["dns"]},
}


@pytest.fixture
def servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, FakeKubeAPI]]:
    with FakeKubeAPI(token="alpha-token") as alpha, FakeKubeAPI(token="beta-token") as beta:
        config = write_kubeconfig(
            tmp_path / "kubeconfig", {"alpha": alpha, "beta": beta}, current="alpha"
        )
        monkeypatch.setenv("KUBECONFIG", str(config))
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))
        yield {"alpha": alpha, "beta": beta}
        assert alpha.fake_failures == [] and beta.fake_failures == []


@pytest.fixture
def answer_file(tmp_path: Path) -> Path:
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(ANSWERS))
    return path


def test_check_and_apply_both_reach_the_context_named_in_the_answers(
    servers: dict[str, FakeKubeAPI], answer_file: Path
) -> None:
    alpha, beta = servers["alpha"], servers["beta"]

    check = run_cli("check", "--answers", str(answer_file), "--json")
    report = json.loads(check.stdout)
    kubernetes = next(c for c in report["checks"] if c["name"] == "kubernetes")
    assert kubernetes["status"] == "pass", kubernetes
    assert kubernetes["details"]["context"] == "beta"
    assert kubernetes["details"]["server"] == beta.url
    asked_by_check = list(beta.seen)
    assert ("GET", "/version") in asked_by_check
    assert any(path.startswith("/api/v1/nodes") for _method, path in asked_by_check)
    assert alpha.seen == []

    dry_run = run_cli("apply", "--answers", str(answer_file), "--dry-run", "--json")
    assert dry_run.exit_code == 0, dry_run.output
    assert json.loads(dry_run.stdout)["dry_run"] == "server"  # the cluster was asked
    asked_by_apply = beta.seen[len(asked_by_check) :]
    assert ("GET", "/version") in asked_by_apply
    assert any("dryRun=All" in path for method, path in asked_by_apply if method == "PATCH")
    assert beta.writes() == []
    assert alpha.seen == []


def test_the_current_context_is_used_when_the_answers_name_none(
    servers: dict[str, FakeKubeAPI], tmp_path: Path
) -> None:
    path = tmp_path / "current.yaml"
    path.write_text(yaml.safe_dump({**ANSWERS, "kubernetes": {}}))

    check = run_cli("check", "--answers", str(path), "--json")
    kubernetes = next(c for c in json.loads(check.stdout)["checks"] if c["name"] == "kubernetes")
    assert kubernetes["details"]["context"] == "alpha"
    dry_run = run_cli("apply", "--answers", str(path), "--dry-run", "--json")
    assert dry_run.exit_code == 0, dry_run.output

    assert servers["alpha"].seen and servers["beta"].seen == []
