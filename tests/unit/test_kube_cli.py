"""``apply`` (with and without ``--dry-run``) and ``status`` for the kubernetes target, run
through the real command line against the fake API server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.fake_kube_api import FakeKubeAPI
from tests.unit.cli_helpers import run_cli

SECRET = "sk-ant-cli-test-secret-value"
ANSWERS = {
    "version": 1,
    "target": "kubernetes",
    "domain": "codequal.test.invalid",
    "resources": {"profile": "minimal"},
    "monitoring": {"enabled": False},
    "checks": {"skip": ["dns"]},
}


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as server:
        monkeypatch.setenv("KUBECONFIG", str(server.write_kubeconfig(tmp_path / "kubeconfig")))
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))
        monkeypatch.setenv("CODEQUAL_ANTHROPIC_API_KEY", SECRET)
        yield server
        assert server.fake_failures == []


@pytest.fixture
def answer_file(tmp_path: Path) -> Path:
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(ANSWERS))
    return path


def test_dry_run_prints_the_objects_in_apply_order_and_changes_nothing(
    api: FakeKubeAPI, answer_file: Path, tmp_path: Path
) -> None:
    result = run_cli("apply", "--answers", str(answer_file), "--dry-run")

    assert result.exit_code == 0, result.output
    assert "Objects in apply order (server-side dry run)" in result.stdout
    listing = result.stdout.split("Objects in apply order", 1)[1].split("Steps", 1)[0]
    rows = [line.split("│") for line in listing.splitlines() if "│" in line]
    objects = [cells[1].strip() for cells in rows if cells[0].strip()]
    assert objects[0] == "Namespace codequal"
    assert objects.index("Deployment codequal (codequal)") < objects.index(
        "Ingress codequal (codequal)"
    )
    assert "would be created" in result.stdout
    assert api.writes() == []
    assert not (tmp_path / "state-home").exists()  # not even the local state was written
    assert SECRET not in result.output


def test_dry_run_json_lists_every_object_with_its_verdict(
    api: FakeKubeAPI, answer_file: Path
) -> None:
    result = run_cli("apply", "--answers", str(answer_file), "--dry-run", "--json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["dry_run"] == "server"
    kinds = [o["kind"] for o in document["objects"]]
    assert kinds[0] == "Namespace"
    assert kinds.index("Secret") < kinds.index("Deployment") < kinds.index("Job")
    assert kinds.index("Job") < kinds.index("Ingress") < kinds.index("NetworkPolicy")
    secret = next(o for o in document["objects"] if o["kind"] == "Secret")
    assert set((secret["object"].get("stringData") or secret["object"]["data"]).values()) == {
        "<redacted>"
    }
    assert SECRET not in result.stdout
    assert api.writes() == []


def test_dry_run_without_a_cluster_shows_the_rendered_objects(
    answer_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))
    result = run_cli("apply", "--answers", str(answer_file), "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["dry_run"] == "rendered"
    assert document["objects"][0]["verdict"].startswith("rendered (not checked: no kubeconfig")


def test_apply_then_status(api: FakeKubeAPI, answer_file: Path) -> None:
    result = run_cli("apply", "--answers", str(answer_file), "--yes", "--json")
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert result.exit_code == 0, result.output
    assert events[-1]["type"] == "run.finished" and events[-1]["exit_code"] == 0
    assert SECRET not in result.output

    status = run_cli("status", "--answers", str(answer_file), "--json")
    assert status.exit_code == 0, status.output
    document = json.loads(status.stdout)
    assert document["installed"] is True and document["healthy"] is True
    assert {s["name"] for s in document["services"]} >= {"codequal", "deepwiki", "postgres"}

    shown = run_cli("status", "--answers", str(answer_file))
    assert "CodeQual 0.1.0 (kubernetes) in namespace codequal" in shown.stdout


def test_status_of_an_empty_namespace_exits_1(api: FakeKubeAPI, answer_file: Path) -> None:
    status = run_cli("status", "--answers", str(answer_file))
    assert status.exit_code == 1
    assert "nothing installed in namespace codequal" in status.stdout


def test_apply_in_plain_text_ends_with_the_urls(api: FakeKubeAPI, answer_file: Path) -> None:
    result = run_cli("apply", "--answers", str(answer_file), "--yes")
    assert result.exit_code == 0, result.output
    assert "CodeQual 0.1.0 (kubernetes)" in result.stdout
    assert "https://codequal.test.invalid/deepwiki/" in result.stdout
    assert "Secret codequal/codequal-secrets in the cluster" in result.stdout
