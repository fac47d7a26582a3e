"""``plan --format helm|kustomize``, read by the tools that will consume it.

For each answer file of the Kubernetes matrix (tests/support/render_matrix.py: kubernetes and
enterprise, OpenShift on and off, mirror, LDAP, autoscaling off) the export is compared with
the objects the Kubernetes target applies for the same answers (``KubeInstall.objects``,
parsed, order-insensitive):

* the chart, rendered by the Helm harness (tests/support/helm_render/) with its default
  values (plus the Routes' TLS key where the Routes carry one: it is never in the chart);
* ``kubectl kustomize`` (the real Kustomize v5) of each overlay;
* the Secrets, which neither holds, as ``create-secrets.sh`` makes them through a real
  ``kubectl create secret --dry-run=client``: same names, types and keys, and with the same
  inputs the same values.

Both are checked with ``kubernetes-validate --strict`` on two Kubernetes versions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from installer.release import load_release
from installer.render import render_plan
from installer.targets.kubernetes.session import KubeInstall, KubeOptions
from tests.support.helm_render import KUBECTL, render_chart
from tests.support.render_matrix import (
    CASES,
    MANAGED_DB_PASSWORD,
    SUPPLIED_SECRETS,
    RenderCase,
    materialize,
    write_test_pki,
)

pytestmark = pytest.mark.integration

RELEASE = load_release("0.1.0")
KUBERNETES_VERSIONS = ("1.29.0", "1.33.0")
K8S_CASES = [c for c in CASES if c.answers["target"] in ("kubernetes", "enterprise")]
ids = [c.name for c in K8S_CASES]


def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=300, **kwargs
    )


def tool(name: str) -> str:
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; scripts/test installs it", pytrace=False)
    return found


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def answer_files(tmp_path_factory: pytest.TempPathFactory, pki: dict[str, Path]) -> dict[str, Path]:
    """Each case as an answer file named after it (the overlays are named after the files)."""
    directory = tmp_path_factory.mktemp("answers")
    files = {}
    for case in K8S_CASES:
        answers, _ = materialize(case, pki)
        path = directory / f"{case.name}.yaml"
        path.write_text(yaml.safe_dump(answers.model_dump(mode="json", exclude_none=True)))
        files[case.name] = path
    return files


def export(out: Path, fmt: str, *answers: Path, env: dict[str, str] | None = None) -> str:
    arguments = [a for path in answers for a in ("--answers", str(path))]
    result = run(
        [sys.executable, "-m", "installer", "plan", *arguments, "--format", fmt, "--out", str(out)],
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def kustomize_tree(tmp_path_factory: pytest.TempPathFactory, answer_files: dict[str, Path]) -> Path:
    """One export of every case: a base and one overlay each (--answers repeated)."""
    out = tmp_path_factory.mktemp("kustomize")
    export(out, "kustomize", *answer_files.values())
    return out


class Applied:
    """What the Kubernetes target applies for a case, and the generated passwords it used."""

    def __init__(self, case: RenderCase, pki: dict[str, Path], root: Path, **change: Any):
        answers, secrets = materialize(case, pki)
        if change:
            data = answers.model_dump(mode="json")
            for dotted, value in change.items():
                node = data
                *parents, last = dotted.split("__")
                for key in parents:
                    node = node[key]
                node[last] = value
            answers = type(answers).model_validate(data)
        plan = render_plan(answers, secrets, RELEASE, root)
        install = KubeInstall.from_rendered(
            answers, secrets, RELEASE, root, plan, options=KubeOptions()
        )
        self.answers = answers
        self.objects = by_identity([i.obj for i in install.objects if i.kind != "Secret"])
        self.secrets = {i.ref.name: i.obj for i in install.objects if i.kind == "Secret"}
        generated = root / "state/generated-secrets.json"
        self.generated = json.loads(generated.read_text()) if generated.exists() else {}
        self.case = case


def by_identity(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for obj in objects:
        key = (obj["kind"], obj["metadata"]["name"])
        assert key not in out, f"{key} twice"
        out[key] = obj
    return out


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def route_key_override(chart: Path, pki: dict[str, Path], directory: Path) -> list[str]:
    """The Routes' key, supplied at install time as the chart asks (never in the chart)."""
    if "routeTLS" not in yaml.safe_load((chart / "values.yaml").read_text()):
        return []
    override = directory / "route-key.yaml"
    override.write_text(yaml.safe_dump({"routeTLS": {"key": pki["key"].read_text()}}))
    return ["-f", str(override)]


def created_secrets(
    script: Path, applied: Applied, pki: dict[str, Path]
) -> dict[str, dict[str, Any]]:
    """The Secrets ``create-secrets.sh`` creates, from the inputs the installer had."""
    env = {"PATH": os.environ["PATH"], "KUBECTL": KUBECTL, "HOME": str(script.parent)}
    supplied = {**applied.case.secrets, **applied.generated}
    env.update({f"CODEQUAL_{k.upper()}": v for k, v in supplied.items()})
    env["CODEQUAL_TLS_CERT_FILE"] = str(pki["cert"])
    env["CODEQUAL_TLS_KEY_FILE"] = str(pki["key"])
    result = run(["sh", str(script), "--dry-run=client", "-o", "yaml"], env=env)
    assert result.returncode == 0, result.stderr
    return {d["metadata"]["name"]: d for d in documents(result.stdout)}


def check_secrets(created: dict[str, dict[str, Any]], applied: Applied) -> None:
    assert set(created) == set(applied.secrets)
    for name, secret in created.items():
        want = applied.secrets[name]
        assert secret.get("type", "Opaque") == want["type"], name
        assert secret["metadata"]["namespace"] == want["metadata"]["namespace"]
        assert set(secret["data"]) == set(want["stringData"]), name
        if want["type"] == "Opaque":  # the same inputs make the same values
            import base64

            values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
            assert values == want["stringData"], name


def check_references(objects: dict[Any, dict[str, Any]], created: dict[str, Any]) -> None:
    """Every Secret an object names exists, with every key it reads."""
    found = 0
    for obj in objects.values():
        spec = obj.get("spec") or {}
        pod = (spec.get("template") or {}).get("spec") or {}
        for container in pod.get("containers") or []:
            for variable in container.get("env") or []:
                ref = (variable.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in created[ref["name"]]["data"], ref
                    found += 1
        for pull in pod.get("imagePullSecrets") or []:
            assert created[pull["name"]]["type"] == "kubernetes.io/dockerconfigjson"
            found += 1
        for tls in spec.get("tls") or [] if obj["kind"] == "Ingress" else []:
            assert created[tls["secretName"]]["type"] == "kubernetes.io/tls"
            found += 1
    assert found


def kubernetes_validate(objects: list[dict[str, Any]], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, obj in enumerate(objects):
        if obj["kind"] == "Route":  # no OpenShift schemas in kubernetes-validate
            continue
        path = directory / f"{index:02d}.yaml"
        path.write_text(yaml.safe_dump(obj))
        paths.append(str(path))
    for version in KUBERNETES_VERSIONS:
        result = run([tool("kubernetes-validate"), "--strict", "-k", version, *paths])
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.count(" passed for resource ") == len(paths), result.stdout


# --- Helm -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", K8S_CASES, ids=ids)
def test_the_chart_renders_exactly_the_objects_the_target_applies(
    case: RenderCase, answer_files: dict[str, Path], pki: dict[str, Path], tmp_path: Path
) -> None:
    chart = tmp_path / "chart"
    export(chart, "helm", answer_files[case.name])
    applied = Applied(case, pki, tmp_path / "install")
    rendered = render_chart(chart, *route_key_override(chart, pki, tmp_path)).stdout
    got = by_identity(documents(rendered))
    assert got == applied.objects

    created = created_secrets(chart / "create-secrets.sh", applied, pki)
    check_secrets(created, applied)
    check_references(got, created)
    kubernetes_validate(list(got.values()), tmp_path / "validate")


def test_the_chart_asks_for_the_routes_key_rather_than_hold_it(
    answer_files: dict[str, Path], tmp_path: Path
) -> None:
    export(tmp_path, "helm", answer_files["enterprise-openshift-mirror-ldap-ca-airgap"])
    result = render_chart(tmp_path, check=False)
    assert result.returncode != 0
    assert "routeTLS.key is required" in result.stderr


@pytest.mark.parametrize(
    ("setting", "change", "changed_kinds"),
    [
        (
            "kubernetes.replicas.deepwiki=3",
            {"kubernetes__replicas__deepwiki": 3},
            {("Deployment", "deepwiki")},
        ),
        (
            "registry.mirror=registry.corp.example:5000",
            {"registry__mirror": "registry.corp.example:5000"},
            None,  # every Deployment and the Job
        ),
        (
            "domain=codequal.other.example",
            {"domain": "codequal.other.example"},
            {
                ("ConfigMap", "codequal-env"),
                ("ConfigMap", "prometheus-config"),  # it probes the public URL
                ("Ingress", "codequal"),
                ("Ingress", "deepwiki"),
            },
        ),
        (
            "kubernetes.autoscaling.max=9",
            {"kubernetes__autoscaling__max": 9},
            {("HorizontalPodAutoscaler", "codequal")},
        ),
    ],
    ids=["replicas", "mirror", "domain", "autoscaling-max"],
)
def test_one_value_changes_only_the_objects_it_should(  # noqa: PLR0917
    setting: str,
    change: dict[str, Any],
    changed_kinds: set[tuple[str, str]] | None,
    answer_files: dict[str, Path],
    pki: dict[str, Path],
    tmp_path: Path,
) -> None:
    case = K8S_CASES[0]  # kubernetes, in-cluster database, monitoring, autoscaling
    chart = tmp_path / "chart"
    export(chart, "helm", answer_files[case.name])
    before = by_identity(documents(render_chart(chart).stdout))
    after = by_identity(documents(render_chart(chart, "--set", setting).stdout))
    # The chart with the value changed is what the installer applies with the answer changed.
    applied = Applied(case, pki, tmp_path / "install", **change)
    assert after == applied.objects
    changed = {key for key in before if before[key] != after[key]}
    if changed_kinds is None:
        changed_kinds = {k for k in before if k[0] in ("Deployment", "Job")}
    assert changed == changed_kinds


def test_the_mirror_value_rewrites_images_as_the_installer_does(
    answer_files: dict[str, Path], tmp_path: Path
) -> None:
    # Exported with a mirror: set to null, it gives back the release's own images.
    case = next(c for c in K8S_CASES if c.name == "enterprise-kubernetes-managed-db-mirror")
    chart = tmp_path / "chart"
    export(chart, "helm", answer_files[case.name])

    def images(text: str) -> set[str]:
        return {
            container["image"]
            for obj in documents(text)
            for container in ((obj.get("spec") or {}).get("template") or {})
            .get("spec", {})
            .get("containers", [])
        }

    mirrored = images(render_chart(chart).stdout)
    assert mirrored and all(i.startswith("registry.corp.local:5000/") for i in mirrored)
    unmirrored = images(render_chart(chart, "--set", "registry.mirror=null").stdout)
    services = ("codequal", "deepwiki", "prometheus", "loki")
    assert unmirrored == {RELEASE.services[s].reference for s in services}


# --- Kustomize --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", K8S_CASES, ids=ids)
def test_each_overlay_builds_exactly_the_objects_the_target_applies(
    case: RenderCase, kustomize_tree: Path, pki: dict[str, Path], tmp_path: Path
) -> None:
    overlay = kustomize_tree / "overlays" / case.name
    if (overlay / "route-tls-key.example.yaml").exists():
        patch = [{"op": "add", "path": "/spec/tls/key", "value": pki["key"].read_text()}]
        (overlay / "route-tls-key.yaml").write_text(yaml.safe_dump(patch))
    result = run([KUBECTL, "kustomize", str(overlay)])
    assert result.returncode == 0, result.stderr
    applied = Applied(case, pki, tmp_path / "install")
    got = by_identity(documents(result.stdout))
    assert got == applied.objects

    created = created_secrets(overlay / "create-secrets.sh", applied, pki)
    check_secrets(created, applied)
    check_references(got, created)
    kubernetes_validate(list(got.values()), tmp_path / "validate")


def test_answer_files_that_differ_in_namespace_and_mirror_share_a_base(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    base = {"version": 1, "target": "kubernetes", "domain": "codequal.example.com"}
    staging = {**base, "kubernetes": {"namespace": "cq-staging"}}
    production = {**base, "registry": {"mirror": "registry.corp.example:5000/mirror"}}
    paths = []
    for name, answers in (("staging", staging), ("production", production)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(answers))
        paths.append(path)
    out = tmp_path / "out"
    export(out, "kustomize", *paths)
    base_files = [p.name for p in (out / "base").glob("*.yaml") if p.name != "kustomization.yaml"]
    # Only what names the namespace inside its data, and the Namespace, differ.
    own = [p.name for p in (out / "overlays/staging").glob("[0-9]*.yaml")]
    assert len(base_files) > 3 * len(own), (base_files, own)
    for name, answers in (("staging", staging), ("production", production)):
        result = run([KUBECTL, "kustomize", str(out / "overlays" / name)])
        assert result.returncode == 0, result.stderr
        case = RenderCase(name, answers)
        assert by_identity(documents(result.stdout)) == Applied(case, pki, tmp_path / name).objects


# --- every export -----------------------------------------------------------------------------


def exported_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_no_secret_is_in_any_exported_file(
    answer_files: dict[str, Path], pki: dict[str, Path], tmp_path: Path
) -> None:
    # The secrets are offered every way the installer takes them; none may come out.
    secrets_file = tmp_path / "secrets.yaml"
    secrets = {**SUPPLIED_SECRETS, "database_password": MANAGED_DB_PASSWORD}
    secrets_file.write_text(yaml.safe_dump(secrets))
    secrets_file.chmod(0o600)
    env = {**os.environ, **{f"CODEQUAL_{k.upper()}": v for k, v in secrets.items()}}
    for name, path in answer_files.items():
        arguments = ["--answers", str(path), "--secrets", str(secrets_file)]
        for fmt in ("helm", "kustomize"):
            out = tmp_path / name / fmt
            command = [sys.executable, "-m", "installer", "plan", *arguments]
            result = run([*command, "--format", fmt, "--out", str(out)], env=env)
            assert result.returncode == 0, result.stderr
    key_lines = [line for line in pki["key"].read_text().splitlines() if "-----" not in line]
    needles = [*secrets.values(), *key_lines]
    files = exported_files(tmp_path)
    assert len(files) > 100
    for path in files:
        if path == secrets_file:
            continue
        text = path.read_text()
        for needle in needles:
            assert needle not in text, f"{path} holds a secret"
    assert not list(tmp_path.rglob("state")), "an export keeps no state directory"


@pytest.mark.parametrize("fmt", ["helm", "kustomize"])
def test_two_exports_of_the_same_answers_are_byte_identical(
    fmt: str, answer_files: dict[str, Path], tmp_path: Path
) -> None:
    answers = list(answer_files.values())
    chosen = answers[2:3] if fmt == "helm" else answers
    export(tmp_path / "one", fmt, *chosen)
    export(tmp_path / "two", fmt, *chosen)
    one, two = exported_files(tmp_path / "one"), exported_files(tmp_path / "two")
    assert [p.relative_to(tmp_path / "one") for p in one] == [
        p.relative_to(tmp_path / "two") for p in two
    ]
    for a, b in zip(one, two, strict=True):
        assert a.read_bytes() == b.read_bytes(), a
        assert a.stat().st_mode == b.stat().st_mode, a


@pytest.mark.parametrize("fmt", ["helm", "kustomize"])
def test_shellcheck_and_yamllint_pass_on_the_export(
    fmt: str, answer_files: dict[str, Path], tmp_path: Path
) -> None:
    chosen = list(answer_files.values())
    export(tmp_path, fmt, *(chosen[2:3] if fmt == "helm" else chosen))
    scripts = sorted(str(p) for p in tmp_path.rglob("*.sh"))
    assert scripts
    result = run([tool("shellcheck"), "--shell=sh", *scripts])
    assert result.returncode == 0, result.stdout
    # Helm templates are not YAML until rendered: the rendered chart is linted instead.
    yaml_files = [
        str(p) for p in tmp_path.rglob("*.yaml") if "templates" not in p.relative_to(tmp_path).parts
    ]
    if fmt == "helm":
        rendered = tmp_path / "rendered.yaml"
        output = render_chart(tmp_path, "--set", "routeTLS.key=x").stdout
        rendered.write_text(output)
        yaml_files.append(str(rendered))
    config = str(tmp_path / ".yamllint.yaml")
    result = run([tool("yamllint"), "--strict", "-c", config, *yaml_files])
    assert result.returncode == 0, result.stdout


# --- the harness itself -----------------------------------------------------------------------


def test_the_harness_renders_as_helm_documents_it(tmp_path: Path) -> None:
    chart = tmp_path / "demo"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 1.2.3\n")
    (chart / "values.yaml").write_text("a: {b: 1, c: two}\ntext: 'x: {{ .Values.a.c }}'\n")
    (chart / "templates/_helpers.tpl").write_text(
        '{{- define "demo.name" -}}{{ .Chart.Name }}-{{ .Release.Name }}{{- end -}}\n'
        "not: rendered\n"
    )
    (chart / "templates/NOTES.txt").write_text("notes for {{ .Release.Namespace }}\n")
    (chart / "templates/a.yaml").write_text(
        "---\n# only a comment\n---\n"
        'name: {{ include "demo.name" . }}\n'
        "version: {{ .Chart.Version }}\n"
        "b: {{ .Values.a.b }}\n"
        "c: {{ .Values.a.c | upper }}\n"
        "tpl: {{ tpl .Values.text . | quote }}\n"
        "round: {{ .Values.a | toYaml | fromYaml | toJson }}\n"
        'lookup: {{ lookup "v1" "Secret" "ns" "x" | toJson }}\n'
        "missing: [{{ .Values.nothing }}]\n"
    )
    result = render_chart(chart, "--name", "r", "--namespace", "ns")
    docs = documents(result.stdout)
    assert docs == [
        {
            "name": "demo-r",
            "version": "1.2.3",
            "b": 1,
            "c": "TWO",
            "tpl": "x: two",
            "round": {"b": 1, "c": "two"},
            "lookup": {},
            "missing": [],  # "<no value>" removed, as Helm does
        }
    ]
    assert result.stdout.count("# Source: demo/templates/a.yaml") == 1
    assert "rendered" not in result.stdout and "notes" not in result.stdout
    assert render_chart(chart, "--namespace", "ns", "--notes").stdout == "notes for ns\n"

    override = tmp_path / "override.yaml"
    override.write_text("a: {c: three}\n")
    merged = documents(render_chart(chart, "-f", str(override), "--set", "a.b=7").stdout)[0]
    assert (merged["b"], merged["c"]) == (7, "THREE")  # a deep merge: a.b kept, then set

    (chart / "templates/b.yaml").write_text('x: {{ required "x is required" .Values.x }}\n')
    failed = render_chart(chart, check=False)
    assert failed.returncode != 0 and "x is required" in failed.stderr


def test_images_are_pinned_by_digest_where_the_release_knows_it(
    pki: dict[str, Path], tmp_path: Path
) -> None:
    from installer.export import write_files
    from installer.export.helm import helm_files

    digest = "sha256:" + "ab" * 32
    services = dict(RELEASE.services)
    services["codequal"] = services["codequal"].model_copy(update={"digest": digest})
    release = RELEASE.model_copy(update={"services": services})
    case = next(c for c in K8S_CASES if c.name == "enterprise-kubernetes-managed-db-mirror")
    answers, secrets = materialize(case, pki)
    write_files(helm_files(answers, release, "answers.yaml"), tmp_path / "chart")
    values = yaml.safe_load((tmp_path / "chart/values.yaml").read_text())
    assert values["images"]["codequal"] == f"ghcr.io/codequal/codequal:0.1.0@{digest}"
    got = by_identity(documents(render_chart(tmp_path / "chart").stdout))
    plan = render_plan(answers, secrets, release, tmp_path / "install")
    install = KubeInstall.from_rendered(
        answers, secrets, release, tmp_path / "install", plan, options=KubeOptions()
    )
    applied = by_identity([i.obj for i in install.objects if i.kind != "Secret"])
    assert got == applied
    image = got[("Deployment", "codequal")]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"registry.corp.local:5000/codequal/codequal:0.1.0@{digest}"

    # Kustomize's images transformer keeps the tag and digest through the mirror's rewrite.
    from installer.export.kustomize import kustomize_files

    write_files(kustomize_files([("a.yaml", answers)], release), tmp_path / "kustomize")
    result = run([KUBECTL, "kustomize", str(tmp_path / "kustomize/overlays/a")])
    assert result.returncode == 0, result.stderr
    assert by_identity(documents(result.stdout)) == applied


@pytest.mark.parametrize(
    "image",
    [
        "nginx:1.27",
        "nginx@sha256:" + "cd" * 32,
        "grafana/grafana:11.2.0",
        "docker.io/library/postgres:16",
        "index.docker.io/nginx:1",
        "registry-1.docker.io/prom/prometheus:v2",
        "ghcr.io/codequal/codequal:0.1.0@sha256:" + "ef" * 32,
        "localhost:5000/codequal:1",
        "localhost/x:1",
    ],
)
def test_the_charts_image_rewrite_is_the_installers(
    image: str, answer_files: dict[str, Path], tmp_path: Path
) -> None:
    from installer.render.images import mirrored

    chart = tmp_path / "chart"
    export(chart, "helm", answer_files["enterprise-kubernetes-managed-db-mirror"])
    for mirror in ("registry.corp.example:5000", "mirror.corp.example/cq/images"):
        settings = ["--set", f"images.codequal={image}", "--set", f"registry.mirror={mirror}"]
        got = by_identity(documents(render_chart(chart, *settings).stdout))
        pod = got[("Deployment", "codequal")]["spec"]["template"]["spec"]
        assert pod["containers"][0]["image"] == mirrored(image, mirror)
