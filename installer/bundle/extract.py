"""Hardened extraction: nothing a bundle holds can write outside the destination.

Before a byte is written, every name the (signed) index lists is checked: no absolute
path, no ``..``, no empty or odd component, and every symbolic link must resolve inside
the destination. While writing, members arrive through :func:`~installer.bundle.reader.
iter_members`, which rejects any member the index does not name, and any type other than
a regular file or a symbolic link (hard links, devices, FIFOs) before its data is handed
out. Files are created with ``O_EXCL | O_NOFOLLOW`` under parent directories whose real
path is checked, so an existing or earlier link cannot redirect a write. Free disk is
checked against the recorded size first. On any failure, everything written is removed.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
from collections.abc import Callable
from pathlib import Path

from installer.bundle.format import IMAGES_DIR
from installer.bundle.progress import ProgressCallback
from installer.bundle.reader import BundleIndex, iter_members
from installer.errors import BundleIntegrityError, PrerequisiteError

DISK_MARGIN = 64 << 20

MemberFilter = Callable[[str], bool]


class UnsafeMemberError(BundleIntegrityError):
    """A member would land outside the destination, or is of a forbidden type."""


def check_member_name(name: str) -> str:
    """The member's path, normalised; raises for anything that could leave the destination."""
    if not name or "\0" in name:
        raise UnsafeMemberError(f"member {name!r}: empty name or NUL byte")
    if name.startswith("/") or posixpath.isabs(name):
        raise UnsafeMemberError(f"member {name!r}: absolute path")
    parts = name.split("/")
    if any(part == ".." for part in parts):
        raise UnsafeMemberError(f"member {name!r}: '..' in the path")
    normal = posixpath.normpath(name)
    if normal in (".", "") or normal.startswith("../"):
        raise UnsafeMemberError(f"member {name!r}: does not name a file inside the bundle")
    return normal


def check_link_target(name: str, target: str) -> str:
    """Where a symbolic link points, relative to the destination; raises if outside."""
    if not target or "\0" in target or posixpath.isabs(target):
        raise UnsafeMemberError(f"symbolic link {name!r} -> {target!r}: absolute or empty target")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    if resolved == ".." or resolved.startswith("../"):
        raise UnsafeMemberError(f"symbolic link {name!r} -> {target!r}: escapes the destination")
    return resolved


def check_index_paths(index: BundleIndex) -> None:
    """Every name and link the index lists, before anything is written."""
    for name in index.sums:
        check_member_name(name)
    for name, target in index.metadata.symlinks.items():
        check_link_target(check_member_name(name), target)


def required_space(index: BundleIndex, include: MemberFilter | None) -> int:
    size = index.metadata.uncompressed_size
    if include is not None and not include(f"{IMAGES_DIR}/manifest.json"):
        size -= index.metadata.images_size
    return max(size, 0) + DISK_MARGIN


def check_free_space(destination: Path, needed: int) -> None:
    probe = destination
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed:
        from installer.sizes import human_size

        raise PrerequisiteError(
            f"not enough free disk at {probe}: {human_size(free)} free, the bundle needs "
            f"{human_size(needed)}",
            hint="free some space or extract to another file system; nothing was written",
        )


def _inside(real_root: str, path: str) -> bool:
    return path == real_root or path.startswith(real_root + os.sep)


def extract_bundle(
    index: BundleIndex,
    destination: Path,
    *,
    include: MemberFilter | None = None,
    progress: ProgressCallback | None = None,
) -> list[str]:
    """Verify and extract the bundle into ``destination`` (new or empty); returns the names.

    ``include`` selects members by name (all when None). Raises
    :class:`BundleIntegrityError` (exit 4) or :class:`PrerequisiteError` (disk, exit 3);
    on failure the destination is left as it was found.
    """
    check_index_paths(index)
    check_free_space(destination, required_space(index, include))
    created_root = not destination.exists()
    if not created_root and (not destination.is_dir() or any(destination.iterdir())):
        raise PrerequisiteError(
            f"{destination} is not an empty directory", hint="extract into a new directory"
        )
    destination.mkdir(parents=True, exist_ok=True)
    real_root = os.path.realpath(destination)
    written: list[str] = []
    try:
        for member in iter_members(index, progress=progress, operation="extract"):
            if include is not None and not include(member.name):
                continue
            relative = check_member_name(member.name)
            path = os.path.join(real_root, *relative.split("/"))
            parent = os.path.dirname(path)
            _make_parents(real_root, relative)
            if os.path.realpath(parent) != parent or not _inside(real_root, parent):
                raise UnsafeMemberError(f"member {member.name!r}: its directory is a link")
            if member.kind == "symlink":
                target = check_link_target(relative, member.linkname)
                if not _inside(real_root, os.path.realpath(os.path.join(real_root, target))):
                    raise UnsafeMemberError(
                        f"symbolic link {member.name!r} escapes the destination"
                    )
                os.symlink(member.linkname, path)
                written.append(relative)
                continue
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            fd = os.open(path, flags, 0o755 if member.mode & 0o111 else 0o644)
            written.append(relative)
            with os.fdopen(fd, "wb") as f:
                for chunk in member.chunks():
                    f.write(chunk)
    except FileExistsError as e:
        _remove(destination, created_root, written)
        raise UnsafeMemberError(f"member {e.filename!r} exists already: written twice") from e
    except BaseException:
        _remove(destination, created_root, written)
        raise
    return written


def _make_parents(real_root: str, relative: str) -> None:
    current = real_root
    for part in relative.split("/")[:-1]:
        current = os.path.join(current, part)
        if os.path.islink(current):
            raise UnsafeMemberError(f"member {relative!r}: a directory on its path is a link")
        if not os.path.isdir(current):
            os.mkdir(current, 0o755)


def _remove(destination: Path, created_root: bool, written: list[str]) -> None:
    if created_root:
        shutil.rmtree(destination, ignore_errors=True)
        return
    for relative in reversed(written):
        path = destination / relative
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
    for directory in sorted((p for p in destination.rglob("*") if p.is_dir()), reverse=True):
        with contextlib.suppress(OSError):
            directory.rmdir()
