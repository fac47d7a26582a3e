"""Upgrade backups and rollback on the Kubernetes and enterprise targets, data included.

The Compose targets back up with ``backup create`` on this host; a cluster's database is
not reachable from here, so its copy is made where it runs. Before an upgrade:

1. the release record (``codequal-release`` and its Secret) is copied to
   ``codequal-release-previous``, which ``rollback`` re-applies later;
2. with the in-cluster PostgreSQL, a Job runs ``pg_dump --format=custom`` from the
   release's own PostgreSQL image into the claim ``codequal-backups``, checks the dump it
   wrote (``pg_restore --list`` reads its whole table of contents) and prints its size and
   SHA-256, which go into the previous record and the history. The password reaches the Job
   as a ``secretKeyRef`` to ``codequal-secrets``: never in the Job's arguments or values.

When the upgrade fails, the runner re-applies the recorded release (the containers step's
rollback) and then :func:`kubernetes_restore_after_failed_upgrade` runs the restore Job.
``rollback`` does the same on purpose later: a Job checks the dump first (its SHA-256,
``pg_restore --list``; gone or damaged: nothing changes, exit 4), the previous release's
objects are applied again from the saved record (objects the newer release added are
pruned, claims kept), *then* the restore Job runs ``pg_restore --clean --if-exists`` from
the dump, inside one transaction that first drops every table (so tables the newer
migration created go too), and commits only when ``pg_restore`` read the whole dump. The
restore checks the dump against its SHA-256 again. Finally the previous release is
recorded as the current one.

With a managed (external) database no Job can promise the data back: the upgrade and the
rollback say plainly that the data is *not* rolled back, and that the provider's snapshot
(or a dump you took) is the way to bring it back.

Claims are never deleted here: the dumps outlive every upgrade and rollback (``uninstall
--purge`` removes them with the other claims).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from installer.engine.kubernetes import Cluster, ClusterUnreachable, KubernetesError, ObjectRef
from installer.errors import ExitCode, InstallerError, Interrupted, UsageError
from installer.rollback import RollbackPreview
from installer.targets.kubernetes.history import kubernetes_lifecycle, local_state
from installer.targets.kubernetes.objects import MANAGED_BY_LABEL, NAME_LABEL
from installer.targets.kubernetes.record import (
    PREVIOUS_RECORD_NAME,
    PREVIOUS_RECORD_SECRET_NAME,
    ReleaseRecord,
    read_record,
    record_objects,
)
from installer.targets.kubernetes.session import KubeOptions

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.credentials import LoadedSecrets
    from installer.events import Event
    from installer.release import ReleaseManifest
    from installer.runner import CancelToken

BACKUP_CLAIM = "codequal-backups"
BACKUP_MOUNT = "/backups"
BACKUP_COMPONENT = "database-backup"
BACKUP_POD_NAME = "codequal-db-backup"
APP_SECRET = "codequal-secrets"  # noqa: S105 - the Secret's name
PASSWORD_KEY = "POSTGRES_PASSWORD"  # noqa: S105 - a key of that Secret
DATABASE_SERVICE = "postgres"
DEFAULT_CLAIM_SIZE = "20Gi"
_DUMP_REPORT = re.compile(r"^codequal-dump: file=(\S+) size=(\d+) sha256=([0-9a-f]{64})$")
_RESTORE_REPORT = "codequal-restore: committed"
STEP = "database backup"
RESTORE_FAILED = "data-restore"  # key of the saved record: "failed" after a failed upgrade
RESTORE_STEP = "database restore"

# Runs in the release's PostgreSQL image, connection from PG* variables (the password from
# the Secret). First the claim's free space (at least twice the last dump, as the Compose
# upgrade asks of its disk). Written beside the final name, read back, then renamed: a dump
# that is there under its name is whole.
DUMP_SCRIPT = """set -eu
umask 077
part="$DUMP_FILE.partial"
rm -f "$part"
free_kib=$(df -Pk "$(dirname "$DUMP_FILE")" | awk 'NR == 2 { print $4 }')
case "$free_kib" in
  ''|*[!0-9]*) echo "codequal-dump: cannot read the claim's free space" >&2; exit 4 ;;
esac
if [ "$free_kib" -lt $(( (${MIN_FREE_BYTES:-0} + 1023) / 1024 )) ]; then
  echo "codequal-dump: the claim has $((free_kib * 1024)) bytes free; the dump needs at \
least $MIN_FREE_BYTES (twice the last dump)" >&2
  exit 4
fi
pg_dump --format=custom --file="$part"
pg_restore --list "$part" > /dev/null
mv "$part" "$DUMP_FILE"
size=$(wc -c < "$DUMP_FILE")
set -- $(sha256sum "$DUMP_FILE")
echo "codequal-dump: file=$DUMP_FILE size=$size sha256=$1"
"""

# One transaction: drop every table (the newer migration's too), then the dump's own
# script with --clean --if-exists; COMMIT is sent only when pg_restore read the whole dump.
RESTORE_SCRIPT = """set -eu
if ! echo "$DUMP_SHA256  $DUMP_FILE" | sha256sum -c --status -; then
  echo "codequal-restore: $DUMP_FILE is missing or does not match its SHA-256" >&2
  exit 3
fi
psql -X -v ON_ERROR_STOP=1 -At -c "SELECT format('DROP TABLE IF EXISTS %I.%I CASCADE;', \
schemaname, tablename) FROM pg_tables WHERE schemaname <> 'information_schema' AND \
schemaname NOT LIKE 'pg\\_%'" > /tmp/drop.sql
{
  echo 'BEGIN;'
  cat /tmp/drop.sql
  if pg_restore --clean --if-exists --no-owner --file=- "$DUMP_FILE"; then
    echo 'COMMIT;'
    printf '%s\\n' '\\echo codequal-restore: committed'
  fi
} | psql -X -v ON_ERROR_STOP=1 --quiet --output=/dev/null > /tmp/psql.out
cat /tmp/psql.out
grep -q '^codequal-restore: committed$' /tmp/psql.out || {
  echo "codequal-restore: pg_restore did not read the whole dump: nothing was changed" >&2
  exit 1
}
"""


# Before a rollback changes anything: the dump is there, whole (its SHA-256) and readable.
VERIFY_SCRIPT = """set -eu
if ! echo "$DUMP_SHA256  $DUMP_FILE" | sha256sum -c --status -; then
  echo "codequal-verify: $DUMP_FILE is missing or does not match its SHA-256" >&2
  exit 4
fi
pg_restore --list "$DUMP_FILE" > /dev/null
echo "codequal-verify: $DUMP_FILE is whole and readable"
"""


class DatabaseJobFailed(InstallerError):
    """A backup or restore Job in the cluster did not complete."""

    def __init__(self, message: str, *, hint: str | None = None, log_tail: list[str]) -> None:
        super().__init__(message, hint=hint)
        self.log_tail = log_tail


class DumpUnverified(InstallerError):
    """The pre-upgrade dump is gone or damaged: the rollback changes nothing (exit 4)."""

    exit_code = ExitCode.BUNDLE_INTEGRITY


class NothingToRollBack(UsageError):
    """No upgrade to return from, or not what it needs (exit 2)."""


def database_mode(answers: AnswerFile) -> str:
    """``in-cluster`` (the release's PostgreSQL runs in the namespace) or ``managed``."""
    if answers.database.kind == "postgres" and not answers.database.managed:
        return "in-cluster"
    return "managed"


MANAGED_NOTE = (
    "the database is managed (outside the cluster): its data is NOT rolled back by this "
    "installer; to bring the data back, restore the provider's snapshot (or a dump you took) "
    "from before the upgrade"
)


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dt%H%M%Sz")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


# -- the objects ------------------------------------------------------------------------------


def _labels(answers: AnswerFile, name: str = BACKUP_POD_NAME) -> dict[str, str]:
    return {
        NAME_LABEL: name,
        "app.kubernetes.io/instance": "codequal",
        "app.kubernetes.io/component": BACKUP_COMPONENT,
        "app.kubernetes.io/part-of": "codequal",
        MANAGED_BY_LABEL: "codequal-installer",
    }


def backup_claim(answers: AnswerFile, size: str = DEFAULT_CLAIM_SIZE) -> dict[str, Any]:
    """The claim that holds the dumps (kept by rollback and by uninstall without --purge)."""
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    }
    if answers.kubernetes.storage_class:
        spec["storageClassName"] = answers.kubernetes.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": BACKUP_CLAIM,
            "namespace": answers.kubernetes.namespace,
            "labels": _labels(answers, BACKUP_CLAIM),
        },
        "spec": spec,
    }


def backup_network_policies(answers: AnswerFile) -> list[dict[str, Any]]:
    """The install denies all traffic by default: the Job's pods may reach PostgreSQL, and
    PostgreSQL accepts them, on 5432 only."""
    namespace = answers.kubernetes.namespace
    job_pods = {NAME_LABEL: BACKUP_POD_NAME, "app.kubernetes.io/instance": "codequal"}
    database = {NAME_LABEL: DATABASE_SERVICE, "app.kubernetes.io/instance": "codequal"}
    port = [{"protocol": "TCP", "port": answers.database.port}]

    def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace, "labels": _labels(answers)},
            "spec": spec,
        }

    return [
        policy(
            "codequal-db-backup-egress",
            {
                "podSelector": {"matchLabels": job_pods},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"podSelector": {"matchLabels": database}}], "ports": port}],
            },
        ),
        policy(
            "postgres-from-db-backup",
            {
                "podSelector": {"matchLabels": database},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {"matchLabels": job_pods}}], "ports": port}],
            },
        ),
    ]


def _database_image(release: ReleaseManifest) -> str:
    for name, service in release.services.items():
        if service.role == "database" or name == DATABASE_SERVICE:
            return str(service.image)
    raise UsageError(f"release {release.version} names no PostgreSQL image")


def database_job(
    answers: AnswerFile, *, name: str, script: str, env: dict[str, str], image: str
) -> dict[str, Any]:
    """A Job running ``script`` (``sh -c``) in the release's PostgreSQL image, with the dump
    claim at :data:`BACKUP_MOUNT` and the connection in ``PG*`` variables; the password is a
    reference to the install's Secret, never a value."""
    from installer.render.kubernetes import DEFAULT_UIDS

    namespace = answers.kubernetes.namespace
    database = answers.database
    pod_security: dict[str, Any] = {"runAsNonRoot": True}
    if not answers.kubernetes.openshift:
        # OpenShift's restricted SCC picks the user; elsewhere PostgreSQL's image user (70)
        # owns what the dump claim holds.
        uid = DEFAULT_UIDS.get(DATABASE_SERVICE, 70)
        pod_security.update(runAsUser=uid, runAsGroup=uid, fsGroup=uid)
    pod_security["seccompProfile"] = {"type": "RuntimeDefault"}
    variables = {
        "PGHOST": f"{DATABASE_SERVICE}.{namespace}.svc.cluster.local",
        "PGPORT": str(database.port),
        "PGUSER": database.user,
        "PGDATABASE": database.name,
        **env,
    }
    container_env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in variables.items()]
    container_env.append(
        {
            "name": "PGPASSWORD",
            "valueFrom": {"secretKeyRef": {"name": APP_SECRET, "key": PASSWORD_KEY}},
        }
    )
    labels = _labels(answers)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security,
                    "containers": [
                        {
                            "name": "postgres",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["sh", "-c", script, "sh"],
                            "env": container_env,
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "256Mi"},
                                "limits": {"cpu": "1000m", "memory": "1Gi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True,
                                "capabilities": {"drop": ["ALL"]},
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                            "volumeMounts": [
                                {"name": "backups", "mountPath": BACKUP_MOUNT},
                                {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - emptyDir
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "backups", "persistentVolumeClaim": {"claimName": BACKUP_CLAIM}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def dump_job(
    answers: AnswerFile, *, name: str, path: str, image: str, min_free: int = 0
) -> dict[str, Any]:
    """The Job that dumps the database to ``path`` on the dump claim, when the claim has at
    least ``min_free`` bytes free."""
    env = {"DUMP_FILE": path, "MIN_FREE_BYTES": str(min_free)}
    return database_job(answers, name=name, script=DUMP_SCRIPT, env=env, image=image)


def restore_job(
    answers: AnswerFile, *, name: str, path: str, sha256: str, image: str
) -> dict[str, Any]:
    """The Job that restores the dump at ``path`` (checked against ``sha256`` first)."""
    return database_job(
        answers,
        name=name,
        script=RESTORE_SCRIPT,
        env={"DUMP_FILE": path, "DUMP_SHA256": sha256},
        image=image,
    )


# -- running a Job ----------------------------------------------------------------------------


def _finished(job: dict[str, Any] | None) -> str | None:
    for condition in ((job or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return str(condition["type"])
    return None


def _started(pod: dict[str, Any]) -> bool:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        state = status.get("state") or {}
        if "running" in state or "terminated" in state:
            return True
    return False


def run_job(
    cluster: Cluster,
    job: dict[str, Any],
    *,
    options: KubeOptions,
    sleep: Callable[[float], None],
    what: str,
    log: list[str],
) -> Iterator[str]:
    """Create ``job``, stream its pod's log into ``log`` (and as ``| line`` messages), and
    wait until it completes; a failure raises :class:`DatabaseJobFailed` with the last lines
    and, when the pod never ran, why (image, scheduling, admission)."""
    from installer.targets.kubernetes.explain import explain_pods

    ref = ObjectRef.of(job)
    namespace = str(job["metadata"]["namespace"])
    if cluster.get(ref) is not None:
        cluster.delete(ref)
        while cluster.get(ref) is not None:
            sleep(options.poll_interval)
    cluster.apply(job)
    yield f"Job {ref.name} created ({what})"
    started = time.monotonic()
    deadline = started + options.job_timeout
    start_deadline = started + min(options.rollout_timeout, options.job_timeout)
    streamed: set[str] = set()
    while True:
        live = cluster.get(ref)
        outcome = _finished(live)
        pods = cluster.list_objects("v1", "Pod", namespace, label_selector=f"job-name={ref.name}")
        for pod in sorted(pods, key=lambda p: str(p["metadata"].get("creationTimestamp", ""))):
            pod_name = pod["metadata"]["name"]
            if pod_name in streamed or not _started(pod):
                continue
            streamed.add(pod_name)
            for line in cluster.follow_pod_log(namespace, pod_name, timeout=options.job_timeout):
                log.append(line)
                yield f"| {line}"
        if outcome == "Complete":
            yield f"Job {ref.name} completed"
            return
        stuck = not streamed and time.monotonic() > start_deadline
        if outcome == "Failed" or stuck or time.monotonic() > deadline:
            explanation = explain_pods(cluster, namespace, f"job-name={ref.name}", owner=ref.name)
            if outcome == "Failed":
                why = "failed"
            elif stuck:
                why = f"could not start within {options.rollout_timeout:g} s"
            else:
                why = f"did not finish within {options.job_timeout:g} s"
            summary = f": {explanation.summary}" if explanation.findings and not log else ""
            raise DatabaseJobFailed(
                f"the {what} ({ref.name} in namespace {namespace}) {why}{summary}",
                hint=explanation.hint
                or f"its log is above; `kubectl -n {namespace} logs job/{ref.name}` shows it "
                "again (the Job is kept for that)",
                log_tail=log[-20:] or explanation.lines(),
            )
        sleep(options.poll_interval)


# -- before an upgrade ------------------------------------------------------------------------


@dataclass
class KubeBackup:
    """What the pre-upgrade step kept, and what the history records of it."""

    database: str  # in-cluster | managed
    from_release: str
    to_release: str
    claim: str | None = None
    path: str | None = None
    sha256: str | None = None
    size: int | None = None
    image: str | None = None
    job: str | None = None
    note: str = ""

    @property
    def label(self) -> str | None:
        """The ``backup`` field of the history: where the dump is (None: no dump)."""
        if self.path is None:
            return None
        return f"pvc/{self.claim}:{self.path}"

    def record_data(self) -> dict[str, str]:
        """The keys the previous record carries about this upgrade."""
        data = {
            "upgraded-to": self.to_release,
            "upgrade-started-at": _utc_now(),
            "database": self.database,
        }
        if self.path is not None:
            data.update(
                {
                    "dump-claim": str(self.claim),
                    "dump-path": self.path,
                    "dump-sha256": str(self.sha256),
                    "dump-size": str(self.size),
                    "dump-image": str(self.image),
                }
            )
        return data

    @classmethod
    def from_record(cls, record: ReleaseRecord) -> KubeBackup:
        extra = record.extra
        size = extra.get("dump-size")
        return cls(
            database=extra.get("database", "managed"),
            from_release=record.version,
            to_release=extra.get("upgraded-to", ""),
            claim=extra.get("dump-claim"),
            path=extra.get("dump-path"),
            sha256=extra.get("dump-sha256"),
            size=int(size) if size and size.isdigit() else None,
            image=extra.get("dump-image"),
        )

    def details(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "dump": {
                "claim": self.claim,
                "path": self.path,
                "sha256": self.sha256,
                "size": self.size,
                "verified": "pg_restore --list and sha256 in the Job",
            }
            if self.path
            else None,
        }


def _utc_now() -> str:
    from installer.history import utc_now

    return utc_now()


def _connect(answers: AnswerFile, options: KubeOptions) -> Cluster:
    return Cluster.connect(
        answers.kubernetes.context, environ=options.environ, timeout=options.request_timeout
    )


def _claim_size(cluster: Cluster, namespace: str) -> str:
    """As large as the database's own claim (a dump is smaller than the data it holds)."""
    claim = cluster.get(ObjectRef("v1", "PersistentVolumeClaim", "postgres-data", namespace))
    requests = (((claim or {}).get("spec") or {}).get("resources") or {}).get("requests") or {}
    return str(requests.get("storage") or DEFAULT_CLAIM_SIZE)


def save_previous_record(
    cluster: Cluster, namespace: str, record: ReleaseRecord, data: dict[str, str]
) -> None:
    """Copy the current release record to ``codequal-release-previous`` (with ``data``)."""
    for item in record_objects(
        namespace,
        record.version,
        record.answers_digest,
        record.objects_digest,
        record.manifest_objects(),
        namespace_created=record.namespace_created,
        name=PREVIOUS_RECORD_NAME,
        secret_name=PREVIOUS_RECORD_SECRET_NAME,
        extra=data,
        installed_at=record.installed_at,
    ):
        cluster.apply(item.obj, force=True)


def _events(step: str, lines: Iterator[str], display: Any) -> None:
    from installer.events import Event

    for line in lines:
        display.show(Event("step.output", line, step=step))


def kubernetes_pre_upgrade_backup(
    answers: AnswerFile,
    secrets: LoadedSecrets,
    *,
    to_version: str,
    display: Any,
    cancel: CancelToken,
    options: KubeOptions | None = None,
    release: ReleaseManifest | None = None,
) -> KubeBackup:
    """Keep what a rollback needs: the record, and a checked dump of an in-cluster database.

    ``answers`` are the installed release's. Raises (nothing changed but the claim and the
    record's copy) when the dump fails: the upgrade must not start without it.
    """
    from installer.events import Event
    from installer.release import release_for

    options = options or KubeOptions()
    release = release or release_for(answers)
    namespace = answers.kubernetes.namespace
    mode = database_mode(answers)
    display.show(Event("step.started", "Pre-upgrade backup", step=STEP))
    with _connect(answers, options) as cluster:
        record = read_record(cluster, namespace)
        if record is None:
            raise UsageError(
                f"nothing is installed in namespace {namespace} (no release record) to back up"
            )
        backup = KubeBackup(mode, record.version, to_version)
        if mode == "managed":
            backup.note = (
                f"no database dump: {MANAGED_NOTE}; take a snapshot with your provider now "
                "if you may want to return"
            )
            display.show(Event("step.output", backup.note, step=STEP))
        else:
            lines = _dump(
                answers,
                release=release,
                cluster=cluster,
                backup=backup,
                options=options,
                cancel=cancel,
            )
            _events(STEP, lines, display)
            backup.note = (
                f"pre-upgrade dump {backup.path} in claim {backup.claim} "
                f"({backup.size} bytes, sha256 {str(backup.sha256)[:12]}..., checked)"
            )
        save_previous_record(cluster, namespace, record, backup.record_data())
        display.show(
            Event(
                "step.output",
                f"release record {record.version} kept as ConfigMap {PREVIOUS_RECORD_NAME}",
                step=STEP,
            )
        )
    display.show(Event("step.finished", backup.note, step=STEP))
    return backup


def _dump(
    answers: AnswerFile,
    *,
    release: ReleaseManifest,
    cluster: Cluster,
    backup: KubeBackup,
    options: KubeOptions,
    cancel: CancelToken,
) -> Iterator[str]:
    namespace = answers.kubernetes.namespace
    stamp = _stamp()
    claim = backup_claim(answers, _claim_size(cluster, namespace))
    result = cluster.apply(claim)
    yield f"PersistentVolumeClaim {BACKUP_CLAIM}: " + ("created" if result.created else "kept")
    for policy in backup_network_policies(answers):
        cluster.apply(policy)
    name = f"codequal-db-dump-{stamp}"
    path = f"{BACKUP_MOUNT}/pre-upgrade-{_slug(backup.from_release)}-to-"
    path += f"{_slug(backup.to_release)}-{stamp}.dump"
    last = kubernetes_lifecycle(answers)["last_backup"]
    min_free = 2 * int(last["size"]) if last and last.get("size") else 0
    job = dump_job(answers, name=name, path=path, image=_database_image(release), min_free=min_free)
    if min_free:
        yield f"the claim must have {min_free} bytes free (twice the last dump)"
    log: list[str] = []
    yield from run_job(
        cluster, job, options=options, sleep=cancel.sleep, what="pre-upgrade dump", log=log
    )
    report = next((m for line in log if (m := _DUMP_REPORT.match(line.strip()))), None)
    if report is None or report.group(1) != path:
        raise DatabaseJobFailed(
            f"the pre-upgrade dump Job {name} completed but did not report the dump it wrote",
            hint="the upgrade was not started; see the Job's log above",
            log_tail=log[-20:],
        )
    backup.claim, backup.path, backup.job = BACKUP_CLAIM, path, name
    backup.size, backup.sha256 = int(report.group(2)), report.group(3)
    backup.image = str(job["spec"]["template"]["spec"]["containers"][0]["image"])
    cluster.delete(ObjectRef.of(job))  # done and reported; its pod goes with it


# -- restoring --------------------------------------------------------------------------------


def _verify(
    answers: AnswerFile,
    cluster: Cluster,
    backup: KubeBackup,
    options: KubeOptions,
    cancel: CancelToken,
) -> Iterator[str]:
    """A Job checks the dump against its SHA-256 and reads it through, changing nothing."""
    if backup.path is None or backup.sha256 is None or backup.image is None:
        raise NothingToRollBack("no database dump was kept for this upgrade")
    name = f"codequal-db-verify-{_stamp()}"
    job = database_job(
        answers,
        name=name,
        script=VERIFY_SCRIPT,
        env={"DUMP_FILE": backup.path, "DUMP_SHA256": backup.sha256},
        image=backup.image,
    )
    log: list[str] = []
    try:
        yield from run_job(
            cluster, job, options=options, sleep=cancel.sleep, what="dump check", log=log
        )
    except DatabaseJobFailed as e:
        raise DumpUnverified(
            f"the pre-upgrade dump {backup.path} (claim {backup.claim}) cannot be used: "
            + ("; ".join(line for line in e.log_tail if "codequal-verify" in line) or e.message)
            + "; nothing was changed",
            hint="the dump is the only copy of the data before the upgrade: without it the "
            "rollback would bring back the release but not its data",
        ) from e
    cluster.delete(ObjectRef.of(job))
    yield f"dump {backup.path} checked: whole (sha256) and readable (pg_restore --list)"


def _restore(
    answers: AnswerFile,
    cluster: Cluster,
    backup: KubeBackup,
    options: KubeOptions,
    cancel: CancelToken,
) -> Iterator[str]:
    if backup.path is None or backup.sha256 is None or backup.image is None:
        raise NothingToRollBack("no database dump was kept for this upgrade")
    for policy in backup_network_policies(answers):
        cluster.apply(policy)
    name = f"codequal-db-restore-{_stamp()}"
    # The image that made the dump restores it (its pg_restore reads its own format).
    job = restore_job(
        answers, name=name, path=backup.path, sha256=backup.sha256, image=backup.image
    )
    log: list[str] = []
    yield f"restoring the database from {backup.path} (claim {backup.claim})"
    yield from run_job(cluster, job, options=options, sleep=cancel.sleep, what="restore", log=log)
    if not any(line.strip() == _RESTORE_REPORT for line in log):
        raise DatabaseJobFailed(
            f"the restore Job {name} completed but did not report the transaction committed",
            hint="check the database by hand before using it",
            log_tail=log[-20:],
        )
    cluster.delete(ObjectRef.of(job))
    yield f"database restored from {backup.path} (the state before the upgrade)"


def _wait_for_rollouts(
    cluster: Cluster, record: ReleaseRecord, options: KubeOptions, sleep: Callable[[float], None]
) -> Iterator[str]:
    """Wait until each recorded Deployment has rolled out (they restart against the restored
    schema); a Deployment that does not is reported, not raised: status says the rest."""
    from installer.engine.kubernetes import deployment_rollout

    deadline = time.monotonic() + options.rollout_timeout
    for ref in record.objects:
        if ref.kind != "Deployment":
            continue
        while True:
            live = cluster.get(ref)
            state = deployment_rollout(live) if live else None
            if state is None:
                yield f"{ref} is missing"
                break
            if state.done:
                yield f"rolled out: {state.message}"
                break
            if state.failed or time.monotonic() > deadline:
                yield f"not rolled out: {state.message} (see `codequal-installer status`)"
                break
            sleep(options.poll_interval)


def kubernetes_restore_after_failed_upgrade(
    answers: AnswerFile,
    secrets: LoadedSecrets,
    backup: KubeBackup,
    *,
    display: Any,
    cancel: CancelToken,
    options: KubeOptions | None = None,
) -> None:
    """After the runner rolled a failed upgrade back (the recorded release is applied again):
    the database from the pre-upgrade dump, then the rollouts.

    Done, the saved previous record goes (nothing is left to roll back to). When the restore
    fails, the saved record is marked ``data-restore: failed`` and kept: ``rollback`` then
    brings the data back (the release is already the previous one).
    """
    from installer.events import Event

    options = options or KubeOptions()
    namespace = answers.kubernetes.namespace
    display.show(
        Event("step.started", "Database restore after the failed upgrade", step=RESTORE_STEP)
    )
    with _connect(answers, options) as cluster:
        if backup.database == "managed" or backup.path is None:
            display.show(Event("step.output", MANAGED_NOTE, step=RESTORE_STEP))
            _forget_previous(cluster, namespace)
            display.show(Event("step.finished", "data not rolled back", step=RESTORE_STEP))
            return
        try:
            _events(RESTORE_STEP, _restore(answers, cluster, backup, options, cancel), display)
        except InstallerError:
            _mark_restore_failed(cluster, namespace)
            raise
        _forget_previous(cluster, namespace)
        record = read_record(cluster, namespace)
        if record is not None:
            _events(
                RESTORE_STEP, _wait_for_rollouts(cluster, record, options, cancel.sleep), display
            )
    display.show(Event("step.finished", f"database restored from {backup.path}", step=RESTORE_STEP))


def _forget_previous(cluster: Cluster, namespace: str) -> None:
    for ref in (
        ObjectRef("v1", "ConfigMap", PREVIOUS_RECORD_NAME, namespace),
        ObjectRef("v1", "Secret", PREVIOUS_RECORD_SECRET_NAME, namespace),
    ):
        cluster.delete(ref)


def _mark_restore_failed(cluster: Cluster, namespace: str) -> None:
    previous = read_record(
        cluster, namespace, name=PREVIOUS_RECORD_NAME, secret_name=PREVIOUS_RECORD_SECRET_NAME
    )
    if previous is not None:
        save_previous_record(
            cluster, namespace, previous, {**previous.extra, RESTORE_FAILED: "failed"}
        )


# -- rollback ---------------------------------------------------------------------------------


@dataclass
class KubeRollbackPlan:
    """What ``rollback`` would do here, read from the cluster; changes nothing."""

    namespace: str
    installed: str | None
    previous: ReleaseRecord | None
    current: ReleaseRecord | None
    backup: KubeBackup | None
    upgraded_at: str | None
    seconds_since_upgrade: float | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.problems


def _since(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max((datetime.now(timezone.utc) - then).total_seconds(), 0.0)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _restore_left(previous: ReleaseRecord, current: ReleaseRecord) -> bool:
    """A failed upgrade put the previous release back but not its data: rollback may finish
    that (the objects are re-applied unchanged, then the dump is restored)."""
    return previous.version == current.version and previous.extra.get(RESTORE_FAILED) == "failed"


def _usable_claim(cluster: Cluster, namespace: str, name: str) -> bool:
    """The claim exists and is not being deleted (a Terminating claim takes no new pod)."""
    claim = cluster.get(ObjectRef("v1", "PersistentVolumeClaim", name, namespace))
    return claim is not None and not (claim.get("metadata") or {}).get("deletionTimestamp")


def rollback_plan(answers: AnswerFile, cluster: Cluster) -> KubeRollbackPlan:
    namespace = answers.kubernetes.namespace
    current = read_record(cluster, namespace)
    previous = read_record(
        cluster, namespace, name=PREVIOUS_RECORD_NAME, secret_name=PREVIOUS_RECORD_SECRET_NAME
    )
    backup = KubeBackup.from_record(previous) if previous is not None else None
    # When the upgrade began (the dump's time); an older saved record: the record's time.
    upgraded_at = (previous.extra.get("upgrade-started-at") if previous else None) or (
        current.installed_at if current is not None else None
    )
    plan = KubeRollbackPlan(
        namespace,
        current.version if current else None,
        previous,
        current,
        backup,
        upgraded_at,
        _since(upgraded_at),
    )
    if current is None:
        plan.problems.append(f"nothing is installed in namespace {namespace} (no release record)")
    elif previous is None or backup is None:
        plan.problems.append(
            f"no upgrade to roll back in namespace {namespace}: there is no saved previous "
            f"release ({PREVIOUS_RECORD_NAME})"
        )
    elif backup.to_release != current.version and not _restore_left(previous, current):
        plan.problems.append(
            f"the saved previous release {previous.version} was left by the upgrade to "
            f"{backup.to_release or '?'}, but {current.version} runs now: a rollback would not "
            "return to the release before the running one"
        )
    elif backup.database == "in-cluster" and not (backup.path and backup.sha256):
        plan.problems.append(
            f"the upgrade from {previous.version} kept no database dump: the data cannot come "
            "back with the release"
        )
    elif not previous.manifest_objects():
        plan.problems.append(f"the saved release record of {previous.version} holds no objects")
    elif (
        backup.database == "in-cluster"
        and backup.claim
        and not _usable_claim(cluster, namespace, backup.claim)
    ):
        plan.problems.append(
            f"the claim {backup.claim} that holds the pre-upgrade dump is gone (or being "
            "deleted): the data cannot come back with the release"
        )
    if previous is not None and current is not None and _restore_left(previous, current):
        plan.notes.append(
            f"the failed upgrade to {backup.to_release if backup else '?'} put release "
            f"{previous.version} back but not its data: the rollback restores the data"
        )
    if backup is not None and previous is not None and current is not None:
        since = plan.seconds_since_upgrade
        when = f"{_duration(since)} ago" if since is not None else "at an unknown time"
        plan.notes.append(
            f"returns to {previous.version} from {current.version} (upgraded {when}, "
            f"{upgraded_at or '?'})"
        )
        if backup.database == "in-cluster" and backup.path:
            plan.notes.append(
                f"everything written to the database since the upgrade will be lost: it is "
                f"restored from {backup.path} in claim {backup.claim} "
                f"(sha256 {str(backup.sha256)[:12]}..., checked when made)"
            )
            plan.notes.append(
                "rows written since cannot be counted from here (the database is inside the "
                "cluster)"
            )
        elif backup.database == "managed":
            plan.notes.append(MANAGED_NOTE)
    return plan


@dataclass(frozen=True)
class KubeRollbackPreview(RollbackPreview):
    """The Compose preview's fields, and what a cluster's rollback brings back: the objects
    from the saved record, the data from the dump in a claim, or (managed) not the data."""

    database: str = "in-cluster"  # in-cluster | managed
    dump: str | None = None  # "pvc/<claim>:<path>" of the pre-upgrade dump

    def loss_lines(self) -> list[str]:
        if not self.allowed:
            return [f"rollback refused: {p}" for p in self.problems]
        since = (
            f"{_duration(self.seconds_since_upgrade)} ago ({self.upgraded_at})"
            if self.seconds_since_upgrade is not None
            else "at an unknown time"
        )
        if self.database == "managed":
            return [
                f"CodeQual {self.installed} goes back to {self.previous}: its objects only, "
                f"from the release record saved by the upgrade made {since}",
                MANAGED_NOTE,
                f"the database keeps what {self.installed}'s migration did to it: "
                f"{self.previous} must accept that schema, or restore the snapshot first",
            ]
        return [
            f"CodeQual {self.installed} goes back to {self.previous}: its objects from the "
            f"saved release record, its database from the pre-upgrade dump {self.dump}, made "
            f"{since}",
            f"everything written to the database since the upgrade ({since}) is lost:",
            "  rows written since cannot be counted from here (the database is inside the cluster)",
            "  files in the other volume claims (DeepWiki's) are kept as they are",
        ]

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "database": self.database, "dump": self.dump}


def kubernetes_rollback_preview(
    answers: AnswerFile, secrets: LoadedSecrets, *, options: KubeOptions | None = None
) -> KubeRollbackPreview:
    """What ``rollback`` would do and lose on a Kubernetes target; changes nothing."""
    with _connect(answers, options or KubeOptions()) as cluster:
        plan = rollback_plan(answers, cluster)
    backup = plan.backup
    return KubeRollbackPreview(
        install_dir=f"namespace {plan.namespace}",
        target=answers.target,
        installed=plan.installed,
        previous=plan.previous.version if plan.previous else None,
        upgraded_at=plan.upgraded_at,
        seconds_since_upgrade=plan.seconds_since_upgrade,
        archive=None,  # no local archive: the dump is in a claim of the cluster
        verified=bool(backup and backup.sha256),
        tables=(),
        notes=tuple(plan.notes),
        problems=tuple(plan.problems),
        exit_code=int(ExitCode.OK if plan.allowed else ExitCode.USAGE),
        database=backup.database if backup else database_mode(answers),
        dump=backup.label if backup else None,
    )


def reapply_previous(
    cluster: Cluster,
    previous: ReleaseRecord,
    current: ReleaseRecord,
    sleep: Callable[[float], None],
) -> Iterator[str]:
    """Apply the saved release's objects again (force: its state wins), all but Jobs, then
    prune what the newer release added; claims and the namespace are never pruned."""
    refused: list[str] = []
    for item in previous.manifest_objects():
        sleep(0)
        if item.kind == "Job":
            continue  # a finished migration is history; it is not run again
        try:
            result = cluster.apply(item.obj, force=True)
        except ClusterUnreachable:
            raise
        except KubernetesError as e:
            refused.append(f"{item.ref}: {e.message}")
            yield f"could not re-apply {item.ref}: {e.message}"
            continue
        yield f"re-applied {item.ref}" + (" (created)" if result.created else "")
    keep = previous.object_set
    for ref in reversed(current.objects):
        if ref in keep or ref.kind in ("Namespace", "PersistentVolumeClaim"):
            continue
        if cluster.delete(ref):
            yield f"pruned {ref} (added by {current.version})"
    if refused:
        raise InstallerError(
            f"release {previous.version} was re-applied except {len(refused)} object(s): "
            + "; ".join(refused),
            hint="fix or delete those objects by hand, then run rollback again; the database "
            "was not touched",
        )


def _record_previous_as_current(cluster: Cluster, namespace: str, previous: ReleaseRecord) -> None:
    for item in record_objects(
        namespace,
        previous.version,
        previous.answers_digest,
        previous.objects_digest,
        previous.manifest_objects(),
        namespace_created=previous.namespace_created,
    ):
        cluster.apply(item.obj, force=True)
    for ref in (
        ObjectRef("v1", "ConfigMap", PREVIOUS_RECORD_NAME, namespace),
        ObjectRef("v1", "Secret", PREVIOUS_RECORD_SECRET_NAME, namespace),
    ):
        cluster.delete(ref)


def kubernetes_rollback_events(
    answers: AnswerFile,
    secrets: LoadedSecrets,
    *,
    cancel: CancelToken,
    options: KubeOptions | None = None,
) -> Iterator[Event]:
    """The rollback, without asking (the front end confirmed on the preview): the previous
    release's objects, then its data, then the record; one ``run.*`` event at the end.

    With the in-cluster database a Job first checks the dump (sha256, ``pg_restore --list``):
    a dump that is gone or damaged stops the rollback before anything changes (exit 4).
    """
    from installer.events import Event

    options = options or KubeOptions()
    started, started_at = time.monotonic(), _utc_now()
    step: str | None = None
    plan: KubeRollbackPlan | None = None
    yield Event("run.started", f"roll back in namespace {answers.kubernetes.namespace}")
    try:
        with _connect(answers, options) as cluster:
            plan = rollback_plan(answers, cluster)
            if not plan.allowed:
                raise NothingToRollBack("; ".join(plan.problems))
            assert plan.previous is not None and plan.current is not None  # noqa: S101
            assert plan.backup is not None  # noqa: S101 - allowed implies these
            for note in plan.notes:
                yield Event("step.output", note, step="preview")
            if plan.backup.database == "in-cluster":
                step = "dump check"
                yield Event("step.started", "Check the pre-upgrade dump", step=step)
                for line in _verify(answers, cluster, plan.backup, options, cancel):
                    yield Event("step.output", line, step=step)
                yield Event("step.finished", "the dump can be restored", step=step)
            step = "containers"
            yield Event("step.started", f"Re-apply release {plan.previous.version}", step=step)
            for line in reapply_previous(cluster, plan.previous, plan.current, cancel.sleep):
                yield Event("step.output", line, step=step)
            yield Event("step.finished", f"release {plan.previous.version} applied", step=step)
            step = RESTORE_STEP
            yield Event("step.started", "Database restore", step=step)
            if plan.backup.database == "in-cluster":
                for line in _restore(answers, cluster, plan.backup, options, cancel):
                    yield Event("step.output", line, step=step)
                done = f"database restored from {plan.backup.path}"
            else:
                yield Event("step.output", MANAGED_NOTE, step=step)
                done = "data NOT rolled back (managed database)"
            for line in _wait_for_rollouts(cluster, plan.previous, options, cancel.sleep):
                yield Event("step.output", line, step=step)
            yield Event("step.finished", done, step=step)
            step = "record"
            _record_previous_as_current(cluster, plan.namespace, plan.previous)
            yield Event(
                "step.finished", f"recorded release {plan.previous.version} as installed", step=step
            )
    except InstallerError as e:
        code = int(e.exit_code)
        if isinstance(e, DatabaseJobFailed) and step == RESTORE_STEP:
            e.message += (
                "; the previous release's objects were re-applied, its data was not restored"
            )
        if step is not None:
            yield Event("step.failed", e.message, step=step, data={"hint": e.hint or ""})
        yield Event("run.failed", e.message, exit_code=code, data={"hint": e.hint or ""})
        if step is not None and plan is not None:
            _history(
                answers,
                plan=plan,
                started_at=started_at,
                duration=time.monotonic() - started,
                code=code,
                outcome="failed",
            )
        return
    _history(
        answers,
        plan=plan,
        started_at=started_at,
        duration=time.monotonic() - started,
        code=0,
        outcome="finished",
    )
    yield Event(
        "run.finished",
        f"rolled back to {plan.previous.version}"
        + ("" if plan.backup.database == "in-cluster" else " (data not rolled back)"),
        exit_code=int(ExitCode.OK),
    )


def _history(
    answers: AnswerFile,
    *,
    plan: KubeRollbackPlan,
    started_at: str,
    duration: float,
    code: int,
    outcome: str,
) -> None:
    import sys

    from installer.history import HistoryEntry, append_entry, history_path
    from installer.statedir import StateWriteError

    backup = plan.backup
    entry = HistoryEntry(
        kind="rollback",
        from_release=plan.installed,
        to_release=plan.previous.version if plan.previous else None,
        started_at=started_at,
        duration_seconds=duration,
        exit_code=code,
        outcome=outcome,
        backup=backup.label if backup else None,
        details=backup.details() if backup else {},
    )
    try:
        append_entry(history_path(local_state(answers)), entry)
    except StateWriteError as e:
        sys.stderr.write(f"warning: the history was not written: {e.message}\n")


def kubernetes_rollback(
    answers: AnswerFile,
    secrets: LoadedSecrets,
    *,
    display: Any,
    assume_yes: bool,
    cancel: CancelToken | None = None,
) -> int:
    """``rollback`` on a Kubernetes target from the command line: preview, confirm, run."""
    import sys

    import click

    from installer.events import Event
    from installer.runner import CancelToken

    with _connect(answers, KubeOptions()) as cluster:
        plan = rollback_plan(answers, cluster)
    for note in plan.notes:
        display.show(Event("step.output", note, step="preview"))
    if not plan.allowed:
        raise NothingToRollBack("; ".join(plan.problems))
    if not assume_yes:
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise UsageError(
                "refusing to roll back without confirmation, and there is no terminal to ask on",
                hint="pass --yes to roll back unattended",
            )
        previous = plan.previous.version if plan.previous else "?"
        try:
            confirmed = click.confirm(f"Roll back to {previous}?", default=False, err=True)
        except click.exceptions.Abort:
            confirmed = False
        if not confirmed:
            raise Interrupted("not confirmed: nothing was changed")
    code = 1
    for event in kubernetes_rollback_events(answers, secrets, cancel=cancel or CancelToken()):
        display.show(event)
        if event.exit_code is not None:
            code = event.exit_code
    return code


__all__ = [
    "KubeBackup",
    "KubeRollbackPreview",
    "kubernetes_lifecycle",
    "kubernetes_pre_upgrade_backup",
    "kubernetes_restore_after_failed_upgrade",
    "kubernetes_rollback",
    "kubernetes_rollback_events",
    "kubernetes_rollback_preview",
]
