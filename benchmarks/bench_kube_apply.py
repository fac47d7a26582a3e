"""What a Kubernetes install costs the installer, against the test API server.

No cluster runs here, so this measures the installer's own side: how long a fresh install,
a re-apply with the same answers (dry runs only: nothing written) and a dry run take
against ``tests/support/fake_kube_api.py``, and how many requests each sends. The fake
answers in well under a millisecond, so the times are the installer's (rendering, the
client, the runner's journal); on a real cluster add its latency per request.

It also measures what importing the ``kubernetes`` client costs, and checks that the
command line's start-up does not pay it.

    .venv/bin/python benchmarks/bench_kube_apply.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _import_cost(module: str, runs: int) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    samples = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(runs)
    ]
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from installer.credentials import Secrets
    from installer.targets.kubernetes.plan import dry_run, prepare_install
    from installer.targets.kubernetes.session import KubeOptions
    from tests.support.fake_kube_api import FakeKubeAPI
    from tests.support.kube_install import answers, install, release

    fresh, again, dry, counts = [], [], [], {}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as scratch, FakeKubeAPI() as api:
            tmp = Path(scratch)
            config = api.write_kubeconfig(tmp / "kubeconfig")
            options = {"poll_interval": 0.05}
            start = time.perf_counter()
            run = install(answers(), config, tmp / "root", **options)
            fresh.append(time.perf_counter() - start)
            assert run.exit_code == 0, run.text()
            counts["fresh install"] = len(api.requests)
            before = len(api.requests)
            start = time.perf_counter()
            run = install(answers(), config, tmp / "root", **options)
            again.append(time.perf_counter() - start)
            assert run.exit_code == 0, run.text()
            counts["re-apply (same answers)"] = len(api.requests) - before
            before = len(api.requests)
            session = prepare_install(
                answers(),
                Secrets(),
                release=release(),
                root=tmp / "root",
                options=KubeOptions(environ={"KUBECONFIG": str(config)}),
            )
            start = time.perf_counter()
            dry_run(session, lambda _line: None)
            dry.append(time.perf_counter() - start)
            session.close()
            counts["dry run"] = len(api.requests) - before

    print(f"{'':28} {'median s':>9} {'min s':>7} {'requests':>9}")
    for name, samples, key in (
        ("fresh install", fresh, "fresh install"),
        ("re-apply, same answers", again, "re-apply (same answers)"),
        ("dry run (server-side)", dry, "dry run"),
    ):
        print(f"{name:28} {statistics.median(samples):9.2f} {min(samples):7.2f} {counts[key]:9d}")
    print(
        f"import kubernetes.client: {_import_cost('kubernetes.client', args.runs):.3f} s (median)"
    )
    code = (
        "import sys, installer.cli; "
        "print(any(m.split('.')[0] == 'kubernetes' for m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    print(f"command line start-up imports kubernetes: {loaded.stdout.strip()}")


if __name__ == "__main__":
    main()
