"""``backup create`` and ``restore`` next to the primitives an operator would script.

The goal (issue 14): on about 1 GiB of rows and 1 GiB of volume files,

* ``backup create`` <= 1.2x ``pg_dump -Fc | age`` plus ``tar | zstd -T0 -3 | age`` of each
  volume (the primitives, run one after the other as a script would);
* ``restore`` <= 1.2x ``age -d | pg_restore`` plus ``age -d | zstd -d | tar x``;
* the installer's process tree (the installer and every child it starts: age, docker,
  zstd) never above 200 MB resident.

One installation of the test release (development with PostgreSQL: no public ports
needed) is filled with ``standin seed`` (rows of ``--row-bytes`` random hex, and a file of
the same content per row, in the codequal_data volume). Then, side by side in one run:
create vs the primitives' dump; the host wiped and ``restore`` vs the primitives' restore
into the live installation. ``restore`` also installs (containers, migration, services,
verification); the table shows its data steps apart (restore-volumes + restore-database,
from its own events), which is what the primitives do.

    .venv/bin/python benchmarks/bench_backup.py [--gib 1.0] [--row-bytes 8192]

It needs the Docker Engine, the test images (tests/support/images.py), ``age`` and ``zstd``,
about 8x ``--gib`` of free disk, and leaves nothing behind (project, volumes, directory).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

GOAL = 1.2
MEMORY_LIMIT_MB = 200
REPO = Path(__file__).resolve().parent.parent
SKIP = ["cpu", "memory", "disk", "docker_disk", "os", "cgroup", "dns", "ports"]


_SETTINGS = {"releases": str(REPO / "tests" / "releases")}


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["CODEQUAL_RELEASES_DIR"] = _SETTINGS["releases"]
    env["PYTHONPATH"] = str(REPO)
    return env


def _pin_images(work: Path) -> str:
    """Build (or find) the test images, and run the stand-in this tree built under a tag of
    its own, in a copy of the test releases: another checkout on the same Engine may build
    ``codequal-test/standin:1`` from another stand-in meanwhile."""
    import docker

    sys.path.insert(0, str(REPO))
    from tests.support.images import STANDIN_1, ensure_test_images

    image_id = ensure_test_images().references[STANDIN_1]
    private = f"codequal-test/standin-items:{image_id.split(':')[1][:12]}"
    docker.from_env().images.get(image_id).tag(private)
    releases = work / "releases"
    releases.mkdir()
    for release in (REPO / "tests" / "releases").glob("*.yaml"):
        (releases / release.name).write_text(release.read_text().replace(STANDIN_1, private))
    _SETTINGS["releases"] = str(releases)
    return private


def _installer() -> list[str]:
    return [sys.executable, "-m", "installer"]


class PeakMemory:
    """The highest resident memory of a process and all its descendants, sampled."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak = 0
        self.at_peak: list[tuple[str, int]] = []  # (process, RSS) when the tree peaked
        self.largest: dict[str, int] = {}  # process -> its own highest RSS
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            sample: list[tuple[str, int]] = []
            try:
                for process in [self.root, *self.root.children(recursive=True)]:
                    try:
                        sample.append((_label(process), process.memory_info().rss))
                    except psutil.Error:
                        continue
            except psutil.Error:
                break
            total = sum(rss for _, rss in sample)
            for label, rss in sample:
                self.largest[label] = max(self.largest.get(label, 0), rss)
            if total > self.peak:
                self.peak, self.at_peak = total, sample
            time.sleep(0.1)

    def breakdown(self) -> str:
        """The processes at the tree's peak, then each kind of process at its own peak."""
        lines = [f"  at the peak ({self.peak / 1e6:.0f} MB):"]
        lines += [f"    {rss / 1e6:6.1f} MB  {label}" for label, rss in self.at_peak]
        lines.append("  each at its own highest:")
        lines += [f"    {rss / 1e6:6.1f} MB  {label}" for label, rss in self.largest.items()]
        return "\n".join(lines)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak


def _label(process: psutil.Process) -> str:
    """A short name for a process of the tree: program and its first words."""
    words = process.cmdline()
    if words and "setpriv" in words[0] and "--" in words:
        words = words[words.index("--") + 1 :]
    shown = [Path(words[0]).name, *words[1:4]] if words else [process.name()]
    return " ".join(shown)[:60]


def _installer_run(args: list[str], cwd: Path) -> tuple[float, int, list[dict[str, Any]]]:
    """Run the installer: (seconds, peak tree RSS in bytes, events)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [*_installer(), *args],
        cwd=cwd,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    memory = PeakMemory(process.pid)
    stdout, stderr = process.communicate()
    elapsed = time.perf_counter() - started
    peak = memory.stop()
    print(f"{' '.join(args[:2])}: {elapsed:.1f}s\n{memory.breakdown()}", flush=True)
    if process.returncode != 0:
        sys.exit(
            f"{' '.join(args)} failed (exit {process.returncode}):\n"
            f"{stdout[-4000:]}\n{stderr[-4000:]}"
        )
    events = []
    for line in stdout.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
    return elapsed, peak, events


def _shell(script: str, cwd: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-ec", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"primitive failed:\n{script}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return elapsed


def _project(install_dir: Path) -> str:
    from installer.answers import AnswerFile

    answers = AnswerFile.model_validate(
        {"version": 1, "target": "development", "install_dir": str(install_dir)}
    )
    return answers.compose_project


def _down(project: str) -> None:
    subprocess.run(
        ["docker", "compose", "-p", project, "down", "-v", "--remove-orphans", "-t", "2"],
        capture_output=True,
        check=False,
    )
    for kind in ("container", "volume"):
        listed = subprocess.run(
            ["docker", kind, "ls", *(["-a"] if kind == "container" else []), "-q",
             "--filter", f"label=com.docker.compose.project={project}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        for ident in listed.stdout.split():
            subprocess.run(["docker", kind, "rm", "-f", ident], capture_output=True, check=False)


def _step_seconds(events: list[dict[str, Any]], steps: tuple[str, ...]) -> float:
    return sum(
        float((e.get("data") or {}).get("elapsed_seconds") or 0)
        for e in events
        if e.get("type") == "step.finished" and e.get("step") in steps
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=1.0, help="GiB of rows (and of files)")
    parser.add_argument("--row-bytes", type=int, default=8192)
    options = parser.parse_args()
    for program in ("age", "age-keygen", "zstd", "docker"):
        if shutil.which(program) is None:
            sys.exit(f"{program} is not installed")
    sys.path.insert(0, str(REPO))
    from tests.integration.apply_support import host_ports_lock

    with host_ports_lock():  # the development install publishes 3000 and 8002
        return _run(options)


def _run(options: argparse.Namespace) -> int:
    count = int(options.gib * 1024**3 / options.row_bytes)
    work = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    install_dir = work / "install"
    project = _project(install_dir)
    try:
        image = _pin_images(work)
        identity = work / "key"
        keygen = subprocess.run(
            ["age-keygen", "-o", str(identity)], capture_output=True, text=True, check=True
        )
        recipient = next(w for w in keygen.stderr.split() if w.startswith("age1"))
        answers = work / "answers.yaml"
        answers.write_text(
            json.dumps(
                {
                    "version": 1,
                    "target": "development",
                    "install_dir": str(install_dir),
                    "database": {"kind": "postgres"},
                    "monitoring": {"enabled": False},
                    "release": {"version": "1.0.0-test"},
                    "checks": {"skip": SKIP},
                    "backup": {"recipients": [recipient], "directory": str(work / "backups")},
                }
            )
        )
        print(f"installing in {install_dir} ...", flush=True)
        _installer_run(["apply", "--answers", str(answers), "--yes", "--json"], work)
        print(f"seeding {count} rows of {options.row_bytes} bytes (rows and files) ...", flush=True)
        _shell(
            f"docker compose -p {project} exec -T codequal standin seed --count {count} "
            f"--size {options.row_bytes} --batch 500 > /dev/null",
            install_dir,
        )
        postgres = f"$(docker compose -p {project} ps -q postgres)"
        volumes = ["codequal_data", "deepwiki_data", "deepwiki_repos"]

        # -- create vs the primitives -------------------------------------------------
        print("backup create ...", flush=True)
        create_s, create_peak, events = _installer_run(
            ["backup", "create", "--answers", str(answers), "--json"], work
        )
        archive = Path(
            next(e for e in events if e.get("type") == "run.finished")["data"]["archive"]
        )
        prim = work / "primitives"
        prim.mkdir()
        script = (
            f"docker exec {postgres} pg_dump -Fc -U codequal -d codequal "
            f"| age -r {recipient} -o {prim}/db.pgdump.age\n"
        )
        for volume in volumes:
            script += (
                f"docker run --rm --network none -v {project}_{volume}:/v:ro "
                f"--entrypoint tar {image} -C /v -cf - . "
                f"| zstd -q -T0 -3 | age -r {recipient} -o {prim}/{volume}.tar.zst.age\n"
            )
        print("primitives: pg_dump -Fc | age; tar | zstd -T0 -3 | age ...", flush=True)
        dump_s = _shell(script, work)

        # -- restore vs the primitives ------------------------------------------------
        print("primitives: age -d | pg_restore; age -d | zstd -d | tar x ...", flush=True)
        script = (
            f"docker exec -i {postgres} psql -q -U codequal -d postgres -c "
            "'DROP DATABASE IF EXISTS codequal WITH (FORCE)' -c 'CREATE DATABASE codequal'\n"
            f"age -d -i {identity} {prim}/db.pgdump.age "
            f"| docker exec -i {postgres} pg_restore -U codequal -d codequal --no-owner\n"
        )
        for volume in volumes:
            script += (
                f"age -d -i {identity} {prim}/{volume}.tar.zst.age | zstd -q -d "
                f"| docker run --rm -i --network none -v {project}_{volume}:/v "
                f"--entrypoint tar {image} -C /v -xf -\n"
            )
        load_s = _shell(script, work)
        print("wiping the host, then restore ...", flush=True)
        _down(project)
        shutil.rmtree(install_dir)
        restore_s, restore_peak, events = _installer_run(
            ["restore", str(archive), "--answers", str(answers), "--identity", str(identity),
             "--yes", "--json"],
            work,
        )  # fmt: skip
        data_s = _step_seconds(events, ("restore-volumes", "restore-database"))

        size = archive.stat().st_size
        rows = [
            ("backup create", create_s, dump_s, create_peak),
            ("restore (whole install)", restore_s, load_s, restore_peak),
            ("restore: data steps", data_s, load_s, None),
        ]
        print()
        print(f"{count} rows x {options.row_bytes} B + as many files; archive {size / 1e9:.2f} GB")
        print(
            f"{'':26} {'installer':>10} {'primitives':>11} {'ratio':>6} {'goal':>5} {'peak RSS':>9}"
        )
        for label, ours, theirs, peak in rows:
            ratio = ours / theirs if theirs else float("nan")
            peak_text = f"{peak / 1e6:.0f} MB" if peak is not None else ""
            print(
                f"{label:26} {ours:9.1f}s {theirs:10.1f}s {ratio:6.2f} {GOAL:5.1f} {peak_text:>9}"
            )
        peak = max(create_peak, restore_peak) / 1e6
        print(
            f"peak memory of the installer's process tree: {peak:.0f} MB (limit {MEMORY_LIMIT_MB})"
        )
        return 0
    finally:
        _down(project)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
