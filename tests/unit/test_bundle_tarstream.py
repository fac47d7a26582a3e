"""The streaming tar reader: a docker save stream that stops early is an error, even when it
stops between two members (the socket gives no other sign of a save that broke off)."""

from __future__ import annotations

import io
import tarfile

import pytest

from installer.bundle.tarstream import ChunkReader, iter_tar


def _tar(*names: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            data = name.encode() * 300
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _members(data: bytes, chunk: int, *, require_end: bool) -> list[tuple[str, bytes]]:
    chunks = iter([data[i : i + chunk] for i in range(0, len(data), chunk)])
    reader = ChunkReader(lambda: next(chunks, b""))
    return [
        (info.name, member.read()) for info, member in iter_tar(reader, require_end=require_end)
    ]


@pytest.mark.parametrize("chunk", [1, 512, 1000, 1 << 20])
def test_a_whole_stream_is_read_with_the_end_required(chunk: int) -> None:
    found = _members(_tar("a", "b/c"), chunk, require_end=True)
    assert found == [("a", b"a" * 300), ("b/c", b"b/c" * 300)]


def test_a_stream_cut_between_members_is_an_error_when_the_end_is_required() -> None:
    whole = _tar("a", "b")
    first_member_end = 512 + 512  # header and the 300 bytes of "a", padded
    cut = whole[:first_member_end]
    assert _members(cut, 512, require_end=False) == [("a", b"a" * 300)]
    with pytest.raises(EOFError, match="end-of-archive"):
        _members(cut, 512, require_end=True)


def test_a_stream_cut_inside_a_member_is_an_error_either_way() -> None:
    cut = _tar("a", "b")[:700]
    for require_end in (False, True):
        with pytest.raises(EOFError):
            _members(cut, 512, require_end=require_end)
