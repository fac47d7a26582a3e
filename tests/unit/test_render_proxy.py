"""The installer's proxy environment passed to every service, its credentials kept secret."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from installer.release import load_release
from installer.render import RenderedPlan, render_plan
from installer.render.context import proxy_credentials
from installer.render.plan import SECRET_MODE
from tests.support.render_matrix import GOLDEN_CASES, case, materialize, write_test_pki

pytestmark = pytest.mark.usefixtures("without_proxy")

RELEASE = load_release("0.1.0")
PROXY = "http://user:s3cret-pw@proxy.corp:3128"
PROXY_NAME = re.compile(r"\b(HTTPS?|NO)_PROXY\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_test_pki(tmp_path_factory.mktemp("pki"))


def rendered(target: str, pki: dict[str, Path], root: Path) -> RenderedPlan:
    answers, secrets = materialize(case(GOLDEN_CASES[target]), pki)
    return render_plan(answers, secrets, RELEASE, root)


def texts(plan: RenderedPlan) -> dict[str, str]:
    return {f.path: f.content.decode() for f in plan.files}


@pytest.mark.parametrize("target", sorted(GOLDEN_CASES))
def test_no_proxy_variable_renders_as_before(
    target: str, pki: dict[str, Path], tmp_path: Path
) -> None:
    files = texts(rendered(target, pki, tmp_path))
    # (The golden files hold these cases byte for byte; this names the variables.)
    assert not [p for p, t in files.items() if PROXY_NAME.search(t)]


def test_compose_services_get_the_proxy_from_env(
    monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path], tmp_path: Path
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    monkeypatch.setenv("no_proxy", ".corp.example")
    plan = rendered("production", pki, tmp_path)
    files = {f.path: f for f in plan.files}
    compose = yaml.safe_load(files["docker-compose.yml"].content)
    assert "s3cret-pw" not in files["docker-compose.yml"].content.decode()
    exempt = ".corp.example,codequal,deepwiki,nginx,postgres,prometheus,grafana,loki,promtail,"
    for name, service in compose["services"].items():
        env = service["environment"]
        assert env["HTTPS_PROXY"] == "${HTTPS_PROXY}", name
        assert env["NO_PROXY"] == env["no_proxy"] == exempt + "localhost,127.0.0.1", name
        assert "HTTP_PROXY" not in env and "https_proxy" not in env  # only what is set
    dotenv = files[".env"]
    assert f"HTTPS_PROXY='{PROXY}'" in dotenv.content.decode()
    assert dotenv.holds_secrets and dotenv.mode == SECRET_MODE


def test_logs_hide_the_proxy_password_but_not_its_address(
    monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path], tmp_path: Path
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    monkeypatch.setenv("http_proxy", "http://proxy.corp:3128")
    plan = rendered("production", pki, tmp_path)
    line = f"pulling through {PROXY}; plain http through http://proxy.corp:3128"
    assert plan.redactor(line) == (
        "pulling through http://***@proxy.corp:3128; plain http through http://proxy.corp:3128"
    )
    assert plan.redactor("s3cret-pw") == "***"


def test_proxy_credentials_are_the_user_and_password_of_the_url() -> None:
    assert proxy_credentials("http://proxy:3128") == ()
    assert proxy_credentials("proxy.corp:3128") == ()
    assert proxy_credentials("http://u:p%40ss@proxy:3128") == ("u:p%40ss", "p%40ss", "p@ss")
    assert proxy_credentials("user:pw@proxy.corp:3128") == ("user:pw", "pw")
    assert proxy_credentials("http://token@proxy:3128") == ("token",)


@pytest.mark.parametrize("target", ["kubernetes", "enterprise"])
def test_kubernetes_pods_read_the_proxy_from_the_secret(
    target: str, monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path], tmp_path: Path
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    monkeypatch.setenv("HTTP_PROXY", PROXY)
    plan = rendered(target, pki, tmp_path)
    files = {f.path: f for f in plan.files}
    docs = {p: yaml.safe_load(f.content) for p, f in files.items() if p.startswith("kubernetes/")}
    holding = sorted(p for p, f in files.items() if "s3cret-pw" in f.content.decode())
    assert holding == ["kubernetes/02-secret-codequal-secrets.yaml"]
    secret = docs["kubernetes/02-secret-codequal-secrets.yaml"]
    assert secret["stringData"]["HTTPS_PROXY"] == PROXY
    namespace = docs["kubernetes/01-namespace-" + plan_namespace(docs) + ".yaml"]["metadata"]
    fqdn = f"codequal.{namespace['name']}.svc.cluster.local"
    pods = [d for d in docs.values() if d["kind"] in ("Deployment", "Job")]
    assert pods
    configmaps = {d["metadata"]["name"]: d for d in docs.values() if d["kind"] == "ConfigMap"}
    for pod in pods:
        container = pod["spec"]["template"]["spec"]["containers"][0]
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
        assert refs["HTTPS_PROXY"] == {"name": "codequal-secrets", "key": "HTTPS_PROXY"}
        assert refs["HTTP_PROXY"] == {"name": "codequal-secrets", "key": "HTTP_PROXY"}
        config = container["envFrom"][0]["configMapRef"]["name"]
        exempt = configmaps[config]["data"]["NO_PROXY"].split(",")
        assert {"codequal", fqdn, "localhost", "127.0.0.1"} <= set(exempt)
        assert configmaps[config]["data"]["no_proxy"] == configmaps[config]["data"]["NO_PROXY"]


def plan_namespace(docs: dict[str, dict]) -> str:
    return next(d["metadata"]["name"] for d in docs.values() if d["kind"] == "Namespace")
