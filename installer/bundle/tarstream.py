"""A lean streaming tar reader and the threads that keep both cores busy.

``tarfile``'s stream mode copies every byte through ``bytes.join`` and slicing; for GB-sized
image layers that is most of the CPU time. :func:`iter_tar` parses headers with
``tarfile.TarInfo.frombuf`` (PAX and GNU long names included) and hands out each member's
data as a bounded reader over a :class:`ChunkReader`, which passes on slices of the chunks
a :class:`Prefetcher` reads in a background thread (a pipe, a decompressor): reading,
hashing (:class:`ThreadedHasher`), compression and writing (:class:`ThreadedSink`) overlap,
and member data is not copied on the way.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import queue
import tarfile
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from installer.bundle.format import TAR_BLOCK

CHUNK = 4 << 20
_ZERO_BLOCK = b"\0" * TAR_BLOCK


class ByteReader(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Prefetcher(io.RawIOBase):
    """Reads ``read_chunk()`` results in a background thread, through a bounded queue."""

    def __init__(self, read_chunk: Callable[[], bytes], depth: int = 8) -> None:
        super().__init__()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._buffer = memoryview(b"")
        self._done = False
        self._stop = threading.Event()

        def pump() -> None:
            try:
                while not self._stop.is_set():
                    chunk = read_chunk()
                    if not chunk:
                        break
                    self._queue.put(chunk)
            except BaseException as e:  # noqa: BLE001 - handed to the reading thread
                self._error = e
            finally:
                self._queue.put(None)

        self._thread = threading.Thread(target=pump, name="bundle-prefetch", daemon=True)
        self._thread.start()

    def readable(self) -> bool:
        return True

    def next_chunk(self) -> bytes:
        """The next chunk as read (no copy); b"" at the end. Do not mix with ``read``."""
        if self._done:
            return b""
        item = self._queue.get()
        if item is None:
            self._done = True
            if self._error is not None:
                raise self._error
            return b""
        return item

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._buffer and not self._done:
            item = self._queue.get()
            if item is None:
                self._done = True
                if self._error is not None:
                    raise self._error
            else:
                self._buffer = memoryview(item)
        count = min(len(view), len(self._buffer))
        view[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.1)
        super().close()


class ChunkReader:
    """Reads a stream of chunks (``next_chunk()`` until b"") without copying them.

    :meth:`read_view` hands out slices of the current chunk as memoryviews: the data of
    large members goes on to hashing and compression with no copy in between (copies were
    most of the CPU time left). :meth:`read` joins views into bytes, for headers.
    """

    def __init__(self, next_chunk: Callable[[], bytes]) -> None:
        self._next = next_chunk
        self._chunk = memoryview(b"")
        self._eof = False

    def read_view(self, size: int) -> memoryview:
        """At most ``size`` bytes (fewer at a chunk's end); empty only at the end."""
        while not self._chunk:
            if self._eof:
                return memoryview(b"")
            chunk = self._next()
            if not chunk:
                self._eof = True
                return memoryview(b"")
            self._chunk = memoryview(chunk)
        view = self._chunk[:size]
        self._chunk = self._chunk[len(view) :]
        return view

    def read(self, size: int) -> bytes:
        """Exactly ``size`` bytes, or fewer at the end of the stream."""
        first = self.read_view(size)
        if len(first) == size or not first:
            return first.tobytes()
        parts = [first]
        got = len(first)
        while got < size and (view := self.read_view(size - got)):
            parts.append(view)
            got += len(view)
        return b"".join(parts)


class MemberData(io.RawIOBase):
    """A member's data: at most ``size`` bytes of the stream."""

    def __init__(self, source: ChunkReader, size: int) -> None:
        super().__init__()
        self._source = source
        self.left = size

    def readable(self) -> bool:
        return True

    def read_chunk(self, size: int) -> memoryview:
        """Up to ``size`` bytes as a view, without a copy; raises at a premature end."""
        if not self.left:
            return memoryview(b"")
        view = self._source.read_view(min(size, self.left))
        if not view:
            raise EOFError(f"the tar stream ends {self.left} bytes into a member")
        self.left -= len(view)
        return view

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        view = self.read_chunk(len(target))
        target[: len(view)] = view
        return len(view)

    def read(self, size: int = -1) -> bytes:
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self._source.read(size) if size else b""
        if len(data) < size:
            raise EOFError(f"the tar stream ends {self.left - len(data)} bytes into a member")
        self.left -= len(data)
        return data


def _read_exact(source: ChunkReader, size: int) -> bytes:
    data = source.read(size)
    if len(data) != size:
        raise EOFError("the tar stream is truncated")
    return data


def _skip(source: ChunkReader, size: int) -> None:
    while size:
        data = source.read_view(min(size, CHUNK))
        if not data:
            raise EOFError("the tar stream is truncated")
        size -= len(data)


def _pax_records(data: bytes) -> dict[str, str]:
    records: dict[str, str] = {}
    position = 0
    while position < len(data):
        length_text, _, _ = data[position : position + 20].partition(b" ")
        length = int(length_text)
        record = data[position : position + length].decode("utf-8", "surrogateescape")
        key, _, value = record.partition(" ")[2].rstrip("\n").partition("=")
        records[key] = value
        position += length
    return records


def iter_tar(
    source: ChunkReader, *, require_end: bool = False
) -> Iterator[tuple[tarfile.TarInfo, MemberData]]:
    """Every member with its data reader; unread data is skipped when the next one is asked for.

    Raises ``tarfile.TarError`` for a malformed header and ``EOFError`` for a truncated stream
    (with ``require_end``, also for one that ends without the end-of-archive marker).
    """
    overrides: dict[str, str] = {}
    while True:
        header = source.read(TAR_BLOCK)
        if not header and require_end:
            raise EOFError("the tar stream ends without its end-of-archive marker")
        if not header or header == _ZERO_BLOCK:
            return
        if len(header) != TAR_BLOCK:
            raise EOFError("the tar stream is truncated inside a header")
        info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
        padded = info.size + (-info.size % TAR_BLOCK)
        if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE):
            records = _pax_records(_read_exact(source, padded)[: info.size])
            if info.type != tarfile.XGLTYPE:
                overrides.update(records)
            continue
        if info.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            text = (
                _read_exact(source, padded)[: info.size]
                .rstrip(b"\0")
                .decode("utf-8", "surrogateescape")
            )
            overrides["path" if info.type == tarfile.GNUTYPE_LONGNAME else "linkpath"] = text
            continue
        if "path" in overrides:
            info.name = overrides["path"]
        if "linkpath" in overrides:
            info.linkname = overrides["linkpath"]
        if "size" in overrides:
            info.size = int(overrides["size"])
            padded = info.size + (-info.size % TAR_BLOCK)
        overrides = {}
        data_size = info.size if info.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
        data = MemberData(source, data_size)
        yield info, data
        _skip(source, data.left + (padded - info.size if data_size else padded))


class ThreadedHasher:
    """SHA-256 in a thread of its own: ``update`` queues a chunk (bytes, not copied) and
    returns at once; ``hexdigest`` waits for what is queued and starts a new hash.

    hashlib releases the GIL on large buffers, so hashing overlaps reading, compressing and
    writing on another core.
    """

    def __init__(self, depth: int = 4) -> None:
        self._queue: queue.Queue[bytes | _Digest | None] = queue.Queue(maxsize=depth)

        def run() -> None:
            digest = hashlib.sha256()
            while (item := self._queue.get()) is not None:
                if isinstance(item, _Digest):
                    item.value = digest.hexdigest()
                    digest = hashlib.sha256()
                    item.ready.set()
                else:
                    digest.update(item)

        self._thread = threading.Thread(target=run, name="bundle-hash", daemon=True)
        self._thread.start()

    def update(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def hexdigest(self) -> str:
        marker = _Digest()
        self._queue.put(marker)
        marker.ready.wait()
        return marker.value

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


class _Digest:
    def __init__(self) -> None:
        self.value = ""
        self.ready = threading.Event()


class ThreadedSink:
    """Writes to ``target`` from a background thread; errors surface on the next call.

    With ``hashed``, every byte written until :meth:`mark` is also hashed (SHA-256), in a
    third thread: the bundle's ``body_sha256``, computed off the producing thread.
    """

    def __init__(self, target: Any, depth: int = 8, *, hashed: bool = False) -> None:
        self.target = target
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._hasher: ThreadedHasher | None = ThreadedHasher() if hashed else None

        def drain() -> None:
            while True:
                item = self._queue.get()
                try:
                    if item is None:
                        return
                    if self._error is None:
                        self.target.write(item)
                except BaseException as e:  # noqa: BLE001 - re-raised by the writer
                    self._error = e
                finally:
                    self._queue.task_done()

        self._thread = threading.Thread(target=drain, name="bundle-write", daemon=True)
        self._thread.start()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, data: Any) -> int:
        self._raise()
        chunk = data if type(data) is bytes else bytes(data)
        if self._hasher is not None:
            self._hasher.update(chunk)
        self._queue.put(chunk)
        return len(chunk)

    def mark(self) -> str | None:
        """Stop hashing here; returns the SHA-256 (hex) of everything written before."""
        if self._hasher is None:
            return None
        digest = self._hasher.hexdigest()
        self._hasher.close()
        self._hasher = None
        self._raise()
        return digest

    def flush(self) -> None:
        """Wait until everything queued so far is written."""
        self._queue.join()
        self._raise()
        flush = getattr(self.target, "flush", None)
        if flush is not None:
            flush()

    def close(self) -> None:
        """Write what is queued and stop the threads."""
        if self._hasher is not None:
            self._hasher.close()
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise()

    def abort(self) -> None:
        """Stop after a failure; what is still queued is dropped."""
        self._error = self._error or RuntimeError("aborted")
        if self._hasher is not None:
            self._hasher.close()
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
