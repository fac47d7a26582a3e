"""The Kubernetes adapter, through the real runner and the official client, against the
fake API server (tests/support/fake_kube_api.py): fresh install, re-apply, failures
explained, missing permissions, rollback of a failed upgrade, status, contexts."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import pytest

from installer.engine.kubernetes import Cluster, ClusterUnreachable, list_contexts
from installer.errors import ExitCode
from installer.targets.kubernetes.plan import dry_run, kubernetes_status, prepare_install
from tests.support.fake_kube_api import ContainerRun, FakeKubeAPI, Node
from tests.support.kube_install import (
    RELEASE_2,
    RELEASE_BROKEN,
    answers,
    install,
    options,
    release,
)

NAMESPACE = "codequal"


@pytest.fixture
def api() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as server:
        yield server
        assert server.fake_failures == []


@pytest.fixture
def kubeconfig(api: FakeKubeAPI, tmp_path: Path) -> Path:
    return api.write_kubeconfig(tmp_path / "kubeconfig")


def step_messages(run: object, step: str) -> str:
    return "\n".join(e.message for e in run.of(step))  # type: ignore[attr-defined]


def live_versions(api: FakeKubeAPI) -> dict[tuple[str, str, str, str], str]:
    # Events are the cluster's own chatter; everything else must stand still.
    return {k: v for k, v in api.resource_versions().items() if k[1] != "events"}


def test_fresh_install_reaches_verified_and_records_the_release(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    api.job_runs["codequal-test/standin:1"] = ContainerRun(["migrating to 1", "schema at 1"], 0)

    run = install(answers(), kubeconfig, tmp_path / "root")

    assert run.exit_code == 0, run.text()
    assert run.final().type == "run.finished"
    finished = {e.step for e in run.events if e.type == "step.finished"}
    assert {"prerequisites", "containers", "database", "services", "verification"} <= finished
    verification = step_messages(run, "verification")
    for name in ("codequal", "deepwiki", "postgres"):
        assert f"rolled out: {name}:" in verification
        assert f"Service {name}: 1 ready endpoint(s)" in verification
    # The migration's log was streamed line by line while the Job ran.
    database = [e.message for e in run.of("database") if e.type == "step.output"]
    assert "| migrating to 1" in database and "| schema at 1" in database
    record = api.get_object("v1", "ConfigMap", "codequal-release", NAMESPACE)
    assert record is not None and record["data"]["version"] == "1.0.0-test"
    recorded = {(r["kind"], r["name"]) for r in json.loads(record["data"]["objects"])}
    assert ("Deployment", "codequal") in recorded and ("Job", "codequal-migrate-1") in recorded
    # Every object carries our field manager, written with server-side apply.
    deployment = api.get_object("apps/v1", "Deployment", "codequal", NAMESPACE)
    assert deployment is not None
    managers = {(m["manager"], m["operation"]) for m in deployment["metadata"]["managedFields"]}
    assert ("codequal-installer", "Apply") in managers
    # The autoscaler owns the API's replica count: the installer never sets it.
    assert "f:replicas" not in json.dumps(deployment["metadata"]["managedFields"])
    # Secrets went to the cluster, not to the record ConfigMap.
    assert "POSTGRES_PASSWORD" not in json.dumps(record)


def test_apply_order_is_the_dependency_order(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    run = install(answers(monitoring={"enabled": False}), kubeconfig, tmp_path / "root")
    assert run.exit_code == 0, run.text()
    kinds = [b["kind"] for b in api.applied_bodies if b["kind"] not in ("ConfigMap",)]
    order = ["Namespace", "Secret", "PersistentVolumeClaim", "Service", "Deployment", "Job"]
    firsts = [kinds.index(k) for k in order]
    assert firsts == sorted(firsts), kinds
    after_job = kinds[kinds.index("Job") :]
    for kind in ("Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"):
        assert kind in after_job
    assert after_job.index("Ingress") < after_job.index("NetworkPolicy")


def test_reapply_with_the_same_answers_changes_nothing(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    first = install(answers(), kubeconfig, tmp_path / "root")
    assert first.exit_code == 0, first.text()
    before = live_versions(api)
    writes_before = len(api.writes())

    second = install(answers(), kubeconfig, tmp_path / "root")

    assert second.exit_code == 0, second.text()
    assert live_versions(api) == before
    assert len(api.writes()) == writes_before  # only reads and dry runs
    skipped = {e.step for e in second.events if e.type == "step.skipped"}
    assert {"containers", "database", "services", "monitoring", "record"} <= skipped
    assert second.final().message.startswith("nothing changed")


def test_a_changed_answer_changes_only_what_it_touches(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    assert install(answers(), kubeconfig, tmp_path / "root").exit_code == 0
    before = live_versions(api)

    changed = answers(kubernetes={"replicas": {"deepwiki": 2}})
    run = install(changed, kubeconfig, tmp_path / "root")

    assert run.exit_code == 0, run.text()
    deploy = step_messages(run, "containers")
    assert "Deployment deepwiki in namespace codequal: configured" in deploy
    assert "Deployment codequal in namespace codequal: unchanged" in deploy
    after = live_versions(api)
    unchanged_configmap = ("", "configmaps", NAMESPACE, "codequal-env")
    assert after[unchanged_configmap] == before[unchanged_configmap]
    deepwiki = api.get_object("apps/v1", "Deployment", "deepwiki", NAMESPACE)
    assert deepwiki is not None and deepwiki["status"]["availableReplicas"] == 2


def test_an_image_that_cannot_be_pulled_fails_with_the_registry_explained(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    api.unpullable_images.add("registry.corp.local:5000/codequal-test/deepwiki:missing")
    mirrored = answers(
        registry={"mirror": "registry.corp.local:5000"},
        release={"images": {"deepwiki": "codequal-test/deepwiki:missing"}},
    )

    run = install(mirrored, kubeconfig, tmp_path / "root")

    assert run.exit_code == ExitCode.INSTALL_FAILED, run.text()
    failed = next(e for e in run.events if e.type == "step.failed")
    assert failed.step == "verification"
    assert "did not become available" in failed.message
    assert "cannot be pulled (ImagePullBackOff)" in failed.message
    tail = "\n".join(failed.data["log_tail"])
    assert 'Failed to pull image "registry.corp.local:5000/codequal-test/deepwiki:missing"' in tail
    assert "registry.corp.local:5000" in failed.data["hint"]
    assert "--bundle" in failed.data["hint"]
    # A fresh install that failed leaves nothing of itself behind.
    assert run.final().data["rolled_back"]
    assert api.deleted("v1", "Namespace", NAMESPACE)  # Terminating, then gone


def test_a_migration_job_that_cannot_start_fails_with_the_reason(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    api.unpullable_images.add("codequal-test/standin:1")

    run = install(answers(), kubeconfig, tmp_path / "root", rollout_timeout=1.0)

    assert run.exit_code == ExitCode.INSTALL_FAILED
    failed = next(e for e in run.events if e.type == "step.failed")
    assert failed.step == "database"
    assert "could not start within 1 s" in failed.message
    assert "the image codequal-test/standin:1 cannot be pulled" in "\n".join(
        failed.data["log_tail"]
    )


def test_a_failing_migration_fails_with_its_log(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    api.job_runs["codequal/codequal-migrate-1"] = ContainerRun(
        ["connecting to postgres", "error: relation users already exists"], 1
    )
    run = install(answers(), kubeconfig, tmp_path / "root")
    assert run.exit_code == ExitCode.INSTALL_FAILED
    failed = next(e for e in run.events if e.type == "step.failed")
    assert failed.step == "database" and "failed" in failed.message
    assert "error: relation users already exists" in failed.data["log_tail"]
    assert failed.data["command"] == ["standin", "migrate", "--schema-version", "1"]


def test_a_crashing_container_fails_with_its_last_log_lines(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    api.crashing_images["codequal-test/standin:unhealthy"] = ContainerRun(
        ["deepwiki starting", "fatal: cannot open /app/repos: permission denied"], 2
    )
    broken = release(RELEASE_BROKEN)

    run = install(answers(), kubeconfig, tmp_path / "root", release_manifest=broken)

    assert run.exit_code == ExitCode.INSTALL_FAILED
    failed = next(e for e in run.events if e.type == "step.failed")
    assert "Deployment deepwiki did not become available" in failed.message
    assert "keeps crashing (exit code 2" in failed.message
    assert "  | fatal: cannot open /app/repos: permission denied" in failed.data["log_tail"]


def test_a_pod_that_cannot_be_scheduled_names_the_schedulers_reason(
    kubeconfig: Path, tmp_path: Path
) -> None:
    small = [Node(f"small-{i}", cpu_millis=8000, memory_bytes=1024**3) for i in (1, 2, 3)]
    with FakeKubeAPI(nodes=small) as api:
        config = api.write_kubeconfig(tmp_path / "small-kubeconfig")
        run = install(answers(checks={"skip": ["dns", "memory"]}), config, tmp_path / "root")
    assert run.exit_code == ExitCode.INSTALL_FAILED
    failed = next(e for e in run.events if e.type == "step.failed")
    assert "cannot be scheduled: 0/3 nodes are available: 3 Insufficient memory" in failed.message
    assert "resources.profile" in failed.data["hint"]


def test_a_missing_storage_class_is_a_prerequisite_failure_naming_the_choices(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    run = install(answers(kubernetes={"storage_class": "fast-ssd"}), kubeconfig, tmp_path / "root")
    assert run.exit_code == ExitCode.PREREQUISITES
    final = run.final()
    assert "StorageClass 'fast-ssd' (kubernetes.storage_class) does not exist" in final.message
    assert "standard" in final.data["hint"]
    assert api.writes() == []


def test_a_missing_permission_fails_before_anything_is_applied(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    api.deny("create", "deployments", group="apps", namespace=NAMESPACE)
    api.deny("get", "pods/log", namespace=NAMESPACE)

    run = install(answers(), kubeconfig, tmp_path / "root")

    assert run.exit_code == ExitCode.PREREQUISITES, run.text()
    final = run.final()
    assert final.data["step"] == "prerequisites"
    assert "cannot create deployments.apps in namespace codequal" in final.message
    assert "cannot get pods/log in namespace codequal" in final.message
    assert "nothing was applied" in final.data["hint"]
    assert api.writes() == []  # not one create, patch or delete reached the server
    reviews = [r for r in api.requests if r.resource == "selfsubjectaccessreviews"]
    assert len(reviews) > 20


def test_a_namespace_the_user_may_not_change_is_used_as_it_is(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    for verb in ("create", "patch", "delete"):
        api.deny(verb, "namespaces")

    run = install(answers(monitoring={"enabled": False}), kubeconfig, tmp_path / "root")

    assert run.exit_code == 0, run.text()
    assert "exists and this user may not change it" in step_messages(run, "prerequisites")
    assert not any(r.resource == "namespaces" and r.verb == "patch" for r in api.requests)


def test_a_failed_upgrade_rolls_back_to_the_recorded_release(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    first = install(answers(), kubeconfig, tmp_path / "root")
    assert first.exit_code == 0, first.text()
    api.crashing_images["codequal-test/standin:unhealthy"] = ContainerRun(["boom"], 1)

    upgrade = install(
        answers(), kubeconfig, tmp_path / "root", release_manifest=release(RELEASE_BROKEN)
    )

    assert upgrade.exit_code == ExitCode.INSTALL_FAILED
    rollback = step_messages(upgrade, "containers")
    assert "restoring release 1.0.0-test from the release record" in rollback
    assert "pruned Job codequal-migrate-2" in rollback or "deleted Job codequal-migrate-2" in (
        step_messages(upgrade, "database")
    )
    record = api.get_object("v1", "ConfigMap", "codequal-release", NAMESPACE)
    assert record is not None and record["data"]["version"] == "1.0.0-test"
    for name in ("codequal", "deepwiki"):
        live = api.get_object("apps/v1", "Deployment", name, NAMESPACE)
        assert live is not None
        image = live["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == "codequal-test/standin:1"
    assert api.get_object("batch/v1", "Job", "codequal-migrate-2", NAMESPACE) is None
    # The recorded release runs again: a plain re-apply of it finds nothing to do.
    again = install(answers(), kubeconfig, tmp_path / "root")
    assert again.exit_code == 0, again.text()
    assert {"containers", "record"} <= {e.step for e in again.events if e.type == "step.skipped"}


def test_a_successful_upgrade_records_the_new_release(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    assert install(answers(), kubeconfig, tmp_path / "root").exit_code == 0
    run = install(answers(), kubeconfig, tmp_path / "root", release_manifest=release(RELEASE_2))
    assert run.exit_code == 0, run.text()
    assert "upgrading from the recorded release 1.0.0-test" in step_messages(run, "containers")
    record = api.get_object("v1", "ConfigMap", "codequal-release", NAMESPACE)
    assert record is not None and record["data"]["version"] == "2.0.0-test"
    assert api.get_object("batch/v1", "Job", "codequal-migrate-2", NAMESPACE) is not None
    status = kubernetes_status(answers(), options=options(kubeconfig))
    assert status["version"] == "2.0.0-test" and status["healthy"] is True


def test_a_field_changed_by_another_manager_is_a_named_conflict(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    assert install(answers(), kubeconfig, tmp_path / "root").exit_code == 0
    cluster = Cluster.connect(environ={"KUBECONFIG": str(kubeconfig)})
    path = "/apis/apps/v1/namespaces/codequal/deployments/deepwiki"
    cluster._call(
        "PATCH",
        path,
        query=[("fieldManager", "kubectl-edit")],
        body={
            "spec": {"template": {"spec": {"containers": [{"name": "deepwiki", "image": "x:1"}]}}}
        },
        content_type="application/merge-patch+json",
    )
    cluster.close()

    run = install(answers(), kubeconfig, tmp_path / "root", release_manifest=release(RELEASE_2))

    assert run.exit_code == ExitCode.INSTALL_FAILED
    failed = next(e for e in run.events if e.type == "step.failed")
    assert failed.step == "containers"
    assert 'conflict with "kubectl-edit"' in failed.message
    assert "--force-conflicts" in failed.data["hint"]


def test_status_reads_the_record_and_the_live_state(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    before = kubernetes_status(answers(), options=options(kubeconfig))
    assert before["installed"] is False
    assert install(answers(), kubeconfig, tmp_path / "root").exit_code == 0

    status = kubernetes_status(answers(), options=options(kubeconfig))

    assert status["installed"] is True and status["version"] == "1.0.0-test"
    by_name = {s["name"]: s for s in status["services"]}
    assert by_name["deepwiki"]["healthy"] is True and by_name["deepwiki"]["ready"] == "1/1"
    # Live state, not the record: a Deployment that lost its pods is reported unhealthy.
    api.unpullable_images.add("broken:1")
    cluster = Cluster.connect(environ={"KUBECONFIG": str(kubeconfig)})
    cluster._call(
        "PATCH",
        "/apis/apps/v1/namespaces/codequal/deployments/deepwiki",
        query=[("fieldManager", "kubectl-edit")],
        body={"spec": {"template": {"metadata": {"labels": {"x": "y"}}}}},
        content_type="application/merge-patch+json",
    )
    cluster.close()
    status = kubernetes_status(answers(), options=options(kubeconfig))
    assert {s["name"]: s for s in status["services"]}["deepwiki"]["healthy"] is False


def test_dry_run_prints_objects_in_apply_order_and_changes_nothing(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    session = prepare_install(
        answers(),
        _secrets(),
        release=release(),
        root=tmp_path / "root",
        options=options(kubeconfig),
    )
    lines: list[str] = []
    mode = dry_run(session, lines.append)
    session.close()

    assert mode == "server"
    text = "\n".join(lines)
    assert api.writes() == []
    assert api.get_object("v1", "Namespace", NAMESPACE) is None
    headers = [line for line in lines if line.startswith("---\n# ")]
    kinds = [h.split(". ", 1)[1].split(" ")[0] for h in headers]
    assert kinds[0] == "Namespace" and kinds.index("Deployment") < kinds.index("Ingress")
    assert "would be created" in text
    assert "sk-ant-dry-run-secret" not in text and "<redacted>" in text


def test_dry_run_after_install_shows_what_would_change(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    assert install(answers(), kubeconfig, tmp_path / "root").exit_code == 0
    before = live_versions(api)
    changed = answers(kubernetes={"replicas": {"deepwiki": 3}})
    session = prepare_install(
        changed, _secrets(), release=release(), root=tmp_path / "root", options=options(kubeconfig)
    )
    lines: list[str] = []
    dry_run(session, lines.append)
    session.close()
    verdicts = {line.split(". ", 1)[1] for line in lines if line.startswith("---\n# ")}
    assert "Deployment deepwiki in namespace codequal: would be changed" in verdicts
    assert "Deployment codequal in namespace codequal: unchanged" in verdicts
    assert live_versions(api) == before


def test_dry_run_without_a_cluster_prints_the_rendered_objects(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-kubeconfig"
    session = prepare_install(
        answers(), _secrets(), release=release(), root=tmp_path / "root", options=options(missing)
    )
    lines: list[str] = []
    assert dry_run(session, lines.append) == "rendered"
    assert "cannot be reached" in lines[0]
    assert sum(1 for line in lines if line.startswith("---")) == len(session.objects)


def _secrets() -> object:
    from installer.credentials import Secrets

    return Secrets(anthropic_api_key="sk-ant-dry-run-secret")  # type: ignore[arg-type]


def test_kubeconfig_contexts_are_listed_for_the_wizard(api: FakeKubeAPI, tmp_path: Path) -> None:
    config = api.write_kubeconfig(
        tmp_path / "kubeconfig", context="prod", extra_contexts=("staging",)
    )
    contexts = list_contexts({"KUBECONFIG": str(config)})
    assert [(c.name, c.current) for c in contexts] == [("prod", True), ("staging", False)]
    nothing = {"KUBECONFIG": str(tmp_path / "missing"), "HOME": str(tmp_path)}
    assert list_contexts(nothing) == []


def test_inside_a_pod_the_service_account_is_used(tmp_path: Path) -> None:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("pod-token")
    (account / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    environ = {
        "KUBERNETES_SERVICE_HOST": "10.96.0.1",
        "KUBERNETES_SERVICE_PORT": "443",
        "HOME": str(tmp_path),
    }
    contexts = list_contexts(environ, service_account_dir=account)
    assert [(c.name, c.current) for c in contexts] == [("in-cluster", True)]
    cluster = Cluster.connect(environ=environ, service_account_dir=account)
    assert (cluster.context, cluster.server) == ("in-cluster", "https://10.96.0.1:443")
    assert cluster.api.configuration.api_key["BearerToken"] == "bearer pod-token"
    cluster.close()
    # A kubeconfig, when there is one, wins: the operator chose it.
    with pytest.raises(ClusterUnreachable):
        Cluster.connect("in-cluster", environ={**environ, "KUBECONFIG": "/nonexistent"})


def test_the_context_from_the_answers_is_the_one_used(api: FakeKubeAPI, tmp_path: Path) -> None:
    config = api.write_kubeconfig(tmp_path / "kubeconfig", context="prod", extra_contexts=("ci",))
    cluster = Cluster.connect("ci", environ={"KUBECONFIG": str(config)})
    assert cluster.context == "ci" and cluster.version().git_version == "v1.30.4"
    cluster.close()
    with pytest.raises(ClusterUnreachable) as caught:
        Cluster.connect("nope", environ={"KUBECONFIG": str(config)})
    assert "no context named 'nope'" in caught.value.message
    assert "prod, ci" in (caught.value.hint or "")


def test_an_unknown_context_in_the_answers_is_a_prerequisite_failure(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    run = install(answers(kubernetes={"context": "elsewhere"}), kubeconfig, tmp_path / "root")
    assert run.exit_code == ExitCode.PREREQUISITES
    assert "kubernetes" in run.final().message
    assert api.writes() == []


class _Health(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        code = 200 if self.path in ("/health", "/deepwiki/health") else 404
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def https_server(cert: Path, key: Path) -> Iterator[int]:
    """The ingress stand-in: HTTPS on localhost with the given certificate."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_verification_requests_each_public_route_over_https(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    local = answers(domain="localhost", monitoring={"enabled": False})
    root = tmp_path / "root"
    # The self-signed certificate is made once, at the first render; the ingress serves it.
    prepare_install(local, _secrets(), release=release(), root=root, options=options(kubeconfig))
    tls = root / "state" / "tls"
    with https_server(tls / "self-signed.crt", tls / "self-signed.key") as port:
        run = install(local, kubeconfig, root, https_port=port)
    assert run.exit_code == 0, run.text()
    verification = step_messages(run, "verification")
    assert f"https://localhost:{port}/health: HTTP 200" in verification
    assert f"https://localhost:{port}/deepwiki/health: HTTP 200" in verification


def test_verification_fails_when_the_public_host_presents_another_certificate(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    from installer.secretstore import generate_self_signed

    cert, key, _ = generate_self_signed("localhost")
    (tmp_path / "other.crt").write_bytes(cert)
    (tmp_path / "other.key").write_bytes(key)
    local = answers(domain="localhost", monitoring={"enabled": False})
    with https_server(tmp_path / "other.crt", tmp_path / "other.key") as port:
        run = install(local, kubeconfig, tmp_path / "root", https_port=port, https_timeout=0.5)
    assert run.exit_code == ExitCode.INSTALL_FAILED
    failed = next(e for e in run.events if e.type == "step.failed")
    assert failed.step == "verification"
    assert f"https://localhost:{port}/health does not answer" in failed.message
    assert "CERTIFICATE_VERIFY_FAILED" in failed.message or "certificate" in failed.message


def test_the_kubernetes_client_is_imported_only_when_a_cluster_is_used() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import installer.cli, installer.targets.kubernetes, installer.engine.kubernetes\n"
        "import installer.targets.kubernetes.steps, installer.targets.kubernetes.plan\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _interrupt_after(kubeconfig: Path, root: Path, created: int) -> None:
    """Run an install and stop it (Ctrl-C) once ``created`` objects exist."""
    from installer.runner import Runner
    from installer.targets.kubernetes.plan import install_plan

    session = prepare_install(
        answers(), _secrets(), release=release(), root=root, options=options(kubeconfig)
    )
    runner = Runner(install_plan(session))
    events = runner.run()
    count = 0
    for event in events:
        if event.step == "containers" and event.message.endswith(": created"):
            count += 1
            if count == created:
                break
    events.close()  # between two objects, as a cancelled run stops
    session.close()
    assert runner.outcome is not None and runner.outcome.exit_code == ExitCode.INTERRUPTED


def test_an_interrupted_install_resumes_and_finishes(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    _interrupt_after(kubeconfig, tmp_path / "root", 5)
    assert api.get_object("v1", "Namespace", NAMESPACE) is not None

    resumed = install(answers(), kubeconfig, tmp_path / "root")

    assert resumed.exit_code == 0, resumed.text()
    assert "resuming the interrupted run at containers" in resumed.events[0].message
    containers = [e.message for e in resumed.of("containers") if e.type == "step.output"]
    assert containers[0] == "Namespace codequal: unchanged"  # made by the interrupted run
    assert sum(m.endswith(": created") for m in containers) > 5


def test_a_resumed_install_that_fails_removes_what_the_interrupted_run_made(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    _interrupt_after(kubeconfig, tmp_path / "root", 3)
    api.unpullable_images.add("codequal-test/standin:1")

    resumed = install(answers(), kubeconfig, tmp_path / "root", rollout_timeout=0.5)

    assert resumed.exit_code == ExitCode.INSTALL_FAILED
    assert "deleted Namespace codequal (created by this run)" in step_messages(
        resumed, "containers"
    )
    assert api.deleted("v1", "Namespace", NAMESPACE)  # Terminating, then gone


def test_objects_a_new_answer_drops_are_pruned_and_their_data_kept(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    assert install(answers(), kubeconfig, tmp_path / "root").exit_code == 0
    without = answers(monitoring={"enabled": False})
    session = prepare_install(
        without, _secrets(), release=release(), root=tmp_path / "root", options=options(kubeconfig)
    )
    lines: list[str] = []
    dry_run(session, lines.append)
    session.close()
    verdicts = "\n".join(lines)
    assert "Deployment grafana in namespace codequal: would be deleted" in verdicts
    assert "PersistentVolumeClaim grafana-data in namespace codequal: kept" in verdicts
    assert api.get_object("apps/v1", "Deployment", "grafana", NAMESPACE) is not None

    run = install(without, kubeconfig, tmp_path / "root")

    assert run.exit_code == 0, run.text()
    record = step_messages(run, "record")
    assert "pruned Deployment grafana in namespace codequal" in record
    assert "kept PersistentVolumeClaim grafana-data" in record
    for kind, name in (("Deployment", "prometheus"), ("ConfigMap", "loki-config")):
        assert (
            api.get_object("apps/v1" if kind == "Deployment" else "v1", kind, name, NAMESPACE)
            is None
        )
    assert api.get_object("v1", "PersistentVolumeClaim", "grafana-data", NAMESPACE) is not None
    assert api.get_object("apps/v1", "Deployment", "codequal", NAMESPACE) is not None


def test_a_rollback_does_not_run_the_previous_migration_again(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    # Same schema version, new image: the database step replaces the Job of the same name.
    # Restoring the recorded release must not start the old migration Job again.
    assert install(answers(), kubeconfig, tmp_path / "root").exit_code == 0
    api.crashing_images["codequal-test/standin:9"] = ContainerRun(["no"], 1)
    upgrade = answers(
        release={
            "images": {"codequal": "codequal-test/standin:8", "deepwiki": "codequal-test/standin:9"}
        }
    )

    run = install(upgrade, kubeconfig, tmp_path / "root")

    assert run.exit_code == ExitCode.INSTALL_FAILED
    assert run.outcome.status == "failed", run.text()  # not rollback_failed
    assert "replacing the earlier Job codequal-migrate-1" in step_messages(run, "database")
    live = api.get_object("apps/v1", "Deployment", "codequal", NAMESPACE)
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "codequal-test/standin:1"
    assert api.get_object("batch/v1", "Job", "codequal-migrate-1", NAMESPACE) is None


def test_a_pod_waiting_for_its_volume_is_explained_with_the_claims_event(
    api: FakeKubeAPI, kubeconfig: Path
) -> None:
    import time

    from installer.targets.kubernetes.explain import explain_pods

    cluster = Cluster.connect(environ={"KUBECONFIG": str(kubeconfig)})
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "x"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "gone",
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    )
    labels = {"app": "db"}
    cluster.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "db", "namespace": "x"},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [{"name": "db", "image": "postgres:16"}],
                        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}],
                    },
                },
            },
        }
    )
    deadline = time.monotonic() + 5
    explanation = explain_pods(cluster, "x", "app=db")
    while "cannot be scheduled" not in explanation.summary and time.monotonic() < deadline:
        time.sleep(0.05)
        explanation = explain_pods(cluster, "x", "app=db")
    cluster.close()
    assert "pod has unbound immediate PersistentVolumeClaims" in explanation.summary
    assert 'volume claim data is not bound: storageclass.storage.k8s.io "gone" not found' in (
        "\n".join(explanation.lines())
    )
    assert "kubernetes.storage_class" in (explanation.hint or "")


def test_an_unreachable_cluster_fails_the_prerequisites(tmp_path: Path) -> None:
    with FakeKubeAPI() as gone:
        config = gone.write_kubeconfig(tmp_path / "kubeconfig")
        server = gone.url
    run = install(answers(), config, tmp_path / "root")
    assert run.exit_code == ExitCode.PREREQUISITES
    lines = step_messages(run, "prerequisites")
    assert f"not reachable: the Kubernetes API at {server} did not answer" in lines
    assert "connection refused" in lines


def test_a_second_machine_keeps_the_generated_passwords_of_the_first(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    assert install(answers(), kubeconfig, tmp_path / "laptop").exit_code == 0
    before = live_versions(api)

    # Another machine (CI, a colleague), with no local state: nothing may change, above all
    # not the database password the running PostgreSQL was initialised with.
    run = install(answers(), kubeconfig, tmp_path / "ci-runner")

    assert run.exit_code == 0, run.text()
    assert live_versions(api) == before
    generated = json.loads((tmp_path / "ci-runner/state/generated-secrets.json").read_text())
    assert generated == json.loads((tmp_path / "laptop/state/generated-secrets.json").read_text())
    assert (tmp_path / "ci-runner/state/generated-secrets.json").stat().st_mode & 0o777 == 0o600
    certificate = "state/tls/self-signed.crt"
    assert (tmp_path / "ci-runner" / certificate).read_bytes() == (
        tmp_path / "laptop" / certificate
    ).read_bytes()


@pytest.mark.parametrize("with_grafana", [False, True])
def test_with_the_prometheus_operator_servicemonitors_are_created(
    with_grafana: bool, tmp_path: Path
) -> None:
    components = ["prometheus", "loki", *(["grafana"] if with_grafana else [])]
    with FakeKubeAPI(prometheus_operator=True) as api:
        config = api.write_kubeconfig(tmp_path / "kubeconfig")
        run = install(answers(monitoring={"components": components}), config, tmp_path / "root")
        assert run.exit_code == 0, run.text()
        monitors = {
            m["metadata"]["name"]
            for m in api.list_objects("monitoring.coreos.com/v1", "ServiceMonitor", NAMESPACE)
        }
        rules = api.get_object(
            "monitoring.coreos.com/v1", "PrometheusRule", "codequal-alerts", NAMESPACE
        )
        own_prometheus = api.get_object("apps/v1", "Deployment", "prometheus", NAMESPACE)
    assert monitors == {"codequal", "deepwiki"}
    assert rules is not None and rules["spec"]["groups"]
    # Our own Prometheus only where Grafana needs one it knows the address of.
    assert (own_prometheus is not None) is with_grafana
    assert "Prometheus Operator: found" in step_messages(run, "prerequisites")


def test_a_failed_upgrade_puts_the_previous_manifests_back_and_logs_no_secret(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    from installer.credentials import Secrets

    secret = "sk-ant-upgrade-secret-value-42"
    root = tmp_path / "root"
    first = install(answers(), kubeconfig, root, secrets=Secrets(anthropic_api_key=secret))
    assert first.exit_code == 0, first.text()
    manifests = {p.name: p.read_bytes() for p in (root / "kubernetes").glob("*.yaml")}
    api.crashing_images["codequal-test/standin:unhealthy"] = ContainerRun(["boom"], 1)

    upgrade = install(
        answers(),
        kubeconfig,
        root,
        release_manifest=release(RELEASE_BROKEN),
        secrets=Secrets(anthropic_api_key=secret),
    )

    assert upgrade.exit_code == ExitCode.INSTALL_FAILED
    assert {p.name: p.read_bytes() for p in (root / "kubernetes").glob("*.yaml")} == manifests
    secret_file = next(p for p in (root / "kubernetes").glob("*-secret-codequal-secrets.yaml"))
    assert secret_file.stat().st_mode & 0o777 == 0o600
    generated = json.loads((root / "state/generated-secrets.json").read_text()).values()
    for path in [root / "state/journal.json", *(root / "state/logs").glob("*.log")]:
        text = path.read_text()
        for value in (secret, *generated):
            assert value not in text, path
    assert secret not in first.text() + upgrade.text()


def test_a_role_granting_more_than_the_user_holds_fails_the_prerequisites(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    # RBAC refuses to create a Role that grants what its creator does not hold; an install
    # whose objects include a Role checks each permission it grants first.
    from installer.runner import Runner
    from installer.targets.kubernetes.objects import ManifestObject
    from installer.targets.kubernetes.plan import install_plan

    api.deny("watch", "endpoints", namespace=NAMESPACE)
    session = prepare_install(
        answers(),
        _secrets(),
        release=release(),
        root=tmp_path / "root",
        options=options(kubeconfig),
    )
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "scraper", "namespace": NAMESPACE},
        "rules": [{"apiGroups": [""], "resources": ["endpoints"], "verbs": ["get", "watch"]}],
    }
    session.objects.insert(1, ManifestObject(role))
    runner = Runner(install_plan(session))
    events = list(runner.run())
    session.close()

    assert runner.outcome is not None and runner.outcome.exit_code == ExitCode.PREREQUISITES
    assert (
        "cannot watch endpoints in namespace codequal (granted by Role scraper)"
        in events[-1].message
    )
    assert api.writes() == []


def test_pods_refused_by_admission_are_explained_with_the_refusal(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    refusal = (
        'violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
        '(container "deepwiki" must set securityContext.allowPrivilegeEscalation=false)'
    )
    api.forbidden_images["codequal-test/deepwiki:root"] = refusal
    run = install(
        answers(release={"images": {"deepwiki": "codequal-test/deepwiki:root"}}),
        kubeconfig,
        tmp_path / "root",
    )
    assert run.exit_code == ExitCode.INSTALL_FAILED
    failed = next(e for e in run.events if e.type == "step.failed")
    assert "Deployment deepwiki did not become available" in failed.message
    assert "its pods cannot be created: Error creating: pods" in failed.message
    assert refusal in failed.message
    assert "reported for ReplicaSet deepwiki-" in "\n".join(failed.data["log_tail"])
    assert "Pod Security admission" in failed.data["hint"]
