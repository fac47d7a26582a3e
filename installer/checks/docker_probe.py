"""The Docker Engine probe: one ``GET /info`` to the Engine ``check`` would use, no SDK.

The endpoint is the one every part of the installer uses
(:func:`installer.engine.endpoint.docker_endpoint`), and the request goes through the
engine layer's HTTP-over-socket helper (:mod:`installer.engine.sockethttp`): ``check``
passes where ``apply`` then reaches the same Engine. One request: ``/info`` carries the
server version, and every Engine answer names its API version in a header (a second
request to ``/version`` would cost a round trip to the daemon, which is most of this
probe's time).

The request is not sent ahead of the command line's parsing any more: ``run_prerequisites``
starts this probe first, in a thread of its own, so the daemon's slow answer already
overlaps the other checks; sent earlier still (by the ``check`` command, before the checks
are imported), it saved nothing measurable (``check --json`` 203 ms with it, 200 ms
without, medians of 80 interleaved runs on a two-CPU machine under load).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from installer.engine.endpoint import DEFAULT_SOCKET, DockerEndpoint, docker_endpoint
from installer.engine.sockethttp import EngineProtocolError, engine_get_json

__all__ = [
    "DEFAULT_DOCKER_SOCKET",
    "DOCKER_TIMEOUT",
    "DockerInfo",
    "EngineProtocolError",
    "probe_docker",
    "query_docker",
    "which",
]

DEFAULT_DOCKER_SOCKET = DEFAULT_SOCKET
# Seconds the Docker Engine has to answer (Timeouts.docker's default).
DOCKER_TIMEOUT = 3.0


@dataclass(frozen=True)
class DockerInfo:
    """What the Docker Engine said on GET /info, or why it said nothing.

    ``error`` is one of: ``not_running`` (no socket, or nobody listening on it),
    ``permission`` (the socket refuses this user), ``timeout``, ``unsupported`` (an
    endpoint this probe cannot speak to, e.g. ssh://), ``protocol`` (an answer that is not
    the Engine API), ``unreachable`` (any other network error).
    """

    endpoint: str
    reachable: bool
    error: str | None = None
    error_detail: str | None = None
    installed: bool = True  # a docker or dockerd binary is on PATH (for the hint)
    endpoint_from_env: bool = False  # DOCKER_HOST (or a Docker context) chose the endpoint
    version: str | None = None
    api_version: str | None = None
    storage_driver: str | None = None
    root_dir: str | None = None
    cgroup_version: int | None = None
    memory_limit: bool | None = None  # the Engine can enforce memory limits
    https_proxy: str | None = None
    ncpu: int | None = None
    mem_total: int | None = None


def which(name: str, path: str | None = None) -> str | None:
    """Full path of executable ``name`` on ``path`` (default: PATH), as shutil.which
    finds it on POSIX."""
    if os.sep in name:
        return name if os.path.isfile(name) and os.access(name, os.X_OK) else None
    search = os.environ.get("PATH", os.defpath) if path is None else path
    for directory in search.split(os.pathsep):
        candidate = os.path.join(directory or os.curdir, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def query_docker(
    endpoint: DockerEndpoint | str, timeout: float, *, installed: bool = True
) -> DockerInfo:
    """GET /info from the Engine at ``endpoint`` (a URL stands for one set by DOCKER_HOST)."""
    where = DockerEndpoint(endpoint) if isinstance(endpoint, str) else endpoint

    def unreachable(kind: str, detail: str) -> DockerInfo:
        return DockerInfo(
            where.url,
            reachable=False,
            error=kind,
            error_detail=detail,
            installed=installed,
            endpoint_from_env=where.chosen_by_operator,
        )

    if not where.url.startswith(("unix://", "tcp://")):
        return unreachable("unsupported", "only unix:// and tcp:// endpoints can be probed")
    try:
        headers, info = engine_get_json(where, "/info", timeout)
        if not isinstance(info, dict):
            raise EngineProtocolError("GET /info answered no JSON object")
    except FileNotFoundError:
        return unreachable("not_running", "no such socket")
    except ConnectionRefusedError:
        return unreachable("not_running", "connection refused")
    except PermissionError:
        return unreachable("permission", "permission denied on the socket")
    except TimeoutError:
        return unreachable("timeout", f"no answer within {timeout:g} s")
    except EngineProtocolError as e:
        return unreachable("protocol", str(e))
    except (ValueError, UnicodeDecodeError) as e:
        return unreachable("protocol", f"the answer is not the Engine API ({type(e).__name__})")
    except OSError as e:
        return unreachable("unreachable", e.strerror or str(e) or type(e).__name__)
    cgroup = info.get("CgroupVersion")
    return DockerInfo(
        where.url,
        reachable=True,
        installed=installed,
        endpoint_from_env=where.chosen_by_operator,
        version=str(info.get("ServerVersion") or "") or None,
        api_version=headers.get("api-version") or None,
        storage_driver=info.get("Driver"),
        root_dir=info.get("DockerRootDir"),
        cgroup_version=int(cgroup) if isinstance(cgroup, str) and cgroup.isdigit() else None,
        memory_limit=info.get("MemoryLimit"),
        https_proxy=info.get("HttpsProxy") or None,
        ncpu=info.get("NCPU"),
        mem_total=info.get("MemTotal"),
    )


def probe_docker(environ: Mapping[str, str], timeout: float) -> DockerInfo:
    """Ask the Engine the installer uses (:func:`~installer.engine.endpoint.docker_endpoint`)."""
    path = environ.get("PATH", os.defpath)
    installed = any(which(n, path) for n in ("docker", "dockerd"))
    return query_docker(docker_endpoint(environ), timeout, installed=installed)
