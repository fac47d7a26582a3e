"""Typing into the wizard's configuration form: time per key, per target.

Opens the configuration step on the fixed backend with sign-in turned on (the longest form:
every section shown), types an issuer URL key by key into its field and prints, per round,
the time per key: from sending the key until the app is idle again (the key handled, the
answers validated, the form laid out and drawn). Textual's test pilot adds its own wait for
the screen to settle to each key, so the figures are an upper bound of what an operator
sees; compare them with each other, before and after a change.

    python benchmarks/bench_form_typing.py [--rounds 5] [--target enterprise]

Exit status 0 whatever the figures: this measures, it does not judge.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from textual.widgets import Input  # noqa: E402

from screens.app import InstallerApp  # noqa: E402
from tests.ui.conftest import field_id  # noqa: E402
from tests.ui.fixed_backend import FixedBackend  # noqa: E402

TEXT = "https://login.example.com/realms/corp"


async def _round(target: str, save_dir: Path) -> float:
    """Seconds per key for one typing of :data:`TEXT`."""
    app = InstallerApp(
        backend=FixedBackend(), save_dir=save_dir, clock=lambda: 0.0, first_step="configuration"
    )
    app.state.draft = {
        "version": 1,
        "target": target,
        "domain": "codequal.example.com",
        "identity": {"enabled": True},
    }
    async with app.run_test(size=(120, 40)) as pilot:
        while getattr(app.screen, "STEP", None) != "configuration":
            await pilot.pause(0.05)
        await pilot.pause()
        app.screen.query_one(field_id("identity.issuer"), Input).focus()
        await pilot.pause()
        started = time.perf_counter()
        for key in TEXT:
            await pilot.press(key)
        await pilot.pause()
        return (time.perf_counter() - started) / len(TEXT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--target", action="append", choices=["production", "kubernetes", "enterprise"]
    )
    args = parser.parse_args()
    targets = args.target or ["production", "enterprise"]
    with tempfile.TemporaryDirectory() as scratch:
        for target in targets:
            per_key = [asyncio.run(_round(target, Path(scratch))) for _ in range(args.rounds)]
            rounds = ", ".join(f"{1000 * s:.0f}" for s in per_key)
            print(
                f"{target}: {len(TEXT)} keys, median {1000 * statistics.median(per_key):.0f} ms "
                f"a key (rounds: {rounds} ms)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
