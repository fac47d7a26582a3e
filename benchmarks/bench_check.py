"""How much ``codequal-installer check`` costs next to the process floor (``--version``).

The goal (issue 3): ``check`` takes no more than 1.3x the time of
``codequal-installer --version``, measured side by side on the same machine.

Both commands run the way an installed tool runs: with compiled bytecode. The byte code
goes to a temporary PYTHONPYCACHEPREFIX (the working tree stays untouched), filled by the
warm-up runs. With hyperfine installed (``apt-get install hyperfine``) it does the
timing; otherwise an interleaved Python loop does (A, B, A, B ... so that load from other
processes hits both alike). The ratio printed is of the medians, which a shared machine's
spikes move less than the means.

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

GOAL = 1.3


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


def _with_loop(commands: dict[str, list[str]], runs: int, env: dict[str, str]) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(5):  # warm-up: byte code, page cache
        for command in commands.values():
            subprocess.run(command, env=env, capture_output=True, check=False)
    for _ in range(runs):
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, env=env, capture_output=True, check=False)
            times[name].append(time.perf_counter() - start)
    for name, values in times.items():
        print(
            f"{name:>24}: median {statistics.median(values) * 1000:6.1f} ms, "
            f"min {min(values) * 1000:6.1f} ms over {runs} runs"
        )
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--target", default="development")
    parser.add_argument(
        "--loop", action="store_true", help="use the Python loop even with hyperfine"
    )
    args = parser.parse_args()
    exe = _executable()
    commands = {
        "--version": [exe, "--version"],
        "check --json": [exe, "check", "--target", args.target, "--json"],
        "check (table)": [exe, "check", "--target", args.target],
    }
    with tempfile.TemporaryDirectory(prefix="cq-bench-pycache-") as cache_dir:
        env = _environment(cache_dir)
        if shutil.which("hyperfine") and not args.loop:
            medians = _with_hyperfine(commands, args.runs, env)
            tool = "hyperfine"
        else:
            medians = _with_loop(commands, args.runs, env)
            tool = "interleaved loop"
    floor = medians["--version"]
    print(f"\nmedians ({tool}), target {args.target}:")
    verdicts = []
    for name, value in medians.items():
        ratio = value / floor
        line = f"  {name:<14} {value * 1000:7.1f} ms  {ratio:4.2f}x --version"
        if name != "--version":
            ok = ratio <= GOAL
            verdicts.append(ok)
            line += f"  ({'within' if ok else 'over'} the {GOAL}x goal)"
        print(line)


if __name__ == "__main__":
    main()
