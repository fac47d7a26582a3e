"""Running a command with its output streamed, cancellable, and bound to our own life.

:func:`stream_command` yields the command's output (stdout and stderr merged) line by
line while it runs, so a step can pass each line on as an event. It polls the run's
:class:`~installer.runner.CancelToken` while waiting: on cancel the command gets SIGTERM
(then SIGKILL after a grace period) and :class:`~installer.errors.Interrupted` is raised.

Children run in their own session, so a Ctrl-C in the terminal reaches only the
installer, which then stops them in order. Where util-linux's ``setpriv`` exists they are
also started with ``--pdeathsig TERM``: if the installer is SIGKILLed, the kernel sends
SIGTERM to the child, so a ``docker compose up`` never carries on unseen while the next
run resumes (which would race it and could create duplicate containers).
"""

from __future__ import annotations

import contextlib
import functools
import os
import selectors
import shutil
import signal
import subprocess
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from installer.errors import InstallerError, Interrupted

if TYPE_CHECKING:
    from installer.runner import CancelToken

TAIL_LINES = 30
_GRACE_SECONDS = 10.0


class CommandFailed(InstallerError):
    """A command exited non-zero (or could not be started, or ran out of time)."""

    def __init__(
        self,
        message: str,
        *,
        command: Sequence[str],
        returncode: int | None,
        tail: Sequence[str] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.command = list(command)
        self.returncode = returncode
        self.tail = list(tail)


@functools.cache
def _death_signal_prefix() -> tuple[str, ...]:
    setpriv = shutil.which("setpriv")
    return (setpriv, "--pdeathsig", "TERM", "--") if setpriv else ()


def stream_command(
    argv: Sequence[str],
    *,
    cancel: CancelToken | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: bytes | None = None,
    timeout: float | None = None,
    check: bool = True,
    tail: deque[str] | None = None,
) -> Iterator[str]:
    """Run ``argv``; yield each output line (without its newline) as it comes.

    Raises :class:`CommandFailed` for a non-zero exit when ``check`` (its ``tail`` holds the
    last lines), on ``timeout`` (seconds), or when the program does not exist.
    ``stdin`` is fed to the command (a secret passed this way is never on a command line).
    Pass a ``tail`` deque to read the last lines whatever happens.
    """
    lines: deque[str] = tail if tail is not None else deque(maxlen=TAIL_LINES)
    full_env = dict(os.environ if env is None else env)
    _require_program(argv, full_env)
    try:
        process = subprocess.Popen(
            [*_death_signal_prefix(), *argv],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=full_env,
            start_new_session=True,
        )
    except OSError as e:
        raise CommandFailed(
            f"cannot run {argv[0]}: {e.strerror or e}",
            command=argv,
            returncode=None,
            hint=f"is {argv[0]} installed and on PATH?",
        ) from e
    assert process.stdout is not None  # noqa: S101 - PIPE was asked for
    if stdin is not None:
        assert process.stdin is not None  # noqa: S101
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write(stdin)
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()
    deadline = None if timeout is None else time.monotonic() + timeout
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    buffer = b""
    fd = process.stdout.fileno()
    try:
        while True:
            if cancel is not None and cancel.cancelled:
                _stop(process)
                raise Interrupted(cancel.reason)
            if deadline is not None and time.monotonic() > deadline:
                _stop(process)
                raise CommandFailed(
                    f"{_name(argv)} did not finish within {timeout:.0f}s",
                    command=argv,
                    returncode=None,
                    tail=list(lines),
                )
            if not selector.select(timeout=0.2):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buffer += chunk
            *complete, buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            for raw in complete:
                line = raw.decode("utf-8", "replace").rstrip()
                if line:
                    lines.append(line)
                    yield line
        if buffer.strip():
            line = buffer.decode("utf-8", "replace").rstrip()
            lines.append(line)
            yield line
        returncode = process.wait()
    except BaseException:
        # GeneratorExit (the consumer stopped), Interrupted, anything: never leave it running.
        if process.poll() is None:
            _stop(process)
        raise
    finally:
        selector.close()
        process.stdout.close()
    if check and returncode != 0:
        raise CommandFailed(
            f"{_name(argv)} failed (exit {returncode})",
            command=argv,
            returncode=returncode,
            tail=list(lines),
        )


def _require_program(argv: Sequence[str], env: Mapping[str, str]) -> None:
    """Say plainly that a program is missing (setpriv would only exit 127)."""
    if shutil.which(argv[0], path=env.get("PATH")) is None:
        raise CommandFailed(
            f"cannot run {argv[0]}: not found",
            command=argv,
            returncode=None,
            hint=f"is {argv[0]} installed and on PATH?",
        )


def run_command(argv: Sequence[str], **kwargs: object) -> list[str]:
    """:func:`stream_command` collected: every output line, once the command is done."""
    return list(stream_command(argv, **kwargs))  # type: ignore[arg-type]


def _name(argv: Sequence[str]) -> str:
    words = [w for w in argv[:3] if not w.startswith("-")]
    return " ".join(Path(words[0]).name.split() + words[1:2]) if words else "command"


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, a grace period, then SIGKILL: Compose stops what it started on SIGTERM."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait()


def command_to_file(
    argv: Sequence[str],
    path: Path,
    *,
    cancel: CancelToken | None = None,
    stdin_file: Path | None = None,
    mode: int = 0o600,
    timeout: float | None = None,
) -> int:
    """Run ``argv`` with its standard output written to ``path`` (atomically, ``mode``).

    For binary output too large to pass through memory (a database dump). With
    ``stdin_file`` the command reads that file instead (a restore), and ``path`` may be
    ``/dev/null``. Returns the number of bytes written; :class:`CommandFailed` on failure.
    """
    import tempfile

    _require_program(argv, os.environ)
    discard = str(path) == os.devnull
    if discard:
        out_fd, tmp_name = os.open(os.devnull, os.O_WRONLY), ""
    else:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        out_fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.fchmod(out_fd, mode)
    source = open(stdin_file, "rb") if stdin_file is not None else None  # noqa: SIM115
    try:
        process = subprocess.Popen(
            [*_death_signal_prefix(), *argv],
            stdin=source if source is not None else subprocess.DEVNULL,
            stdout=out_fd,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as e:
        os.close(out_fd)
        if tmp_name:
            Path(tmp_name).unlink(missing_ok=True)
        if source is not None:
            source.close()
        raise CommandFailed(
            f"cannot run {argv[0]}: {e.strerror or e}", command=argv, returncode=None
        ) from e
    os.close(out_fd)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while process.poll() is None:
            if cancel is not None and cancel.cancelled:
                _stop(process)
                raise Interrupted(cancel.reason)
            if deadline is not None and time.monotonic() > deadline:
                _stop(process)
                raise CommandFailed(
                    f"{_name(argv)} did not finish within {timeout:.0f}s",
                    command=argv,
                    returncode=None,
                )
            time.sleep(0.1)
        errors = process.stderr.read().decode("utf-8", "replace") if process.stderr else ""
        if process.returncode != 0:
            raise CommandFailed(
                f"{_name(argv)} failed (exit {process.returncode})",
                command=argv,
                returncode=process.returncode,
                tail=errors.strip().splitlines()[-TAIL_LINES:],
            )
        if discard:
            return 0
        size = Path(tmp_name).stat().st_size
        os.replace(tmp_name, path)
        return size
    except BaseException:
        if tmp_name:
            Path(tmp_name).unlink(missing_ok=True)
        raise
    finally:
        if process.stderr is not None:
            process.stderr.close()
        if source is not None:
            source.close()
