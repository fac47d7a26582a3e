"""The answer file's ``identity:`` section: sign-in through an OpenID Connect provider.

A compatible addition to version 1: a file without it keeps sign-in as it was (local
accounts, and LDAP on the Kubernetes targets, which can be on at the same time).

::

    identity:
      enabled: true
      issuer: https://login.example.com/realms/corp    # the provider's issuer URL
      client_id: codequal                              # its secret: oidc_client_secret
      scopes: [openid, profile, email, groups]
      role_claim: groups                               # the ID token claim read for roles
      roles: {codequal-admins: admin, engineers: developer}
      default_role: viewer                             # anyone else who signs in

The redirect URL is not an answer: it follows from ``domain`` (:func:`redirect_url`), and
``check --answers`` names it so the operator can register it with the provider. The API
service receives the settings as ``OIDC_*`` variables (:meth:`Identity.environment`);
the client secret travels like every other secret (``.env`` / the Kubernetes Secret).
"""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Role = Literal["admin", "developer", "viewer"]
CALLBACK_PATH = "/auth/oidc/callback"
DISCOVERY_PATH = "/.well-known/openid-configuration"

# RFC 6749 section 3.3: a scope token is printable ASCII without space, '"' or '\'.
_SCOPE = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]+$")
# A claim name, or a dotted path into nested claims (realm_access.roles).
_CLAIM = re.compile(r"^[A-Za-z0-9_:/-]+(\.[A-Za-z0-9_:/-]+)*$")
_ISSUER = re.compile(r"^https?://[^/?#\s@]+(/[^?#\s]*)?$")


def _issuer_problem(value: str) -> str | None:
    """Why ``value`` is not an issuer URL (OpenID Connect Discovery 1.0, section 2)."""
    if not _ISSUER.match(value):
        return "must be an https:// URL with no query or fragment, like https://login.example.com"
    if value.startswith("http://"):
        host = value[len("http://") :].split("/", 1)[0].rsplit(":", 1)[0]
        if host not in ("localhost", "127.0.0.1", "[::1]"):
            return "must use https:// (plain http is accepted for localhost only)"
    return None


class Identity(BaseModel):
    """Sign-in through an OpenID Connect provider (every target; beside LDAP on Kubernetes)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    enabled: bool = Field(False, description="Let users sign in through the OIDC provider.")
    issuer: str | None = Field(
        None,
        description=(
            "The provider's issuer URL (https://...); `check --answers` reads its "
            "/.well-known/openid-configuration."
        ),
    )
    client_id: str | None = Field(
        None,
        description="The client registered for CodeQual; its secret is oidc_client_secret.",
    )
    scopes: list[str] = Field(
        default_factory=lambda: ["openid", "profile", "email"],
        description="Scopes requested at sign-in; openid is required.",
    )
    role_claim: str = Field(
        "groups",
        description="ID token claim (a dotted path for nested claims) read for the role mapping.",
    )
    roles: dict[str, Role] = Field(
        default_factory=dict,
        description="Claim value -> CodeQual role (admin, developer, viewer).",
    )
    default_role: Role | None = Field(
        "viewer",
        description="Role of a user no mapping matches; null refuses them sign-in.",
    )

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str | None) -> str | None:
        if value is None:
            return None
        problem = _issuer_problem(value)
        if problem:
            raise ValueError(problem)
        return value  # kept as written: the provider's document must name it exactly

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str | None) -> str | None:
        if value is not None and (not value or not value.isprintable() or " " in value):
            raise ValueError("must be the client id, printable characters without spaces")
        return value

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for scope in value:
            if not _SCOPE.match(scope):
                raise ValueError(f"{scope!r} is not a scope (printable, no spaces or quotes)")
            if scope in seen:
                raise ValueError(f"{scope!r} is listed twice")
            seen.add(scope)
        if "openid" not in seen:
            raise ValueError("must include openid (without it the provider sends no ID token)")
        return value

    @field_validator("role_claim")
    @classmethod
    def _role_claim(cls, value: str) -> str:
        if not _CLAIM.match(value):
            raise ValueError(f"{value!r} is not a claim name like groups or realm_access.roles")
        return value

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: dict[str, str]) -> dict[str, str]:
        for claim_value in value:
            if not claim_value.strip() or "\n" in claim_value:
                raise ValueError("a claim value must not be empty or hold a newline")
        return value

    def problems(self) -> list[tuple[tuple[str, ...], str]]:
        """What is missing for sign-in to work, each as (key path, message)."""
        problems: list[tuple[tuple[str, ...], str]] = []
        if self.enabled:
            for name in ("issuer", "client_id"):
                if getattr(self, name) is None:
                    problems.append(((name,), "required when identity.enabled is true"))
            if not self.roles and self.default_role is None:
                problems.append(
                    (("default_role",), "with no roles mapped, null would let nobody sign in")
                )
        return problems

    def environment(self, redirect: str) -> dict[str, str]:
        """The API service's ``OIDC_*`` variables (not the secret); empty when sign-in is off.

        ``redirect`` is :func:`redirect_url` of the installation."""
        if not self.enabled:
            return {}
        assert self.issuer is not None and self.client_id is not None  # noqa: S101 - problems()
        env = {
            "OIDC_ENABLED": "true",
            "OIDC_ISSUER": self.issuer,
            "OIDC_CLIENT_ID": self.client_id,
            "OIDC_REDIRECT_URI": redirect,
            "OIDC_SCOPES": " ".join(self.scopes),
            "OIDC_ROLE_CLAIM": self.role_claim,
            "OIDC_ROLE_MAPPING": json.dumps(self.roles, sort_keys=True),
        }
        if self.default_role is not None:
            env["OIDC_DEFAULT_ROLE"] = self.default_role
        return env


def redirect_url(domain: str, tls_mode: str) -> str:
    """The redirect (callback) URL to register with the provider: the installation's
    public URL (as the services' ``PUBLIC_URL`` says) and the callback path."""
    if tls_mode != "none":
        return f"https://{domain}{CALLBACK_PATH}"
    return f"http://localhost:3000{CALLBACK_PATH}"  # development without TLS: no nginx


def discovery_url(issuer: str) -> str:
    """The issuer's discovery document (OpenID Connect Discovery 1.0, section 4)."""
    return issuer.rstrip("/") + DISCOVERY_PATH
