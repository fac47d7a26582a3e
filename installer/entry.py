"""The console script's entry point: the Docker context is adopted, ``check``'s slow request
goes out, then the CLI loads.

The selected Docker context (``docker context use``, ``DOCKER_CONTEXT``) becomes
``DOCKER_HOST`` for the whole process first (:mod:`installer.docker_context`), so the SDK,
the probes and the docker commands the installer runs all reach the Engine the operator's
docker CLI reaches.

The Docker Engine takes longer to answer ``check``'s one request (``GET /info``: the
daemon asks its runtimes for their versions first) than ``check`` takes to do everything
else, and that request needs nothing from the command line. So when the arguments say
``check`` for a Compose target, it is sent here, before the command-line library is
imported, and :func:`installer.checks.docker_probe.take_early` hands its answer to the
probe. The guess is conservative: when the arguments leave the target unknown (an answer
file) or name a Kubernetes target, nothing is sent and ``check`` asks at its own pace.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

_COMPOSE_TARGETS = ("development", "production")


def wants_docker_early(args: Sequence[str]) -> bool:
    """Whether ``codequal-installer ARGS`` is a ``check`` that will ask the Docker Engine."""
    if not args or args[0] != "check":
        return False
    target = None
    answers = False
    rest = list(args[1:])
    for index, arg in enumerate(rest):
        if arg in ("-h", "--help"):
            return False
        if arg == "--answers" or arg.startswith("--answers="):
            answers = True
        elif arg in ("--target", "-t") and index + 1 < len(rest):
            target = rest[index + 1]
        elif arg.startswith("--target="):
            target = arg.partition("=")[2]
        elif arg.startswith("-t") and len(arg) > 2:
            target = arg[2:]
    if target is None:
        return not answers  # without an answer file the target is development
    return target in _COMPOSE_TARGETS


def main() -> None:
    """Run ``codequal-installer`` (see the module text for what happens first)."""
    import os

    from installer.docker_context import adopt_docker_context

    adopt_docker_context(os.environ, sys.stderr)  # the docker CLI's Engine, for every part
    if wants_docker_early(sys.argv[1:]):
        from installer.checks import docker_probe

        docker_probe.start_early()
    from installer.cli import main as run

    run()
