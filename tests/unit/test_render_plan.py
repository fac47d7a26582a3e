"""render_plan and write_plan: what each target produces, secrets, modes, determinism."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from installer.answers import AnswerFile
from installer.credentials import Secrets
from installer.release import load_release
from installer.render import RenderedPlan, compare_plan, render_plan, write_plan
from installer.render.escape import RenderError
from installer.render.kubernetes import APPLY_ORDER
from installer.resources import GIB, Capacity
from tests.support.render_matrix import (
    CASES,
    MANAGED_DB_PASSWORD,
    SUPPLIED_SECRETS,
    RenderCase,
    case,
    materialize,
    write_test_pki,
)

# Rendered as without a proxy, whatever the environment running the tests has.
pytestmark = pytest.mark.usefixtures("without_proxy")

RELEASE = load_release("0.1.0")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_test_pki(tmp_path_factory.mktemp("pki"))


def render_case(render: RenderCase, pki: dict[str, Path], root: Path) -> RenderedPlan:
    answers, secrets = materialize(render, pki)
    return render_plan(answers, secrets, RELEASE, root)


def documents(plan: RenderedPlan, path: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(plan.file(path).content) if d is not None]


def all_secret_values(root: Path) -> list[str]:
    """Every secret a plan in ``root`` may hold: the supplied ones and those generated there."""
    generated = json.loads((root / "state" / "generated-secrets.json").read_text())
    key_file = root / "state" / "tls" / "self-signed.key"
    values = [*SUPPLIED_SECRETS.values(), MANAGED_DB_PASSWORD, *generated.values()]
    if key_file.exists():
        values += [line for line in key_file.read_text().splitlines() if "-----" not in line]
    return values


# --- every case -----------------------------------------------------------------------------


@pytest.mark.parametrize("render", CASES, ids=lambda c: c.name)
def test_secret_values_only_in_files_marked_secret_and_those_are_0600(
    render: RenderCase, pki: dict[str, Path], tmp_path: Path
) -> None:
    plan = render_case(render, pki, tmp_path)
    (tmp_path / "state").mkdir(exist_ok=True)
    if not (tmp_path / "state" / "generated-secrets.json").exists():
        (tmp_path / "state" / "generated-secrets.json").write_text("{}")
    values = all_secret_values(tmp_path)
    provided_key = [line for line in pki["key"].read_text().splitlines() if "-----" not in line]
    found_in_secret_files = set()
    for item in plan.files:
        text = item.content.decode()
        leaked = [v for v in [*values, *provided_key] if v in text]
        if item.holds_secrets:
            assert item.mode == 0o600, item.path
            found_in_secret_files.update(leaked)
        else:
            assert leaked == [], f"{item.path} holds a secret value"
            assert item.mode == 0o644, item.path
    # The secrets the services need did reach them.
    assert found_in_secret_files


@pytest.mark.parametrize("render", CASES, ids=lambda c: c.name)
def test_rendering_twice_gives_the_same_bytes_and_keeps_generated_state(
    render: RenderCase, pki: dict[str, Path], tmp_path: Path
) -> None:
    first = render_case(render, pki, tmp_path)
    state_before = (
        {
            p.relative_to(tmp_path): p.read_bytes()
            for p in (tmp_path / "state").rglob("*")
            if p.is_file()
        }
        if (tmp_path / "state").exists()
        else {}
    )
    second = render_case(render, pki, tmp_path)
    assert [(f.path, f.content, f.mode) for f in first.files] == [
        (f.path, f.content, f.mode) for f in second.files
    ]
    state_after = (
        {
            p.relative_to(tmp_path): p.read_bytes()
            for p in (tmp_path / "state").rglob("*")
            if p.is_file()
        }
        if (tmp_path / "state").exists()
        else {}
    )
    assert state_before == state_after


@pytest.mark.parametrize("render", CASES, ids=lambda c: c.name)
def test_every_yaml_and_json_file_parses(
    render: RenderCase, pki: dict[str, Path], tmp_path: Path
) -> None:
    plan = render_case(render, pki, tmp_path)
    for item in plan.files:
        if item.path.endswith((".yml", ".yaml")):
            assert documents(plan, item.path), item.path
        elif item.path.endswith(".json"):
            json.loads(item.content)


# --- Compose ----------------------------------------------------------------------------------


def test_development_defaults_run_sqlite_without_nginx_on_loopback(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    plan = render_case(case("development-defaults"), pki, tmp_path)
    assert plan.paths[:2] == ["docker-compose.yml", ".env"]
    assert not [p for p in plan.paths if p.startswith("nginx/")]
    compose = documents(plan, "docker-compose.yml")[0]
    assert compose["name"] == "codequal"
    assert {"migrate", "codequal", "deepwiki"} <= set(compose["services"])
    assert not {"nginx", "postgres"} & set(compose["services"])
    codequal = compose["services"]["codequal"]
    assert codequal["environment"]["DATABASE_URL"] == "file:/app/data/codequal.db"
    assert codequal["ports"] == ["127.0.0.1:3000:3000"]
    assert "codequal_data:/app/data" in codequal["volumes"]
    assert "command" not in codequal  # no hot reload without a source directory
    assert codequal["restart"] == "unless-stopped"


def test_compose_project_follows_install_dir(pki: dict[str, Path], tmp_path: Path) -> None:
    answers, secrets = materialize(case("production-container-db-selfsigned-monitoring"), pki)
    answers.install_dir = "/srv/cq-staging"
    plan = render_plan(answers, secrets, RELEASE, tmp_path)
    project = answers.compose_project
    assert project != "codequal" and project.startswith("codequal-cq-staging-")
    assert documents(plan, "docker-compose.yml")[0]["name"] == project
    assert f"COMPOSE_PROJECT_NAME='{project}'" in plan.file(".env").content.decode()
    promtail = documents(plan, "monitoring/promtail/promtail.yml")[0]
    filters = promtail["scrape_configs"][0]["docker_sd_configs"][0]["filters"]
    assert filters == [{"name": "label", "values": [f"com.docker.compose.project={project}"]}]


def test_source_dir_mounts_the_checkout_and_runs_the_dev_server(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    answers, secrets = materialize(case("development-defaults"), pki)
    plan = render_plan(answers, secrets, RELEASE, tmp_path, source_dir="/home/dev/codequal")
    codequal = documents(plan, "docker-compose.yml")[0]["services"]["codequal"]
    assert "/home/dev/codequal:/app/src:ro" in codequal["volumes"]
    assert codequal["command"] == ["npm", "run", "dev"]


def test_source_dir_is_refused_outside_development(pki: dict[str, Path], tmp_path: Path) -> None:
    answers, secrets = materialize(case("production-container-db-selfsigned-monitoring"), pki)
    with pytest.raises(RenderError, match="development target only"):
        render_plan(answers, secrets, RELEASE, tmp_path, source_dir="/src")


def test_production_compose_has_restart_health_limits_and_secrets_only_as_variables(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    plan = render_case(case("production-container-db-selfsigned-monitoring"), pki, tmp_path)
    compose = documents(plan, "docker-compose.yml")[0]
    services = compose["services"]
    assert set(services) == {
        "migrate",
        "codequal",
        "deepwiki",
        "nginx",
        "postgres",
        "prometheus",
        "grafana",
        "loki",
        "promtail",
    }
    for name, service in services.items():
        if name == "migrate":
            assert service["restart"] == "no"
            continue
        assert service["restart"] == "always"
        assert service["deploy"]["resources"]["limits"]["memory"].endswith("M")
        manifest = RELEASE.services[name]  # type: ignore[index]
        if manifest.health is not None:
            assert service["healthcheck"]["test"] == manifest.health.test
    assert services["nginx"]["ports"] == ["80:80", "443:443"]
    assert "ports" not in services["codequal"]
    assert "ports" not in services["postgres"]
    assert services["codequal"]["depends_on"]["migrate"] == {
        "condition": "service_completed_successfully"
    }
    assert services["migrate"]["command"] == RELEASE.migration.command
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD}"
    assert services["codequal"]["environment"]["DATABASE_URL"] == "${DATABASE_URL}"
    assert set(compose["volumes"]) == {
        "codequal_data",
        "deepwiki_data",
        "deepwiki_repos",
        "postgres_data",
        "prometheus_data",
        "grafana_data",
        "loki_data",
    }
    env = plan.file(".env").content.decode()
    assert "DATABASE_URL='postgresql://codequal:" in env
    assert "@postgres:5432/codequal?sslmode=prefer'" in env


def test_resource_limits_follow_the_allocation_for_the_measured_machine(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    answers, secrets = materialize(case("production-container-db-selfsigned-monitoring"), pki)
    small = render_plan(answers, secrets, RELEASE, tmp_path, Capacity(4, 8 * GIB))
    large = render_plan(answers, secrets, RELEASE, tmp_path, Capacity(16, 64 * GIB))

    def limit(plan: RenderedPlan) -> str:
        services = documents(plan, "docker-compose.yml")[0]["services"]
        return services["codequal"]["deploy"]["resources"]["limits"]["cpus"]

    assert float(limit(small)) < float(limit(large))


def test_managed_database_gets_no_container_and_a_url_to_the_host(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    plan = render_case(
        case("production-managed-db-provided-tls-mirror-no-monitoring"), pki, tmp_path
    )
    services = documents(plan, "docker-compose.yml")[0]["services"]
    assert "postgres" not in services
    assert "depends_on" not in services["migrate"]
    env = plan.file(".env").content.decode()
    assert (
        f"DATABASE_URL='postgresql://codequal:{MANAGED_DB_PASSWORD}@db.example.net:5432/codequal"
        "?sslmode=verify-full'" in env
    )
    assert not (tmp_path / "state" / "generated-secrets.json").exists()
    # Every image comes through the mirror.
    for service in services.values():
        assert service["image"].startswith("registry.corp.local:5000/")
    assert services["nginx"]["image"] == "registry.corp.local:5000/library/nginx:1.27-alpine"
    # The operator's certificate and key are what nginx serves.
    assert plan.file("nginx/ssl/codequal.crt").content == pki["cert"].read_bytes()
    assert plan.file("nginx/ssl/codequal.key").content == pki["key"].read_bytes()
    assert plan.file("nginx/ssl/codequal.key").holds_secrets


def test_monitoring_off_renders_no_monitoring_files(pki: dict[str, Path], tmp_path: Path) -> None:
    plan = render_case(
        case("production-managed-db-provided-tls-mirror-no-monitoring"), pki, tmp_path
    )
    assert not [p for p in plan.paths if p.startswith("monitoring/")]


def test_monitoring_components_pick_their_files(pki: dict[str, Path], tmp_path: Path) -> None:
    plan = render_case(case("production-mirror-without-login-loki-grafana"), pki, tmp_path)
    monitoring = sorted(p for p in plan.paths if p.startswith("monitoring/"))
    assert monitoring == [
        "monitoring/grafana/dashboards/codequal.json",
        "monitoring/grafana/provisioning/dashboards/dashboards.yml",
        "monitoring/grafana/provisioning/datasources/datasources.yml",
        "monitoring/loki/loki.yml",
        "monitoring/promtail/promtail.yml",
    ]
    datasources = documents(plan, "monitoring/grafana/provisioning/datasources/datasources.yml")
    assert [d["type"] for d in datasources[0]["datasources"]] == ["loki"]
    assert datasources[0]["datasources"][0]["isDefault"] is True


def test_alert_rules_come_in_three_severities(pki: dict[str, Path], tmp_path: Path) -> None:
    plan = render_case(case("production-container-db-selfsigned-monitoring"), pki, tmp_path)
    groups = documents(plan, "monitoring/prometheus/rules/codequal.yml")[0]["groups"]
    alerts = [rule for g in groups for rule in g["rules"] if "alert" in rule]
    severities = {rule["labels"]["severity"] for rule in alerts}
    assert severities == {"critical", "warning", "info"}


def test_nginx_redirects_to_https_with_hsts_rate_limit_and_upgrade_headers(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    plan = render_case(case("production-container-db-selfsigned-monitoring"), pki, tmp_path)
    conf = plan.file("nginx/conf.d/codequal.conf").content.decode()
    assert "return 301 https://$host$request_uri;" in conf
    assert 'Strict-Transport-Security "max-age=31536000" always' in conf
    assert "limit_req zone=codequal_requests" in conf
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "set $codequal_upstream_1 http://codequal:3000;" in conf
    assert "set $codequal_upstream_2 http://deepwiki:8002;" in conf
    assert "rewrite ^/deepwiki/(.*)$ /$1 break;" in conf


def test_nginx_without_deepwiki_has_no_deepwiki_route(pki: dict[str, Path], tmp_path: Path) -> None:
    plan = render_case(
        case("development-postgres-selfsigned-monitoring-external-deepwiki"), pki, tmp_path
    )
    assert "deepwiki" not in plan.file("nginx/conf.d/codequal.conf").content.decode()
    services = documents(plan, "docker-compose.yml")[0]["services"]
    assert "deepwiki" not in services
    assert services["codequal"]["environment"]["DEEPWIKI_URL"] == (
        "https://deepwiki.example.net:8002"
    )


def test_self_signed_certificate_names_the_domain(pki: dict[str, Path], tmp_path: Path) -> None:
    from cryptography import x509

    plan = render_case(case("production-container-db-selfsigned-monitoring"), pki, tmp_path)
    cert = x509.load_pem_x509_certificate(plan.file("nginx/ssl/codequal.crt").content)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "codequal.example.com" in names.get_values_for_type(x509.DNSName)


# --- Kubernetes -------------------------------------------------------------------------------

K8S_CASES = [c for c in CASES if c.answers["target"] in ("kubernetes", "enterprise")]


@pytest.mark.parametrize("render", K8S_CASES, ids=lambda c: c.name)
def test_kubernetes_objects_are_listed_and_filed_in_apply_order(
    render: RenderCase, pki: dict[str, Path], tmp_path: Path
) -> None:
    plan = render_case(render, pki, tmp_path)
    kinds = [o.kind for o in plan.kubernetes_objects]
    assert kinds == sorted(kinds, key=APPLY_ORDER.index)
    assert kinds[0] == "Namespace"
    assert [o.path for o in plan.kubernetes_objects] == sorted(plan.paths)
    assert len(plan.kubernetes_objects) == len(plan.files)
    for obj in plan.kubernetes_objects:
        (doc,) = documents(plan, obj.path)
        assert (doc["apiVersion"], doc["kind"], doc["metadata"]["name"]) == (
            obj.api_version,
            obj.kind,
            obj.name,
        )
        assert doc["metadata"].get("namespace") == obj.namespace
        labels = doc["metadata"]["labels"]
        for key in ("name", "instance", "version", "component", "part-of", "managed-by"):
            assert f"app.kubernetes.io/{key}" in labels, (obj.path, key)


@pytest.mark.parametrize("render", K8S_CASES, ids=lambda c: c.name)
def test_every_pod_is_restricted(render: RenderCase, pki: dict[str, Path], tmp_path: Path) -> None:
    plan = render_case(render, pki, tmp_path)
    openshift = render.answers.get("kubernetes", {}).get("openshift", False)
    pods = 0
    for obj in plan.kubernetes_objects:
        if obj.kind not in ("Deployment", "Job"):
            continue
        pods += 1
        pod = documents(plan, obj.path)[0]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert ("runAsUser" in pod["securityContext"]) is not openshift
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert container["resources"]["limits"]["memory"].endswith("Mi")
            if obj.kind == "Deployment":
                assert "readinessProbe" in container and "livenessProbe" in container
    assert pods >= 2


def test_kubernetes_default_has_ingress_hpa_pdb_and_network_policies(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    plan = render_case(case("kubernetes-in-cluster-db-selfsigned-monitoring"), pki, tmp_path)
    by_kind: dict[str, list[str]] = {}
    for obj in plan.kubernetes_objects:
        by_kind.setdefault(obj.kind, []).append(obj.name)
    assert by_kind["Ingress"] == ["codequal", "deepwiki"]
    assert "Route" not in by_kind
    assert by_kind["HorizontalPodAutoscaler"] == ["codequal"]
    assert by_kind["PodDisruptionBudget"] == ["codequal", "deepwiki"]
    assert by_kind["NetworkPolicy"][0] == "default-deny"
    assert "postgres" in by_kind["Deployment"]
    assert sorted(by_kind["Secret"]) == ["codequal-secrets", "codequal-tls"]
    # Prometheus finds every replica through headless Services' DNS records.
    headless = documents(
        plan, next(o.path for o in plan.kubernetes_objects if o.name == "codequal-pods")
    )[0]
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"]["app.kubernetes.io/name"] == "codequal"
    deny = documents(
        plan,
        plan.kubernetes_objects[
            [o.name for o in plan.kubernetes_objects].index("default-deny")
        ].path,
    )[0]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    ingress = documents(
        plan,
        next(
            o.path for o in plan.kubernetes_objects if o.kind == "Ingress" and o.name == "codequal"
        ),
    )[0]
    assert ingress["spec"]["tls"] == [
        {"hosts": ["codequal.example.com"], "secretName": "codequal-tls"}
    ]


def test_openshift_gets_routes_with_the_operator_certificate(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    plan = render_case(case("enterprise-openshift-mirror-ldap-ca-airgap"), pki, tmp_path)
    kinds = {o.kind for o in plan.kubernetes_objects}
    assert "Route" in kinds and "Ingress" not in kinds
    route_files = [o.path for o in plan.kubernetes_objects if o.kind == "Route"]
    root_route = documents(plan, route_files[0])[0]
    assert root_route["spec"]["host"] == "codequal.corp.local"
    assert root_route["spec"]["tls"]["termination"] == "edge"
    assert root_route["spec"]["tls"]["insecureEdgeTerminationPolicy"] == "Redirect"
    assert root_route["spec"]["tls"]["key"] == pki["key"].read_text()
    assert plan.file(route_files[0]).holds_secrets


def test_mirror_ldap_and_corporate_ca_reach_the_pods(pki: dict[str, Path], tmp_path: Path) -> None:
    plan = render_case(case("enterprise-openshift-mirror-ldap-ca-airgap"), pki, tmp_path)
    paths = {o.kind + "/" + o.name: o.path for o in plan.kubernetes_objects}
    deployment = documents(plan, paths["Deployment/codequal"])[0]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "codequal-registry"}]
    assert pod["containers"][0]["image"] == "registry.corp.local:5000/codequal/codequal:0.1.0"
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["ca-bundle"] == "/etc/codequal/ca"
    ca = documents(plan, paths["ConfigMap/codequal-ca-bundle"])[0]
    assert ca["data"]["ca.crt"] == pki["ca"].read_text() * 2  # LDAP's and the registry's
    env = documents(plan, paths["ConfigMap/codequal-env"])[0]["data"]
    assert env["LDAP_URL"] == "ldaps://ldap.corp.local"
    assert env["LDAP_BIND_DN"] == "cn=codequal,ou=services,dc=corp,dc=local"
    assert env["LDAP_GROUP_BASE_DN"] == "ou=groups,dc=corp,dc=local"
    assert env["NODE_EXTRA_CA_CERTS"] == "/etc/codequal/ca/ca.crt"
    secret_refs = [e["name"] for e in pod["containers"][0]["env"]]
    assert "LDAP_BIND_PASSWORD" in secret_refs
    pull = documents(plan, paths["Secret/codequal-registry"])[0]
    assert pull["type"] == "kubernetes.io/dockerconfigjson"
    auths = json.loads(pull["stringData"][".dockerconfigjson"])["auths"]
    assert list(auths) == ["registry.corp.local:5000"]


def test_changing_one_answer_changes_exactly_that_line(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    render = case("kubernetes-in-cluster-db-selfsigned-monitoring")
    answers, secrets = materialize(render, pki)
    write_plan(render_plan(answers, secrets, RELEASE, tmp_path), tmp_path)
    changed = answers.model_copy(deep=True)
    changed.kubernetes.autoscaling.cpu_percent = 85
    plan = render_plan(changed, secrets, RELEASE, tmp_path)
    changes = compare_plan(plan, tmp_path)
    different = [c for c in changes if c.kind != "unchanged"]
    hpa = next(o.path for o in plan.kubernetes_objects if o.kind == "HorizontalPodAutoscaler")
    assert [c.path for c in different] == [hpa]
    body = [
        line
        for line in different[0].diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("---", "+++"))
    ]
    assert body == ["-          averageUtilization: 70", "+          averageUtilization: 85"]


# --- secrets ----------------------------------------------------------------------------------


def test_missing_required_secrets_are_named_all_at_once(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    answers, _ = materialize(case("enterprise-openshift-mirror-ldap-ca-airgap"), pki)
    with pytest.raises(RenderError) as error:
        render_plan(answers, Secrets(), RELEASE, tmp_path)
    assert "ldap_bind_password" in error.value.message
    assert "registry_password" in error.value.message
    assert error.value.exit_code == 2


def test_generated_passwords_are_stored_0600_and_reused(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    render = case("production-container-db-selfsigned-monitoring")
    render_case(render, pki, tmp_path)
    stored = tmp_path / "state" / "generated-secrets.json"
    assert stored.stat().st_mode & 0o777 == 0o600
    values = json.loads(stored.read_text())
    assert set(values) == {"database_password", "grafana_admin_password"}
    assert all(len(v) >= 32 for v in values.values())
    for name in ("self-signed.key", "self-signed.crt"):
        assert (tmp_path / "state" / "tls" / name).stat().st_mode & 0o777 == 0o600
    plan = render_case(render, pki, tmp_path)
    assert f"POSTGRES_PASSWORD='{values['database_password']}'" in (
        plan.file(".env").content.decode()
    )
    assert {s.key: s.shown_as for s in plan.secrets}["database_password"] == "<generated>"


def test_supplied_password_wins_over_a_generated_one(pki: dict[str, Path], tmp_path: Path) -> None:
    answers, _ = materialize(case("production-container-db-selfsigned-monitoring"), pki)
    plan = render_plan(
        answers, Secrets(database_password="operator-chose-this-1"), RELEASE, tmp_path
    )
    assert "POSTGRES_PASSWORD='operator-chose-this-1'" in plan.file(".env").content.decode()
    shown = {s.key: s.shown_as for s in plan.secrets}
    assert shown["database_password"] == "<from secrets file>"
    assert shown["anthropic_api_key"] == "<not set>"


def test_self_signed_certificate_is_remade_for_a_new_domain(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    answers, secrets = materialize(case("production-container-db-selfsigned-monitoring"), pki)
    first = render_plan(answers, secrets, RELEASE, tmp_path).file("nginx/ssl/codequal.crt")
    answers.domain = "other.example.com"
    second = render_plan(answers, secrets, RELEASE, tmp_path).file("nginx/ssl/codequal.crt")
    assert first.content != second.content


def test_unreadable_provided_certificate_is_a_usage_error(tmp_path: Path) -> None:
    answers = AnswerFile.model_validate(
        {
            "version": 1,
            "target": "production",
            "domain": "codequal.example.com",
            "tls": {
                "mode": "provided",
                "cert_file": str(tmp_path / "missing.crt"),
                "key_file": str(tmp_path / "missing.key"),
            },
        }
    )
    with pytest.raises(RenderError, match="cannot read the TLS certificate"):
        render_plan(answers, Secrets(), RELEASE, tmp_path / "out")


def test_a_release_without_a_needed_service_is_refused(tmp_path: Path) -> None:
    release = RELEASE.model_copy(
        update={"services": {k: v for k, v in RELEASE.services.items() if k != "nginx"}}
    )
    answers = AnswerFile.model_validate(
        {"version": 1, "target": "production", "domain": "codequal.example.com"}
    )
    with pytest.raises(RenderError, match="no service named nginx"):
        render_plan(answers, Secrets(), release, tmp_path)


# --- writing ----------------------------------------------------------------------------------


def test_write_plan_sets_modes_reports_changes_and_removes_dropped_files(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    answers, secrets = materialize(case("production-container-db-selfsigned-monitoring"), pki)
    changes = write_plan(render_plan(answers, secrets, RELEASE, tmp_path), tmp_path)
    assert {c.kind for c in changes} == {"new"}
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "nginx/ssl/codequal.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "docker-compose.yml").stat().st_mode & 0o777 == 0o644
    os.chmod(tmp_path / ".env", 0o644)
    answers.monitoring.enabled = False
    changes = write_plan(render_plan(answers, secrets, RELEASE, tmp_path), tmp_path)
    kinds = {c.path: c.kind for c in changes}
    assert kinds["monitoring/loki/loki.yml"] == "removed"
    assert kinds[".env"] == "changed"
    assert not (tmp_path / "monitoring/loki/loki.yml").exists()
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    leftovers = [p for p in tmp_path.rglob("*.tmp")]
    assert leftovers == []


def test_diff_of_a_secret_file_never_shows_old_or_new_values(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    answers, _ = materialize(case("production-container-db-selfsigned-monitoring"), pki)
    write_plan(
        render_plan(answers, Secrets(anthropic_api_key="sk-old-value-1234"), RELEASE, tmp_path),
        tmp_path,
    )
    changes = compare_plan(
        render_plan(answers, Secrets(anthropic_api_key="sk-new-value-5678"), RELEASE, tmp_path),
        tmp_path,
    )
    (env_change,) = [c for c in changes if c.path == ".env"]
    assert env_change.kind == "changed"
    assert "-ANTHROPIC_API_KEY=<hidden>" in env_change.diff
    assert "+ANTHROPIC_API_KEY=<hidden>" in env_change.diff
    assert "sk-old-value" not in env_change.diff and "sk-new-value" not in env_change.diff
    generated = json.loads((tmp_path / "state/generated-secrets.json").read_text())
    assert not any(v in env_change.diff for v in generated.values())


def test_corrupt_generated_secrets_stop_the_render_with_a_hint(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    from installer.statedir import StateError

    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "generated-secrets.json").write_text("{not json")
    with pytest.raises(StateError) as error:
        render_case(case("production-container-db-selfsigned-monitoring"), pki, tmp_path)
    assert "generated-secrets.json" in error.value.message
    assert error.value.hint and "backup" in error.value.hint


# --- what rendering imports -------------------------------------------------------------------

_IMPORTS = """
import sys
from pathlib import Path
import installer.cli
assert "jinja2" not in sys.modules and "cryptography" not in sys.modules, "start-up"
from installer.credentials import Secrets
from installer.release import load_release
from installer.render import render_plan
from installer.validation import parse_answers_text
answers = parse_answers_text("version: 1\\ntarget: production\\ndomain: codequal.example.com\\n")
render_plan(answers, Secrets(), load_release("0.1.0"), Path(sys.argv[1]))
print("cryptography" in sys.modules)
"""


def test_cryptography_is_imported_only_to_make_a_certificate(tmp_path: Path) -> None:
    import subprocess
    import sys

    def run() -> str:
        result = subprocess.run(
            [sys.executable, "-c", _IMPORTS, str(tmp_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert run() == "True"  # first render: the self-signed certificate is made
    assert run() == "False"  # later renders reuse it from state/


def test_a_build_version_becomes_a_valid_version_label(tmp_path: Path) -> None:
    release = RELEASE.model_copy(update={"version": "0.1.0+build.7"})
    answers = AnswerFile.model_validate(
        {"version": 1, "target": "kubernetes", "domain": "codequal.example.com"}
    )
    plan = render_plan(answers, Secrets(), release, tmp_path)
    namespace = documents(plan, plan.kubernetes_objects[0].path)[0]
    assert namespace["metadata"]["labels"]["app.kubernetes.io/version"] == "0.1.0_build.7"
