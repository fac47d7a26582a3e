"""Benchmark the offline bundle against the plain tools, side by side on the same images.

    .venv/bin/python benchmarks/bench_bundle.py [--size-mib 1024] [--repeat 2] [--workdir DIR]

Makes (once, cached in Docker) ``cqbench/big:1``, an image of --size-mib of incompressible
data, and uses it with the bundle tests' small images. Then, each --repeat times, best
time kept:

  create  ``codequal-installer bundle create`` against ``docker save IMAGES | zstd -T0``
          (plus ``tar c wheelhouse templates ... | zstd -T0`` for the same extra content):
          time and size; peak RSS of the whole process tree while bundling
  verify  ``codequal-installer bundle verify`` (one pass against the signed body hash)
          against ``sha256sum -c`` of the .tar.zst; ``verify --deep`` (every member read
          and checked) shown beside them
  load    ``codequal-installer bundle load`` against ``zstd -dc x.tar.zst | docker load``,
          each into a Docker that lacks the images

The two sides of each comparison run alternately (A, B, A, B, ...), so that the load other
work puts on the machine falls on both alike, each after a ``sync`` (untimed) so that
neither pays for writing out what the one before left in the page cache, and after
--warmup untimed runs of each. Ratios are of the best times; for create, whose time
moves with Docker's by a second either way, the ratio of the medians is shown too (and
for load).
Goals (issue 7): time ratios <= 1.1, size <= the baseline's, peak memory < 200 MB.

The shell pipelines are the baselines themselves, hence ``shell=True`` (S604) below.
"""

# ruff: noqa: S604

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CLI = str(ROOT / ".venv" / "bin" / "codequal-installer")
BIG = "cqbench/big:1"


class _RandomStream:
    """Incompressible bytes from SHA-256 in counter mode, read in chunks."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.counter = 0

    def read(self, size: int = 1 << 20) -> bytes:
        size = min(size, self.left)
        out = bytearray()
        while len(out) < size:
            self.counter += 1
            seed = hashlib.sha256(self.counter.to_bytes(8, "big")).digest()
            out += hashlib.shake_256(seed).digest(min(1 << 20, size - len(out)))
        self.left -= size
        return bytes(out)


def ensure_big_image(size_mib: int) -> None:
    found = subprocess.run(["docker", "image", "inspect", BIG], capture_output=True, check=False)
    if found.returncode == 0:
        return
    print(f"making {BIG}: {size_mib} MiB of incompressible data", file=sys.stderr)
    process = subprocess.Popen(["docker", "import", "-", BIG], stdin=subprocess.PIPE)
    assert process.stdin is not None
    with tarfile.open(fileobj=process.stdin, mode="w|") as tar:
        per_file = 128 << 20
        for index in range(max(1, size_mib * (1 << 20) // per_file)):
            info = tarfile.TarInfo(f"data/blob{index:03d}")
            info.size = per_file
            tar.addfile(info, _RandomStream(per_file))  # type: ignore[arg-type]
    process.stdin.close()
    if process.wait() != 0:
        raise SystemExit("docker import failed")


class PeakTreeRss:
    """Samples the RSS of a process and all its descendants; keeps the peak."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                processes = [self.root, *self.root.children(recursive=True)]
                total = 0
                for process in processes:
                    with contextlib.suppress(psutil.Error):
                        total += process.memory_info().rss
                self.peak = max(self.peak, total)
            except psutil.Error:
                pass
            time.sleep(0.02)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


CPU_SECONDS: dict[str, list[float]] = {}
MEDIANS: dict[str, float] = {}  # median seconds of each side of a paired comparison


def _dockerd_cpu() -> float:
    """CPU seconds dockerd has used (it does much of a save's or a load's work)."""
    found = subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True, text=True, check=False)
    if not found.stdout.split():
        return 0.0
    fields = Path(f"/proc/{found.stdout.split()[0]}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(command: list[str] | str, *, shell: bool = False, label: str = "") -> tuple[float, int]:
    """Seconds taken and peak tree RSS; the CPU seconds (the command's process tree plus
    dockerd) go to CPU_SECONDS[label]: a figure the machine's other load moves less.

    Dirty pages are written out first (untimed): the baseline's output (written, not
    synced) would otherwise be flushed during the next command's run."""
    os.sync()
    start = time.perf_counter()
    docker_before = _dockerd_cpu()
    process = subprocess.Popen(command, shell=shell, stdout=subprocess.DEVNULL)
    meter = PeakTreeRss(process.pid)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    peak = meter.stop()
    cpu = usage.ru_utime + usage.ru_stime + _dockerd_cpu() - docker_before
    CPU_SECONDS.setdefault(label, []).append(cpu)
    if process.returncode != 0:
        raise SystemExit(f"failed ({process.returncode}): {command}")
    return seconds, peak


def remove_images(references: list[str]) -> None:
    subprocess.run(["docker", "rmi", "-f", *references], capture_output=True, check=False)


_WORK: list[Path] = []


def work_dir(args: argparse.Namespace) -> Path:
    if not _WORK:
        _WORK.append(Path(args.workdir or tempfile.mkdtemp(prefix="bench-bundle-")))
        _WORK[0].mkdir(parents=True, exist_ok=True)
    return _WORK[0]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each side first")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()

    import docker

    from tests.integration.bundle_support import (
        APP,
        BASE,
        TOOL,
        cached_wheelhouse,
        ensure_bundle_images,
    )

    client = docker.from_env(timeout=600)
    ensure_bundle_images(client)
    ensure_big_image(args.size_mib)
    wheelhouse = work_dir(args) / "wheelhouse"
    if not wheelhouse.is_dir():  # a private copy: the tests' cache may be renewed meanwhile
        shutil.copytree(cached_wheelhouse(), wheelhouse)
    references = sorted([APP, BASE, TOOL, BIG])
    ids = {ref: client.images.get(ref).id for ref in references}
    work = work_dir(args)
    release = work / "bench.yaml"
    release.write_text(
        "name: codequal\nversion: 0.0.0-bench\nservices:\n"
        + "".join(
            f"  {service}:\n    image: {image}\n    role: {role}\n"
            for service, image, role in (
                ("codequal", APP, "app"),
                ("deepwiki", TOOL, "app"),
                ("nginx", BASE, "proxy"),
                ("loki", BIG, "monitoring"),
            )
        )
        + "routes:\n  - {path: /, service: codequal, port: 3000, health_path: /health}\n"
        "migration:\n  service: codequal\n  command: ['true']\n  schema_version: '1'\n"
    )
    bundle = work / "bench.bundle"
    baseline = work / "images.tar.zst"
    extras = work / "extras.tar.zst"
    results: dict[str, Any] = {
        "images": {r: client.images.get(r).attrs["Size"] for r in references}
    }

    def show(label: str, command: list[str] | str, timings: list[tuple[float, int]]) -> None:
        seconds = min(t for t, _ in timings)
        peak = max(p for _, p in timings)
        every = ", ".join(f"{t:.2f}" for t, _ in timings)
        cpu = min(CPU_SECONDS.get(label) or [0.0])
        print(
            f"{label:<28} {seconds:8.2f} s (runs: {every})   CPU {cpu:6.2f} s   "
            f"peak RSS {peak / 2**20:7.1f} MiB\n"
            f"    $ {command if isinstance(command, str) else ' '.join(command)}",
            file=sys.stderr,
        )

    def best(label: str, command: list[str] | str, shell: bool = False) -> tuple[float, int]:
        timings = [run(command, shell=shell, label=label) for _ in range(args.repeat)]
        show(label, command, timings)
        return min(t for t, _ in timings), max(p for _, p in timings)

    def paired(
        first: tuple[str, list[str] | str, bool], second: tuple[str, list[str] | str, bool]
    ) -> tuple[tuple[float, int], tuple[float, int]]:
        """Both commands, alternately, --repeat times each; best time and peak RSS of each."""
        timings: tuple[list[tuple[float, int]], list[tuple[float, int]]] = ([], [])
        for _ in range(args.warmup):  # untimed: the first run of each finds colder caches
            for label, command, shell in (first, second):
                run(command, shell=shell, label=f"{label} (warm-up)")
        for _ in range(args.repeat):
            for side, (label, command, shell) in enumerate((first, second)):
                timings[side].append(run(command, shell=shell, label=label))
        for (label, command, _), found in zip((first, second), timings, strict=True):
            show(label, command, found)
            MEDIANS[label] = statistics.median(t for t, _ in found)
        return (
            (min(t for t, _ in timings[0]), max(p for _, p in timings[0])),
            (min(t for t, _ in timings[1]), max(p for _, p in timings[1])),
        )

    # -- create ----------------------------------------------------------------------------
    (create_s, create_rss), (save_s, save_rss) = paired(
        ("bundle create",
         [CLI, "bundle", "create", "--release", str(release), "--out", str(bundle),
          "--wheelhouse", str(wheelhouse), "--no-installer-image"], False),
        ("docker save | zstd -T0",
         f"docker save {' '.join(references)} | zstd -q -T0 -3 -f -o {baseline}", True),
    )  # fmt: skip
    # The same non-image content, the plain way: tar | zstd.
    staging = work / "extras"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    shutil.copytree(wheelhouse, staging / "wheelhouse", ignore=shutil.ignore_patterns(".complete"))
    shutil.copytree(
        ROOT / "templates", staging / "templates", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "packaging" / "codequal-installer.sh", staging / "codequal-installer")
    extras_s, _ = best(
        "tar extras | zstd -T0",
        f"tar -C {staging} -c . | zstd -q -T0 -3 -f -o {extras}",
        shell=True,
    )
    baseline_size = baseline.stat().st_size + extras.stat().st_size
    results["create"] = {
        "bundle_seconds": create_s,
        "baseline_seconds": save_s + extras_s,
        "time_ratio": create_s / (save_s + extras_s),
        "median_time_ratio": MEDIANS["bundle create"]
        / (MEDIANS["docker save | zstd -T0"] + extras_s),
        "bundle_bytes": bundle.stat().st_size,
        "baseline_bytes": baseline_size,
        "size_ratio": bundle.stat().st_size / baseline_size,
        "bundle_peak_rss_mib": create_rss / 2**20,
        "baseline_peak_rss_mib": save_rss / 2**20,
        "bundle_cpu_seconds": min(CPU_SECONDS["bundle create"]),
        "baseline_cpu_seconds": min(CPU_SECONDS["docker save | zstd -T0"])
        + min(CPU_SECONDS["tar extras | zstd -T0"]),
    }

    # -- verify ----------------------------------------------------------------------------
    (work / "images.tar.zst.sha256").write_text(
        subprocess.run(
            ["sha256sum", baseline.name], cwd=work, capture_output=True, text=True, check=True
        ).stdout
    )
    (verify_s, verify_rss), (sha_s, _) = paired(
        ("bundle verify", [CLI, "bundle", "verify", str(bundle)], False),
        ("sha256sum -c", f"cd {work} && sha256sum --quiet -c images.tar.zst.sha256", True),
    )
    deep_s, deep_rss = best(
        "bundle verify --deep", [CLI, "bundle", "verify", "--deep", str(bundle)]
    )
    results["verify"] = {
        "bundle_seconds": verify_s,
        "baseline_seconds": sha_s,
        "time_ratio": verify_s / sha_s,
        "bundle_peak_rss_mib": verify_rss / 2**20,
        "deep_seconds": deep_s,
        "deep_time_ratio": deep_s / sha_s,
        "deep_peak_rss_mib": deep_rss / 2**20,
    }

    # -- load ------------------------------------------------------------------------------
    def load_bundle() -> tuple[float, int]:
        remove_images(references)
        return run([CLI, "bundle", "load", str(bundle)], label="bundle load")

    def load_plain() -> tuple[float, int]:
        remove_images(references)
        return run(f"zstd -dc {baseline} | docker load -q", shell=True, label="docker load")

    bundle_loads: list[tuple[float, int]] = []
    plain_loads: list[tuple[float, int]] = []
    for _ in range(args.repeat):
        bundle_loads.append(load_bundle())
        plain_loads.append(load_plain())
    load_s = min(t for t, _ in bundle_loads)
    plain_s = min(t for t, _ in plain_loads)
    show("bundle load", f"{CLI} bundle load {bundle}", bundle_loads)
    show("docker load", f"zstd -dc {baseline} | docker load -q", plain_loads)
    after = {ref: client.images.get(ref).id for ref in references}
    assert after == ids, "the loaded images differ from the saved ones"
    results["load"] = {
        "bundle_seconds": load_s,
        "baseline_seconds": plain_s,
        "time_ratio": load_s / plain_s,
        "median_time_ratio": statistics.median(t for t, _ in bundle_loads)
        / statistics.median(t for t, _ in plain_loads),
        "bundle_peak_rss_mib": max(p for _, p in bundle_loads) / 2**20,
    }
    print(json.dumps(results, indent=2))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
