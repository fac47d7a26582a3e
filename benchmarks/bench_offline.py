"""Benchmark the whole air-gapped install against the primitives it is made of, side by side.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_offline.py [--rounds 3] [--no-monitoring]

On a Docker Engine of its own that starts every run with none of the images (the bundle
tests' second ``dockerd``: own data root and bridge, registry traffic sent to a trap), for
the test release (production target, monitoring on):

  installer  ``codequal-installer apply --answers A --bundle B --key K --yes``: verify the
             signed bundle, load its images, database, services, verification, monitoring
  baseline   ``zstd -dc images.tar.zst | docker load`` (the same images, ``docker save`` of
             them compressed at zstd's default level) then ``docker compose up -d --wait
             --pull never`` on the files that the installer rendered (copied aside after
             its first run)

Each round runs both (installer first, then baseline), each after a ``sync`` (untimed)
and with the Engine emptied of every image, container and volume before (untimed). The
first installer run is a warm-up that also provides the rendered files. The medians and
their ratio are printed, with the installer's per-step medians from its NDJSON events.
Goal (issue 18): ratio <= 1.2.

The shell pipeline is the baseline itself, hence ``shell=True`` for it.
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
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RELEASE = "1.0.0-test"
SKIP = ["cpu", "memory", "disk", "docker_disk", "os", "cgroup", "dns"]


def _answers(work: Path, monitoring: bool) -> Path:
    document = {
        "version": 1,
        "target": "production",
        "domain": "codequal.test",
        "install_dir": str(work / "install"),
        "monitoring": {"enabled": monitoring},
        "checks": {"skip": SKIP},
    }
    path = work / "answers.yaml"
    path.write_text(json.dumps(document))
    return path


HOST_PORTS = (80, 443, 9090, 3001, 3100)  # what the install publishes on the host


class PortTaken(Exception):
    """Another program published one of the install's host ports during the run."""


def _wait_for_free_ports(timeout: float = 900) -> None:
    """Other tests on this machine may publish the same host ports: wait until they are free."""
    import socket

    deadline = time.monotonic() + timeout
    while True:
        taken = []
        for port in HOST_PORTS:
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    taken.append(port)
        if not taken or time.monotonic() > deadline:
            return
        print(f"waiting for host ports {taken} to be free", file=sys.stderr)
        time.sleep(10)


def _run(command: list[str] | str, env: dict[str, str], cwd: Path) -> tuple[float, str]:
    _wait_for_free_ports()
    subprocess.run(["sync"], check=True)
    started = time.perf_counter()
    result = subprocess.run(
        command, shell=isinstance(command, str), env=env, cwd=cwd,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        if "address already in use" in result.stdout + result.stderr:
            raise PortTaken(str(command))
        sys.exit(f"{command} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                 f"{result.stderr[-3000:]}")  # fmt: skip
    return elapsed, result.stdout


def _retried(run: Any) -> None:
    """``run()`` again (up to 3 times) when another test took a host port meanwhile."""
    for attempt in range(3):
        try:
            run()
            return
        except PortTaken as e:
            print(f"a host port was taken during {e}; again", file=sys.stderr)
            if attempt == 2:
                raise


def _empty(client: Any) -> None:
    """Every container, volume, network and image of the bench's Engine removed."""
    for container in client.containers.list(all=True):
        container.remove(force=True, v=True)
    client.volumes.prune()
    client.networks.prune()
    for image in client.images.list(all=True):
        client.images.remove(image.id, force=True, noprune=False)
    assert client.images.list(all=True) == [], "the Engine still holds images"


def _step_seconds(ndjson: str) -> dict[str, float]:
    started: dict[str, datetime] = {}
    seconds: dict[str, float] = {}
    for line in ndjson.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        step, kind = event.get("step"), event.get("type")
        when = datetime.fromisoformat(event["ts"]) if "ts" in event else None
        if step and when and kind == "step.started":
            started[step] = when
        elif step in started and when and kind in ("step.finished", "step.skipped"):
            seconds[step] = (when - started[step]).total_seconds()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-monitoring", dest="monitoring", action="store_false")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from installer.release import load_release
    from tests.integration.apply_support import host_ports_lock
    from tests.integration.bundle_support import cached_wheelhouse, isolated_engine
    from tests.support import TEST_RELEASES_DIR
    from tests.support.images import ensure_test_images

    ensure_test_images()
    work = Path(tempfile.mkdtemp(prefix="bench-offline-"))
    env = {k: v for k, v in os.environ.items() if k != "CODEQUAL_RELEASES_DIR"}
    env["PYTHONPATH"] = str(REPO)
    installer = [sys.executable, "-m", "installer"]
    vendor = {**env, "CODEQUAL_RELEASES_DIR": str(TEST_RELEASES_DIR)}

    references = sorted(
        set(load_release(str(TEST_RELEASES_DIR / f"{RELEASE}.yaml")).images().values())
    )
    print(
        f"making the bundle and images.tar.zst of {len(references)} images in {work}",
        file=sys.stderr,
    )
    _run([*installer, "bundle", "keygen", "--out", str(work / "vendor")], env, work)
    bundle = work / f"codequal-{RELEASE}.bundle"
    _run(
        [*installer, "bundle", "create", "--release", RELEASE, "--out", str(bundle),
         "--wheelhouse", str(cached_wheelhouse()), "--sign-key", str(work / "vendor.key"),
         "--no-installer-image"],
        vendor, work,
    )  # fmt: skip
    plain = work / "images.tar.zst"
    _run(f"docker save {' '.join(references)} | zstd -q -T0 -o {plain}", env, work)
    answers = _answers(work, args.monitoring)
    install_dir = work / "install"
    rendered = work / "rendered"
    apply_command = [*installer, "apply", "--answers", str(answers), "--bundle", str(bundle),
                     "--key", str(work / "vendor.pub"), "--yes", "--json"]  # fmt: skip
    baseline = (f"zstd -dc {plain} | docker load >/dev/null && "
                "docker compose up -d --wait --pull never")  # fmt: skip
    times: dict[str, list[float]] = {"installer": [], "baseline": []}
    steps: dict[str, list[float]] = {}

    (work / "engine").mkdir()
    with host_ports_lock(), isolated_engine(work / "engine") as engine:
        env["DOCKER_HOST"] = engine.host
        client = engine.client

        def installer_run(record: bool) -> None:
            _empty(client)
            shutil.rmtree(install_dir, ignore_errors=True)
            elapsed, out = _run(apply_command, env, work)
            if record:
                times["installer"].append(elapsed)
                for step, seconds in _step_seconds(out).items():
                    steps.setdefault(step, []).append(seconds)
            if not rendered.exists():
                shutil.copytree(install_dir, rendered, ignore=shutil.ignore_patterns("state"))
            print(f"installer {elapsed:6.2f} s", file=sys.stderr)

        def baseline_run() -> None:
            _empty(client)
            shutil.rmtree(install_dir, ignore_errors=True)
            shutil.copytree(rendered, install_dir)
            elapsed, _ = _run(baseline, env, install_dir)
            times["baseline"].append(elapsed)
            print(f"baseline  {elapsed:6.2f} s", file=sys.stderr)

        try:
            _retried(lambda: installer_run(record=False))  # warm-up; renders the files
            for _ in range(args.rounds):
                _retried(lambda: installer_run(record=True))
                _retried(baseline_run)
        finally:
            _empty(client)
        assert engine.trap.connections == 0, "a registry was contacted"

    ours = statistics.median(times["installer"])
    theirs = statistics.median(times["baseline"])
    monitoring = "with" if args.monitoring else "without"
    print(f"\noffline install of {RELEASE} ({monitoring} monitoring), {args.rounds} rounds, "
          f"bundle {bundle.stat().st_size / 2**20:.0f} MiB, images.tar.zst "
          f"{plain.stat().st_size / 2**20:.0f} MiB")  # fmt: skip
    for label, median in (("installer", ours), ("baseline", theirs)):
        runs = ", ".join(f"{t:.2f}" for t in times[label])
        print(f"  {label:10} median {median:6.2f} s  runs {runs}")
    print(f"  ratio      {ours / theirs:.2f} (goal <= 1.2)")
    print("  installer steps (median s): " + ", ".join(
        f"{step} {statistics.median(values):.2f}" for step, values in steps.items()
    ))  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
