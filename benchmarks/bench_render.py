"""Rendering every file of a target, against the process floor (``codequal-installer --version``).

Runs, side by side and interleaved so both see the same machine load:

* the floor: ``codequal-installer --version``;
* ``codequal-installer plan --answers A --out DIR`` for each target (a second run into the
  same DIR, so generated secrets and the certificate are reused, as on every later run);

and prints the median wall time of each and its ratio to the floor. The goal is a ratio of
at most 1.2. It also prints what rendering alone costs inside a process that has already
started (loading the answers and the release, rendering, writing), next to the floor: once
counting the imports of the libraries the design prescribes (the pydantic answer model,
Jinja2, ruamel.yaml), once with them already imported, as in the wizard's process. And it
times those imports alone in a fresh process, the part of ``plan`` no rendering work can
remove.

Everything runs as on an operator's machine: Python may keep its bytecode cache (an
inherited PYTHONDONTWRITEBYTECODE is dropped) and one warm-up run of each fills it. Run on
demand, on a machine that is otherwise idle:

    .venv/bin/python benchmarks/bench_render.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ANSWERS = {
    "development": "version: 1\ntarget: development\n",
    "production": "version: 1\ntarget: production\ndomain: codequal.example.com\n",
    "kubernetes": "version: 1\ntarget: kubernetes\ndomain: codequal.example.com\n",
    "enterprise": (
        "version: 1\ntarget: enterprise\ndomain: codequal.corp.local\n"
        "kubernetes: {openshift: true}\n"
    ),
}
GOAL = 1.2
# Inside one process: everything `plan` does after start-up, timed.
IN_PROCESS = """
import sys, time
import installer.cli
if sys.argv[3] == "loaded":
    import installer.answers, installer.render, installer.release, installer.validation
    import jinja2, ruamel.yaml
start = time.perf_counter()
from pathlib import Path
from installer.release import release_for
from installer.render import render_plan, write_plan
from installer.validation import load_answers, load_secrets
answers = load_answers(sys.argv[1])
plan = render_plan(answers, load_secrets(None), release_for(answers), Path(sys.argv[2]))
write_plan(plan, Path(sys.argv[2]))
print(time.perf_counter() - start)
"""


ENVIRONMENT = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENVIRONMENT
    )
    return time.perf_counter() - start


def in_process(target: str, work: Path, mode: str) -> float:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            IN_PROCESS,
            str(work / f"{target}.yaml"),
            str(work / target),
            mode,
        ],
        check=True,
        capture_output=True,
        text=True,
        env=ENVIRONMENT,
    )
    return float(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    exe = str(Path(sys.executable).parent / "codequal-installer")
    floor_command = [exe, "--version"]
    with tempfile.TemporaryDirectory() as work:
        commands = {
            "--version (floor)": floor_command,
            "imports alone": [
                sys.executable,
                "-c",
                "import installer.cli, installer.answers, jinja2, ruamel.yaml",
            ],
        }
        for target, text in ANSWERS.items():
            answers = Path(work) / f"{target}.yaml"
            answers.write_text(text)
            out = Path(work) / target
            command = [exe, "plan", "--answers", str(answers), "--out", str(out)]
            commands[f"plan {target}"] = command
        for command in commands.values():  # warm-up: state, bytecode caches
            timed(command)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        inside: dict[str, list[float]] = {target: [] for target in ANSWERS}
        loaded: dict[str, list[float]] = {target: [] for target in ANSWERS}
        for _ in range(args.runs):
            for name, command in commands.items():
                samples[name].append(timed(command))
            for target in ANSWERS:
                inside[target].append(in_process(target, Path(work), "cold"))
                loaded[target].append(in_process(target, Path(work), "loaded"))
    floor = statistics.median(samples["--version (floor)"])
    print(f"{'command':<22} {'median ms':>10} {'ratio':>7}")
    worst = 0.0
    for name, values in samples.items():
        median = statistics.median(values)
        ratio = median / floor
        if name.startswith("plan"):
            worst = max(worst, ratio)
        print(f"{name:<22} {median * 1000:>10.1f} {ratio:>7.2f}")
    verdict = "meets" if worst <= GOAL else "misses"
    print(f"worst ratio {worst:.2f}: {verdict} the goal of {GOAL}x ({args.runs} runs each)")
    print()
    header = ("rendering alone", "imports counted", "of floor", "loaded", "of floor")
    print(f"{header[0]:<22} {header[1]:>16} {header[2]:>8} {header[3]:>8} {header[4]:>8}")
    for target in ANSWERS:
        cold = statistics.median(inside[target])
        warm = statistics.median(loaded[target])
        print(
            f"{target:<22} {cold * 1000:>13.1f} ms {cold / floor:>8.2f}"
            f" {warm * 1000:>5.1f} ms {warm / floor:>8.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
