"""Every generated file, read by the real tool that will consume it.

For each answer file of the matrix (tests/support/render_matrix.py: every target,
sqlite/postgres, managed/container database, each TLS mode, monitoring on/off/partial,
OpenShift on/off, mirror on/off) the plan is written to a directory and checked with:

* ``docker compose -f docker-compose.yml config -q`` (Compose v2; reads the .env beside it),
* ``nginx -t`` with a wrapper nginx.conf that includes the generated conf.d, exactly as the
  nginx image's own nginx.conf does, and the generated (self-signed) or test certificate,
* ``promtool check config`` (which also checks the rule files it names) and
  ``promtool check rules``; for Kubernetes, on the files taken out of the ConfigMap,
* ``kubernetes-validate --strict`` against two Kubernetes versions.

Upstream host names: the nginx configuration proxies to variables resolved at request time
through Docker's DNS (``resolver 127.0.0.11``), so ``nginx -t`` needs no host entries and
nothing is faked; a configuration that named an upstream directly would fail here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from installer.answers import AnswerFile
from installer.credentials import Secrets
from installer.release import load_release
from installer.render import RenderedPlan, render_plan, write_plan
from tests.support.render_matrix import (
    CASES,
    GOLDEN_CASES,
    RenderCase,
    case,
    materialize,
    write_test_pki,
)

# Rendered as without a proxy, whatever the environment running the tests has (the
# proxy cases set their own).
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("without_proxy")]

RELEASE = load_release("0.1.0")
KUBERNETES_VERSIONS = ("1.29.0", "1.33.0")
COMPOSE_CASES = [c for c in CASES if c.answers["target"] in ("development", "production")]
K8S_CASES = [c for c in CASES if c.answers["target"] in ("kubernetes", "enterprise")]
NGINX_CASES = [
    c
    for c in COMPOSE_CASES
    if c.answers.get("tls", {}).get("mode", "none") != "none" or c.answers["target"] == "production"
]
MONITORED_CASES = [
    c
    for c in CASES
    if c.answers.get("monitoring", {}).get("enabled", True)
    and "prometheus" in c.answers.get("monitoring", {}).get("components", ["prometheus"])
]

NGINX_WRAPPER = """\
# What the nginx image's /etc/nginx/nginx.conf does: include conf.d inside http.
pid {root}/nginx.pid;
error_log stderr;
events {{}}
http {{
    access_log off;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    include conf.d/*.conf;
}}
"""


def run(command: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, cwd=cwd, check=False, timeout=120
    )


def tool(name: str) -> str:
    """A validator from the venv (kubernetes-validate) or the system (nginx, promtool)."""
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; scripts/test installs it", pytrace=False)
    return found


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_test_pki(tmp_path_factory.mktemp("pki"))


def written(render: RenderCase, pki: dict[str, Path], root: Path) -> RenderedPlan:
    answers, secrets = materialize(render, pki)
    plan = render_plan(answers, secrets, RELEASE, root)
    write_plan(plan, root)
    return plan


def compose_config(root: Path) -> subprocess.CompletedProcess[str]:
    return run(["docker", "compose", "-f", str(root / "docker-compose.yml"), "config", "-q"])


def compose_json(root: Path) -> dict:
    result = run(
        ["docker", "compose", "-f", str(root / "docker-compose.yml"), "config", "--format", "json"]
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def nginx_test(root: Path) -> subprocess.CompletedProcess[str]:
    nginx_dir = root / "nginx"
    (nginx_dir / "tmp").mkdir(exist_ok=True)
    wrapper = nginx_dir / "test-nginx.conf"
    wrapper.write_text(NGINX_WRAPPER.format(root=nginx_dir))
    return run([tool("nginx"), "-t", "-p", f"{nginx_dir}/", "-c", str(wrapper), "-e", "stderr"])


# --- Compose ----------------------------------------------------------------------------------


@pytest.mark.parametrize("render", COMPOSE_CASES, ids=lambda c: c.name)
def test_docker_compose_accepts_the_compose_file(
    render: RenderCase, pki: dict[str, Path], tmp_path: Path
) -> None:
    written(render, pki, tmp_path)
    result = compose_config(tmp_path)
    assert result.returncode == 0, result.stderr
    # Every ${VARIABLE} is set by the .env beside it.
    assert "is not set" not in result.stderr, result.stderr


@pytest.mark.parametrize("render", COMPOSE_CASES, ids=lambda c: c.name)
def test_compose_gives_each_service_its_secrets_from_env(
    render: RenderCase, pki: dict[str, Path], tmp_path: Path
) -> None:
    written(render, pki, tmp_path)
    services = compose_json(tmp_path)["services"]
    generated_file = tmp_path / "state/generated-secrets.json"
    generated = json.loads(generated_file.read_text()) if generated_file.exists() else {}
    codequal = services["codequal"]["environment"]
    expected_key = render.secrets.get("anthropic_api_key", "")
    assert codequal["ANTHROPIC_API_KEY"] == expected_key
    if "postgres" in services:
        password = generated["database_password"]
        assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == password
        assert codequal["DATABASE_URL"].startswith(f"postgresql://codequal:{password}@postgres:")
        assert "DATABASE_URL" not in services["postgres"]["environment"]
    if "grafana" in services:
        assert (
            services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
            == (generated["grafana_admin_password"])
        )
        assert "ANTHROPIC_API_KEY" not in services["grafana"]["environment"]


PROXY = "http://user:s3cret-pw@proxy.corp:3128"


@pytest.mark.parametrize("name", ["production", "development"])
def test_compose_passes_the_proxy_to_every_service(
    name: str, monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path], tmp_path: Path
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    monkeypatch.setenv("NO_PROXY", ".corp.example")
    written(case(GOLDEN_CASES[name]), pki, tmp_path)
    assert "s3cret-pw" not in (tmp_path / "docker-compose.yml").read_text()
    # Compose reads the .env beside the file: not the test's environment.
    monkeypatch.delenv("HTTPS_PROXY")
    result = compose_config(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "is not set" not in result.stderr, result.stderr
    services = compose_json(tmp_path)["services"]
    for service, spec in services.items():
        env = spec["environment"]
        assert env["HTTPS_PROXY"] == PROXY, service
        exempt = env["NO_PROXY"].split(",")
        assert exempt[0] == ".corp.example" and exempt[-2:] == ["localhost", "127.0.0.1"]
        assert set(services) - {"migrate"} <= set(exempt), service


@pytest.mark.parametrize("render", COMPOSE_CASES, ids=lambda c: c.name)
def test_the_ports_check_asks_for_exactly_the_ports_compose_publishes(
    render: RenderCase, pki: dict[str, Path], tmp_path: Path
) -> None:
    from installer.checks.requirements import Requirements

    answers, _ = materialize(render, pki)
    written(render, pki, tmp_path)
    published = {
        int(port["published"])
        for service in compose_json(tmp_path)["services"].values()
        for port in service.get("ports", [])
    }
    assert published == set(Requirements.from_answers(answers).ports), render.name


def test_compose_round_trips_hostile_values_exactly(tmp_path: Path) -> None:
    hostile_url = "https://x.example.com/${HOME}\"\ninjected: true\n'$$\\"
    hostile_secret = "k'ey\"\nEVIL=1 $(touch /tmp/x) ${HOME} \\n #"
    hostile_domain = 'evil.example.com"; } #'
    answers = AnswerFile.model_validate(
        {"version": 1, "target": "production", "domain": "codequal.example.com"}
    )
    deepwiki = answers.deepwiki.model_copy(update={"mode": "external", "url": hostile_url})
    answers = answers.model_copy(update={"deepwiki": deepwiki, "domain": hostile_domain})
    plan = render_plan(answers, Secrets(anthropic_api_key=hostile_secret), RELEASE, tmp_path)
    write_plan(plan, tmp_path)
    assert compose_config(tmp_path).returncode == 0
    environment = compose_json(tmp_path)["services"]["codequal"]["environment"]
    # `config` prints a Compose file, in which a literal $ is written $$.
    assert environment["DEEPWIKI_URL"].replace("$$", "$") == hostile_url
    assert environment["PUBLIC_URL"].replace("$$", "$") == f"https://{hostile_domain}"
    assert environment["ANTHROPIC_API_KEY"].replace("$$", "$") == hostile_secret
    assert "injected" not in environment and "EVIL" not in environment


# --- nginx ------------------------------------------------------------------------------------


@pytest.mark.parametrize("render", NGINX_CASES, ids=lambda c: c.name)
def test_nginx_accepts_the_configuration_and_certificate(
    render: RenderCase, pki: dict[str, Path], tmp_path: Path
) -> None:
    written(render, pki, tmp_path)
    assert (tmp_path / "nginx/ssl/codequal.key").stat().st_mode & 0o777 == 0o600
    result = nginx_test(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_reads_a_hostile_domain_as_one_server_name(tmp_path: Path) -> None:
    # Unescaped, this would end the server_name and add an unknown directive: nginx -t fails.
    hostile = 'evil.example.com"; codequal_injected_directive on; #'
    answers = AnswerFile.model_validate(
        {"version": 1, "target": "production", "domain": "codequal.example.com"}
    ).model_copy(update={"domain": hostile})
    write_plan(render_plan(answers, Secrets(), RELEASE, tmp_path), tmp_path)
    result = nginx_test(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "unknown directive" not in result.stderr


def test_nginx_fails_when_a_directive_really_is_injected(tmp_path: Path) -> None:
    # The check above can fail: the same text outside quotes is rejected by nginx.
    answers = AnswerFile.model_validate(
        {"version": 1, "target": "production", "domain": "codequal.example.com"}
    )
    write_plan(render_plan(answers, Secrets(), RELEASE, tmp_path), tmp_path)
    conf = tmp_path / "nginx/conf.d/codequal.conf"
    conf.write_text(
        conf.read_text().replace(
            'server_name "codequal.example.com";',
            "server_name evil.example.com; codequal_injected_directive on;",
            1,
        )
    )
    result = nginx_test(tmp_path)
    assert result.returncode != 0
    assert "unknown directive" in result.stderr


# --- Prometheus -------------------------------------------------------------------------------


def prometheus_dir(plan: RenderedPlan, root: Path) -> Path:
    """Where prometheus.yml and rules/ are: the Compose layout, or out of the ConfigMap."""
    if plan.kubernetes_objects:
        path = next(o.path for o in plan.kubernetes_objects if o.name == "prometheus-config")
        data = yaml.safe_load((root / path).read_text())["data"]
        target = root / "extracted-prometheus"
        (target / "rules").mkdir(parents=True)
        (target / "prometheus.yml").write_text(data["prometheus.yml"])
        (target / "rules/codequal.yml").write_text(data["codequal.rules.yml"])
        return target
    return root / "monitoring/prometheus"


@pytest.mark.parametrize("render", MONITORED_CASES, ids=lambda c: c.name)
def test_promtool_accepts_the_scrape_config_and_the_rules(
    render: RenderCase, pki: dict[str, Path], tmp_path: Path
) -> None:
    plan = written(render, pki, tmp_path)
    directory = prometheus_dir(plan, tmp_path)
    config = run([tool("promtool"), "check", "config", str(directory / "prometheus.yml")])
    assert config.returncode == 0, config.stdout + config.stderr
    assert "1 rule files found" in config.stdout + config.stderr
    rules = run([tool("promtool"), "check", "rules", str(directory / "rules/codequal.yml")])
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_promtool_rejects_a_broken_rule_file(pki: dict[str, Path], tmp_path: Path) -> None:
    plan = written(CASES[3], pki, tmp_path)
    rules = prometheus_dir(plan, tmp_path) / "rules/codequal.yml"
    rules.write_text(rules.read_text().replace("== 0", "== ", 1))
    result = run([tool("promtool"), "check", "rules", str(rules)])
    assert result.returncode != 0


# --- Kubernetes -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("render", K8S_CASES, ids=lambda c: c.name)
def test_kubernetes_validate_strict_accepts_every_manifest(
    render: RenderCase, version: str, pki: dict[str, Path], tmp_path: Path
) -> None:
    plan = written(render, pki, tmp_path)
    paths = [str(tmp_path / o.path) for o in plan.kubernetes_objects if o.kind != "Route"]
    result = run([tool("kubernetes-validate"), "--strict", "-k", version, *paths])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" passed for resource ") == len(paths), result.stdout


@pytest.mark.parametrize("name", ["kubernetes", "enterprise"])
def test_kubernetes_validate_strict_accepts_the_proxy_variables(
    name: str, monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path], tmp_path: Path
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    monkeypatch.setenv("http_proxy", PROXY)
    plan = written(case(GOLDEN_CASES[name]), pki, tmp_path)
    paths = [str(tmp_path / o.path) for o in plan.kubernetes_objects if o.kind != "Route"]
    result = run([tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSIONS[-1], *paths])
    assert result.returncode == 0, result.stdout + result.stderr
    docs = [yaml.safe_load(Path(p).read_text()) for p in paths]
    secret = next(d for d in docs if d["metadata"]["name"] == "codequal-secrets")
    assert secret["stringData"]["HTTPS_PROXY"] == secret["stringData"]["http_proxy"] == PROXY
    pods = [d for d in docs if d["kind"] in ("Deployment", "Job")]
    for pod in pods:
        container = pod["spec"]["template"]["spec"]["containers"][0]
        assert {"HTTPS_PROXY", "http_proxy"} <= {e["name"] for e in container["env"]}
    holding = [p for p in paths if "s3cret-pw" in Path(p).read_text()]
    assert [Path(p).name for p in holding] == ["02-secret-codequal-secrets.yaml"]


def test_kubernetes_validate_strict_rejects_an_unknown_field(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    plan = written(K8S_CASES[0], pki, tmp_path)
    deployment = tmp_path / next(o.path for o in plan.kubernetes_objects if o.kind == "Deployment")
    deployment.write_text(deployment.read_text().replace("  replicas:", "  replicaz:", 1))
    result = run(
        [tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSIONS[0], str(deployment)]
    )
    assert result.returncode != 0


@pytest.mark.parametrize(
    "render",
    [c for c in K8S_CASES if c.answers.get("kubernetes", {}).get("openshift")],
    ids=lambda c: c.name,
)
def test_openshift_routes_have_the_fields_the_router_needs(
    render: RenderCase, pki: dict[str, Path], tmp_path: Path
) -> None:
    # kubernetes-validate ships no OpenShift schemas: check the Route API's required fields.
    plan = written(render, pki, tmp_path)
    routes = [o for o in plan.kubernetes_objects if o.kind == "Route"]
    assert routes
    for route in routes:
        doc = yaml.safe_load((tmp_path / route.path).read_text())
        assert doc["apiVersion"] == "route.openshift.io/v1"
        spec = doc["spec"]
        assert set(spec) <= {"host", "path", "to", "port", "tls", "wildcardPolicy"}
        assert spec["to"]["kind"] == "Service" and spec["to"]["name"]
        assert spec["port"] == {"targetPort": "http"}
        assert set(spec["tls"]) <= {
            "termination",
            "insecureEdgeTerminationPolicy",
            "certificate",
            "key",
        }
        assert spec["path"].startswith("/")


def test_kubernetes_validate_accepts_manifests_with_hostile_values(tmp_path: Path) -> None:
    hostile_url = 'https://x.example.com/"\ninjected: true\n'
    answers = AnswerFile.model_validate(
        {"version": 1, "target": "kubernetes", "domain": "codequal.example.com"}
    )
    deepwiki = answers.deepwiki.model_copy(update={"mode": "external", "url": hostile_url})
    answers = answers.model_copy(update={"deepwiki": deepwiki})
    plan = render_plan(answers, Secrets(anthropic_api_key='a"\nb: c'), RELEASE, tmp_path)
    write_plan(plan, tmp_path)
    paths = [str(tmp_path / o.path) for o in plan.kubernetes_objects]
    result = run([tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSIONS[-1], *paths])
    assert result.returncode == 0, result.stdout + result.stderr
