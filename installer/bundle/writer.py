"""Writing the bundle's tar stream through zstd, member by member, without buffering data.

Headers are normalised (mtime 0, uid/gid 0, no owner names, modes 0644 or 0755) so the
same members give the same bytes. Each regular member is hashed while it is written.
Compression is zstd, multi-threaded (libzstd's workers; their output does not depend on
the number of threads), with a frame checksum.
"""

from __future__ import annotations

import hashlib
import tarfile
from typing import Any, Protocol

from installer.bundle.format import TAR_BLOCK, footer_bytes
from installer.bundle.tarstream import ByteReader

CHUNK = 1 << 20
DEFAULT_LEVEL = 3


class ByteSink(Protocol):
    def write(self, data: Any, /) -> int: ...


class CountingSink:
    """Passes writes on and counts them: the compressed offset of every frame boundary."""

    def __init__(self, target: ByteSink) -> None:
        self.target = target
        self.position = 0

    def write(self, data: Any) -> int:
        written = self.target.write(data)
        self.position += len(memoryview(data))
        return written if written is not None else len(memoryview(data))

    def flush(self) -> None:
        flush = getattr(self.target, "flush", None)
        if flush is not None:
            flush()


def tar_header(
    name: str, size: int, *, mode: int, kind: bytes = tarfile.REGTYPE, linkname: str = ""
) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size if kind == tarfile.REGTYPE else 0
    info.mode = mode
    info.type = kind
    info.linkname = linkname
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")


def normal_mode(mode: int) -> int:
    return 0o755 if mode & 0o111 else 0o644


class BundleStreamWriter:
    """The low-level writer: members in, one zstd-compressed tar stream with a footer out."""

    def __init__(self, target: ByteSink, *, level: int = DEFAULT_LEVEL, threads: int = -1) -> None:
        import zstandard

        self._zstd = zstandard
        self.sink = CountingSink(target)
        compressor = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True)
        self._writer = compressor.stream_writer(
            self.sink,  # type: ignore[arg-type]  # any object with write() will do
            closefd=False,
            write_size=CHUNK,
        )
        self.uncompressed = 0
        self._tail_offset: int | None = None

    def _write(self, data: Any) -> None:
        self._writer.write(data)
        self.uncompressed += len(memoryview(data))

    def add_file(
        self,
        name: str,
        size: int,
        source: ByteReader | bytes,
        *,
        mode: int = 0o644,
        on_data: Any = None,
    ) -> str:
        """Add a regular member of ``size`` bytes from ``source``; returns its SHA-256 (hex).

        ``on_data`` (optional) is called with each chunk as it is written: progress meters
        and callers that need the bytes of small members use it.
        """
        self._write(tar_header(name, size, mode=normal_mode(mode)))
        digest = hashlib.sha256()
        if isinstance(source, bytes):
            if len(source) != size:
                raise ValueError(f"{name}: {len(source)} bytes given, header says {size}")
            digest.update(source)
            self._write(source)
            if on_data is not None:
                on_data(source)
        else:
            remaining = size
            while remaining:
                chunk = source.read(min(CHUNK, remaining))
                if not chunk:
                    raise EOFError(f"{name}: source ended {remaining} bytes early")
                digest.update(chunk)
                self._write(chunk)
                if on_data is not None:
                    on_data(chunk)
                remaining -= len(chunk)
        padding = -size % TAR_BLOCK
        if padding:
            self._write(b"\0" * padding)
        return digest.hexdigest()

    def add_symlink(self, name: str, target: str) -> None:
        self._write(tar_header(name, 0, mode=0o777, kind=tarfile.SYMTYPE, linkname=target))

    def start_tail(self) -> None:
        """End the body's frame: the tail members that follow get a frame of their own."""
        self._writer.flush(self._zstd.FLUSH_FRAME)
        self._tail_offset = self.sink.position

    def finish(self) -> int:
        """End the tar stream and the tail frame, write the footer; returns the file size."""
        if self._tail_offset is None:
            raise RuntimeError("start_tail() must come before finish()")
        self._write(b"\0" * (2 * TAR_BLOCK))
        self._writer.flush(self._zstd.FLUSH_FRAME)
        tail_length = self.sink.position - self._tail_offset
        self.sink.write(footer_bytes(self._tail_offset, tail_length))
        self.sink.flush()
        return self.sink.position
