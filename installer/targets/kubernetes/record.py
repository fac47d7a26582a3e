"""The release record: what is installed in the cluster, kept in the cluster itself.

A ConfigMap ``codequal-release`` in the install's namespace holds the release version, a
digest of the answers, a digest of the applied objects, the list of applied objects and,
compressed, the objects themselves as they were applied (all but Secrets). The applied
Secrets go, compressed, into the Secret ``codequal-release-secrets`` beside it, so a
rollback restores exactly what ran before without a secret value ever sitting in a
ConfigMap.

The ConfigMap also says whether this installer created the namespace
(``namespace-created``), so that ``uninstall --purge`` deletes only a namespace it made.
Before an upgrade, :mod:`~installer.targets.kubernetes.lifecycle` copies the record to
``codequal-release-previous`` (and its Secret), which ``rollback`` re-applies.

``status`` reads it; an upgrade that fails verification re-applies the recorded objects
and prunes what the new release added; a re-apply with the same answers compares with it.
Because it lives in the cluster, any machine with the kubeconfig sees the same truth.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from installer import __version__
from installer.engine.kubernetes import Cluster, ObjectRef
from installer.targets.kubernetes.objects import MANAGED_BY_LABEL, NAME_LABEL, ManifestObject

RECORD_NAME = "codequal-release"
RECORD_SECRET_NAME = "codequal-release-secrets"  # noqa: S105 - a Secret's name, not a password
PREVIOUS_RECORD_NAME = "codequal-release-previous"
PREVIOUS_RECORD_SECRET_NAME = "codequal-release-previous-secrets"  # noqa: S105 - a name
MANAGER = "codequal-installer"
_MANIFESTS_KEY = "manifests.json.gz"


def answers_digest(answers_json: str) -> str:
    return "sha256:" + hashlib.sha256(answers_json.encode("utf-8")).hexdigest()


def _pack(objects: Sequence[dict[str, Any]]) -> str:
    raw = json.dumps(list(objects), sort_keys=True, separators=(",", ":")).encode()
    return base64.b64encode(gzip.compress(raw, mtime=0)).decode("ascii")


def _unpack(text: str) -> list[dict[str, Any]]:
    data = json.loads(gzip.decompress(base64.b64decode(text)))
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


@dataclass
class ReleaseRecord:
    """A release as recorded in the cluster."""

    version: str
    answers_digest: str
    objects_digest: str
    objects: list[ObjectRef]
    installed_at: str = ""
    installer_version: str = ""
    manifests: list[dict[str, Any]] = field(default_factory=list, repr=False)
    # True: this installer created the namespace; None: a record written before it said so.
    namespace_created: bool | None = None
    # Further keys of the ConfigMap's data (the previous record's upgrade details).
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def object_set(self) -> set[ObjectRef]:
        return set(self.objects)

    def manifest_objects(self) -> list[ManifestObject]:
        """The recorded objects in their apply order (those that could be read back)."""
        by_ref = {ObjectRef.of(m): m for m in self.manifests}
        return [ManifestObject(by_ref[r]) for r in self.objects if r in by_ref]

    def to_summary(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "answers_digest": self.answers_digest,
            "objects_digest": self.objects_digest,
            "installed_at": self.installed_at,
            "installer_version": self.installer_version,
            "namespace_created": self.namespace_created,
            "objects": [r.to_dict() for r in self.objects],
        }


_KNOWN_KEYS = frozenset(
    (
        "version",
        "answers-digest",
        "objects-digest",
        "objects",
        "installed-at",
        "installer-version",
        "namespace-created",
    )
)


def read_record(
    cluster: Cluster,
    namespace: str,
    *,
    name: str = RECORD_NAME,
    secret_name: str = RECORD_SECRET_NAME,
) -> ReleaseRecord | None:
    """The recorded release in ``namespace``; None when nothing was installed there.

    ``name`` and ``secret_name`` read the copy an upgrade keeps
    (:data:`PREVIOUS_RECORD_NAME`, :data:`PREVIOUS_RECORD_SECRET_NAME`).
    """
    config = cluster.get(ObjectRef("v1", "ConfigMap", name, namespace))
    if config is None:
        return None
    data = config.get("data") or {}
    binary = config.get("binaryData") or {}
    try:
        refs = [ObjectRef.from_dict(r) for r in json.loads(data.get("objects", "[]"))]
        manifests = _unpack(binary[_MANIFESTS_KEY]) if _MANIFESTS_KEY in binary else []
    except (ValueError, KeyError, TypeError, OSError):
        refs, manifests = [], []
    secret = cluster.get(ObjectRef("v1", "Secret", secret_name, namespace))
    if secret is not None and _MANIFESTS_KEY in (secret.get("data") or {}):
        try:
            inner = base64.b64decode(secret["data"][_MANIFESTS_KEY]).decode("ascii")
            manifests += _unpack(inner)
        except (ValueError, OSError):
            pass
    return ReleaseRecord(
        version=str(data.get("version", "")),
        answers_digest=str(data.get("answers-digest", "")),
        objects_digest=str(data.get("objects-digest", "")),
        objects=refs,
        installed_at=str(data.get("installed-at", "")),
        installer_version=str(data.get("installer-version", "")),
        manifests=manifests,
        namespace_created={"true": True, "false": False}.get(str(data.get("namespace-created"))),
        extra={str(k): str(v) for k, v in data.items() if k not in _KNOWN_KEYS},
    )


def namespace_created_by_installer(namespace: dict[str, Any] | None) -> bool:
    """A guess from the live namespace alone, for records that do not say it.

    A namespace somebody made first (``kubectl create namespace``, a GitOps tool) carries
    that creator's field manager; one this installer created by server-side apply has only
    ``codequal-installer`` (and the API server's own ``kube-apiserver``, which labels every
    namespace with its name).
    """
    if namespace is None:
        return False
    entries = (namespace.get("metadata") or {}).get("managedFields") or []
    managers = {m.get("manager") for m in entries} - {"kube-apiserver"}
    return managers == {MANAGER}


def namespace_created(
    previous: ReleaseRecord | None, created_now: bool | None, live: dict[str, Any] | None
) -> bool:
    """What the record says about the namespace.

    ``created_now``: this run's apply created it (True), found it there (False), or did not
    apply (None: a resumed run whose containers step was already done). In that order: made
    now; what the previous record said; not made by a first install that found it there;
    else (an older record, a resumed run) the guess from the live namespace's field managers.
    """
    if created_now:
        return True
    if previous is not None and previous.namespace_created is not None:
        return previous.namespace_created
    if previous is None and created_now is False:
        return False
    return namespace_created_by_installer(live)


def record_objects(
    namespace: str,
    version: str,
    answers_digest_value: str,
    objects_digest: str,
    applied: Iterable[ManifestObject],
    *,
    namespace_created: bool | None = None,
    name: str = RECORD_NAME,
    secret_name: str = RECORD_SECRET_NAME,
    extra: dict[str, str] | None = None,
    installed_at: str | None = None,
) -> list[ManifestObject]:
    """The ConfigMap and Secret that record ``applied`` as release ``version``."""
    applied = list(applied)
    labels = {
        NAME_LABEL: "codequal",
        "app.kubernetes.io/instance": "codequal",
        "app.kubernetes.io/part-of": "codequal",
        "app.kubernetes.io/component": "release-record",
        MANAGED_BY_LABEL: MANAGER,
    }
    public = [i.obj for i in applied if not i.holds_secrets]
    secret = [i.obj for i in applied if i.holds_secrets]
    if installed_at is None:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        installed_at = now.replace("+00:00", "Z")
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {
            **(extra or {}),
            "version": version,
            "answers-digest": answers_digest_value,
            "objects-digest": objects_digest,
            "objects": json.dumps([i.ref.to_dict() for i in applied], separators=(",", ":")),
            "installed-at": installed_at,
            "installer-version": __version__,
            **(
                {"namespace-created": "true" if namespace_created else "false"}
                if namespace_created is not None
                else {}
            ),
        },
        "binaryData": {_MANIFESTS_KEY: _pack(public)},
    }
    secret_obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret_name, "namespace": namespace, "labels": labels},
        "type": "Opaque",
        "data": {_MANIFESTS_KEY: base64.b64encode(_pack(secret).encode("ascii")).decode("ascii")},
    }
    return [ManifestObject(secret_obj), ManifestObject(config_map)]
