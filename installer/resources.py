"""Resource profiles and the per-service CPU, memory and worker allocation.

The profiles are the seed's resource tables. ``allocate`` turns a capacity (a profile's
nominal machine, or the machine measured for ``profile: auto``) into per-service limits,
requests and worker counts. It is a pure function: the same capacity and services always
give the same allocation, which the rendered Compose files and Kubernetes manifests use.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

GIB = 1024**3
MIB = 1024**2


@dataclass(frozen=True)
class Profile:
    """A requirement profile from the seed's resource tables."""

    name: str
    cpus: int
    memory_bytes: int
    disk_bytes: int
    nodes: int = 1
    description: str = ""


PROFILES: dict[str, Profile] = {
    "minimal": Profile("minimal", 4, 8 * GIB, 20 * GIB, description="development and testing"),
    "recommended": Profile(
        "recommended", 8, 16 * GIB, 100 * GIB, description="small production, one server"
    ),
    "enterprise": Profile(
        "enterprise",
        8,
        32 * GIB,
        500 * GIB,
        nodes=3,
        description="Kubernetes, at least 3 nodes of 8+ cores and 32+ GB, 500 GB in all",
    ),
}

# Which profile a target is held to by default (the prerequisite checks use it).
TARGET_PROFILE: dict[str, str] = {
    "development": "minimal",
    "production": "recommended",
    "kubernetes": "recommended",
    "enterprise": "enterprise",
}


@dataclass(frozen=True)
class Capacity:
    """What a machine (or one Kubernetes node) offers."""

    cpus: float
    memory_bytes: int


@dataclass(frozen=True)
class ServiceResources:
    """One service's share: hard limits, scheduling requests, and worker processes."""

    cpu_limit: float
    memory_limit_bytes: int
    cpu_request: float
    memory_request_bytes: int
    workers: int

    @property
    def memory_limit_mib(self) -> int:
        return self.memory_limit_bytes // MIB

    @property
    def memory_request_mib(self) -> int:
        return self.memory_request_bytes // MIB

    @property
    def cpu_limit_millis(self) -> int:
        return round(self.cpu_limit * 1000)

    @property
    def cpu_request_millis(self) -> int:
        return round(self.cpu_request * 1000)


@dataclass(frozen=True)
class ResourceAllocation:
    """Per-service resources for one install."""

    profile: str
    capacity: Capacity
    services: dict[str, ServiceResources]


# Relative weight of each service for CPU and memory, and the floor below which it does not
# run well. The API and DeepWiki (which clones and embeds repositories) get the most.
_WEIGHTS: dict[str, tuple[float, float, int]] = {
    # service: (cpu weight, memory weight, memory floor MiB)
    "codequal": (0.35, 0.28, 512),
    "deepwiki": (0.30, 0.35, 1024),
    "postgres": (0.15, 0.15, 256),
    "nginx": (0.05, 0.03, 64),
    "prometheus": (0.05, 0.07, 256),
    "grafana": (0.03, 0.04, 128),
    "loki": (0.04, 0.05, 256),
    "promtail": (0.03, 0.03, 64),
    "alertmanager": (0.02, 0.02, 64),
    "blackbox": (0.02, 0.02, 64),
}
# What the operating system and Docker keep for themselves.
_HEADROOM = 0.10
_MIN_CPU = 0.1


def _round_cpu(value: float) -> float:
    return max(_MIN_CPU, round(value * 10) / 10)


def _round_memory(value: float) -> int:
    # Whole multiples of 64 MiB read well in `docker stats` and in manifests.
    return max(64 * MIB, int(value // (64 * MIB)) * 64 * MIB)


def _memory_shares(usable: float, services: list[str]) -> dict[str, float]:
    """``usable`` bytes split by weight, where a service whose share falls below its floor
    gets the floor and the others share what is left (so raising one to its floor never
    pushes the total past ``usable``, as long as the floors themselves fit)."""
    floors = {s: _WEIGHTS[s][2] * MIB for s in services}
    fixed: dict[str, float] = {}
    while True:
        rest = [s for s in services if s not in fixed]
        if not rest:
            return fixed
        left = max(0.0, usable - sum(fixed.values()))
        weight = sum(_WEIGHTS[s][1] for s in rest) or 1.0
        shares = {s: left * _WEIGHTS[s][1] / weight for s in rest}
        below = [s for s in rest if shares[s] < floors[s]]
        if not below:
            return {**fixed, **shares}
        for name in below:
            fixed[name] = floors[name]


def allocate(profile: str, capacity: Capacity, services: Iterable[str]) -> ResourceAllocation:
    """Share ``capacity`` among ``services`` by weight, keeping headroom for the host.

    Memory limits never fall below a service's floor; what a floor takes beyond a
    service's weighted share comes out of the others' shares, so the limits add up to at
    most the usable memory (90 % of the machine) whenever the floors fit at all. On a
    machine too small for the floors (which the memory check fails) every service gets
    its floor. CPU limits are caps, rounded to 0.1 CPU (at least 0.1 each). Requests are a
    quarter of the CPU limit and half of the memory limit, so the scheduler packs sensibly
    while bursts still fit. Workers follow the CPU limit: one per CPU for the API (at most
    8), one per two CPUs for DeepWiki (at most 4), one elsewhere.
    """
    names = list(services)
    unknown = [s for s in names if s not in _WEIGHTS]
    if unknown:
        raise ValueError(f"no resource weights for: {', '.join(unknown)}")
    chosen = list(dict.fromkeys(names))
    cpu_total = sum(_WEIGHTS[s][0] for s in chosen) or 1.0
    usable_cpu = capacity.cpus * (1 - _HEADROOM)
    memory_shares = _memory_shares(capacity.memory_bytes * (1 - _HEADROOM), chosen)
    result: dict[str, ServiceResources] = {}
    for name in chosen:
        cpu_w, _mem_w, floor_mib = _WEIGHTS[name]
        cpu = _round_cpu(usable_cpu * cpu_w / cpu_total)
        memory = max(_round_memory(memory_shares[name]), floor_mib * MIB)
        if name == "codequal":
            workers = max(1, min(8, int(cpu)))
        elif name == "deepwiki":
            workers = max(1, min(4, int(cpu // 2)))
        else:
            workers = 1
        result[name] = ServiceResources(
            cpu_limit=cpu,
            memory_limit_bytes=memory,
            cpu_request=_round_cpu(cpu / 4),
            memory_request_bytes=_round_memory(memory / 2),
            workers=workers,
        )
    return ResourceAllocation(profile=profile, capacity=capacity, services=result)


def capacity_for(profile: str, measured: Capacity | None) -> Capacity:
    """The capacity a profile allocates from: nominal, or measured for ``auto``.

    ``auto`` without a measurement (rendering on another machine, say) falls back to the
    minimal profile, so output stays deterministic.
    """
    if profile == "auto":
        if measured is not None:
            return measured
        profile = "minimal"
    nominal = PROFILES[profile]
    return Capacity(cpus=nominal.cpus, memory_bytes=nominal.memory_bytes)
