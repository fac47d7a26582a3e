"""The development and production targets: the seven install steps on one Docker Engine.

:class:`ComposeTarget` builds the runner's plan for a Compose install in ``install_dir``:

==============  ================================================================================
prerequisites   the checks of :mod:`installer.checks` (read-only; fails with exit 3)
configuration   render every file and write the ones that differ (atomic); the files of the
                last healthy install are first copied to ``state/previous/``
containers      every image present: already here, loaded from the offline bundle, or pulled
                (per-image progress); then the database container, started and healthy
database        SQLite, or PostgreSQL: wait until ready, create the role and database with the
                generated password (or set it), back up before a schema change, run the
                release's migration command (the ``migrate`` service); a managed server is
                reached over the network the same way
services        ``docker compose up`` of the application services and nginx: Compose recreates
                only those whose configuration or image changed; the monitoring services
                that changed start in the same ``up``, so they come up during verification
verification    every container healthy, then an HTTP(S) request to each public route through
                nginx, TLS verified against the installation's own certificate (read-only)
monitoring      Prometheus, Grafana, Loki when turned on, up (started here when the services
                step did not) and healthy
==============  ================================================================================

Each step's ``check`` compares the wanted state with the real one, so a second ``apply`` of
the same answers changes nothing and says so, and changed answers change only what they
touch. On failure the runner rolls back in reverse order: the database step restores its
pre-migration dump, and the configuration step restores the previous files and brings the
previous containers back (``docker compose up --wait``), or, for a first install, removes
the containers again (volumes, the data, are always kept).

The Compose project is the one named in the rendered ``docker-compose.yml`` (``name:``),
so the operator's plain ``docker compose`` in ``install_dir`` manages exactly what the
installer made.

The package's parts: :mod:`~installer.targets.compose.steps` (prerequisites, containers,
services, monitoring), :mod:`~installer.targets.compose.configuration` (with the snapshot
and restore of the previous install), :mod:`~installer.targets.compose.database`,
:mod:`~installer.targets.compose.verify`, :mod:`~installer.targets.compose.probes` (HTTP to
the installed services), :mod:`~installer.targets.compose.polling` (the one wait loop and
Compose durations), :mod:`~installer.targets.compose.installation` (the installation the
steps share, and their base class) and :mod:`~installer.targets.compose.base` (names and
helpers).
"""

from __future__ import annotations

from installer.runner import InstallPlan, Step
from installer.targets.compose.base import (
    MIGRATE_SERVICE,
    RENDERED_INDEX,
    ImageLoader,
    load_yaml,
)
from installer.targets.compose.configuration import ConfigurationStep
from installer.targets.compose.database import DatabaseStep
from installer.targets.compose.installation import ComposeInstallation, ComposeStep
from installer.targets.compose.steps import (
    ContainersStep,
    MonitoringStep,
    PrerequisitesStep,
    ServicesStep,
)
from installer.targets.compose.verify import VerificationStep
from installer.targets.preview import PlannedFile, PlannedStep, PlanPreview

__all__ = [
    "MIGRATE_SERVICE",
    "RENDERED_INDEX",
    "ComposeInstallation",
    "ComposeStep",
    "ComposeTarget",
    "ConfigurationStep",
    "ContainersStep",
    "DatabaseStep",
    "ImageLoader",
    "MonitoringStep",
    "PrerequisitesStep",
    "ServicesStep",
    "VerificationStep",
]


class ComposeTarget(ComposeInstallation):
    """A Compose installation in ``answers.install_dir``, as the runner's plan; see the module
    documentation."""

    def preview(self) -> PlanPreview:
        """What ``apply`` would do, touching nothing: rendered in a scratch directory that
        borrows the installation's generated secrets, compared with ``install_dir``."""
        from installer.render import preview

        rendering = preview(
            self.answers, self.secrets, self.release, self.install_dir, self._capacity()
        )
        rendered = rendering.rendered
        self.redactor.include(rendered.redactor)
        changes = {c.path: c for c in rendering.changes}
        files = [
            PlannedFile(f.path, len(f.content), f.mode, changes[f.path].kind, f.holds_secrets)
            for f in rendered.files
        ]
        files += [PlannedFile(c.path, 0, 0, "removed", True) for c in rendering.removed]
        # The step descriptions read the Compose file: give them the scratch rendering, so
        # that nothing renders into install_dir (which would store generated secrets).
        self._compose_doc = load_yaml(rendered.file("docker-compose.yml").content)
        steps = [PlannedStep(s.name, s.title, s.description) for s in self._steps()]
        return PlanPreview(
            target=self.answers.target,
            release=self.release.version,
            location=str(self.install_dir),
            files=files,
            steps=steps,
            facts={
                "compose_project": self.project.name,
                "images": self.images(),
                "urls": self.urls(),
            },
            rendering=rendering,
        )

    def _steps(self) -> list[Step]:
        return [
            PrerequisitesStep(self),
            ConfigurationStep(self),
            ContainersStep(self),
            DatabaseStep(self),
            ServicesStep(self),
            VerificationStep(self),
            MonitoringStep(self),
        ]

    def plan(self) -> InstallPlan:
        return InstallPlan(
            steps=self._steps(),
            state=self.state,
            identity=self.identity(),
            description=(
                f"install CodeQual {self.release.version} ({self.answers.target}) "
                f"in {self.install_dir}"
            ),
            redactor=self.redactor,
            result=self.result_document,
            summary={"target": self.answers.target, "release": self.release.version},
        )
