"""The configuration form, read off the answer-file model.

Every field the form shows is a field of :class:`~installer.answers.AnswerFile`: its label
is its key, its help text is the model's own description, its choices are the model's
``Literal`` values. Nothing here decides what is valid; that is the model's job (see
:meth:`screens.state.WizardState.validate`). What this module adds is presentation: which
sections a target uses, and which fields to hide while another field makes them unused
(a certificate path while TLS is self-signed, say), so the form stays short at 80x24.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from installer.answers import COMPOSE_TARGETS, AnswerFile

FieldKind = Literal["text", "int", "bool", "choice", "multi", "secret", "context"]

# Sections the form never shows: fixed, chosen on another screen, or expert-only (the
# pre-filled values of these still reach the saved answer file untouched).
_NOT_IN_FORM = frozenset({"version", "target", "release", "checks", "alerting"})
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
    "smtp_password": lambda get: (
        get("alerting.enabled") is True and bool(get("alerting.email.username"))
    ),
    "slack_webhook_url": lambda get: (
        get("alerting.enabled") is True and bool(get("alerting.slack.channel"))
    ),
    "pagerduty_routing_key": lambda get: (
        get("alerting.enabled") is True and bool(get("alerting.pagerduty.url"))
    ),
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
        return None, ()
    if annotation is bool:
        return "bool", ()
    if annotation is int:
        return "int", ()
    if annotation is str:
        return "text", ()
    return None, ()


def _field_from(path: str, info: FieldInfo, default: Any) -> list[FormField]:
    """The form field(s) for one model field: nested sections are flattened."""
    annotation, optional = _unwrap_optional(info.annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _fields_of(annotation, path + ".", default or {})
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
        )
    ]


def _fields_of(model: type[BaseModel], prefix: str, defaults: dict[str, Any]) -> list[FormField]:
    out: list[FormField] = []
    for name, info in model.model_fields.items():
        out += _field_from(f"{prefix}{name}", info, defaults.get(name))
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
                    name.capitalize() if name not in ("tls", "ldap") else name.upper(),
                    info.description or "",
                    _fields_of(annotation, name + ".", defaults.get(name) or {}),
                )
            )
        else:
            general.fields += _field_from(name, info, defaults.get(name))
    sections.append(FormSection("secrets", "Secrets", _SECRETS_HELP, secret_fields()))
    return sections


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
    controlling = _SHOWN_WHEN.get(form_field.path)
    if controlling is None:
        return True
    path, predicate = controlling
    return predicate(value_of(path))


def required_secrets(answers: AnswerFile) -> list[str]:
    """Secrets these answers cannot be installed without (the engine's own list)."""
    from installer.render.context import required_secrets as engine_required

    return [key for key, _ in engine_required(answers)]
