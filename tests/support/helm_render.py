"""The Helm render harness (``tests/support/helm_render/main.go``), built on first use.

No ``helm`` binary can be had on the test machines; the harness renders a chart with the same
Go ``text/template``, the same sprig functions and Helm's own additions (what it does not
do is listed at the top of ``main.go``). It is built from Debian's Go packages
(``golang-go``, ``golang-github-masterminds-sprig-dev``, ``golang-k8s-sigs-yaml-dev``, which
``scripts/test`` installs) and cached under the test cache, keyed by its source's hash.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.images import cache_dir

SOURCE_DIR = Path(__file__).resolve().parent / "helm_render"
KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl"  # with Kustomize v5; not Debian's 1.20


class HarnessBuildError(RuntimeError):
    pass


def harness() -> Path:
    """The built harness, made when its source changed since the last build."""
    digest = hashlib.sha256()
    for path in sorted(SOURCE_DIR.glob("*.go")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    binary = cache_dir() / f"helm-render-{digest.hexdigest()[:16]}"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        raise HarnessBuildError("go is not installed; scripts/test installs golang-go")
    binary.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=binary.parent) as scratch:
        built = Path(scratch) / "helm-render"
        env = {
            **os.environ,
            "GO111MODULE": "off",
            "GOPATH": "/usr/share/gocode",
            "GOCACHE": str(Path(scratch) / "gocache"),
        }
        result = subprocess.run(
            [go, "build", "-o", str(built), "."],
            cwd=SOURCE_DIR,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if result.returncode != 0:
            raise HarnessBuildError(f"go build failed: {result.stderr.strip()}")
        built.replace(binary)  # atomic: a concurrent build finds a whole binary or none
    return binary


def render_chart(
    chart: Path,
    *args: str,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """``helm template``'s equivalent for ``chart``: -f FILE, --set path=value, --notes."""
    result = subprocess.run(
        [str(harness()), *args, str(chart)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"the chart did not render: {result.stderr}")
    return result
