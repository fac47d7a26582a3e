"""A registry over the Registry HTTP API v2: the one client the installer has.

``bundle push`` (and the Kubernetes target's air-gapped images step) uploads blobs and
manifests through it; the Kubernetes target's images step asks it whether each manifest is
there. What it does for both:

* **TLS** verified against the system CAs, or ``registry.ca_file`` for the mirror;
  ``registry.insecure`` allows unverified certificates and plain HTTP (tried after HTTPS).
* **Authentication** as registries ask for it: the mirror's user and password as HTTP
  basic, and the token flow (a ``Bearer`` challenge: a token from the realm for the
  repository's scope, anonymous when no user is set), tokens kept per scope.
* **Retries** with back-off (1 s, doubling) for connection failures and 5xx/429 answers,
  ``RETRIES`` attempts in all; a failed upload starts over from a new upload.
* **Errors** in operator language: :class:`RegistryUnreachable` (exit 3) when the registry
  cannot be reached after the retries — it names the registry and says to make it
  reachable and run the same command again, which picks up where it stopped since blobs
  already there are skipped — and :class:`RegistryError` for what it refused.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests
import requests.auth
import urllib3

from installer.errors import ExitCode, InstallerError, PrerequisiteError, UsageError, first_line

RETRIES = 4
CHUNK_SIZE = 32 << 20  # blobs larger than this go up in PATCH chunks of this size
READ_SIZE = 1 << 20
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        MANIFEST_V2,
    )
)
_UNREACHABLE_HINT = (
    "make the registry reachable from here (is it running? check registry.mirror, the "
    "network and any proxy), then run the same command again: it goes on where it stopped"
)

ByteCallback = Callable[[int], None]
"""Told how many bytes of a blob went up (negative when a failed attempt is undone)."""


class RegistryError(InstallerError):
    """The registry refused or failed a request (after retries); ``status`` is its answer."""

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None):
        super().__init__(message, hint=hint)
        self.status = status


class RegistryUnreachable(RegistryError, PrerequisiteError):
    """The registry cannot be reached (refused, reset, timed out), after the retries."""

    exit_code = ExitCode.PREREQUISITES


@dataclass(frozen=True)
class RegistryMirror:
    """The answer file's ``registry`` section: the mirror and how to talk to it.

    ``mirror`` is ``host[:port][/path]``; other registries are asked anonymously over
    verified HTTPS.
    """

    mirror: str | None = None
    insecure: bool = False
    ca_file: Path | str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return (self.mirror or "").strip().split("/", 1)[0]

    @property
    def path_prefix(self) -> str:
        _, _, prefix = (self.mirror or "").strip().partition("/")
        return prefix.strip("/")

    def endpoint(self, host: str | None = None) -> RegistryEndpoint:
        """How to reach ``host`` (default: the mirror): the mirror's settings apply to it only."""
        host = host or self.host
        if self.mirror and host == self.host:
            return RegistryEndpoint(
                host,
                insecure=self.insecure,
                ca_file=Path(self.ca_file) if self.ca_file else None,
                username=self.username or None,
                password=self.password,
            )
        return RegistryEndpoint(host)


@dataclass(frozen=True)
class RegistryEndpoint:
    """One registry's API host (``host[:port]``) and the TLS and credentials to use."""

    host: str
    insecure: bool = False
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    plain_http: bool = False
    """Plain HTTP allowed when the host does not speak TLS, certificates still verified when
    it does (the Docker Engine's rule for a registry on the loopback network)."""


def _tls_failed(host: str, error: BaseException) -> RegistryError:
    return RegistryError(
        f"TLS verification of {host} failed: {first_line(error)}",
        hint="set registry.ca_file to the PEM of the CA that signed the mirror's "
        "certificate (or, for a test mirror, registry.insecure: true)",
    )


class RegistryClient:
    """A Registry HTTP API v2 client over ``requests`` for one registry."""

    def __init__(
        self,
        endpoint: RegistryEndpoint,
        *,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 300,
        retries: int = RETRIES,
    ) -> None:
        self.endpoint = endpoint
        self.host = endpoint.host
        self.retries = retries
        self._sleep = sleep
        self._timeout = timeout
        self._tokens: dict[str, str] = {}
        self.session = requests.Session()
        if endpoint.ca_file is not None:
            if not endpoint.ca_file.is_file():
                raise UsageError(f"registry.ca_file {endpoint.ca_file} does not exist")
            self.session.verify = str(endpoint.ca_file)
        if endpoint.insecure:
            import warnings

            self.session.verify = False
            # The operator chose this (registry.insecure); one warning per request is noise.
            warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        if endpoint.username:
            self.session.auth = (endpoint.username, endpoint.password or "")
        try:
            self.base = self._probe_base()
        except BaseException:
            self.session.close()
            raise

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    # -- requests, retries, authentication -----------------------------------------------

    def _probe_base(self) -> str:
        """https, or (``insecure`` or ``plain_http``) http when the host does not speak TLS."""
        plain = self.endpoint.insecure or self.endpoint.plain_http
        schemes = ["https", "http"] if plain else ["https"]
        last: BaseException | None = None
        tls_failure: requests.exceptions.SSLError | None = None
        for scheme in schemes:
            base = f"{scheme}://{self.host}"
            try:
                response = self._send("GET", f"{base}/v2/", scope=None, retries=1)
            except requests.exceptions.SSLError as e:
                last = tls_failure = e
                if plain:
                    continue  # plain HTTP next; an untrusted certificate is reported below
                raise _tls_failed(self.host, e) from e
            except RegistryUnreachable as e:
                last = e.__cause__ or e
                continue
            if response.status_code == 401:
                challenge = response.headers.get("WWW-Authenticate", "")
                if challenge.lower().startswith("basic") and not self.endpoint.username:
                    raise RegistryError(
                        f"{self.host} asks for credentials",
                        hint="set registry.username and registry_password in the secrets file",
                        status=401,
                    )
                return base
            if response.status_code == 200:
                return base
            last = RegistryError(f"GET {base}/v2/ answered {response.status_code}")
        if tls_failure is not None and not self.endpoint.insecure:
            # it speaks TLS (plain HTTP did not answer) with a certificate not trusted here
            raise _tls_failed(self.host, tls_failure) from tls_failure
        raise RegistryUnreachable(
            f"cannot reach the registry at {self.host}: "
            f"{_connection_problem(last) if last else 'no answer'}",
            hint=_UNREACHABLE_HINT,
        ) from last

    def _send(
        self, method: str, url: str, *, scope: str | None, retries: int | None = None, **kw: Any
    ) -> Any:
        """One request, retried on connection failures and 5xx/429, authorised for ``scope``.

        A 401 with a ``Bearer`` challenge fetches a token for the scope and asks once more.
        After the last attempt a connection failure is :class:`RegistryUnreachable`; a
        5xx/429 answer is returned for the caller to word.
        """
        kw.setdefault("timeout", self._timeout)
        # Per request: requests lets REQUESTS_CA_BUNDLE override a session's verify.
        kw.setdefault("verify", self.session.verify)
        attempts = self.retries if retries is None else retries
        delay = 1.0
        for attempt in range(1, attempts + 1):
            try:
                response = self._authorised(method, url, scope, kw)
            except requests.exceptions.SSLError:
                raise
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
                if attempt == attempts:
                    raise RegistryUnreachable(
                        f"the registry at {self.host} cannot be reached: {_connection_problem(e)}"
                        + (f" (tried {attempts} times)" if attempts > 1 else ""),
                        hint=_UNREACHABLE_HINT,
                    ) from e
            else:
                if response.status_code < 500 and response.status_code != 429:
                    return response
                if attempt == attempts:
                    return response
            self._sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _authorised(self, method: str, url: str, scope: str | None, kw: dict[str, Any]) -> Any:
        if scope and scope in self._tokens:
            kw = {**kw, "auth": _BearerAuth(self._tokens[scope])}
        response = self.session.request(method, url, **kw)
        if response.status_code != 401 or not scope:
            return response
        challenge = response.headers.get("WWW-Authenticate", "")
        if not challenge.lower().startswith("bearer"):
            return response
        token = self._token(challenge, scope)
        if token is None:
            return response
        self._tokens[scope] = token
        body = kw.get("data")
        if isinstance(body, _Body):
            body.seek(0)
        return self.session.request(method, url, **{**kw, "auth": _BearerAuth(token)})

    def _token(self, challenge: str, scope: str) -> str | None:
        """A token from the challenge's realm (with the basic credentials, if any)."""
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.pop("realm", "")
        if not realm.startswith(("https://", "http://")):
            return None
        params["scope"] = scope
        response = self.session.get(
            realm, params=params, timeout=min(self._timeout, 60), verify=self.session.verify
        )
        if response.status_code != 200:
            return None
        try:
            data = response.json()
        except ValueError:
            return None
        token = data.get("token") or data.get("access_token")
        return str(token) if token else None

    def repository_url(self, repository: str) -> str:
        return f"{self.base}/v2/{repository}"

    # -- manifests and blobs -------------------------------------------------------------

    def manifest_digest(
        self,
        repository: str,
        reference: str,
        *,
        accept: str = MANIFEST_TYPES,
        pull_only: bool = False,
    ) -> str | None:
        """HEAD the manifest: its digest (``""`` when the registry does not say), or None."""
        response = self._send(
            "HEAD",
            f"{self.repository_url(repository)}/manifests/{reference}",
            scope=_scope(repository, push=not pull_only),
            headers={"Accept": accept},
        )
        if response.status_code == 200:
            return str(response.headers.get("Docker-Content-Digest") or "")
        if response.status_code == 404:
            return None
        raise self._error(f"HEAD manifest {repository}:{reference}", response)

    def has_blob(self, repository: str, digest: str) -> bool:
        response = self._send(
            "HEAD", f"{self.repository_url(repository)}/blobs/{digest}", scope=_scope(repository)
        )
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self._error(f"HEAD blob {digest} in {repository}", response)

    def mount_blob(self, repository: str, digest: str, source_repository: str) -> str | None:
        """Cross-repository mount; ``None`` when done, else the upload URL the registry gave."""
        response = self._send(
            "POST",
            f"{self.repository_url(repository)}/blobs/uploads/",
            scope=_scope(repository),
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
        on_bytes: ByteCallback | None = None,
        upload_url: str | None = None,
    ) -> None:
        """Upload ``path`` as blob ``digest``; a failed attempt starts over from a new upload."""
        counted = _Counter(on_bytes)
        delay = 1.0
        for attempt in range(1, self.retries + 1):
            try:
                self._upload_once(repository, digest, path, size, counted, upload_url=upload_url)
                return
            except (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                _RetryableUpload,
            ) as e:
                counted.undo()
                upload_url = None
                if attempt == self.retries:
                    if isinstance(e, _RetryableUpload):
                        raise RegistryError(
                            f"uploading {digest} to {repository} failed {self.retries} times: "
                            f"{first_line(e)}",
                            hint="the registry keeps failing: check its log, its storage and "
                            "its free disk",
                        ) from e
                    raise RegistryUnreachable(
                        f"the registry at {self.host} stopped answering while {digest} went "
                        f"up to {repository}: {_connection_problem(e)} "
                        f"(tried {self.retries} times)",
                        hint=_UNREACHABLE_HINT,
                    ) from e
                self._sleep(delay)
                delay *= 2

    def _upload_once(
        self,
        repository: str,
        digest: str,
        path: Path,
        size: int,
        counted: _Counter,
        *,
        upload_url: str | None,
    ) -> None:
        scope = _scope(repository)
        counted.start()
        if upload_url is None:
            response = self._send(
                "POST", f"{self.repository_url(repository)}/blobs/uploads/", scope=scope
            )
            if response.status_code != 202:
                raise self._error(f"start upload of {digest} to {repository}", response)
            upload_url = self._location(response)
        octets = {"Content-Type": "application/octet-stream"}
        with open(path, "rb") as f:
            if size <= CHUNK_SIZE:
                response = self._authorised(
                    "PUT",
                    upload_url,
                    scope,
                    self._kw(
                        params={"digest": digest}, data=_Body(f, counted, size), headers=octets
                    ),
                )
                self._check_put(response, digest, repository)
                return
            offset = 0
            while offset < size:
                length = min(CHUNK_SIZE, size - offset)
                chunk = f.read(length)
                headers = {
                    **octets,
                    "Content-Range": f"{offset}-{offset + length - 1}",
                    "Content-Length": str(length),
                }
                response = self._authorised(
                    "PATCH", upload_url, scope, self._kw(data=chunk, headers=headers)
                )
                if response.status_code >= 500 or response.status_code == 429:
                    raise _RetryableUpload(f"PATCH answered {response.status_code}")
                if response.status_code != 202:
                    raise self._error(f"upload chunk of {digest} to {repository}", response)
                upload_url = self._location(response)
                offset += length
                counted(length)
        response = self._authorised(
            "PUT",
            upload_url,
            scope,
            self._kw(params={"digest": digest}, headers={"Content-Length": "0"}),
        )
        self._check_put(response, digest, repository)

    def _kw(self, **kw: Any) -> dict[str, Any]:
        return {"timeout": self._timeout, "verify": self.session.verify, **kw}

    def _check_put(self, response: Any, digest: str, repository: str) -> None:
        if response.status_code >= 500 or response.status_code == 429:
            raise _RetryableUpload(f"PUT answered {response.status_code}")
        if response.status_code != 201:
            raise self._error(f"finish upload of {digest} to {repository}", response)

    def put_manifest(
        self, repository: str, tag: str, manifest: bytes, media_type: str = MANIFEST_V2
    ) -> str:
        """PUT ``manifest`` by tag; its digest (checked against the registry's answer)."""
        response = self._send(
            "PUT",
            f"{self.repository_url(repository)}/manifests/{tag}",
            scope=_scope(repository),
            data=manifest,
            headers={"Content-Type": media_type},
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
            # Only _send's answers get here with these codes: it tried every attempt.
            tries = f" (tried {self.retries} times)"
            hint = "the registry keeps failing: check its log, its storage and its free disk"
        return RegistryError(
            f"{what}: the registry at {self.host} answered {response.status_code}{tries} "
            f"{body}".rstrip(),
            hint=hint,
            status=response.status_code,
        )


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def _connection_problem(error: BaseException) -> str:
    """What went wrong with the connection, in a few words, not urllib3's whole repr.

    ``HTTPConnectionPool(host=..., port=...): Max retries exceeded ... [Errno 111]
    Connection refused'))`` is ``connection refused``.
    """
    if isinstance(error, requests.exceptions.Timeout):
        return "no answer in time"
    text = str(error)
    found = _ERRNO.search(text)
    if found:
        return found.group(1).strip().lower()
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "the connection was closed without an answer"
    return first_line(error)


def _scope(repository: str, *, push: bool = True) -> str:
    return f"repository:{repository}:{'pull,push' if push else 'pull'}"


class _RetryableUpload(Exception):
    pass


class _BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer`` with a token from the registry's realm (in place of basic)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: Any) -> Any:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


class _Counter:
    """Counts one blob's bytes for the caller's callback, so a failed attempt can be undone."""

    def __init__(self, callback: ByteCallback | None) -> None:
        self._callback = callback
        self.sent = 0

    def start(self) -> None:
        self.sent = 0

    def __call__(self, count: int) -> None:
        self.sent += count
        if self._callback is not None:
            self._callback(count)

    def undo(self) -> None:
        if self.sent and self._callback is not None:
            self._callback(-self.sent)
        self.sent = 0


class _Body:
    """A file as a streaming upload body that counts what is read."""

    def __init__(self, f: Any, counted: _Counter, size: int) -> None:
        self._f = f
        self._counted = counted
        self._size = size

    def __len__(self) -> int:
        # requests sends Content-Length from this instead of a chunked body.
        return self._size

    def seek(self, offset: int) -> None:
        """Start over (a request asked again with a token); what was counted is undone."""
        self._f.seek(offset)
        self._counted.undo()

    def read(self, size: int = READ_SIZE) -> bytes:
        data: bytes = self._f.read(size if size and size > 0 else READ_SIZE)
        self._counted(len(data))
        return data

    def __iter__(self) -> Any:
        while chunk := self.read(READ_SIZE):
            yield chunk
