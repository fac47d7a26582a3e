"""Building a Kubernetes install's plan; its dry run; its status.

:func:`prepare_install` renders the manifests (measuring the cluster's nodes first when the
resource profile is ``auto``) and gathers what the steps share; :func:`install_plan` turns
that into the runner's :class:`~installer.runner.InstallPlan`. :func:`dry_run` prints the
objects in apply order and what the API server says applying each would do, changing
nothing; :func:`kubernetes_status` reads the release record and the live workloads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer.engine.kubernetes import Cluster, KubernetesError, ObjectRef, deployment_rollout
from installer.errors import InstallerError
from installer.targets.kubernetes.objects import comparable, digest, redacted
from installer.targets.kubernetes.session import KubeInstall, KubeOptions, default_root

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.credentials import LoadedSecrets, Secrets
    from installer.release import ReleaseManifest
    from installer.resources import Capacity
    from installer.runner import InstallPlan, RunSummary


def measure_capacity(answers: AnswerFile, options: KubeOptions) -> Capacity | None:
    """The smallest node, for ``resources.profile: auto``; None when it cannot be measured."""
    from installer.resources import Capacity
    from installer.targets.kubernetes.probe import parse_quantity

    if answers.resources.profile != "auto":
        return None
    try:
        with Cluster.connect(
            answers.kubernetes.context,
            environ=options.environ,
            timeout=min(options.request_timeout, 10),
        ) as cluster:
            nodes = cluster.list_objects("v1", "Node")
    except InstallerError:
        return None
    sizes = [
        (
            parse_quantity(((n.get("status") or {}).get("allocatable") or {}).get("cpu", 0)),
            int(
                parse_quantity(((n.get("status") or {}).get("allocatable") or {}).get("memory", 0))
            ),
        )
        for n in nodes
    ]
    sizes = [s for s in sizes if s[0] > 0 and s[1] > 0]
    if not sizes:
        return None
    return Capacity(cpus=min(s[0] for s in sizes), memory_bytes=min(s[1] for s in sizes))


def prepare_install(
    answers: AnswerFile,
    secrets: Secrets | LoadedSecrets,
    *,
    release: ReleaseManifest | None = None,
    root: Path | None = None,
    options: KubeOptions | None = None,
    bundle: Path | None = None,
) -> KubeInstall:
    """Render the install and gather what its steps share (the cluster is not touched
    unless ``resources.profile`` is ``auto``)."""
    from installer.release import release_for
    from installer.render import render_plan

    options = options or KubeOptions()
    release = release or release_for(answers)
    root = root or default_root(answers)
    capacity = measure_capacity(answers, options)
    rendered = render_plan(answers, secrets, release, root, capacity)
    return KubeInstall.from_rendered(
        answers, secrets, release, root, rendered, options=options, bundle=bundle
    )


def install_plan(session: KubeInstall) -> InstallPlan:
    """The runner's plan for ``session``."""
    from installer.runner import InstallPlan
    from installer.statedir import StateDir
    from installer.targets.kubernetes.steps import kubernetes_steps

    answers = session.answers
    identity = hashlib.sha256(
        "\n".join(
            (answers.model_dump_json(), session.release.version, digest(session.objects))
        ).encode()
    ).hexdigest()
    context = answers.kubernetes.context or "the current context"
    return InstallPlan(
        steps=kubernetes_steps(session),
        state=StateDir(session.root / "state"),
        identity=identity,
        description=(
            f"install CodeQual {session.release.version} into namespace {session.namespace} "
            f"({context})"
        ),
        redactor=session.rendered.redactor,
        result=lambda summary: install_result(session, summary),
        summary={
            "target": answers.target,
            "namespace": session.namespace,
            "context": answers.kubernetes.context,
            "objects": len(session.objects),
            "release": session.release.version,
        },
    )


def build_kubernetes_plan(
    answers: AnswerFile,
    secrets: Secrets | LoadedSecrets,
    *,
    release: ReleaseManifest | None = None,
    root: Path | None = None,
    options: KubeOptions | None = None,
) -> InstallPlan:
    """The plan of a kubernetes or enterprise install (what ``apply`` runs)."""
    return install_plan(
        prepare_install(answers, secrets, release=release, root=root, options=options)
    )


def public_urls(session: KubeInstall) -> list[str]:
    port = session.options.https_port
    suffix = "" if port == 443 else f":{port}"
    return [
        f"https://{session.answers.domain}{suffix}{route.path}"
        for route in session.release.routes
        if route.service in session.release.services
    ]


def install_result(session: KubeInstall, summary: RunSummary) -> dict[str, Any]:
    """``result.json`` of a finished Kubernetes install."""
    namespace = session.namespace
    return {
        "target": session.answers.target,
        "release": session.release.version,
        "context": session.answers.kubernetes.context,
        "namespace": namespace,
        "urls": public_urls(session),
        "release_record": f"ConfigMap {namespace}/codequal-release",
        "credentials": {
            "in_cluster": f"kubectl -n {namespace} get secret codequal-secrets -o yaml",
            "generated_here": str(session.root / "state"),
        },
        "manifests": str(session.root / "kubernetes"),
        "changed_steps": summary.changed_steps,
        "run_id": summary.run_id,
    }


def _dump(obj: dict[str, Any]) -> str:
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    buffer = io.StringIO()
    yaml.dump(obj, buffer)
    return buffer.getvalue()


def dry_run_objects(session: KubeInstall) -> tuple[str, list[dict[str, Any]]]:
    """Every object in apply order, with what applying it would do; changes nothing.

    With a reachable cluster each object goes through a server-side dry run (validation,
    defaulting, admission, field ownership) and the answer is compared with the live
    object: ``mode`` is ``server``. Without one, the rendered objects are listed as they
    are (``rendered``, with the reason). Secret values are never included.
    """
    cluster: Cluster | None
    reason = ""
    try:
        cluster = session.cluster()
        cluster.version()
    except InstallerError as e:
        cluster, reason = None, e.message
    items = session.objects if cluster is None else session.applied()
    namespace_exists = cluster is not None and _namespace_exists(cluster, session.namespace)
    listed: list[dict[str, Any]] = []
    for item in items:
        verdict = f"rendered (not checked: {reason})" if cluster is None else ""
        if cluster is not None:
            verdict = _dry_verdict(cluster, item.obj, item.ref, namespace_exists)
        entry: dict[str, Any] = {**item.ref.to_dict(), "verdict": verdict}
        listed.append({**entry, "object": redacted(item.obj)})
    if cluster is not None and namespace_exists:
        from installer.targets.kubernetes.record import read_record
        from installer.targets.kubernetes.steps import prune_candidates

        for ref in prune_candidates(read_record(cluster, session.namespace), items):
            verdict = (
                "kept (no longer used; its data stays until you delete it)"
                if ref.kind == "PersistentVolumeClaim"
                else "would be deleted (no longer part of the install)"
            )
            pruned: dict[str, Any] = {**ref.to_dict(), "verdict": verdict, "object": None}
            listed.append(pruned)
    return ("rendered" if cluster is None else "server"), listed


def _namespace_exists(cluster: Cluster, namespace: str) -> bool:
    try:
        return cluster.get(ObjectRef("v1", "Namespace", namespace)) is not None
    except KubernetesError as e:
        if e.status == 403:  # may not read namespaces: let the server judge each object
            return True
        raise


def dry_run(session: KubeInstall, write: Callable[[str], None]) -> str:
    """:func:`dry_run_objects`, printed as YAML documents with a verdict above each."""
    mode, listed = dry_run_objects(session)
    if mode == "rendered":
        write("# the cluster cannot be reached: the rendered objects, in apply order")
    else:
        write("# server-side dry run, in apply order: nothing is changed")
    for index, entry in enumerate(listed, start=1):
        ref = ObjectRef.from_dict(entry)
        verdict = "rendered" if mode == "rendered" else entry["verdict"]
        write(f"---\n# {index}. {ref}: {verdict}")
        if entry["object"] is not None:
            write(_dump(entry["object"]).rstrip("\n"))
    return mode


def _dry_verdict(
    cluster: Cluster, obj: dict[str, Any], ref: ObjectRef, namespace_exists: bool
) -> str:
    if ref.namespace and not namespace_exists:
        return "would be created (not checked: its namespace does not exist yet)"
    try:
        live = cluster.get(ref)
        result = cluster.apply(obj, dry_run=True)
    except KubernetesError as e:
        return f"REJECTED by the server: {e.message}"
    if live is None:
        return "would be created"
    if comparable(result.obj) == comparable(live):
        return "unchanged"
    return "would be changed"


def kubernetes_status(answers: AnswerFile, *, options: KubeOptions | None = None) -> dict[str, Any]:
    """What the cluster runs: the release record and each recorded Deployment's state."""
    from installer.targets.kubernetes.record import read_record

    options = options or KubeOptions()
    with Cluster.connect(
        answers.kubernetes.context, environ=options.environ, timeout=options.request_timeout
    ) as cluster:
        namespace = answers.kubernetes.namespace
        record = read_record(cluster, namespace)
        status: dict[str, Any] = {
            "target": answers.target,
            "context": cluster.context,
            "server": cluster.server,
            "namespace": namespace,
            "installed": record is not None,
        }
        if record is None:
            return status
        services = []
        for ref in record.objects:
            if ref.kind != "Deployment":
                continue
            live = cluster.get(ref)
            if live is None:
                services.append({"name": ref.name, "healthy": False, "state": "missing"})
                continue
            state = deployment_rollout(live)
            spec_replicas = int((live.get("spec") or {}).get("replicas", 1))
            available = int((live.get("status") or {}).get("availableReplicas") or 0)
            services.append(
                {
                    "name": ref.name,
                    "healthy": state.done,
                    "ready": f"{available}/{spec_replicas}",
                    "state": state.message,
                }
            )
        status.update(
            version=record.version,
            installed_at=record.installed_at,
            installer_version=record.installer_version,
            answers_digest=record.answers_digest,
            objects=len(record.objects),
            services=services,
            healthy=all(s["healthy"] for s in services),
        )
        return status


def print_kubernetes_status(answers: AnswerFile, *, as_json: bool) -> int:
    """``status`` for the Kubernetes targets: 0 when installed and every service is healthy."""
    import json

    import click

    from installer.errors import ExitCode

    status = kubernetes_status(answers)
    healthy = bool(status.get("installed") and status.get("healthy"))
    code = int(ExitCode.OK if healthy else ExitCode.INSTALL_FAILED)
    if as_json:
        click.echo(json.dumps(status, indent=2))
        return code
    from rich.console import Console
    from rich.table import Table

    console = Console()
    where = f"namespace {status['namespace']} of {status['context'] or status['server']}"
    if not status["installed"]:
        console.print(f"nothing installed in {where} (no release record)")
        return code
    console.print(
        f"[bold]CodeQual {status['version']}[/bold] ({status['target']}) in {where}, "
        f"installed {status['installed_at']} by installer {status['installer_version']}"
    )
    table = Table(show_edge=False)
    for column in ("deployment", "ready", "state"):
        table.add_column(column)
    for service in status["services"]:
        style = "green" if service["healthy"] else "red"
        table.add_row(
            service["name"], f"[{style}]{service.get('ready', '-')}[/{style}]", service["state"]
        )
    console.print(table)
    return code
