"""Running the prerequisite checks: measure, evaluate, report.

:func:`run_prerequisites` is the install's first step and the ``check`` command. It runs
the checks of :data:`installer.checks.catalog.CHECKS` that the target uses and the
operator did not skip: the slow measurements (the Docker Engine, Compose, DNS, the
Kubernetes API, the public registry for the air-gap guess) start first, each in its own
thread with its own timeout (:mod:`installer.checks.readings`), while the fast ones
(procfs, sysfs, statvfs) are taken as the checks read them; a probe that does not answer
in time becomes a failed or warning check, never a hang.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from installer.checks.catalog import (
    CPU,
    DOCKER,
    KUBERNETES,
    MACHINE_CHECK_NAMES,
    MEMORY,
    REGISTRY,
    checks_for,
)
from installer.checks.probes import HostProbe, KubernetesInfo, Probe
from installer.checks.readings import Readings, Timeouts
from installer.checks.report import CheckResult, PrerequisiteReport
from installer.checks.requirements import Requirements
from installer.errors import UsageError
from installer.names import CHECK_NAMES
from installer.resources import Capacity

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.checks.measurements import Environment
    from installer.live.result import LiveInput

__all__ = ["Timeouts", "run_prerequisites"]


def _unmeasured(name: str, error: str, required: str | None = None) -> CheckResult:
    return CheckResult(
        name,
        "warn",
        f"could not be measured ({error})",
        required,
        hint="the probe itself failed: run `codequal-installer check --json` and report it",
    )


def _skip_reasons(
    answer_skips: Iterable[str], cli_skips: Iterable[str], skip_reason: str
) -> dict[str, str]:
    reasons: dict[str, str] = {}
    for name in answer_skips:
        reasons[name] = "skipped by checks.skip in the answer file"
    for name in cli_skips:
        reasons[name] = skip_reason
    unknown = sorted(set(reasons) - set(CHECK_NAMES))
    if unknown:
        raise UsageError(
            f"unknown check name: {', '.join(unknown)}",
            hint=f"check names: {', '.join(CHECK_NAMES)}",
        )
    return reasons


def run_prerequisites(
    subject: AnswerFile | str,
    *,
    skip: Iterable[str] = (),
    probe: Probe | None = None,
    timeouts: Timeouts | None = None,
    skip_reason: str = "skipped by --skip",
    live: LiveInput | None = None,
) -> PrerequisiteReport:
    """Check this machine (or cluster) against what ``subject`` needs.

    ``subject`` is a validated answer file or a bare target name (its defaults).
    ``skip`` names checks not to run, on top of the answer file's ``checks.skip``; they
    appear in the report as ``skipped`` with the reason. Checks the target does not use
    appear as ``skipped`` too, saying so. Never raises for a condition of the machine.

    With ``live`` (the answers, their secrets and release: :mod:`installer.live`) the live
    checks try the answers against the world too, concurrently with the slow probes;
    without it they are left out of the report.
    """
    if isinstance(subject, str):
        req = Requirements.for_target(subject)
        answer_skips: Iterable[str] = ()
    else:
        req = Requirements.from_answers(subject)
        answer_skips = subject.checks.skip
    reasons = _skip_reasons(answer_skips, skip, skip_reason)
    readings = Readings(
        probe if probe is not None else HostProbe(), req, timeouts or Timeouts(), live
    )
    used = checks_for(req.target)
    names = CHECK_NAMES if live is not None else MACHINE_CHECK_NAMES

    results: dict[str, CheckResult] = {}
    for name in names:
        check = used.get(name)
        if check is None:
            results[name] = CheckResult(
                name, "skipped", None, None, reason=f"not used by the {req.target} target"
            )
        elif name in reasons:
            results[name] = CheckResult(name, "skipped", None, None, reason=reasons[name])
        elif check.skip_reason is not None and (why := check.skip_reason(readings)) is not None:
            results[name] = CheckResult(name, "skipped", None, None, reason=why)
    running = [check for name, check in used.items() if name in names and name not in results]
    # Slow probes first, so they overlap with everything else.
    readings.start([measure for check in running for measure in check.needs])
    readings.start([REGISTRY])
    for check in running:
        try:
            results[check.name] = check.evaluate(readings)
        except Exception as e:  # noqa: BLE001 - a probe bug must not end in a traceback
            results[check.name] = _unmeasured(check.name, f"{type(e).__name__}: {e}")

    environment: Environment | None
    try:
        environment = readings.probe.environment(
            readings.taken(DOCKER), readings.taken(KUBERNETES), readings.get(REGISTRY)
        )
    except Exception:  # noqa: BLE001 - detection is informative; the checks stand without it
        environment = None
    return PrerequisiteReport(
        target=req.target,
        profile=req.profile.name,
        results=tuple(results[name] for name in names),
        environment=environment,
        capacity=_capacity(readings),
    )


def _capacity(readings: Readings) -> Capacity | None:
    """The machine ``profile: auto`` sizes from: this host (measured even when the cpu
    and memory checks are skipped), or the smallest node of the cluster."""
    if readings.req.is_kubernetes:
        info: KubernetesInfo | None = readings.taken(KUBERNETES)
        if info is None or not info.reachable or not info.nodes:
            return None
        return Capacity(
            cpus=min(n.cpus for n in info.nodes),
            memory_bytes=min(n.memory_bytes for n in info.nodes),
        )
    try:
        cpu, memory = readings.get(CPU), readings.get(MEMORY)
    except Exception:  # noqa: BLE001 - the cpu and memory checks report it
        return None
    return Capacity(cpus=float(cpu.logical), memory_bytes=memory.total_bytes)
