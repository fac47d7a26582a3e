"""What a live check returns, and what it is given."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.credentials import LoadedSecrets, Secrets
    from installer.release import ReleaseManifest

LiveStatus = Literal["pass", "warn", "fail", "skipped"]


@dataclass(frozen=True)
class LiveResult:
    """One live check's verdict, in the same shape as a prerequisite check's.

    ``measured`` and ``required`` are short human-readable values; ``hint`` is a one-line
    fix for anything that did not pass; ``reason`` says why a check did not apply;
    ``details`` holds machine-readable facts (per-image verdicts, the server version).
    """

    name: str
    status: LiveStatus
    measured: str | None
    required: str | None
    hint: str | None = None
    reason: str | None = None
    details: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "measured": self.measured,
            "required": self.required,
            "hint": self.hint,
            "reason": self.reason,
            "details": dict(self.details),
        }


def not_applicable(name: str, reason: str) -> LiveResult:
    """A check the answers do not call for (no managed database, LDAP off, ...)."""
    return LiveResult(name, "skipped", None, None, reason=reason)


@dataclass(frozen=True)
class LiveInput:
    """What the live checks read: the answers, the secrets they need, the release, where
    the images may come from, the environment (for proxies) and a per-request timeout.

    Secrets are plain strings here and never appear in a result.
    """

    answers: AnswerFile
    release: ReleaseManifest
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    bundle: str | None = None  # apply --bundle, else airgap.bundle
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: float = 4.0
    tls_ca_file: str | None = None  # CA to verify a provided certificate with (system's if None)

    def secret(self, key: str) -> str | None:
        value = self.secrets.get(key)
        return value if value else None

    @classmethod
    def for_answers(
        cls,
        answers: AnswerFile,
        secrets: LoadedSecrets | Secrets | None = None,
        *,
        bundle: str | None = None,
        environ: Mapping[str, str] | None = None,
        release: ReleaseManifest | None = None,
    ) -> LiveInput:
        """What the live checks of ``answers`` need: its release, the secrets' values (the
        environment's ``CODEQUAL_*`` when no secrets are given) and the proxies in effect."""
        import os

        from installer.release import release_for

        env = os.environ if environ is None else environ
        if secrets is None:
            from installer.validation import load_secrets

            secrets = load_secrets(None, env)
        model = secrets if not hasattr(secrets, "secrets") else secrets.secrets
        values = {
            key: value.get_secret_value()
            for key, value in model.model_dump().items()
            if value is not None
        }
        return cls(
            answers=answers,
            release=release if release is not None else release_for(answers),
            secrets=values,
            bundle=bundle,
            environ=dict(env),
        )
