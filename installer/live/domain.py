"""domain: the domain resolves — on Compose targets, to an address of this machine.

Compose targets serve the domain from this machine, so it should resolve to one of its
addresses; resolving elsewhere is a warning naming where (a load balancer in front is
fine, a typo is not). A domain that resolves nowhere fails, except on development, where
a certificate for a name nobody resolves is common and only warned about. On the
Kubernetes targets the Ingress's address is the cluster's: resolving at all passes.
"""

from __future__ import annotations

import ipaddress
import socket

from installer.live.result import LiveInput, LiveResult, LiveStatus

NAME = "domain"


def resolve(domain: str) -> list[str]:
    """Every address ``domain`` resolves to (raises ``socket.gaierror`` when none)."""
    infos = socket.getaddrinfo(domain, None, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def host_addresses() -> set[str]:
    """Every address of this machine's interfaces (loopback too)."""
    import psutil

    found: set[str] = set()
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                found.add(address.address.split("%", 1)[0])
    return found


def check_domain(inputs: LiveInput) -> LiveResult:
    """The domain check (see the module text)."""
    answers = inputs.answers
    domain = answers.domain
    try:
        ipaddress.ip_address(domain)
    except ValueError:
        pass
    else:
        return LiveResult(NAME, "pass", f"{domain} is an address", "resolves")
    required = "resolves to this machine" if answers.is_compose else "resolves"
    try:
        addresses = resolve(domain)
    except (socket.gaierror, UnicodeError) as e:
        why = e.strerror if isinstance(e, socket.gaierror) and e.strerror else str(e)
        status: LiveStatus = "warn" if answers.target == "development" else "fail"
        return LiveResult(
            NAME,
            status,
            f"{domain} does not resolve (DNS: {why})",
            required,
            hint=f"add a DNS record (or an /etc/hosts line) for {domain} pointing here",
        )
    shown = ", ".join(addresses)
    if not answers.is_compose:
        return LiveResult(NAME, "pass", f"{domain} resolves to {shown}", required)
    mine = host_addresses()
    if any(address in mine for address in addresses):
        return LiveResult(NAME, "pass", f"{domain} resolves to {shown} (this machine)", required)
    return LiveResult(
        NAME,
        "warn",
        f"{domain} resolves to {shown}, not to an address of this machine",
        required,
        hint=f"point {domain} at this machine, unless a proxy or load balancer there forwards",
        details={"addresses": addresses},
    )
