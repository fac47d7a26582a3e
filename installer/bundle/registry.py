"""Pushing a bundle's images to a registry (``registry.mirror``) over the HTTP API v2.

For each image: the config and every layer are blobs. A blob the registry has already is
skipped (``HEAD``); one pushed to another repository in this run is mounted; the rest are
uploaded, in one ``PUT`` when small and in ``PATCH`` chunks when large. Then the manifest
(schema 2, the same bytes whose digest the bundle recorded) is ``PUT`` by tag, so the image
can be pulled by that digest. TLS is verified by default against the system CAs or the
given corporate CA file; ``insecure`` allows plain HTTP and unverified certificates.
Connection failures and 5xx/429 answers are retried with back-off, each upload from its start.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from installer.bundle.format import ImageInfo
from installer.bundle.images import MANIFEST_V2, registry_manifest
from installer.bundle.progress import ProgressCallback, ProgressMeter
from installer.errors import InstallerError, UsageError

CHUNK_SIZE = 32 << 20  # blobs larger than this go up in PATCH chunks of this size
READ_SIZE = 1 << 20
RETRIES = 4
DOCKER_HUB = "docker.io"


class RegistryError(InstallerError):
    """The registry refused or failed a request (after retries)."""


def normalize_reference(reference: str) -> str:
    """A reference the way Docker reads it: ``domain/path:tag`` (``docker.io/library/`` added)."""
    name, at, digest = reference.partition("@")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = DOCKER_HUB, name
        if "/" not in path:
            path = f"library/{path}"
    last = path.rsplit("/", 1)[-1]
    if ":" not in last and not at:
        path += ":latest"
    return f"{domain}/{path}{at}{digest}"


def split_normalized(reference: str) -> tuple[str, str, str]:
    """``(domain, repository path, tag)`` of a tagged reference."""
    normalized = normalize_reference(reference.partition("@")[0])
    domain, _, rest = normalized.partition("/")
    path, _, tag = rest.rpartition(":")
    return domain, path, tag


def mirror_reference(reference: str, mirror: str) -> str:
    """The reference on the mirror: its registry replaced by ``mirror`` (host[:port][/path])."""
    _, path, tag = split_normalized(reference)
    return f"{mirror.rstrip('/')}/{path}:{tag}"


@dataclass(frozen=True)
class RegistryTarget:
    """The mirror to push to, from the answer file's ``registry`` section and secrets."""

    mirror: str
    insecure: bool = False
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return self.mirror.split("/", 1)[0]

    @property
    def path_prefix(self) -> str:
        _, _, prefix = self.mirror.partition("/")
        return prefix.strip("/")


@dataclass
class PushedImage:
    """One tag pushed: where it is now, its manifest digest, and what was transferred."""

    source: str
    reference: str  # mirror reference with tag
    digest: str
    uploaded_blobs: int = 0
    skipped_blobs: int = 0
    mounted_blobs: int = 0
    manifest_skipped: bool = False

    @property
    def pinned(self) -> str:
        """``mirror/path@sha256:...``: what Kubernetes manifests should reference."""
        return f"{self.reference.rpartition(':')[0]}@{self.digest}"


class RegistryClient:
    """A small Registry HTTP API v2 client over ``requests``."""

    def __init__(
        self,
        target: RegistryTarget,
        *,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 300,
    ) -> None:
        import requests

        self.target = target
        self._sleep = sleep
        self._timeout = timeout
        self.session = requests.Session()
        if target.ca_file is not None:
            if not Path(target.ca_file).is_file():
                raise UsageError(f"registry.ca_file {target.ca_file} does not exist")
            self.session.verify = str(target.ca_file)
        if target.insecure:
            import warnings

            import urllib3

            self.session.verify = False
            # The operator chose this (registry.insecure); one warning per request is noise.
            warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        if target.username:
            self.session.auth = (target.username, target.password or "")
        self.base = self._probe_base()

    def close(self) -> None:
        self.session.close()

    def _probe_base(self) -> str:
        """https, or (``insecure`` only) http when the host does not speak TLS."""
        import requests

        schemes = ["https", "http"] if self.target.insecure else ["https"]
        last: Exception | None = None
        for scheme in schemes:
            base = f"{scheme}://{self.target.host}"
            try:
                response = self._request("GET", f"{base}/v2/", retries=1)
            except requests.exceptions.SSLError as e:
                last = e
                if self.target.insecure:
                    continue
                raise RegistryError(
                    f"TLS verification of {self.target.host} failed: {_first_line(e)}",
                    hint="set registry.ca_file to the PEM of the CA that signed the mirror's "
                    "certificate (or, for a test mirror, registry.insecure: true)",
                ) from e
            except requests.exceptions.ConnectionError as e:
                last = e
                continue
            if response.status_code in (200, 401):
                if response.status_code == 401 and not self.target.username:
                    raise RegistryError(
                        f"{self.target.host} asks for credentials",
                        hint="set registry.username and registry_password in the secrets file",
                    )
                return base
            last = RegistryError(f"GET {base}/v2/ answered {response.status_code}")
        raise RegistryError(
            f"cannot reach the registry at {self.target.host}: {_first_line(last)}",
            hint="check registry.mirror, and that the registry runs and is reachable from here",
        )

    def _request(self, method: str, url: str, *, retries: int = RETRIES, **kwargs: Any) -> Any:
        import requests

        kwargs.setdefault("timeout", self._timeout)
        # Per request: requests lets REQUESTS_CA_BUNDLE override a session's verify.
        kwargs.setdefault("verify", self.session.verify)
        delay = 1.0
        for attempt in range(1, retries + 1):
            try:
                response = self.session.request(method, url, **kwargs)
            except requests.exceptions.SSLError:
                raise
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout):
                if attempt == retries:
                    raise
            else:
                if response.status_code < 500 and response.status_code != 429:
                    return response
                if attempt == retries:
                    return response
            self._sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def repository_url(self, repository: str) -> str:
        return f"{self.base}/v2/{repository}"

    def has_blob(self, repository: str, digest: str) -> bool:
        response = self._request("HEAD", f"{self.repository_url(repository)}/blobs/{digest}")
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self._error(f"HEAD blob {digest} in {repository}", response)

    def manifest_digest(self, repository: str, tag: str) -> str | None:
        response = self._request(
            "HEAD",
            f"{self.repository_url(repository)}/manifests/{tag}",
            headers={"Accept": MANIFEST_V2},
        )
        if response.status_code == 200:
            found = response.headers.get("Docker-Content-Digest")
            return str(found) if found else None
        return None

    def mount_blob(self, repository: str, digest: str, source_repository: str) -> str | None:
        """Cross-repository mount; ``None`` when done, else the upload URL the registry gave."""
        response = self._request(
            "POST",
            f"{self.repository_url(repository)}/blobs/uploads/",
            params={"mount": digest, "from": source_repository},
        )
        if response.status_code == 201:
            return None
        if response.status_code == 202:
            return self._location(response)
        raise self._error(f"mount blob {digest} into {repository}", response)

    def upload_blob(
        self,
        *,
        repository: str,
        digest: str,
        path: Path,
        size: int,
        meter: ProgressMeter,
        upload_url: str | None = None,
    ) -> None:
        """Upload ``path`` as blob ``digest``; a failed attempt starts over from a new upload."""
        import requests

        delay = 1.0
        for attempt in range(1, RETRIES + 1):
            done_before = meter.done
            try:
                self._upload_once(
                    repository=repository,
                    digest=digest,
                    path=path,
                    size=size,
                    meter=meter,
                    upload_url=upload_url,
                )
                return
            except (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                _RetryableUpload,
            ) as e:
                meter.done = done_before
                upload_url = None
                if attempt == RETRIES:
                    raise RegistryError(
                        f"uploading {digest} to {repository} failed {RETRIES} times: "
                        f"{_first_line(e)}"
                    ) from e
                self._sleep(delay)
                delay *= 2

    def _upload_once(
        self,
        *,
        repository: str,
        digest: str,
        path: Path,
        size: int,
        meter: ProgressMeter,
        upload_url: str | None,
    ) -> None:
        if upload_url is None:
            response = self._request("POST", f"{self.repository_url(repository)}/blobs/uploads/")
            if response.status_code != 202:
                raise self._error(f"start upload of {digest} to {repository}", response)
            upload_url = self._location(response)
        with open(path, "rb") as f:
            if size <= CHUNK_SIZE:
                body = _ReadCounter(f, meter, size)
                response = self.session.put(
                    upload_url,
                    params={"digest": digest},
                    data=body,
                    headers={"Content-Type": "application/octet-stream"},
                    timeout=self._timeout,
                    verify=self.session.verify,
                )
                self._check_put(response, digest, repository)
                return
            offset = 0
            while offset < size:
                length = min(CHUNK_SIZE, size - offset)
                chunk = f.read(length)
                response = self.session.patch(
                    upload_url,
                    data=chunk,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{offset}-{offset + length - 1}",
                        "Content-Length": str(length),
                    },
                    timeout=self._timeout,
                    verify=self.session.verify,
                )
                if response.status_code >= 500 or response.status_code == 429:
                    raise _RetryableUpload(f"PATCH answered {response.status_code}")
                if response.status_code != 202:
                    raise self._error(f"upload chunk of {digest} to {repository}", response)
                upload_url = self._location(response)
                offset += length
                meter.advance(length)
        response = self.session.put(
            upload_url,
            params={"digest": digest},
            headers={"Content-Length": "0"},
            timeout=self._timeout,
            verify=self.session.verify,
        )
        self._check_put(response, digest, repository)

    def _check_put(self, response: Any, digest: str, repository: str) -> None:
        if response.status_code >= 500 or response.status_code == 429:
            raise _RetryableUpload(f"PUT answered {response.status_code}")
        if response.status_code != 201:
            raise self._error(f"finish upload of {digest} to {repository}", response)

    def put_manifest(self, repository: str, tag: str, manifest: bytes) -> str:
        response = self._request(
            "PUT",
            f"{self.repository_url(repository)}/manifests/{tag}",
            data=manifest,
            headers={"Content-Type": MANIFEST_V2},
        )
        if response.status_code != 201:
            raise self._error(f"PUT manifest {repository}:{tag}", response)
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        answered = response.headers.get("Docker-Content-Digest", digest)
        if answered != digest:
            raise RegistryError(
                f"the registry stored {repository}:{tag} as {answered}, expected {digest}"
            )
        return digest

    def _location(self, response: Any) -> str:
        from urllib.parse import urljoin

        location = response.headers.get("Location")
        if not location:
            raise self._error("upload without a Location header", response)
        return str(urljoin(self.base + "/", location))

    def _error(self, what: str, response: Any) -> RegistryError:
        body = (response.text or "")[:300].strip()
        hint = None
        tries = ""
        if response.status_code in (401, 403):
            hint = "check registry.username and registry_password (it needs push rights)"
        elif response.status_code >= 500 or response.status_code == 429:
            # Only _request's answers get here with these codes: it tried RETRIES times.
            tries = f" (tried {RETRIES} times)"
            hint = "the registry keeps failing: check its log, its storage and its free disk"
        return RegistryError(
            f"{what}: the registry answered {response.status_code}{tries} {body}".rstrip(),
            hint=hint,
        )


class _RetryableUpload(Exception):
    pass


class _ReadCounter:
    """File wrapper for a streaming upload body that reports progress as it is read."""

    def __init__(self, f: Any, meter: ProgressMeter, size: int) -> None:
        self._f = f
        self._meter = meter
        self._size = size

    def __len__(self) -> int:
        # requests sends Content-Length from this instead of a chunked body.
        return self._size

    def read(self, size: int = READ_SIZE) -> bytes:
        data: bytes = self._f.read(size if size and size > 0 else READ_SIZE)
        self._meter.advance(len(data))
        return data

    def __iter__(self) -> Any:
        while chunk := self.read(READ_SIZE):
            yield chunk


def _first_line(error: BaseException | None) -> str:
    return str(error).strip().splitlines()[0] if error and str(error).strip() else repr(error)


def push_images(
    target: RegistryTarget,
    images_root: Path,
    images: list[ImageInfo],
    *,
    progress: ProgressCallback | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[PushedImage]:
    """Push every tag of every image under ``images_root`` (the bundle's extracted root).

    ``images`` come from the verified metadata: each blob's path, digest and size are
    known, so nothing is hashed again.
    """
    client = RegistryClient(target, sleep=sleep)
    try:
        blob_sizes = {
            path: layer.size
            for image in images
            for path, layer in zip(image.layer_paths, image.layers, strict=True)
        }
        total = sum(blob_sizes.values()) + sum(image.config_size for image in images)
        meter = ProgressMeter("push", progress, total)
        pushed_to: dict[str, str] = {}  # digest -> a repository that has it
        results: list[PushedImage] = []
        for image in images:
            blobs = [(image.id, image.config, image.config_size)] + [
                (layer.digest, path, layer.size)
                for layer, path in zip(image.layers, image.layer_paths, strict=True)
            ]
            manifest = registry_manifest(image.id, image.config_size, image.layers)
            for source in image.references:
                destination = mirror_reference(source, target.mirror)
                repository, _, tag = destination.partition("/")[2].rpartition(":")
                result = PushedImage(source, destination, image.manifest_digest)
                if client.manifest_digest(repository, tag) == image.manifest_digest:
                    result.manifest_skipped = True
                    result.skipped_blobs = len(blobs)
                    meter.advance(sum(size for _, _, size in blobs))
                    results.append(result)
                    continue
                for digest, path, size in blobs:
                    if client.has_blob(repository, digest):
                        result.skipped_blobs += 1
                        meter.advance(size)
                        pushed_to.setdefault(digest, repository)
                        continue
                    upload_url = None
                    if digest in pushed_to and pushed_to[digest] != repository:
                        upload_url = client.mount_blob(repository, digest, pushed_to[digest])
                        if upload_url is None:
                            result.mounted_blobs += 1
                            meter.advance(size)
                            continue
                    client.upload_blob(
                        repository=repository,
                        digest=digest,
                        path=images_root / path,
                        size=size,
                        meter=meter,
                        upload_url=upload_url,
                    )
                    result.uploaded_blobs += 1
                    pushed_to[digest] = repository
                result.digest = client.put_manifest(repository, tag, manifest)
                results.append(result)
        meter.finish()
        return results
    finally:
        client.close()
