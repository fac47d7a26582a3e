"""The console script's entry point: the Docker endpoint is resolved once, then the CLI runs.

:func:`installer.engine.endpoint.adopt_docker_endpoint` resolves the Engine the operator's
docker CLI would reach (``DOCKER_HOST``, the selected Docker context, the system socket,
else a rootless daemon's socket) and exports a non-default answer as ``DOCKER_HOST`` for the
whole process, so the probes, the SDK and the docker commands the installer runs all reach
that one Engine. A selected context the installer cannot use is reported here, once.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run ``codequal-installer`` (see the module text for what happens first)."""
    import os

    from installer.engine.endpoint import adopt_docker_endpoint

    adopt_docker_endpoint(os.environ, sys.stderr)
    from installer.cli import main as run

    run()
