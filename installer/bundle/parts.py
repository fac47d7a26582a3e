"""Split bundles: fixed-size parts, each checked on its own before they are read as one.

``bundle create --part-size SIZE`` writes ``<bundle>.part001``, ``.part002``, ... and a
small header file ``<bundle>.parts`` (JSON) that names every part with its size and
SHA-256. ``verify`` checks each part against the header and names the bad one before it
reads the parts, in order, as one stream; nothing is ever reassembled on disk.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from installer.bundle.format import PARTS_FORMAT
from installer.errors import BundleIntegrityError, UsageError

PARTS_SUFFIX = ".parts"
_CHUNK = 1 << 20


def part_name(bundle_name: str, index: int) -> str:
    return f"{bundle_name}.part{index:03d}"


@dataclass(frozen=True)
class PartInfo:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class PartsHeader:
    """The ``.parts`` file: the bundle's name and size, and every part's size and hash."""

    bundle: str
    size: int
    part_size: int
    parts: list[PartInfo]

    def to_bytes(self) -> bytes:
        document = {
            "format": PARTS_FORMAT,
            "bundle": self.bundle,
            "size": self.size,
            "part_size": self.part_size,
            "parts": [{"name": p.name, "size": p.size, "sha256": p.sha256} for p in self.parts],
        }
        return (json.dumps(document, indent=2) + "\n").encode("utf-8")

    @classmethod
    def load(cls, path: Path) -> PartsHeader:
        try:
            doc: dict[str, Any] = json.loads(path.read_bytes())
            if doc.get("format") != PARTS_FORMAT:
                raise BundleIntegrityError(f"{path} is not a bundle parts header")
            parts = [
                PartInfo(str(p["name"]), int(p["size"]), str(p["sha256"])) for p in doc["parts"]
            ]
            header = cls(str(doc["bundle"]), int(doc["size"]), int(doc["part_size"]), parts)
        except OSError as e:
            raise UsageError(f"cannot read {path}: {e.strerror or type(e).__name__}") from e
        except (ValueError, KeyError, TypeError) as e:
            raise BundleIntegrityError(f"{path}: malformed parts header ({e})") from e
        for part in parts:
            # A header names files beside itself, never elsewhere.
            if Path(part.name).name != part.name or part.name in ("", ".", ".."):
                raise BundleIntegrityError(f"{path}: part name {part.name!r} is not a file name")
        if sum(p.size for p in parts) != header.size:
            raise BundleIntegrityError(f"{path}: the part sizes do not add up to the bundle size")
        return header


class PartsWriter(io.RawIOBase):
    """A write-only file that rolls over to a new part every ``part_size`` bytes."""

    def __init__(self, directory: Path, bundle_name: str, part_size: int) -> None:
        super().__init__()
        self.directory = directory
        self.bundle_name = bundle_name
        self.part_size = part_size
        self.parts: list[PartInfo] = []
        self._file: BinaryIO | None = None
        self._hash = hashlib.sha256()
        self._in_part = 0
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        written = 0
        while written < len(view):
            if self._file is None:
                name = part_name(self.bundle_name, len(self.parts) + 1)
                self._file = open(self.directory / name, "wb")  # noqa: SIM115
                self._hash = hashlib.sha256()
                self._in_part = 0
            room = self.part_size - self._in_part
            piece = view[written : written + room]
            self._file.write(piece)
            self._hash.update(piece)
            self._in_part += len(piece)
            written += len(piece)
            if self._in_part == self.part_size:
                self._close_part()
        self.position += written
        return written

    def _close_part(self) -> None:
        assert self._file is not None  # noqa: S101
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        name = Path(self._file.name).name
        self.parts.append(PartInfo(name, self._in_part, self._hash.hexdigest()))
        self._file = None

    def close(self) -> None:
        if self._file is not None:
            self._close_part()
        super().close()

    def header(self) -> PartsHeader:
        return PartsHeader(self.bundle_name, self.position, self.part_size, self.parts)


class ConcatenatedReader(io.RawIOBase):
    """Read-only, seekable view of several files one after another."""

    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self._paths = paths
        self._sizes = [p.stat().st_size for p in paths]
        self._starts = [sum(self._sizes[:i]) for i in range(len(paths))]
        self.size = sum(self._sizes)
        self._pos = 0
        self._index = -1
        self._file: io.BufferedReader | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self.size or not len(view):
            return 0
        index = max(i for i, start in enumerate(self._starts) if start <= self._pos)
        while self._sizes[index] == 0:  # pragma: no cover - parts are never empty
            index += 1
        if index != self._index or self._file is None:
            if self._file is not None:
                self._file.close()
            self._file = open(self._paths[index], "rb")  # noqa: SIM115
            self._index = index
        self._file.seek(self._pos - self._starts[index])
        count: int = self._file.readinto(
            view[: self._starts[index] + self._sizes[index] - self._pos]
        )
        self._pos += count
        return count

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        super().close()


def check_parts(header_path: Path, header: PartsHeader) -> list[str]:
    """One problem line per bad part (missing, wrong size, wrong SHA-256); empty when all good."""
    problems: list[str] = []
    directory = header_path.parent
    for number, part in enumerate(header.parts, start=1):
        path = directory / part.name
        label = f"part {number} ({part.name})"
        try:
            size = path.stat().st_size
        except OSError:
            problems.append(f"{label}: missing")
            continue
        if size != part.size:
            problems.append(f"{label}: {size} bytes, expected {part.size}: truncated or changed")
            continue
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != part.sha256:
            problems.append(f"{label}: SHA-256 mismatch: the part is corrupt")
    named = {part.name for part in header.parts}
    prefix = f"{header.bundle}.part"
    extra = sorted(
        p.name
        for p in directory.glob(f"{prefix}*")
        if p.name[len(prefix) :].isdigit() and p.name not in named
    )
    problems += [f"{name}: extra part not named in {header_path.name}" for name in extra]
    return problems
