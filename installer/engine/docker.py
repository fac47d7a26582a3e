"""The Docker Engine through the Docker SDK: images, containers, health, logs, exec.

``docker`` (the SDK) is imported on first use only. Every SDK error is translated into an
:class:`~installer.errors.InstallerError` subclass with ``raise ... from e``: the operator
reads a sentence (:class:`DockerUnavailable` when the daemon cannot be reached), the
cause stays in the run's log.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from installer.errors import InstallerError
from installer.runner import Progress

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
ONEOFF_LABEL = "com.docker.compose.oneoff"
CONFIG_HASH_LABEL = "com.docker.compose.config-hash"


class DockerUnavailable(InstallerError):
    """The Docker Engine cannot be reached."""


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

    @property
    def ready(self) -> bool:
        """Running, and healthy when it has a health check."""
        return self.state == "running" and self.health in (None, "healthy")


def docker_host_description(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


class DockerEngine:
    """A lazily connected Docker SDK client with the calls the install steps use."""

    def __init__(self, timeout: int = 60) -> None:
        self._timeout = timeout
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import docker

            try:
                client = docker.from_env(timeout=self._timeout)
                client.ping()
            except docker.errors.DockerException as e:
                raise DockerUnavailable(
                    f"cannot reach the Docker Engine at {docker_host_description()}: "
                    f"{_first_line(e)}",
                    hint="start it (systemctl start docker) or point DOCKER_HOST at it",
                ) from e
            self._client = client
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
        except docker.errors.DockerException as e:
            raise self._error(f"cannot look up image {reference}", e) from e

    def pull(self, reference: str, auth: dict[str, str] | None = None) -> Iterator[Progress]:
        """Pull ``reference``, yielding byte progress summed over its layers."""
        import docker

        repository, tag = split_tag(reference)
        layers: dict[str, tuple[int, int]] = {}
        try:
            stream = self.client.api.pull(
                repository, tag=tag, stream=True, decode=True, auth_config=auth
            )
            last = 0.0
            for chunk in stream:
                if "error" in chunk:
                    raise DockerError(
                        f"cannot pull {reference}: {chunk['error']}",
                        hint="check the image name, the registry (registry.mirror) and its "
                        "credentials, or install from an offline bundle (--bundle)",
                    )
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
        except docker.errors.DockerException as e:
            raise self._error(f"cannot pull {reference}", e) from e

    # -- containers ---------------------------------------------------------------------

    def project_containers(
        self, project: str, *, oneoff: bool | None = False
    ) -> list[ContainerInfo]:
        """Every container of Compose project ``project`` (``oneoff``: run containers)."""
        import docker

        filters = {"label": [f"{PROJECT_LABEL}={project}"]}
        try:
            # One request for the whole list (the summaries): this is polled while services
            # start, and a request per container would compete with them for the CPU.
            infos = [
                _summary_info(s) for s in self.client.api.containers(all=True, filters=filters)
            ]
        except docker.errors.DockerException as e:
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
        except docker.errors.DockerException as e:
            raise self._error(f"cannot inspect container {container_id[:12]}", e) from e

    def logs(self, container_id: str, tail: int = 20) -> list[str]:
        """The last ``tail`` lines a container wrote (stdout and stderr)."""
        import docker

        try:
            raw = self.client.api.logs(container_id, stdout=True, stderr=True, tail=tail)
        except docker.errors.DockerException:
            return []
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return [line.rstrip() for line in text.splitlines() if line.strip()][-tail:]

    def remove_container(self, container_id: str) -> None:
        import docker

        try:
            self.client.api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            return
        except docker.errors.DockerException as e:
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
        import docker

        try:
            result = self.client.api.exec_create(
                container_id, command, user=user or "", environment=dict(environment or {})
            )
            output = self.client.api.exec_start(result["Id"])
            code = self.client.api.exec_inspect(result["Id"]).get("ExitCode")
        except docker.errors.DockerException as e:
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
        except docker.errors.DockerException as e:
            raise self._error(f"cannot look up volume {name}", e) from e

    def _error(self, what: str, error: Exception) -> InstallerError:
        import docker

        if isinstance(error, (docker.errors.APIError,)):
            return DockerError(f"{what}: {_first_line(error)}")
        return DockerUnavailable(
            f"{what}: the Docker Engine at {docker_host_description()} stopped answering "
            f"({_first_line(error)})",
            hint="check that dockerd is running (systemctl status docker)",
        )


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
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]
