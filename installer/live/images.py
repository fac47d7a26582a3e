"""images: every image of the release is here, in the bundle given, or readable from its
registry (or the mirror).

For each image the install will run (the release's, overrides and mirror applied): present
in the local Docker Engine (Compose targets), or in the offline bundle, or its registry
answers ``/v2/`` over TLS with the configured CA and the exact reference's manifest is
readable with the credentials. A registry that cannot be reached is named with the cause
(DNS, TCP, TLS); a refused credential is 401, a missing reference 404.

On the Kubernetes targets the cluster's nodes pull, not this machine: a registry this
machine cannot reach is a warning there (the nodes may reach it), a 401 or 404 a failure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from installer.engine.pull_errors import HINT_UNREACHABLE
from installer.engine.registry import RegistryMirror
from installer.live.registry_access import RegistryPing, manifest, ping, registry_of
from installer.live.result import LiveInput, LiveResult, LiveStatus

NAME = "images"
T = TypeVar("T")


@dataclass(frozen=True)
class ImageVerdict:
    """Where one image comes from, or why it cannot come from anywhere."""

    reference: str
    source: str | None  # "local" | "bundle" | the registry it is readable from
    registry: str
    problem: str | None = None  # "DNS: ...", "401 ...", "404 ..."
    kind: str | None = None  # DNS | TCP | TLS | proxy | 401 | 404 | HTTP


def release_images(inputs: LiveInput) -> dict[str, str]:
    """The references the install will run (the target's services, overrides and mirror
    applied), each with the release's own reference it stands for."""
    from installer.render.context import _service_names  # the render's own choice
    from installer.render.images import mirrored

    answers = inputs.answers
    found: dict[str, str] = {}
    for name in _service_names(answers, inputs.release):
        original = inputs.release.image_for(name, answers)  # type: ignore[arg-type]
        found.setdefault(mirrored(original, answers.registry.mirror), original)
    return dict(sorted(found.items()))


def registry_access(inputs: LiveInput) -> RegistryMirror:
    registry = inputs.answers.registry
    return RegistryMirror(
        mirror=registry.mirror,
        username=registry.username,
        password=inputs.secret("registry_password"),
        insecure=registry.insecure,
        ca_file=registry.ca_file,
    )


def _local_images(references: list[str], timeout: float) -> tuple[set[str], str | None]:
    """The references the local Docker Engine has, or why it could not be asked."""
    from installer.engine.docker import DockerEngine
    from installer.errors import InstallerError

    engine = DockerEngine(timeout=max(1, int(timeout)))
    try:
        return {ref for ref in references if engine.image_id(ref) is not None}, None
    except InstallerError as e:
        return set(), e.message
    finally:
        engine.close()


def _bundle_images(path: str) -> tuple[set[str], str | None]:
    """Every reference the bundle holds (read from its index, not its body)."""
    from installer.bundle.reader import locate_bundle, read_index
    from installer.errors import InstallerError

    try:
        index = read_index(locate_bundle(path))
    except InstallerError as e:
        return set(), e.message
    except OSError as e:
        return set(), f"cannot read the bundle {path}: {e.strerror or type(e).__name__}"
    return {ref for image in index.metadata.images for ref in image.references}, None


def _in_bundle(reference: str, original: str, held: set[str]) -> bool:
    from installer.engine.images import ImageReference
    from installer.errors import UsageError

    def key(text: str) -> ImageReference | None:
        try:
            return ImageReference.parse(text).with_default_tag()
        except UsageError:
            return None

    wanted = {key(reference), key(original)} - {None}
    return any(key(ref) in wanted for ref in held)


def _each_at_once(items: list[str], ask: Callable[[str], T], timeout: float) -> dict[str, T]:
    """``ask(item)`` for every item, each in a daemon thread; what answered in time."""
    answers: dict[str, T] = {}

    def one(item: str) -> None:
        answers[item] = ask(item)

    threads = [threading.Thread(target=one, args=(item,), daemon=True) for item in items]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return dict(answers)


def check_images(inputs: LiveInput) -> LiveResult:
    """The images check (see the module text)."""
    answers = inputs.answers
    access = registry_access(inputs)
    originals = release_images(inputs)
    references = list(originals)
    notes: list[str] = []
    local: set[str] = set()
    if answers.is_compose:
        local, why = _local_images(references, inputs.timeout)
        if why:
            notes.append(f"local images not asked: {why}")
    bundle = inputs.bundle or answers.airgap.bundle
    held: set[str] = set()
    unreadable: str | None = None
    if bundle:
        held, unreadable = _bundle_images(bundle)
        if unreadable:
            notes.append(unreadable)
    verdicts: dict[str, ImageVerdict] = {}
    remote: list[str] = []
    for ref in references:
        registry = registry_of(ref, access)
        if ref in local:
            verdicts[ref] = ImageVerdict(ref, "local", registry)
        elif bundle and _in_bundle(ref, originals[ref], held):
            verdicts[ref] = ImageVerdict(ref, "bundle", registry)
        elif answers.airgap.enabled:
            verdicts[ref] = ImageVerdict(
                ref,
                None,
                registry,
                f"not in the offline bundle ({unreadable})"
                if unreadable
                else f"{ref} is not in the offline bundle (air-gapped: nothing is pulled)",
                "no-bundle" if unreadable else "bundle",
            )
        else:
            remote.append(ref)
    wait = inputs.timeout * 2 + 1
    pings = _each_at_once(
        sorted({registry_of(ref, access) for ref in remote}),
        lambda registry: ping(registry, access, environ=inputs.environ, timeout=inputs.timeout),
        wait,
    )
    answering = [ref for ref in remote if (p := pings.get(registry_of(ref, access))) and p.answers]
    manifests = _each_at_once(
        answering, lambda ref: manifest(ref, access, timeout=inputs.timeout), wait
    )
    for ref in remote:
        registry = registry_of(ref, access)
        answer = pings.get(registry)
        if answer is None:
            verdicts[ref] = ImageVerdict(ref, None, registry, "no answer in time", "TCP")
            continue
        if answer.failure is not None:
            verdicts[ref] = ImageVerdict(
                ref, None, registry, str(answer.failure), answer.failure.kind
            )
            continue
        found = manifests.get(ref)
        if found is None:
            verdicts[ref] = ImageVerdict(ref, None, registry, "no answer in time", "TCP")
        elif found.presence == "present":
            verdicts[ref] = ImageVerdict(ref, registry, registry)
        elif found.presence == "missing":
            verdicts[ref] = ImageVerdict(
                ref, None, registry, f"404: {ref} is not in {registry}", "404"
            )
        elif found.presence == "unauthorized":
            code = str(found.status or 401)
            user = access.username if registry == access.mirror else None
            who = f"as {user}" if user else "anonymously"
            verdicts[ref] = ImageVerdict(
                ref,
                None,
                registry,
                f"{code}: {registry} refused to show {ref} {who} (credentials)",
                code,
            )
        elif found.failure is not None:
            verdicts[ref] = ImageVerdict(
                ref, None, registry, str(found.failure), found.failure.kind
            )
        else:
            verdicts[ref] = ImageVerdict(
                ref, None, registry, f"{registry} answered HTTP {found.status} for {ref}", "HTTP"
            )
    return _verdict(inputs, references, verdicts, pings, notes)


def _verdict(
    inputs: LiveInput,
    references: list[str],
    verdicts: dict[str, ImageVerdict],
    pings: dict[str, RegistryPing],
    notes: list[str],
) -> LiveResult:
    answers = inputs.answers
    ok = [v for v in verdicts.values() if v.source is not None]
    bad = [verdicts[ref] for ref in references if verdicts[ref].source is None]
    sources: dict[str, int] = {}
    for verdict in ok:
        label = {"local": "here", "bundle": "in the bundle"}.get(
            verdict.source or "", f"in {verdict.source}"
        )
        sources[label] = sources.get(label, 0) + 1
    where = ", ".join(f"{count} {label}" for label, count in sources.items())
    details = {
        "images": {
            ref: {
                "source": verdicts[ref].source,
                "registry": verdicts[ref].registry,
                "problem": verdicts[ref].problem,
                "cause": verdicts[ref].kind,
            }
            for ref in references
        },
        "proxies": {r: p.proxy for r, p in pings.items()},
        "notes": notes,
    }
    required = "each image here, in the bundle, or readable from its registry"
    if not bad:
        measured = f"{len(references)} of {len(references)} images available: {where}"
        return LiveResult(NAME, "pass", measured, required, details=details)
    # One line per registry that could not be reached or refused the credentials, one per
    # image it lacks.
    problems: list[str] = []
    refused: dict[str, list[ImageVerdict]] = {}
    seen_registries: set[str] = set()
    for verdict in bad:
        if verdict.kind in ("DNS", "TCP", "TLS", "proxy"):
            if verdict.registry not in seen_registries:
                seen_registries.add(verdict.registry)
                problems.append(f"could not reach {verdict.registry} ({verdict.problem})")
        elif verdict.kind in ("401", "403"):
            refused.setdefault(verdict.registry, []).append(verdict)
        else:
            problems.append(verdict.problem or verdict.reference)
    for registry, denied in refused.items():
        if len(denied) == 1:
            problems.append(denied[0].problem or registry)
        else:
            first = denied[0].problem or ""
            problems.append(f"{first} and {len(denied) - 1} more images")
    problems = list(dict.fromkeys(problems))
    measured = f"{len(bad)} of {len(references)} images unavailable: " + "; ".join(problems)
    kinds = {v.kind for v in bad}
    if kinds & {"DNS", "TCP", "proxy"}:
        hint = HINT_UNREACHABLE
    elif "TLS" in kinds:
        hint = "set registry.ca_file to the CA that signed the registry's certificate"
    elif kinds & {"401", "403"}:
        hint = "check registry.username and registry_password (secrets file)"
    elif "no-bundle" in kinds:
        hint = "give the offline bundle's path (apply --bundle FILE, or airgap.bundle)"
    elif "bundle" in kinds:
        hint = "use the bundle made for this release (bundle create), or drop release.images"
    else:
        hint = "push the missing images to the mirror (bundle push) or correct release.images"
    unreachable_only = kinds <= {"DNS", "TCP", "TLS", "proxy"}
    status: LiveStatus = "warn" if (not answers.is_compose and unreachable_only) else "fail"
    if status == "warn":
        hint = "this machine cannot reach the registry; the cluster's nodes pull, check they can"
    return LiveResult(NAME, status, measured, required, hint=hint, details=details)
