"""One installation's state directory, and atomic file writes.

For the Compose targets the state directory is ``<install_dir>/state/``; the Kubernetes
targets use a local directory (platformdirs). It holds:

==========================  ==========================================================
``journal.json``            the runner's journal: each step's status and rollback data
``apply.lock``              held (``flock``) by the run in progress; names its PID
``logs/apply-<run>.log``    one full log per run, every line redacted (0600)
``result.json``             the installed release: URLs, versions, where credentials are
``previous/``               the rendered files of the last healthy install (rollback)
``backups/``                database dumps taken before a migration (rollback; 0600)
==========================  ==========================================================

Every file here is written with :func:`atomic_write`: a temporary file in the same
directory, ``fsync``, ``rename``, then ``fsync`` of the directory. A crash (or SIGKILL, or
a full disk) leaves either the old file or the new one, never half of either.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from installer.errors import InstallerError

STATE_DIRNAME = "state"


class StateError(InstallerError):
    """The installation's state, or a file the installer writes, cannot be read or written.

    ``path`` is the file or directory concerned. Given the ``OSError``, the message says
    what the system said (``cannot write PATH: No space left on device``) and the hint
    what to do for a full disk or a missing permission; ``message`` and ``hint`` override.
    """

    def __init__(
        self,
        path: Path,
        error: OSError | None = None,
        *,
        message: str | None = None,
        hint: str | None = None,
    ) -> None:
        code = error.errno if error is not None else None
        if hint is None and code == errno.ENOSPC:
            hint = f"free some space on the file system that holds {path.parent}, then run again"
        elif hint is None and code in (errno.EACCES, errno.EPERM, errno.EROFS):
            hint = f"make {path.parent} writable for this user (or run as root), then run again"
        if message is None:
            reason = (error.strerror or type(error).__name__) if error is not None else "failed"
            message = f"cannot write {path}: {reason}"
        super().__init__(message, hint=hint)
        self.path = path
        self.errno = code


StateWriteError = StateError
"""The earlier name of :class:`StateError` (for code written against it)."""


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems refuse fsync on directories
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def replace_file(path: Path, content: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``content`` atomically, with permissions ``mode``; raise OSError.

    The temporary file gets ``mode`` before any byte is written, so a secret is never
    readable by others even for an instant. On any failure the temporary file is removed.
    Every atomic write in the installer goes through here.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_directory(path.parent)


def atomic_write(path: Path, content: bytes, mode: int = 0o644) -> None:
    """:func:`replace_file`, with a failure reported as :class:`StateError`."""
    try:
        replace_file(path, content, mode)
    except OSError as e:
        raise StateError(Path(path), e) from e


def atomic_write_json(path: Path, data: Any, mode: int = 0o644) -> None:
    """:func:`atomic_write` of ``data`` as indented JSON with a final newline."""
    text = json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    atomic_write(path, text.encode("utf-8"), mode)


def read_json(path: Path) -> Any | None:
    """The JSON document at ``path``; None when it is missing or unreadable as JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class StateDir:
    """The paths of one installation's state directory (nothing is created until asked)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def for_install_dir(cls, install_dir: Path | str) -> StateDir:
        return cls(Path(install_dir) / STATE_DIRNAME)

    @property
    def journal(self) -> Path:
        return self.path / "journal.json"

    @property
    def lock(self) -> Path:
        return self.path / "apply.lock"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def result(self) -> Path:
        return self.path / "result.json"

    @property
    def previous(self) -> Path:
        """The rendered files of the last healthy install, kept for rollback."""
        return self.path / "previous"

    @property
    def backups(self) -> Path:
        return self.path / "backups"

    def run_log(self, run_id: str) -> Path:
        return self.logs / f"apply-{run_id}.log"

    def ensure(self) -> None:
        """Create the directory (0700: it holds generated secrets and database dumps)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.path, 0o700)
        except OSError as e:
            raise StateError(self.path, e) from e

    def __repr__(self) -> str:
        return f"StateDir({str(self.path)!r})"
