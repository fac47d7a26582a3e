"""Reading a bundle: locating it (one file or parts), its index, and its verified members.

:func:`read_index` reads only the first 8 bytes (the bootstrap frame's size), the footer
and the tail frame (metadata, checksum list, signature): that is all ``inspect`` needs.
:func:`body_matches` hashes every byte before the tail against the signed ``body_sha256``
(the default verify). :func:`iter_members` streams the bootstrap tar and then the
compressed tar and checks every member against the index as it goes: extra members are
rejected before their data is handed out, a member's hash is checked when its data has been
read, and members the index names but the stream lacks are reported at the end. Deep
verification, extraction and loading into Docker all go through it, so they agree on what
a good bundle is.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from installer.bundle.format import (
    BOOTSTRAP_OFFSET,
    FOOTER_SIZE,
    METADATA_NAME,
    RELEASE_NAME,
    SIGNATURE_NAME,
    SUMS_NAME,
    TAIL_NAMES,
    BundleMetadata,
    is_bootstrap_member,
    parse_bootstrap_header,
    parse_footer,
    parse_sums,
)
from installer.bundle.parts import PARTS_SUFFIX, ConcatenatedReader, PartsHeader, check_parts
from installer.bundle.progress import ProgressCallback, ProgressMeter
from installer.bundle.tarstream import (
    ByteReader,
    ChunkReader,
    Prefetcher,
    ThreadedHasher,
    iter_tar,
)
from installer.errors import BundleIntegrityError, UsageError

CHUNK = 1 << 20
_TYPE_NAMES = {
    tarfile.LNKTYPE: "hard link",
    tarfile.CHRTYPE: "character device",
    tarfile.BLKTYPE: "block device",
    tarfile.FIFOTYPE: "FIFO",
    tarfile.DIRTYPE: "directory",
}
_MAX_TAIL = 64 << 20  # the tail holds text only; anything larger is not ours


@dataclass(frozen=True)
class BundleSource:
    """Where a bundle's bytes are: one file, or parts named by a ``.parts`` header."""

    path: Path
    parts_header_path: Path | None = None
    parts_header: PartsHeader | None = None

    @property
    def display(self) -> str:
        return str(self.parts_header_path or self.path)

    def open(self) -> BinaryIO:
        if self.parts_header is None:
            return open(self.path, "rb")
        assert self.parts_header_path is not None  # noqa: S101
        directory = self.parts_header_path.parent
        reader = ConcatenatedReader([directory / p.name for p in self.parts_header.parts])
        return io.BufferedReader(reader, buffer_size=CHUNK)

    def size(self) -> int:
        if self.parts_header is not None:
            return self.parts_header.size
        return self.path.stat().st_size

    def check_parts(self) -> None:
        """Each part against the header, on its own, naming every bad part."""
        if self.parts_header is None or self.parts_header_path is None:
            return
        problems = check_parts(self.parts_header_path, self.parts_header)
        if problems:
            raise BundleIntegrityError(
                f"{len(problems)} bad part(s) of {self.parts_header.bundle}",
                problems=problems,
                hint="copy the named parts again",
            )


def locate_bundle(path: str | Path) -> BundleSource:
    """A bundle file, a ``.parts`` header, or a bundle name whose ``.parts`` header exists."""
    path = Path(path)
    header_path: Path | None = None
    if path.name.endswith(PARTS_SUFFIX) and path.is_file():
        header_path = path
    elif not path.exists() and path.with_name(path.name + PARTS_SUFFIX).is_file():
        header_path = path.with_name(path.name + PARTS_SUFFIX)
    if header_path is not None:
        header = PartsHeader.load(header_path)
        return BundleSource(header_path.with_name(header.bundle), header_path, header)
    if not path.is_file():
        raise UsageError(f"no bundle at {path}", hint="give the .bundle file or its .parts header")
    return BundleSource(path)


@dataclass(frozen=True)
class BundleIndex:
    """The tail of a bundle, read through its footer: what it claims to hold."""

    source: BundleSource
    metadata: BundleMetadata
    metadata_bytes: bytes
    sums: dict[str, str]
    sums_bytes: bytes
    signature: bytes | None
    compressed_size: int
    tail_offset: int = 0  # where the tail frame starts: the body is every byte before it

    @property
    def body_offset(self) -> int:
        """Where the compressed tar stream starts (after the bootstrap frame, if any)."""
        size = self.metadata.bootstrap_size
        return BOOTSTRAP_OFFSET + size if size else 0

    def check_signature(self, public_key_path: Path | None) -> str:
        """Check the signature against ``public_key_path``; returns a one-line status."""
        from installer.bundle import signing

        if public_key_path is None:
            if self.signature is None:
                return "unsigned"
            return f"signed by {self.metadata.key_id} (not checked: no --key given)"
        public_key = signing.load_public_key(public_key_path)
        if self.signature is None:
            raise BundleIntegrityError(
                "the bundle is not signed, but a public key was given",
                hint="ask for a signed bundle, or leave out --key to check hashes only",
            )
        wanted = signing.key_id(public_key)
        if self.metadata.key_id is not None and self.metadata.key_id != wanted:
            raise BundleIntegrityError(
                f"the bundle was signed by key {self.metadata.key_id}, not by --key ({wanted})"
            )
        signing.check_signature(public_key, self.signature, self.metadata_bytes)
        return f"signed by {wanted} (signature valid)"

    def release_text(self) -> bytes:
        """``release.yaml``: from the metadata (the tail) when it carries it, else read from
        the body (a bundle made before it did), checked against ``SHA256SUMS`` either way."""
        text = self.metadata.release_manifest
        if text is not None:
            return text.encode("utf-8")  # read_index checked it against SHA256SUMS
        for member in iter_members(self, operation="read"):
            if member.name == RELEASE_NAME:
                data = member.read_all()
                if hashlib.sha256(data).hexdigest() != self.sums.get(RELEASE_NAME):
                    raise BundleIntegrityError(
                        f"{RELEASE_NAME} does not match its SHA-256: the bundle was changed"
                    )
                return data
        raise BundleIntegrityError(f"the bundle holds no {RELEASE_NAME}: it was changed")


def _decompress_all(data: bytes) -> bytes:
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data))
    out = bytearray()
    while chunk := reader.read(CHUNK):
        out += chunk
        if len(out) > _MAX_TAIL:
            raise BundleIntegrityError("the bundle's tail frame is too large: not a bundle")
    return bytes(out)


def read_index(source: BundleSource) -> BundleIndex:
    """Footer, then the tail frame: metadata, checksums, signature. Reads no image data."""
    import zstandard

    size = source.size()
    with source.open() as f:
        if size < FOOTER_SIZE:
            raise BundleIntegrityError(f"{source.display} is too short to be a bundle: truncated")
        bootstrap_size = parse_bootstrap_header(f.read(BOOTSTRAP_OFFSET))
        f.seek(size - FOOTER_SIZE)
        offset, length = parse_footer(f.read(FOOTER_SIZE), size)
        if length > _MAX_TAIL:
            raise BundleIntegrityError("the bundle's footer points at an implausible tail")
        f.seek(offset)
        compressed_tail = f.read(length)
    try:
        tail = _decompress_all(compressed_tail)
    except zstandard.ZstdError as e:
        raise BundleIntegrityError(
            f"the bundle's tail (metadata and checksums) is corrupt: {e}"
        ) from e
    members: dict[str, bytes] = {}
    order: list[str] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(tail), mode="r:") as tar:
            for info in tar:
                data = tar.extractfile(info) if info.isreg() else None
                if data is None or info.name not in TAIL_NAMES or info.name in members:
                    raise BundleIntegrityError(
                        f"unexpected member {info.name!r} in the bundle's tail: "
                        "the bundle was changed"
                    )
                members[info.name] = data.read()
                order.append(info.name)
    except tarfile.TarError as e:
        raise BundleIntegrityError(f"the bundle's tail is not a tar stream: {e}") from e
    if order[:2] != [SUMS_NAME, METADATA_NAME] or order[2:] not in ([], [SIGNATURE_NAME]):
        raise BundleIntegrityError(
            f"the bundle's tail holds {order}, expected {SUMS_NAME}, {METADATA_NAME} "
            f"and optionally {SIGNATURE_NAME}: the bundle was changed"
        )
    metadata = BundleMetadata.from_bytes(members[METADATA_NAME])
    if bootstrap_size != metadata.bootstrap_size or (
        bootstrap_size and BOOTSTRAP_OFFSET + bootstrap_size > offset
    ):
        raise BundleIntegrityError(
            f"the bootstrap frame at the start holds {bootstrap_size} bytes, the metadata "
            f"says {metadata.bootstrap_size}: the start of the bundle was changed"
        )
    sums_bytes = members[SUMS_NAME]
    if hashlib.sha256(sums_bytes).hexdigest() != metadata.aggregate_sha256:
        raise BundleIntegrityError(
            f"aggregate hash mismatch: {SUMS_NAME} does not match metadata.json: "
            "the checksum list was changed"
        )
    sums = parse_sums(sums_bytes)
    manifest = metadata.release_manifest
    if manifest is not None and (
        hashlib.sha256(manifest.encode("utf-8")).hexdigest() != sums.get(RELEASE_NAME)
    ):
        raise BundleIntegrityError(
            f"the release manifest in metadata.json differs from {RELEASE_NAME}'s SHA-256 "
            f"in {SUMS_NAME}: the bundle was changed"
        )
    return BundleIndex(
        source=source,
        metadata=metadata,
        metadata_bytes=members[METADATA_NAME],
        sums=sums,
        sums_bytes=sums_bytes,
        signature=members.get(SIGNATURE_NAME),
        compressed_size=size,
        tail_offset=offset,
    )


def body_matches(index: BundleIndex, progress: ProgressCallback | None = None) -> bool | None:
    """Whether every byte before the tail hashes to the signed ``body_sha256``.

    One sequential read, hashed while the next block is read (hashlib releases the GIL):
    the cost of ``sha256sum -c``. None when the bundle records no body hash.
    """
    expected = index.metadata.body_sha256
    if expected is None:
        return None
    meter = ProgressMeter("verify", progress, index.tail_offset)
    digest = hashlib.sha256()
    block = 8 << 20
    with index.source.open() as f:
        left = index.tail_offset

        def read_block() -> bytes:
            nonlocal left
            data = f.read(min(block, left)) if left else b""
            left -= len(data)
            return data

        blocks = Prefetcher(read_block, depth=4)
        try:
            done = 0
            while chunk := blocks.next_chunk():
                digest.update(chunk)
                meter.advance(len(chunk))
                done += len(chunk)
        finally:
            blocks.close()
    meter.finish()
    return done == index.tail_offset and digest.hexdigest() == expected


def _decompressed(compressed: BinaryIO, meter: ProgressMeter) -> Prefetcher:
    """The decompressed stream, produced in a background thread (zstd releases the GIL)."""
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(
        compressed, read_size=CHUNK, read_across_frames=True
    )

    def read_chunk() -> bytes:
        position = compressed.tell()
        chunk: bytes = reader.read(4 * CHUNK)
        meter.advance(compressed.tell() - position)
        return chunk

    return Prefetcher(read_chunk)


class _Bounded(io.RawIOBase):
    """At most ``size`` bytes of ``source`` from where it stands, counted on ``meter``."""

    def __init__(self, source: BinaryIO, size: int, meter: ProgressMeter) -> None:
        super().__init__()
        self._source = source
        self._left = size
        self._meter = meter

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")[: self._left]
        if not len(view):
            return 0
        data = self._source.read(len(view))
        count = len(data)
        view[:count] = data
        self._left -= count
        self._meter.advance(count)
        return count


def _raw_members(
    index: BundleIndex, raw: BinaryIO, meter: ProgressMeter
) -> Iterator[tuple[tarfile.TarInfo, Any, bool]]:
    """Every tar member: the bootstrap frame's (uncompressed), then the compressed stream's.

    The third item says whether the member came from the bootstrap frame.
    """
    size = index.metadata.bootstrap_size
    if size:
        raw.seek(BOOTSTRAP_OFFSET)
        bootstrap = _Bounded(raw, size, meter)
        for info, data in iter_tar(ChunkReader(lambda: bootstrap.read(CHUNK))):
            yield info, data, True
    raw.seek(index.body_offset)
    stream = _decompressed(raw, meter)
    try:
        for info, data in iter_tar(ChunkReader(stream.next_chunk)):
            yield info, data, False
    finally:
        stream.close()


@dataclass
class Member:
    """A member the index names, handed out while the stream is read."""

    name: str
    kind: str  # "file" or "symlink"
    size: int
    mode: int
    linkname: str
    _data: ByteReader | None
    _expected: str | None
    _hasher: ThreadedHasher | None  # SHA-256 on another core, shared: members take turns
    _read: int = 0

    def chunks(self) -> Iterator[bytes | memoryview]:
        """The member's data, hashed on the way; read at most once. Chunks may be views
        into the decompressed stream's chunks (no copy; those chunks are never reused, so
        the hasher may still be reading one while the consumer has the next)."""
        if self._data is None:
            return
        assert self._hasher is not None  # noqa: S101 - a member with data has a hasher
        read = getattr(self._data, "read_chunk", None) or self._data.read
        while chunk := read(CHUNK):
            self._hasher.update(chunk)
            self._read += len(chunk)
            yield chunk

    def read_all(self, limit: int = 64 << 20) -> bytes:
        if self.size > limit:
            raise BundleIntegrityError(f"{self.name} is implausibly large ({self.size} bytes)")
        return b"".join(bytes(chunk) for chunk in self.chunks())

    def _finish(self) -> bool:
        """Reads what the consumer left; True when the hash matches the index."""
        for _ in self.chunks():
            pass
        if self._hasher is None:  # no data
            return self._expected is None
        digest = self._hasher.hexdigest()  # waits for the last chunk; the next starts anew
        return self._expected is None or (self._read == self.size and digest == self._expected)


def iter_members(
    index: BundleIndex,
    *,
    fail_fast: bool = True,
    problems: list[str] | None = None,
    progress: ProgressCallback | None = None,
    operation: str = "verify",
) -> Iterator[Member]:
    """Every content member in stream order, checked against ``index``.

    With ``fail_fast`` the first problem raises :class:`BundleIntegrityError` before the
    offending member is handed out (or, for a content mismatch, right after its data was
    read: callers that write data must treat it as unconfirmed until the next member
    arrives or the iteration ends). Without it, problems are collected in ``problems``
    and raised together at the end.
    """
    import zstandard

    found: list[str] = [] if problems is None else problems

    def problem(message: str) -> None:
        if fail_fast:
            raise BundleIntegrityError(
                message, hint="the bundle was damaged or changed: copy it again"
            )
        found.append(message)

    meter = ProgressMeter(operation, progress, index.compressed_size)
    seen: set[str] = set()
    tail: list[str] = []
    expected_links = index.metadata.symlinks
    hasher = ThreadedHasher()
    with index.source.open() as raw, contextlib.closing(hasher):
        try:
            for info, data, in_bootstrap in _raw_members(index, raw, meter):
                name = info.name
                if in_bootstrap and not is_bootstrap_member(name):
                    problem(f"extra member {name!r} in the bootstrap frame")
                    continue
                if tail and (name not in TAIL_NAMES or name in tail):
                    problem(f"extra member {name!r} after the checksum list")
                    continue
                if name in TAIL_NAMES:
                    _check_tail_member(index, data, info, tail, problem)
                    continue
                if name in seen:
                    problem(f"member {name!r} appears more than once")
                    continue
                seen.add(name)
                if info.isreg():
                    expected = index.sums.get(name)
                    if expected is None:
                        problem(f"extra member {name!r}: not in {SUMS_NAME}")
                        continue
                    member = Member(name, "file", info.size, info.mode, "", data, expected, hasher)
                    yield member
                    if not member._finish():
                        problem(f"member {name!r}: SHA-256 mismatch (content changed)")
                elif info.issym():
                    if expected_links.get(name) != info.linkname:
                        problem(
                            f"extra member {name!r}: a symbolic link the metadata does not list"
                            if name not in expected_links
                            else f"member {name!r}: link target changed to {info.linkname!r}"
                        )
                        continue
                    yield Member(name, "symlink", 0, info.mode, info.linkname, None, None, None)
                else:
                    kind = _TYPE_NAMES.get(info.type, f"type {info.type!r}")
                    problem(f"extra member {name!r}: a {kind} is never part of a bundle")
        except zstandard.ZstdError as e:
            raise BundleIntegrityError(
                f"the bundle's compressed data is corrupt near byte {meter.done}: {e}",
                hint="copy the bundle again",
            ) from e
        except (tarfile.TarError, EOFError) as e:
            raise BundleIntegrityError(
                f"the bundle's tar stream is damaged or truncated: {e}",
                hint="copy the bundle again",
            ) from e
    meter.finish()
    missing = sorted((set(index.sums) | set(expected_links)) - seen)
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        problem(f"missing member(s): {shown}")
    wanted_tail = [SUMS_NAME, METADATA_NAME] + ([SIGNATURE_NAME] if index.signature else [])
    if tail != wanted_tail:
        problem(f"the stream's tail holds {tail}, the footer's index {wanted_tail}")
    if found and problems is None:
        more = f" (and {len(found) - 1} more problems)" if len(found) > 1 else ""
        raise BundleIntegrityError(
            f"{index.source.display}: {found[0]}{more}",
            problems=found,
            hint="the bundle was damaged or changed: copy it again",
        )


def _check_tail_member(
    index: BundleIndex,
    data: ByteReader,
    info: tarfile.TarInfo,
    tail: list[str],
    problem: Callable[[str], None],
) -> None:
    reference = {
        SUMS_NAME: index.sums_bytes,
        METADATA_NAME: index.metadata_bytes,
        SIGNATURE_NAME: index.signature,
    }[info.name]
    content = data.read(_MAX_TAIL) if info.isreg() else None
    tail.append(info.name)
    if content != reference:
        problem(f"{info.name} in the stream differs from the one the footer points at")
