"""oidc: the identity provider publishes its discovery document, and the redirect URL to
register with it.

``GET <issuer>/.well-known/openid-configuration`` (OpenID Connect Discovery 1.0) through the
proxy the environment names, bounded by ``LiveInput.timeout`` and a size limit. It passes
when the document is JSON naming this ``issuer`` exactly and an authorization and a token
endpoint; the measured line names the redirect URL the operator registers for
``identity.client_id``. A provider that cannot be reached from here (no network, DNS,
refused, no answer in time, a proxy refusing) is a warning that says it could not look: the
services may reach it where this machine does not, and an offline install is allowed to
configure it. A provider that answers with something else (HTTP 404, not JSON, another
issuer, no authorization code flow, an untrusted certificate) is a failure: sign-in would
not work.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from installer.identity import discovery_url, redirect_url
from installer.live.net import classify, proxy_for, tls_context
from installer.live.result import LiveInput, LiveResult, not_applicable

NAME = "oidc"
REQUIRED = "the issuer's discovery document names it, with authorization and token endpoints"
MAX_DOCUMENT_BYTES = 1024 * 1024


def _fetch(url: str, inputs: LiveInput) -> tuple[int | None, bytes, str | None]:
    """(HTTP status, body, content type) of ``GET url``; raises OSError when unreachable."""
    proxy = proxy_for(url, inputs.environ)
    scheme = urllib.parse.urlsplit(url).scheme
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({scheme: proxy} if proxy else {}),
        urllib.request.HTTPSHandler(context=tls_context()),
    )
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - http(s), checked by the model
    try:
        with opener.open(request, timeout=inputs.timeout) as response:
            body = response.read(MAX_DOCUMENT_BYTES + 1)
            return int(response.status), body, response.headers.get_content_type()
    except urllib.error.HTTPError as e:
        return int(e.code), b"", None


def check_oidc(inputs: LiveInput) -> LiveResult:
    """The oidc check (see the module text)."""
    answers = inputs.answers
    identity = answers.identity
    if not identity.enabled or not identity.issuer:
        return not_applicable(NAME, "OIDC sign-in is not enabled")
    issuer = identity.issuer
    url = discovery_url(issuer)
    register = redirect_url(answers.domain, answers.tls.mode)
    details: dict[str, Any] = {"issuer": issuer, "discovery_url": url, "redirect_url": register}
    host = urllib.parse.urlsplit(url).hostname or url
    proxy = proxy_for(url, inputs.environ)
    via = f" through {proxy}" if proxy else ""
    try:
        status, body, content_type = _fetch(url, inputs)
    except (OSError, ValueError) as e:
        failure = classify(e, host, inputs.timeout)
        details["cause"] = failure.kind
        if failure.kind == "TLS":
            return LiveResult(
                NAME,
                "fail",
                f"could not read {url}{via} ({failure})",
                REQUIRED,
                hint="the provider's certificate must be trusted by this machine and the services",
                details=details,
            )
        return LiveResult(
            NAME,
            "warn",
            f"could not look at {url}{via} ({failure}); register the redirect URL {register}",
            REQUIRED,
            hint=(
                "this machine cannot reach the issuer (offline?); check identity.issuer "
                "from a machine that can, and that the services reach it"
            ),
            details=details,
        )
    details["status"] = status
    if status != 200:
        return LiveResult(
            NAME,
            "fail",
            f"{url} answers HTTP {status}, not the discovery document",
            REQUIRED,
            hint="check identity.issuer: it is the URL the provider names as its issuer",
            details=details,
        )
    problem, document = _read_document(body, content_type)
    if document is None:
        return LiveResult(
            NAME,
            "fail",
            f"{url}: {problem}",
            REQUIRED,
            hint="check identity.issuer",
            details=details,
        )
    named = document.get("issuer")
    if named != issuer:
        return LiveResult(
            NAME,
            "fail",
            f"the document at {url} names the issuer {str(named)[:200]!r}, not {issuer!r}",
            REQUIRED,
            hint="set identity.issuer to exactly what the provider names (a trailing / counts)",
            details={**details, "named_issuer": str(named)[:200]},
        )
    missing = [
        key
        for key in ("authorization_endpoint", "token_endpoint")
        if not isinstance(document.get(key), str)
    ]
    if missing:
        return LiveResult(
            NAME,
            "fail",
            f"the document at {url} has no {' or '.join(missing)}",
            REQUIRED,
            hint="the provider does not offer the authorization code flow CodeQual signs in with",
            details=details,
        )
    response_types = document.get("response_types_supported")
    if isinstance(response_types, list) and "code" not in response_types:
        return LiveResult(
            NAME,
            "fail",
            f"the provider at {issuer} does not offer the code response type "
            f"({', '.join(str(t) for t in response_types[:5]) or 'none listed'})",
            REQUIRED,
            hint="enable the authorization code flow for identity.client_id at the provider",
            details=details,
        )
    supported = document.get("scopes_supported")
    unknown = (
        [s for s in identity.scopes if s not in supported] if isinstance(supported, list) else []
    )
    details["scopes_not_offered"] = unknown
    measured = f"{issuer} answers{via}; register the redirect URL {register}"
    if unknown:
        return LiveResult(
            NAME,
            "warn",
            f"{measured}; the provider does not list the scopes {', '.join(unknown)}",
            REQUIRED,
            hint="check identity.scopes against the provider's scopes_supported",
            details=details,
        )
    return LiveResult(NAME, "pass", measured, REQUIRED, details=details)


def _read_document(body: bytes, content_type: str | None) -> tuple[str, dict[str, Any] | None]:
    if len(body) > MAX_DOCUMENT_BYTES:
        return f"the document is larger than {MAX_DOCUMENT_BYTES // 1024} KiB", None
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return f"the answer is not JSON ({content_type or 'no content type'})", None
    if not isinstance(document, dict):
        return "the answer is JSON but not an object", None
    return "", document
