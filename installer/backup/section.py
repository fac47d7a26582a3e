"""The answer file's ``backup:`` section: who can decrypt the archives, where they go, how
many are kept. A compatible addition to version 1: a file without it gets the defaults.

::

    backup:
      recipients: [age1...]        # age X25519 recipients (`backup keygen` prints one)
      directory: /srv/backups      # default: <install_dir>/backups
      keep: 7                      # archives `backup prune` keeps (never the newest verified)

``backup create --recipient`` and ``--to`` override ``recipients`` and ``directory`` for
one run; without any recipient ``backup create`` refuses (exit 2): archives hold secrets,
so they are always encrypted.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from pydantic import BaseModel, ConfigDict, Field, field_validator

from installer.backup.crypto import RECIPIENT_PATTERN

DEFAULT_KEEP = 7
DEFAULT_SUBDIRECTORY = "backups"


class Backup(BaseModel):
    """Backups of a Compose installation (``codequal-installer backup ...``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    recipients: list[str] = Field(
        default_factory=list,
        description=(
            "age X25519 recipients (age1...) every archive is encrypted to; "
            "`codequal-installer backup keygen --out FILE` makes a key and prints its recipient."
        ),
    )
    directory: str | None = Field(
        None,
        description="Where archives are written and listed; `<install_dir>/backups` when empty.",
    )
    keep: int = Field(
        DEFAULT_KEEP,
        ge=1,
        le=10000,
        description=(
            "How many archives `backup prune` keeps (the newest verified one is always kept)."
        ),
    )

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for recipient in value:
            if not RECIPIENT_PATTERN.match(recipient):
                shown = recipient if len(recipient) <= 20 else recipient[:16] + "…"
                raise ValueError(
                    f"{shown!r} is not an age X25519 recipient (age1 followed by 58 "
                    "characters); an identity file's AGE-SECRET-KEY never goes here"
                )
            if recipient in seen:
                raise ValueError(f"{recipient[:16]}… is listed twice")
            seen.add(recipient)
        return value

    @field_validator("directory")
    @classmethod
    def _directory(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not PurePosixPath(value).is_absolute():
            raise ValueError("the backup directory must be an absolute path, got a relative one")
        if "\n" in value or "\x00" in value:
            raise ValueError("the backup directory must not contain a newline or NUL byte")
        return value

    def directory_for(self, install_dir: str) -> PurePosixPath:
        """Where the archives of the installation in ``install_dir`` live (``directory``, or
        the default beside the installation)."""
        if self.directory:
            return PurePosixPath(self.directory)
        return PurePosixPath(install_dir) / DEFAULT_SUBDIRECTORY
