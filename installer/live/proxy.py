"""proxy: which proxy each registry and service URL goes through, and whether Docker agrees.

``HTTP_PROXY``, ``HTTPS_PROXY`` and ``NO_PROXY`` (either case) decide how this installer
reaches each registry and URL; the check names the route for each. The Docker Engine pulls
with its own settings (dockerd's environment), not the installer's: on Compose targets a
proxy set here but not there (or a different one) is a warning, since the pulls would
take another way than the checks did.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from installer.live.net import proxy_for, proxy_settings
from installer.live.result import LiveInput, LiveResult

NAME = "proxy"
REQUIRED = "the Docker Engine pulls through the same proxy as the installer"


def shown(proxy: str | None) -> str:
    """A proxy URL without its user and password."""
    if not proxy:
        return "direct"
    parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    host = parts.hostname or proxy
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def _hosts(inputs: LiveInput) -> list[str]:
    from installer.live.images import registry_access, release_images
    from installer.live.registry_access import registry_of

    access = registry_access(inputs)
    hosts = [registry_of(ref, access).split("/", 1)[0] for ref in release_images(inputs)]
    for url in (inputs.answers.deepwiki.url, inputs.answers.supabase.url):
        if url:
            hosts.append(urllib.parse.urlsplit(url).netloc)
    return list(dict.fromkeys(hosts))


def _docker_proxies(timeout: float) -> dict[str, str] | None:
    """The Docker Engine's own proxy settings (``docker info``), or None if not asked."""
    from installer.engine.docker import DockerEngine
    from installer.errors import InstallerError

    engine = DockerEngine(timeout=max(2, int(timeout)))
    try:
        info: dict[str, Any] = engine.client.info()
    except InstallerError:
        return None
    except Exception:  # noqa: BLE001 - the SDK's errors for a dying daemon vary; not asked
        return None
    finally:
        engine.close()
    return {
        "https": str(info.get("HttpsProxy") or ""),
        "http": str(info.get("HttpProxy") or ""),
        "no": str(info.get("NoProxy") or ""),
    }


def check_proxy(inputs: LiveInput) -> LiveResult:
    """The proxy check (see the module text)."""
    environ = inputs.environ
    routes = {host: shown(proxy_for(f"https://{host}/", environ)) for host in _hosts(inputs)}
    ours = proxy_settings(environ)
    details: dict[str, Any] = {
        "routes": routes,
        "installer": {k: shown(v) if k != "no" else v for k, v in ours.items()},
    }
    listed = "; ".join(f"{host}: {route}" for host, route in routes.items())
    docker = _docker_proxies(inputs.timeout) if inputs.answers.is_compose else None
    if docker is not None:
        details["docker"] = {k: shown(v) if k != "no" else v for k, v in docker.items() if v}
        mine = shown(ours.get("https")) if ours.get("https") else "direct"
        theirs = shown(docker["https"]) if docker["https"] else "direct"
        if mine != theirs:
            return LiveResult(
                NAME,
                "warn",
                f"the installer goes {mine}, the Docker Engine pulls {theirs}; {listed}",
                REQUIRED,
                hint="give dockerd the same HTTPS_PROXY/NO_PROXY (systemctl edit docker), "
                "then restart it",
                details=details,
            )
    if not ours:
        return LiveResult(NAME, "pass", f"no proxy: {listed}", REQUIRED, details=details)
    return LiveResult(NAME, "pass", listed, REQUIRED, details=details)
