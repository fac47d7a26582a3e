"""The Docker Engine through the Docker SDK: images, containers, health, logs, exec.

:func:`docker_client` is the one way to an SDK client: it reaches the Engine
:func:`installer.engine.endpoint.docker_endpoint` resolves (the same one ``check`` asks and
the ``docker compose`` commands use). ``docker`` (the SDK) is imported on first use only.
Every SDK error is translated into an :class:`~installer.errors.InstallerError` subclass
with ``raise ... from e``: the operator reads a sentence, the cause stays in the run's log.
Every way the Engine can be out of reach (refused, gone mid-request, timed out, the SDK's
HTTP library failing underneath it) is :class:`DockerUnavailable`, exit 3: start Docker
and run the same command again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from installer.engine.endpoint import DockerEndpoint, docker_endpoint
from installer.errors import EngineUnavailable, InstallerError, first_line
from installer.runner import Progress

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
ONEOFF_LABEL = "com.docker.compose.oneoff"
CONFIG_HASH_LABEL = "com.docker.compose.config-hash"


START_DOCKER = (
    "start Docker (sudo systemctl start docker) and run the same command again; "
    "or point DOCKER_HOST at the Engine to use"
)


class DockerUnavailable(EngineUnavailable):
    """The Docker Engine cannot be reached (exit 3): start it and run the command again."""


def docker_unavailable(
    what: str, error: BaseException | str, endpoint: DockerEndpoint | None = None
) -> DockerUnavailable:
    """``what`` failed because the Engine is out of reach, in the operator's words;
    ``error`` is the cause (its first line is kept for the log reader)."""
    where = (endpoint or docker_endpoint()).describe()
    cause = error if isinstance(error, str) else _socket_cause(error) or first_line(error)
    return DockerUnavailable(f"{what}: {where} is not answering ({cause})", hint=START_DOCKER)


_SOCKET_CAUSES = (
    (FileNotFoundError, "no socket at that path"),
    (ConnectionRefusedError, "connection refused"),
    (PermissionError, "permission denied on the socket"),
    (ConnectionResetError, "the connection was reset"),
    (TimeoutError, "no answer in time"),
)


def _socket_cause(error: BaseException, depth: int = 0) -> str | None:
    """The socket error under an SDK error, in words (requests and urllib3 wrap it in
    their own errors, as arguments or as the cause)."""
    for kind, words in _SOCKET_CAUSES:
        if isinstance(error, kind):
            return words
    if depth > 5:
        return None
    inner = [a for a in error.args if isinstance(a, BaseException)]
    inner += [e for e in (error.__cause__, error.__context__) if e is not None]
    for candidate in inner:
        found = _socket_cause(candidate, depth + 1)
        if found:
            return found
    return None


def docker_client(timeout: float = 60) -> Any:
    """A Docker SDK client for the Engine the installer uses, checked with a ping.

    ``timeout``: seconds a single request may take (saving and loading large images take
    long). :class:`DockerUnavailable` when the Engine does not answer.
    """
    import docker

    endpoint = docker_endpoint()
    client = None
    try:
        client = docker.from_env(timeout=timeout, environment=endpoint.environment())
        client.ping()
    except sdk_errors() as e:
        if client is not None:
            client.close()
        raise docker_unavailable("cannot reach the Docker Engine", e, endpoint) from e
    return client


class DockerError(InstallerError):
    """The Docker Engine refused or failed a request."""


@dataclass(frozen=True)
class ContainerInfo:
    """What the installer needs to know about one container of a Compose project."""

    id: str
    name: str
    service: str
    state: str  # created | running | restarting | exited | paused | dead
    health: str | None  # healthy | unhealthy | starting | None (no health check)
    exit_code: int | None
    image: str  # the reference it was created from
    image_id: str
    config_hash: str | None
    oneoff: bool
    health_output: list[str] = field(default_factory=list)
    published_ports: list[int] = field(default_factory=list)
    # Probes failed in a row (``inspect`` only: the list endpoint's summary does not say).
    failing_streak: int | None = None

    @property
    def ready(self) -> bool:
        """Running, and healthy when it has a health check."""
        return self.state == "running" and self.health in (None, "healthy")

    @property
    def failed_health(self) -> bool:
        """Unhealthy because its probes failed (``inspect``'s view; needs ``failing_streak``).

        The Engine also says "unhealthy" when it stops a container's health monitor (a
        pause: a backup's consistent snapshot) and keeps saying it until the next probe
        after the unpause; no probe has failed then (streak 0): that is not a failure.
        """
        return self.health == "unhealthy" and self.failing_streak != 0


class DockerEngine:
    """A lazily connected Docker SDK client with the calls the install steps use."""

    def __init__(self, timeout: float = 60) -> None:
        self._timeout = timeout
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = docker_client(self._timeout)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- images -------------------------------------------------------------------------

    def image_id(self, reference: str) -> str | None:
        """The local image ID of ``reference``, or None when the image is not here."""
        import docker

        try:
            return str(self.client.images.get(reference).id)
        except docker.errors.ImageNotFound:
            return None
        except sdk_errors() as e:
            raise self._error(f"cannot look up image {reference}", e) from e

    def pull(self, reference: str, auth: dict[str, str] | None = None) -> Iterator[Progress]:
        """Pull ``reference``, yielding byte progress summed over its layers."""

        repository, tag = split_tag(reference)
        layers: dict[str, tuple[int, int]] = {}
        try:
            stream = self.client.api.pull(
                repository, tag=tag, stream=True, decode=True, auth_config=auth
            )
            last = 0.0
            for chunk in stream:
                if "error" in chunk:
                    raise pull_failed(reference, str(chunk["error"]))
                detail = chunk.get("progressDetail") or {}
                layer = chunk.get("id")
                if layer and detail.get("total"):
                    layers[layer] = (int(detail.get("current", 0)), int(detail["total"]))
                elif layer and chunk.get("status") in ("Pull complete", "Already exists"):
                    done = layers.get(layer, (0, 0))[1]
                    layers[layer] = (done, done)
                current = sum(c for c, _ in layers.values())
                total = sum(t for _, t in layers.values())
                if total and current - last >= max(total / 50, 1):
                    last = current
                    yield Progress(current, total, "bytes", f"pulling {reference}")
        except sdk_errors() as e:
            import docker

            if isinstance(e, docker.errors.APIError):  # the Engine answered: the pull failed
                raise pull_failed(reference, str(e.explanation or e)) from e
            raise self._error(f"cannot pull {reference}", e) from e

    # -- containers ---------------------------------------------------------------------

    def project_containers(
        self, project: str, *, oneoff: bool | None = False
    ) -> list[ContainerInfo]:
        """Every container of Compose project ``project`` (``oneoff``: run containers)."""

        filters = {"label": [f"{PROJECT_LABEL}={project}"]}
        try:
            # One request for the whole list (the summaries): this is polled while services
            # start, and a request per container would compete with them for the CPU.
            infos = [
                _summary_info(s) for s in self.client.api.containers(all=True, filters=filters)
            ]
        except sdk_errors() as e:
            raise self._error(f"cannot list the containers of project {project}", e) from e
        if oneoff is not None:
            infos = [i for i in infos if i.oneoff == oneoff]
        return sorted(infos, key=lambda i: (i.service, i.name))

    def inspect(self, container_id: str) -> ContainerInfo | None:
        """Everything about one container, its last health-check output included."""
        import docker

        try:
            return _info(self.client.api.inspect_container(container_id))
        except docker.errors.NotFound:
            return None
        except sdk_errors() as e:
            raise self._error(f"cannot inspect container {container_id[:12]}", e) from e

    def logs(self, container_id: str, tail: int = 20) -> list[str]:
        """The last ``tail`` lines a container wrote (stdout and stderr)."""

        try:
            raw = self.client.api.logs(container_id, stdout=True, stderr=True, tail=tail)
        except sdk_errors():
            return []
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return [line.rstrip() for line in text.splitlines() if line.strip()][-tail:]

    def remove_container(self, container_id: str) -> None:
        import docker

        try:
            self.client.api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            return
        except sdk_errors() as e:
            raise self._error(f"cannot remove container {container_id[:12]}", e) from e

    def exec(
        self,
        container_id: str,
        command: list[str],
        *,
        user: str | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> tuple[int, str]:
        """Run ``command`` in a running container: (exit code, output).

        ``environment`` values (a password) reach the process without being on its command
        line, which ``docker inspect`` and ``ps`` would show.
        """

        try:
            result = self.client.api.exec_create(
                container_id, command, user=user or "", environment=dict(environment or {})
            )
            output = self.client.api.exec_start(result["Id"])
            code = self.client.api.exec_inspect(result["Id"]).get("ExitCode")
        except sdk_errors() as e:
            raise self._error(f"cannot run a command in container {container_id[:12]}", e) from e
        text = output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output)
        return (int(code) if code is not None else -1), text

    def volume_exists(self, name: str) -> bool:
        import docker

        try:
            self.client.volumes.get(name)
            return True
        except docker.errors.NotFound:
            return False
        except sdk_errors() as e:
            raise self._error(f"cannot look up volume {name}", e) from e

    def _error(self, what: str, error: Exception) -> InstallerError:
        import docker

        if isinstance(error, docker.errors.APIError):
            return DockerError(f"{what}: {first_line(error)}")
        return docker_unavailable(what, error)


def pull_failed(reference: str, daemon_error: str) -> DockerError:
    """A pull the Engine refused, in the words of the live images check (DNS, TCP, TLS,
    proxy, 401, 404) rather than the daemon's Go text."""
    from installer.engine.pull_errors import describe_pull_failure

    message, _cause, hint = describe_pull_failure(reference, daemon_error)
    return DockerError(
        message,
        hint=hint
        or "check the image name, the registry (registry.mirror) and its credentials, or "
        "install from an offline bundle (--bundle)",
    )


def sdk_errors() -> tuple[type[Exception], ...]:
    """What an SDK call raises when it fails: its own errors, and those of the HTTP library
    beneath it (a daemon gone mid-request surfaces as a requests or urllib3 error)."""
    import docker
    import requests
    import urllib3

    return (docker.errors.DockerException, requests.RequestException, urllib3.exceptions.HTTPError)


def split_tag(reference: str) -> tuple[str, str | None]:
    """``repo/name:tag`` -> (``repo/name``, ``tag``); a digest stays with the repository."""
    from installer.engine.images import ImageReference

    parsed = ImageReference.parse(reference)
    if parsed.digest:
        return reference, None
    return parsed.familiar_name, parsed.tag or "latest"


_HEALTH_IN_STATUS = re.compile(r"\((healthy|unhealthy|health: starting)\)")
_EXIT_IN_STATUS = re.compile(r"^Exited \((-?\d+)\)")


def _summary_info(summary: dict[str, Any]) -> ContainerInfo:
    """A container from the list endpoint's summary (its health is in ``Status``)."""
    labels = summary.get("Labels") or {}
    status = str(summary.get("Status", ""))
    health_match = _HEALTH_IN_STATUS.search(status)
    health = None
    if health_match:
        health = (
            "starting" if health_match.group(1).startswith("health:") else health_match.group(1)
        )
    exit_match = _EXIT_IN_STATUS.match(status)
    names = summary.get("Names") or [""]
    ports = sorted(
        {int(p["PublicPort"]) for p in summary.get("Ports") or [] if p.get("PublicPort")}
    )
    return ContainerInfo(
        id=str(summary.get("Id", "")),
        name=str(names[0]).lstrip("/"),
        service=str(labels.get(SERVICE_LABEL, "")),
        state=str(summary.get("State", "unknown")),
        health=health,
        exit_code=int(exit_match.group(1)) if exit_match else None,
        image=str(summary.get("Image", "")),
        image_id=str(summary.get("ImageID", "")),
        config_hash=labels.get(CONFIG_HASH_LABEL),
        oneoff=str(labels.get(ONEOFF_LABEL, "False")).lower() == "true",
        published_ports=ports,
    )


def _info(attrs: dict[str, Any]) -> ContainerInfo:
    labels = attrs.get("Config", {}).get("Labels") or {}
    state = attrs.get("State", {}) or {}
    health = state.get("Health") or None
    health_output: list[str] = []
    if health:
        for entry in (health.get("Log") or [])[-2:]:
            output = str(entry.get("Output", "")).strip()
            if output:
                health_output.extend(output.splitlines()[-5:])
    ports: list[int] = []
    for bindings in (attrs.get("HostConfig", {}).get("PortBindings") or {}).values():
        for binding in bindings or []:
            if binding.get("HostPort", "").isdigit():
                ports.append(int(binding["HostPort"]))
    return ContainerInfo(
        id=str(attrs.get("Id", "")),
        name=str(attrs.get("Name", "")).lstrip("/"),
        service=str(labels.get(SERVICE_LABEL, "")),
        state=str(state.get("Status", "unknown")),
        health=str(health["Status"]) if health else None,
        exit_code=state.get("ExitCode"),
        image=str(attrs.get("Config", {}).get("Image", "")),
        image_id=str(attrs.get("Image", "")),
        config_hash=labels.get(CONFIG_HASH_LABEL),
        oneoff=str(labels.get(ONEOFF_LABEL, "False")).lower() == "true",
        health_output=health_output,
        published_ports=sorted(set(ports)),
        failing_streak=int(health.get("FailingStreak") or 0) if health else None,
    )
