"""``codequal-installer uninstall``: an honest inventory first, then remove (data kept by default).

The inventory lists everything the installation holds, found by the Compose project label
*and* by name (a container or volume that lost its labels is still found):

* Compose: containers, networks, volumes with their sizes, images, the state directory,
  backup archives, certificates;
* Kubernetes: the objects of the release record by kind, the volume claims with their sizes,
  and the namespace, marked as created by this tool or not (the release record says so;
  for a record written before it did, a namespace whose only field manager is this
  installer was created by it, one that existed before has another).

Without ``--purge`` the data stays: Compose volumes, Kubernetes claims, backups and the
state directory (generated passwords, history). A later ``apply`` with the same answers
finds the old database and its rows. ``--purge`` removes everything the installation
labelled (images are not: they are shared with anything else on the engine, and the
inventory says so), after the operator types the domain, or with ``--yes``.

Kubernetes objects are deleted in the reverse of their apply order; a namespace this tool
did not create is never deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from installer.answers import AnswerFile
from installer.errors import ExitCode, InstallerError, Interrupted, UsageError
from installer.statedir import StateDir, atomic_write_json, read_json

PROJECT_LABEL = "com.docker.compose.project"
MANAGER = "codequal-installer"


@dataclass
class Item:
    """One thing the installation holds, and what happens to it."""

    kind: str  # container | network | volume | image | state | backups | certificate | <Kind>
    name: str
    size: int | None = None
    detail: str = ""
    data: bool = False  # holds the installation's data: kept unless --purge
    removable: bool = True  # False: never removed by uninstall (shared images, foreign ns)

    def action(self, purge: bool) -> str:
        if not self.removable:
            return "kept"
        return "removed" if purge or not self.data else "kept"

    def to_dict(self, purge: bool) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "size": self.size,
            "detail": self.detail,
            "data": self.data,
            "action": self.action(purge),
        }


@dataclass
class Inventory:
    target: str
    location: str
    items: list[Item] = field(default_factory=list)
    installed_release: str | None = None

    def to_dict(self, purge: bool) -> dict[str, Any]:
        return {
            "target": self.target,
            "location": self.location,
            "release": self.installed_release,
            "purge": purge,
            "items": [i.to_dict(purge) for i in self.items],
        }

    def of(self, kind: str) -> list[Item]:
        return [i for i in self.items if i.kind == kind]


def _tree_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).lstat().st_size
    return total


# -- Compose --------------------------------------------------------------------------------


def compose_project(answers: AnswerFile) -> str:
    record = read_json(StateDir.for_install_dir(answers.install_dir).result)
    if isinstance(record, dict) and record.get("compose_project"):
        return str(record["compose_project"])
    return answers.compose_project


def _backup_directory(answers: AnswerFile) -> Path:
    return Path(str(answers.backup.directory_for(answers.install_dir)))


def _labels(obj: Any) -> dict[str, str]:
    """An Engine object's labels (volumes and networks keep them in ``attrs`` only)."""
    attrs = getattr(obj, "attrs", None) or {}
    labels = attrs.get("Labels") or (attrs.get("Config") or {}).get("Labels")
    if labels is None:
        labels = getattr(obj, "labels", None)
    return dict(labels or {})


def _by_label_and_name(collection: Any, project: str, **extra: Any) -> list[Any]:
    found: dict[str, Any] = {}
    for obj in collection.list(filters={"label": f"{PROJECT_LABEL}={project}"}, **extra):
        found[obj.id] = obj
    for obj in collection.list(filters={"name": project}, **extra):
        name = str(obj.name).lstrip("/")
        owner = _labels(obj).get(PROJECT_LABEL)
        # By name only what carries no other project's label: "codequal-x_data" belongs to
        # the project "codequal-x", not to "codequal".
        if name.startswith((f"{project}-", f"{project}_")) and owner in (None, project):
            found.setdefault(obj.id, obj)
    return list(found.values())


def compose_inventory(answers: AnswerFile, client: Any) -> tuple[Inventory, dict[str, Any]]:
    """The Compose installation's inventory, and the Engine objects behind it."""
    from installer.history import installed_release

    install_dir = Path(answers.install_dir)
    state = StateDir.for_install_dir(install_dir)
    project = compose_project(answers)
    inventory = Inventory(
        answers.target, f"{install_dir} (Compose project {project})", [], installed_release(state)
    )
    containers = _by_label_and_name(client.containers, project, all=True)
    networks = _by_label_and_name(client.networks, project)
    volumes = _by_label_and_name(client.volumes, project)
    sizes: dict[str, int] = {}
    if volumes:
        with contextlib.suppress(Exception):  # sizes are a courtesy: df can be refused
            for entry in client.df().get("Volumes") or []:
                usage = entry.get("UsageData") or {}
                if usage.get("Size", -1) >= 0:
                    sizes[entry["Name"]] = int(usage["Size"])
    for c in containers:
        inventory.items.append(
            Item(
                "container",
                c.name,
                detail=f"{c.status}, {_labels(c).get('com.docker.compose.service', '?')}",
            )
        )
    for n in networks:
        inventory.items.append(Item("network", n.name))
    for v in volumes:
        inventory.items.append(
            Item(
                "volume",
                v.name,
                sizes.get(v.name),
                _labels(v).get("com.docker.compose.volume", ""),
                data=True,
            )
        )
    record = read_json(state.result)
    images = (
        sorted(set((record or {}).get("images", {}).values())) if isinstance(record, dict) else []
    )
    for image in images:
        inventory.items.append(
            Item(
                "image",
                image,
                detail="may be shared: never removed (docker image rm)",
                removable=False,
            )
        )
    if state.path.is_dir():
        inventory.items.append(
            Item(
                "state",
                str(state.path),
                _tree_size(state.path),
                "passwords, history, logs",
                data=True,
            )
        )
    backups = _backup_directory(answers)
    archives = sorted(backups.glob(f"{project}-*.cqbackup")) if backups.is_dir() else []
    for archive in archives:
        inventory.items.append(Item("backup", str(archive), archive.stat().st_size, data=True))
    for cert in sorted(
        [*(install_dir / "nginx" / "ssl").glob("*"), *(state.path / "tls").glob("*")]
    ):
        if cert.is_file():
            inventory.items.append(Item("certificate", str(cert), cert.stat().st_size, data=True))
    config = [p for p in install_dir.iterdir() if p.name != "state"] if install_dir.is_dir() else []
    if config:
        inventory.items.append(
            Item(
                "configuration",
                str(install_dir),
                sum(_tree_size(p) if p.is_dir() else p.stat().st_size for p in config),
                "rendered files",
                data=True,
            )
        )
    return inventory, {
        "containers": containers,
        "networks": networks,
        "volumes": volumes,
        "archives": archives,
        "backups": backups,
        "project": project,
    }


def compose_uninstall(
    answers: AnswerFile, *, purge: bool, client: Any, found: dict[str, Any]
) -> list[str]:
    """Remove what :func:`compose_inventory` found; the lines to report."""
    from docker.errors import APIError, NotFound

    from installer.errors import first_line

    done: list[str] = []
    for container in found["containers"]:
        try:
            container.stop(timeout=10)
            container.remove(force=True, v=False)
        except NotFound:
            pass  # gone already (Compose removed a one-off, or someone else did)
        except APIError as e:
            raise InstallerError(
                f"cannot remove container {container.name}: {first_line(e)}"
            ) from e
        done.append(f"container {container.name} removed")
    for network in found["networks"]:
        try:
            network.remove()
        except NotFound:
            pass
        except APIError as e:
            raise InstallerError(f"cannot remove network {network.name}: {first_line(e)}") from e
        done.append(f"network {network.name} removed")
    install_dir = Path(answers.install_dir)
    state = StateDir.for_install_dir(install_dir)
    if not purge:
        record = read_json(state.result)
        if isinstance(record, dict) and record.get("status") == "installed":
            record["status"] = "uninstalled"
            record["uninstalled_at"] = _now()
            atomic_write_json(state.result, record)
        done.append("volumes, backups, state and configuration kept: a later apply picks them up")
        return done
    for volume in found["volumes"]:
        try:
            volume.remove(force=True)
        except NotFound:
            pass
        except APIError as e:
            raise InstallerError(f"cannot remove volume {volume.name}: {first_line(e)}") from e
        done.append(f"volume {volume.name} removed")
    for archive in found["archives"]:
        for path in (archive, archive.with_name(archive.name + ".verified.json")):
            path.unlink(missing_ok=True)
        done.append(f"backup {archive.name} removed")
    backups = found["backups"]
    with contextlib.suppress(OSError):
        if backups.is_dir() and not any(backups.iterdir()):
            backups.rmdir()
    if install_dir.exists():
        shutil.rmtree(install_dir)
        done.append(f"{install_dir} removed (configuration, state, certificates)")
    return done


def _now() -> str:
    from installer.history import utc_now

    return utc_now()


# -- Kubernetes ------------------------------------------------------------------------------


def namespace_created_by_us(namespace: dict[str, Any] | None) -> bool:
    """The guess from the live namespace's field managers, for a release record that does
    not say (see :func:`installer.targets.kubernetes.record.namespace_created_by_installer`)."""
    from installer.targets.kubernetes.record import namespace_created_by_installer

    return namespace_created_by_installer(namespace)


def _claim_size(claim: dict[str, Any]) -> str:
    status = (claim.get("status") or {}).get("capacity") or {}
    spec = ((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}
    return str(status.get("storage") or spec.get("storage") or "?")


def _lifecycle_objects(cluster: Any, namespace: str, known: set[Any]) -> list[Any]:
    from installer.engine.kubernetes import ObjectRef
    from installer.targets.kubernetes.lifecycle import BACKUP_COMPONENT
    from installer.targets.kubernetes.record import (
        PREVIOUS_RECORD_NAME,
        PREVIOUS_RECORD_SECRET_NAME,
    )

    found: list[Any] = []
    selector = (
        f"app.kubernetes.io/component={BACKUP_COMPONENT},app.kubernetes.io/managed-by={MANAGER}"
    )
    for api_version, kind in (("batch/v1", "Job"), ("networking.k8s.io/v1", "NetworkPolicy")):
        for obj in cluster.list_objects(api_version, kind, namespace, label_selector=selector):
            ref = ObjectRef.of(obj)
            if ref not in known:
                found.append(ref)
    for ref in (
        ObjectRef("v1", "ConfigMap", PREVIOUS_RECORD_NAME, namespace),
        ObjectRef("v1", "Secret", PREVIOUS_RECORD_SECRET_NAME, namespace),
    ):
        if cluster.get(ref) is not None:
            found.append(ref)
    return found


def kubernetes_inventory(answers: AnswerFile, cluster: Any) -> tuple[Inventory, dict[str, Any]]:
    from installer.engine.kubernetes import ObjectRef
    from installer.targets.kubernetes.lifecycle import BACKUP_CLAIM
    from installer.targets.kubernetes.record import RECORD_NAME, RECORD_SECRET_NAME, read_record

    namespace = answers.kubernetes.namespace
    record = read_record(cluster, namespace)
    if record is None:
        raise UsageError(
            f"nothing is installed in namespace {namespace} (no release record)",
            hint="check kubernetes.context and kubernetes.namespace in the answers",
        )
    inventory = Inventory(
        answers.target,
        f"namespace {namespace} of {cluster.context or cluster.server}",
        [],
        record.version,
    )
    ns_ref = ObjectRef("v1", "Namespace", namespace)
    live_ns = cluster.get(ns_ref)
    # The record says whether this installer made the namespace; an older record does not,
    # and then the field managers of the live namespace are the best evidence left.
    if live_ns is None:
        created = False
    elif record.namespace_created is not None:
        created = record.namespace_created
    else:
        created = namespace_created_by_us(live_ns)
    claims: dict[ObjectRef, dict[str, Any]] = {}
    for claim in cluster.list_objects("v1", "PersistentVolumeClaim", namespace):
        labels = (claim.get("metadata") or {}).get("labels") or {}
        if (
            labels.get("app.kubernetes.io/managed-by") == MANAGER
            or ObjectRef.of(claim) in record.object_set
        ):
            claims[ObjectRef.of(claim)] = claim
    objects = [r for r in record.objects if r.kind not in ("Namespace", "PersistentVolumeClaim")]
    for ref in objects:
        inventory.items.append(Item(ref.kind, ref.name))
    # What upgrades added beside the release: the dump Jobs' network policies, a Job kept
    # after it failed, the saved previous release record.
    extra = _lifecycle_objects(cluster, namespace, set(objects))
    for ref in extra:
        inventory.items.append(Item(ref.kind, ref.name, detail="upgrade backup and rollback"))
    objects += extra
    for ref in (
        ObjectRef("v1", "Secret", RECORD_SECRET_NAME, namespace),
        ObjectRef("v1", "ConfigMap", RECORD_NAME, namespace),
    ):
        inventory.items.append(Item(ref.kind, ref.name, detail="release record"))
    for ref, claim in claims.items():
        size = _claim_size(claim)
        detail = f"{size}, pre-upgrade database dumps" if ref.name == BACKUP_CLAIM else size
        inventory.items.append(Item("PersistentVolumeClaim", ref.name, detail=detail, data=True))
    inventory.items.append(
        Item(
            "Namespace",
            namespace,
            detail="created by this installer"
            if created
            else "not created by this installer: kept",
            data=True,
            removable=created,
        )
    )
    return inventory, {
        "objects": objects,
        "claims": list(claims),
        "namespace": ns_ref if created else None,
    }


def kubernetes_uninstall(
    answers: AnswerFile, *, purge: bool, cluster: Any, found: dict[str, Any]
) -> list[str]:
    """Delete in reverse apply order; claims and the namespace only with ``--purge``."""
    from installer.engine.kubernetes import ObjectRef
    from installer.targets.kubernetes.record import RECORD_NAME, RECORD_SECRET_NAME

    namespace = answers.kubernetes.namespace
    done: list[str] = []
    for ref in reversed(found["objects"]):
        cluster.delete(ref)
        done.append(f"{ref.kind} {ref.name} deleted")
    if purge:
        for ref in found["claims"]:
            cluster.delete(ref)
            done.append(f"PersistentVolumeClaim {ref.name} deleted")
    else:
        done.append(f"{len(found['claims'])} volume claims kept: a later apply picks them up")
    for ref in (
        ObjectRef("v1", "ConfigMap", RECORD_NAME, namespace),
        ObjectRef("v1", "Secret", RECORD_SECRET_NAME, namespace),
    ):
        cluster.delete(ref)
        done.append(f"{ref.kind} {ref.name} (release record) deleted")
    if purge and found["namespace"] is not None:
        cluster.delete(found["namespace"])
        done.append(f"Namespace {namespace} deleted (this installer created it)")
    return done


# -- the command ----------------------------------------------------------------------------


def print_inventory(inventory: Inventory, purge: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from installer.sizes import human_size

    console = Console(stderr=True)
    release = (
        f"CodeQual {inventory.installed_release}" if inventory.installed_release else "CodeQual"
    )
    console.print(f"[bold]{release}[/bold] ({inventory.target}) in {inventory.location}")
    table = Table(show_edge=False)
    for column in ("kind", "name", "size", "detail", "uninstall"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for item in inventory.items:
        action = item.action(purge)
        style = "red" if action == "removed" else "green"
        size = "" if item.size is None else human_size(item.size)
        table.add_row(item.kind, item.name, size, item.detail, f"[{style}]{action}[/{style}]")
    console.print(table)


def _confirm(answers: AnswerFile, purge: bool, yes: bool) -> None:
    if yes:
        return
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise UsageError(
            "refusing to uninstall without confirmation, and there is no terminal to ask on",
            hint="pass --yes to uninstall unattended",
        )
    try:
        if purge:
            typed = click.prompt(
                f"This removes every volume, backup and the state of the installation. Type the "
                f"domain ({answers.domain}) to go on",
                default="",
                show_default=False,
                err=True,
            )
            confirmed = typed.strip() == answers.domain
        else:
            confirmed = click.confirm("Uninstall (data is kept)?", default=False, err=True)
    except click.exceptions.Abort:
        confirmed = False
    if not confirmed:
        raise Interrupted("not confirmed: nothing was changed")


def run_uninstall(
    answers_path: str, secrets_path: str | None, *, purge: bool, yes: bool, as_json: bool
) -> int:
    """``codequal-installer uninstall``: the exit code."""
    from installer.validation import load_answers, load_secrets

    answers = load_answers(answers_path)
    if secrets_path is not None:
        load_secrets(secrets_path)  # validated, as every command does; nothing here needs it
    started = time.monotonic()
    if answers.is_compose:
        return _uninstall_compose(answers, purge=purge, yes=yes, as_json=as_json, started=started)
    return _uninstall_kubernetes(answers, purge=purge, yes=yes, as_json=as_json, started=started)


def _report(inventory: Inventory, done: Iterable[str], purge: bool, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({**inventory.to_dict(purge), "done": list(done)}, indent=2))
    else:
        for line in done:
            click.echo(line)


def _uninstall_compose(
    answers: AnswerFile, *, purge: bool, yes: bool, as_json: bool, started: float
) -> int:
    from installer.engine.docker import DockerEngine

    client = DockerEngine(timeout=60).client
    inventory, found = compose_inventory(answers, client)
    if not inventory.items:
        raise UsageError(f"nothing of an installation was found in {answers.install_dir}")
    if not as_json:
        print_inventory(inventory, purge)
    _confirm(answers, purge, yes)
    done = remove_compose(answers, inventory, found, purge=purge, client=client, started=started)
    _report(inventory, done, purge, as_json)
    return int(ExitCode.OK)


def remove_compose(
    answers: AnswerFile,
    inventory: Inventory,
    found: dict[str, Any],
    *,
    purge: bool,
    client: Any,
    started: float,
) -> list[str]:
    """After the confirmation: remove under the installation's lock, record the history;
    the lines to report."""
    from installer.history import HistoryEntry, append_entry, history_path, utc_now
    from installer.runner import RunLock

    state = StateDir.for_install_dir(answers.install_dir)
    started_at = utc_now()
    lock: RunLock | None = None
    if state.path.is_dir():
        lock = RunLock(state.lock, "uninstall")
        lock.acquire()
    try:
        done = compose_uninstall(answers, purge=purge, client=client, found=found)
        if not purge:
            append_entry(
                history_path(state),
                HistoryEntry(
                    kind="uninstall",
                    from_release=inventory.installed_release,
                    to_release=None,
                    started_at=started_at,
                    duration_seconds=time.monotonic() - started,
                    exit_code=0,
                    outcome="kept",
                    details={"volumes_kept": [i.name for i in inventory.of("volume")]},
                ),
            )
    finally:
        if lock is not None:
            with contextlib.suppress(Exception):
                lock.release()
    return done


def _uninstall_kubernetes(
    answers: AnswerFile, *, purge: bool, yes: bool, as_json: bool, started: float
) -> int:
    from installer.engine.kubernetes import Cluster
    from installer.history import HistoryEntry, append_entry, history_path, utc_now
    from installer.support_bundle import state_for

    with Cluster.connect(answers.kubernetes.context) as cluster:
        inventory, found = kubernetes_inventory(answers, cluster)
        if not as_json:
            print_inventory(inventory, purge)
        _confirm(answers, purge, yes)
        started_at = utc_now()
        done = kubernetes_uninstall(answers, purge=purge, cluster=cluster, found=found)
    state = state_for(answers)
    if purge:
        shutil.rmtree(state.path.parent, ignore_errors=True)
        done.append(f"local state {state.path.parent} removed")
    else:
        append_entry(
            history_path(state),
            HistoryEntry(
                kind="uninstall",
                from_release=inventory.installed_release,
                to_release=None,
                started_at=started_at,
                duration_seconds=time.monotonic() - started,
                exit_code=0,
                outcome="kept",
            ),
        )
    _report(inventory, done, purge, as_json)
    return int(ExitCode.OK)
