"""The oidc live check against a local provider: each verdict through a real HTTP exchange."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from installer.answers import AnswerFile
from installer.live.oidc import check_oidc
from installer.live.result import LiveInput, LiveResult
from installer.live.run import run_live_checks
from installer.release import load_release
from tests.support.oidc_provider import Provider, closed_port, oidc_provider

REDIRECT = "https://codequal.example.com/auth/oidc/callback"


@pytest.fixture
def provider() -> Iterator[Provider]:
    with oidc_provider() as running:
        yield running


def _inputs(
    issuer: str | None, *, environ: dict[str, str] | None = None, **identity: Any
) -> LiveInput:
    section: dict[str, Any] = {"enabled": issuer is not None, "client_id": "codequal"}
    if issuer is not None:
        section["issuer"] = issuer
    section.update(identity)
    answers = AnswerFile.model_validate(
        {
            "version": 1,
            "target": "production",
            "domain": "codequal.example.com",
            "identity": section if issuer is not None else {},
        }
    )
    return LiveInput(
        answers=answers, release=load_release("0.1.0"), environ=environ or {}, timeout=2.0
    )


def _check(provider: Provider, **identity: Any) -> LiveResult:
    return check_oidc(_inputs(provider.issuer, **identity))


def test_a_provider_that_answers_passes_and_names_the_redirect_url(provider: Provider) -> None:
    result = _check(provider)
    assert result.status == "pass", result
    assert f"{provider.issuer} answers" in (result.measured or "")
    assert f"register the redirect URL {REDIRECT}" in (result.measured or "")
    assert result.details["redirect_url"] == REDIRECT
    assert provider.requests == ["/realms/codequal/.well-known/openid-configuration"]


def test_an_unreachable_issuer_is_a_warning_that_says_it_could_not_look() -> None:
    issuer = f"http://127.0.0.1:{closed_port()}/realms/codequal"
    result = check_oidc(_inputs(issuer))
    assert result.status == "warn", result
    assert (result.measured or "").startswith(f"could not look at {issuer}/.well-known")
    assert "refused the connection" in (result.measured or "")
    assert REDIRECT in (result.measured or "")
    assert result.details["cause"] == "TCP"


def test_a_proxy_that_refuses_is_a_warning_too(provider: Provider) -> None:
    proxy = f"http://127.0.0.1:{closed_port()}"
    result = check_oidc(_inputs(provider.issuer, environ={"http_proxy": proxy}))
    assert result.status == "warn", result
    assert f"through {proxy}" in (result.measured or "")
    assert provider.requests == []


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"status": 404}, "answers HTTP 404, not the discovery document"),
        ({"body": b"<html>sign in</html>"}, "the answer is not JSON"),
        ({"body": b"[1, 2]"}, "JSON but not an object"),
        ({"document": {"issuer": "https://elsewhere.example.com"}}, "names the issuer"),
        ({"document": {"token_endpoint": None}}, "has no token_endpoint"),
        ({"document": {"response_types_supported": ["id_token"]}}, "code response type"),
    ],
)
def test_a_provider_that_answers_wrongly_fails(
    provider: Provider, change: dict[str, Any], needle: str
) -> None:
    for key, value in change.items():
        setattr(provider, key, value)
    result = _check(provider)
    assert result.status == "fail", result
    assert needle in (result.measured or ""), result.measured
    assert result.hint


def test_a_trailing_slash_the_provider_does_not_name_fails(provider: Provider) -> None:
    result = check_oidc(_inputs(provider.issuer + "/"))
    assert result.status == "fail"
    assert "a trailing / counts" in (result.hint or "")


def test_scopes_the_provider_does_not_offer_warn(provider: Provider) -> None:
    result = _check(provider, scopes=["openid", "offline_access"])
    assert result.status == "warn", result
    assert "does not list the scopes offline_access" in (result.measured or "")


def test_without_oidc_the_check_does_not_apply() -> None:
    result = check_oidc(_inputs(None))
    assert result.status == "skipped" and result.reason == "OIDC sign-in is not enabled"


def test_the_check_runs_with_the_others_within_the_deadline(provider: Provider) -> None:
    results = run_live_checks(_inputs(provider.issuer), names=["oidc"], deadline=5)
    assert [(r.name, r.status) for r in results] == [("oidc", "pass")]


def test_a_provider_that_never_answers_is_bounded_by_the_timeout() -> None:
    import socket
    import time

    with socket.socket() as silent:  # accepts the connection (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        issuer = f"http://127.0.0.1:{silent.getsockname()[1]}/realms/codequal"
        started = time.monotonic()
        result = check_oidc(_inputs(issuer))
        elapsed = time.monotonic() - started
    assert result.status == "warn", result
    assert "did not answer within 2 s" in (result.measured or "")
    assert elapsed < 4
