"""Taking the measurements the checks read: each once, the slow ones concurrently.

A :class:`Measure` says how to take one measurement from a
:class:`~installer.checks.probes.Probe` (and which other measurements it reads). The slow
ones (the Docker Engine, Compose, DNS, the Kubernetes API, the public registry) have a
``budget``: :class:`Readings` starts each in a daemon thread of its own before anything is
read, and a reader waits at most that long, then gets the measure's ``stand_in`` (a value
that says it did not answer) instead of a hang. Daemon threads, because a resolver call
cannot be cancelled and must not hold the process open at exit. The fast ones are taken
in the reader's thread on first use; a measurement that raised raises again for every
reader, so each check that needs it reports it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from installer.checks.docker_probe import DOCKER_TIMEOUT

if TYPE_CHECKING:
    from installer.checks.probes import Probe
    from installer.checks.requirements import Requirements
    from installer.live.result import LiveInput

T = TypeVar("T")


@dataclass(frozen=True)
class Timeouts:
    """Seconds each slow probe may take (the Kubernetes one is per API request).

    ``grace`` is added to each wait: a probe given a timeout needs a moment beyond it to
    report that it timed out. ``kubernetes_import`` allows for importing the client.
    """

    docker: float = DOCKER_TIMEOUT
    compose: float = 5.0
    dns: float = 2.0
    kubernetes: float = 4.0
    registry: float = 1.5
    grace: float = 0.5
    kubernetes_import: float = 2.0
    live: float = 9.0  # each live check (installer.live), all of them at once

    @property
    def kubernetes_total(self) -> float:
        """Up to three API requests (version, API groups, nodes) and the import."""
        return self.kubernetes * 3 + self.kubernetes_import


@dataclass(frozen=True, eq=False)
class Measure(Generic[T]):
    """One measurement, shared by every check that reads it.

    ``take`` measures (it may read other measurements, listed in ``uses``, through the
    :class:`Readings` it is given). A slow measurement has a ``budget`` (seconds, from the
    :class:`Timeouts`) and a ``stand_in``: the value to report when it did not answer in
    time or failed (``error`` is ``"timeout"`` or the exception as text).
    """

    name: str
    take: Callable[[Readings], T]
    uses: tuple[Measure[Any], ...] = ()
    budget: Callable[[Timeouts], float] | None = None
    stand_in: Callable[[Readings, str], T] | None = None

    @property
    def slow(self) -> bool:
        return self.budget is not None


class _Background(Generic[T]):
    """A slow measurement running in a daemon thread; ``wait`` gives its value or why
    there is none."""

    def __init__(self, name: str, work: Callable[[], T]) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self.started = time.monotonic()
        threading.Thread(target=self._run, args=(work,), name=f"probe-{name}", daemon=True).start()

    def _run(self, work: Callable[[], T]) -> None:
        try:
            self._value = work()
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
            self._error = e
        finally:
            self._done.set()

    def wait(self, budget: float) -> tuple[T | None, str | None]:
        """(value, None), or (None, "timeout") / (None, the exception) after ``budget``
        seconds counted from the start."""
        remaining = max(0.0, self.started + budget - time.monotonic())
        if not self._done.wait(remaining):
            return None, "timeout"
        if self._error is not None:
            return None, f"{type(self._error).__name__}: {self._error}"
        return self._value, None


class Readings:
    """The measurements of one run of the checks, each taken at most once."""

    def __init__(
        self, probe: Probe, req: Requirements, limits: Timeouts, live: LiveInput | None = None
    ) -> None:
        self.probe = probe
        self.req = req
        self.limits = limits
        self.live = live  # the answers' live checks are asked only when given
        self._jobs: dict[str, _Background[Any]] = {}
        self._values: dict[str, Any] = {}
        self._errors: dict[str, Exception] = {}

    def start(self, measures: Iterable[Measure[Any]]) -> None:
        """Start the slow ones among ``measures`` (and what they use) now, concurrently."""
        for measure in _with_uses(measures):
            if measure.slow and measure.name not in self._jobs:
                self._jobs[measure.name] = _Background(measure.name, partial(measure.take, self))

    def get(self, measure: Measure[T]) -> T:
        """The measurement (waiting for a slow one at most its budget); raises what a fast
        one raised."""
        name = measure.name
        if name in self._errors:
            raise self._errors[name]
        if name not in self._values:
            if measure.budget is not None:
                self.start([measure])
                value, error = self._jobs[name].wait(measure.budget(self.limits))
                if error is not None and measure.stand_in is not None:
                    value = measure.stand_in(self, error)
                self._values[name] = value
            else:
                try:
                    self._values[name] = measure.take(self)
                except Exception as e:
                    self._errors[name] = e
                    raise
        value_of: T = self._values[name]
        return value_of

    def taken(self, measure: Measure[T]) -> T | None:
        """The measurement when this run took it (or started it), else None."""
        name = measure.name
        if name in self._jobs or name in self._values:
            return self.get(measure)
        return None


def _with_uses(measures: Iterable[Measure[Any]]) -> list[Measure[Any]]:
    found: dict[str, Measure[Any]] = {}
    pending = list(measures)
    while pending:
        measure = pending.pop()
        if measure.name not in found:
            found[measure.name] = measure
            pending.extend(measure.uses)
    return list(found.values())
