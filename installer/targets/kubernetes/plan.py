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


# Where the rendered Secret carries each generated password (see installer.render.context).
RECOVERABLE_SECRETS: dict[str, str] = {
    "POSTGRES_PASSWORD": "database_password",
    "GF_SECURITY_ADMIN_PASSWORD": "grafana_admin_password",
}
TLS_SECRET = "codequal-tls"  # noqa: S105 - the Secret's name
APP_SECRET = "codequal-secrets"  # noqa: S105 - the Secret's name


def _capacity(cluster: Cluster) -> Capacity | None:
    from installer.engine.kubernetes import parse_quantity
    from installer.resources import Capacity

    sizes = []
    for node in cluster.list_objects("v1", "Node"):
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        cpus = parse_quantity(allocatable.get("cpu", 0))
        memory = int(parse_quantity(allocatable.get("memory", 0)))
        if cpus > 0 and memory > 0:
            sizes.append((cpus, memory))
    if not sizes:
        return None
    return Capacity(cpus=min(s[0] for s in sizes), memory_bytes=min(s[1] for s in sizes))


def _recover_generated(cluster: Cluster, namespace: str, path: Path) -> list[str]:
    """Take the generated passwords back from the cluster's Secret into the local state.

    The passwords are generated once, on the machine of the first install. A later run from
    another machine (a colleague's laptop, CI) must not generate new ones: the database
    keeps the password it was initialised with. Returns the keys recovered.
    """
    import base64
    import json

    from installer.secretstore import write_private

    secret = cluster.get(ObjectRef("v1", "Secret", APP_SECRET, namespace))
    data = (secret or {}).get("data") or {}
    recovered = {}
    for variable, key in RECOVERABLE_SECRETS.items():
        if data.get(variable):
            value = base64.b64decode(data[variable]).decode("utf-8")
            if value:
                recovered[key] = value
    if recovered:
        write_private(path, (json.dumps(recovered, indent=2, sort_keys=True) + "\n").encode())
    return sorted(recovered)


def _recover_certificate(cluster: Cluster, namespace: str, domain: str, tls_dir: Path) -> bool:
    """Take the self-signed certificate an earlier install made back into the local state,
    so that a run from another machine does not replace it."""
    import base64
    import json

    from cryptography import x509

    from installer.secretstore import CERT_FILE, CERT_INFO_FILE, KEY_FILE, write_private

    secret = cluster.get(ObjectRef("v1", "Secret", TLS_SECRET, namespace))
    data = (secret or {}).get("data") or {}
    if not data.get("tls.crt") or not data.get("tls.key"):
        return False
    cert = base64.b64decode(data["tls.crt"])
    certificate = x509.load_pem_x509_certificate(cert)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    if domain not in names.value.get_values_for_type(x509.DNSName):
        return False  # made for another domain: the render makes a new one
    tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(tls_dir / KEY_FILE, base64.b64decode(data["tls.key"]))
    write_private(tls_dir / CERT_FILE, cert)
    not_after = certificate.not_valid_after_utc.timestamp()
    write_private(
        tls_dir / CERT_INFO_FILE, json.dumps({"domain": domain, "not_after": not_after}).encode()
    )
    return True


def read_cluster_facts(answers: AnswerFile, options: KubeOptions, state: Path) -> Capacity | None:
    """What rendering needs from the cluster, read once and best effort: the smallest node's
    size for ``resources.profile: auto``, and the generated passwords of an earlier install
    when this machine has none. An unreachable cluster is the prerequisite step's to report."""
    from installer.secretstore import GENERATED_SECRETS_FILE, TLS_DIR

    secrets_file = state / GENERATED_SECRETS_FILE
    wants_capacity = answers.resources.profile == "auto"
    wants_secrets = not secrets_file.exists()
    wants_certificate = answers.tls.mode == "self-signed" and not (state / TLS_DIR).exists()
    if not (wants_capacity or wants_secrets or wants_certificate):
        return None
    capacity = None
    try:
        with Cluster.connect(
            answers.kubernetes.context,
            environ=options.environ,
            timeout=min(options.request_timeout, 10),
        ) as cluster:
            namespace = answers.kubernetes.namespace
            if wants_secrets:
                _recover_generated(cluster, namespace, secrets_file)
            if wants_certificate:
                _recover_certificate(cluster, namespace, answers.domain, state / TLS_DIR)
            if wants_capacity:
                capacity = _capacity(cluster)
    except InstallerError:
        return capacity
    return capacity


def prepare_install(
    answers: AnswerFile,
    secrets: Secrets | LoadedSecrets,
    *,
    release: ReleaseManifest | None = None,
    root: Path | None = None,
    options: KubeOptions | None = None,
    bundle: Path | None = None,
) -> KubeInstall:
    """Render the install and gather what its steps share (the cluster is only read: see
    :func:`read_cluster_facts`)."""
    from installer.release import release_for
    from installer.render import render_plan

    options = options or KubeOptions()
    release = release or release_for(answers)
    root = root or default_root(answers)
    capacity = read_cluster_facts(answers, options, root / "state")
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
        bind_cancel=session.bind_cancel,
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


def public_urls(session: KubeInstall) -> dict[str, str]:
    """Each public route's URL, by the service it reaches (as ``result.json`` lists them)."""
    port = session.options.https_port
    suffix = "" if port == 443 else f":{port}"
    urls: dict[str, str] = {
        route.service: f"https://{session.answers.domain}{suffix}{route.path}"
        for route in session.release.routes
        if route.service in session.release.services
    }
    deepwiki = session.answers.deepwiki
    if deepwiki.mode == "external" and deepwiki.url:
        urls["deepwiki"] = deepwiki.url
    from installer.alerting import summary_urls

    urls.update(summary_urls(session.answers.alerting))
    return urls


def install_result(session: KubeInstall, summary: RunSummary) -> dict[str, Any]:
    """``state/result.json`` of a finished Kubernetes install (the Compose targets' shape)."""
    from installer import __version__

    namespace = session.namespace
    answers = session.answers
    credentials = {
        "service_secrets": f"Secret {namespace}/codequal-secrets in the cluster",
        "generated_secrets": f"{session.root / 'state' / 'generated-secrets.json'} (mode 0600)",
    }
    if answers.tls.mode == "self-signed" and not answers.kubernetes.openshift:
        credentials["tls_certificate"] = f"Secret {namespace}/codequal-tls in the cluster"
    if answers.monitoring.enabled and "grafana" in answers.monitoring.components:
        credentials["grafana_admin"] = (
            "user admin; password: grafana_admin_password in generated_secrets "
            "(or your secrets file)"
        )
    return {
        "format": 1,
        "status": "installed",
        "installer_version": __version__,
        "target": answers.target,
        "context": answers.kubernetes.context,
        "namespace": namespace,
        "release": {"version": session.release.version, "name": session.release.name},
        "schema_version": session.release.migration.schema_version,
        "release_record": f"ConfigMap {namespace}/codequal-release",
        "manifests": str(session.root / "kubernetes"),
        "urls": public_urls(session),
        "credentials": credentials,
        "run": summary.to_dict(),
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
        if ref.kind == "Job" and job_template_changed(e):
            return (
                "would be replaced (a Job's pod template cannot change: the earlier Job is "
                "deleted and this one runs)"
            )
        return f"REJECTED by the server: {e.message}"
    if live is None:
        return "would be created"
    if comparable(result.obj) == comparable(live):
        return "unchanged"
    return "would be changed"


def job_template_changed(error: KubernetesError) -> bool:
    """Whether the API refused an apply to an existing Job only because its pod template
    changed (immutable): the install then replaces the Job."""
    return (
        error.status == 422
        and bool(error.causes)
        and all(c.startswith("spec.template") and "immutable" in c for c in error.causes)
    )


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
        from installer.targets.kubernetes.history import kubernetes_lifecycle

        # The last pre-upgrade dump and the last history entries (the Compose status's keys).
        status.update(kubernetes_lifecycle(answers))
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
            schema_version=_schema_version(record.version),
            installed_at=record.installed_at,
            installer_version=record.installer_version,
            answers_digest=record.answers_digest,
            objects=len(record.objects),
            services=services,
            healthy=all(s["healthy"] for s in services),
        )
        return status


def _schema_version(version: str) -> str | None:
    """The database schema version of release ``version`` (None: a release unknown here)."""
    from installer.release import load_release

    try:
        return str(load_release(version).migration.schema_version)
    except InstallerError:
        return None


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
        if status.get("history"):
            from installer.history import print_lifecycle

            print_lifecycle(console, status)
        return code
    console.print(
        f"[bold]CodeQual {status['version']}[/bold] ({status['target']}) in {where}, "
        f"installed {status['installed_at']} by installer {status['installer_version']}"
        + (f", schema version {status['schema_version']}" if status.get("schema_version") else "")
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
    from installer.history import print_lifecycle

    print_lifecycle(console, status)
    return code
