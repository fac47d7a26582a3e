"""The offline bundle's on-disk format: names, metadata, the checksum list and the footer.

A bundle (``codequal-<version>.bundle``) is a sequence of zstd frames::

    bootstrap   a zstd *skippable* frame (magic 0x184D2A50, 4-byte little-endian size) whose
                payload is a plain, uncompressed tar of the installer's offline form:
                    codequal-installer   the launcher (needs only python3)
                    wheelhouse/zstandard-*.whl
                                         the zstandard wheel(s), as they are
                    wheelhouse/wheels.tar.zst
                                         every other wheel (the installer and all its
                                         dependencies, pip included, for the platform):
                                         a tar in one zstd frame, which the launcher
                                         opens with python3 and the zstandard wheel
    body        zstd frames: one tar stream of the other members
                    answers.example.yaml an example answer file (or the one given at create)
                    images/...           every image, as one ``docker save`` of all of them:
                                         the legacy layout ``docker load`` reads, each layer
                                         stored once
                    release.yaml         the release manifest
                    templates/...        the templates of every generated file
    tail        a zstd frame that continues the same tar stream (and ends it)
                    SHA256SUMS           sha256sum-compatible list of every regular member,
                                         bootstrap members included
                    metadata.json        release, platform, sizes, images, hashes (below)
                    metadata.json.sig    detached ed25519 signature of metadata.json (signed)
    footer      a 40-byte skippable frame giving the tail frame's offset and length

Members come in a fixed, sorted order with zeroed times and owners, so the same inputs give
the same bytes. Decoders ignore skippable frames, so ``zstd -dc FILE | tar x`` extracts the
body and the tail; the bootstrap needs no zstd at all: it starts at byte 8, so
``tail -c +9 FILE | tar x`` (or Python's ``tarfile`` after a seek to 8) extracts it with
standard tools, and the launcher then unpacks and installs the wheels with the system
python3. The wheels other than zstandard's are packed because a stronger zstd level
(:data:`PACKED_WHEELS_LEVEL`) costs a fraction of a second on them and saves about 7 %.
``inspect`` reads the footer and the tail only.

Trust chain: the signature covers ``metadata.json``; its ``aggregate_sha256`` is the
SHA-256 of the ``SHA256SUMS`` bytes; ``SHA256SUMS`` holds every regular member's SHA-256;
``metadata.json`` also lists every symbolic link. Anything in the bootstrap or the body
that these do not name is an extra member, and anything they name that is absent is
missing. ``metadata.json`` also holds ``body_sha256``, the SHA-256 of every byte before
the tail frame (bootstrap frame and body frames): the default ``verify`` hashes the file
once against it, as ``sha256sum -c`` would, and only when it differs reads member by member
to name what is damaged (``verify --deep`` always does). ``bootstrap_size`` is the
bootstrap payload's size (0: none). ``release_manifest`` repeats ``release.yaml``'s text
(its SHA-256 must be the one ``SHA256SUMS`` lists), so that an install reads the bundle's
release from the tail alone.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass, field
from typing import Any

from installer.errors import BundleIntegrityError, UsageError

FORMAT = "codequal-bundle/2"
PARTS_FORMAT = "codequal-bundle-parts/1"

SUMS_NAME = "SHA256SUMS"
METADATA_NAME = "metadata.json"
SIGNATURE_NAME = "metadata.json.sig"
TAIL_NAMES = (SUMS_NAME, METADATA_NAME, SIGNATURE_NAME)

RELEASE_NAME = "release.yaml"
ANSWERS_NAME = "answers.example.yaml"
LAUNCHER_NAME = "codequal-installer"
IMAGES_DIR = "images"
TEMPLATES_DIR = "templates"
WHEELHOUSE_DIR = "wheelhouse"
PACKED_WHEELS_NAME = f"{WHEELHOUSE_DIR}/wheels.tar.zst"
PACKED_WHEELS_LEVEL = 9  # single-threaded: the same wheels give the same bytes
UNPACKED_WHEEL_PREFIX = "zstandard-"  # the launcher needs this wheel to unpack the others
INSTALLER_IMAGE_DIR = "installer-image"  # how the launcher loads the installer image

# zstd skippable frame: magic 0x184D2A50..5F, then a 4-byte little-endian payload size.
BOOTSTRAP_MAGIC = 0x184D2A50
BOOTSTRAP_HEADER = struct.Struct("<II")
BOOTSTRAP_OFFSET = BOOTSTRAP_HEADER.size  # the bootstrap tar starts at byte 8
FOOTER_MAGIC = 0x184D2A5E
FOOTER_TAG = b"CQBUNDL1"
_FOOTER = struct.Struct("<II8sQQQ")
FOOTER_SIZE = _FOOTER.size  # 40 bytes

TAR_BLOCK = 512
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def is_bootstrap_member(name: str) -> bool:
    """Whether ``name`` belongs in the bootstrap frame (the installer's offline form)."""
    return name == LAUNCHER_NAME or name.startswith(
        (f"{WHEELHOUSE_DIR}/", f"{INSTALLER_IMAGE_DIR}/")
    )


def bootstrap_header(payload_size: int) -> bytes:
    if payload_size >= 1 << 32:
        raise ValueError("the bootstrap frame is limited to 4 GiB")
    return BOOTSTRAP_HEADER.pack(BOOTSTRAP_MAGIC, payload_size)


def parse_bootstrap_header(data: bytes) -> int:
    """The bootstrap payload's size from a bundle's first 8 bytes (0 when it has none)."""
    if len(data) < BOOTSTRAP_HEADER.size:
        return 0
    magic, size = BOOTSTRAP_HEADER.unpack(data[: BOOTSTRAP_HEADER.size])
    return int(size) if magic == BOOTSTRAP_MAGIC else 0


def footer_bytes(tail_offset: int, tail_length: int) -> bytes:
    """The skippable frame that ends every bundle."""
    return _FOOTER.pack(FOOTER_MAGIC, FOOTER_SIZE - 8, FOOTER_TAG, tail_offset, tail_length, 0)


def parse_footer(data: bytes, file_size: int) -> tuple[int, int]:
    """``(tail_offset, tail_length)`` from the last :data:`FOOTER_SIZE` bytes of a bundle."""
    if len(data) != FOOTER_SIZE:
        raise BundleIntegrityError(
            "the bundle is too short to be a bundle (no footer): it is truncated or not a bundle"
        )
    magic, size, tag, offset, length, _reserved = _FOOTER.unpack(data)
    if magic != FOOTER_MAGIC or size != FOOTER_SIZE - 8 or tag != FOOTER_TAG:
        raise BundleIntegrityError(
            "the bundle's footer is missing: the file is truncated, has bytes appended, "
            "or is not a CodeQual bundle",
            hint="copy the bundle again and compare its size with the original",
        )
    if offset + length + FOOTER_SIZE != file_size:
        raise BundleIntegrityError(
            "the bundle's footer does not match its size: the file was truncated or changed"
        )
    return offset, length


def format_sums(sums: dict[str, str]) -> bytes:
    """``SHA256SUMS`` text: ``<hex>  <path>`` per regular member, sorted by path."""
    return "".join(f"{sums[name]}  {name}\n" for name in sorted(sums)).encode("utf-8")


def parse_sums(data: bytes) -> dict[str, str]:
    sums: dict[str, str] = {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleIntegrityError(f"{SUMS_NAME} is not text: the bundle was changed") from None
    for number, line in enumerate(text.splitlines(), start=1):
        digest, sep, name = line.partition("  ")
        if not sep or not _SHA256_HEX.match(digest) or not name or name in sums:
            raise BundleIntegrityError(
                f"{SUMS_NAME} line {number} is malformed or repeated: the bundle was changed"
            )
        sums[name] = digest
    return sums


@dataclass(frozen=True)
class LayerInfo:
    digest: str  # sha256:<hex> of the uncompressed layer tar (equals its diff_id)
    size: int


@dataclass(frozen=True)
class ImageInfo:
    """One image in the bundle, as ``inspect`` shows it and a registry push needs it."""

    references: list[str]
    id: str  # sha256:<hex> of the image config (Docker's image ID)
    config: str  # path of the config under images/
    config_size: int
    layers: list[LayerInfo]
    layer_paths: list[str]  # paths under images/ of each layer's tar, in rootfs order
    manifest_digest: str  # digest of the registry manifest a push writes (pull by it)

    @property
    def size(self) -> int:
        """Uncompressed size: the config plus every layer (layers shared with others counted)."""
        return self.config_size + sum(layer.size for layer in self.layers)

    def to_json(self) -> dict[str, Any]:
        return {
            "references": self.references,
            "id": self.id,
            "config": self.config,
            "config_size": self.config_size,
            "layers": [{"digest": la.digest, "size": la.size} for la in self.layers],
            "layer_paths": self.layer_paths,
            "manifest_digest": self.manifest_digest,
            "size": self.size,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageInfo:
        return cls(
            references=list(data["references"]),
            id=str(data["id"]),
            config=str(data["config"]),
            config_size=int(data["config_size"]),
            layers=[LayerInfo(str(la["digest"]), int(la["size"])) for la in data["layers"]],
            layer_paths=[str(p) for p in data["layer_paths"]],
            manifest_digest=str(data["manifest_digest"]),
        )


@dataclass(frozen=True)
class Platform:
    """Where the bundle's installer runs: operating system, machine, Python versions."""

    os: str
    machine: str
    python: list[str]

    def describe(self) -> str:
        return f"{self.os}/{self.machine}, Python {', '.join(self.python)}"


@dataclass(frozen=True)
class BundleMetadata:
    """``metadata.json``: everything ``inspect`` shows and ``verify`` checks against."""

    release_name: str
    release_version: str
    installer_version: str
    platform: Platform
    aggregate_sha256: str
    uncompressed_size: int  # bytes of the whole tar stream: the most extraction can write
    files: int
    symlinks: dict[str, str]
    images: list[ImageInfo]
    images_size: int  # bytes of images/ as stored (each shared layer once)
    key_id: str | None = None
    bootstrap_size: int = 0  # bytes of the bootstrap frame's payload (0: none)
    body_sha256: str | None = None  # SHA-256 of every byte before the tail frame
    # release.yaml's text, also here so that an install reads its release from the tail
    # alone (the member itself sits behind the images); its SHA-256 is SHA256SUMS's.
    release_manifest: str | None = None
    format: str = FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        document = {
            "format": self.format,
            "release": {"name": self.release_name, "version": self.release_version},
            "installer_version": self.installer_version,
            "platform": {
                "os": self.platform.os,
                "machine": self.platform.machine,
                "python": self.platform.python,
            },
            "aggregate_sha256": self.aggregate_sha256,
            "uncompressed_size": self.uncompressed_size,
            "files": self.files,
            "symlinks": dict(sorted(self.symlinks.items())),
            "images": [image.to_json() for image in self.images],
            "images_size": self.images_size,
            "key_id": self.key_id,
            "bootstrap_size": self.bootstrap_size,
            "body_sha256": self.body_sha256,
        }
        if self.release_manifest is not None:
            document["release_manifest"] = self.release_manifest
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> BundleMetadata:
        try:
            doc = json.loads(data.decode("utf-8"))
            if doc.get("format") != FORMAT:
                raise BundleIntegrityError(
                    f"{METADATA_NAME} has format {doc.get('format')!r}, expected {FORMAT!r}",
                    hint="use the installer version that made the bundle",
                )
            platform = doc["platform"]
            return cls(
                release_name=str(doc["release"]["name"]),
                release_version=str(doc["release"]["version"]),
                installer_version=str(doc["installer_version"]),
                platform=Platform(
                    str(platform["os"]), str(platform["machine"]), list(platform["python"])
                ),
                aggregate_sha256=str(doc["aggregate_sha256"]),
                uncompressed_size=int(doc["uncompressed_size"]),
                files=int(doc["files"]),
                symlinks={str(k): str(v) for k, v in doc["symlinks"].items()},
                images=[ImageInfo.from_json(image) for image in doc["images"]],
                images_size=int(doc["images_size"]),
                key_id=doc.get("key_id"),
                bootstrap_size=int(doc.get("bootstrap_size") or 0),
                body_sha256=_optional_sha256(doc.get("body_sha256")),
                release_manifest=_optional_text(doc.get("release_manifest")),
            )
        except BundleIntegrityError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise BundleIntegrityError(
                f"{METADATA_NAME} is malformed ({type(e).__name__}: {e}): the bundle was changed"
            ) from e


def _optional_sha256(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _SHA256_HEX.match(value):
        raise ValueError(f"body_sha256 {value!r} is not a SHA-256")
    return value


def _optional_text(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError("release_manifest is not text")
    return value


_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """``--part-size``: bytes, or a number with K, M, G or T (powers of 1024; KiB/KB too)."""
    match = _SIZE.match(text)
    if match is None:
        raise UsageError(
            f"{text!r} is not a size", hint="write bytes or a number with K, M, G or T, e.g. 700M"
        )
    size = int(match.group(1)) * _UNITS[match.group(2).lower()]
    if size < 1 << 20:
        raise UsageError(f"part size {text!r} is below the 1 MiB minimum")
    return size
