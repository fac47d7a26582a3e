"""What the locally built test images cost: a cold build, an import from the cached
debootstrap tarball, and the check that finds everything cached (what every test run pays).

    .venv/bin/python benchmarks/bench_test_images.py [--runs 10] [--cold]

Without ``--cold`` only the cached check is timed. ``--cold`` also rebuilds every image from
nothing (debootstrap included, in a temporary cache directory) and times an import of that
tarball under a scratch tag: it retags the shared ``codequal-test/*`` images, so run it on a
quiet machine.
Seen here (2 cores): cold about 90 s (debootstrap about 70 s of it), from the cached tarball
about 25 s, cached check about 0.2 s.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.images import _import_tarball, ensure_test_images


def _quiet(_: str) -> None:
    pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--cold", action="store_true", help="also time a build from nothing")
    args = parser.parse_args()

    if args.cold:
        with tempfile.TemporaryDirectory(prefix="bench-test-images-") as cache:
            os.environ["CODEQUAL_TEST_CACHE"] = cache
            report = ensure_test_images(force=True, log=print)
            print(
                f"cold build (debootstrap, import, {len(report.built)} images): "
                f"{report.seconds:.1f} s"
            )
            tarball = next(Path(cache).glob("debian-*.tar.zst"))
            scratch = "codequal-test/scratch:bench-import"
            started = time.monotonic()
            _import_tarball(tarball, scratch, "bench", _quiet)
            print(f"import of the cached tarball: {time.monotonic() - started:.1f} s")
            subprocess.run(["docker", "rmi", scratch], check=False, capture_output=True)
        del os.environ["CODEQUAL_TEST_CACHE"]

    ensure_test_images(log=_quiet)  # warm: everything present
    times = []
    for _ in range(args.runs):
        report = ensure_test_images(log=_quiet)
        assert not report.built, f"rebuilt on a cached run: {report.built}"
        times.append(report.seconds)
    print(
        f"cached check: median {statistics.median(times) * 1000:.0f} ms, "
        f"max {max(times) * 1000:.0f} ms over {args.runs} runs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
