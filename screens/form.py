"""The configuration form, read off the answer-file model.

Every field the form shows is a field of :class:`~installer.answers.AnswerFile`: its label
is its key, its help text is the model's own description, its choices are the model's
``Literal`` values. Nothing here decides what is valid; that is the model's job (see
:meth:`screens.state.WizardState.validate`). What this module adds is presentation: which
sections a target uses, and which fields to hide while another field makes them unused
(a certificate path while TLS is self-signed, say), so the form stays short at 80x24.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from installer.answers import COMPOSE_TARGETS, AnswerFile

FieldKind = Literal[
    "text", "int", "bool", "choice", "multi", "secret", "context", "words", "mapping", "present"
]

# Sections the form never shows: fixed, chosen on another screen, or expert-only (the
# pre-filled values of these still reach the saved answer file untouched).
_NOT_IN_FORM = frozenset({"version", "target", "release", "checks"})
_COMPOSE_ONLY = frozenset({"install_dir"})
_KUBERNETES_ONLY = frozenset({"kubernetes", "ldap"})
_GENERAL = "general"

# field path -> (controlling path, predicate on the controlling value): show only while true.
_SHOWN_WHEN: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "tls.cert_file": ("tls.mode", lambda v: v == "provided"),
    "tls.key_file": ("tls.mode", lambda v: v == "provided"),
    "database.managed": ("database.kind", lambda v: v == "postgres"),
    "database.host": ("database.managed", lambda v: v is True),
    "database.sslmode": ("database.managed", lambda v: v is True),
    "database.port": ("database.kind", lambda v: v == "postgres"),
    "database.name": ("database.kind", lambda v: v == "postgres"),
    "database.user": ("database.kind", lambda v: v == "postgres"),
    "deepwiki.url": ("deepwiki.mode", lambda v: v == "external"),
    "monitoring.components": ("monitoring.enabled", lambda v: v is True),
    "registry.username": ("registry.mirror", bool),
    "registry.insecure": ("registry.mirror", bool),
    "registry.ca_file": ("registry.mirror", bool),
    "kubernetes.ingress_class": ("kubernetes.openshift", lambda v: v is not True),
    "kubernetes.autoscaling.min": ("kubernetes.autoscaling.enabled", lambda v: v is True),
    "kubernetes.autoscaling.max": ("kubernetes.autoscaling.enabled", lambda v: v is True),
    "kubernetes.autoscaling.cpu_percent": (
        "kubernetes.autoscaling.enabled",
        lambda v: v is True,
    ),
    "ldap.url": ("ldap.enabled", lambda v: v is True),
    "ldap.bind_dn": ("ldap.enabled", lambda v: v is True),
    "ldap.user_base_dn": ("ldap.enabled", lambda v: v is True),
    "ldap.group_base_dn": ("ldap.enabled", lambda v: v is True),
    "ldap.ca_file": ("ldap.enabled", lambda v: v is True),
    "airgap.bundle": ("airgap.enabled", lambda v: v is True),
    "identity.issuer": ("identity.enabled", lambda v: v is True),
    "identity.client_id": ("identity.enabled", lambda v: v is True),
    "identity.scopes": ("identity.enabled", lambda v: v is True),
    "identity.role_claim": ("identity.enabled", lambda v: v is True),
    "identity.roles": ("identity.enabled", lambda v: v is True),
    "identity.default_role": ("identity.enabled", lambda v: v is True),
    "telemetry.otlp_protocol": ("telemetry.otlp_endpoint", bool),
    # The receivers' own fields are shown while their receiver is on (FormField.within).
    "alerting.email": ("alerting.enabled", lambda v: v is True),
    "alerting.slack": ("alerting.enabled", lambda v: v is True),
    "alerting.pagerduty": ("alerting.enabled", lambda v: v is True),
    "alerting.external_monitor_url": ("alerting.enabled", lambda v: v is True),
    "alerting.certificate_warning_days": ("alerting.enabled", lambda v: v is True),
    "alerting.llm_daily_token_budget": ("alerting.enabled", lambda v: v is True),
}

# Secrets the form asks for, and the answer that makes each one used. Values typed here
# never reach the answer file; empty generated ones are made by the engine.
_SECRET_WHEN: dict[str, Callable[[Callable[[str], Any]], bool]] = {
    "anthropic_api_key": lambda get: "anthropic" in (get("providers") or []),
    "openai_api_key": lambda get: "openai" in (get("providers") or []),
    "deepseek_api_key": lambda get: "deepseek" in (get("providers") or []),
    "gemini_api_key": lambda get: "gemini" in (get("providers") or []),
    "github_token": lambda get: get("git.github") is True,
    "gitlab_token": lambda get: get("git.gitlab") is True,
    "supabase_service_role_key": lambda get: bool(get("supabase.url")),
    "supabase_anon_key": lambda get: bool(get("supabase.url")),
    "database_password": lambda get: get("database.kind") == "postgres",
    "grafana_admin_password": lambda get: (
        get("monitoring.enabled") is True and "grafana" in (get("monitoring.components") or [])
    ),
    "ldap_bind_password": lambda get: get("ldap.enabled") is True,
    "registry_password": lambda get: bool(get("registry.username")),
    "oidc_client_secret": lambda get: get("identity.enabled") is True,
    "sentry_dsn": lambda get: get("telemetry.sentry") is True,
    "smtp_password": lambda get: bool(get("alerting.email.username")),
    "slack_webhook_url": lambda get: get("alerting.slack") is not None,
    "pagerduty_routing_key": lambda get: get("alerting.pagerduty") is not None,
}


@dataclass(frozen=True)
class FormField:
    """One input of the configuration form, bound to a dotted answer-file path."""

    path: str
    label: str
    help: str
    kind: FieldKind
    options: tuple[str, ...] = ()
    optional: bool = False
    default: Any = None
    within: str | None = None  # an optional sub-section's path: shown while it is present

    @property
    def widget_id(self) -> str:
        """A DOM id for the field's input (dots are not allowed in ids)."""
        return "field-" + self.path.replace(".", "--")


@dataclass
class FormSection:
    """A titled group of fields: one answer-file section (or the top-level keys)."""

    name: str
    title: str
    help: str
    fields: list[FormField] = field(default_factory=list)


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(args) < len(get_args(annotation)):
            return args[0], True
    return annotation, False


def _kind_of(annotation: Any) -> tuple[FieldKind | None, tuple[str, ...]]:
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    origin = get_origin(annotation)
    if origin is Literal:
        return "choice", tuple(str(a) for a in get_args(annotation))
    if origin is list:
        (item,) = get_args(annotation)
        if get_origin(item) is Literal:
            return "multi", tuple(str(a) for a in get_args(item))
        if item is str:
            return "words", ()
        return None, ()
    if origin is dict:
        key, value = get_args(annotation)
        if key is str and (value is str or get_origin(value) is Literal):
            return "mapping", tuple(str(a) for a in get_args(value))
        return None, ()
    if annotation is bool:
        return "bool", ()
    if annotation is int:
        return "int", ()
    if annotation is str:
        return "text", ()
    return None, ()


def _field_from(
    path: str, info: FieldInfo, default: Any, within: str | None = None
) -> list[FormField]:
    """The form field(s) for one model field: nested sections are flattened; an optional
    one (``alerting.email``) gets a check box that adds or removes it, its fields after."""
    annotation, optional = _unwrap_optional(info.annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if not optional:
            return _fields_of(annotation, path + ".", default or {}, within)
        presence = FormField(
            path=path,
            label=path.split(".", 1)[-1],
            help=info.description or "",
            kind="present",
            optional=True,
            within=within,
        )
        return [presence, *_fields_of(annotation, path + ".", default or {}, path)]
    kind, options = _kind_of(annotation)
    if kind is None:
        return []
    return [
        FormField(
            path=path,
            label=path.split(".", 1)[-1],
            help=info.description or "",
            kind="context" if path == "kubernetes.context" else kind,
            options=options,
            optional=optional,
            default=default,
            within=within,
        )
    ]


def _fields_of(
    model: type[BaseModel], prefix: str, defaults: dict[str, Any], within: str | None = None
) -> list[FormField]:
    out: list[FormField] = []
    for name, info in model.model_fields.items():
        # A sub-section that is absent by default still shows its fields' own defaults.
        default = defaults.get(name, None if info.is_required() else info.get_default())
        out += _field_from(f"{prefix}{name}", info, default, within)
    return out


def target_defaults(target: str) -> dict[str, Any]:
    """Every default the model gives ``target`` (development's SQLite and plain HTTP)."""
    seed: dict[str, Any] = {"version": 1, "target": target}
    if target != "development":
        seed["domain"] = "localhost"  # only to satisfy "domain is required"; not shown
    defaults = AnswerFile.model_validate(seed).model_dump()
    if target != "development":
        defaults["domain"] = None
    return defaults


def sections_for(target: str) -> list[FormSection]:
    """The form's sections for ``target``, in answer-file order."""
    defaults = target_defaults(target)
    compose = target in COMPOSE_TARGETS
    general = FormSection(_GENERAL, "General", "Where CodeQual goes and what it is called.")
    sections = [general]
    for name, info in AnswerFile.model_fields.items():
        if name in _NOT_IN_FORM:
            continue
        if compose and name in _KUBERNETES_ONLY:
            continue
        if not compose and name in _COMPOSE_ONLY:
            continue
        annotation, _ = _unwrap_optional(info.annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            sections.append(
                FormSection(
                    name,
                    _TITLES.get(name, name.capitalize()),
                    info.description or "",
                    _fields_of(annotation, name + ".", defaults.get(name) or {}),
                )
            )
        else:
            general.fields += _field_from(name, info, defaults.get(name))
    sections.append(FormSection("secrets", "Secrets", _SECRETS_HELP, secret_fields()))
    return sections


_TITLES = {
    "tls": "TLS",
    "ldap": "LDAP",
    "identity": "Sign-in (OIDC)",
    "telemetry": "Error tracking and tracing",
    "audit": "Audit log and retention",
}

_SECRETS_HELP = (
    "Never written to the answer file. Passwords left empty are generated and kept, mode "
    "0600, in the installation's state directory."
)


def secret_fields() -> list[FormField]:
    """A password input for every secret the engine knows, with its own description."""
    from installer.credentials import Secrets

    return [
        FormField(
            path=f"secrets.{key}",
            label=key,
            help=info.description or "",
            kind="secret",
            optional=True,
        )
        for key, info in Secrets.model_fields.items()
    ]


def is_shown(form_field: FormField, value_of: Callable[[str], Any]) -> bool:
    """Whether ``form_field`` is in use, given the current value of every other field."""
    if form_field.kind == "secret":
        rule = _SECRET_WHEN.get(form_field.path.split(".", 1)[1])
        return rule is None or rule(value_of)
    if form_field.within is not None and value_of(form_field.within) is None:
        return False
    controlling = _SHOWN_WHEN.get(form_field.path)
    if controlling is None:
        return True
    path, predicate = controlling
    return predicate(value_of(path))


def words_text(value: Any) -> str:
    """A list as the form shows it: ``openid, profile``."""
    return ", ".join(str(v) for v in value or [])


def parse_words(text: str) -> list[str] | None:
    """``openid, profile email`` -> ``["openid", "profile", "email"]``; empty -> None."""
    items = [w for w in re.split(r"[,\s]+", text.strip()) if w]
    return items or None


def mapping_text(value: Any) -> str:
    """A mapping as the form shows it: ``admins=admin, staff=viewer``."""
    return ", ".join(f"{k}={v}" for k, v in (value or {}).items())


def parse_mapping(text: str) -> dict[str, str] | str | None:
    """``admins=admin, staff=viewer`` -> a dict; empty -> None. An entry without ``=``
    comes back as the text itself, which the model then refuses in its own words."""
    entries = [e.strip() for e in text.split(",") if e.strip()]
    if not entries:
        return None
    mapping: dict[str, str] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            return text.strip()
        mapping[key.strip()] = value.strip()
    return mapping


def required_secrets(answers: AnswerFile) -> list[str]:
    """Secrets these answers cannot be installed without (the engine's own list)."""
    from installer.render.context import required_secrets as engine_required

    return [key for key, _ in engine_required(answers)]
