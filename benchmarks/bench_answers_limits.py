"""How long the installer takes to refuse hostile answer files (issue 16, acceptance 7).

The goal: the "billion laughs" (nine levels of nine aliases, under 600 bytes) is refused by
``answers validate``, ``apply --answers`` and the wizard's ``--answers`` within 2 s, with
exit 2 and the position; a named pipe is refused at once. The worst documents the other
limits allow (the largest file, the most values, the deepest nesting) are timed too, next
to ``--version`` (the process floor). Each command runs ``--runs`` times, interleaved;
the figures are medians and maxima of wall-clock time.

    .venv/bin/python benchmarks/bench_answers_limits.py [--runs 5]
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

GOAL_SECONDS = 2.0
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from installer.yamlsource import MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_NODES  # noqa: E402


def _files(directory: Path) -> dict[str, Path]:
    laughs = [
        "version: 1",
        "target: development",
        'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]
    for level in range(1, 9):
        laughs.append(f"a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * 9) + "]")
    texts = {
        "laughs": "\n".join(laughs) + "\n",
        "largest": "k: " + "x" * (MAX_DOCUMENT_BYTES - 10) + "\n",
        "most-values": "".join(f"k{i}: v\n" for i in range(MAX_NODES)),
        "flow-values": "k: [" + "1," * MAX_NODES + "]\n",
        "deepest": "k: " + "[" * (MAX_DOCUMENT_BYTES - 10) + "\n",
        "deep-block": "".join(" " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 10)),
    }
    paths = {}
    for name, text in texts.items():
        path = directory / f"{name}.yaml"
        path.write_text(text)
        paths[name] = path
    pipe = directory / "pipe.yaml"
    os.mkfifo(pipe)
    paths["pipe"] = pipe
    return paths


def _run(args: list[str]) -> tuple[float, int]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "installer", *args],
        capture_output=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    return time.monotonic() - started, result.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = _files(Path(tmp))
        commands: dict[str, list[str]] = {"--version": ["--version"]}
        for name, path in files.items():
            commands[f"validate {name}"] = ["answers", "validate", str(path)]
        for name in ("laughs", "pipe"):
            commands[f"apply {name}"] = ["apply", "--answers", str(files[name]), "--yes"]
            commands[f"wizard {name}"] = ["--answers", str(files[name])]
        times: dict[str, list[float]] = {name: [] for name in commands}
        codes: dict[str, set[int]] = {name: set() for name in commands}
        for _ in range(options.runs):
            for name, args in commands.items():
                elapsed, code = _run(args)
                times[name].append(elapsed)
                codes[name].add(code)
    worst = 0.0
    print(f"{'command':28} {'median':>8} {'max':>8}  exit")
    for name, values in times.items():
        exits = ",".join(str(c) for c in sorted(codes[name]))
        print(f"{name:28} {statistics.median(values):7.2f}s {max(values):7.2f}s  {exits}")
        if name != "--version":
            worst = max(worst, *values)
    verdict = "met" if worst <= GOAL_SECONDS else "NOT met"
    print(f"slowest refusal {worst:.2f} s; goal {GOAL_SECONDS:.0f} s {verdict}")
    return 0 if worst <= GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
