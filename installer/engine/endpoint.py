"""Where the Docker Engine is: the one answer every part of the installer uses.

:func:`docker_endpoint` resolves it the way the docker CLI does, plus the rootless socket:

1. ``DOCKER_HOST``, when set;
2. else the selected Docker context: the one named by ``DOCKER_CONTEXT``, else
   ``currentContext`` in ``config.json`` (in ``DOCKER_CONFIG``, default ``~/.docker``).
   Docker Desktop for Linux selects one of its own (``desktop-linux``, a socket under
   ``~/.docker/desktop``), and rootless or remote setups do the same with ``docker context
   use``;
3. else the system socket, ``/var/run/docker.sock``, when it exists;
4. else a rootless daemon's socket (``$XDG_RUNTIME_DIR/docker.sock``, then
   ``/run/user/<uid>/docker.sock``), when one exists;
5. else the system socket again (nothing answers: the messages name where it looked).

``check`` (:mod:`installer.checks.docker_probe`), the SDK client
(:func:`installer.engine.docker.docker_client`), the ``docker compose`` commands and
``bundle create`` all ask it. At start-up :func:`adopt_docker_endpoint` exports a
non-default answer (a context's or the rootless socket) as ``DOCKER_HOST``, with a
context's TLS material as ``DOCKER_CERT_PATH`` and ``DOCKER_TLS_VERIFY``, so the docker
commands the installer runs reach the same Engine; :data:`SOURCE_VARIABLE` and
:data:`CONTEXT_VARIABLE` keep where it came from for messages.

A context the installer cannot use (missing, unreadable, reached over ssh, or with TLS
verification turned off) is reported in one line at start-up, and ``DOCKER_CONTEXT=default``
is exported so that the docker commands use the default endpoint too.

:data:`DEFAULT_SOCKET_VARIABLE` is for tests only: it stands for ``/var/run/docker.sock``,
so a test can show what happens on a host where only a rootless daemon runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import TextIO

from installer.errors import PrerequisiteError

DEFAULT_SOCKET = "/var/run/docker.sock"
DEFAULT_SOCKET_VARIABLE = "CODEQUAL_TEST_DEFAULT_DOCKER_SOCKET"  # tests only, see above
CONTEXT_VARIABLE = "CODEQUAL_DOCKER_CONTEXT"  # the context that chose DOCKER_HOST
SOURCE_VARIABLE = "CODEQUAL_DOCKER_SOURCE"  # context | rootless: who chose DOCKER_HOST
_EXPORTED_SOURCES = ("context", "rootless")
_CONFIG_LIMIT = 1 << 20


class ContextError(PrerequisiteError):
    """The selected Docker context cannot be used; the message says why."""


@dataclass(frozen=True)
class DockerEndpoint:
    """The Docker Engine's address and where that answer came from.

    ``source`` is ``env`` (``DOCKER_HOST``), ``context`` (a Docker context), ``default``
    (the system socket) or ``rootless`` (a rootless daemon's socket). ``warning`` says why
    a selected context was passed over, for start-up to print once.
    """

    url: str
    source: str = "env"
    context: str | None = None
    tls_verify: bool = False
    cert_path: str | None = None
    warning: str | None = None

    @property
    def socket_path(self) -> str | None:
        """The Unix socket's path, or None for an Engine reached over TCP (or SSH)."""
        if self.url.startswith("unix://") and len(self.url) > len("unix://"):
            return self.url[len("unix://") :]
        return None

    @property
    def chosen_by_operator(self) -> bool:
        """``DOCKER_HOST`` or a context chose it (rather than the installer looking)."""
        return self.source in ("env", "context")

    def environment(self) -> dict[str, str]:
        """The variables that make the SDK and the docker commands reach this Engine."""
        found = {"DOCKER_HOST": self.url}
        if self.tls_verify:
            found["DOCKER_TLS_VERIFY"] = "1"
        if self.cert_path:
            found["DOCKER_CERT_PATH"] = self.cert_path
        return found

    def describe(self) -> str:
        """``the Docker Engine at URL``, naming the context that chose it."""
        text = f"the Docker Engine at {self.url}"
        if self.context:
            text += f" (Docker context {self.context!r})"
        elif self.source == "rootless":
            text += " (a rootless daemon)"
        return text


def default_socket(environ: Mapping[str, str]) -> str:
    """The system socket (or the tests' stand-in for it, see the module text)."""
    return environ.get(DEFAULT_SOCKET_VARIABLE) or DEFAULT_SOCKET


def rootless_sockets(environ: Mapping[str, str]) -> list[str]:
    """Where a rootless daemon of this user listens, in the order the docs give."""
    candidates = []
    runtime_dir = environ.get("XDG_RUNTIME_DIR", "").strip()
    if runtime_dir:
        candidates.append(os.path.join(runtime_dir, "docker.sock"))
    candidates.append(f"/run/user/{os.getuid()}/docker.sock")
    return list(dict.fromkeys(candidates))


def docker_endpoint(environ: Mapping[str, str] | None = None) -> DockerEndpoint:
    """The Docker Engine every part of the installer uses (see the module text)."""
    env = os.environ if environ is None else environ
    host = env.get("DOCKER_HOST", "").strip()
    if host:
        source = env.get(SOURCE_VARIABLE, "")
        return DockerEndpoint(
            host,
            source if source in _EXPORTED_SOURCES else "env",
            context=(env.get(CONTEXT_VARIABLE) or None) if source == "context" else None,
            tls_verify=env.get("DOCKER_TLS_VERIFY", "") not in ("", "0"),
            cert_path=env.get("DOCKER_CERT_PATH") or None,
        )
    warning = None
    try:
        chosen = context_environment(env)
    except ContextError as e:
        chosen = {}
        warning = (
            f"{e}; the installer uses the default Docker endpoint instead "
            "(set DOCKER_HOST, or `docker context use` another context)"
        )
    if chosen:
        return DockerEndpoint(
            chosen["DOCKER_HOST"],
            "context",
            context=chosen[CONTEXT_VARIABLE],
            tls_verify="DOCKER_TLS_VERIFY" in chosen,
            cert_path=chosen.get("DOCKER_CERT_PATH"),
        )
    system = default_socket(env)
    if not os.path.exists(system):
        for candidate in rootless_sockets(env):
            if os.path.exists(candidate):
                return DockerEndpoint(f"unix://{candidate}", "rootless", warning=warning)
    return DockerEndpoint(f"unix://{system}", "default", warning=warning)


def command_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a docker command: ``environ`` (default: this process's), with
    the resolved endpoint exported when it is not the docker CLI's own default."""
    env = dict(os.environ if environ is None else environ)
    if not env.get("DOCKER_HOST", "").strip():
        endpoint = docker_endpoint(env)
        if endpoint.source in _EXPORTED_SOURCES:
            env.update(endpoint.environment())
            env[SOURCE_VARIABLE] = endpoint.source
    return env


def adopt_docker_endpoint(environ: MutableMapping[str, str], warnings: TextIO) -> DockerEndpoint:
    """Resolve the endpoint once at start-up and export it into ``environ`` when it is not
    the default one (see the module text); a context that cannot be used is reported on
    ``warnings``."""
    endpoint = docker_endpoint(environ)
    if endpoint.warning is not None:
        warnings.write(f"warning: {endpoint.warning}\n")
        environ["DOCKER_CONTEXT"] = "default"
    if endpoint.source in _EXPORTED_SOURCES and not environ.get("DOCKER_HOST", "").strip():
        environ.update(endpoint.environment())
        environ[SOURCE_VARIABLE] = endpoint.source
        if endpoint.context:
            environ[CONTEXT_VARIABLE] = endpoint.context
    return endpoint


# -- the Docker context -------------------------------------------------------------------


def config_dir(environ: Mapping[str, str]) -> str:
    configured = environ.get("DOCKER_CONFIG", "").strip()
    if configured:
        return configured
    return os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".docker")


def selected_context(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The selected context's name and where that choice comes from, or None for the
    default endpoint (DOCKER_HOST set, or no context chosen, or ``default``)."""
    if environ.get("DOCKER_HOST", "").strip():
        return None
    name = environ.get("DOCKER_CONTEXT", "").strip()
    source = "DOCKER_CONTEXT"
    if not name:
        path = os.path.join(config_dir(environ), "config.json")
        try:
            with open(path, "rb") as f:
                data = f.read(_CONFIG_LIMIT)
        except OSError:
            return None
        if b"currentContext" not in data:
            return None
        import json

        try:
            config = json.loads(data)
        except ValueError as e:
            raise ContextError(f"{path} is not valid JSON ({e})") from e
        name = str(config.get("currentContext") or "") if isinstance(config, dict) else ""
        source = path
    if name in ("", "default"):
        return None
    return name, source


def context_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables that point the SDK and the docker commands at the selected context's
    Engine (empty when no context other than the default one is selected). Raises
    :class:`ContextError`."""
    chosen = selected_context(environ)
    if chosen is None:
        return {}
    name, source = chosen
    import hashlib
    import json

    digest = hashlib.sha256(name.encode()).hexdigest()
    base = config_dir(environ)
    meta_path = os.path.join(base, "contexts", "meta", digest, "meta.json")
    try:
        with open(meta_path, "rb") as f:
            meta = json.loads(f.read(_CONFIG_LIMIT))
        endpoint = meta["Endpoints"]["docker"]
        host = str(endpoint["Host"])
    except FileNotFoundError:
        raise ContextError(
            f"the Docker context {name!r} (chosen by {source}) does not exist"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ContextError(
            f"the Docker context {name!r} cannot be read ({meta_path}: {type(e).__name__})"
        ) from e
    if not host.startswith(("unix://", "tcp://")):
        scheme = host.partition("://")[0] or host
        raise ContextError(
            f"the Docker context {name!r} reaches the Engine over {scheme}, which the "
            "installer does not speak"
        )
    if endpoint.get("SkipTLSVerify"):
        raise ContextError(
            f"the Docker context {name!r} turns TLS verification off, which the installer "
            "does not do"
        )
    found = {"DOCKER_HOST": host, CONTEXT_VARIABLE: name}
    tls = os.path.join(base, "contexts", "tls", digest, "docker")
    if host.startswith("tcp://") and os.path.isdir(tls):
        found["DOCKER_CERT_PATH"] = tls
        found["DOCKER_TLS_VERIFY"] = "1"
    return found
