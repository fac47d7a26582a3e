"""Encryption with the stock ``age`` binary (X25519 recipients), so ``age -d`` always works.

A backup holds secrets, so it is always encrypted, whole, to one or more age recipients.
The installer runs Debian's ``age`` rather than a library of its own: the operator can
decrypt an archive anywhere with ``age -d -i KEY FILE``, without this tool.

Plaintext only ever travels through pipes: :func:`encrypting` writes the archive through
``age -r ... -o FILE`` and :func:`decrypting` reads ``age -d``'s standard output, so
memory stays flat whatever the archive's size.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from installer.backup.errors import AgeMissing, BackupIntegrityError
from installer.errors import InstallerError, UsageError

RECIPIENT_PATTERN = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")
"""An age X25519 recipient: ``age1`` and 58 bech32 characters."""

_INSTALL_HINT = (
    "install it: apt-get install age (Debian/Ubuntu), dnf install age, or brew install age"
)


def is_recipient(text: str) -> bool:
    return bool(RECIPIENT_PATTERN.match(text))


def age_program(name: str = "age") -> str:
    """The path of ``age`` (or ``age-keygen``); :class:`AgeMissing` (exit 3) when absent."""
    found = shutil.which(name)
    if found is None:
        raise AgeMissing(
            f"the {name} program is not installed: backups are encrypted with age",
            hint=_INSTALL_HINT,
        )
    return found


class AgeProcess:
    """A running ``age`` whose plaintext end is ``stream``; :meth:`finish` checks its exit."""

    def __init__(self, process: subprocess.Popen[bytes], stream: IO[bytes], what: str) -> None:
        self.process = process
        self.stream = stream
        self.what = what

    def finish(self) -> None:
        """Wait for ``age`` to exit; :class:`BackupIntegrityError` when it failed."""
        with contextlib.suppress(OSError, ValueError):
            self.stream.close()
        stderr = self.process.stderr.read() if self.process.stderr else b""
        code = self.process.wait()
        if code != 0:
            raise age_failure(stderr.decode("utf-8", "replace"), self.what)

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        with contextlib.suppress(OSError, ValueError):
            self.stream.close()
        if self.process.stderr is not None:
            with contextlib.suppress(OSError, ValueError):
                self.process.stderr.close()
        self.process.wait()

    def failure(self, timeout: float = 10.0) -> BackupIntegrityError | None:
        """Why ``age`` failed, once it has exited (None while it runs on, or on success)."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        if code == 0:
            return None
        stderr = self.process.stderr.read() if self.process.stderr else b""
        return age_failure(stderr.decode("utf-8", "replace"), self.what)


def age_failure(stderr: str, what: str) -> BackupIntegrityError:
    """``age``'s complaint as an integrity error that names the key or the damage."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("age: report ")]
    text = " ".join(re.sub(r"^age: (error: )?", "", line) for line in lines)
    lowered = text.lower()
    if "no identity matched" in lowered:
        return BackupIntegrityError(
            f"{what}: the identity does not decrypt this archive (wrong key: none of its "
            "recipients matches, or its header is damaged)",
            hint="use the identity file whose recipient the archive was made for "
            "(backup.recipients, or --recipient when it was created)",
        )
    if "header" in lowered or "parse" in lowered or "unknown format" in lowered:
        return BackupIntegrityError(
            f"{what}: the archive's header is damaged or it is not an age file ({text})",
            hint="the file was changed after it was written; use another copy",
        )
    return BackupIntegrityError(
        f"{what}: the archive is damaged or truncated ({text or 'age failed'})",
        hint="the file was changed or cut short after it was written; use another copy",
    )


@contextlib.contextmanager
def encrypting(recipients: Sequence[str], output: Path) -> Iterator[AgeProcess]:
    """``age -r R... -o output``: write the plaintext to ``.stream`` (a pipe).

    On leaving the block normally, ``age`` must exit 0; on an exception it is killed and
    ``output`` removed.
    """
    if not recipients:
        raise UsageError(
            "no age recipient to encrypt the backup to",
            hint="set backup.recipients in the answers or pass --recipient age1... "
            "(make a key pair with `codequal-installer backup keygen --out FILE`)",
        )
    for recipient in recipients:
        if not is_recipient(recipient):
            raise UsageError(
                f"{recipient[:80]!r} is not an age X25519 recipient (age1 and 58 characters)",
                hint="`backup keygen` prints the recipient of a new identity",
            )
    argv = [age_program()]
    for recipient in recipients:
        argv += ["-r", recipient]
    argv += ["-o", str(output)]
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
    except OSError as e:
        raise InstallerError(f"cannot run age: {e.strerror or e}", hint=_INSTALL_HINT) from e
    assert process.stdin is not None  # noqa: S101 - PIPE was asked for
    age = AgeProcess(process, process.stdin, str(output))
    try:
        yield age
    except BaseException:
        age.kill()
        output.unlink(missing_ok=True)
        raise
    try:
        age.finish()
    except BackupIntegrityError as e:
        output.unlink(missing_ok=True)
        raise InstallerError(f"cannot encrypt the backup: {e.message}") from e


@contextlib.contextmanager
def decrypting(archive: Path, identity: Path) -> Iterator[AgeProcess]:
    """``age -d -i identity archive``: read the plaintext from ``.stream`` (a pipe).

    The caller calls :meth:`AgeProcess.finish` after reading everything it wanted; on
    leaving the block ``age`` is stopped if it is still running.
    """
    if not archive.is_file():
        raise UsageError(f"{archive}: no such archive")
    if not identity.is_file():
        raise UsageError(
            f"{identity}: no such identity file",
            hint="the identity (private key) file made with `backup keygen`",
        )
    try:
        process = subprocess.Popen(
            [age_program(), "-d", "-i", str(identity), str(archive)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
    except OSError as e:
        raise InstallerError(f"cannot run age: {e.strerror or e}", hint=_INSTALL_HINT) from e
    assert process.stdout is not None  # noqa: S101 - PIPE was asked for
    age = AgeProcess(process, process.stdout, archive.name)
    try:
        yield age
    finally:
        if process.poll() is None or not age.stream.closed:
            age.kill()


def keygen(output: Path) -> str:
    """Write a new age identity to ``output`` (0600, never overwriting); its recipient."""
    program = age_program("age-keygen")
    if output.exists() or output.is_symlink():
        raise UsageError(
            f"{output} already exists: an identity is never overwritten",
            hint="choose another --out, or move the old identity away first (archives "
            "encrypted to it need it to be restored)",
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError as e:
        raise UsageError(f"{output} already exists: an identity is never overwritten") from e
    except OSError as e:
        raise UsageError(f"cannot write {output}: {e.strerror or e}") from e
    try:
        result = subprocess.run(
            [program], stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.PIPE, check=False
        )
        os.fsync(fd)
    finally:
        os.close(fd)
    if result.returncode != 0:
        output.unlink(missing_ok=True)
        raise InstallerError(
            f"age-keygen failed: {result.stderr.decode('utf-8', 'replace').strip()[:300]}"
        )
    return recipient_of(output)


def recipient_of(identity: Path) -> str:
    """The recipient (public key) of an age identity file."""
    program = age_program("age-keygen")
    result = subprocess.run(
        [program, "-y", str(identity)], capture_output=True, check=False, timeout=30
    )
    recipient = result.stdout.decode("ascii", "replace").strip().splitlines()
    if result.returncode != 0 or not recipient or not is_recipient(recipient[0]):
        raise UsageError(f"{identity} is not an age identity file")
    return recipient[0]
