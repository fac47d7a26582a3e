"""Prerequisite checks: measure the machine, judge it against the target, explain each verdict.

- :mod:`installer.checks.probes`: raw measurements behind the injectable :class:`Probe`;
- :mod:`installer.checks.requirements`: what each target needs and every check's verdict;
- :mod:`installer.checks.detect`: what kind of environment this is;
- :mod:`installer.checks.prerequisites`: :func:`run_prerequisites`, the install's first step.
"""

from __future__ import annotations

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
