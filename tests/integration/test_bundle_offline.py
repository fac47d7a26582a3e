"""The installer's offline form needs only python3: the bootstrap (launcher and wheelhouse)
comes out of the bundle with standard tools and no zstd, and the launcher, run by the
system python3 in a fresh directory in a network namespace with no network, installs the
wheels offline and verifies the bundle."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from installer.errors import ExitCode
from tests.integration.bundle_support import (
    cached_wheelhouse,
    ensure_bundle_images,
    release_file,
)
from tests.unit.cli_helpers import run_cli

pytestmark = pytest.mark.integration

SYSTEM_PYTHON = "/usr/bin/python3"
# A bare environment: no virtualenv, no PYTHONPATH, no proxy, only the system's tools.
BARE_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any) -> Path:
    ensure_bundle_images(docker_engine)
    directory = tmp_path_factory.mktemp("offline")
    release = release_file(directory, "7.1.0-offline", with_base=False)
    out = directory / "codequal-7.1.0-offline.bundle"
    result = run_cli(
        "bundle", "create", "--release", str(release), "--out", str(out),
        "--wheelhouse", str(cached_wheelhouse()), "--no-installer-image",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def _bare(command: list[str], cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {**BARE_ENV, "HOME": str(cwd)}
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False,
        **kwargs,
    )  # fmt: skip


def _tree(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_the_bootstrap_extracts_with_tail_and_tar_or_plain_python(
    small_bundle: Path, tmp_path: Path
) -> None:
    with_tar = tmp_path / "tar"
    with_tar.mkdir()
    done = _bare(["sh", "-c", 'tail -c +9 "$1" | tar x', "sh", str(small_bundle)], with_tar)
    assert done.returncode == 0, done.stderr
    names = set(_tree(with_tar))
    assert "codequal-installer" in names
    assert os.access(with_tar / "codequal-installer", os.X_OK)
    # zstandard's wheel as it is, every other wheel of the wheelhouse in the pack, unchanged.
    source = {p.name: p for p in cached_wheelhouse().glob("*.whl")}
    raw = {n for n in source if n.startswith("zstandard-")}
    assert raw
    assert names == {"codequal-installer", "wheelhouse/wheels.tar.zst"} | {
        f"wheelhouse/{n}" for n in raw
    }
    packed = _unpack(with_tar / "wheelhouse" / "wheels.tar.zst")
    assert set(packed) == set(source) - raw
    assert {"codequal_installer", "pip"} <= {n.split("-")[0] for n in packed}
    for name, digest in packed.items():
        assert digest == hashlib.sha256(source[name].read_bytes()).hexdigest(), name

    # The same with nothing but the system python3's standard library.
    with_python = tmp_path / "python"
    with_python.mkdir()
    one_liner = (
        "import sys, tarfile; f = open(sys.argv[1], 'rb'); f.seek(8); "
        "tarfile.open(fileobj=f, mode='r|').extractall('.')"
    )
    done = _bare([SYSTEM_PYTHON, "-c", one_liner, str(small_bundle)], with_python)
    assert done.returncode == 0, done.stderr
    assert _tree(with_python) == _tree(with_tar)

    # Every bootstrap member is listed in SHA256SUMS, which the body (zstd -dc) holds:
    # with both extracted, plain sha256sum checks every member of the bundle.
    body = _bare(["sh", "-c", 'zstd -dc "$1" | tar x', "sh", str(small_bundle)], with_tar)
    assert body.returncode == 0, body.stderr
    sums = _bare(["sha256sum", "--strict", "-c", "SHA256SUMS"], with_tar)
    assert sums.returncode == 0, sums.stdout + sums.stderr
    checked = [line for line in sums.stdout.splitlines() if line.endswith(": OK")]
    assert len(checked) == len((with_tar / "SHA256SUMS").read_text().splitlines())
    assert "codequal-installer: OK" in sums.stdout


def _unpack(pack: Path) -> dict[str, str]:
    """The pack's members: name and SHA-256."""
    import tarfile

    import zstandard

    found: dict[str, str] = {}
    with (
        pack.open("rb") as f,
        zstandard.ZstdDecompressor().stream_reader(f) as stream,
        tarfile.open(fileobj=stream, mode="r|") as tar,
    ):
        for member in tar:
            assert member.isfile() and member.mtime == 0 and member.uid == 0, member.name
            data = tar.extractfile(member)
            assert data is not None
            found[member.name] = hashlib.sha256(data.read()).hexdigest()
    return found


def test_the_launcher_verifies_the_bundle_with_python3_alone_and_no_network(
    small_bundle: Path, tmp_path: Path
) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    done = _bare(["sh", "-c", 'tail -c +9 "$1" | tar x', "sh", str(small_bundle)], fresh)
    assert done.returncode == 0, done.stderr
    damaged = tmp_path / "damaged.bundle"
    data = bytearray(small_bundle.read_bytes())
    data[len(data) // 2] ^= 0x01
    damaged.write_bytes(bytes(data))

    # unshare -n: a new network namespace whose only interface is a loopback (down).
    launcher = ["unshare", "-n", "./codequal-installer"]
    interfaces = _bare(["unshare", "-n", SYSTEM_PYTHON, "-c", _INTERFACES], fresh)
    assert interfaces.stdout.split() == ["lo"], interfaces.stdout + interfaces.stderr
    # The system python3 cannot run the installer by itself (nothing installed for it).
    alone = _bare([SYSTEM_PYTHON, "-c", "import installer"], fresh)
    assert alone.returncode != 0

    good = _bare([*launcher, "bundle", "verify", str(small_bundle)], fresh)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "OK" in good.stdout and "(body hash)" in good.stdout
    # The wheels went into .installer/ beside the launcher, a virtual environment of the
    # system python3.
    site = fresh / ".installer" / "lib" / f"python{_python_version()}" / "site-packages"
    assert (site / "installer" / "__init__.py").is_file()
    assert (site / "zstandard").is_dir()
    assert sorted(p.name for p in fresh.iterdir() if p.name.startswith(".installer")) == [
        ".installer"
    ]  # the unpacked wheels are gone

    bad = _bare([*launcher, "bundle", "verify", str(damaged)], fresh)
    assert bad.returncode == ExitCode.BUNDLE_INTEGRITY, bad.stdout + bad.stderr
    assert "Traceback" not in bad.stderr


def _python_version() -> str:
    done = _bare([SYSTEM_PYTHON, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], Path())
    return done.stdout.strip()


_INTERFACES = "import socket; print(*(name for _, name in socket.if_nameindex()))"


def test_a_damaged_wheel_pack_stops_the_launcher_with_a_message(
    small_bundle: Path, tmp_path: Path
) -> None:
    done = _bare(["sh", "-c", 'tail -c +9 "$1" | tar x', "sh", str(small_bundle)], tmp_path)
    assert done.returncode == 0, done.stderr
    pack = tmp_path / "wheelhouse" / "wheels.tar.zst"
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0x01
    pack.write_bytes(bytes(data))

    damaged = _bare(["./codequal-installer", "--version"], tmp_path)
    assert damaged.returncode == 3, damaged.stdout + damaged.stderr
    assert "wheels.tar.zst cannot be unpacked" in damaged.stderr
    assert "copy it again" in damaged.stderr
    assert "Traceback" not in damaged.stderr
    # Nothing half-installed is left to be taken for an installation.
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".installer")]


def test_a_bundle_for_another_python_says_so(small_bundle: Path, tmp_path: Path) -> None:
    done = _bare(["sh", "-c", 'tail -c +9 "$1" | tar x', "sh", str(small_bundle)], tmp_path)
    assert done.returncode == 0, done.stderr
    # As if made for CPython 3.99 only: no zstandard wheel this python3 can use.
    for index, wheel in enumerate(sorted((tmp_path / "wheelhouse").glob("zstandard-*.whl"))):
        wheel.rename(wheel.with_name(f"zstandard-0.{index}-cp399-cp399-manylinux_2_17_x86_64.whl"))
    tag = _bare([SYSTEM_PYTHON, "-c", _TAG], tmp_path).stdout.strip()

    other = _bare(["./codequal-installer", "--version"], tmp_path)
    assert other.returncode == 3, other.stdout + other.stderr
    assert f"no zstandard wheel for this Python ({tag})" in other.stderr
    assert "made for another Python version" in other.stderr
    assert "Traceback" not in other.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".installer")]


_TAG = "import sys; print('cp%d%d' % sys.version_info[:2])"
