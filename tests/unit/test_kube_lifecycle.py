"""Kubernetes upgrade backups, restore and rollback, against the API stand-in.

The stand-in runs each Job's pod with the log lines and exit code a test scripts
(``job_runs``); what the Job's command really does to a PostgreSQL database is proved with
the real Docker Engine in ``tests/integration/test_kube_lifecycle_jobs.py``. Here: which
Jobs are made (command, claim, secret references), that they are waited for, failures in the
operator's words, the order (previous objects re-applied, then the restore), claims kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from installer.credentials import LoadedSecrets, Secrets
from installer.engine.kubernetes import Cluster
from installer.errors import ExitCode, InstallerError, UsageError
from installer.events import Event
from installer.history import history_path, read_history
from installer.runner import CancelToken
from installer.targets.kubernetes import lifecycle
from installer.targets.kubernetes.lifecycle import (
    BACKUP_CLAIM,
    MANAGED_NOTE,
    DatabaseJobFailed,
    KubeBackup,
    kubernetes_lifecycle,
    kubernetes_pre_upgrade_backup,
    kubernetes_restore_after_failed_upgrade,
    kubernetes_rollback_events,
    rollback_plan,
)
from installer.targets.kubernetes.record import PREVIOUS_RECORD_NAME, read_record
from tests.support.fake_kube_api import ContainerRun, FakeKubeAPI
from tests.support.kube_install import (
    RELEASE_2,
    RELEASE_BROKEN,
    answers,
    install,
    options,
    release,
)

NAMESPACE = "codequal"
STAMP = "20261204t210000z"
DUMP_JOB = f"codequal-db-dump-{STAMP}"
RESTORE_JOB = f"codequal-db-restore-{STAMP}"
DUMP_PATH = f"/backups/pre-upgrade-1-0-0-test-to-2-0-0-test-{STAMP}.dump"
SHA = "ab" * 32


class Collected:
    """A run display that keeps every event."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def show(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass

    def messages(self) -> list[str]:
        return [e.message for e in self.events]


@pytest.fixture
def api() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as server:
        yield server
        assert server.fake_failures == []


@pytest.fixture
def kubeconfig(api: FakeKubeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = api.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setattr(lifecycle, "_stamp", lambda: STAMP)
    # The local state (history) of the Kubernetes targets lives under the user's state dir.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


def _subject(**extra: Any) -> Any:
    return answers(monitoring={"enabled": False}, **extra)


def _dump_ok(api: FakeKubeAPI, path: str = DUMP_PATH) -> None:
    api.job_runs[f"{NAMESPACE}/{DUMP_JOB}"] = ContainerRun(
        [
            "pg_dump: dumping contents of table public.items",
            f"codequal-dump: file={path} size=4242 sha256={SHA}",
        ],
        0,
    )


def _restore_ok(api: FakeKubeAPI) -> None:
    api.job_runs[f"{NAMESPACE}/{RESTORE_JOB}"] = ContainerRun(["codequal-restore: committed"], 0)


def _applied_jobs(api: FakeKubeAPI, name: str) -> list[dict[str, Any]]:
    return [
        b for b in api.applied_bodies if b.get("kind") == "Job" and b["metadata"]["name"] == name
    ]


def _images_before_restore(api: FakeKubeAPI, deployment: str = "codequal") -> list[str]:
    """The images of ``deployment`` applied between the dump Job and the restore Job, each
    change once: the newer release's, then the older one's re-applied."""
    bodies = api.applied_bodies
    kinds = [(b.get("kind"), b["metadata"]["name"]) for b in bodies]
    dump = max(i for i, k in enumerate(kinds) if k[0] == "Job" and "db-dump" in k[1])
    restore = kinds.index(("Job", RESTORE_JOB))
    images: list[str] = []
    for body in bodies[dump:restore]:
        if (body.get("kind"), body["metadata"]["name"]) == ("Deployment", deployment):
            image = body["spec"]["template"]["spec"]["containers"][0]["image"]
            if not images or images[-1] != image:
                images.append(image)
    return images


def _backup(
    kubeconfig: Path, subject: Any = None, *, to_version: str = "2.0.0-test"
) -> tuple[KubeBackup, Collected]:
    display = Collected()
    backup = kubernetes_pre_upgrade_backup(
        subject or _subject(),
        LoadedSecrets(Secrets()),
        to_version=to_version,
        display=display,
        cancel=CancelToken(),
        options=options(kubeconfig),
        release=release(),
    )
    return backup, display


MANAGED = {"kind": "postgres", "managed": True, "host": "db.example.com"}
MANAGED_SECRETS = Secrets(database_password="managed-db-password-not-shown")


def _secrets_for(subject: Any) -> Secrets:
    return MANAGED_SECRETS if subject is not None and subject.database.managed else Secrets()


def _installed(kubeconfig: Path, root: Path, subject: Any = None) -> None:
    run = install(subject or _subject(), kubeconfig, root, secrets=_secrets_for(subject))
    assert run.exit_code == 0, run.text()


def _generated_password(root: Path) -> str:
    data = json.loads((root / "state" / "generated-secrets.json").read_text())
    return str(data["database_password"])


def test_the_pre_upgrade_dump_is_a_job_writing_to_a_claim_with_the_password_by_reference(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    _installed(kubeconfig, root)
    _dump_ok(api)

    backup, display = _backup(kubeconfig)

    assert backup.database == "in-cluster"
    assert (backup.claim, backup.path, backup.sha256, backup.size) == (
        BACKUP_CLAIM,
        DUMP_PATH,
        SHA,
        4242,
    )
    assert backup.label == f"pvc/{BACKUP_CLAIM}:{DUMP_PATH}"
    (job,) = _applied_jobs(api, DUMP_JOB)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "codequal-test/postgres:1"
    assert container["command"][:2] == ["sh", "-c"]
    assert "pg_dump --format=custom" in container["command"][2]
    assert "pg_restore --list" in container["command"][2]
    env = {e["name"]: e for e in container["env"]}
    assert env["DUMP_FILE"]["value"] == DUMP_PATH
    assert env["PGHOST"]["value"] == f"postgres.{NAMESPACE}.svc.cluster.local"
    assert env["PGPASSWORD"] == {
        "name": "PGPASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "codequal-secrets", "key": "POSTGRES_PASSWORD"}},
    }
    assert {"name": "backups", "mountPath": "/backups"} in container["volumeMounts"]
    assert {"name": "backups", "persistentVolumeClaim": {"claimName": BACKUP_CLAIM}} in pod[
        "volumes"
    ]
    assert pod["restartPolicy"] == "Never"
    # No secret value anywhere in what was sent or shown.
    password = _generated_password(root)
    assert password not in json.dumps(job)
    assert not any(password in m for m in display.messages())
    assert any("| pg_dump: dumping contents" in m for m in display.messages())
    # The claim stays; the finished Job is removed; traffic to the database is allowed.
    claim = api.get_object("v1", "PersistentVolumeClaim", BACKUP_CLAIM, NAMESPACE)
    assert claim is not None and claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert api.get_object("batch/v1", "Job", DUMP_JOB, NAMESPACE) is None
    policies = {
        p["metadata"]["name"] for p in api.list_objects("networking.k8s.io/v1", "NetworkPolicy")
    }
    assert {"codequal-db-backup-egress", "postgres-from-db-backup"} <= policies
    # The release record is kept for rollback, with the dump it relies on.
    with Cluster.connect(environ={"KUBECONFIG": str(kubeconfig)}) as cluster:
        previous = read_record(
            cluster,
            NAMESPACE,
            name=PREVIOUS_RECORD_NAME,
            secret_name=PREVIOUS_RECORD_NAME + "-secrets",
        )
    assert previous is not None and previous.version == "1.0.0-test"
    assert previous.extra["dump-path"] == DUMP_PATH and previous.extra["dump-sha256"] == SHA
    assert previous.extra["upgraded-to"] == "2.0.0-test"
    assert previous.manifest_objects(), "the objects themselves are kept, not only their names"


def test_a_failed_dump_stops_the_upgrade_with_the_jobs_log(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    _installed(kubeconfig, tmp_path / "root")
    api.job_runs[f"{NAMESPACE}/{DUMP_JOB}"] = ContainerRun(
        ["pg_dump: error: connection to server failed: FATAL:  password authentication failed"],
        1,
    )

    with pytest.raises(DatabaseJobFailed) as caught:
        _backup(kubeconfig)

    assert "the pre-upgrade dump" in caught.value.message and "failed" in caught.value.message
    assert DUMP_JOB in caught.value.message
    assert any("password authentication failed" in line for line in caught.value.log_tail)
    assert f"kubectl -n {NAMESPACE} logs job/{DUMP_JOB}" in (caught.value.hint or "")
    # Kept for the operator to read; nothing of the release changed.
    assert api.get_object("batch/v1", "Job", DUMP_JOB, NAMESPACE) is not None
    record = api.get_object("v1", "ConfigMap", "codequal-release", NAMESPACE)
    assert record is not None and record["data"]["version"] == "1.0.0-test"
    assert api.get_object("v1", "ConfigMap", PREVIOUS_RECORD_NAME, NAMESPACE) is None


def test_a_dump_job_that_does_not_report_its_checksum_is_not_trusted(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    _installed(kubeconfig, tmp_path / "root")
    api.job_runs[f"{NAMESPACE}/{DUMP_JOB}"] = ContainerRun(["done"], 0)

    with pytest.raises(DatabaseJobFailed, match="did not report the dump it wrote"):
        _backup(kubeconfig)


def test_a_dump_pod_that_cannot_start_is_explained(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    _installed(kubeconfig, tmp_path / "root")
    api.unpullable_images.add("codequal-test/postgres:1")

    with pytest.raises(DatabaseJobFailed) as caught:
        _backup(kubeconfig)

    assert "could not start" in caught.value.message
    assert "codequal-test/postgres:1" in caught.value.message + " ".join(caught.value.log_tail)


def test_a_failed_upgrade_reapplies_the_previous_release_then_restores_the_dump(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    _installed(kubeconfig, root)
    _dump_ok(api, DUMP_PATH.replace("2-0-0-test", "2-0-0-broken"))
    backup, display = _backup(kubeconfig, to_version="2.0.0-broken")
    api.crashing_images["codequal-test/standin:unhealthy"] = ContainerRun(["boom"], 1)
    upgrade = install(_subject(), kubeconfig, root, release_manifest=release(RELEASE_BROKEN))
    assert upgrade.exit_code == ExitCode.INSTALL_FAILED
    _restore_ok(api)

    kubernetes_restore_after_failed_upgrade(
        _subject(),
        LoadedSecrets(Secrets()),
        backup,
        display=display,
        cancel=CancelToken(),
        options=options(kubeconfig),
    )

    # The runner's rollback re-applied 1.0.0's Deployments before the restore Job was made.
    assert _images_before_restore(api) == ["codequal-test/standin:2", "codequal-test/standin:1"]
    (job,) = _applied_jobs(api, RESTORE_JOB)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    script = container["command"][2]
    assert "pg_restore --clean --if-exists" in script
    assert "sha256sum -c" in script
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DUMP_FILE"] == backup.path and env["DUMP_SHA256"] == SHA
    assert container["image"] == "codequal-test/postgres:1"
    assert "database restored from" in " ".join(display.messages())
    live = api.get_object("apps/v1", "Deployment", "codequal", NAMESPACE)
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "codequal-test/standin:1"
    # Claims are kept: the database's and the dumps'.
    claims = {c["metadata"]["name"] for c in api.list_objects("v1", "PersistentVolumeClaim")}
    assert {"postgres-data", BACKUP_CLAIM} <= claims
    # Nothing is left to roll back to: the saved record goes.
    assert api.get_object("v1", "ConfigMap", PREVIOUS_RECORD_NAME, NAMESPACE) is None


def test_a_restore_that_fails_is_worded_and_rollback_finishes_it_later(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    _installed(kubeconfig, tmp_path / "root")
    _dump_ok(api)
    backup, display = _backup(kubeconfig)
    api.job_runs[f"{NAMESPACE}/{RESTORE_JOB}"] = ContainerRun(
        ["codequal-restore: /backups/x.dump is missing or does not match its SHA-256"], 3
    )

    with pytest.raises(DatabaseJobFailed) as caught:
        kubernetes_restore_after_failed_upgrade(
            _subject(),
            LoadedSecrets(Secrets()),
            backup,
            display=display,
            cancel=CancelToken(),
            options=options(kubeconfig),
        )
    assert "the restore" in caught.value.message and "failed" in caught.value.message
    assert any("does not match its SHA-256" in line for line in caught.value.log_tail)
    # rollback can finish it later: the saved record stays, marked.
    saved = api.get_object("v1", "ConfigMap", PREVIOUS_RECORD_NAME, NAMESPACE)
    assert saved is not None and saved["data"]["data-restore"] == "failed"
    assert saved["data"]["dump-path"] == DUMP_PATH
    _restore_ok(api)

    events = _rollback(kubeconfig)

    assert events[-1].type == "run.finished", [e.message for e in events]
    assert any("put release 1.0.0-test back but not its data" in e.message for e in events)
    assert len(_applied_jobs(api, RESTORE_JOB)) == 2, "the restore ran again"
    record = api.get_object("v1", "ConfigMap", "codequal-release", NAMESPACE)
    assert record is not None and record["data"]["version"] == "1.0.0-test"
    assert api.get_object("v1", "ConfigMap", PREVIOUS_RECORD_NAME, NAMESPACE) is None


def test_managed_database_upgrade_makes_no_dump_and_says_so(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    subject = _subject(database=MANAGED)
    _installed(kubeconfig, tmp_path / "root", subject)

    backup, display = _backup(kubeconfig, subject)

    assert backup.database == "managed" and backup.path is None and backup.label is None
    assert "NOT rolled back" in backup.note
    assert any("NOT rolled back" in m for m in display.messages())
    assert not any(b.get("kind") == "Job" and "db-dump" in b["metadata"]["name"]
                   for b in api.applied_bodies)  # fmt: skip
    assert api.get_object("v1", "PersistentVolumeClaim", BACKUP_CLAIM, NAMESPACE) is None

    # A failed upgrade's restore step restores nothing and says so plainly.
    after = Collected()
    kubernetes_restore_after_failed_upgrade(
        subject,
        LoadedSecrets(Secrets()),
        backup,
        display=after,
        cancel=CancelToken(),
        options=options(kubeconfig),
    )
    assert MANAGED_NOTE in after.messages()
    assert not any("restored" in m for m in after.messages())


def _upgraded(api: FakeKubeAPI, kubeconfig: Path, root: Path, subject: Any = None) -> KubeBackup:
    subject = subject or _subject()
    _installed(kubeconfig, root, subject)
    _dump_ok(api)
    backup, _ = _backup(kubeconfig, subject)
    run = install(
        subject,
        kubeconfig,
        root,
        release_manifest=release(RELEASE_2),
        secrets=_secrets_for(subject),
    )
    assert run.exit_code == 0, run.text()
    return backup


def _rollback(kubeconfig: Path, subject: Any = None) -> list[Event]:
    return list(
        kubernetes_rollback_events(
            subject or _subject(),
            LoadedSecrets(Secrets()),
            cancel=CancelToken(),
            options=options(kubeconfig),
        )
    )


def test_rollback_reapplies_the_previous_release_then_restores_its_data(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    _upgraded(api, kubeconfig, tmp_path / "root")
    with Cluster.connect(environ={"KUBECONFIG": str(kubeconfig)}) as cluster:
        plan = rollback_plan(_subject(), cluster)
    assert plan.allowed, plan.problems
    assert plan.installed == "2.0.0-test" and plan.previous is not None
    assert any("will be lost" in n and DUMP_PATH in n for n in plan.notes)
    before = len(api.writes())
    _restore_ok(api)

    events = _rollback(kubeconfig)

    final = events[-1]
    assert final.type == "run.finished" and final.exit_code == 0, [e.message for e in events]
    writes = api.writes()[before:]
    deployment = [i for i, w in enumerate(writes) if w.resource == "deployments"]
    restore = [i for i, w in enumerate(writes) if w.resource == "jobs" and w.name == RESTORE_JOB]
    assert deployment and restore and max(deployment) < min(restore), "re-apply, then restore"
    # 2.0.0 added the migration Job codequal-migrate-2: pruned; 1.0.0's objects are back.
    assert api.get_object("batch/v1", "Job", "codequal-migrate-2", NAMESPACE) is None
    live = api.get_object("apps/v1", "Deployment", "codequal", NAMESPACE)
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "codequal-test/standin:1"
    record = api.get_object("v1", "ConfigMap", "codequal-release", NAMESPACE)
    assert record is not None and record["data"]["version"] == "1.0.0-test"
    assert api.get_object("v1", "ConfigMap", PREVIOUS_RECORD_NAME, NAMESPACE) is None
    assert not any(w.verb == "delete" and w.resource == "persistentvolumeclaims" for w in writes)
    # The history says what happened and on which dump it relied.
    (entry,) = [e for e in read_history(_history(_subject())) if e.kind == "rollback"]
    assert (entry.from_release, entry.to_release, entry.outcome) == (
        "2.0.0-test",
        "1.0.0-test",
        "finished",
    )
    assert entry.backup == f"pvc/{BACKUP_CLAIM}:{DUMP_PATH}"
    # A second rollback has nothing to return to.
    again = _rollback(kubeconfig)
    assert again[-1].type == "run.failed" and again[-1].exit_code == ExitCode.USAGE
    assert "no upgrade to roll back" in again[-1].message


def _history(subject: Any) -> Path:
    from installer.support_bundle import state_for

    return history_path(state_for(subject))


def test_rollback_refuses_without_a_saved_release(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    _installed(kubeconfig, tmp_path / "root")
    before = len(api.writes())

    events = _rollback(kubeconfig)

    assert events[-1].type == "run.failed" and events[-1].exit_code == ExitCode.USAGE
    assert "no upgrade to roll back" in events[-1].message
    assert api.writes()[before:] == []


def test_a_failed_restore_in_rollback_says_the_release_is_back_but_not_its_data(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    _upgraded(api, kubeconfig, tmp_path / "root")
    api.job_runs[f"{NAMESPACE}/{RESTORE_JOB}"] = ContainerRun(["psql: error: boom"], 1)

    events = _rollback(kubeconfig)

    final = events[-1]
    assert final.type == "run.failed" and final.exit_code == ExitCode.INSTALL_FAILED
    assert "its data was not restored" in final.message
    failed = next(e for e in events if e.type == "step.failed")
    assert failed.step == "database restore"
    # The saved release stays, so the rollback can be run again once the cause is fixed.
    assert api.get_object("v1", "ConfigMap", PREVIOUS_RECORD_NAME, NAMESPACE) is not None
    (entry,) = [e for e in read_history(_history(_subject())) if e.kind == "rollback"]
    assert entry.outcome == "failed" and entry.exit_code == 1


def test_managed_database_rollback_says_the_data_is_not_rolled_back(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    subject = _subject(database=MANAGED)
    _upgraded(api, kubeconfig, tmp_path / "root", subject)
    with Cluster.connect(environ={"KUBECONFIG": str(kubeconfig)}) as cluster:
        plan = rollback_plan(subject, cluster)
    assert plan.allowed and MANAGED_NOTE in plan.notes
    assert not any("restored from" in n for n in plan.notes)

    events = _rollback(kubeconfig, subject)

    assert events[-1].type == "run.finished", [e.message for e in events]
    assert "data not rolled back" in events[-1].message
    assert MANAGED_NOTE in [e.message for e in events]
    assert not any(b.get("kind") == "Job" and "restore" in b["metadata"]["name"]
                   for b in api.applied_bodies)  # fmt: skip


def test_status_lifecycle_shows_the_last_dump_and_history(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    _upgraded(api, kubeconfig, tmp_path / "root")
    _restore_ok(api)
    assert _rollback(kubeconfig)[-1].exit_code == 0

    summary = kubernetes_lifecycle(_subject())

    assert summary["last_backup"]["archive"] == f"pvc/{BACKUP_CLAIM}:{DUMP_PATH}"
    assert summary["last_backup"]["verified"] is True
    assert summary["history"][-1]["kind"] == "rollback"


def test_errors_are_installer_errors_with_exit_codes() -> None:
    assert issubclass(DatabaseJobFailed, InstallerError)
    assert DatabaseJobFailed("x", log_tail=[]).exit_code == ExitCode.INSTALL_FAILED
    assert issubclass(lifecycle.NothingToRollBack, UsageError)


# -- the upgrade command on a Kubernetes target ---------------------------------------------


@pytest.fixture
def fast_options(monkeypatch: pytest.MonkeyPatch, kubeconfig: Path) -> None:
    """The command builds its own KubeOptions: the stand-in's timings instead of a cluster's."""
    import functools

    from installer.targets.kubernetes import plan, session
    from installer.targets.kubernetes.session import KubeOptions

    fast = functools.partial(
        KubeOptions, rollout_timeout=4.0, poll_interval=0.05, job_timeout=10.0, https_timeout=3.0
    )
    for module in (session, plan, lifecycle):
        monkeypatch.setattr(module, "KubeOptions", fast)


def _answers_file(tmp_path: Path, subject: Any) -> Path:
    path = tmp_path / "answers.json"
    path.write_text(subject.model_dump_json(exclude_none=True))
    return path


def _cli_upgrade(answers_path: Path, to: str) -> tuple[int, str]:
    from tests.unit.cli_helpers import run_cli

    result = run_cli("upgrade", "--answers", str(answers_path), "--to", to, "--yes", "--json")
    return result.exit_code, result.output


def _root(subject: Any) -> Path:
    from installer.targets.kubernetes.session import default_root

    return default_root(subject)


def test_upgrade_command_dumps_first_and_records_the_dump_in_history(
    api: FakeKubeAPI,
    kubeconfig: Path,
    tmp_path: Path,
    fast_options: None,
    test_releases_dir: Path,
) -> None:
    subject = _subject()
    _installed(kubeconfig, _root(subject))
    api.job_runs[f"{NAMESPACE}/{DUMP_JOB}"] = ContainerRun(
        [f"codequal-dump: file={DUMP_PATH} size=99 sha256={SHA}"], 0
    )

    code, output = _cli_upgrade(_answers_file(tmp_path, subject), "2.0.0-test")

    assert code == 0, output
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    dump_created = next(
        i for i, e in enumerate(events) if f"Job {DUMP_JOB} created" in e.get("message", "")
    )
    run_started = next(i for i, e in enumerate(events) if e["type"] == "run.started")
    assert dump_created < run_started, "the dump is made before anything changes"
    record = api.get_object("v1", "ConfigMap", "codequal-release", NAMESPACE)
    assert record is not None and record["data"]["version"] == "2.0.0-test"
    (entry,) = [e for e in read_history(_history(subject)) if e.kind == "upgrade"]
    assert entry.backup == f"pvc/{BACKUP_CLAIM}:{DUMP_PATH}"
    assert entry.details["dump"]["sha256"] == SHA and entry.outcome == "finished"
    assert (entry.from_release, entry.to_release) == ("1.0.0-test", "2.0.0-test")


def test_upgrade_command_restores_the_dump_when_the_upgrade_fails(
    api: FakeKubeAPI,
    kubeconfig: Path,
    tmp_path: Path,
    fast_options: None,
    test_releases_dir: Path,
) -> None:
    subject = _subject()
    _installed(kubeconfig, _root(subject))
    path = DUMP_PATH.replace("2-0-0-test", "2-0-0-broken")
    _dump_ok(api, path)
    _restore_ok(api)
    api.crashing_images["codequal-test/standin:unhealthy"] = ContainerRun(["boom"], 1)

    code, output = _cli_upgrade(_answers_file(tmp_path, subject), "2.0.0-broken")

    assert code == ExitCode.INSTALL_FAILED, output
    assert _images_before_restore(api) == ["codequal-test/standin:2", "codequal-test/standin:1"]
    live = api.get_object("apps/v1", "Deployment", "deepwiki", NAMESPACE)
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "codequal-test/standin:1"
    (entry,) = [e for e in read_history(_history(subject)) if e.kind == "upgrade"]
    assert entry.outcome == "rolled_back" and entry.details["database_restore"] == "restored"
    assert entry.backup == f"pvc/{BACKUP_CLAIM}:{path}"


@pytest.mark.usefixtures("fast_options", "test_releases_dir")
def test_status_json_shows_the_last_dump_history_and_schema_version(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.unit.cli_helpers import run_cli

    monkeypatch.setenv("COLUMNS", "200")

    subject = _subject()
    _installed(kubeconfig, _root(subject))
    _dump_ok(api)
    assert _cli_upgrade(_answers_file(tmp_path, subject), "2.0.0-test")[0] == 0

    result = run_cli("status", "--answers", str(_answers_file(tmp_path, subject)), "--json")

    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["version"] == "2.0.0-test" and status["schema_version"] == "2"
    assert status["last_backup"] == {
        "archive": f"pvc/{BACKUP_CLAIM}:{DUMP_PATH}",
        "created": status["history"][-1]["started_at"],
        "release": "1.0.0-test",
        "size": 4242,
        "verified": True,
    }
    assert [e["kind"] for e in status["history"]] == ["upgrade"]
    plain = run_cli("status", "--answers", str(_answers_file(tmp_path, subject)))
    assert f"last backup: pvc/{BACKUP_CLAIM}:{DUMP_PATH}" in plain.stdout
    assert "upgrade" in plain.stdout and "1.0.0-test -> 2.0.0-test" in plain.stdout


def test_uninstall_lists_what_upgrades_left_and_keeps_the_dumps_unless_purge(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    from installer.uninstall import kubernetes_inventory, kubernetes_uninstall

    _installed(kubeconfig, tmp_path / "root")
    _dump_ok(api)
    _backup(kubeconfig)
    subject = _subject()

    with Cluster.connect(environ={"KUBECONFIG": str(kubeconfig)}) as cluster:
        inventory, found = kubernetes_inventory(subject, cluster)
        kubernetes_uninstall(subject, purge=False, cluster=cluster, found=found)
    rows = {(i.kind, i.name): i for i in inventory.items}
    assert rows[("PersistentVolumeClaim", BACKUP_CLAIM)].action(False) == "kept"
    assert "pre-upgrade database dumps" in rows[("PersistentVolumeClaim", BACKUP_CLAIM)].detail
    for name in ("codequal-db-backup-egress", "postgres-from-db-backup"):
        assert ("NetworkPolicy", name) in rows
        assert api.get_object("networking.k8s.io/v1", "NetworkPolicy", name, NAMESPACE) is None
    assert ("ConfigMap", PREVIOUS_RECORD_NAME) in rows
    assert api.get_object("v1", "ConfigMap", PREVIOUS_RECORD_NAME, NAMESPACE) is None
    assert api.get_object("v1", "PersistentVolumeClaim", BACKUP_CLAIM, NAMESPACE) is not None


def _cli_rollback(answers_path: Path) -> tuple[int, list[dict[str, Any]], str]:
    from tests.unit.cli_helpers import run_cli

    result = run_cli("rollback", "--answers", str(answers_path), "--yes", "--json")
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, events, result.output


@pytest.mark.usefixtures("fast_options", "test_releases_dir")
def test_rollback_command_announces_the_loss_then_restores(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    subject = _subject()
    _installed(kubeconfig, _root(subject))
    _dump_ok(api)
    answers_path = _answers_file(tmp_path, subject)
    assert _cli_upgrade(answers_path, "2.0.0-test")[0] == 0
    _restore_ok(api)

    code, events, output = _cli_rollback(answers_path)

    assert code == 0, output
    preview = next(e for e in events if e.get("step") == "rollback-preview")
    lines = preview["data"]["preview"]["lines"]
    assert "goes back to 1.0.0-test" in lines[0] and DUMP_PATH in lines[0]
    assert any("is lost" in line for line in lines)
    restore_made = next(
        i for i, e in enumerate(events) if f"Job {RESTORE_JOB} created" in e.get("message", "")
    )
    assert events.index(preview) < restore_made, "the loss is announced before any change"
    assert events[-1]["type"] == "run.finished" and events[-1]["exit_code"] == 0
    record = api.get_object("v1", "ConfigMap", "codequal-release", NAMESPACE)
    assert record is not None and record["data"]["version"] == "1.0.0-test"


@pytest.mark.usefixtures("fast_options", "test_releases_dir")
def test_rollback_command_with_a_managed_database_never_claims_the_data_comes_back(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    subject = _subject(database=MANAGED)
    _installed(kubeconfig, _root(subject), subject)
    answers_path = _answers_file(tmp_path, subject)
    secrets_path = tmp_path / "secrets.yaml"
    secrets_path.write_text("database_password: managed-db-password-not-shown\n")
    secrets_path.chmod(0o600)
    from tests.unit.cli_helpers import run_cli

    upgraded = run_cli(
        "upgrade", "--answers", str(answers_path), "--secrets", str(secrets_path),
        "--to", "2.0.0-test", "--yes", "--json",
    )  # fmt: skip
    assert upgraded.exit_code == 0, upgraded.output
    assert "NOT rolled back" in upgraded.output

    code, events, output = _cli_rollback(answers_path)

    assert code == 0, output
    preview = next(e for e in events if e.get("step") == "rollback-preview")
    lines = preview["data"]["preview"]["lines"]
    assert MANAGED_NOTE in lines
    assert not any(
        "pre-upgrade dump" in line or "with the data" in line or "is lost" in line for line in lines
    )
    assert "data not rolled back" in events[-1]["message"]
    assert "managed-db-password-not-shown" not in output + upgraded.output


def test_the_dump_job_asks_the_claim_for_twice_the_last_dump(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    from installer.history import HistoryEntry, append_entry

    _installed(kubeconfig, tmp_path / "root")
    _dump_ok(api)
    _backup(kubeconfig)
    (first,) = _applied_jobs(api, DUMP_JOB)
    env = {
        e["name"]: e.get("value") for e in first["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MIN_FREE_BYTES"] == "0", "no earlier dump to measure against"
    append_entry(
        _history(_subject()),
        HistoryEntry(
            "upgrade", "0.9.0", "1.0.0-test", "2026-12-01T00:00:00Z", 1.0, 0, "finished",
            backup="pvc/codequal-backups:/backups/old.dump",
            details={"dump": {"size": 4242, "sha256": SHA}},
        ),
    )  # fmt: skip

    _backup(kubeconfig)

    second = _applied_jobs(api, DUMP_JOB)[-1]
    env = {
        e["name"]: e.get("value")
        for e in second["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MIN_FREE_BYTES"] == "8484"


def test_enterprise_on_openshift_dumps_and_rolls_back_with_the_sccs_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lifecycle, "_stamp", lambda: STAMP)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    subject = answers(
        target="enterprise", kubernetes={"openshift": True}, monitoring={"enabled": False}
    )
    with FakeKubeAPI(openshift=True) as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        run = install(subject, kubeconfig, tmp_path / "root")
        assert run.exit_code == 0, run.text()
        _dump_ok(api)
        backup, _ = _backup(kubeconfig, subject)
        (job,) = _applied_jobs(api, DUMP_JOB)
        security = job["spec"]["template"]["spec"]["securityContext"]
        # The restricted SCC assigns the user from the namespace's range: none is asked for.
        assert "runAsUser" not in security and "fsGroup" not in security
        assert security["runAsNonRoot"] is True
        upgrade = install(
            subject, kubeconfig, tmp_path / "root", release_manifest=release(RELEASE_2)
        )
        assert upgrade.exit_code == 0, upgrade.text()
        _restore_ok(api)

        events = _rollback(kubeconfig, subject)

        assert events[-1].type == "run.finished", [e.message for e in events]
        record = api.get_object("v1", "ConfigMap", "codequal-release", NAMESPACE)
        assert record is not None and record["data"]["version"] == "1.0.0-test"
        routes = api.list_objects("route.openshift.io/v1", "Route", NAMESPACE)
        assert routes, "the previous release's Routes are back"
        assert backup.database == "in-cluster"
        assert api.fake_failures == []


VERIFY_JOB = f"codequal-db-verify-{STAMP}"


def test_rollback_checks_the_dump_first_and_a_damaged_one_changes_nothing(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    _upgraded(api, kubeconfig, tmp_path / "root")
    api.job_runs[f"{NAMESPACE}/{VERIFY_JOB}"] = ContainerRun(
        [f"codequal-verify: {DUMP_PATH} is missing or does not match its SHA-256"], 4
    )
    before = len(api.writes())

    events = _rollback(kubeconfig)

    final = events[-1]
    assert final.type == "run.failed" and final.exit_code == ExitCode.BUNDLE_INTEGRITY
    assert "does not match its SHA-256" in final.message and "nothing was changed" in final.message
    (job,) = _applied_jobs(api, VERIFY_JOB)
    script = job["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert "sha256sum -c" in script and "pg_restore --list" in script
    changed = {(w.resource, w.name) for w in api.writes()[before:]}
    assert changed == {("jobs", VERIFY_JOB)}, "only the check Job was made: no object re-applied"
    record = api.get_object("v1", "ConfigMap", "codequal-release", NAMESPACE)
    assert record is not None and record["data"]["version"] == "2.0.0-test"


def test_rollback_refuses_when_the_dump_claim_is_gone(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    _upgraded(api, kubeconfig, tmp_path / "root")
    with Cluster.connect(environ={"KUBECONFIG": str(kubeconfig)}) as cluster:
        from installer.engine.kubernetes import ObjectRef

        cluster.delete(ObjectRef("v1", "PersistentVolumeClaim", BACKUP_CLAIM, NAMESPACE))
    before = len(api.writes())

    events = _rollback(kubeconfig)

    assert events[-1].type == "run.failed" and events[-1].exit_code == ExitCode.USAGE
    assert f"the claim {BACKUP_CLAIM} that holds the pre-upgrade dump is gone" in events[-1].message
    assert api.writes()[before:] == []
