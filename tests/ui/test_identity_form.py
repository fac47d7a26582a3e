"""The configuration form's sign-in, telemetry and audit sections: inline validation in the
model's own words, fields shown only while used, secrets kept out of the answer file."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from textual.widgets import Input, Static

from screens.app import ANSWERS_FILE_NAME, InstallerApp
from tests.ui.conftest import choose, field_id, toggle, type_into, wait_for_screen

PRODUCTION = {"version": 1, "target": "production", "domain": "codequal.example.com"}


def shown(app: InstallerApp, path: str) -> bool:
    return bool(app.screen.query_one(f"#row-{field_id(path)[1:]}").display)


def error_of(app: InstallerApp, path: str) -> str:
    return str(app.screen.query_one(f"#row-{field_id(path)[1:]} .field-error").render())


async def test_sign_in_fields_appear_when_enabled_and_name_the_redirect_url(
    make_app: Callable[..., InstallerApp],
) -> None:
    app = make_app(first_step="configuration")
    app.state.draft = dict(PRODUCTION)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_screen(pilot, "configuration")
        assert not shown(app, "identity.issuer")
        assert not shown(app, "secrets.oidc_client_secret")
        await toggle(pilot, "identity.enabled")
        for path in ("identity.issuer", "identity.client_id", "identity.roles"):
            assert shown(app, path)
        assert shown(app, "secrets.oidc_client_secret")
        assert "required when identity.enabled is true" in error_of(app, "identity.issuer")
        redirect = app.screen.query_one("#identity-redirect", Static)
        assert redirect.display
        assert "https://codequal.example.com/auth/oidc/callback" in str(redirect.render())
        await toggle(pilot, "identity.enabled")
        assert not shown(app, "identity.issuer") and not redirect.display


async def test_each_identity_field_is_checked_as_it_is_typed(
    make_app: Callable[..., InstallerApp],
) -> None:
    app = make_app(first_step="configuration")
    app.state.draft = {**PRODUCTION, "identity": {"enabled": True}}
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_screen(pilot, "configuration")
        await type_into(pilot, "identity.issuer", "http://login.example.com")
        assert "must use https://" in error_of(app, "identity.issuer")
        await type_into(pilot, "identity.issuer", "https://login.example.com/realms/corp")
        assert "✗" not in error_of(app, "identity.issuer")
        await type_into(pilot, "identity.client_id", "codequal")

        await type_into(pilot, "identity.scopes", "profile, email")
        assert "must include openid" in error_of(app, "identity.scopes")
        await type_into(pilot, "identity.scopes", "openid, profile, groups")
        assert "✗" not in error_of(app, "identity.scopes")
        assert app.state.get("identity.scopes") == ["openid", "profile", "groups"]

        await type_into(pilot, "identity.roles", "admins=root")
        assert "'admin', 'developer' or 'viewer'" in error_of(app, "identity.roles")
        await type_into(pilot, "identity.roles", "admins")
        assert "✗" in error_of(app, "identity.roles")
        await type_into(pilot, "identity.roles", "admins=admin, staff=viewer")
        assert "✗" not in error_of(app, "identity.roles")
        assert app.state.get("identity.roles") == {"admins": "admin", "staff": "viewer"}

        await type_into(pilot, "secrets.oidc_client_secret", "client-secret-typed-here")
        assert app.state.validate().ok


async def test_telemetry_and_audit_fields_show_the_models_messages(
    make_app: Callable[..., InstallerApp],
) -> None:
    app = make_app(first_step="configuration")
    app.state.draft = {**PRODUCTION, "monitoring": {"enabled": False}}
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_screen(pilot, "configuration")
        assert not shown(app, "telemetry.otlp_protocol")
        await type_into(pilot, "telemetry.otlp_endpoint", "otel:4318")
        assert "http:// or https:// URL" in error_of(app, "telemetry.otlp_endpoint")
        await type_into(pilot, "telemetry.otlp_endpoint", "http://otel-collector:4318")
        assert "✗" not in error_of(app, "telemetry.otlp_endpoint")
        assert shown(app, "telemetry.otlp_protocol")

        assert not shown(app, "secrets.sentry_dsn")
        await toggle(pilot, "telemetry.sentry")
        assert shown(app, "secrets.sentry_dsn")

        await choose(pilot, "audit.destination", "log-stack")
        assert "needs monitoring.enabled with loki" in error_of(app, "audit.destination")
        await choose(pilot, "audit.destination", "volume")
        assert "✗" not in error_of(app, "audit.destination")
        await type_into(pilot, "audit.retention_days", "0")
        assert "greater than or equal to 1" in error_of(app, "audit.retention_days")
        await type_into(pilot, "audit.retention_days", "365")
        assert "✗" not in error_of(app, "audit.retention_days")
        assert app.state.get("audit") == {"destination": "volume", "retention_days": 365}


async def test_the_new_secrets_never_reach_the_answer_file(
    make_app: Callable[..., InstallerApp], tmp_path: Path
) -> None:
    app = make_app(first_step="configuration")
    app.state.draft = {
        **PRODUCTION,
        "identity": {"enabled": True, "issuer": "https://login.example.com", "client_id": "cq"},
        "telemetry": {"sentry": True},
    }
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_screen(pilot, "configuration")
        for key in ("oidc_client_secret", "sentry_dsn"):
            assert app.screen.query_one(field_id(f"secrets.{key}"), Input).password
        await type_into(pilot, "secrets.oidc_client_secret", "oidc-secret-never-saved")
        await type_into(pilot, "secrets.sentry_dsn", "https://key-never-saved@sentry.example/1")
        app.save_answers()
    text = (tmp_path / ANSWERS_FILE_NAME).read_text()
    assert "never-saved" not in text
    assert not re.search(r"^\s*(oidc_client_secret|sentry_dsn):", text, re.MULTILINE)
    assert "issuer: https://login.example.com" in text


async def test_alerting_receivers_are_added_with_a_check_box_and_checked_as_typed(
    make_app: Callable[..., InstallerApp],
) -> None:
    app = make_app(first_step="configuration")
    app.state.draft = dict(PRODUCTION)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_screen(pilot, "configuration")
        assert not shown(app, "alerting.email")
        await toggle(pilot, "alerting.enabled")
        assert shown(app, "alerting.email") and shown(app, "alerting.slack")
        assert not shown(app, "alerting.email.smtp_host")
        assert "at least one receiver" in error_of(app, "alerting.enabled")

        await toggle(pilot, "alerting.email")
        assert shown(app, "alerting.email.smtp_host")
        assert app.screen.query_one(field_id("alerting.email.require_tls")).value is True
        await type_into(pilot, "alerting.email.smtp_host", "smtp example")
        assert "✗" in error_of(app, "alerting.email.smtp_host")
        await type_into(pilot, "alerting.email.smtp_host", "smtp.example.com:587")
        assert "✗" not in error_of(app, "alerting.email.smtp_host")
        await type_into(pilot, "alerting.email.from_address", "alerts@example.com")
        await type_into(pilot, "alerting.email.to", "ops@example.com, oncall@example.com")
        assert app.state.get("alerting.email.to") == ["ops@example.com", "oncall@example.com"]
        assert "✗" not in error_of(app, "alerting.email.to")

        assert not shown(app, "secrets.slack_webhook_url")
        await toggle(pilot, "alerting.slack")
        assert shown(app, "alerting.slack.channel") and shown(app, "secrets.slack_webhook_url")
        await toggle(pilot, "alerting.slack")
        assert app.state.get("alerting.slack") is None
        assert not shown(app, "alerting.slack.channel")

        assert app.state.validate().ok, app.state.validate().problems
        await toggle(pilot, "alerting.enabled")
        assert app.state.get("alerting") == {"enabled": False}  # its receivers went with it
        assert app.state.validate().ok
