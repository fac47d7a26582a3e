"""The GitOps export without outside tools: values, their schema, the README, refusals.

tests/integration/test_gitops_export.py renders the chart and builds the overlays with the
real tools and compares them with what the Kubernetes target applies.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from installer.answers import AnswerFile
from installer.errors import ExitCode
from installer.export import helm, values
from installer.export.helm import build_chart, helm_files, values_table
from installer.export.objects import ExportError
from installer.release import load_release
from tests.support.render_matrix import CASES, materialize, write_test_pki
from tests.unit.cli_helpers import run_cli

# Rendered as without a proxy, whatever the environment running the tests has.
pytestmark = pytest.mark.usefixtures("without_proxy")

RELEASE = load_release("0.1.0")
K8S_CASES = [c for c in CASES if c.answers["target"] in ("kubernetes", "enterprise")]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def charts(pki: dict[str, Path]) -> dict[str, dict[str, str]]:
    out = {}
    for case in K8S_CASES:
        answers, _ = materialize(case, pki)
        out[case.name] = {
            p: text for p, (text, _) in helm_files(answers, RELEASE, "a.yaml").items()
        }
    return out


def leaves(data: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out += leaves(value, f"{prefix}{key}.")
        else:
            out.append(prefix + key)
    return out


@pytest.mark.parametrize("name", [c.name for c in K8S_CASES])
def test_the_default_values_satisfy_the_schema(
    name: str, charts: dict[str, dict[str, str]]
) -> None:
    schema = json.loads(charts[name]["values.schema.json"])
    Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert not list(
        Draft7Validator(schema).iter_errors(yaml.safe_load(charts[name]["values.yaml"]))
    )


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (("kubernetes", "replicas", "deepwiki"), 0),
        (("kubernetes", "replicas", "deepwiki"), "three"),
        (("kubernetes", "replicas", "deepwiki"), 101),
        (("kubernetes", "autoscaling", "cpu_percent"), 2.5),
        (("domain",), "https://codequal.example.com"),
        (("domain",), "-bad-.example.com"),
        (("registry", "mirror"), "http://registry.corp.local"),
        (("images", "codequal"), "not an image ref"),
        (("createNamespace",), "yes"),
        (("existingSecret",), ""),
        (("kubernetes", "replicas", "typo"), 1),
        (("unknown",), 1),
    ],
)
def test_a_value_that_breaks_the_schema_is_refused(
    path: tuple[str, ...], bad: Any, charts: dict[str, dict[str, str]]
) -> None:
    chart = charts["kubernetes-in-cluster-db-selfsigned-monitoring"]
    schema = json.loads(chart["values.schema.json"])
    data = copy.deepcopy(yaml.safe_load(chart["values.yaml"]))
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = bad
    errors = list(Draft7Validator(schema).iter_errors(data))
    assert errors, f"{'.'.join(path)}={bad!r} was accepted"


def test_the_schema_is_the_answer_models_own_for_the_fields_the_chart_takes(
    charts: dict[str, dict[str, str]],
) -> None:
    from installer.reference import answers_schema

    model = answers_schema()["$defs"]
    chart = charts["kubernetes-managed-db-provided-tls-no-autoscaling"]
    schema = json.loads(chart["values.schema.json"])
    kubernetes = schema["properties"]["kubernetes"]["properties"]
    replicas = kubernetes["replicas"]["properties"]["codequal"]
    want = model["Replicas"]["properties"]["codequal"]
    assert replicas["description"] == want["description"]
    assert (replicas["minimum"], replicas["maximum"]) == (want["minimum"], want["maximum"])
    assert (
        kubernetes["ingress_class"]["description"]
        == (model["Kubernetes"]["properties"]["ingress_class"]["description"])
    )
    # No volume claim here (managed database, external DeepWiki, no monitoring): the
    # storage class decides nothing, so it is no value of this chart.
    assert "storage_class" not in kubernetes
    # Autoscaling is off in these answers: its values decide nothing, so the chart has none.
    assert "autoscaling" not in kubernetes


@pytest.mark.parametrize("name", [c.name for c in K8S_CASES])
def test_the_readme_lists_every_value_as_the_schema_describes_it(
    name: str, charts: dict[str, dict[str, str]]
) -> None:
    chart = charts[name]
    schema = json.loads(chart["values.schema.json"])
    data = yaml.safe_load(chart["values.yaml"])
    table = values_table(schema, data)
    assert table in chart["README.md"]
    for leaf in leaves(data):
        assert f"| `{leaf}` |" in table, leaf
    assert len(table.strip().splitlines()) == len(leaves(data)) + 2


def test_values_yaml_writes_every_value_with_its_description(
    charts: dict[str, dict[str, str]],
) -> None:
    text = charts["enterprise-openshift-mirror-ldap-ca-airgap"]["values.yaml"]
    data = yaml.safe_load(text)
    assert data["registry"]["mirror"] == "registry.corp.local:5000"
    assert data["routeTLS"] == {"key": ""}
    assert data["kubernetes"]["autoscaling"] == {"min": 2, "max": 6, "cpu_percent": 70}
    assert "# Replicas of DeepWiki." in text


def test_chart_yaml_takes_version_and_app_version_from_the_release(
    charts: dict[str, dict[str, str]],
) -> None:
    meta = yaml.safe_load(charts["kubernetes-in-cluster-db-selfsigned-monitoring"]["Chart.yaml"])
    assert meta["apiVersion"] == "v2"
    assert meta["version"] == meta["appVersion"] == RELEASE.version


def test_a_field_that_reshapes_the_objects_is_not_made_a_value(
    pki: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # openshift swaps Ingresses for Routes: the export must refuse it as a chart value.
    structural = values.ChartValue(("kubernetes", "openshift"), lambda value: not value)
    monkeypatch.setattr(helm, "CHART_VALUES", (*values.CHART_VALUES, structural))
    answers, _ = materialize(K8S_CASES[0], pki)
    with pytest.raises(ExportError, match=r"kubernetes\.openshift"):
        build_chart(answers, RELEASE)


def test_a_compose_target_is_refused(tmp_path: Path) -> None:
    answers = tmp_path / "a.yaml"
    answers.write_text("version: 1\ntarget: production\ndomain: codequal.example.com\n")
    out = str(tmp_path / "o")
    result = run_cli("plan", "--answers", str(answers), "--format", "helm", "--out", out)
    assert result.exit_code == ExitCode.USAGE
    assert "kubernetes and enterprise" in result.output
    assert not (tmp_path / "o").exists()


def test_helm_takes_one_answer_file_and_plain_plan_too(tmp_path: Path) -> None:
    answers = tmp_path / "a.yaml"
    answers.write_text("version: 1\ntarget: kubernetes\ndomain: codequal.example.com\n")
    for fmt in ("helm", "files"):
        command = ["plan", "--answers", str(answers), "--answers", str(answers), "--format", fmt]
        result = run_cli(*command, "--out", str(tmp_path / fmt))
        assert result.exit_code == ExitCode.USAGE, result.output


def test_the_export_names_no_state_and_holds_no_generated_password(tmp_path: Path) -> None:
    answers = AnswerFile.model_validate(
        {"version": 1, "target": "kubernetes", "domain": "codequal.example.com"}
    )
    files = helm_files(answers, RELEASE, "a.yaml")
    text = "".join(t for t, _ in files.values())
    assert "__CODEQUAL_" not in text  # no placeholder left anywhere
    assert "${CODEQUAL_DATABASE_PASSWORD}" in files["secrets.example.yaml"][0]
    assert "kind: Secret" not in "".join(t for p, (t, _) in files.items() if "templates/" in p)
    assert files["create-secrets.sh"][1] == 0o755


def test_the_export_takes_no_proxy_from_the_machine_that_exports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The proxy of the machine running `plan` is not the cluster's, and a proxy URL may
    # hold a password: the exported chart is the same with or without one.
    answers = AnswerFile.model_validate(
        {"version": 1, "target": "kubernetes", "domain": "codequal.example.com"}
    )
    plain = helm_files(answers, RELEASE, "a.yaml")
    monkeypatch.setenv("HTTPS_PROXY", "http://user:s3cret-pw@proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", ".corp.example")
    assert helm_files(answers, RELEASE, "a.yaml") == plain
