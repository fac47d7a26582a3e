"""allocate(): the per-service limits ``profile: auto`` derives, on a table of machine sizes."""

from __future__ import annotations

import pytest

from installer.resources import GIB, MIB, PROFILES, Capacity, allocate, capacity_for

ALL = ["codequal", "deepwiki", "postgres", "nginx", "prometheus", "grafana", "loki", "promtail"]
DEVELOPMENT = ["codequal", "deepwiki"]  # sqlite, no nginx, no monitoring
FLOORS_MIB = {
    "codequal": 512,
    "deepwiki": 1024,
    "postgres": 256,
    "nginx": 64,
    "prometheus": 256,
    "grafana": 128,
    "loki": 256,
    "promtail": 64,
}

# (cpus, memory GiB, services, codequal workers, deepwiki workers)
MACHINES = [
    (2, 4, ALL, 1, 1),
    (2, 3, ALL, 1, 1),  # floors bump several services: the rest must shrink
    (4, 8, ALL, 1, 1),
    (4, 7.6, ALL, 1, 1),  # an "8 GB" VM as the kernel reports it
    (8, 16, ALL, 2, 1),
    (16, 32, ALL, 5, 2),
    (32, 64, ALL, 8, 4),  # capped: 8 API workers, 4 DeepWiki workers
    (64, 256, ALL, 8, 4),
    (4, 8, DEVELOPMENT, 1, 1),
    (8, 16, DEVELOPMENT, 3, 1),
]


def _ids(row: tuple[object, ...]) -> str:
    return f"{row[0]}cpu-{row[1]}GiB-{len(row[2])}svc"  # type: ignore[arg-type]


@pytest.mark.parametrize("row", MACHINES, ids=_ids)
def test_allocation_fits_the_machine(row: tuple[float, float, list[str], int, int]) -> None:
    cpus, gib, services, api_workers, deepwiki_workers = row
    capacity = Capacity(cpus=cpus, memory_bytes=int(gib * GIB))
    allocation = allocate("auto", capacity, services)
    shares = allocation.services

    assert list(shares) == services
    usable_memory = capacity.memory_bytes * 0.9
    # Memory limits add up to at most the usable memory (the host keeps 10 %).
    assert sum(s.memory_limit_bytes for s in shares.values()) <= usable_memory
    # CPU limits are caps rounded to 0.1: at most 0.05 over per service from rounding.
    assert sum(s.cpu_limit for s in shares.values()) <= cpus * 0.9 + 0.05 * len(services)
    # Requests must fit for a scheduler to place every pod on such a node.
    assert sum(s.cpu_request for s in shares.values()) <= cpus
    assert sum(s.memory_request_bytes for s in shares.values()) <= capacity.memory_bytes
    for name, share in shares.items():
        assert share.memory_limit_bytes >= FLOORS_MIB[name] * MIB, name
        assert share.memory_limit_bytes % (64 * MIB) == 0, name
        assert share.cpu_limit >= 0.1, name
        assert share.cpu_request <= share.cpu_limit, name
        assert share.memory_request_bytes <= share.memory_limit_bytes, name
    assert shares["codequal"].workers == api_workers
    assert shares["deepwiki"].workers == deepwiki_workers


def test_bigger_machines_never_get_less() -> None:
    sizes = [(2, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 256)]
    previous = None
    for cpus, gib in sizes:
        current = allocate("auto", Capacity(cpus, gib * GIB), ALL).services
        if previous is not None:
            for name in ALL:
                assert current[name].cpu_limit >= previous[name].cpu_limit, (cpus, name)
                assert current[name].memory_limit_bytes >= previous[name].memory_limit_bytes
        previous = current


def test_floor_overflow_comes_out_of_the_others() -> None:
    # 3 GiB: the weighted shares of deepwiki, prometheus, grafana and loki fall below their
    # floors; without redistribution the limits added up to 2.88 GiB of 2.7 usable.
    shares = allocate("auto", Capacity(2, 3 * GIB), ALL).services
    assert shares["deepwiki"].memory_limit_bytes == 1024 * MIB
    assert shares["loki"].memory_limit_bytes == 256 * MIB
    assert sum(s.memory_limit_bytes for s in shares.values()) <= 3 * GIB * 0.9
    assert shares["codequal"].memory_limit_bytes < 768 * MIB  # gave way to the floors


def test_machine_too_small_for_the_floors_gets_the_floors() -> None:
    shares = allocate("auto", Capacity(1, 2 * GIB), ALL).services
    assert {n: s.memory_limit_bytes // MIB for n, s in shares.items()} == FLOORS_MIB


def test_the_same_capacity_gives_the_same_allocation() -> None:
    first = allocate("auto", Capacity(6, 12 * GIB), ALL)
    second = allocate("auto", Capacity(6, 12 * GIB), iter(ALL))  # any iterable, once
    assert first.services == second.services


def test_unknown_service_is_an_error_even_from_a_generator() -> None:
    with pytest.raises(ValueError, match="no resource weights for: redis"):
        allocate("auto", Capacity(4, 8 * GIB), (s for s in ["codequal", "redis"]))


def test_capacity_for_profiles() -> None:
    measured = Capacity(12, 48 * GIB)
    assert capacity_for("auto", measured) == measured
    minimal = PROFILES["minimal"]
    assert capacity_for("auto", None) == Capacity(minimal.cpus, minimal.memory_bytes)
    assert capacity_for("recommended", measured) == Capacity(8, 16 * GIB)
    assert capacity_for("enterprise", None) == Capacity(8, 32 * GIB)
