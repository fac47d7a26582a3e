"""The bundle launcher on a host with Python 3.10 or newer: it takes the wheelhouse path (and
says so; Docker is never run), and its Python is isolated from the host's packages.

The host Python here is a virtual environment standing in for a system Python with packages
of its own: an old ``pydantic`` and ``typing_extensions`` (real wheels from the package
index, cached) and a small distribution that needs exactly those (``host-tool``, requiring
``pydantic<2`` and ``typing_extensions<4.6``), as the system's own tools do. Installing the
installer's wheels with that Python's pip into a ``--target`` directory makes pip's resolver
report the conflict (the control below); the launcher's first run must not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.integration.bundle_support import (
    _lock,
    cached_wheelhouse,
    ensure_bundle_images,
    release_file,
)
from tests.support.images import cache_dir
from tests.unit.cli_helpers import run_cli

pytestmark = pytest.mark.integration

HOST_PACKAGES = ("pydantic==1.10.13", "typing_extensions==4.5.0")


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any) -> Path:
    ensure_bundle_images(docker_engine)
    directory = tmp_path_factory.mktemp("launcher")
    release = release_file(directory, "7.2.0-launcher", with_base=False)
    out = directory / "codequal-7.2.0-launcher.bundle"
    result = run_cli(
        "bundle", "create", "--release", str(release), "--out", str(out),
        "--wheelhouse", str(cached_wheelhouse()), "--no-installer-image",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def _host_tool_wheel(directory: Path) -> Path:
    """A wheel whose distribution needs the old versions, as a system tool would."""
    path = directory / "host_tool-1.0-py3-none-any.whl"
    metadata = (
        "Metadata-Version: 2.1\nName: host-tool\nVersion: 1.0\n"
        "Requires-Dist: pydantic<2\nRequires-Dist: typing_extensions<4.6\n"
    )
    wheel = "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files = {
        "host_tool/__init__.py": "import pydantic\n",
        "host_tool-1.0.dist-info/METADATA": metadata,
        "host_tool-1.0.dist-info/WHEEL": wheel,
    }
    record = "".join(f"{name},,\n" for name in files) + "host_tool-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in {**files, "host_tool-1.0.dist-info/RECORD": record}.items():
            archive.writestr(name, text)
    return path


@pytest.fixture(scope="module")
def host_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with conflicting packages: its ``bin`` directory."""
    downloads = cache_dir() / "host-conflict-wheels"
    with _lock("host-conflict-wheels"):
        if not (downloads / ".complete").exists():
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
                 "--no-deps", "--dest", str(downloads), *HOST_PACKAGES],
                check=True, capture_output=True, timeout=300,
            )  # fmt: skip
            (downloads / ".complete").write_text("")
    venv = tmp_path_factory.mktemp("host") / "python"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    tool = _host_tool_wheel(venv.parent)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--quiet", "--no-index", "--no-deps", *map(str, sorted(downloads.glob("*.whl"))),
         str(tool)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return venv / "bin"


def _extract(bundle: Path, into: Path) -> None:
    into.mkdir()
    done = subprocess.run(
        ["sh", "-c", 'tail -c +9 "$1" | tar x', "sh", str(bundle)],
        cwd=into, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def _docker_recorder(directory: Path) -> tuple[Path, Path]:
    """A ``docker`` on the PATH that only records that it was run (and fails)."""
    bin_dir = directory / "docker-bin"
    bin_dir.mkdir()
    record = directory / "docker-runs"
    script = bin_dir / "docker"
    script.write_text(f'#!/bin/sh\necho "$*" >>{record}\nexit 1\n')
    script.chmod(0o755)
    return bin_dir, record


def _run(command: list[str], cwd: Path, path: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": path, "LANG": "C.UTF-8", "HOME": str(cwd)}
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def _versions(python: Path, cwd: Path) -> dict[str, str]:
    code = (
        "import json, pydantic, typing_extensions, importlib.metadata as m; "
        "print(json.dumps({'pydantic': m.version('pydantic'), 'typing_extensions': "
        "m.version('typing_extensions'), 'pydantic_file': pydantic.__file__, "
        "'typing_extensions_file': typing_extensions.__file__}))"
    )
    done = _run([str(python), "-c", code], cwd, "/usr/bin:/bin")
    assert done.returncode == 0, done.stderr
    found: dict[str, str] = json.loads(done.stdout)
    return found


def _wheel_version(name: str) -> str:
    wheels = [p.name for p in cached_wheelhouse().glob(f"{name}-*.whl")]
    assert len(wheels) == 1, wheels
    return wheels[0].split("-")[1]


def test_the_pip_target_install_meets_the_host_packages_conflict(
    host_python: Path, tmp_path: Path
) -> None:
    """The control: the host Python really conflicts with the installer's wheels."""
    wheels = cached_wheelhouse()
    pip_wheel = next(wheels.glob("pip-*.whl"))
    done = _run(
        [str(host_python / "python3"), str(pip_wheel / "pip"), "install", "--no-index",
         "--find-links", str(wheels), "--only-binary", ":all:", "--target",
         str(tmp_path / "target"), "codequal-installer"],
        tmp_path, f"{host_python}:/usr/bin:/bin",
    )  # fmt: skip
    assert "dependency resolver" in done.stderr, done.stdout + done.stderr
    assert "host-tool 1.0 requires pydantic<2" in done.stderr


def test_the_launcher_runs_isolated_from_the_host_packages(
    small_bundle: Path, host_python: Path, tmp_path: Path
) -> None:
    fresh = tmp_path / "fresh"
    _extract(small_bundle, fresh)
    docker_bin, docker_runs = _docker_recorder(tmp_path)
    path = f"{host_python}:{docker_bin}:/usr/bin:/bin"
    host_before = _versions(host_python / "python3", fresh)
    assert host_before["pydantic"] == "1.10.13"

    first = _run(["./codequal-installer", "answers", "schema"], fresh, path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert json.loads(first.stdout)["properties"]["release"]
    # Progress, and no pip output at all (no resolver error, no warning).
    lines = first.stderr.splitlines()
    assert all(line.startswith("codequal-installer: ") for line in lines), first.stderr
    assert "ERROR" not in first.stderr and "pip" not in first.stderr, first.stderr
    assert any("first run: installing the installer" in line for line in lines)
    assert any(line.startswith("codequal-installer: installing ") for line in lines)
    # Which path it took: the wheelhouse, with the host's python3 (the venv's), no Docker.
    assert lines[0] == (
        f"codequal-installer: path: wheelhouse (Python {_python_version(host_python)} "
        f"at {host_python / 'python3'})"
    )
    assert not docker_runs.exists()

    # The installer's environment imports its own versions, from .installer/ ...
    installer_python = fresh / ".installer" / "bin" / "python"
    own = _versions(installer_python, fresh)
    assert own["pydantic"] == _wheel_version("pydantic")
    assert own["typing_extensions"] == _wheel_version("typing_extensions")
    for name in ("pydantic_file", "typing_extensions_file"):
        assert own[name].startswith(str(fresh / ".installer" / "lib")), own
    assert (
        "include-system-site-packages = false" in (fresh / ".installer" / "pyvenv.cfg").read_text()
    )
    # ... and the host Python is as it was.
    assert _versions(host_python / "python3", fresh) == host_before

    # A later run starts at once: only the path line.
    again = _run(["./codequal-installer", "--version"], fresh, path)
    assert again.returncode == 0, again.stderr
    assert again.stderr.splitlines() == [lines[0]]
    assert not docker_runs.exists()


def test_the_system_python3_takes_the_wheelhouse_path_and_never_runs_docker(
    small_bundle: Path, tmp_path: Path
) -> None:
    fresh = tmp_path / "fresh"
    _extract(small_bundle, fresh)
    docker_bin, docker_runs = _docker_recorder(tmp_path)
    done = _run(
        ["./codequal-installer", "bundle", "verify", str(small_bundle)],
        fresh, f"{docker_bin}:/usr/bin:/bin",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK" in done.stdout
    version = _python_version(Path("/usr/bin"))
    assert done.stderr.splitlines()[0] == (
        f"codequal-installer: path: wheelhouse (Python {version} at /usr/bin/python3)"
    )
    assert not docker_runs.exists()  # no image loaded, no docker run: Docker never ran
    assert os.path.islink(fresh / ".installer" / "bin" / "python")


def _python_version(bin_dir: Path) -> str:
    done = _run(
        [str(bin_dir / "python3"), "-c", "import platform; print(platform.python_version())"],
        bin_dir, "/usr/bin:/bin",
    )  # fmt: skip
    return done.stdout.strip()
