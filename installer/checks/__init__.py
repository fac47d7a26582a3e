"""Prerequisite checks: measure the machine, judge it against the target, explain each verdict.

- :mod:`installer.checks.probes`: raw measurements behind the injectable :class:`Probe`;
- :mod:`installer.checks.requirements`: what each target needs and every check's verdict;
- :mod:`installer.checks.detect`: what kind of environment this is;
- :mod:`installer.checks.prerequisites`: :func:`run_prerequisites`, the install's first step.

The names below are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from installer.checks.prerequisites import Timeouts, run_prerequisites
    from installer.checks.probes import HostProbe, Probe
    from installer.checks.report import CheckResult, PrerequisiteReport, Status

__all__ = [
    "CheckResult",
    "HostProbe",
    "PrerequisiteReport",
    "Probe",
    "Status",
    "Timeouts",
    "run_prerequisites",
]

_HOMES = {
    "CheckResult": "report",
    "HostProbe": "probes",
    "PrerequisiteReport": "report",
    "Probe": "probes",
    "Status": "report",
    "Timeouts": "prerequisites",
    "run_prerequisites": "prerequisites",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{home}"), name)
