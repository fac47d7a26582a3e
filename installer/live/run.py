"""Running the live checks together: in parallel, each bounded, the set within a deadline.

Every check runs in a daemon thread of its own and bounds each request by
``LiveInput.timeout``; the set waits at most :data:`DEADLINE_SECONDS`. A check still
waiting then (a resolver that does not give up, a packet-dropping firewall) is reported as
"could not reach X within N s" and left behind; a check that raised is a failure naming
the error's first line, never a traceback.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping

from installer.live.database import check_database
from installer.live.endpoints import check_deepwiki, check_supabase
from installer.live.images import check_images
from installer.live.ldap import check_ldap
from installer.live.oidc import check_oidc
from installer.live.proxy import check_proxy
from installer.live.result import LiveInput, LiveResult
from installer.live.tls import check_tls

DEADLINE_SECONDS = 9.0

LiveCheck = Callable[[LiveInput], LiveResult]

LIVE_CHECKS: Mapping[str, LiveCheck] = {
    "images": check_images,
    "database": check_database,
    "ldap": check_ldap,
    "tls": check_tls,
    "proxy": check_proxy,
    "deepwiki": check_deepwiki,
    "supabase": check_supabase,
    "oidc": check_oidc,
}
LIVE_CHECK_NAMES: tuple[str, ...] = tuple(LIVE_CHECKS)


def _what(name: str, inputs: LiveInput) -> str:
    """What a check reaches, for "could not reach X"."""
    answers = inputs.answers
    return {
        "images": "the image registries",
        "database": f"{answers.database.host}:{answers.database.port}",
        "ldap": str(answers.ldap.url),
        "tls": "the certificate files",
        "proxy": "the Docker Engine",
        "deepwiki": str(answers.deepwiki.url),
        "supabase": str(answers.supabase.url),
        "oidc": str(answers.identity.issuer),
    }.get(name, name)


def timed_out(name: str, inputs: LiveInput | None, seconds: float) -> LiveResult:
    """The verdict of a check that had no answer within ``seconds``."""
    what = _what(name, inputs) if inputs is not None else name
    return LiveResult(
        name,
        "fail",
        f"could not reach {what} within {seconds:g} s",
        None,
        hint="check the network between this machine and it (firewall, proxy, DNS)",
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def run_one(name: str, check: LiveCheck, inputs: LiveInput) -> LiveResult:
    """One check; whatever it raises becomes a failure in operator words."""
    from installer.errors import InstallerError

    try:
        return check(inputs)
    except InstallerError as e:
        return LiveResult(name, "fail", e.message, None, hint=e.hint)
    except Exception as e:  # noqa: BLE001 - one check's bug must not hide the others' verdicts
        return LiveResult(
            name,
            "fail",
            f"could not check {_what(name, inputs)}: {type(e).__name__}: {_first_line(e)}",
            None,
        )


def run_live_checks(
    inputs: LiveInput,
    *,
    skip: Iterable[str] = (),
    names: Iterable[str] | None = None,
    deadline: float = DEADLINE_SECONDS,
    checks: Mapping[str, LiveCheck] = LIVE_CHECKS,
) -> list[LiveResult]:
    """Run the live checks (all, or ``names``) in parallel; skipped ones are reported so."""
    skipped = set(skip)
    chosen = [n for n in (names or checks) if n in checks]
    results: dict[str, LiveResult] = {}
    threads: dict[str, threading.Thread] = {}
    for name in chosen:
        if name in skipped:
            results[name] = LiveResult(
                name, "skipped", None, None, reason="skipped by the operator (checks.skip)"
            )
            continue

        def work(name: str = name) -> None:
            results[name] = run_one(name, checks[name], inputs)

        thread = threading.Thread(target=work, name=f"live-{name}", daemon=True)
        threads[name] = thread
        thread.start()
    end = time.monotonic() + deadline
    for thread in threads.values():
        thread.join(max(0.0, end - time.monotonic()))
    ordered: list[LiveResult] = []
    for name in chosen:
        ordered.append(results.get(name) or timed_out(name, inputs, deadline))
    return ordered
