"""deepwiki and supabase: the external URLs the answers name answer over TLS.

Any HTTP answer counts (a 401 without a key is still the service answering); what fails
is not getting one: the name, the connection, the certificate (on the Kubernetes targets a
name or connection this machine does not reach only warns: the pods connect, not it). A
plain ``http://`` URL answers without TLS: a warning, since the keys would then travel in
clear.
"""

from __future__ import annotations

from installer.live.net import get_url
from installer.live.result import LiveInput, LiveResult, not_applicable


def check_url(name: str, url: str, inputs: LiveInput, *, key: str) -> LiveResult:
    """``GET url``: pass on any HTTP answer over TLS, fail with the cause otherwise."""
    required = "answers over TLS"
    answer = get_url(url, environ=inputs.environ, timeout=inputs.timeout)
    via = f" through {answer.proxy}" if answer.proxy else ""
    details = {"url": url, "status": answer.status, "proxy": answer.proxy}
    if answer.failure is not None:
        # On the Kubernetes targets the pods connect, from the cluster's network: a URL
        # this machine cannot reach may well answer there; a bad certificate fails anyway.
        from_here = answer.failure.kind in ("DNS", "TCP") and not inputs.answers.is_compose
        return LiveResult(
            name,
            "warn" if from_here else "fail",
            f"could not reach {url}{via} ({answer.failure})",
            required,
            hint=(
                f"this machine cannot reach {key}; the cluster's pods connect, check they can"
                if from_here
                else f"check {key}, and that this machine reaches it (firewall, proxy)"
            ),
            details={**details, "cause": answer.failure.kind},
        )
    if url.startswith("http://"):
        return LiveResult(
            name,
            "warn",
            f"{url} answers HTTP {answer.status}{via}, without TLS",
            required,
            hint=f"use an https:// URL for {key}",
            details=details,
        )
    return LiveResult(
        name, "pass", f"{url} answers HTTP {answer.status}{via}", required, details=details
    )


def check_deepwiki(inputs: LiveInput) -> LiveResult:
    deepwiki = inputs.answers.deepwiki
    if deepwiki.mode != "external" or not deepwiki.url:
        return not_applicable("deepwiki", "DeepWiki is bundled")
    return check_url("deepwiki", deepwiki.url, inputs, key="deepwiki.url")


def check_supabase(inputs: LiveInput) -> LiveResult:
    url = inputs.answers.supabase.url
    if not url:
        return not_applicable("supabase", "no Supabase project is configured")
    return check_url("supabase", url, inputs, key="supabase.url")
