"""Writing the bundle: the bootstrap frame, then the tar stream through zstd, member by
member, without buffering data (the layout is in :mod:`installer.bundle.format`).

Headers are normalised (mtime 0, uid/gid 0, no owner names, modes 0644 or 0755) so the
same members give the same bytes. Each regular member is hashed while it is written, and
the output thread hashes the file's bytes up to the tail frame (``body_sha256``).
Compression is zstd, multi-threaded (libzstd's workers; their output does not depend on
the number of threads), with a frame checksum.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from installer.bundle.format import TAR_BLOCK, bootstrap_header, footer_bytes
from installer.bundle.tarstream import ByteReader, ThreadedHasher, ThreadedSink

CHUNK = 1 << 20
DEFAULT_LEVEL = 3
ZSTD_JOB_SIZE = 4 << 20


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


def pack_files(
    files: Sequence[tuple[str, str | os.PathLike[str]]], into: ByteSink, *, level: int
) -> None:
    """Write a tar of ``files`` (member name, path; in the order given, headers normalised)
    through zstd at ``level`` into ``into``, streaming: one frame with a checksum, made by
    one thread, so the same files give the same bytes."""
    import zstandard

    parameters = zstandard.ZstdCompressionParameters.from_level(level, write_checksum=True)
    compressor = zstandard.ZstdCompressor(compression_params=parameters)
    with compressor.stream_writer(into, closefd=False, write_size=CHUNK) as out:  # type: ignore[arg-type]
        for name, path in files:
            with open(path, "rb") as source:
                size = os.fstat(source.fileno()).st_size
                out.write(tar_header(name, size, mode=0o644))
                left = size
                while left:
                    chunk = source.read(min(CHUNK, left))
                    if not chunk:
                        raise OSError(f"{path} became shorter while it was read")
                    out.write(chunk)
                    left -= len(chunk)
                out.write(b"\0" * (-size % TAR_BLOCK))
        out.write(b"\0" * (2 * TAR_BLOCK))


@dataclass(frozen=True)
class BootstrapMember:
    """A member of the bootstrap frame: its name, size, mode and its bytes."""

    name: str
    size: int
    mode: int
    source: Callable[[], Any]  # returns a context manager giving a ByteReader, or bytes


def _copy(
    name: str,
    size: int,
    source: ByteReader,
    write: Callable[[bytes], Any],
    *,
    on_data: Callable[[bytes], None] | None,
    hasher: ThreadedHasher,
) -> str:
    """Copy ``size`` bytes from ``source`` to ``write``; their SHA-256, hashed by ``hasher``
    on another core while the next chunk is read and compressed."""
    read = getattr(source, "read_chunk", None) or source.read  # views where offered: no copy
    remaining = size
    while remaining:
        chunk = read(min(CHUNK, remaining))
        if not chunk:
            raise EOFError(f"{name}: source ended {remaining} bytes early")
        hasher.update(chunk)
        write(chunk)
        if on_data is not None:
            on_data(chunk)
        remaining -= len(chunk)
    return hasher.hexdigest()


class BundleStreamWriter:
    """The low-level writer: members in, a bundle (bootstrap, zstd tar stream, footer) out.

    Writes go to ``target`` from a thread of their own (which also hashes the body); call
    :meth:`finish` at the end, or :meth:`abort` after a failure.
    """

    def __init__(self, target: ByteSink, *, level: int = DEFAULT_LEVEL, threads: int = -1) -> None:
        import zstandard

        self._zstd = zstandard
        self._output = ThreadedSink(target, hashed=True)
        self._hasher = ThreadedHasher()
        self.sink = CountingSink(self._output)
        # A fixed job size keeps the workers' buffers (and so memory) small: libzstd's
        # default at level 3 holds over 100 MiB. Output still does not depend on threads.
        parameters = zstandard.ZstdCompressionParameters.from_level(
            level, threads=threads, write_checksum=True, job_size=ZSTD_JOB_SIZE
        )
        compressor = zstandard.ZstdCompressor(compression_params=parameters)
        self._writer = compressor.stream_writer(
            self.sink,  # type: ignore[arg-type]  # any object with write() will do
            closefd=False,
            write_size=CHUNK,
        )
        self.uncompressed = 0
        self.bootstrap_size = 0
        self.body_sha256: str | None = None
        self._tail_offset: int | None = None

    def add_bootstrap(self, members: Sequence[BootstrapMember]) -> dict[str, str]:
        """Write the bootstrap frame (must come first); returns each member's SHA-256."""
        if self.sink.position:
            raise RuntimeError("the bootstrap frame must be the first thing written")
        headers = [tar_header(m.name, m.size, mode=normal_mode(m.mode)) for m in members]
        payload = 2 * TAR_BLOCK + sum(
            len(header) + m.size + (-m.size % TAR_BLOCK)
            for header, m in zip(headers, members, strict=True)
        )
        self.sink.write(bootstrap_header(payload))
        sums: dict[str, str] = {}
        for header, member in zip(headers, members, strict=True):
            self.sink.write(header)
            opened = member.source()
            if isinstance(opened, bytes):
                if len(opened) != member.size:
                    raise ValueError(
                        f"{member.name}: {len(opened)} bytes, header says {member.size}"
                    )
                sums[member.name] = hashlib.sha256(opened).hexdigest()
                self.sink.write(opened)
            else:
                with opened as source:
                    sums[member.name] = _copy(
                        member.name,
                        member.size,
                        source,
                        self.sink.write,
                        on_data=None,
                        hasher=self._hasher,
                    )
            if member.size % TAR_BLOCK:
                self.sink.write(b"\0" * (-member.size % TAR_BLOCK))
        self.sink.write(b"\0" * (2 * TAR_BLOCK))
        self.bootstrap_size = payload
        self.uncompressed += payload
        return sums

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
        if isinstance(source, bytes):
            if len(source) != size:
                raise ValueError(f"{name}: {len(source)} bytes given, header says {size}")
            hexdigest = hashlib.sha256(source).hexdigest()
            self._write(source)
            if on_data is not None:
                on_data(source)
        else:
            hexdigest = _copy(name, size, source, self._write, on_data=on_data, hasher=self._hasher)
        padding = -size % TAR_BLOCK
        if padding:
            self._write(b"\0" * padding)
        return hexdigest

    def add_symlink(self, name: str, target: str) -> None:
        self._write(tar_header(name, 0, mode=0o777, kind=tarfile.SYMTYPE, linkname=target))

    def start_tail(self) -> str:
        """End the body's frame (the tail members that follow get a frame of their own);
        returns ``body_sha256``, the SHA-256 of every byte written so far."""
        self._writer.flush(self._zstd.FLUSH_FRAME)
        self._tail_offset = self.sink.position
        self.body_sha256 = self._output.mark()
        assert self.body_sha256 is not None  # noqa: S101 - the output thread hashes
        return self.body_sha256

    def finish(self) -> int:
        """End the tar stream and the tail frame, write the footer; returns the file size."""
        if self._tail_offset is None:
            raise RuntimeError("start_tail() must come before finish()")
        self._write(b"\0" * (2 * TAR_BLOCK))
        self._writer.flush(self._zstd.FLUSH_FRAME)
        tail_length = self.sink.position - self._tail_offset
        self.sink.write(footer_bytes(self._tail_offset, tail_length))
        self._hasher.close()
        self._output.close()
        self.sink.flush()
        return self.sink.position

    def abort(self) -> None:
        """Stop the threads after a failure (what is queued is dropped)."""
        self._hasher.close()
        self._output.abort()
