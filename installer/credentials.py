"""Secrets: the separate secrets file, ``CODEQUAL_<KEY>`` variables, and redaction.

Secrets never live in the answer file. They come from a YAML secrets file (``--secrets``)
with the keys below, and from ``CODEQUAL_<KEY>`` environment variables for keys the file
does not set. Every value is a :class:`pydantic.SecretStr`, so printing the model shows
``**********``; :class:`Redactor` removes known values from any text that leaves the
process (logs, events, error messages).
"""

from __future__ import annotations

import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from installer.answers import SECRET_KEYS

_DESCRIPTIONS = {
    "anthropic_api_key": "Anthropic (Claude) API key.",
    "openai_api_key": "OpenAI API key.",
    "deepseek_api_key": "DeepSeek API key.",
    "gemini_api_key": "Google Gemini API key.",
    "github_token": "GitHub token for repository access.",
    "gitlab_token": "GitLab token for repository access.",
    "supabase_service_role_key": "Supabase service-role key.",
    "supabase_anon_key": "Supabase anonymous (public) key.",
    "database_password": "Password of the database role; generated when empty.",
    "ldap_bind_password": "Password of ldap.bind_dn.",
    "registry_password": "Password of registry.username on the mirror.",
    "grafana_admin_password": "Grafana's admin password; generated when empty.",
    "smtp_password": "Password of alerting.email.username on the SMTP server.",
    "slack_webhook_url": "Slack incoming webhook URL for alerting.slack.",
    "pagerduty_routing_key": "PagerDuty Events API v2 routing key for alerting.pagerduty.",
    "oidc_client_secret": "Client secret of identity.client_id at the OIDC provider.",
    "sentry_dsn": "Sentry DSN the services report errors to (telemetry.sentry).",
}

GENERATED_SECRETS: tuple[str, ...] = ("database_password", "grafana_admin_password")


class Secrets(BaseModel):
    """The secrets file: every key optional, every value kept out of output."""

    model_config = ConfigDict(extra="forbid", title="CodeQual installer secrets file")

    anthropic_api_key: SecretStr | None = Field(
        None, description=_DESCRIPTIONS["anthropic_api_key"]
    )
    openai_api_key: SecretStr | None = Field(None, description=_DESCRIPTIONS["openai_api_key"])
    deepseek_api_key: SecretStr | None = Field(None, description=_DESCRIPTIONS["deepseek_api_key"])
    gemini_api_key: SecretStr | None = Field(None, description=_DESCRIPTIONS["gemini_api_key"])
    github_token: SecretStr | None = Field(None, description=_DESCRIPTIONS["github_token"])
    gitlab_token: SecretStr | None = Field(None, description=_DESCRIPTIONS["gitlab_token"])
    supabase_service_role_key: SecretStr | None = Field(
        None, description=_DESCRIPTIONS["supabase_service_role_key"]
    )
    supabase_anon_key: SecretStr | None = Field(
        None, description=_DESCRIPTIONS["supabase_anon_key"]
    )
    database_password: SecretStr | None = Field(
        None, description=_DESCRIPTIONS["database_password"]
    )
    ldap_bind_password: SecretStr | None = Field(
        None, description=_DESCRIPTIONS["ldap_bind_password"]
    )
    registry_password: SecretStr | None = Field(
        None, description=_DESCRIPTIONS["registry_password"]
    )
    grafana_admin_password: SecretStr | None = Field(
        None, description=_DESCRIPTIONS["grafana_admin_password"]
    )
    smtp_password: SecretStr | None = Field(None, description=_DESCRIPTIONS["smtp_password"])
    slack_webhook_url: SecretStr | None = Field(
        None, description=_DESCRIPTIONS["slack_webhook_url"]
    )
    pagerduty_routing_key: SecretStr | None = Field(
        None, description=_DESCRIPTIONS["pagerduty_routing_key"]
    )
    oidc_client_secret: SecretStr | None = Field(
        None, description=_DESCRIPTIONS["oidc_client_secret"]
    )
    sentry_dsn: SecretStr | None = Field(None, description=_DESCRIPTIONS["sentry_dsn"])

    def get(self, key: str) -> str | None:
        """The plain value of ``key``, or None when nobody supplied it."""
        value = getattr(self, key)
        return None if value is None else str(value.get_secret_value())

    def supplied(self) -> dict[str, str]:
        """Every key that has a value, with its plain value."""
        return {k: v for k in SECRET_KEYS if (v := self.get(k)) is not None}


assert tuple(Secrets.model_fields) == SECRET_KEYS  # noqa: S101 - the two lists are one contract


def env_name(key: str) -> str:
    """``anthropic_api_key`` -> ``CODEQUAL_ANTHROPIC_API_KEY``."""
    return f"CODEQUAL_{key.upper()}"


@dataclass
class LoadedSecrets:
    """Secrets as loaded, with where each came from and any warnings for the operator."""

    secrets: Secrets
    origin: dict[str, str] = field(default_factory=dict)  # key -> "secrets file" | "environment"
    warnings: list[str] = field(default_factory=list)


def secrets_from_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The ``CODEQUAL_<KEY>`` variables that are set and not empty."""
    return {k: environ[env_name(k)] for k in SECRET_KEYS if environ.get(env_name(k))}


def write_secrets_file(path: Path, values: Mapping[str, str], *, comment: str = "") -> None:
    """Write a secrets file that ``--secrets`` reads back as ``values``: YAML, one key a
    line in key order, each value double-quoted, mode 0600 from the first byte (atomic).

    The only writer of a secrets file. ``comment`` becomes a ``#`` line at the top. Raises
    ``ValueError`` for a key that is not a secret's, ``OSError`` when the file cannot be
    written (the previous file, if any, is left as it was).
    """
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    from installer.statedir import replace_file

    unknown = sorted(set(values) - set(SECRET_KEYS))
    if unknown:
        raise ValueError(f"not secrets-file keys: {', '.join(unknown)}")
    buffer = io.StringIO()
    if comment:
        buffer.write(f"# {comment}\n")
    document = YAML(typ="rt", pure=True)
    document.width = 2**30  # one line per key, however long the value
    document.allow_unicode = True
    document.dump({key: DoubleQuotedScalarString(values[key]) for key in sorted(values)}, buffer)
    replace_file(path, buffer.getvalue().encode("utf-8"), 0o600)


def file_permission_warning(path: Path) -> str | None:
    """A warning when a secrets file can be read by its group or by everyone."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return (
            f"{path}: the secrets file can be read by other users (mode "
            f"{stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
        )
    return None


def build_secrets(
    from_file: Mapping[str, object], environ: Mapping[str, str]
) -> tuple[Secrets, dict[str, str]]:
    """Merge file values (which win) with environment values; raise ValidationError."""
    merged: dict[str, object] = {}
    origin: dict[str, str] = {}
    for key, env_value in secrets_from_environment(environ).items():
        merged[key], origin[key] = env_value, "environment"
    for key, value in from_file.items():
        if value is None or value == "":
            continue
        merged[key] = value
        origin[key] = "secrets file"
    return Secrets.model_validate(merged), origin


class Redactor:
    """Replaces every known secret value in a text with ``***``.

    Longer values are replaced first, so a secret that contains another is still hidden
    whole. Values shorter than four characters are not searched for: they would turn
    ordinary words into asterisks, and no generated or real credential is that short.
    """

    MASK = "***"

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: list[str] = []
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        new = {v for v in values if v and len(v) >= 4}
        self._values = sorted(set(self._values) | new, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, self.MASK)
        return text

    def include(self, other: Redactor) -> None:
        """Also hide every value ``other`` hides (a run learns generated secrets midway)."""
        self.add(other._values)

    def __bool__(self) -> bool:
        return bool(self._values)
