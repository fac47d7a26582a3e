"""Keypress latency on the wizard's install screen while image loading floods it.

Runs the scenario of ``tests/ui/keypress_scenario.py`` (10,000 image-loading events a
second; ``f`` pressed ten times) ``--rounds`` times on the fixed backend and prints, per
round and overall, the largest and the mean time from sending a key to the end of its
handler. The goal is at most 100 ms for every key.

    python benchmarks/bench_wizard_keys.py [--rounds 5]

Exit status 0 whatever the figures: this measures, it does not judge.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from screens.app import InstallerApp  # noqa: E402
from tests.ui.fixed_backend import FixedBackend  # noqa: E402
from tests.ui.keypress_scenario import press_during_image_loading  # noqa: E402

GOAL = 0.100


async def _round(save_dir: Path) -> list[float]:
    backend = FixedBackend()
    app = InstallerApp(backend=backend, save_dir=save_dir, clock=lambda: 0.0, first_step="install")
    run = await press_during_image_loading(app, backend)
    return run.latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    every: list[float] = []
    for number in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory() as scratch:
            latencies = asyncio.run(_round(Path(scratch)))
        every += latencies
        print(
            f"round {number}: max {max(latencies) * 1000:6.1f} ms, "
            f"mean {statistics.mean(latencies) * 1000:6.1f} ms over {len(latencies)} keys"
        )
    print(
        f"all {len(every)} keys: max {max(every) * 1000:.1f} ms, "
        f"median {statistics.median(every) * 1000:.1f} ms, goal <= {GOAL * 1000:.0f} ms: "
        f"{'met' if max(every) <= GOAL else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
