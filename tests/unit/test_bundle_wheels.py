"""The bootstrap's wheelhouse: zstandard's wheel as it is, the others packed (one zstd
frame of a normalised tar), and a clear error for a wheelhouse the launcher cannot use."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from installer.bundle.create import wheel_inputs
from installer.bundle.format import PACKED_WHEELS_LEVEL
from installer.bundle.writer import pack_files
from installer.errors import UsageError

WHEELS = (
    "codequal_installer-0.1.0-py3-none-any.whl",
    "pip-26.0-py3-none-any.whl",
    "zstandard-0.25.0-cp311-cp311-manylinux_2_17_x86_64.whl",
    "zstandard-0.25.0-cp312-cp312-manylinux_2_17_x86_64.whl",
    "click-8.0-py3-none-any.whl",
)


def _wheelhouse(directory: Path, names: tuple[str, ...] = WHEELS) -> Path:
    directory.mkdir()
    for index, name in enumerate(names):
        (directory / name).write_bytes(os.urandom(1000 + 777 * index) + name.encode() * 50)
    (directory / ".complete").write_text("")  # not a wheel: left out
    return directory


def test_zstandard_stays_unpacked_and_every_other_wheel_is_packed(tmp_path: Path) -> None:
    wheels = wheel_inputs(_wheelhouse(tmp_path / "w"))
    assert [i.name for i in wheels.unpacked] == [
        "wheelhouse/zstandard-0.25.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        "wheelhouse/zstandard-0.25.0-cp312-cp312-manylinux_2_17_x86_64.whl",
    ]
    assert [p.name for p in wheels.packed] == [
        "click-8.0-py3-none-any.whl",
        "codequal_installer-0.1.0-py3-none-any.whl",
        "pip-26.0-py3-none-any.whl",
    ]


@pytest.mark.parametrize(
    ("missing", "said"),
    [
        ("codequal_installer-", "the installer's own"),
        ("pip-", "pip's"),
        ("zstandard-", "zstandard's"),
    ],
)
def test_a_wheelhouse_the_launcher_cannot_use_is_refused(
    tmp_path: Path, missing: str, said: str
) -> None:
    house = _wheelhouse(tmp_path / "w", tuple(n for n in WHEELS if not n.startswith(missing)))
    with pytest.raises(UsageError) as raised:
        wheel_inputs(house)
    assert said in str(raised.value) and f"({missing}*.whl)" in str(raised.value)


def _members(packed: bytes) -> list[tarfile.TarInfo]:
    stream = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(packed))
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        found = []
        for member in tar:
            data = tar.extractfile(member)
            assert data is not None
            member.pax_headers = {"data": data.read().hex()}  # kept for the comparison below
            found.append(member)
        return found


def test_the_pack_holds_the_wheels_unchanged_with_normalised_headers(tmp_path: Path) -> None:
    house = _wheelhouse(tmp_path / "w")
    os.chmod(house / WHEELS[0], 0o600)
    os.utime(house / WHEELS[0], (1_700_000_000, 1_700_000_000))
    files = [(n, house / n) for n in sorted(WHEELS)]

    out = io.BytesIO()
    pack_files(files, out, level=PACKED_WHEELS_LEVEL)
    packed = out.getvalue()

    members = _members(packed)
    assert [m.name for m in members] == sorted(WHEELS)
    for member in members:
        assert (member.mode, member.mtime, member.uid, member.gid) == (0o644, 0, 0, 0)
        assert member.uname == member.gname == ""
        assert bytes.fromhex(member.pax_headers["data"]) == (house / member.name).read_bytes()
    # One frame, with a checksum: damage is found when it is unpacked.
    frame = zstandard.get_frame_parameters(packed)
    assert frame.has_checksum
    damaged = bytearray(packed)
    damaged[len(damaged) // 2] ^= 1
    with pytest.raises(zstandard.ZstdError):
        _members(bytes(damaged))

    again = io.BytesIO()
    pack_files(files, again, level=PACKED_WHEELS_LEVEL)
    assert again.getvalue() == packed  # the same wheels give the same bytes


def test_a_wheel_cut_short_while_packed_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wheel that shrinks between its size and its last read (another process rewriting
    the wheelhouse) cannot be made to happen on cue: its size is made to claim more."""
    house = _wheelhouse(tmp_path / "w")
    path = house / WHEELS[0]
    real_fstat = os.fstat

    def claims_more(fd: int) -> os.stat_result:
        found = list(real_fstat(fd))
        found[6] += 4096  # st_size
        return os.stat_result(found)

    monkeypatch.setattr("installer.bundle.writer.os.fstat", claims_more)
    with pytest.raises(OSError, match="became shorter while it was read"):
        pack_files([(path.name, path)], io.BytesIO(), level=1)
