"""The migration Job across releases, against the stand-in: replacement, old pods, deadlines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.credentials import Secrets
from installer.errors import ExitCode
from installer.targets.kubernetes.plan import dry_run, prepare_install
from tests.support.fake_kube_api import ContainerRun, FakeKubeAPI
from tests.support.kube_install import RELEASE_BROKEN, answers, install, options, release

NAMESPACE = "codequal"
JOB = "codequal-migrate-1"
NEW_IMAGE = "codequal-test/standin:1-patched"


@pytest.fixture
def api() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as server:
        yield server


@pytest.fixture
def kubeconfig(api: FakeKubeAPI, tmp_path: Path) -> Path:
    return api.write_kubeconfig(tmp_path / "kubeconfig")


def _patched() -> object:
    return answers(monitoring={"enabled": False}, release={"images": {"codequal": NEW_IMAGE}})


def _job_name(api: FakeKubeAPI) -> str:
    jobs = api.list_objects("batch/v1", "Job", NAMESPACE)
    assert len(jobs) == 1
    return str(jobs[0]["metadata"]["name"])


def test_a_job_image_change_is_a_replacement_in_the_dry_run_and_the_apply_succeeds(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    first = install(answers(monitoring={"enabled": False}), kubeconfig, tmp_path / "root")
    assert first.exit_code == 0, first.text()
    job = _job_name(api)
    session = prepare_install(
        _patched(),  # type: ignore[arg-type]
        Secrets(),
        release=release(),
        root=tmp_path / "root",
        options=options(kubeconfig),
    )
    lines: list[str] = []
    dry_run(session, lines.append)
    session.close()
    verdicts = {line.split(". ", 1)[1] for line in lines if line.startswith("---\n# ")}
    assert any(
        v.startswith(f"Job {job} in namespace codequal: would be replaced") for v in verdicts
    ), verdicts
    assert not any("REJECTED" in v for v in verdicts), verdicts

    run = install(_patched(), kubeconfig, tmp_path / "root")  # type: ignore[arg-type]

    assert run.exit_code == 0, run.text()
    live = api.get_object("batch/v1", "Job", job, NAMESPACE)
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == NEW_IMAGE


def test_the_replaced_jobs_old_pods_and_logs_are_not_shown(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    api.job_runs["codequal-test/standin:1"] = ContainerRun(["OLD-RUN migrated"], 0)
    api.job_runs[NEW_IMAGE] = ContainerRun(["NEW-RUN failed: relation exists"], 1)
    api.gc_delay = 30.0  # the old Job's pods outlive it, as the garbage collector is slow
    first = install(answers(monitoring={"enabled": False}), kubeconfig, tmp_path / "root")
    assert first.exit_code == 0, first.text()

    run = install(_patched(), kubeconfig, tmp_path / "root", job_timeout=3.0)  # type: ignore[arg-type]

    assert run.exit_code == ExitCode.INSTALL_FAILED, run.text()
    database = "\n".join(e.message for e in run.events if e.step == "database")
    assert "NEW-RUN failed" in run.text()
    assert "OLD-RUN" not in database


def test_an_earlier_job_that_is_not_deleted_in_time_fails_the_step_naming_it(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    first = install(answers(monitoring={"enabled": False}), kubeconfig, tmp_path / "root")
    assert first.exit_code == 0, first.text()
    job = _job_name(api)
    api.add_finalizer("batch/v1", "Job", job, NAMESPACE, "example.com/audit-hold")

    run = install(_patched(), kubeconfig, tmp_path / "root", rollout_timeout=1.0)  # type: ignore[arg-type]

    assert run.exit_code == ExitCode.INSTALL_FAILED, run.text()
    failed = next(e for e in run.events if e.type == "step.failed")
    assert failed.step == "database"
    assert f"the earlier Job {job} is still being deleted" in failed.message
    assert "example.com/audit-hold" in failed.message


def test_a_rollback_keeps_the_claims_the_failed_release_added(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    external = answers(
        monitoring={"enabled": False},
        deepwiki={"mode": "external", "url": "https://deepwiki.test.invalid"},
        checks={"skip": ["dns", "deepwiki"]},
    )
    first = install(external, kubeconfig, tmp_path / "root")
    assert first.exit_code == 0, first.text()
    claims_before = {
        c["metadata"]["name"] for c in api.list_objects("v1", "PersistentVolumeClaim", NAMESPACE)
    }
    api.crashing_images["codequal-test/standin:unhealthy"] = ContainerRun(["boom"], 1)

    upgrade = install(
        answers(monitoring={"enabled": False}),
        kubeconfig,
        tmp_path / "root",
        release_manifest=release(RELEASE_BROKEN),
    )

    assert upgrade.exit_code == ExitCode.INSTALL_FAILED, upgrade.text()
    claims_after = {
        c["metadata"]["name"] for c in api.list_objects("v1", "PersistentVolumeClaim", NAMESPACE)
    }
    added = claims_after - claims_before
    assert added, "the failed release added claims (DeepWiki's)"
    assert not any(
        r.verb == "delete" and r.resource == "persistentvolumeclaims" for r in api.writes()
    )
    containers = "\n".join(e.message for e in upgrade.events if e.step == "containers")
    assert "restoring release 1.0.0-test" in containers
    for name in added:
        assert f"kept PersistentVolumeClaim {name} in namespace codequal" in containers


def test_each_run_of_a_migration_restarted_in_its_pod_is_shown(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    # The migration Job runs with restartPolicy OnFailure: a failed run restarts in the
    # same pod, so one pod has several runs, each with its own log.
    api.job_runs[f"{NAMESPACE}/{JOB}"] = ContainerRun(["migrating", "error: lock timeout"], 1)

    run = install(answers(monitoring={"enabled": False}), kubeconfig, tmp_path / "root")

    assert run.exit_code == ExitCode.INSTALL_FAILED, run.text()
    database = [e.message for e in run.events if e.step == "database"]
    headers = [m for m in database if m.startswith("log of ")]
    assert len({h.split()[2].rstrip(":") for h in headers}) == 1, headers  # one pod
    assert any("(restart 1)" in h for h in headers), headers
    assert database.count("| error: lock timeout") >= 2
    failed = next(e for e in run.events if e.type == "step.failed")
    assert failed.step == "database" and "failed" in failed.message
