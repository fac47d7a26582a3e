"""Whether an installed release may be upgraded straight to a target, and the path if not.

Release manifests say which releases they upgrade from (``upgrade.from``, e.g.
``">=1.0.0"``) and which releases an upgrade must stop at when it crosses them
(``upgrade.stops``). A direct upgrade ``installed -> target`` is allowed when the target's
``from`` accepts the installed release and none of its stops lies strictly between the two.
When it is not, :func:`decide` finds the shortest chain of known releases in which every
hop is allowed (the stops first among equals) and returns it as the path to follow.

Versions are ordered by their numeric core (``1.5.0-test`` sorts as ``1.5.0``), the way
the manifests name them; a suffix marks a build, not an order.

::

    decision = decide("1.0.0", load_release("3.0.0"), known_releases())
    if not decision.allowed:
        raise decision.refusal()      # exit 2: "... skips the required stop 1.5.0 ..."
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from installer.errors import UsageError
from installer.release import ReleaseManifest, version_key

_OPERATORS: dict[str, Callable[[tuple[int, ...], tuple[int, ...]], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}


class UpgradePathRefused(UsageError):
    """The target release does not upgrade from the installed one directly (exit 2)."""

    def __init__(
        self, message: str, *, hint: str | None, stops: list[str], path: list[str] | None
    ) -> None:
        super().__init__(message, hint=hint)
        self.stops = stops
        self.path = path


def _key(version: str) -> tuple[int, ...]:
    key = version_key(version)
    return key + (0,) * (3 - len(key)) if len(key) < 3 else key


def satisfies(version: str, spec: str | None) -> bool:
    """Does ``version`` satisfy ``spec`` (``">=1.0.0, <3"``; no operator means ``==``)?"""
    if not spec:
        return True
    for clause in spec.split(","):
        text = clause.strip()
        op = next((o for o in (">=", "<=", "==", ">", "<") if text.startswith(o)), "==")
        bound = text[len(op) :].strip() if text.startswith(op) else text
        if not _OPERATORS[op](_key(version), _key(bound)):
            return False
    return True


def crossed_stops(installed: str, target: ReleaseManifest) -> list[str]:
    """The target's required stops strictly between ``installed`` and the target."""
    low, high = _key(installed), _key(target.version)
    return sorted((s for s in target.upgrade.stops if low < _key(s) < high), key=_key)


def direct_problem(installed: str, target: ReleaseManifest) -> str | None:
    """Why ``installed -> target`` is not allowed in one step (None: it is)."""
    if not satisfies(installed, target.upgrade.from_):
        return (
            f"{target.version} upgrades only from releases {target.upgrade.from_}, "
            f"and {installed} is installed"
        )
    stops = crossed_stops(installed, target)
    if stops:
        word = "stop" if len(stops) == 1 else "stops"
        return f"the upgrade from {installed} to {target.version} skips the required {word} " + (
            ", ".join(stops)
        )
    return None


@dataclass(frozen=True)
class UpgradeDecision:
    """What :func:`decide` found: allowed or not, and the path to follow."""

    installed: str
    target: str
    allowed: bool
    problem: str | None = None
    stops: list[str] = field(default_factory=list)
    path: list[str] | None = None  # installed first, target last; None: no known path

    def refusal(self) -> UpgradePathRefused:
        if self.path:
            follow = " -> ".join(self.path)
            hint = (
                f"follow the path {follow}: upgrade to {self.path[1]} first; or, knowing "
                "the risk, pass --force-path REASON (the reason is recorded in the history)"
            )
        else:
            get = f"; get the release {', '.join(self.stops)} (its bundle) first"
            hint = (
                "no chain of releases known here leads there"
                + (get if self.stops else "")
                + "; or pass --force-path REASON (the reason is recorded in the history)"
            )
        return UpgradePathRefused(
            self.problem or "upgrade path refused", hint=hint, stops=self.stops, path=self.path
        )


def decide(
    installed: str, target: ReleaseManifest, releases: Mapping[str, ReleaseManifest]
) -> UpgradeDecision:
    """Whether ``installed -> target`` is allowed; when not, the shortest allowed path."""
    problem = direct_problem(installed, target)
    stops = crossed_stops(installed, target)
    if problem is None:
        return UpgradeDecision(installed, target.version, True, path=[installed, target.version])
    known = dict(releases)
    known[target.version] = target
    return UpgradeDecision(
        installed,
        target.version,
        False,
        problem=problem,
        stops=stops,
        path=find_path(installed, target.version, known),
    )


def find_path(
    installed: str, target: str, releases: Mapping[str, ReleaseManifest]
) -> list[str] | None:
    """The fewest hops from ``installed`` to ``target`` through ``releases``, each allowed."""
    low, high = _key(installed), _key(target)
    declared = {s for r in releases.values() for s in r.upgrade.stops}
    candidates = [name for name in releases if low < _key(name) < high and name != target]
    # Within one level: required stops first, then the furthest release (fewer hops later).
    candidates.sort(key=lambda n: (n not in declared, tuple(-p for p in _key(n)), n))
    queue: deque[list[str]] = deque([[installed]])
    seen = {installed}
    while queue:
        path = queue.popleft()
        here = path[-1]
        if direct_problem(here, releases[target]) is None:
            return [*path, target]
        for name in candidates:
            if name in seen or _key(name) <= _key(here):
                continue
            if direct_problem(here, releases[name]) is None:
                seen.add(name)
                queue.append([*path, name])
    return None


def known_releases(extra: Iterable[ReleaseManifest] = ()) -> dict[str, ReleaseManifest]:
    """Every release this installer can name: shipped, in ``CODEQUAL_RELEASES_DIR``, ``extra``."""
    import os

    from installer.release import bundled_release_names, load_release

    found: dict[str, ReleaseManifest] = {}
    for name in bundled_release_names():
        found[name] = load_release(name)
    for directory in os.environ.get("CODEQUAL_RELEASES_DIR", "").split(os.pathsep):
        if not directory:
            continue
        for path in sorted(Path(directory).glob("*.yaml")):
            try:
                manifest = load_release(str(path))
            except UsageError:
                continue  # not a release manifest: not a stop on any path
            found[manifest.version] = manifest
    for manifest in extra:
        found[manifest.version] = manifest
    return found
