"""A Compose v2 project driven through the ``docker compose`` command line.

The project lifecycle (create, recreate, start, stop, one-off runs) goes through the same
command the operator uses, with the same project directory, file and name, so the result
is an ordinary Compose project: ``docker compose ps|logs|restart|down`` in the install
directory work on it as on anything else. Output is streamed line by line (``--progress
plain``) for the run's live log. Images are never pulled by Compose (``--pull never``):
the container-deployment step does that itself, with progress.

The commands reach the Engine :func:`installer.engine.endpoint.docker_endpoint` resolves.
A command that fails because that Engine stopped answering raises
:class:`~installer.engine.docker.DockerUnavailable` (exit 3: start Docker, run the same
command again), not :class:`~installer.engine.process.CommandFailed`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from installer.engine.endpoint import command_environment, docker_endpoint
from installer.engine.process import TAIL_LINES, CommandFailed, stream_command

if TYPE_CHECKING:
    from installer.runner import CancelToken

COMPOSE_FILE = "docker-compose.yml"
_PORT_IN_USE = re.compile(
    r":(\d+)\b[^\n]{0,40}?(?:address already in use|port is already allocated)", re.IGNORECASE
)


@dataclass(frozen=True)
class ComposeProject:
    """One Compose project: its directory, file and name."""

    directory: Path
    name: str
    file: str = COMPOSE_FILE
    docker: str = "docker"

    def argv(self, *args: str) -> list[str]:
        return [
            self.docker,
            "compose",
            "--ansi",
            "never",
            "--progress",
            "plain",
            "--project-directory",
            str(self.directory),
            "--project-name",
            self.name,
            "--file",
            str(self.directory / self.file),
            *args,
        ]

    def stream(
        self,
        *args: str,
        cancel: CancelToken | None = None,
        stdin: bytes | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Iterator[str]:
        """Run ``docker compose ARGS`` with the output streamed; :class:`CommandFailed` on
        error, :class:`~installer.engine.docker.DockerUnavailable` when the Engine is gone."""
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        try:
            yield from stream_command(
                self.argv(*args),
                cancel=cancel,
                cwd=self.directory,
                stdin=stdin,
                timeout=timeout,
                env=command_environment(env),
                tail=tail,
            )
        except CommandFailed as e:
            if e.returncode is not None and not _engine_answers():
                from installer.engine.docker import docker_unavailable

                cause = e.tail[-1] if e.tail else e.message
                raise docker_unavailable(f"docker compose {args[0]} stopped", cause) from e
            e.hint = e.hint or explain_failure(e.tail)
            raise

    def output(self, *args: str, cancel: CancelToken | None = None) -> list[str]:
        return list(self.stream(*args, cancel=cancel))

    # -- the lifecycle ------------------------------------------------------------------

    def up(
        self,
        services: Sequence[str],
        *,
        wait: bool = False,
        wait_timeout: int = 300,
        cancel: CancelToken | None = None,
    ) -> Iterator[str]:
        """Create or recreate ``services`` (only those whose configuration changed) and start them.

        ``--no-deps``: each step names exactly what it starts, so a step never starts a
        service ahead of its turn (the migration, say). ``--remove-orphans``: services
        the configuration no longer has (monitoring turned off) are removed.
        """
        args = ["up", "--detach", "--no-deps", "--remove-orphans", "--pull", "never"]
        if wait:
            args += ["--wait", "--wait-timeout", str(wait_timeout)]
        yield from self.stream(*args, *services, cancel=cancel)

    def run_once(
        self, service: str, *, cancel: CancelToken | None = None, timeout: float | None = None
    ) -> Iterator[str]:
        """Run ``service``'s command in a one-off container, removed afterwards."""
        yield from self.stream(
            "run", "--rm", "--no-deps", "--no-TTY", "--pull", "never", service,
            cancel=cancel, timeout=timeout,
        )  # fmt: skip

    def down(self, *, cancel: CancelToken | None = None) -> Iterator[str]:
        """Remove the project's containers and network; volumes (the data) are kept."""
        yield from self.stream("down", "--remove-orphans", cancel=cancel)

    def config_hashes(self, cancel: CancelToken | None = None) -> dict[str, str]:
        """Each service's configuration hash, as Compose labels the containers it creates."""
        hashes: dict[str, str] = {}
        for line in self.output("config", "--hash", "*", cancel=cancel):
            parts = line.split()
            if len(parts) == 2:
                hashes[parts[0]] = parts[1]
        return hashes


def _engine_answers() -> bool:
    from installer.engine.sockethttp import engine_answers

    return engine_answers(docker_endpoint())


def explain_failure(lines: Sequence[str]) -> str | None:
    """A one-line hint for the Compose failures operators meet most."""
    text = "\n".join(lines)
    match = _PORT_IN_USE.search(text)
    if match:
        port = match.group(1)
        return (
            f"port {port} is already in use on this host: stop what listens there "
            f"(ss -ltnp 'sport = :{port}') and run apply again"
        )
    if "no space left on device" in text.lower():
        return "the disk that holds Docker's data is full: free space (docker system prune)"
    if "permission denied" in text.lower() and "docker.sock" in text:
        return "this user may not use Docker: run as root or add the user to the docker group"
    if "No such image" in text or "pull access denied" in text:
        return "an image is missing: load the offline bundle (--bundle) or check registry access"
    return None
