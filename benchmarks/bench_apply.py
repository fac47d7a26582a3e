"""``apply`` of a fresh install next to ``docker compose up -d --wait`` on the same files.

The goal (issue 5): a fresh ``codequal-installer apply`` of the development target, with
every image already present, takes no more than 1.25x the time of ``docker compose up -d
--wait`` run on the very files that apply generated (the same project, services, health
checks and migration service). Apply's overhead is the rest of the seven steps: the
prerequisite checks, rendering, the journal and lock, running the migration before the
services, and the request through the front door.

Rounds alternate the order (A then B, B then A) so that a warm cache or load from other
processes favours neither; every run starts from nothing (containers, networks and volumes
of the project removed, and for ``apply`` the install directory too). Ratios are of
medians.

    .venv/bin/python benchmarks/bench_apply.py [--rounds 5] [--target development]

It uses the test release (tests/releases, images built by tests/support/images.py) and an
install directory under /tmp; it needs the Docker Engine and the host ports of the target.
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

GOAL = 1.25
REPO = Path(__file__).resolve().parent.parent
SKIP = ["cpu", "memory", "disk", "docker_disk", "os", "cgroup", "dns"]


def _answers(directory: Path, target: str) -> Path:
    document: dict[str, object] = {
        "version": 1,
        "target": target,
        "install_dir": str(directory / "install"),
        "monitoring": {"enabled": False},
        "release": {"version": "1.0.0-test"},
        "checks": {"skip": SKIP},
    }
    if target != "development":
        document["domain"] = "codequal.test"
    path = directory / "answers.yaml"
    path.write_text(json.dumps(document))
    return path


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["CODEQUAL_RELEASES_DIR"] = str(REPO / "tests" / "releases")
    return env


def _installer() -> list[str]:
    candidate = Path(sys.executable).with_name("codequal-installer")
    return [str(candidate)] if candidate.exists() else [sys.executable, "-m", "installer"]


def _timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(
            f"{' '.join(command)} failed (exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return elapsed


def _down(install_dir: Path, project: str) -> None:
    subprocess.run(
        ["docker", "compose", "-p", project, "down", "-v", "--remove-orphans", "-t", "2"],
        cwd=install_dir if install_dir.exists() else None,
        capture_output=True,
        check=False,
    )


def _project(install_dir: Path) -> str:
    from installer.answers import AnswerFile

    answers = AnswerFile.model_validate(
        {"version": 1, "target": "development", "install_dir": str(install_dir)}
    )
    return answers.compose_project


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--target", choices=["development", "production"], default="development")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from tests.integration.apply_support import host_ports_lock
    from tests.support.images import ensure_test_images

    ensure_test_images()
    with host_ports_lock():  # the integration tests publish the same host ports
        return _measure(args.rounds, args.target)


def _measure(rounds: int, target: str) -> int:
    env = _environment()
    work = Path(tempfile.mkdtemp(prefix="bench-apply-"))
    answers = _answers(work, target)
    install_dir = work / "install"
    saved = work / "rendered"
    project = _project(install_dir)
    apply_command = [*_installer(), "apply", "--answers", str(answers), "--yes"]
    compose_command = ["docker", "compose", "up", "-d", "--wait", "--pull", "never"]
    times: dict[str, list[float]] = {"apply": [], "compose": []}

    def run_apply() -> None:
        _down(install_dir, project)
        shutil.rmtree(install_dir, ignore_errors=True)
        times["apply"].append(_timed(apply_command, work, env))
        # keep the generated files (state/ aside) for the compose runs
        shutil.rmtree(saved, ignore_errors=True)
        shutil.copytree(install_dir, saved, ignore=shutil.ignore_patterns("state"))
        _down(install_dir, project)

    def run_compose() -> None:
        _down(install_dir, project)
        shutil.rmtree(install_dir, ignore_errors=True)
        shutil.copytree(saved, install_dir)
        times["compose"].append(_timed(compose_command, install_dir, env))
        _down(install_dir, project)

    try:
        run_apply()  # warm-up, and the files for the first compose run
        times["apply"].clear()
        for round_number in range(rounds):
            order = (run_apply, run_compose) if round_number % 2 == 0 else (run_compose, run_apply)
            for run in order:
                run()
            print(
                f"round {round_number + 1}: apply {times['apply'][-1]:.2f}s, "
                f"compose up --wait {times['compose'][-1]:.2f}s",
                flush=True,
            )
    finally:
        _down(install_dir, project)
        shutil.rmtree(work, ignore_errors=True)

    apply_median = statistics.median(times["apply"])
    compose_median = statistics.median(times["compose"])
    ratio = apply_median / compose_median
    print()
    print(f"target {target}, {rounds} rounds, medians (seconds):")
    print(f"  {'codequal-installer apply':34} {apply_median:7.2f}")
    print(f"  {'docker compose up -d --wait':34} {compose_median:7.2f}")
    print(f"  ratio {ratio:.2f} (goal <= {GOAL}): {'met' if ratio <= GOAL else 'NOT met'}")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
