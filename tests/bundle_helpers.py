"""Making bundles in tests without Docker, and rewriting them the way an attacker or a bad
copy would: members changed, added, dropped, or of forbidden types.

``write_bundle`` writes a well-formed bundle from given members with the real writer,
checksum list and metadata (a valid index for whatever the members are, so malicious
names reach the extractor). ``rewrite_bundle`` copies a bundle member by member, raw,
through an edit function, keeping the original tail unless told otherwise.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import zstandard

from installer.bundle import signing
from installer.bundle.format import (
    BOOTSTRAP_OFFSET,
    METADATA_NAME,
    SIGNATURE_NAME,
    SUMS_NAME,
    TAIL_NAMES,
    BundleMetadata,
    Platform,
    bootstrap_header,
    format_sums,
    parse_bootstrap_header,
)
from installer.bundle.parts import PARTS_SUFFIX, PartsWriter
from installer.bundle.writer import BundleStreamWriter


@dataclass
class RawMember:
    """A tar member as it goes into the stream: header fields and data."""

    info: tarfile.TarInfo
    data: bytes = b""


def file_member(name: str, data: bytes, mode: int = 0o644) -> RawMember:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    return RawMember(info, data)


def link_member(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> RawMember:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return RawMember(info)


def special_member(name: str, kind: bytes) -> RawMember:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.devmajor, info.devminor = 1, 3
    return RawMember(info)


def _raw(info: tarfile.TarInfo, data: bytes) -> bytes:
    header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    return header + data + b"\0" * (-len(data) % 512)


class _RawWriter(BundleStreamWriter):
    def add_raw(self, member: RawMember) -> None:
        self._write(_raw(member.info, member.data))

    def add_raw_bootstrap(self, members: list[RawMember]) -> int:
        """The bootstrap frame of ``members``, as written; returns its payload size."""
        payload = b"".join(_raw(m.info, m.data) for m in members) + b"\0" * 1024
        self.sink.write(bootstrap_header(len(payload)))
        self.sink.write(payload)
        self.bootstrap_size = len(payload)
        return len(payload)


def write_bundle(
    path: Path,
    members: list[RawMember],
    *,
    sign_key: Path | None = None,
    part_size: int | None = None,
    listed: list[RawMember] | None = None,
    bootstrap: list[RawMember] | None = None,
    body_hash: bool = False,
) -> Path:
    """A bundle of ``members`` whose index lists ``listed`` (default: the members).

    ``bootstrap`` members go into the bootstrap frame (and the index); ``body_hash``
    records the body's SHA-256 in the metadata, as ``bundle create`` does, so that verify
    takes its fast path.
    """
    index_members = (members if listed is None else listed) + (bootstrap or [])
    sums = {
        m.info.name: hashlib.sha256(m.data).hexdigest() for m in index_members if m.info.isreg()
    }
    symlinks = {m.info.name: m.info.linkname for m in index_members if m.info.issym()}
    key = signing.load_private_key(sign_key) if sign_key else None
    sink: PartsWriter | io.BufferedWriter
    if part_size is not None:
        sink = PartsWriter(path.parent, path.name, part_size)
    else:
        sink = open(path, "wb")  # noqa: SIM115
    writer = _RawWriter(sink)
    if bootstrap:
        writer.add_raw_bootstrap(bootstrap)
    for member in members:
        writer.add_raw(member)
    uncompressed = writer.uncompressed
    body_sha256 = writer.start_tail()
    sums_bytes = format_sums(sums)
    metadata = BundleMetadata(
        release_name="codequal",
        release_version="0.0.0-test",
        installer_version="0.1.0",
        platform=Platform("linux", "x86_64", ["3.11"]),
        aggregate_sha256=hashlib.sha256(sums_bytes).hexdigest(),
        uncompressed_size=uncompressed,
        files=len(sums),
        symlinks=symlinks,
        images=[],
        images_size=0,
        key_id=signing.key_id(key.public_key()) if key else None,
        bootstrap_size=writer.bootstrap_size,
        body_sha256=body_sha256 if body_hash else None,
    ).to_bytes()
    writer.add_file(SUMS_NAME, len(sums_bytes), sums_bytes)
    writer.add_file(METADATA_NAME, len(metadata), metadata)
    if key is not None:
        signature = signing.sign(key, metadata)
        writer.add_file(SIGNATURE_NAME, len(signature), signature)
    writer.finish()
    sink.close()
    if isinstance(sink, PartsWriter):
        header = path.with_name(path.name + PARTS_SUFFIX)
        header.write_bytes(sink.header().to_bytes())
        return header
    return path


def _tar_members(data: bytes) -> list[RawMember]:
    members = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for info in tar:
            content = tar.extractfile(info).read() if info.isreg() else b""  # type: ignore[union-attr]
            members.append(RawMember(info, content))
    return members


def read_bootstrap(path: Path) -> list[RawMember]:
    """The members of the bootstrap frame (none when the bundle has none)."""
    raw = path.read_bytes()
    size = parse_bootstrap_header(raw[:BOOTSTRAP_OFFSET])
    return _tar_members(raw[BOOTSTRAP_OFFSET : BOOTSTRAP_OFFSET + size]) if size else []


def read_members(path: Path) -> list[RawMember]:
    """Every member of a bundle's compressed stream (tail included), raw."""
    data = (
        zstandard.ZstdDecompressor()
        .stream_reader(io.BytesIO(path.read_bytes()), read_across_frames=True)
        .read()
    )
    return _tar_members(data)


def rewrite_bundle(
    source: Path,
    destination: Path,
    edit: Callable[[list[RawMember]], list[RawMember]],
    edit_bootstrap: Callable[[list[RawMember]], list[RawMember]] | None = None,
) -> Path:
    """Copy ``source`` through ``edit`` (which sees every compressed member, tail
    included) and ``edit_bootstrap`` (the bootstrap frame's members)."""
    bootstrap = read_bootstrap(source)
    if edit_bootstrap is not None:
        bootstrap = edit_bootstrap(bootstrap)
    members = edit(read_members(source))
    with open(destination, "wb") as sink:
        writer = _RawWriter(sink)
        if bootstrap:
            writer.add_raw_bootstrap(bootstrap)
        body = [m for m in members if m.info.name not in TAIL_NAMES]
        tail = [m for m in members if m.info.name in TAIL_NAMES]
        for member in body:
            writer.add_raw(member)
        writer.start_tail()
        for member in tail:
            writer.add_raw(member)
        writer.finish()
    return destination
