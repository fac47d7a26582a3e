"""Engine adapters: the one layer that knows how to reach a container engine.

* :mod:`installer.engine.endpoint` resolves where the Docker Engine is (``DOCKER_HOST``, the
  selected Docker context, the system socket, a rootless daemon's socket): the one answer
  ``check``, the SDK client, ``docker compose`` and ``bundle create`` all use.
* :mod:`installer.engine.sockethttp` speaks HTTP to that Engine without the SDK
  (``http.client`` over its socket), for ``check``'s ``GET /info`` and the ``docker save``
  stream of ``bundle create``.
* :mod:`installer.engine.process` runs a command with its output streamed line by line,
  cancellable, and tied to the installer's life (a killed installer takes its children
  with it, so no orphaned ``docker compose`` keeps working behind a resumed run).
* :mod:`installer.engine.docker` is the Docker Engine through the Docker SDK: the one client
  factory (:func:`~installer.engine.docker.docker_client`), images (present, pulled with
  progress), containers, their health and logs, exec; the Engine out of reach, however it
  shows, is :class:`~installer.engine.docker.DockerUnavailable` (exit 3).
* :mod:`installer.engine.compose` is a Compose v2 project through the ``docker compose``
  command line, so whatever the installer does the operator can do, and undo, with plain
  ``docker compose`` in the install directory.

The Kubernetes adapter lives beside these and offers the same kind of building blocks to
its own steps; the runner (:mod:`installer.runner`) knows neither.
"""
