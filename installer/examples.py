"""Writing answer files: commented examples per target, and complete exports.

``dump_answers`` writes an :class:`AnswerFile` back out as YAML that ``apply`` accepts as
is, every key preceded by its documentation. It writes only the sections the target uses
and leaves out keys that are unset (``null``), so the file reads like one a person wrote.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel

from installer.answers import COMPOSE_TARGETS, AnswerFile, Target

_PLAIN = re.compile(r"^[A-Za-z0-9_/][A-Za-z0-9_./:@+-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}
_NOT_FOR_COMPOSE = ("kubernetes", "ldap")


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    numeric = re.fullmatch(r"[-+]?[0-9][0-9_.eE+-]*", text) is not None
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS and not numeric:
        return text
    return json.dumps(text)


def _comment(text: str | None, indent: str) -> list[str]:
    if not text:
        return []
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(indent) + len(line) + len(word) + 3 > 92:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return [f"{indent}# {text_line}" for text_line in lines]


def _emit(model: BaseModel, indent: str, comments: bool, skip: tuple[str, ...] = ()) -> list[str]:
    out: list[str] = []
    fields = type(model).model_fields
    for name, info in fields.items():
        if name in skip:
            continue
        value = getattr(model, name)
        if value is None:
            continue
        if comments:
            out.extend(_comment(info.description, indent))
        if isinstance(value, BaseModel):
            body = _emit(value, indent + "  ", comments)
            out.append(f"{indent}{name}:" if body else f"{indent}{name}: {{}}")
            out.extend(body)
        elif isinstance(value, list):
            items = ", ".join(_scalar(v) for v in value)
            out.append(f"{indent}{name}: [{items}]")
        elif isinstance(value, dict):
            if not value:
                out.append(f"{indent}{name}: {{}}")
            else:
                out.append(f"{indent}{name}:")
                out.extend(f"{indent}  {_scalar(k)}: {_scalar(v)}" for k, v in value.items())
        else:
            out.append(f"{indent}{name}: {_scalar(value)}")
    return out


def dump_answers(answers: AnswerFile, *, comments: bool = True, header: str | None = None) -> str:
    """The answer file as YAML: every default written out, no secrets, target's sections."""
    skip = _NOT_FOR_COMPOSE if answers.target in COMPOSE_TARGETS else ()
    lines = _comment(header, "") if header else []
    lines += _emit(answers, "", comments, skip)
    return "\n".join(lines) + "\n"


_EXAMPLES: dict[str, dict[str, Any]] = {
    "development": {
        "domain": "localhost",
        "monitoring": {"enabled": False},
    },
    "production": {
        "domain": "codequal.example.com",
        "tls": {"mode": "self-signed"},
        "database": {"kind": "postgres"},
        "alerting": {
            "enabled": True,
            "email": {
                "smtp_host": "smtp.example.com:587",
                "from_address": "codequal@example.com",
                "to": ["ops@example.com"],
            },
        },
    },
    "kubernetes": {
        "domain": "codequal.example.com",
        "tls": {"mode": "self-signed"},
        "database": {
            "kind": "postgres",
            "managed": True,
            "host": "codequal-db.example.com",
            "sslmode": "verify-full",
        },
        "kubernetes": {"namespace": "codequal", "ingress_class": "nginx"},
        "telemetry": {"otlp_endpoint": "http://otel-collector.observability:4318"},
        "audit": {"destination": "log-stack", "retention_days": 365},
    },
    "enterprise": {
        "domain": "codequal.corp.local",
        "tls": {
            "mode": "provided",
            "cert_file": "/etc/codequal/tls/codequal.crt",
            "key_file": "/etc/codequal/tls/codequal.key",
        },
        "database": {
            "kind": "postgres",
            "managed": True,
            "host": "pg.corp.local",
            "sslmode": "verify-full",
        },
        "registry": {
            "mirror": "registry.corp.local:5000",
            "username": "codequal",
            "ca_file": "/etc/codequal/corp-ca.pem",
        },
        "kubernetes": {"namespace": "codequal", "openshift": True},
        "ldap": {
            "enabled": True,
            "url": "ldaps://ldap.corp.local",
            "bind_dn": "cn=codequal,ou=services,dc=corp,dc=local",
            "user_base_dn": "ou=people,dc=corp,dc=local",
            "group_base_dn": "ou=groups,dc=corp,dc=local",
            "ca_file": "/etc/codequal/corp-ca.pem",
        },
        "identity": {
            "enabled": True,
            "issuer": "https://login.corp.local/realms/corp",
            "client_id": "codequal",
            "scopes": ["openid", "profile", "email", "groups"],
            "roles": {"codequal-admins": "admin", "engineering": "developer"},
        },
        "audit": {
            "destination": "log-stack",
            "retention_days": 730,
            "analysis_retention_days": 180,
        },
        "airgap": {"enabled": True, "bundle": "/srv/codequal/codequal.bundle"},
        "resources": {"profile": "enterprise"},
    },
}


def example_answers(target: Target) -> AnswerFile:
    """A valid, realistic answer file for ``target``."""
    return AnswerFile.model_validate({"version": 1, "target": target, **_EXAMPLES[target]})


def example_text(target: Target) -> str:
    """``answers example --target T``: the example with every key documented."""
    header = (
        f"CodeQual installer answer file for the {target} target. Check it with "
        "`codequal-installer answers validate FILE`; secrets go in a separate file "
        "(--secrets) or CODEQUAL_<KEY> environment variables, never here."
    )
    return dump_answers(example_answers(target), header=header)
