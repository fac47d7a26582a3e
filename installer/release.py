"""Release manifests: which services a CodeQual release runs, from which images.

One YAML file per release (``installer/releases/<version>.yaml``), shipped with the
installer and inside every offline bundle. It names each service's image (with its digest
where known), ports, health check, volumes, the public routes nginx serves, and the
migration command. The answer file's ``release.images`` overrides images per service.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from installer.answers import AnswerFile, ServiceName
from installer.errors import AnswerFileError, BundleIntegrityError, UsageError

RELEASES_PACKAGE = "installer.releases"


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HealthCheck(Manifest):
    """How the engine (Docker or the kubelet) decides a container is healthy."""

    test: list[str] = Field(
        description="Command run inside the container, Compose form (CMD / CMD-SHELL first)."
    )
    http_path: str | None = Field(
        None, description="HTTP path that answers 200 when healthy (Kubernetes probes)."
    )
    interval_seconds: int = Field(10, ge=1)
    timeout_seconds: int = Field(5, ge=1)
    retries: int = Field(5, ge=1)
    start_period_seconds: int = Field(10, ge=0)


class Service(Manifest):
    """One service of the release."""

    image: str = Field(description="Image reference, [registry/]name:tag.")
    digest: str | None = Field(
        None, pattern=r"^sha256:[a-f0-9]{64}$", description="Image digest, where known."
    )
    role: Literal["app", "proxy", "database", "monitoring"] = Field(
        description="What the service is for; decides which targets and options include it."
    )
    ports: list[int] = Field(default_factory=list, description="Container ports it listens on.")
    health: HealthCheck | None = None
    volumes: dict[str, str] = Field(
        default_factory=dict, description="Named volume -> mount path in the container."
    )
    command: list[str] | None = Field(None, description="Command, when not the image's own.")
    user: str | None = Field(None, description="uid[:gid] the container runs as.")

    @property
    def reference(self) -> str:
        """The image reference pinned by digest where the manifest knows it."""
        return f"{self.image.split('@')[0]}@{self.digest}" if self.digest else self.image


class Route(Manifest):
    """A public path that nginx (or the Ingress) sends to a service."""

    path: str = Field(pattern=r"^/[A-Za-z0-9/_.-]*$")
    service: ServiceName
    port: int
    health_path: str = Field(description="Path under this route that answers 200 when healthy.")


class Migration(Manifest):
    """How the database schema is brought up to date."""

    service: ServiceName = Field(description="Service whose image runs the migration.")
    command: list[str] = Field(description="Command that migrates; idempotent.")
    schema_version: str = Field(description="Schema version this release migrates to.")


class UpgradeRules(Manifest):
    """Which installed releases this release may be installed over (``upgrade``).

    ``from`` is the oldest release it upgrades from (``">=1.0.0"``; clauses joined with
    commas); ``stops`` are releases an upgrade must pass through when it crosses them.
    ``installer.upgrade_path`` enforces both.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: str | None = Field(
        None,
        alias="from",
        pattern=r"^\s*(>=|>|<=|<|==)?\s*[0-9][0-9A-Za-z.+-]*(\s*,\s*(>=|>|<=|<|==)?\s*"
        r"[0-9][0-9A-Za-z.+-]*)*\s*$",
        description="Installed releases this one upgrades from, e.g. '>=1.0.0'.",
    )
    stops: list[str] = Field(
        default_factory=list,
        description="Required stops: an upgrade that crosses one must be installed there first.",
    )


class ReleaseManifest(Manifest):
    """A CodeQual release."""

    name: str = "codequal"
    version: str
    services: dict[ServiceName, Service]
    routes: list[Route]
    migration: Migration
    upgrade: UpgradeRules = Field(
        default_factory=UpgradeRules,
        description="Upgrade path rules: the oldest release it upgrades from, required stops.",
    )

    def image_for(self, service: ServiceName, answers: AnswerFile | None = None) -> str:
        """The image reference to run: the answer file's override, else the manifest's."""
        if answers is not None and service in answers.release.images:
            return answers.release.images[service]
        return self.services[service].reference

    def images(self, answers: AnswerFile | None = None) -> dict[str, str]:
        """Every service's image reference, overrides applied."""
        return {name: self.image_for(name, answers) for name in self.services}


def _extra_release_dirs() -> list[Path]:
    """Directories named by ``CODEQUAL_RELEASES_DIR`` (``:``-separated), searched first.

    Lets an operator (or the test suite) offer releases that the installer does not ship.
    """
    import os

    value = os.environ.get("CODEQUAL_RELEASES_DIR", "")
    return [Path(p) for p in value.split(os.pathsep) if p]


def bundled_release_names() -> list[str]:
    """Versions of the releases shipped inside the installer."""
    names = [
        p.name.removesuffix(".yaml")
        for p in resources.files(RELEASES_PACKAGE).iterdir()
        if p.name.endswith(".yaml")
    ]
    return sorted(names, key=_version_key)


def version_key(version: str) -> tuple[int, ...]:
    """The numeric core of a version (``1.5.0-test`` -> ``(1, 5, 0)``), for ordering."""
    return _version_key(version)


def _version_key(version: str) -> tuple[int, ...]:
    core = version.split("-", maxsplit=1)[0].split("+", maxsplit=1)[0]
    return tuple(int(part) if part.isdigit() else -1 for part in core.split("."))


def _cache_path(text: str) -> Path:
    """Where the parsed form of a manifest with this exact text is kept.

    Parsing YAML with positions costs more than everything else ``plan`` does, so a
    manifest is parsed once per content (and installer version) and its validated form
    kept as JSON in the user's cache directory, the way Python keeps bytecode.
    """
    import hashlib
    import os

    from installer import __version__

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    digest = hashlib.sha256(f"{__version__}\0{text}".encode()).hexdigest()
    return Path(base) / "codequal-installer" / "releases" / f"{digest}.json"


def parse_release(text: str, source: str) -> ReleaseManifest:
    from pydantic import ValidationError

    cache = _cache_path(text)
    try:
        return ReleaseManifest.model_validate_json(cache.read_bytes())
    except (OSError, ValidationError):
        pass  # not cached yet, or unreadable: parse the YAML

    from installer.validation import problems_from_error
    from installer.yamlsource import parse_yaml

    document = parse_yaml(text, source)
    try:
        manifest = ReleaseManifest.model_validate(document.data)
    except ValidationError as e:
        problems = problems_from_error(e, document, ReleaseManifest)
        raise AnswerFileError(
            f"{source}: not a valid release manifest", problems=[str(p) for p in problems]
        ) from None
    _write_cache(cache, manifest.model_dump_json().encode())
    return manifest


def _write_cache(path: Path, content: bytes) -> None:
    import contextlib

    from installer.statedir import replace_file

    # A read-only home or a full disk only costs the next run a parse.
    with contextlib.suppress(OSError):
        replace_file(path, content, 0o644)


def load_release(name_or_path: str | None = None) -> ReleaseManifest:
    """A release by version (shipped with the installer) or by manifest path.

    ``None`` is the installer's own release (the newest shipped manifest).
    """
    if name_or_path is not None and (
        name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path
    ):
        path = Path(name_or_path)
        try:
            return parse_release(path.read_text(encoding="utf-8"), str(path))
        except OSError as e:
            raise UsageError(
                f"cannot read release manifest {path}: {e.strerror or type(e).__name__}"
            ) from e
    if name_or_path is not None:
        for directory in _extra_release_dirs():
            candidate = directory / f"{name_or_path}.yaml"
            if candidate.is_file():
                return load_release(str(candidate))
    names = bundled_release_names()
    name = name_or_path or names[-1]
    if name not in names:
        raise UsageError(
            f"unknown release {name!r}", hint=f"releases shipped here: {', '.join(names)}"
        )
    text = resources.files(RELEASES_PACKAGE).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return parse_release(text, f"release {name}")


def bundle_release(
    path: str | Path,
    *,
    version: str | None = None,
    key: Path | None = None,
    asked_by: str = "release.version in the answers",
) -> ReleaseManifest:
    """The release manifest the bundle carries: what an install from the bundle installs.

    It is the authority for ``apply --bundle``, ``airgap.bundle`` and ``upgrade --bundle``:
    the installer's own manifests are not consulted, so a bundle of a release this installer
    does not ship installs as it is. ``version`` (the answers' ``release.version``, or
    ``upgrade --to``, named by ``asked_by``) must match when given, else
    :class:`~installer.errors.UsageError` (exit 2) names both. With ``key``, the signature
    (which covers the manifest) must verify first
    (:class:`~installer.errors.BundleIntegrityError`, exit 4). Reads the tail only.
    """
    from installer.bundle.format import RELEASE_NAME
    from installer.bundle.reader import locate_bundle, read_index

    source = locate_bundle(path)
    index = read_index(source)
    index.check_signature(key)
    held = index.metadata.release_version
    if version is not None and version != held:
        raise UsageError(
            f"the bundle {source.display} holds release {held}, {asked_by} is {version}",
            hint=f"give the bundle of release {version}, or install {held} from this one",
        )
    text = index.release_text()
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        decoded = ""
    release = parse_release(decoded, f"{source.display}: {RELEASE_NAME}")
    if release.version != held:
        raise BundleIntegrityError(
            f"{source.display}: {RELEASE_NAME} is release {release.version}, the metadata "
            f"says {held}: the bundle was changed"
        )
    return release


def release_for(answers: AnswerFile) -> ReleaseManifest:
    """The release the answers ask for: the offline bundle's own when ``airgap.enabled``
    names one that is here (checked against ``release.version``), else by version."""
    bundle = answers.airgap.bundle if answers.airgap.enabled else None
    if bundle is not None and Path(bundle).exists():
        return bundle_release(bundle, version=answers.release.version)
    return load_release(answers.release.version)
