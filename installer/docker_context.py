"""The Docker context: the Engine the docker CLI would use, made the one everything uses.

The docker CLI, and so ``docker compose``, finds the Engine through its current context:
``DOCKER_HOST`` when set, else the context named by ``DOCKER_CONTEXT``, else
``currentContext`` in ``config.json`` (in ``DOCKER_CONFIG``, default ``~/.docker``). The
Docker SDK and the installer's own probes read ``DOCKER_HOST`` only. Docker Desktop for
Linux, for one, selects a context of its own (``desktop-linux``, a socket under
``~/.docker/desktop``), and rootless or remote setups do the same with ``docker context
use``.

So at start-up :func:`adopt_docker_context` exports the selected context's endpoint as
``DOCKER_HOST`` (with its TLS material as ``DOCKER_CERT_PATH`` and ``DOCKER_TLS_VERIFY``)
and names the context in :data:`CONTEXT_VARIABLE` for messages. Every part of the
installer, and every docker command it runs, then reaches the same Engine. A context the
installer cannot use (missing, unreadable, reached over ssh, or with TLS verification
turned off) is reported in one line, and ``DOCKER_CONTEXT=default`` is exported so that the
docker commands the installer runs use the default endpoint too, as the SDK does.

This runs before every command, so it reads ``config.json`` only when the context is not
set otherwise, and parses it only when it names a context.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from typing import TextIO

CONTEXT_VARIABLE = "CODEQUAL_DOCKER_CONTEXT"  # the context that chose DOCKER_HOST
_CONFIG_LIMIT = 1 << 20


class ContextError(Exception):
    """The selected context cannot be used; the message says why, for the operator."""


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
    """The variables that make the SDK and the probes use the selected context's Engine
    (empty when the default endpoint is the selected one). Raises :class:`ContextError`."""
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


def adopt_docker_context(environ: MutableMapping[str, str], warnings: TextIO) -> None:
    """Export the selected context's endpoint into ``environ`` (see the module text); a
    context that cannot be used is reported on ``warnings`` and the default one used."""
    try:
        environ.update(context_environment(environ))
    except ContextError as e:
        warnings.write(
            f"warning: {e}; the installer uses the default Docker endpoint instead "
            "(set DOCKER_HOST, or `docker context use` another context)\n"
        )
        environ["DOCKER_CONTEXT"] = "default"
