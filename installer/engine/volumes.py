"""Named volumes read and written through the Engine's archive API, never its data root.

A volume is copied through a *helper container*: created from an image that is already
on this host (never pulled), with the volume mounted at ``/volume``, and never started;
the Engine mounts the volume for ``GET``/``PUT /containers/{id}/archive`` all the same.
The helper has no network and is removed afterwards, however the copy ends. This works
for any volume driver and on a remote Engine, where ``/var/lib/docker`` is not ours to
read.

The tar stream is the one the Engine produces for ``/volume/.``: members named
``./<path>``, owners, modes and times kept, which is exactly what ``PUT`` at ``/volume``
extracts again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from installer.engine.docker import PROJECT_LABEL, DockerEngine, DockerError

MOUNT = "/volume"
HELPER_LABEL = "dev.codequal.installer.helper"
VOLUME_LABEL = "com.docker.compose.volume"
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class VolumeCopy:
    """What an export read: regular files and their bytes (the tar's own size apart)."""

    files: int
    bytes: int
    tar_bytes: int


def compose_volume(engine: DockerEngine, project: str, name: str) -> str | None:
    """The Engine's name of Compose volume ``name`` of ``project`` (None when absent)."""
    import docker

    filters = {"label": [f"{PROJECT_LABEL}={project}", f"{VOLUME_LABEL}={name}"]}
    try:
        found = engine.client.volumes.list(filters=filters)
    except docker.errors.DockerException as e:
        raise engine._error(f"cannot list the volumes of project {project}", e) from e
    if found:
        return str(found[0].name)
    fallback = f"{project}_{name}"
    return fallback if engine.volume_exists(fallback) else None


def create_compose_volume(engine: DockerEngine, project: str, name: str) -> str:
    """Create Compose volume ``name`` of ``project`` as Compose would (its labels)."""
    import docker

    engine_name = f"{project}_{name}"
    labels = {PROJECT_LABEL: project, VOLUME_LABEL: name, "com.docker.compose.version": "2"}
    try:
        engine.client.volumes.create(name=engine_name, labels=labels)
    except docker.errors.DockerException as e:
        raise engine._error(f"cannot create volume {engine_name}", e) from e
    return engine_name


@contextlib.contextmanager
def helper_container(
    engine: DockerEngine, volume: str, image: str, *, read_only: bool
) -> Iterator[str]:
    """A created, never started container with ``volume`` at ``/volume``; removed after."""
    import docker

    api = engine.client.api
    try:
        host_config = api.create_host_config(
            binds={volume: {"bind": MOUNT, "mode": "ro" if read_only else "rw"}}
        )
        created = api.create_container(
            image,
            command=["true"],
            host_config=host_config,
            network_disabled=True,
            labels={HELPER_LABEL: "volume-copy"},
        )
    except docker.errors.ImageNotFound as e:
        raise DockerError(
            f"cannot copy volume {volume}: image {image} is not on this host",
            hint="the helper container uses an image of the installed release; run apply first",
        ) from e
    except docker.errors.DockerException as e:
        raise engine._error(f"cannot create a helper container for volume {volume}", e) from e
    container_id = str(created["Id"])
    try:
        yield container_id
    finally:
        with contextlib.suppress(Exception):
            api.remove_container(container_id, force=True)


class _TeeReader:
    """A file over the Engine's chunks; each chunk goes to ``sink`` as it is fetched."""

    def __init__(self, chunks: Iterator[bytes], sink: Callable[[bytes], Any]) -> None:
        self._chunks = chunks
        self._sink = sink
        self._buffer = b""
        self._offset = 0
        self.total = 0

    def read(self, size: int = -1) -> bytes:
        want = CHUNK if size is None or size < 0 else size
        while len(self._buffer) - self._offset < want:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._sink(chunk)
            self.total += len(chunk)
            self._buffer = self._buffer[self._offset :] + chunk
            self._offset = 0
        data = self._buffer[self._offset : self._offset + want]
        self._offset += len(data)
        return data


class _SinkFile:
    """A write-only file that hands each write to ``sink``."""

    def __init__(self, sink: Callable[[bytes], Any]) -> None:
        self._sink = sink
        self.total = 0

    def write(self, data: bytes) -> int:
        self._sink(bytes(data))
        self.total += len(data)
        return len(data)


def export_volume(
    engine: DockerEngine,
    volume: str,
    sink: Callable[[bytes], Any],
    *,
    image: str,
    exclude: frozenset[str] = frozenset(),
) -> VolumeCopy:
    """Write a tar of ``volume``'s content to ``sink`` (called per chunk); count its files.

    Without ``exclude`` the Engine's tar passes through byte for byte. With it, the paths
    named there (relative to the volume's root, e.g. ``codequal.db``) are left out: the tar
    is read and written again member by member, still streaming.
    """
    import docker

    with helper_container(engine, volume, image, read_only=True) as helper:
        try:
            chunks, _ = engine.client.api.get_archive(helper, f"{MOUNT}/.", chunk_size=CHUNK)
            if exclude:
                return _filtered(iter(chunks), sink, exclude)
            reader = _TeeReader(iter(chunks), sink)
            files = size = 0
            with tarfile.open(fileobj=reader, mode="r|", bufsize=CHUNK) as tar:  # type: ignore[call-overload]
                for member in tar:
                    if member.isfile():
                        files += 1
                        size += member.size
                    tar.members = []  # a stream: keep no list of every file read
            while reader.read(CHUNK):  # the end-of-archive padding, byte for byte
                pass
        except docker.errors.DockerException as e:
            raise engine._error(f"cannot read volume {volume}", e) from e
        except tarfile.TarError as e:
            raise DockerError(f"cannot read volume {volume}: the Engine's tar: {e}") from e
    return VolumeCopy(files, size, reader.total)


def _filtered(
    chunks: Iterator[bytes], sink: Callable[[bytes], Any], exclude: frozenset[str]
) -> VolumeCopy:
    reader = _TeeReader(chunks, lambda _chunk: None)
    out = _SinkFile(sink)
    files = size = 0
    with (
        tarfile.open(fileobj=reader, mode="r|", bufsize=CHUNK) as source,  # type: ignore[call-overload]
        tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, bufsize=CHUNK) as target,  # type: ignore[call-overload]
    ):
        for member in source:
            if os.path.normpath(member.name) in exclude:
                continue
            if member.isfile():
                files += 1
                size += member.size
                target.addfile(member, source.extractfile(member))
            else:
                target.addfile(member)
            source.members = target.members = []  # streams: keep no list of every file
    return VolumeCopy(files, size, out.total)


def import_volume(engine: DockerEngine, volume: str, tar_stream: IO[bytes], *, image: str) -> None:
    """Extract ``tar_stream`` (as :func:`export_volume` wrote it) into ``volume``."""
    import docker

    def chunks() -> Iterator[bytes]:
        while True:
            data = tar_stream.read(CHUNK)
            if not data:
                return
            yield data

    with helper_container(engine, volume, image, read_only=False) as helper:
        try:
            engine.client.api.put_archive(helper, MOUNT, chunks())
        except docker.errors.DockerException as e:
            raise engine._error(f"cannot write volume {volume}", e) from e


def copy_files_out(
    engine: DockerEngine, volume: str, names: list[str], directory: Path, *, image: str
) -> list[Path]:
    """Copy the regular files ``names`` (relative to the volume's root) into ``directory``.

    Files that do not exist are left out; the paths written are returned.
    """
    import docker

    written: list[Path] = []
    with helper_container(engine, volume, image, read_only=True) as helper:
        for name in names:
            try:
                chunks, _ = engine.client.api.get_archive(
                    helper, f"{MOUNT}/{name}", chunk_size=CHUNK
                )
                reader = _TeeReader(iter(chunks), lambda _chunk: None)
                with tarfile.open(fileobj=reader, mode="r|", bufsize=CHUNK) as tar:  # type: ignore[call-overload]
                    for member in tar:
                        if not member.isfile():
                            continue
                        source = tar.extractfile(member)
                        if source is None:
                            continue
                        target = directory / Path(member.name).name
                        with open(target, "wb") as out:
                            shutil.copyfileobj(source, out, CHUNK)
                        written.append(target)
            except docker.errors.NotFound:
                continue
            except docker.errors.DockerException as e:
                raise engine._error(f"cannot read {name} from volume {volume}", e) from e
            except tarfile.TarError as e:
                raise DockerError(f"cannot read {name} from volume {volume}: {e}") from e
    return written


def pause_container(engine: DockerEngine, container_id: str) -> None:
    """Freeze a container's processes (cgroup freezer): its files stop changing."""
    import docker

    try:
        engine.client.api.pause(container_id)
    except docker.errors.DockerException as e:
        raise engine._error(f"cannot pause container {container_id[:12]}", e) from e


def unpause_container(engine: DockerEngine, container_id: str) -> bool:
    """Thaw a paused container; False when it is gone or was not paused."""
    import docker

    try:
        engine.client.api.unpause(container_id)
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError as e:
        if "is not paused" in str(e):
            return False
        raise engine._error(f"cannot unpause container {container_id[:12]}", e) from e
    except docker.errors.DockerException as e:
        raise engine._error(f"cannot unpause container {container_id[:12]}", e) from e
    return True


def remove_helpers(engine: DockerEngine, volume: str) -> int:
    """Remove the helper containers a killed copy left on ``volume``; how many.

    A helper is removed when its copy ends, but a SIGKILL leaves it (created, never
    started, holding the volume: it could not be removed). Only containers carrying the
    helper label are touched; call it under the installation's lock.
    """
    import docker

    api = engine.client.api
    try:
        found = api.containers(all=True, filters={"label": HELPER_LABEL, "volume": volume})
        for container in found:
            api.remove_container(container["Id"], force=True)
    except docker.errors.NotFound:
        return 0
    except docker.errors.DockerException as e:
        raise engine._error(f"cannot remove the helper containers of volume {volume}", e) from e
    return len(found)


def remove_volume(engine: DockerEngine, volume: str) -> bool:
    """Remove ``volume`` (False when there was none), and first any helper a killed copy
    left on it; nothing else may use it."""
    import docker

    remove_helpers(engine, volume)
    try:
        engine.client.api.remove_volume(volume)
    except docker.errors.NotFound:
        return False
    except docker.errors.DockerException as e:
        raise engine._error(f"cannot remove volume {volume}", e) from e
    return True


def set_volume_root(
    engine: DockerEngine, volume: str, *, uid: int, gid: int, mode: int, image: str
) -> None:
    """Give the volume's root directory an owner and mode.

    Extracting a tar at the volume's root never applies the ``./`` entry's owner and mode
    to the root itself (the mount point); a ``volume/`` entry extracted one level up does.
    A freshly created volume's root is root's: a service running as another user could not
    create files in it.
    """
    import io

    import docker

    header = tarfile.TarInfo(MOUNT.strip("/"))
    header.type, header.uid, header.gid, header.mode = tarfile.DIRTYPE, uid, gid, mode & 0o7777
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(header)
    with helper_container(engine, volume, image, read_only=False) as helper:
        try:
            engine.client.api.put_archive(helper, "/", buffer.getvalue())
        except docker.errors.DockerException as e:
            raise engine._error(f"cannot set the owner of volume {volume}", e) from e
