"""``bundle create``: one file with everything an install without network needs.

The release's images stream from one ``docker save`` call, read straight from the Engine
(the endpoint and HTTP helper of :mod:`installer.engine`), into the bundle (never held in
memory; written to disk first only for the members behind a forward link of a shared
layer, see :class:`_Relinker`). The save starts first:
Docker exports the images to its own disk before it sends a byte, and the wheelhouse is
packed and goes with the launcher into the bootstrap frame meanwhile; templates, release
manifest and example answers come from files. Everything is hashed on the way through, and
the checksum list, the metadata (with the body's hash) and the signature are written last,
in the tail. The file is flushed to disk while it is written, so the final fsync is short.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import os
import platform
import posixpath
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol, cast

from installer import __version__
from installer.bundle.format import (
    ANSWERS_NAME,
    IMAGES_DIR,
    LAUNCHER_NAME,
    METADATA_NAME,
    PACKED_WHEELS_LEVEL,
    PACKED_WHEELS_NAME,
    RELEASE_NAME,
    SIGNATURE_NAME,
    SUMS_NAME,
    TEMPLATES_DIR,
    UNPACKED_WHEEL_PREFIX,
    WHEELHOUSE_DIR,
    BundleMetadata,
    Platform,
    format_sums,
)
from installer.bundle.images import images_from_save
from installer.bundle.parts import PARTS_SUFFIX, PartsWriter, part_name
from installer.bundle.progress import ProgressCallback, ProgressMeter
from installer.bundle.tarstream import CHUNK, ChunkReader, MemberData, Prefetcher, iter_tar
from installer.bundle.writer import BootstrapMember, BundleStreamWriter
from installer.engine.endpoint import DockerEndpoint, command_environment
from installer.errors import ImageSaveError, InstallerError, PrerequisiteError, UsageError
from installer.release import ReleaseManifest

SAVE_TIMEOUT_SECONDS = 3600
SAVE_READ = 1 << 20  # bytes per read of the save stream: 8 in flight keep memory flat
FLUSH_EVERY = 64 << 20  # bytes written between two flushes of the bundle to disk


@dataclass(frozen=True)
class CreatedBundle:
    """What ``create_bundle`` wrote."""

    path: Path  # the bundle, or its .parts header when split
    metadata: BundleMetadata
    compressed_size: int
    parts: list[Path]


@dataclass(frozen=True)
class FileInput:
    """A regular file to store: its member name and where it is read from."""

    name: str
    path: Path | None = None
    data: bytes | None = None
    mode: int = 0o644

    def size(self) -> int:
        return len(self.data) if self.data is not None else self._path().stat().st_size

    def _path(self) -> Path:
        assert self.path is not None  # noqa: S101
        return self.path


def release_text(release: ReleaseManifest) -> bytes:
    """The release manifest as stored: canonical JSON, which is YAML the installer reads."""
    import json

    document = release.model_dump(mode="json", exclude_none=True)
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


def image_references(release: ReleaseManifest, answers: Any = None) -> list[str]:
    """Each distinct image the release runs (answer-file overrides applied), by tag.

    A digest pin (``name:tag@sha256:...``) is dropped for saving: an image that was built
    or loaded here has no registry digest, and the saved image ID is recorded instead.
    """
    references = {ref.split("@", 1)[0] for ref in release.images(answers).values()}
    return sorted(references)


def launcher_text() -> bytes:
    """The launcher script of the installer's offline form (packaging/codequal-installer.sh)."""
    packaged = resources.files("installer.bundle").joinpath("launcher.sh")
    if packaged.is_file():
        return packaged.read_bytes()
    source = Path(__file__).resolve().parents[2] / "packaging" / "codequal-installer.sh"
    try:
        return source.read_bytes()
    except OSError as e:
        raise UsageError(f"the launcher script is missing from this installer ({source})") from e


def template_inputs() -> list[FileInput]:
    """Every template file, under ``templates/``, sorted."""
    import templates

    root = Path(templates.__file__).resolve().parent
    inputs = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and "__pycache__" not in relative and not relative.endswith(".pyc"):
            inputs.append(FileInput(f"{TEMPLATES_DIR}/{relative}", path=path))
    return inputs


@dataclass(frozen=True)
class Wheels:
    """The wheelhouse as the bootstrap carries it: ``unpacked`` as they are (the zstandard
    wheels, which the launcher needs to open the pack), ``packed`` (every other wheel) in
    one zstd-compressed tar (:data:`PACKED_WHEELS_NAME`)."""

    unpacked: list[FileInput]
    packed: list[Path]


def _installer_image_inputs(reference: str) -> list[FileInput]:
    from installer.bundle import installer_image as image

    return [
        FileInput(image.REFERENCE_NAME, data=image.reference_text(reference)),
        FileInput(image.UNPACKER_NAME, data=image.unpacker_rootfs()),
    ]


def wheel_inputs(wheelhouse: Path) -> Wheels:
    wheels = sorted(p for p in wheelhouse.iterdir() if p.name.endswith(".whl") and p.is_file())
    for wanted, role in (
        ("codequal_installer-", "the installer's own"),
        ("pip-", "pip's, which installs the others offline,"),
        (UNPACKED_WHEEL_PREFIX, "zstandard's, which unpacks the others offline,"),
    ):
        if not any(p.name.startswith(wanted) for p in wheels):
            raise UsageError(
                f"{wheelhouse} lacks {role} wheel ({wanted}*.whl)",
                hint="leave out --wheelhouse to have one made, or give one that "
                "`python -m installer.bundle.wheelhouse DIR` made",
            )
    return Wheels(
        unpacked=[
            FileInput(f"{WHEELHOUSE_DIR}/{p.name}", path=p)
            for p in wheels
            if p.name.startswith(UNPACKED_WHEEL_PREFIX)
        ],
        packed=[p for p in wheels if not p.name.startswith(UNPACKED_WHEEL_PREFIX)],
    )


def wheelhouse_pythons(wheelhouse: Path) -> list[str]:
    """The CPython versions the wheelhouse's compiled wheels are for (``3`` if all pure)."""
    versions: set[str] = set()
    for wheel in wheelhouse.glob("*.whl"):
        tags = wheel.name.removesuffix(".whl").split("-")
        if len(tags) >= 5 and tags[-2].startswith("cp3") and tags[-2][3:].isdigit():
            versions.add(f"3.{tags[-2][3:]}")
    return sorted(versions, key=lambda v: int(v.split(".")[1])) or ["3"]


class _FlushingFile:
    """The bundle file, written by the writer thread while another thread flushes what is
    written to disk (``fdatasync`` every :data:`FLUSH_EVERY` bytes): the final
    :meth:`sync` then waits for the last few MiB, not for the whole bundle."""

    def __init__(self, path: Path) -> None:
        import threading

        self.file = open(path, "wb")  # noqa: SIM115 - closed by close()
        self._unflushed = 0
        self._wake = threading.Event()
        self._stopping = False
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._flush, name="bundle-flush", daemon=True)
        self._thread.start()

    def _flush(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            try:
                os.fdatasync(self.file.fileno())
            except OSError as e:  # reported by sync(): the kernel reports a write error once
                self._error = self._error or e

    def write(self, data: Any) -> int:
        written = self.file.write(data)
        self._unflushed += written
        if self._unflushed >= FLUSH_EVERY:
            self._unflushed = 0
            self._wake.set()
        return written

    def flush(self) -> None:
        self.file.flush()

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._stopping = True
            self._wake.set()
            self._thread.join()

    def sync(self) -> None:
        """Everything written is on disk (or the first write error is raised)."""
        self.file.flush()
        self._stop()
        if self._error is not None:
            raise self._error
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self._stop()
        self.file.close()


def _drop_cached_pages(path: Path) -> None:
    """Drop the page cache of the bundle that the new one will replace: freeing it is what
    makes the final rename slow (a fifth of a second per GiB), and now Docker is busy."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except (OSError, AttributeError):  # AttributeError: no posix_fadvise on this system
        pass
    finally:
        os.close(fd)


def _open_output(out: Path, part_size: int | None) -> tuple[Any, Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    if part_size is None:
        temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        return _FlushingFile(temporary), temporary
    for stale in out.parent.glob(f"{out.name}.part*"):
        stale.unlink()
    return PartsWriter(out.parent, out.name, part_size), out.with_name(out.name + PARTS_SUFFIX)


def create_bundle(
    release: ReleaseManifest,
    out: Path,
    *,
    wheelhouse: Path,
    answers_text: bytes | None = None,
    answers: Any = None,
    sign_key: Path | None = None,
    part_size: int | None = None,
    docker_client: Any = None,
    progress: ProgressCallback | None = None,
    level: int = 3,
    installer_image: str | None = None,
) -> CreatedBundle:
    """Write the bundle for ``release`` to ``out`` (or its parts beside it).

    ``installer_image`` (``codequal/installer:<version>``) is saved with the release's
    images, and the bootstrap gets what the launcher needs to load it on a host without
    Python (:mod:`installer.bundle.installer_image`).
    """
    from installer.bundle import signing
    from installer.engine.docker import docker_client as engine_docker_client
    from installer.examples import example_text

    references = image_references(release, answers)
    if installer_image is not None and installer_image not in references:
        references = sorted([*references, installer_image])
    # Docker exports the images to its own disk before it sends the first byte (seconds
    # for large images): the save is asked for first, straight from the Engine without
    # the Docker SDK, and everything else up to the first byte is done meanwhile.
    save = contextlib.ExitStack()
    try:
        stream = _start_early_save(save, references)
        client = docker_client or engine_docker_client(timeout=SAVE_TIMEOUT_SECONDS)
        _check_images_present(client, references)  # a clearer message than the save's
        if isinstance(stream, InstallerError):
            raise stream
        if stream is None:
            stream = _start_cli_save(save, references)
        private_key = signing.load_private_key(sign_key) if sign_key is not None else None
        wheels = wheel_inputs(wheelhouse)
        bootstrap = [FileInput(LAUNCHER_NAME, data=launcher_text(), mode=0o755), *wheels.unpacked]
        if installer_image is not None:
            bootstrap += _installer_image_inputs(installer_image)
        before_images = [
            FileInput(ANSWERS_NAME, data=answers_text or example_text("enterprise").encode()),
        ]
        manifest_text = release_text(release)
        after_images = [
            FileInput(RELEASE_NAME, data=manifest_text),
            *template_inputs(),
        ]
        sink, final_path = _open_output(out, part_size)
    except BaseException:
        save.__exit__(*sys.exc_info())  # stops docker save
        raise
    writer: BundleStreamWriter | None = None
    try:
        if part_size is None:
            _drop_cached_pages(out)
        writer = BundleStreamWriter(sink, level=level)  # writes from a thread of its own
        sums: dict[str, str] = {}
        sizes: dict[str, int] = {}
        symlinks: dict[str, str] = {}
        with _packed_wheels(wheels.packed, scratch=out.parent) as packed:
            _add_bootstrap(writer, sorted([*bootstrap, packed], key=_by_name), sums, sizes)
        for item in before_images:
            _add_input(writer, item, sums, sizes)
        with save:
            manifest_json = _add_saved_images(
                writer,
                stream,
                sums=sums,
                sizes=sizes,
                symlinks=symlinks,
                progress=progress,
                staging_dir=out.parent,
            )
        for item in after_images:
            _add_input(writer, item, sums, sizes)
        images = images_from_save(manifest_json, sums, sizes, symlinks)
        _check_saved_references(images, references)
        uncompressed = writer.uncompressed
        body_sha256 = writer.start_tail()
        sums_bytes = format_sums(sums)
        import hashlib

        metadata = BundleMetadata(
            release_name=release.name,
            release_version=release.version,
            installer_version=__version__,
            platform=Platform(sys.platform, platform.machine(), wheelhouse_pythons(wheelhouse)),
            aggregate_sha256=hashlib.sha256(sums_bytes).hexdigest(),
            uncompressed_size=uncompressed,
            files=len(sums),
            symlinks=symlinks,
            images=images,
            images_size=sum(s for n, s in sizes.items() if n.startswith(f"{IMAGES_DIR}/")),
            key_id=signing.key_id(private_key.public_key()) if private_key else None,
            bootstrap_size=writer.bootstrap_size,
            body_sha256=body_sha256,
            release_manifest=manifest_text.decode("utf-8"),
        )
        metadata_bytes = metadata.to_bytes()
        writer.add_file(SUMS_NAME, len(sums_bytes), sums_bytes)
        writer.add_file(METADATA_NAME, len(metadata_bytes), metadata_bytes)
        if private_key is not None:
            signature = signing.sign(private_key, metadata_bytes)
            writer.add_file(SIGNATURE_NAME, len(signature), signature)
        compressed_size = writer.finish()
        sink.flush()
        if isinstance(sink, PartsWriter):
            sink.close()
            header = sink.header()
            _write_atomically(final_path, header.to_bytes())
            parts = [out.parent / p.name for p in header.parts]
        else:
            # The bundle is complete on disk before it gets its name; most of it was
            # flushed while it was written, so this waits for the last few MiB only.
            sink.sync()
            sink.close()
            os.replace(final_path, out)
            final_path, parts = out, []
    except BaseException:
        try:
            save.__exit__(*sys.exc_info())  # stops docker save; its own error may replace this
        finally:
            if writer is not None:
                writer.abort()
            sink.close()
            if isinstance(sink, PartsWriter):
                for index in range(1, len(sink.parts) + 2):
                    (out.parent / part_name(out.name, index)).unlink(missing_ok=True)
            else:
                final_path.unlink(missing_ok=True)
        raise
    return CreatedBundle(final_path, metadata, compressed_size, parts)


def _write_atomically(path: Path, data: bytes) -> None:
    from installer.statedir import replace_file

    replace_file(path, data, 0o644)


def _by_name(item: FileInput) -> str:
    return item.name


@contextlib.contextmanager
def _packed_wheels(wheels: list[Path], *, scratch: Path) -> Iterator[FileInput]:
    """The pack of ``wheels`` (:data:`PACKED_WHEELS_NAME`), in a file of its own beside the
    bundle until the bootstrap has taken it; made while Docker prepares the save."""
    import tempfile

    from installer.bundle.writer import pack_files

    members = [(p.name, p) for p in wheels]
    with tempfile.TemporaryDirectory(prefix=".codequal-wheels-", dir=scratch) as directory:
        path = Path(directory) / "wheels.tar.zst"
        try:
            with open(path, "wb") as into:
                pack_files(members, into, level=PACKED_WHEELS_LEVEL)
        except OSError as e:
            raise UsageError(
                f"cannot pack the wheelhouse: {e.filename or path}: {e.strerror or e}",
                hint=f"check the free space and permissions of {scratch}",
            ) from e
        yield FileInput(PACKED_WHEELS_NAME, path=path)


def _add_bootstrap(
    writer: BundleStreamWriter,
    items: list[FileInput],
    sums: dict[str, str],
    sizes: dict[str, int],
) -> None:
    """The launcher and the wheelhouse, uncompressed in the bootstrap frame."""
    members = []
    try:
        for item in items:
            if item.data is not None:
                data = item.data
                members.append(
                    BootstrapMember(item.name, len(data), item.mode, functools.partial(bytes, data))
                )
            else:
                path = item._path()
                mode = item.mode | (path.stat().st_mode & 0o111)
                members.append(
                    BootstrapMember(
                        item.name, path.stat().st_size, mode, functools.partial(open, path, "rb")
                    )
                )
            sizes[item.name] = members[-1].size
        sums.update(writer.add_bootstrap(members))
    except OSError as e:
        raise UsageError(
            f"cannot read {e.filename or 'the wheelhouse'}: {e.strerror or type(e).__name__}"
        ) from e


def _add_input(
    writer: BundleStreamWriter, item: FileInput, sums: dict[str, str], sizes: dict[str, int]
) -> None:
    try:
        _add_input_file(writer, item, sums, sizes)
    except OSError as e:
        raise UsageError(
            f"cannot read {e.filename or item.name}: {e.strerror or type(e).__name__}"
        ) from e


def _add_input_file(
    writer: BundleStreamWriter, item: FileInput, sums: dict[str, str], sizes: dict[str, int]
) -> None:
    size = item.size()
    if item.data is not None:
        sums[item.name] = writer.add_file(item.name, size, item.data, mode=item.mode)
    else:
        assert item.path is not None  # noqa: S101
        mode = item.mode | (item.path.stat().st_mode & 0o111)
        with open(item.path, "rb") as f:
            sums[item.name] = writer.add_file(item.name, size, f, mode=mode)
    sizes[item.name] = size


def _check_images_present(client: Any, references: list[str]) -> None:
    import docker

    from installer.engine.docker import docker_unavailable, sdk_errors

    missing = []
    for reference in references:
        try:
            client.images.get(reference)
        except docker.errors.ImageNotFound:
            missing.append(reference)
        except docker.errors.APIError as e:
            raise PrerequisiteError(f"cannot look up image {reference}: {e}") from e
        except sdk_errors() as e:
            raise docker_unavailable(f"cannot look up image {reference}", e) from e
    if missing:
        raise PrerequisiteError(
            f"not in the local Docker Engine: {', '.join(missing)}",
            hint="build, pull or load these images on this machine before making the bundle",
        )


def _check_saved_references(images: list[Any], references: list[str]) -> None:
    from installer.bundle.registry import normalize_reference

    saved = {normalize_reference(ref) for image in images for ref in image.references}
    lost = [ref for ref in references if normalize_reference(ref) not in saved]
    if lost:
        raise ImageSaveError(f"docker save did not write {', '.join(lost)}")


class _SaveBody:
    """The body of the Engine's answer to the save request, read in full blocks.

    The Engine answers only when the first byte of the save is ready (seconds later for
    large images), so the answer's head is read with the first block, by the thread that
    reads the stream, and a refusal is raised there.
    """

    def __init__(self, connection: http.client.HTTPConnection, references: list[str]) -> None:
        self._connection = connection
        self._references = references
        self._response: http.client.HTTPResponse | None = None

    def read(self, size: int) -> bytes:
        if self._response is None:
            try:
                response = self._connection.getresponse()
            except http.client.HTTPException as e:
                raise ImageSaveError("docker save failed: the Engine sent no answer") from e
            if response.status != 200:
                from installer.engine.sockethttp import error_message

                message = error_message(response.read(1 << 16))
                raise ImageSaveError(
                    f"docker save of {', '.join(self._references)} failed: {message[-2000:]}"
                )
            self._response = response
        return self._response.read(size)


@contextlib.contextmanager
def _engine_save_stream(endpoint: DockerEndpoint, references: list[str]) -> Iterator[_SaveBody]:
    """``GET /images/get`` of all images from the Engine at ``endpoint``; returns once the
    request is sent (the answer comes with the first read).

    Read in large blocks with nothing in between: the ``docker`` command would copy every
    byte once more, at a CPU-second or more per GiB. A save that fails midway appends
    Docker's error message, which the tar reader rejects; a stream that just stops lacks
    the end-of-archive marker, which the reader requires.
    """
    from urllib.parse import urlencode

    from installer.engine.sockethttp import engine_connection

    query = urlencode([("names", reference) for reference in references])
    connection = engine_connection(endpoint, SAVE_TIMEOUT_SECONDS)
    try:
        # No API version in the path: the Engine answers with its own (the endpoint is stable).
        connection.request("GET", f"/images/get?{query}")
        yield _SaveBody(connection, references)
    finally:
        connection.close()


@contextlib.contextmanager
def _cli_save_stream(docker_cli: str, references: list[str]) -> Iterator[BinaryIO]:
    """``docker save`` of all images through a pipe, for an Engine the installer does not
    speak HTTP to (ssh://); its stderr becomes the error message."""
    import fcntl
    import subprocess
    import tempfile

    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            [docker_cli, "save", *references],
            stdout=subprocess.PIPE,
            stderr=errors,
            bufsize=CHUNK,
            env=command_environment(),
        )
        assert process.stdout is not None  # noqa: S101
        with contextlib.suppress(OSError):  # fewer, larger reads; the limit may be lower
            fcntl.fcntl(process.stdout.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)

        def failure(code: int) -> InstallerError:
            errors.seek(0)
            message = errors.read().decode("utf-8", "replace").strip()
            return ImageSaveError(f"docker save failed (exit {code}): {message[-2000:]}")

        try:
            yield process.stdout  # type: ignore[misc]
        except BaseException:
            # Docker's own message explains a stream that ended early; a save killed
            # because of a failure here (-9) leaves that failure to speak.
            code = process.poll()
            if code is None:
                process.kill()
            process.stdout.close()
            code = process.wait()
            if code > 0:
                raise failure(code)  # noqa: B904 - chained implicitly, on purpose
            raise
        process.stdout.close()
        code = process.wait()
        if code != 0:
            raise failure(code)


def needs_staging(client: Any, references: list[str]) -> bool:
    """Whether Docker's save of these images holds a link whose direction is left to chance.

    Docker writes a layer once per save; when one layer appears under two different legacy
    layer IDs (it is the top layer of one image and also in another, or sits on different
    parents), the second copy becomes a link to the first, and which copy comes first
    follows Go's random map order. Layers shared as a common base (same parents, not any
    image's top) have one ID and are written once without a link.
    """
    import hashlib

    identities: dict[str, set[tuple[str, str | None]]] = {}
    for reference in references:
        attrs = client.images.get(reference).attrs
        diff_ids = list(attrs.get("RootFS", {}).get("Layers") or [])
        chain = ""
        for position, diff_id in enumerate(diff_ids):
            chain = (
                diff_id
                if not chain
                else ("sha256:" + hashlib.sha256(f"{chain} {diff_id}".encode()).hexdigest())
            )
            top = attrs["Id"] if position == len(diff_ids) - 1 else None
            identities.setdefault(diff_id, set()).add((chain, top))
    return any(len(found) > 1 for found in identities.values())


def _check_save_member(info: tarfile.TarInfo) -> str:
    name = posixpath.normpath(info.name)
    if name.startswith(("/", "../")) or name in ("..", "."):
        raise ImageSaveError(f"docker save wrote an unsafe path {info.name!r}")
    if info.issym():
        target = posixpath.normpath(posixpath.join(posixpath.dirname(name), info.linkname))
        if target.startswith("../") or target == ".." or posixpath.isabs(info.linkname):
            raise ImageSaveError(f"docker save wrote a link leaving the archive: {name}")
    elif not info.isreg():
        raise ImageSaveError(f"docker save wrote an unexpected member {name!r}")
    return name


def _sorted_manifest(data: bytes) -> bytes:
    import json

    try:
        entries = json.loads(data)
        entries.sort(key=lambda entry: (entry["Config"], entry.get("RepoTags") or []))
        for entry in entries:
            if entry.get("RepoTags"):
                entry["RepoTags"] = sorted(entry["RepoTags"])
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ImageSaveError(f"docker save wrote a malformed manifest.json: {e}") from e
    return json.dumps(entries, separators=(",", ":")).encode("utf-8")


class _ImageSink:
    """Collects what create_bundle needs while image members are written."""

    def __init__(
        self,
        writer: BundleStreamWriter,
        sums: dict[str, str],
        sizes: dict[str, int],
        symlinks: dict[str, str],
        meter: ProgressMeter,
    ) -> None:
        self.writer = writer
        self.sums = sums
        self.sizes = sizes
        self.symlinks = symlinks
        self.meter = meter
        self.manifest_json: bytes | None = None

    def file(self, name: str, size: int, source: IO[bytes] | MemberData, mode: int) -> None:
        member = f"{IMAGES_DIR}/{name}"
        if name == "manifest.json":
            # Docker lists the images in random (Go map) order: sort them.
            self.manifest_json = _sorted_manifest(source.read(size))
            self.meter.advance(size)
            self.sums[member] = self.writer.add_file(
                member, len(self.manifest_json), self.manifest_json, mode=mode
            )
            self.sizes[member] = len(self.manifest_json)
            return

        def on_data(chunk: bytes) -> None:
            self.meter.advance(len(chunk))

        self.sums[member] = self.writer.add_file(member, size, source, mode=mode, on_data=on_data)
        self.sizes[member] = size

    def link(self, name: str, target: str) -> None:
        member = f"{IMAGES_DIR}/{name}"
        self.writer.add_symlink(member, target)
        self.symlinks[member] = target


def _save_failed(e: Exception) -> ImageSaveError:
    return ImageSaveError(
        f"reading the docker save stream failed: {e}",
        hint="check the Docker Engine's log and its free disk space (it stages saves on disk)",
    )


class _SaveStream(Protocol):
    def read(self, size: int, /) -> bytes: ...


def _start_early_save(
    stack: contextlib.ExitStack[bool | None], references: list[str]
) -> _SaveStream | InstallerError | None:
    """The save straight from the Engine, asked for before the Docker SDK is loaded; None
    when the Engine is reached over a scheme the installer does not speak (the docker
    command reads the save then), the error when the Engine cannot be reached."""
    from installer.engine.endpoint import docker_endpoint

    endpoint = docker_endpoint()
    if not endpoint.url.startswith(("unix://", "tcp://")):
        return None
    try:
        stream: _SaveStream = stack.enter_context(_engine_save_stream(endpoint, references))
    except OSError as e:  # raised after the images are checked: that message is clearer
        return _save_failed(e)
    return stream


def _start_cli_save(stack: contextlib.ExitStack[bool | None], references: list[str]) -> _SaveStream:
    """Start one ``docker save`` of all ``references`` through the docker command (for an
    Engine reached over ssh://); its stream stays open in ``stack``."""
    import shutil

    docker_cli = shutil.which("docker")
    if docker_cli is None:
        raise PrerequisiteError(
            "the Docker Engine is reached over ssh, and the docker command is not installed",
            hint="install the docker CLI, or point DOCKER_HOST at a unix:// or tcp:// endpoint",
        )
    try:
        return cast(_SaveStream, stack.enter_context(_cli_save_stream(docker_cli, references)))
    except OSError as e:
        raise _save_failed(e) from e


def _add_saved_images(
    writer: BundleStreamWriter,
    stream: _SaveStream,
    *,
    sums: dict[str, str],
    sizes: dict[str, int],
    symlinks: dict[str, str],
    progress: ProgressCallback | None,
    staging_dir: Path,
) -> bytes:
    """Copy the ``docker save`` stream into ``images/``; returns its manifest.json.

    Straight from the stream when Docker's output is deterministic; through a staging
    directory (then every link points at the first path, in sorted order) when it is not.
    """
    sink = _ImageSink(writer, sums, sizes, symlinks, ProgressMeter("save", progress))
    try:
        # Reading the pipe in its own thread overlaps Docker with hashing and zstd.
        prefetched = Prefetcher(lambda: stream.read(SAVE_READ), depth=8)
        try:
            members = iter_tar(ChunkReader(prefetched.next_chunk), require_end=True)
            with _Relinker(sink, staging_dir) as relinker:
                for info, data in members:
                    if info.isdir():
                        continue  # directories are implied by their files
                    name = _check_save_member(info)
                    if info.issym():
                        relinker.link(name, info.linkname)
                    else:
                        relinker.file(name, info.size, data, info.mode)
        finally:
            prefetched.close()
    except (tarfile.TarError, EOFError, http.client.HTTPException, OSError) as e:
        raise _save_failed(e) from e
    sink.meter.finish()
    if sink.manifest_json is None:
        raise ImageSaveError("docker save wrote no manifest.json")
    return sink.manifest_json


class _Relinker:
    """Passes Docker's save stream on with each shared layer's data at its first path.

    Docker writes a layer's data once per save; when one layer sits under two legacy layer
    IDs, the second path becomes a link to the first one written, and which one that is
    follows Go's random map order. The stream itself comes in path order. So: data that
    arrives before any link to it is already at its first path and goes straight on. A
    link to a path still to come (a forward link) holds a slot: that path's data will be
    written under the link's name when it arrives, and the path itself becomes the link.
    Only the members between such a link and its data wait, on disk in ``staging_dir``;
    with no forward link nothing is staged. Either way the output is the same bytes.
    """

    def __init__(self, sink: _ImageSink, staging_dir: Path) -> None:
        self.sink = sink
        self.staging_dir = staging_dir
        self._spool: Path | None = None
        self._waiting: list[list[Any]] = []  # ["file", name, disk path, size, mode] | ...
        self._slots: dict[str, list[Any]] = {}  # data path -> ["slot", first name, disk|None]
        self._first: dict[str, str] = {}  # data path -> the name its data is written under
        self._seen: set[str] = set()
        self._staged = 0

    def __enter__(self) -> _Relinker:
        return self

    def __exit__(self, *exc: object) -> None:
        import shutil

        if self._spool is not None:
            shutil.rmtree(self._spool, ignore_errors=True)
        if exc[0] is None and self._waiting:
            raise ImageSaveError(
                f"docker save wrote a dangling link {self._waiting[0][1]}: its data never came"
            )

    def _target(self, name: str, linkname: str) -> str:
        return posixpath.normpath(posixpath.join(posixpath.dirname(name), linkname))

    def _link_text(self, name: str, first: str) -> str:
        return posixpath.relpath(first, posixpath.dirname(name))

    def _stage(self, data: IO[bytes] | MemberData, size: int) -> Path:
        import shutil
        import tempfile

        if self._spool is None:
            self._spool = Path(tempfile.mkdtemp(prefix=".codequal-save-", dir=self.staging_dir))
        self._staged += 1
        path = self._spool / str(self._staged)
        with open(path, "wb") as f:
            shutil.copyfileobj(data, f, CHUNK)
            if f.tell() != size:
                raise EOFError(f"the save stream ended inside a member of {size} bytes")
        return path

    def file(self, name: str, size: int, data: IO[bytes] | MemberData, mode: int) -> None:
        self._seen.add(name)
        slot = self._slots.pop(name, None)
        if slot is not None:
            first = slot[1]
            self._first[name] = first
            if self._waiting and self._waiting[0] is slot:
                # The data of the first waiting slot: straight on, under the slot's name.
                self.sink.file(first, size, data, mode)
                self._waiting.pop(0)
            else:
                slot[2:] = [self._stage(data, size), size, mode]
            self._waiting.append(["link", name, self._link_text(name, first)])
            self._drain()
            return
        self._first[name] = name
        if not self._waiting:
            self.sink.file(name, size, data, mode)
            return
        self._waiting.append(["file", name, self._stage(data, size), size, mode])

    def link(self, name: str, linkname: str) -> None:
        target = self._target(name, linkname)
        self._seen.add(name)
        entry: list[Any]
        if target in self._first:
            entry = ["link", name, self._link_text(name, self._first[target])]
        elif target in self._slots:
            first = self._slots[target][1]
            entry = ["link", name, self._link_text(name, first)]
        elif target not in self._seen and target > name:
            entry = ["slot", name, None, 0, 0]  # forward: its data is written under name
            self._slots[target] = entry
        else:
            raise ImageSaveError(f"docker save wrote a link {name} to {linkname}, not to data")
        self._waiting.append(entry)
        self._drain()

    def _drain(self) -> None:
        """Write out the waiting members, in order, up to the first slot without its data."""
        while self._waiting:
            entry = self._waiting[0]
            kind = entry[0]
            if kind == "slot" and entry[2] is None:
                return
            self._waiting.pop(0)
            if kind == "link":
                self.sink.link(entry[1], entry[2])
            else:
                with open(entry[2], "rb") as f:
                    self.sink.file(entry[1], entry[3], f, entry[4])
                entry[2].unlink()
