"""The answer file's ``telemetry:`` section: error tracking (Sentry) and tracing (OTLP).

A compatible addition to version 1: a file without it renders the services as before.

::

    telemetry:
      sentry: true                                   # the DSN is the secret sentry_dsn
      otlp_endpoint: http://otel-collector:4318      # an OpenTelemetry collector
      otlp_protocol: http/protobuf

Both application services (the API and DeepWiki) receive the standard variables:
``SENTRY_DSN`` (with ``SENTRY_ENVIRONMENT`` and ``SENTRY_RELEASE``), and
``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_PROTOCOL``, ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES`` naming the installation and the release
(:meth:`Telemetry.environment`). The DSN travels like every other secret.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator

TRACED_SERVICES = ("codequal", "deepwiki")
_ENDPOINT = re.compile(r"^https?://[^/?#\s@]+(/[^?#\s]*)?$")


class Telemetry(BaseModel):
    """Error tracking and tracing of the application services."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    sentry: bool = Field(
        False,
        description="Report errors to Sentry; the DSN is the secret sentry_dsn (secrets file).",
    )
    otlp_endpoint: str | None = Field(
        None,
        description=(
            "OpenTelemetry collector the services send traces to (http:// or https://, "
            "e.g. http://otel-collector:4318); no tracing when empty."
        ),
    )
    otlp_protocol: Literal["http/protobuf", "grpc"] = Field(
        "http/protobuf", description="OTLP transport of otlp_endpoint (4318 http, 4317 grpc)."
    )

    @field_validator("otlp_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not _ENDPOINT.match(value):
            raise ValueError(
                "must be an http:// or https:// URL without credentials, query or fragment, "
                "like http://otel-collector:4318"
            )
        return value

    def environment(
        self, service: str, *, install: str, target: str, version: str
    ) -> dict[str, str]:
        """The plain (non-secret) telemetry variables of ``service`` in the installation
        ``install`` (Compose project or namespace); empty when nothing is set."""
        env: dict[str, str] = {}
        if service not in TRACED_SERVICES:
            return env
        if self.sentry:
            env["SENTRY_ENVIRONMENT"] = target
            env["SENTRY_RELEASE"] = version
        if self.otlp_endpoint:
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = self.otlp_endpoint
            env["OTEL_EXPORTER_OTLP_PROTOCOL"] = self.otlp_protocol
            env["OTEL_SERVICE_NAME"] = service
            env["OTEL_RESOURCE_ATTRIBUTES"] = resource_attributes(install, target, version)
        return env


def resource_attributes(install: str, target: str, version: str) -> str:
    """``OTEL_RESOURCE_ATTRIBUTES``: key=value pairs, values percent-encoded (W3C Baggage)."""
    pairs = {
        "service.namespace": install,
        "service.version": version,
        "deployment.environment": target,
        "codequal.install": install,
        "codequal.release": version,
    }
    return ",".join(f"{key}={quote(value, safe='')}" for key, value in pairs.items())
