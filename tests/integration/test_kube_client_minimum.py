"""The oldest ``kubernetes`` client that ``pyproject.toml`` allows really works.

The adapter builds its requests with ``ApiClient.param_serialize`` and reads errors with
``response_deserialize``, which the client has only from 37.0.0 on (the generator it moved
to then). This test installs the minimum the pin allows into a directory of its own and
runs the adapter with it against the stand-in API server: a server version, a discovery
and a server-side apply. With ``kubernetes>=29`` every call failed with AttributeError,
reported as "the Kubernetes API did not answer".
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fake_kube_api import FakeKubeAPI

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def minimum_client() -> str:
    """The lowest ``kubernetes`` version the project's dependencies allow."""
    found = re.search(
        r'^\s*"kubernetes>=([0-9.]+)"', (REPO / "pyproject.toml").read_text("utf-8"), re.M
    )
    assert found, "pyproject.toml does not pin a minimum kubernetes client"
    return found.group(1)


SCRIPT = """
import kubernetes, sys
from installer.engine.kubernetes import Cluster
cluster = Cluster.connect(environ={"KUBECONFIG": sys.argv[1]})
with cluster:
    print("client", kubernetes.__version__)
    print("server", cluster.version().text)
    result = cluster.apply({"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": "minimum-client"}})
    print("created", result.created)
"""


def test_the_minimum_client_the_pin_allows_runs_the_adapter(tmp_path: Path) -> None:
    version = minimum_client()
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--target",
            str(target),
            f"kubernetes=={version}",
        ],
        check=True,
        timeout=300,
    )
    with FakeKubeAPI() as api:
        config = api.write_kubeconfig(tmp_path / "kubeconfig")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(REPO)])}
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(config)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert f"client {version}" in done.stdout
        assert "created True" in done.stdout
        assert api.get_object("v1", "Namespace", "minimum-client") is not None
