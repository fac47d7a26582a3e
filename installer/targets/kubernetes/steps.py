"""The install steps for the kubernetes and enterprise targets, on the shared runner.

The seed's seven steps, done the way cluster operators expect:

``prerequisites``  the context answers, the server version is supported, every permission
                   the install needs is granted (SelfSubjectAccessReview, before anything
                   is applied), the storage and ingress classes exist, OpenShift is what the
                   answers say it is
``configuration``  the manifests, rendered into the local state directory
``images``         every image is in its registry (or pushed from the bundle to the mirror)
``containers``     server-side apply, field manager ``codequal-installer``, in dependency
                   order: Namespace, ServiceAccounts and RBAC, Secrets and ConfigMaps,
                   PVCs, Services, Deployments
``database``       the release's migration command as a Job, its log streamed
``services``       Ingress (or OpenShift Route), HorizontalPodAutoscaler,
                   PodDisruptionBudgets, NetworkPolicies
``verification``   rollouts complete (observedGeneration, updated and available replicas),
                   endpoints ready, then HTTPS to the public host when it resolves from here
``monitoring``     the monitoring stack, or ServiceMonitors with the Prometheus Operator
``record``         objects the previous release had and this one does not are pruned
                   (PersistentVolumeClaims are kept: their data is the operator's to drop),
                   then the release record is written

Applying steps check first with a server-side dry run: when no object would change, the
step is skipped, so a re-apply with the same answers writes nothing. Each remembers (in
the runner's journal) the objects it created; its rollback deletes them. The containers step's
rollback also restores the recorded release when there is one: the recorded objects are
applied again (all but Jobs: a rollback does not run the previous migration again) and the
objects the new release added are pruned.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from installer.engine.kubernetes import (
    Cluster,
    ClusterUnreachable,
    KubernetesError,
    ObjectRef,
    deployment_rollout,
    selector_string,
)
from installer.errors import PrerequisiteError, StepFailed
from installer.runner import Progress, Step, StepContext, StepUpdate
from installer.targets.kubernetes.explain import explain_pods
from installer.targets.kubernetes.objects import ManifestObject, Phase, comparable
from installer.targets.kubernetes.record import (
    ReleaseRecord,
    namespace_created,
    read_record,
    record_objects,
)
from installer.targets.kubernetes.session import APP_SERVICES, KubeInstall

# Permissions every install needs beyond writing its own objects: (verb, group, resource).
READ_PERMISSIONS: tuple[tuple[str, str, str, str], ...] = (
    ("list", "", "pods", ""),
    ("get", "", "pods", ""),
    ("get", "", "pods", "log"),
    ("list", "", "events", ""),
    ("list", "discovery.k8s.io", "endpointslices", ""),
)
WRITE_VERBS = ("get", "create", "patch", "delete")
# Cluster-wide reads that only make a check possible: missing ones are warnings.
OPTIONAL_CLUSTER_READS: tuple[tuple[str, str], ...] = (
    ("storage.k8s.io", "storageclasses"),
    ("networking.k8s.io", "ingressclasses"),
)


def _created(ctx: StepContext) -> list[dict[str, str]]:
    return list(ctx.data.get("created") or [])


def _delete_created(session: KubeInstall, ctx: StepContext) -> Iterator[StepUpdate]:
    cluster = session.cluster()
    for entry in reversed(_created(ctx)):
        ref = ObjectRef.from_dict(entry)
        if cluster.delete(ref):
            yield f"deleted {ref} (created by this run)"


def would_change(cluster: Cluster, items: Sequence[ManifestObject]) -> list[ObjectRef]:
    """The objects a server-side dry run says an apply would create or change."""
    changed = []
    for item in items:
        live = cluster.get(item.ref)
        if live is None:
            changed.append(item.ref)
            continue
        try:
            dry = cluster.apply(item.obj, dry_run=True).obj
        except ClusterUnreachable:
            raise
        except KubernetesError:
            changed.append(item.ref)
            continue
        if comparable(dry) != comparable(live):
            changed.append(item.ref)
    return changed


def apply_objects(
    cluster: Cluster, ctx: StepContext, items: Sequence[ManifestObject], *, force: bool = False
) -> Iterator[StepUpdate]:
    """Server-side apply of ``items`` in order, remembering each object created."""
    created = _created(ctx)
    total = len(items)
    for index, item in enumerate(items, start=1):
        ctx.raise_if_cancelled()
        before = cluster.get(item.ref)
        result = cluster.apply(item.obj, force=force)
        if result.created:
            created.append(item.ref.to_dict())
            ctx.remember("created", created)
            verb = "created"
        elif before is not None and before["metadata"].get("resourceVersion") == result.obj[
            "metadata"
        ].get("resourceVersion"):
            verb = "unchanged"
        else:
            verb = "configured"
        yield f"{item.ref}: {verb}"
        yield Progress(index, total, "objects", f"applied {item.ref.kind} {item.ref.name}")


class KubeStep(Step):
    def __init__(self, session: KubeInstall) -> None:
        self.session = session


class PrerequisitesStep(KubeStep):
    name = "prerequisites"
    title = "Prerequisite check"
    read_only = True

    @property
    def description(self) -> str:
        return (
            "the cluster answers and runs a supported Kubernetes; every permission the "
            "install needs is granted; storage and ingress classes exist"
        )

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        from installer.checks.prerequisites import run_prerequisites
        from installer.live.result import LiveInput
        from installer.targets.kubernetes.probe import ClusterProbe

        session = self.session
        live = LiveInput.for_answers(
            session.answers,
            session.secrets,
            bundle=str(session.bundle) if session.bundle else None,
            release=session.release,
        )
        report = run_prerequisites(session.answers, probe=ClusterProbe(session), live=live)
        for result in report.results:
            if result.status == "skipped" and (result.reason or "").startswith("not used"):
                continue  # a host check of the Compose targets: noise here
            if result.status == "skipped":
                yield f"{result.name}: skipped ({result.reason})"
            else:
                text = f"{result.name}: {result.status}: {result.measured or ''}".rstrip(": ")
                yield text + (
                    f" (hint: {result.hint})" if result.hint and result.status != "pass" else ""
                )
        report.raise_for_failures()
        cluster = session.cluster()
        yield from self._await_terminating(ctx, cluster)
        yield from self._permissions(cluster)
        yield from self._classes(cluster)
        operator = session.prometheus_operator()
        yield "Prometheus Operator: " + (
            "found (ServiceMonitors will be created)" if operator else "not found (plain manifests)"
        )

    def _permissions(self, cluster: Cluster) -> Iterator[StepUpdate]:
        session = self.session
        namespace = session.namespace
        needed: dict[tuple[str, str, str, str, str], None] = {}
        kinds: dict[tuple[str, str], None] = {}
        from installer.targets.kubernetes.record import record_objects as _record

        for item in [*session.objects, *_record(namespace, "", "", "", [])]:
            kinds[(item.ref.api_version, item.kind)] = None
        namespace_exists = self._namespace_exists(cluster, namespace)
        for api_version, kind in kinds:
            if not cluster.serves(api_version, kind):
                raise PrerequisiteError(
                    f"the cluster does not serve {kind} ({api_version}), which the install applies",
                    hint="set kubernetes.openshift to false"
                    if api_version.startswith("route.openshift.io")
                    else "use a cluster that serves this API, or change the answers",
                )
            resource = cluster.resource(api_version, kind)
            scope = namespace if resource.namespaced else ""
            for verb in WRITE_VERBS:
                where = scope
                if resource.plural == "namespaces" and verb != "create":
                    # RBAC reads a request on /api/v1/namespaces/<name> as one in that
                    # namespace: a RoleBinding there grants it, a cluster-wide ask would not.
                    where = namespace
                elif resource.plural == "namespaces" and namespace_exists:
                    continue  # an existing namespace is never created
                needed[(verb, resource.group, resource.plural, "", where)] = None
        for verb, group, plural, sub in READ_PERMISSIONS:
            needed[(verb, group, plural, sub, namespace)] = None
        # RBAC lets a user create a Role only with permissions the user holds (no escalation):
        # check each one the install's Roles grant, so the refusal comes now, not mid-apply.
        granted = _role_grants(session.objects, namespace)
        needed.update(dict.fromkeys(granted))
        total = len(needed)
        missing: list[str] = []
        for index, (verb, group, plural, sub, scope) in enumerate(needed, start=1):
            if not cluster.can_i(verb, group, plural, scope or None, sub):
                if (
                    plural == "namespaces"
                    and namespace_exists
                    and verb in ("create", "patch", "delete")
                ):
                    session.keep_namespace = True
                    continue
                resource_name = f"{plural}.{group}" if group else plural
                if sub:
                    resource_name += f"/{sub}"
                where = f"in namespace {scope}" if scope else "at cluster scope"
                why = (
                    f" (granted by Role {granted[key]})"
                    if (key := (verb, group, plural, sub, scope)) in granted
                    else ""
                )
                missing.append(f"{verb} {resource_name} {where}{why}")
            if index % 10 == 0 or index == total:
                yield Progress(index, total, "permissions", "checking permissions")
        if session.keep_namespace:
            yield (
                f"namespace {namespace} exists and this user may not change it: it is used as it is"
            )
        if missing:
            raise PrerequisiteError(
                "this user may not do everything the install needs: cannot "
                + "; cannot ".join(missing),
                hint=(
                    "ask a cluster administrator for these permissions (a Role and "
                    f"RoleBinding in namespace {namespace}, a ClusterRole for the cluster-wide "
                    "ones); nothing was applied"
                ),
            )
        yield f"permissions: all {total} checked with SelfSubjectAccessReview are granted"

    def _await_terminating(self, ctx: StepContext, cluster: Cluster) -> Iterator[StepUpdate]:
        """A namespace being deleted (an earlier run rolled back, say) takes new objects only
        once it is gone: wait for that, for at most ``namespace_timeout``."""
        namespace = self.session.namespace
        ref = ObjectRef("v1", "Namespace", namespace)
        if not cluster.can_i("get", "", "namespaces", namespace):
            return
        live = cluster.get(ref)
        if live is None or not live["metadata"].get("deletionTimestamp"):
            return
        timeout = self.session.options.namespace_timeout
        yield (
            f"namespace {namespace} is being deleted (Terminating): waiting up to {timeout:g} s "
            "for it to go before installing into it again"
        )
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        while live is not None and live["metadata"].get("deletionTimestamp"):
            if time.monotonic() > deadline:
                raise PrerequisiteError(
                    f"namespace {namespace} is still being deleted after {timeout:g} s",
                    hint=f"see what holds it (`kubectl get namespace {namespace} -o yaml`: its "
                    "conditions name the finalizers and objects left), then run again",
                )
            ctx.sleep(self.session.options.poll_interval)
            live = cluster.get(ref)
        if live is None:
            yield f"namespace {namespace} is gone after {time.monotonic() - started:.1f} s"

    @staticmethod
    def _namespace_exists(cluster: Cluster, namespace: str) -> bool:
        """Whether the target namespace exists; False when this user may not read it (the
        permission check then names that ``get``)."""
        if not cluster.can_i("get", "", "namespaces", namespace):
            return False
        try:
            return cluster.get(ObjectRef("v1", "Namespace", namespace)) is not None
        except KubernetesError as e:
            if e.status == 403:
                return False
            raise

    def _classes(self, cluster: Cluster) -> Iterator[StepUpdate]:
        answers = self.session.answers
        wanted_storage = answers.kubernetes.storage_class
        has_claims = any(o.kind == "PersistentVolumeClaim" for o in self.session.objects)
        if has_claims:
            yield from self._class_check(
                cluster,
                api_version="storage.k8s.io/v1",
                kind="StorageClass",
                default_annotations=(
                    "storageclass.kubernetes.io/is-default-class",
                    # The beta annotation, still set by some provisioners and older clusters.
                    "storageclass.beta.kubernetes.io/is-default-class",
                ),
                wanted=wanted_storage,
                answer_key="kubernetes.storage_class",
            )
        if not answers.kubernetes.openshift and any(
            o.kind == "Ingress" for o in self.session.objects
        ):
            yield from self._class_check(
                cluster,
                api_version="networking.k8s.io/v1",
                kind="IngressClass",
                default_annotations=("ingressclass.kubernetes.io/is-default-class",),
                wanted=answers.kubernetes.ingress_class,
                answer_key="kubernetes.ingress_class",
            )

    def _class_check(
        self,
        cluster: Cluster,
        *,
        api_version: str,
        kind: str,
        default_annotations: tuple[str, ...],
        wanted: str | None,
        answer_key: str,
    ) -> Iterator[StepUpdate]:
        group, _, _ = api_version.rpartition("/")
        plural = cluster.resource(api_version, kind).plural
        if not cluster.can_i("list", group, plural, None):
            yield f"{kind}: not checked (this user may not list {plural})"
            return
        items = cluster.list_objects(api_version, kind)
        names = [i["metadata"]["name"] for i in items]
        defaults = [
            i["metadata"]["name"]
            for i in items
            if any(
                (i["metadata"].get("annotations") or {}).get(a) == "true"
                for a in default_annotations
            )
        ]
        if wanted is not None:
            if wanted not in names:
                raise PrerequisiteError(
                    f"{kind} {wanted!r} ({answer_key}) does not exist in the cluster",
                    hint=f"set {answer_key} to one of: {', '.join(names) or '(none exist)'}",
                )
            yield f"{kind}: {wanted} exists"
        elif not defaults:
            raise PrerequisiteError(
                f"the cluster has no default {kind} and {answer_key} is not set",
                hint=f"set {answer_key} to one of: "
                + (", ".join(names) or "(none exist: create one)"),
            )
        else:
            yield f"{kind}: the cluster default ({defaults[0]}) is used"


def _role_grants(
    items: Sequence[ManifestObject], namespace: str
) -> dict[tuple[str, str, str, str, str], str]:
    """(verb, group, resource, subresource, namespace) -> the Role that grants it."""
    grants: dict[tuple[str, str, str, str, str], str] = {}
    for item in items:
        if item.kind != "Role":
            continue
        for rule in item.obj.get("rules") or []:
            for group in rule.get("apiGroups") or [""]:
                for resource in rule.get("resources") or []:
                    plural, _, sub = str(resource).partition("/")
                    for verb in rule.get("verbs") or []:
                        grants.setdefault((verb, group, plural, sub, namespace), item.ref.name)
    return grants


class ConfigurationStep(KubeStep):
    name = "configuration"
    title = "Configuration generation"

    @property
    def description(self) -> str:
        count = len(self.session.rendered.kubernetes_objects)
        return f"write the {count} rendered manifests to {self.session.root / 'kubernetes'}"

    def check(self, ctx: StepContext) -> str | None:
        from installer.render import compare_plan

        changes = compare_plan(self.session.rendered, self.session.root)
        if all(c.kind == "unchanged" for c in changes):
            return f"the rendered manifests in {self.session.root} are up to date"
        return None

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        from installer.render import write_plan

        root = self.session.root
        if "backup" not in ctx.data:  # a resumed run keeps the first run's backup
            ctx.remember("backup", _back_up(root / "kubernetes", root / "state" / "rollback"))
        for change in write_plan(self.session.rendered, root):
            if change.kind != "unchanged":
                yield f"{change.kind}: {change.path}"

    def rollback(self, ctx: StepContext) -> Iterator[StepUpdate]:
        directory = self.session.root / "kubernetes"
        for path in directory.glob("*.yaml"):
            path.unlink(missing_ok=True)
        backup = ctx.data.get("backup")
        if backup:
            for path in sorted(Path(backup).glob("*.yaml")):
                shutil.copy2(path, directory / path.name)  # keeps each file's mode (0600 secrets)
            yield f"restored the previous manifests in {directory}"
        else:
            yield f"removed the manifests of this run from {directory}"


def _back_up(directory: Path, backups: Path) -> str | None:
    """Copy the manifests of the previous run aside (in the 0700 state directory, modes
    kept), so that a rollback can put them back; None when there were none."""
    files = sorted(directory.glob("*.yaml")) if directory.is_dir() else []
    if not files:
        return None
    target = backups / "kubernetes"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True, mode=0o700)
    for path in files:
        shutil.copy2(path, target / path.name)
    return str(target)


class ImagesStep(KubeStep):
    name = "images"
    title = "Container images"
    read_only = True  # pushing what is missing changes nothing the install could undo

    @property
    def description(self) -> str:
        if self.session.answers.airgap.enabled:
            return f"push the bundle's images to {self.session.mirror}"
        return "check that every image exists in its registry"

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        from installer.targets.kubernetes.images import RegistryAccess, check_image, images_of

        session = self.session
        images = images_of(o.obj for o in session.objects)
        if session.answers.airgap.enabled:
            yield from self._push(ctx, images)
        password = session.secret("registry_password")
        access = RegistryAccess(
            mirror=session.mirror,
            username=session.answers.registry.username,
            password=password,
            insecure=session.answers.registry.insecure,
            ca_file=session.answers.registry.ca_file,
        )
        missing = []
        for index, image in enumerate(images, start=1):
            ctx.raise_if_cancelled()
            found = check_image(image, access)
            if found.presence == "present":
                yield f"{image}: present in {found.registry}"
            elif found.presence == "missing":
                missing.append(image)
                yield f"{image}: NOT FOUND in {found.registry}"
            else:
                yield (
                    f"{image}: cannot be checked from here ({found.detail or found.presence}); "
                    "the cluster's nodes pull it themselves"
                )
            yield Progress(index, len(images), "images", f"checked {image}")
        if missing:
            on_mirror = bool(session.mirror) and all(
                m.startswith(f"{session.mirror}/") for m in missing
            )
            raise StepFailed(
                f"{len(missing)} image(s) do not exist in their registry: {', '.join(missing)}",
                step=self.name,
                hint=(
                    f"push them to {session.mirror}: `codequal-installer apply --bundle FILE` "
                    "pushes every image of the offline bundle"
                    if on_mirror
                    else "check release.images in the answers and the release manifest"
                ),
            )

    def _push(self, ctx: StepContext, images: list[str]) -> Iterator[StepUpdate]:
        """Verify the offline bundle, then push its images to the mirror (present ones skip)."""
        import tempfile

        from installer.bundle import open_bundle
        from installer.bundle.registry import RegistryTarget

        session = self.session
        answers = session.answers
        bundle = session.bundle or (Path(answers.airgap.bundle) if answers.airgap.bundle else None)
        if bundle is None or not session.mirror:
            raise StepFailed(
                "an air-gapped install needs the offline bundle and registry.mirror",
                step=self.name,
                hint="give --bundle FILE (or airgap.bundle) and registry.mirror",
            )
        target = RegistryTarget(
            mirror=session.mirror,
            insecure=answers.registry.insecure,
            ca_file=Path(answers.registry.ca_file) if answers.registry.ca_file else None,
            username=answers.registry.username,
            password=session.secret("registry_password"),
        )
        yield f"verifying {bundle} and pushing its images to {session.mirror}"
        with tempfile.TemporaryDirectory(prefix="codequal-bundle-") as scratch:
            opened = open_bundle(bundle, Path(scratch) / "bundle", key=session.options.bundle_key)
            ctx.raise_if_cancelled()
            for pushed in opened.push_images(target):
                state = (
                    "already there"
                    if pushed.manifest_skipped
                    else f"{pushed.uploaded_blobs} blobs uploaded, {pushed.skipped_blobs} present"
                )
                yield f"pushed {pushed.source} as {pushed.pinned}: {state}"


class ApplyPhaseStep(KubeStep):
    """Apply one phase's objects; skipped when a dry run says nothing would change."""

    phase: Phase = "deploy"

    @property
    def description(self) -> str:
        items = self.session.rendered_phase(self.phase)
        kinds = list(dict.fromkeys(o.kind for o in items))
        return f"server-side apply of {len(items)} objects ({', '.join(kinds)})"

    def check(self, ctx: StepContext) -> str | None:
        items = self.session.phase(self.phase)
        if not items:
            return "nothing to apply"
        if would_change(self.session.cluster(), items):
            return None
        return f"all {len(items)} objects already match (server-side dry run)"

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        yield from apply_objects(self.session.cluster(), ctx, self.session.phase(self.phase))

    def rollback(self, ctx: StepContext) -> Iterator[StepUpdate]:
        yield from _delete_created(self.session, ctx)


class DeployStep(ApplyPhaseStep):
    name = "containers"
    title = "Container deployment"
    phase: Phase = "deploy"

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        cluster = self.session.cluster()
        if "previous_version" not in ctx.data:
            record = read_record(cluster, self.session.namespace)
            ctx.remember("previous_version", record.version if record else None)
            if record is not None:
                yield f"upgrading from the recorded release {record.version or '?'}"
        yield from super().apply(ctx)
        self.session.namespace_created = any(e.get("kind") == "Namespace" for e in _created(ctx))

    def rollback(self, ctx: StepContext) -> Iterator[StepUpdate]:
        cluster = self.session.cluster()
        record = (
            read_record(cluster, self.session.namespace)
            if ctx.data.get("previous_version")
            else None
        )
        if record is None:
            yield from _delete_created(self.session, ctx)
            return
        yield from restore_release(self.session, record, ctx)


def restore_release(
    session: KubeInstall, record: ReleaseRecord, ctx: StepContext
) -> Iterator[StepUpdate]:
    """Apply the recorded release again and prune what the failed one added."""
    cluster = session.cluster()
    recorded = record.manifest_objects()
    if not recorded:
        raise StepFailed(
            f"the release record of {record.version} holds no objects to restore",
            step="containers",
            hint="re-install the previous release with its answer file",
        )
    yield f"restoring release {record.version} from the release record"
    refused: list[str] = []
    for item in recorded:
        ctx.raise_if_cancelled()
        if item.kind == "Job":
            continue  # a finished Job is history: its pod template cannot be put back anyway
        try:
            cluster.apply(item.obj, force=True)  # the recorded state wins over anything newer
        except ClusterUnreachable:
            raise
        except KubernetesError as e:
            refused.append(f"{item.ref}: {e.message}")
            yield f"could not restore {item.ref}: {e.message}"
    keep = record.object_set
    for item in reversed(session.applied()):
        if item.ref in keep:
            continue
        if item.kind == "PersistentVolumeClaim":
            # Claims are never pruned: the failed release may already have written data.
            if cluster.get(item.ref) is not None:
                yield (
                    f"kept {item.ref} (added by the failed release; its data stays until "
                    "you delete it)"
                )
            continue
        if cluster.delete(item.ref):
            yield f"pruned {item.ref} (added by the failed release)"
    deadline = time.monotonic() + session.options.rollout_timeout
    for item in recorded:
        if item.kind != "Deployment":
            continue
        while True:
            live = cluster.get(item.ref)
            state = deployment_rollout(live) if live else None
            if state is None or state.done or state.failed or time.monotonic() > deadline:
                if state is not None:
                    yield f"restored {state.message}"
                break
            ctx.sleep(session.options.poll_interval)
    if refused:
        raise StepFailed(
            f"release {record.version} was restored except {len(refused)} object(s): "
            + "; ".join(refused),
            step="containers",
            hint="fix or delete those objects by hand, then apply the previous answers again",
        )


def prune_candidates(
    record: ReleaseRecord | None, applied: Sequence[ManifestObject]
) -> list[ObjectRef]:
    """Objects the recorded release had and this one does not, in reverse apply order."""
    if record is None:
        return []
    wanted = {item.ref for item in applied}
    return [
        ref for ref in reversed(record.objects) if ref not in wanted and ref.kind != "Namespace"
    ]


class DatabaseStep(KubeStep):
    name = "database"
    title = "Database initialization"

    @property
    def description(self) -> str:
        command = " ".join(self.session.release.migration.command)
        return f"run `{command}` as a Job and stream its log"

    def _job(self) -> ManifestObject | None:
        jobs = self.session.phase("database")
        return jobs[0] if jobs else None

    def check(self, ctx: StepContext) -> str | None:
        job = self._job()
        if job is None:
            return "the release has no migration"
        live = self.session.cluster().get(job.ref)
        if (
            live is not None
            and _job_finished(live) == "Complete"
            and not would_change(self.session.cluster(), [job])
        ):
            version = self.session.release.migration.schema_version
            return f"the migration Job {job.ref.name} already completed (schema version {version})"
        return None

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        job = self._job()
        if job is None:
            return
        session = self.session
        cluster = session.cluster()
        if cluster.get(job.ref) is not None:
            # A Job's pod template cannot change; a failed or older one is replaced.
            cluster.delete(job.ref)
            yield f"replacing the earlier Job {job.ref.name}"
            yield from self._wait_deleted(ctx, cluster, job)
        yield from apply_objects(cluster, ctx, [job])
        yield from self._follow(ctx, cluster, job)

    def _wait_deleted(
        self, ctx: StepContext, cluster: Cluster, job: ManifestObject
    ) -> Iterator[StepUpdate]:
        """Until the earlier Job is gone, for at most the rollout timeout (a finalizer that
        nobody removes would otherwise hold the install forever)."""
        timeout = self.session.options.rollout_timeout
        deadline = time.monotonic() + timeout
        while (live := cluster.get(job.ref)) is not None:
            if time.monotonic() > deadline:
                finalizers = live["metadata"].get("finalizers") or []
                held = f" (held by the finalizers {', '.join(finalizers)})" if finalizers else ""
                raise StepFailed(
                    f"the earlier Job {job.ref.name} is still being deleted after "
                    f"{timeout:g} s{held}",
                    step=self.name,
                    hint="find what holds it (`kubectl get job "
                    f"{job.ref.name} -n {job.ref.namespace} -o yaml`: finalizers, the "
                    "controller that owns them), let it finish, then run apply again",
                )
            ctx.sleep(self.session.options.poll_interval)
        yield f"the earlier Job {job.ref.name} is deleted"

    def _follow(
        self, ctx: StepContext, cluster: Cluster, job: ManifestObject
    ) -> Iterator[StepUpdate]:
        session = self.session
        namespace = session.namespace
        started_at = time.monotonic()
        deadline = started_at + session.options.job_timeout
        # A pod that cannot even start (image, scheduling) is not worth the Job's whole time.
        start_deadline = started_at + min(
            session.options.rollout_timeout, session.options.job_timeout
        )
        # (pod, restart count): under restartPolicy OnFailure a failed run restarts in the
        # same pod, and each run's log is streamed.
        streamed: set[tuple[str, int]] = set()
        tail: list[str] = []
        # This Job's pods only: ``job-name=`` also matches the pods of an earlier Job of the
        # same name that the garbage collector has not removed yet; the selector the server
        # set (its controller-uid) does not.
        live = cluster.get(job.ref)
        pods_of_job = _job_pod_selector(live, job.ref.name)
        while True:
            live = cluster.get(job.ref)
            outcome = _job_finished(live) if live else None
            pods = cluster.list_objects("v1", "Pod", namespace, label_selector=pods_of_job)
            for pod in sorted(pods, key=lambda p: str(p["metadata"].get("creationTimestamp", ""))):
                name = pod["metadata"]["name"]
                run = (name, _restarts(pod))
                if run in streamed or not _container_started(pod):
                    continue
                streamed.add(run)
                yield f"log of {name}:" if not run[1] else f"log of {name} (restart {run[1]}):"
                for line in cluster.follow_pod_log(
                    namespace, name, timeout=session.options.job_timeout
                ):
                    tail = [*tail[-29:], line]
                    yield f"| {line}"
            if outcome == "Complete":
                yield f"migration Job {job.ref.name} completed"
                return
            stuck = not streamed and time.monotonic() > start_deadline
            if outcome == "Failed" or stuck or time.monotonic() > deadline:
                explanation = explain_pods(
                    cluster,
                    namespace,
                    pods_of_job,
                    mirror=session.mirror,
                    owner=job.ref.name,
                )
                if outcome == "Failed":
                    why = "failed"
                elif stuck:
                    why = f"could not start within {session.options.rollout_timeout:g} s"
                else:
                    why = f"did not finish within {session.options.job_timeout:g} s"
                raise StepFailed(
                    f"the database migration ({job.ref.name}) {why}"
                    + (f": {explanation.summary}" if explanation.findings and not tail else ""),
                    step=self.name,
                    command=list(session.release.migration.command),
                    log_tail=tail or explanation.lines(),
                    hint=explanation.hint
                    or "the migration's log above says why; fix the cause and run apply again "
                    "(the migration is idempotent)",
                )
            ctx.sleep(session.options.poll_interval)

    def rollback(self, ctx: StepContext) -> Iterator[StepUpdate]:
        yield from _delete_created(self.session, ctx)
        yield (
            "note: schema changes a migration made stay in the database; the previous "
            "release must accept them"
        )


def _job_pod_selector(job: dict[str, Any] | None, name: str) -> str:
    """The label selector of this Job's own pods: the one the server put on it (its
    ``controller-uid``), ``job-name=`` only when the Job could not be read."""
    selector = selector_string(((job or {}).get("spec") or {}).get("selector"))
    return selector or f"job-name={name}"


def _job_finished(job: dict[str, Any]) -> str | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return str(condition["type"])
    return None


def _restarts(pod: dict[str, Any]) -> int:
    return sum(
        int(status.get("restartCount") or 0)
        for status in (pod.get("status") or {}).get("containerStatuses") or []
    )


def _container_started(pod: dict[str, Any]) -> bool:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        state = status.get("state") or {}
        if "running" in state or "terminated" in state:
            return True
    return False


class ServicesStep(ApplyPhaseStep):
    name = "services"
    title = "Service configuration"
    phase: Phase = "services"


class VerificationStep(KubeStep):
    name = "verification"
    title = "Verification"
    read_only = True

    @property
    def description(self) -> str:
        return (
            "rollouts complete (observedGeneration, updated and available replicas), "
            f"endpoints ready, then HTTPS to {self.session.answers.domain} when it resolves"
        )

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        session = self.session
        deadline = time.monotonic() + session.options.rollout_timeout
        workloads = [o for o in session.phase("deploy") if o.kind == "Deployment"]
        yield from wait_for_rollouts(session, ctx, workloads, deadline, self.name)
        services = [
            o
            for o in session.phase("deploy")
            if o.kind == "Service" and (o.obj.get("spec") or {}).get("selector")
        ]
        yield from wait_for_endpoints(session, ctx, services, deadline, self.name)
        yield from self._https(ctx)

    def _https(self, ctx: StepContext) -> Iterator[StepUpdate]:
        session = self.session
        host = session.answers.domain
        port = session.options.https_port
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            yield (
                f"{host} does not resolve from here: the HTTPS check is skipped (point its "
                "DNS at the ingress)"
            )
            return
        context = ssl.create_default_context()
        cert = _rendered_certificate(session)
        if session.answers.tls.mode == "self-signed" and cert:
            context = ssl.create_default_context(cadata=cert)
        deadline = time.monotonic() + session.options.https_timeout
        for route in session.release.routes:
            if route.service not in session.release.services:
                continue
            suffix = "" if port == 443 else f":{port}"
            url = f"https://{host}{suffix}{route.path.rstrip('/')}{route.health_path}"
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=10, context=context) as response:
                        yield f"{url}: HTTP {response.status}"
                        break
                except (OSError, urllib.error.URLError) as e:
                    if time.monotonic() > deadline:
                        raise StepFailed(
                            f"{url} does not answer: {getattr(e, 'reason', e)}",
                            step=self.name,
                            hint="check the ingress controller (or OpenShift router), that "
                            f"{host} points at it, and the TLS certificate",
                        ) from e
                    ctx.sleep(session.options.poll_interval)


def _rendered_certificate(session: KubeInstall) -> str | None:
    import base64

    for item in session.objects:
        if item.kind == "Secret" and (item.obj.get("type") == "kubernetes.io/tls"):
            if "tls.crt" in (item.obj.get("stringData") or {}):
                return str(item.obj["stringData"]["tls.crt"])
            if "tls.crt" in (item.obj.get("data") or {}):
                return base64.b64decode(item.obj["data"]["tls.crt"]).decode("ascii")
    return None


def wait_for_rollouts(
    session: KubeInstall,
    ctx: StepContext,
    workloads: Sequence[ManifestObject],
    deadline: float,
    step: str,
) -> Iterator[StepUpdate]:
    """Wait until every Deployment has rolled out; explain the first that does not."""
    cluster = session.cluster()
    pending = {item.ref: item for item in workloads}
    total = len(pending)
    last: dict[ObjectRef, str] = {}
    while pending:
        for ref in list(pending):
            live = cluster.get(ref)
            if live is None:
                raise StepFailed(f"{ref} disappeared during verification", step=step)
            state = deployment_rollout(live)
            if state.done:
                del pending[ref]
                yield f"rolled out: {state.message}"
            elif state.failed or time.monotonic() > deadline:
                raise _not_available(session, live, state.message, step)
            elif last.get(ref) != state.message:
                last[ref] = state.message
                yield f"waiting: {state.message}"
        yield Progress(total - len(pending), total, "deployments", "waiting for rollouts")
        if pending:
            ctx.sleep(session.options.poll_interval)


def _not_available(session: KubeInstall, live: dict[str, Any], state: str, step: str) -> StepFailed:
    name = live["metadata"]["name"]
    selector = selector_string((live.get("spec") or {}).get("selector"))
    explanation = explain_pods(
        session.cluster(), session.namespace, selector, mirror=session.mirror, owner=name
    )
    waited = session.options.rollout_timeout
    message = f"Deployment {name} did not become available within {waited:g} s ({state})"
    if explanation.findings:
        message += f": {explanation.findings[0].summary}"
    return StepFailed(
        message,
        step=step,
        hint=explanation.hint or f"see `kubectl -n {session.namespace} describe deployment {name}`",
        log_tail=explanation.lines(),
    )


def wait_for_endpoints(
    session: KubeInstall,
    ctx: StepContext,
    services: Sequence[ManifestObject],
    deadline: float,
    step: str,
) -> Iterator[StepUpdate]:
    """Wait until every Service has at least one ready endpoint."""
    cluster = session.cluster()
    for item in services:
        while True:
            slices = cluster.list_objects(
                "discovery.k8s.io/v1",
                "EndpointSlice",
                session.namespace,
                label_selector=f"kubernetes.io/service-name={item.ref.name}",
            )
            ready = [
                e
                for s in slices
                for e in s.get("endpoints") or []
                if (e.get("conditions") or {}).get("ready") is not False
            ]
            if ready:
                yield f"Service {item.ref.name}: {len(ready)} ready endpoint(s)"
                break
            if time.monotonic() > deadline:
                raise StepFailed(
                    f"Service {item.ref.name} has no ready endpoint",
                    step=step,
                    hint="its selector matches no ready pod: compare the Service's selector "
                    "with the pods' labels (`kubectl get endpointslices`)",
                )
            ctx.sleep(session.options.poll_interval)


class MonitoringStep(ApplyPhaseStep):
    name = "monitoring"
    title = "Monitoring setup"
    phase: Phase = "monitoring"

    @property
    def description(self) -> str:
        if not self.session.answers.monitoring.enabled:
            return "monitoring is disabled"
        return (
            "the monitoring stack's objects (ServiceMonitors too where the Prometheus "
            "Operator runs), then their rollouts"
        )

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        yield from super().apply(ctx)
        session = self.session
        deadline = time.monotonic() + session.options.rollout_timeout
        workloads = [o for o in session.phase("monitoring") if o.kind == "Deployment"]
        yield from wait_for_rollouts(session, ctx, workloads, deadline, self.name)


class RecordStep(KubeStep):
    name = "record"
    title = "Release record"

    @property
    def description(self) -> str:
        return f"record release {self.session.release.version} in ConfigMap codequal-release"

    def _wanted(self) -> tuple[str, str]:
        from installer.targets.kubernetes.objects import digest
        from installer.targets.kubernetes.record import answers_digest

        answers_json = self.session.answers.model_dump_json()
        return answers_digest(answers_json), digest(self.session.applied())

    def check(self, ctx: StepContext) -> str | None:
        record = read_record(self.session.cluster(), self.session.namespace)
        answers_value, objects_value = self._wanted()
        if (
            record is not None
            and record.version == self.session.release.version
            and record.answers_digest == answers_value
            and record.objects_digest == objects_value
        ):
            return f"release {record.version} with these answers is already recorded"
        return None

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        session = self.session
        answers_value, objects_value = self._wanted()
        cluster = session.cluster()
        previous = read_record(cluster, session.namespace)
        live_namespace = (
            None
            if session.keep_namespace
            else cluster.get(ObjectRef("v1", "Namespace", session.namespace))
        )
        items = record_objects(
            session.namespace,
            session.release.version,
            answers_value,
            objects_value,
            session.applied(),
            namespace_created=namespace_created(
                previous, session.namespace_created, live_namespace
            ),
        )
        for ref in prune_candidates(previous, session.applied()):
            if ref.kind == "PersistentVolumeClaim":
                # Its data outlives the answers that made it: the operator decides.
                yield f"kept {ref}: no longer used; delete it yourself when its data can go"
            elif cluster.delete(ref):
                yield f"pruned {ref}: no longer part of the install"
        for item in items:
            cluster.apply(item.obj)
        yield f"recorded release {session.release.version} ({len(session.applied())} objects)"


def kubernetes_steps(session: KubeInstall) -> list[Step]:
    return [
        PrerequisitesStep(session),
        ConfigurationStep(session),
        ImagesStep(session),
        DeployStep(session),
        DatabaseStep(session),
        ServicesStep(session),
        VerificationStep(session),
        MonitoringStep(session),
        RecordStep(session),
    ]


__all__ = ["APP_SERVICES", "kubernetes_steps"]
