"""The Kubernetes API server going away in the middle of an ``apply``, and coming back.

The stand-in API server stops answering at the first Deployment the install applies (the
Namespace, Secrets, ConfigMaps, claims and Services are in by then) and stops listening, as
a crashed API server or a dropped VPN would. The operator is told which server, in which
step, and to run the same command again; the rollback does not fail a second time for the
same reason. Brought back on its port with what it stored, the same ``apply`` finishes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.fake_kube_api import FakeKubeAPI
from tests.unit.cli_helpers import run_cli

ANSWERS = {
    "version": 1,
    "target": "kubernetes",
    "domain": "codequal.test.invalid",
    "resources": {"profile": "minimal"},
    "monitoring": {"enabled": False},
    "checks": {"skip": ["dns"]},
}


def first_deployment_write(method: str, path: str) -> bool:
    return method == "PATCH" and "/deployments/" in path and "dryRun" not in path


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as server:
        monkeypatch.setenv("KUBECONFIG", str(server.write_kubeconfig(tmp_path / "kubeconfig")))
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))
        yield server
        assert server.fake_failures == []


@pytest.fixture
def answer_file(tmp_path: Path) -> Path:
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(ANSWERS))
    return path


def test_the_api_server_going_away_mid_apply_exits_3_and_the_rerun_finishes(
    api: FakeKubeAPI, answer_file: Path
) -> None:
    server, port = api.url, api.port
    api.vanish_when = first_deployment_write

    gone = run_cli("apply", "--answers", str(answer_file), "--yes")

    assert gone.exit_code == 3, gone.output
    assert api.gone.is_set()
    final = gone.stdout.strip().splitlines()
    failure = next(line for line in final if line.startswith("✗ step"))
    assert failure.startswith(f"✗ step containers: the Kubernetes API at {server} did not answer")
    assert "applying Deployment" in failure
    hint = next(line for line in final if line.startswith("hint: "))
    assert "make the cluster reachable" in hint
    assert "run the same command again" in hint
    assert "the same command, run again, resumes the install" in failure
    assert "not rolled back: containers needs the engine that stopped answering" in gone.stdout
    assert "failed too" not in gone.output  # no second failure for the same cause
    assert "unexpected error" not in gone.output
    assert "Traceback" not in gone.output
    # Some objects were in before the server went away; the Deployments were not.
    assert api.get_object("v1", "Namespace", "codequal") is not None
    assert api.get_object("v1", "Service", "codequal", "codequal") is not None
    assert api.list_objects("apps/v1", "Deployment", "codequal") == []

    api.stop()
    api.vanish_when = None
    api.start(port)  # the same address, the same stored objects
    assert api.url == server

    again = run_cli("apply", "--answers", str(answer_file), "--yes", "--json")

    events = [json.loads(line) for line in again.stdout.splitlines() if line.strip()]
    assert again.exit_code == 0, again.output
    assert "resuming the interrupted run" in events[0]["message"]
    assert events[-1]["type"] == "run.finished"
    assert {
        d["metadata"]["name"] for d in api.list_objects("apps/v1", "Deployment", "codequal")
    } >= {
        "codequal",
        "deepwiki",
    }


def test_a_server_gone_before_the_run_is_a_failed_prerequisite_not_a_crash(
    api: FakeKubeAPI, answer_file: Path
) -> None:
    api.stop()

    result = run_cli("apply", "--answers", str(answer_file), "--yes")

    assert result.exit_code == 3, result.output
    assert "1 prerequisite check failed: kubernetes" in result.output
    assert "unexpected error" not in result.output and "Traceback" not in result.output
