"""The errors of backup, verify and restore, with their documented exit codes."""

from __future__ import annotations

from collections.abc import Sequence

from installer.errors import ExitCode, InstallerError, PrerequisiteError


class BackupIntegrityError(InstallerError):
    """A backup archive failed verification: damaged, truncated, or not for this key.

    ``member`` names the archive member that differs (``None`` when the key or the
    archive's header is at fault); ``problems`` has one line per problem found.
    """

    exit_code = ExitCode.BUNDLE_INTEGRITY

    def __init__(
        self,
        message: str,
        *,
        member: str | None = None,
        problems: Sequence[str] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.member = member
        self.problems = list(problems)


class AgeMissing(PrerequisiteError):
    """The ``age`` (or ``age-keygen``) program is not installed."""
