"""The wheelhouse: the installer and every dependency as wheels, for the target platform.

Made at ``bundle create`` time with pip from the package index: the installer's own wheel
(built from this source tree), then ``pip download --only-binary=:all:`` of it and its
dependencies for each target Python version on manylinux (glibc 2.17 to 2.28, so any
current Debian, Ubuntu or RHEL), plus pip's own wheel, which the launcher runs to install
everything offline. ``--wheelhouse DIR`` reuses a wheelhouse made before.

By hand: ``python -m installer.bundle.wheelhouse DIR [--python 3.11 ...]``.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from installer.errors import InstallerError, UsageError

MANYLINUX = ("manylinux_2_28", "manylinux_2_17", "manylinux2014", "manylinux2010", "manylinux1")


class WheelhouseError(InstallerError):
    """pip could not build or download the wheels."""


def project_root() -> Path:
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise UsageError(
            "this copy of the installer has no source tree to build its wheel from",
            hint="pass --wheelhouse with the wheelhouse of an existing bundle",
        )
    return root


def current_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _pip(args: list[str], what: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
        raise WheelhouseError(
            f"{what} failed (pip exit {result.returncode}):\n{tail}",
            hint="the machine that makes the bundle needs the package index (PyPI)",
        )


def build_wheelhouse(destination: Path, python_versions: list[str] | None = None) -> Path:
    """Fill ``destination`` with the wheels; returns it."""
    versions = python_versions or [current_python()]
    machine = platform.machine()
    if sys.platform != "linux":
        raise UsageError("wheelhouses are made for Linux targets only; make the bundle on Linux")
    destination.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="codequal-wheel-") as build:
        _pip(
            ["wheel", "--quiet", "--no-deps", "--wheel-dir", build, str(project_root())],
            "building the installer's wheel",
        )
        own = sorted(Path(build).glob("codequal_installer-*.whl"))
        if not own:
            raise WheelhouseError("pip built no codequal_installer wheel")
        for version in versions:
            abi = "cp" + version.replace(".", "")
            platforms = [arg for tag in MANYLINUX for arg in ("--platform", f"{tag}_{machine}")]
            _pip(
                [
                    "download",
                    "--quiet",
                    "--dest",
                    str(destination),
                    "--only-binary=:all:",
                    "--python-version",
                    version,
                    "--implementation",
                    "cp",
                    "--abi",
                    abi,
                    "--abi",
                    "abi3",
                    "--abi",
                    "none",
                    *platforms,
                    str(own[0]),
                    "pip",
                ],
                f"downloading the dependencies for Python {version}",
            )
    return destination


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("destination", type=Path)
    parser.add_argument("--python", action="append", dest="versions", metavar="X.Y")
    args = parser.parse_args(argv)
    build_wheelhouse(args.destination, args.versions)
    print(args.destination)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
