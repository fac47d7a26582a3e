"""The probes inside the installer image read the host's facts where the launcher mounts
them, and say so when they cannot; the bundle's unpacker holds a runnable zstd."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest

from installer.bundle.installer_image import UNPACKER_COMMAND, unpacker_rootfs
from installer.checks.measurements import Listener, ListenerScan
from installer.checks.probes import HOST_ROOT_VARIABLE, HostProbe
from installer.checks.requirements import Requirements, evaluate_os, evaluate_ports
from installer.errors import PrerequisiteError


def test_in_the_image_the_os_is_the_hosts_file_not_the_images(tmp_path: Path) -> None:
    host = tmp_path / "host"
    (host / "etc").mkdir(parents=True)
    (host / "etc" / "os-release").write_text(
        'ID=ubuntu\nID_LIKE=debian\nVERSION_ID="20.04"\nPRETTY_NAME="Ubuntu 20.04.6 LTS"\n'
    )
    info = HostProbe(environ={HOST_ROOT_VARIABLE: str(host)}).operating_system()
    assert (info.id, info.version_id, info.pretty_name) == ("ubuntu", "20.04", "Ubuntu 20.04.6 LTS")
    assert evaluate_os(info, Requirements.for_target("production")).status == "pass"


def test_in_the_image_without_the_hosts_file_the_os_is_unknown_and_the_check_says_why(
    tmp_path: Path,
) -> None:
    info = HostProbe(environ={HOST_ROOT_VARIABLE: str(tmp_path)}).operating_system()
    assert info.id is None and info.unseen is not None
    result = evaluate_os(info, Requirements.for_target("production"))
    assert result.status == "warn" and result.measured == "unknown"
    assert "cannot be seen from inside the installer image" in (result.hint or "")
    assert "/host/etc/os-release" in (result.hint or "")


def test_a_holder_out_of_sight_is_described_not_named_nobody() -> None:
    text = "a process outside the installer image's view (run the image with --pid host to name it)"
    scan = ListenerScan((Listener(3000, "127.0.0.1", process=text),))
    result = evaluate_ports(scan, Requirements.for_target("development"))
    assert result.status == "fail"
    assert "in use by a process outside the installer image's view" in result.measured


@pytest.mark.skipif(shutil.which("zstd") is None, reason="needs the zstd command")
def test_the_unpacker_holds_zstd_and_every_library_it_loads() -> None:
    with tarfile.open(fileobj=io.BytesIO(unpacker_rootfs()), mode="r:") as tar:
        names = set(tar.getnames())
        command = tar.getmember(UNPACKER_COMMAND.lstrip("/"))
    assert command.isfile() and command.mode & 0o111
    assert any("ld-linux" in name or name.startswith("lib/ld") for name in names), names
    assert any("libc.so" in name for name in names), names
    assert "tmp" in names


def test_without_zstd_bundle_create_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(PrerequisiteError) as raised:
        unpacker_rootfs(zstd=str(tmp_path / "no-such-command"))
    assert "the zstd command is not installed" in str(raised.value)
    assert "apt-get install zstd" in (raised.value.hint or "")
