"""The values an exported chart carries, where they come from and how each is checked.

Each :class:`ChartValue` names a field of the answer file that the chart lets an operator
change without exporting again. :mod:`installer.export.helm` finds the fields of the objects
that depend on it by rendering the answers a second time with the value changed (see
``perturbed``): a value that would add or remove objects, or change a field in a way other
than by being written into it, is not a chart value but part of what was exported.

Chart-only values (images, the names of the existing Secrets, whether the chart creates
the namespace, the Routes' TLS key) are not answer-file fields; their schema is written here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# What Helm's JSON Schema validator (Go's RE2: no look-around) and Python both read alike.
HOSTNAME_PATTERN = (
    r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def _next_int(high: int) -> Callable[[Any], Any]:
    return lambda value: value + 1 if value < high else value - 1


@dataclass(frozen=True)
class ChartValue:
    """A field of the answer file that the chart takes as a value."""

    path: tuple[str, ...]
    perturbed: Callable[[Any], Any]  # another valid value, for finding where it lands
    optional: bool = False  # carried only when the answers set it

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


CHART_VALUES: tuple[ChartValue, ...] = (
    ChartValue(("domain",), lambda value: f"perturbed-{value}"[:253]),
    ChartValue(("kubernetes", "replicas", "codequal"), _next_int(100)),
    ChartValue(("kubernetes", "replicas", "deepwiki"), _next_int(100)),
    ChartValue(
        ("kubernetes", "autoscaling", "min"), lambda value: value - 1 if value > 1 else value + 1
    ),
    ChartValue(("kubernetes", "autoscaling", "max"), _next_int(100)),
    ChartValue(("kubernetes", "autoscaling", "cpu_percent"), _next_int(100)),
    ChartValue(("kubernetes", "storage_class"), lambda v: f"{v}-perturbed", optional=True),
    ChartValue(("kubernetes", "ingress_class"), lambda v: f"{v}-perturbed", optional=True),
)
MIRROR_PATH = ("registry", "mirror")
MIRROR_PERTURBED = "mirror.perturbed.example.org:5000/perturbed"

CHART_ONLY_SCHEMAS: dict[str, dict[str, Any]] = {
    "images": {
        "type": "object",
        "description": (
            "Image of each service, before the mirror rewrite; pinned by digest where the "
            "release knows it."
        ),
    },
    "createNamespace": {
        "type": "boolean",
        "description": (
            "Create the namespace (with the restricted pod security labels); false when "
            "Argo CD, Flux or helm --create-namespace makes it."
        ),
    },
    "existingSecret": {
        "type": "string",
        "minLength": 1,
        "description": (
            "Existing Secret with the services' environment secrets (create-secrets.sh makes it)."
        ),
    },
    "existingTlsSecret": {
        "type": "string",
        "minLength": 1,
        "description": "Existing kubernetes.io/tls Secret the Ingresses serve.",
    },
    "existingRegistrySecret": {
        "type": "string",
        "minLength": 1,
        "description": "Existing image pull Secret for the mirror's login.",
    },
    "routeTLS": {
        "type": "object",
        "description": "OpenShift Routes with tls.mode provided carry the key inline.",
    },
}
ROUTE_KEY_SCHEMA: dict[str, Any] = {
    "type": "string",
    "description": (
        "PEM key of the Routes' certificate; never kept in the chart: supply it at install "
        "time (helm --set-file routeTLS.key=tls.key, or a values file outside Git)."
    ),
}
