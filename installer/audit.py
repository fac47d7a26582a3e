"""The answer file's ``audit:`` section: where the audit log goes, and how long records
and analysis data are kept.

A compatible addition to version 1: a file without it leaves both to the services.

::

    audit:
      destination: volume          # volume | log-stack
      retention_days: 365          # audit records
      analysis_retention_days: 90  # analysis results and DeepWiki's cached analyses

``volume`` writes the audit log as files into each service's data volume (so backups
carry it; Compose targets only: on Kubernetes the API's data directory is scratch space);
``log-stack`` writes it to standard output as JSON lines, where Promtail ships it to Loki
(Compose, with monitoring's loki) or the cluster's own log collection takes it. Both
application services receive the settings (:meth:`Audit.environment`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

AUDITED_SERVICES = ("codequal", "deepwiki")
AUDIT_DIRECTORY = "/app/data/audit"  # inside each application's data volume


class Audit(BaseModel):
    """Audit log of access and changes, and data retention."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    destination: Literal["volume", "log-stack"] | None = Field(
        None,
        description=(
            "Where audit records go: volume (files in each service's data volume; Compose "
            "targets) or log-stack (standard output, collected into Loki); the services' "
            "own default when empty."
        ),
    )
    retention_days: int | None = Field(
        None, ge=1, le=36500, description="Days audit records are kept; forever when empty."
    )
    analysis_retention_days: int | None = Field(
        None,
        ge=1,
        le=36500,
        description="Days analysis results and cached analyses are kept; forever when empty.",
    )

    def problems(self, *, compose: bool, loki: bool) -> list[tuple[tuple[str, ...], str]]:
        """Rules between this section and the target (``compose``) and monitoring (``loki``:
        the log stack is installed), each as (key path, message)."""
        problems: list[tuple[tuple[str, ...], str]] = []
        if self.destination == "volume" and not compose:
            problems.append(
                (
                    ("destination",),
                    "volume is for the Compose targets; on Kubernetes use log-stack (the "
                    "API's data directory is scratch space there)",
                )
            )
        if self.destination == "log-stack" and compose and not loki:
            problems.append(
                (
                    ("destination",),
                    "log-stack needs monitoring.enabled with loki in monitoring.components",
                )
            )
        return problems

    def environment(self, service: str) -> dict[str, str]:
        """The audit and retention variables of ``service``; empty when nothing is set."""
        env: dict[str, str] = {}
        if service not in AUDITED_SERVICES:
            return env
        if self.destination == "volume":
            env["AUDIT_LOG_DESTINATION"] = "file"
            env["AUDIT_LOG_DIR"] = AUDIT_DIRECTORY
        elif self.destination == "log-stack":
            env["AUDIT_LOG_DESTINATION"] = "stdout"
        if self.retention_days is not None:
            env["AUDIT_RETENTION_DAYS"] = str(self.retention_days)
        if self.analysis_retention_days is not None:
            env["ANALYSIS_RETENTION_DAYS"] = str(self.analysis_retention_days)
        return env
