"""Engine adapters: how the install steps talk to a container engine.

* :mod:`installer.engine.process` runs a command with its output streamed line by line,
  cancellable, and tied to the installer's life (a killed installer takes its children
  with it, so no orphaned ``docker compose`` keeps working behind a resumed run).
* :mod:`installer.engine.docker` is the Docker Engine through the Docker SDK: images
  (present, pulled with progress), containers, their health and logs, exec.
* :mod:`installer.engine.compose` is a Compose v2 project through the ``docker compose``
  command line, so whatever the installer does the operator can do, and undo, with plain
  ``docker compose`` in the install directory.

The Kubernetes adapter lives beside these and offers the same kind of building blocks to
its own steps; the runner (:mod:`installer.runner`) knows neither.
"""
