"""How much ``codequal-installer check`` costs next to ``docker info``, the peer an operator
would run (and next to the process floor, ``--version``, for reference).

The goal (issue 13): ``check --target development --json`` takes no more than 2.5x the time
of ``docker info``, measured side by side on the same machine. (Issue 3's 1.3x of
``--version`` is retired: ``--version`` is not a peer.)

Every command runs the way an installed tool runs: with compiled byte code, kept in a
temporary PYTHONPYCACHEPREFIX (the working tree stays untouched) and filled by warm-up
runs. The timing is an interleaved loop (A, B, C, A, B, C ... so that load from other
processes hits every command alike) that records each run's wall-clock time and CPU time
(user + system, from wait4); with hyperfine installed (``apt-get install hyperfine``) it
times the same commands too. Ratios are of medians, which a shared machine's spikes move
less than means. "cold" is a run whose Compose version is not remembered from an earlier
run (the first ``check`` after installing or upgrading the plugin).

The side-by-side figures (the goal's measure) are the interleaved loop's. hyperfine runs
each command many times back to back instead, and the Docker Engine keeps working after
answering ``check``'s ``GET /info`` (the daemon executes runc and docker-init to report
their versions): on a two-CPU machine that work lands on the next run of the same command,
which the interleaved loop spreads over every command.

    .venv/bin/python benchmarks/bench_check.py [--runs 30] [--target development]

``check`` exits 3 on a machine below the profile; that is part of what is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 2.5  # times docker info


def _executable() -> str:
    candidate = Path(sys.executable).with_name("codequal-installer")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("codequal-installer")
    if found is None:
        sys.exit("codequal-installer is not installed (pip install -e .)")
    return found


def _environment(cache_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache_dir
    return env


def _with_hyperfine(
    commands: dict[str, list[str]], runs: int, env: dict[str, str]
) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(suffix=".json") as export:
        subprocess.run(
            [
                "hyperfine",
                "--shell=none",
                "--ignore-failure",
                "--warmup",
                "5",
                "--runs",
                str(runs),
                "--export-json",
                export.name,
                *[" ".join(c) for c in commands.values()],
            ],
            check=True,
            env=env,
        )
        results = json.loads(Path(export.name).read_text())["results"]
    return {name: r["median"] for name, r in zip(commands, results, strict=True)}


def _timed_run(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process) for one run."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _pid, _status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = 0  # reaped by wait4 above
    return wall, usage.ru_utime + usage.ru_stime


def _with_loop(
    commands: dict[str, list[str]], runs: int, env: dict[str, str]
) -> tuple[dict[str, float], dict[str, float]]:
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(5):  # warm-up: byte code, page cache, Compose's remembered version
        for command in commands.values():
            _timed_run(command, env)
    for _ in range(runs):
        for name, command in commands.items():
            wall, cpu = _timed_run(command, env)
            walls[name].append(wall)
            cpus[name].append(cpu)
    return (
        {name: statistics.median(values) for name, values in walls.items()},
        {name: statistics.median(values) for name, values in cpus.items()},
    )


def _print_ratios(title: str, medians: dict[str, float]) -> bool:
    floor = medians["docker info"]
    print(f"\n{title}")
    within = True
    for name, value in medians.items():
        ratio = value / floor
        line = f"  {name:<18} {value * 1000:7.1f} ms  {ratio:4.2f}x docker info"
        if name.startswith("check"):
            ok = ratio <= GOAL
            within = within and ok
            line += f"  ({'within' if ok else 'over'} the {GOAL}x goal)"
        print(line)
    return within


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--target", default="development")
    parser.add_argument(
        "--no-hyperfine", action="store_true", help="only the interleaved loop, even with hyperfine"
    )
    args = parser.parse_args()
    exe = _executable()
    docker = shutil.which("docker")
    if docker is None:
        sys.exit("the docker command is not installed")
    commands = {
        "docker info": [docker, "info"],
        "--version": [exe, "--version"],
        "check --json": [exe, "check", "--target", args.target, "--json"],
        "check (table)": [exe, "check", "--target", args.target],
        # Compose's version not remembered (a cache that cannot be written): the first
        # run after an install or an upgrade of the plugin.
        "check --json, cold": [
            "env",
            "XDG_CACHE_HOME=/dev/null/unwritable",
            exe,
            "check",
            "--target",
            args.target,
            "--json",
        ],
    }
    with tempfile.TemporaryDirectory(prefix="cq-bench-pycache-") as cache_dir:
        env = _environment(cache_dir)
        verdict = subprocess.run(
            commands["check --json"], env=env, capture_output=True, text=True, check=False
        )
        failed = [c["name"] for c in json.loads(verdict.stdout)["checks"] if c["status"] == "fail"]
        print(f"check exits {verdict.returncode} here; failing: {', '.join(failed) or 'none'}")
        if shutil.which("hyperfine") and not args.no_hyperfine:
            hyperfine = _with_hyperfine(commands, args.runs, env)
        else:
            hyperfine = None
        walls, cpus = _with_loop(commands, args.runs, env)
    if hyperfine is not None:
        _print_ratios(f"hyperfine, wall-clock medians ({args.runs} runs each):", hyperfine)
    side_by_side = _print_ratios(
        f"interleaved loop, wall-clock medians ({args.runs} runs each):", walls
    )
    _print_ratios("interleaved loop, CPU time (user+system) medians:", cpus)
    steady = (
        walls["check --json"] / walls["docker info"],
        walls["check (table)"] / walls["docker info"],
    )
    verdict = "within" if max(steady) <= GOAL else "over"
    print(
        f"\nside by side, steady state: check --json {steady[0]:.2f}x, table {steady[1]:.2f}x: "
        f"{verdict} the {GOAL}x goal"
        + ("" if side_by_side else " (the cold run is over it; see the module text)")
    )
    load = os.getloadavg()[0]
    print(f"\nload average while measuring: {load:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
