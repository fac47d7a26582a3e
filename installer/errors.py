"""One base error for everything the operator can be told about, and the exit codes.

Every error that reaches the command line is an :class:`InstallerError`: it carries the
exit code from the documented table, what happened, and a one-line hint on what to do.
SDK errors are translated with ``raise ... from e`` so the cause stays in the log file
while the operator sees a sentence, not a traceback.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence


class ExitCode(enum.IntEnum):
    """The documented exit codes (README, "Exit codes")."""

    OK = 0
    INSTALL_FAILED = 1
    USAGE = 2
    PREREQUISITES = 3
    BUNDLE_INTEGRITY = 4
    REDACTION_FAILED = 5  # support-bundle: a known secret survived redaction; nothing written
    INTERRUPTED = 130


class InstallerError(Exception):
    """Base of every error the operator sees.

    ``message`` says what happened, ``hint`` what to do about it. Subclasses set the
    exit code and may carry more context (a step, a command, the last log lines).
    """

    exit_code: ExitCode = ExitCode.INSTALL_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(InstallerError):
    """The command line or an input file is wrong; nothing was changed."""

    exit_code = ExitCode.USAGE


class AnswerFileError(UsageError):
    """The answer file (or secrets file) could not be read or is invalid.

    ``problems`` holds one formatted ``FILE:LINE:COL: key.path: message`` line each.
    """

    def __init__(
        self, message: str, *, problems: Sequence[str] = (), hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.problems = list(problems)


class PrerequisiteError(InstallerError):
    """The machine does not meet what the target needs."""

    exit_code = ExitCode.PREREQUISITES


class BundleIntegrityError(InstallerError):
    """An offline bundle (or one of its parts) failed verification.

    ``problems`` holds one line per problem found (a bad part, a changed member), when
    verification went on to find them all.
    """

    exit_code = ExitCode.BUNDLE_INTEGRITY

    def __init__(
        self, message: str, *, problems: Sequence[str] = (), hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.problems = list(problems)


class StepFailed(InstallerError):
    """An install step failed; the run rolled back what it had changed."""

    exit_code = ExitCode.INSTALL_FAILED

    def __init__(
        self,
        message: str,
        *,
        step: str,
        hint: str | None = None,
        command: Sequence[str] | None = None,
        returncode: int | None = None,
        log_tail: Sequence[str] = (),
    ) -> None:
        super().__init__(message, hint=hint)
        self.step = step
        self.command = list(command) if command is not None else None
        self.returncode = returncode
        self.log_tail = list(log_tail)


class Interrupted(InstallerError):
    """The operator pressed Ctrl-C (or the process got SIGTERM)."""

    exit_code = ExitCode.INTERRUPTED


class RunInProgress(UsageError):
    """Another run holds this installation's lock; nothing was changed."""


class EngineUnavailable(PrerequisiteError):
    """An engine the run needs (the Docker Engine, a cluster's API server) cannot be reached.

    Nothing is wrong with what the installer did: the operator starts the engine and runs
    the same command again. The runner rolls back only what can be rolled back without
    the engine, and leaves the rest to the next run, which resumes.
    """


class ImageSaveError(InstallerError):
    """The Docker Engine could not save the release's images (``docker save``)."""


def first_line(error: BaseException | None) -> str:
    """An error's first line for a one-line message (its type when it has no text).

    Cut at 300 characters: an SDK error can carry a whole response body.
    """
    if error is None:
        return "no error"
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__
