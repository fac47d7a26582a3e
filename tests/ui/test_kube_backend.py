"""The wizard's engine backend on the kubernetes target: it offers the kubeconfig's
contexts, previews through the Kubernetes adapter and installs with it, behind the same
install screen as the Compose targets (against the fake API server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.answers import AnswerFile
from installer.credentials import Secrets
from installer.runner import CancelToken
from screens.engine import EngineBackend
from tests.support.fake_kube_api import FakeKubeAPI


def test_engine_backend_runs_the_kubernetes_adapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeKubeAPI() as api:
        config = api.write_kubeconfig(
            tmp_path / "kubeconfig", context="staging", extra_contexts=("prod",)
        )
        monkeypatch.setenv("KUBECONFIG", str(config))
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))
        backend = EngineBackend()

        assert backend.kube_contexts() == ["staging", "prod"]  # the current one first

        answers = AnswerFile.model_validate(
            {
                "version": 1,
                "target": "kubernetes",
                "domain": "codequal.test.invalid",
                "resources": {"profile": "minimal"},
                "monitoring": {"enabled": False},
                "kubernetes": {"context": "prod", "namespace": "cq"},
                "checks": {"skip": ["dns"]},
            }
        )
        view = backend.plan(answers, Secrets())
        assert [name for name, _ in view.steps][:4] == [
            "prerequisites",
            "configuration",
            "images",
            "containers",
        ]
        assert api.writes() == []  # the review changes nothing

        events = list(backend.install(answers, Secrets(), cancel=CancelToken()))

        assert events[-1].type == "run.finished", [e.message for e in events[-5:]]
        record = api.get_object("v1", "ConfigMap", "codequal-release", "cq")
        assert record is not None and record["data"]["version"] == "0.1.0"
        assert api.fake_failures == []
